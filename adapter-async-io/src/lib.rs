//! # kontiki-async-io — what kontiki's smol and async-std adapters share
//!
//! smol and async-std both run on the async-io reactor and the blocking
//! thread pool, so their adapters differ only in how a task is spawned.
//! This crate is the driver's [`Runtime`] on async-io, generic over a
//! [`Spawner`]; `kontiki-smol` and `kontiki-async-std` each supply theirs.
//! Any executor can: here each task gets a thread of its own.
//!
//! ```
//! use std::collections::BTreeMap;
//! use kontiki_driver::kontiki::{LogIndex, NodeId};
//! use kontiki_driver::{Bytes, LocalNetwork, MemoryStorage, NodeConfig, StateMachine};
//!
//! /// Answers each command with itself.
//! struct Echo;
//!
//! impl StateMachine for Echo {
//!     type Output = Bytes;
//!     fn apply(&mut self, _index: LogIndex, command: &Bytes) -> Bytes {
//!         command.clone()
//!     }
//! }
//!
//! /// Runs every task on a thread of its own.
//! #[derive(Clone)]
//! struct ThreadPerTask;
//!
//! impl kontiki_async_io::Spawner for ThreadPerTask {
//!     fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
//!         std::thread::spawn(move || async_io::block_on(task));
//!     }
//! }
//!
//! async_io::block_on(async {
//!     // A cluster of one voter elects itself at once.
//!     let config = NodeConfig::new(NodeId(1), "127.0.0.1:7001".parse().unwrap(), BTreeMap::new());
//!     let network = LocalNetwork::new();
//!     let node = kontiki_driver::start_local(kontiki_async_io::AsyncIoRuntime::new(ThreadPerTask), &network, config, MemoryStorage::new(), Echo)
//!         .await
//!         .unwrap();
//!     assert_eq!(node.propose(&b"hello"[..]).await.unwrap(), &b"hello"[..]);
//!     node.read_barrier().await.unwrap();
//!     node.shutdown().await;
//! });
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Instant;

use async_io::{Async, Timer};
use kontiki_driver::Runtime;

/// How a runtime starts a background task.
pub trait Spawner: Clone + Send + Sync + 'static {
    /// Runs `task` in the background until it completes.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static);
}

/// The driver's [`Runtime`] on async-io: its timers and TCP, the
/// `blocking` pool, and `S` to spawn tasks.
#[derive(Clone, Debug, Default)]
pub struct AsyncIoRuntime<S> {
    spawner: S,
}

impl<S: Spawner> AsyncIoRuntime<S> {
    /// A runtime that spawns with `spawner`.
    pub fn new(spawner: S) -> AsyncIoRuntime<S> {
        AsyncIoRuntime { spawner }
    }
}

// The returned futures must not borrow `self` (they are `'static`), which
// an `async fn` would.
#[allow(clippy::manual_async_fn)]
impl<S: Spawner> Runtime for AsyncIoRuntime<S> {
    type Stream = Async<TcpStream>;
    type Listener = Async<TcpListener>;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static {
        async move {
            Timer::at(deadline).await;
        }
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.spawner.spawn(task);
    }

    fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = T> + Send + 'static {
        blocking::unblock(work)
    }

    fn connect(
        &self,
        address: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send + 'static {
        async move {
            let stream = Async::<TcpStream>::connect(address).await?;
            stream.get_ref().set_nodelay(true)?;
            Ok(stream)
        }
    }

    fn bind(
        &self,
        address: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::Listener>> + Send + 'static {
        std::future::ready(Async::<TcpListener>::bind(address))
    }

    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.get_ref().local_addr()
    }

    fn accept(
        listener: &Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send + '_ {
        async move {
            let (stream, remote) = listener.accept().await?;
            stream.get_ref().set_nodelay(true)?;
            Ok((stream, remote))
        }
    }
}

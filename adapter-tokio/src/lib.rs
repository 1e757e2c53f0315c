//! # kontiki-tokio — kontiki Raft nodes on tokio
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use kontiki_tokio::{kontiki::LogIndex, Bytes, MemoryStorage, NodeConfig, StateMachine};
//!
//! struct Counter(u64);
//! impl StateMachine for Counter {
//!     type Output = u64;
//!     fn apply(&mut self, _index: LogIndex, _command: &Bytes) -> u64 {
//!         self.0 += 1;
//!         self.0
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let peers = BTreeMap::from([
//!     (kontiki_tokio::kontiki::NodeId(2), "127.0.0.1:7002".parse()?),
//!     (kontiki_tokio::kontiki::NodeId(3), "127.0.0.1:7003".parse()?),
//! ]);
//! let config = NodeConfig::new(kontiki_tokio::kontiki::NodeId(1), "127.0.0.1:7001".parse()?, peers);
//! let node = kontiki_tokio::start(config, MemoryStorage::new(), Counter(0)).await?;
//! let count = node.propose(&b"increment"[..]).await?; // once this node leads
//! node.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Everything but [`start`] and [`TokioRuntime`] is re-exported from
//! `kontiki-driver`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

pub use kontiki_driver::*;

/// The driver's [`Runtime`] on tokio: tokio's clock, timers, tasks,
/// blocking pool and TCP.
#[derive(Clone, Debug)]
pub struct TokioRuntime {
    handle: tokio::runtime::Handle,
}

impl TokioRuntime {
    /// The runtime the caller runs on. Panics outside a tokio runtime.
    #[must_use]
    pub fn current() -> TokioRuntime {
        TokioRuntime {
            handle: tokio::runtime::Handle::current(),
        }
    }
}

// The returned futures must not borrow `self` (they are `'static`), which
// an `async fn` would.
#[allow(clippy::manual_async_fn)]
impl Runtime for TokioRuntime {
    type Stream = Compat<TcpStream>;
    type Listener = TcpListener;

    fn now(&self) -> Instant {
        // tokio's clock, so that a paused test clock governs timers too.
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static {
        tokio::time::sleep_until(deadline.into())
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        drop(self.handle.spawn(task));
    }

    fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = T> + Send + 'static {
        let task = self.handle.spawn_blocking(work);
        async move {
            match task.await {
                Ok(result) => result,
                Err(error) => std::panic::resume_unwind(error.into_panic()),
            }
        }
    }

    fn connect(
        &self,
        address: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send + 'static {
        async move {
            let stream = TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
            Ok(stream.compat())
        }
    }

    fn bind(
        &self,
        address: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::Listener>> + Send + 'static {
        TcpListener::bind(address)
    }

    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    fn accept(
        listener: &Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send + '_ {
        async move {
            let (stream, remote) = listener.accept().await?;
            stream.set_nodelay(true)?;
            Ok((stream.compat(), remote))
        }
    }
}

/// Starts a node on the current tokio runtime (see
/// [`kontiki_driver::start`]).
pub async fn start<S: Storage, M: StateMachine>(
    config: NodeConfig,
    storage: S,
    state_machine: M,
) -> Result<Handle<M>, StartError> {
    kontiki_driver::start(TokioRuntime::current(), config, storage, state_machine).await
}

//! # kontiki-tokio — kontiki Raft nodes on tokio
//!
//! [`start`] runs a node on the current tokio runtime: its peers over TCP,
//! its storage, and the application's [`StateMachine`]. A cluster can also
//! live in one process on a [`LocalNetwork`], as here — three nodes elect a
//! leader and replicate a command:
//!
//! ```
//! use std::collections::BTreeMap;
//! use kontiki_tokio::kontiki::{LogIndex, NodeId};
//! use kontiki_tokio::{Bytes, LocalNetwork, MemoryStorage, NodeConfig, StateMachine, TokioRuntime};
//!
//! /// The replicated state: how many commands were applied.
//! struct Counter(u64);
//!
//! impl StateMachine for Counter {
//!     type Output = u64;
//!     fn apply(&mut self, _index: LogIndex, _command: &Bytes) -> u64 {
//!         self.0 += 1;
//!         self.0
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! runtime.block_on(async {
//!     let network = LocalNetwork::new();
//!     let ids = [NodeId(1), NodeId(2), NodeId(3)];
//!     let mut nodes = Vec::new();
//!     for &id in &ids {
//!         // On a LocalNetwork the addresses only name the peers.
//!         let address = |id: NodeId| format!("127.0.0.1:{}", 7000 + id.get()).parse().unwrap();
//!         let peers: BTreeMap<_, _> =
//!             ids.iter().filter(|&&peer| peer != id).map(|&peer| (peer, address(peer))).collect();
//!         let config = NodeConfig::new(id, address(id), peers);
//!         let runtime = TokioRuntime::current();
//!         let node = kontiki_tokio::start_local(runtime, &network, config, MemoryStorage::new(), Counter(0));
//!         nodes.push(node.await?);
//!     }
//!     // Wait for a leader, then replicate a command through it.
//!     let leader = loop {
//!         if let Some(leader) = nodes[0].status().leader {
//!             break leader;
//!         }
//!         tokio::time::sleep(std::time::Duration::from_millis(10)).await;
//!     };
//!     let leader = &nodes[(leader.get() - 1) as usize];
//!     assert_eq!(leader.propose(&b"increment"[..]).await?, 1);
//!     leader.read_barrier().await?; // a linearizable read point
//!     for node in &nodes {
//!         node.shutdown().await;
//!     }
//!     Ok(())
//! })
//! # }
//! ```
//!
//! Over TCP, [`start`] takes the peers' addresses the same way:
//!
//! ```no_run
//! # use std::collections::BTreeMap;
//! # use kontiki_tokio::{kontiki::NodeId, MemoryStorage, NodeConfig};
//! # struct Counter;
//! # impl kontiki_tokio::StateMachine for Counter {
//! #     type Output = ();
//! #     fn apply(&mut self, _: kontiki_tokio::kontiki::LogIndex, _: &kontiki_tokio::Bytes) {}
//! # }
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let peers = BTreeMap::from([(NodeId(2), "10.0.0.2:7001".parse()?), (NodeId(3), "10.0.0.3:7001".parse()?)]);
//! let config = NodeConfig::new(NodeId(1), "10.0.0.1:7001".parse()?, peers);
//! let node = kontiki_tokio::start(config, MemoryStorage::new(), Counter).await?;
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

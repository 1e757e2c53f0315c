//! # kontiki-smol — kontiki Raft nodes on smol
//!
//! [`start`] runs a node on smol's global executor, with async-io's
//! timers and TCP (shared with `kontiki-async-std` through
//! `kontiki-async-io`). Everything else is re-exported from
//! `kontiki-driver`; the API is the same as `kontiki-tokio`'s.
//!
//! ```
//! use std::collections::BTreeMap;
//! use kontiki_smol::kontiki::{LogIndex, NodeId};
//! use kontiki_smol::{Bytes, LocalNetwork, MemoryStorage, NodeConfig, StateMachine};
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
//! smol::block_on(async {
//!     // A cluster of one voter elects itself at once.
//!     let config = NodeConfig::new(NodeId(1), "127.0.0.1:7001".parse().unwrap(), BTreeMap::new());
//!     let network = LocalNetwork::new();
//!     let node = kontiki_smol::start_local(kontiki_smol::runtime(), &network, config, MemoryStorage::new(), Echo)
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

use kontiki_async_io::{AsyncIoRuntime, Spawner};

pub use kontiki_driver::*;

/// Spawns onto smol's global executor.
#[derive(Clone, Copy, Debug, Default)]
pub struct SmolSpawner;

impl Spawner for SmolSpawner {
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        smol::spawn(task).detach();
    }
}

/// The driver's [`Runtime`] on smol.
pub type SmolRuntime = AsyncIoRuntime<SmolSpawner>;

/// The smol runtime.
#[must_use]
pub fn runtime() -> SmolRuntime {
    AsyncIoRuntime::new(SmolSpawner)
}

/// Starts a node on smol (see [`kontiki_driver::start`]).
pub async fn start<S: Storage, M: StateMachine>(
    config: NodeConfig,
    storage: S,
    state_machine: M,
) -> Result<Handle<M>, StartError> {
    kontiki_driver::start(runtime(), config, storage, state_machine).await
}

//! # kontiki-async-std — kontiki Raft nodes on async-std
//!
//! async-std is discontinued upstream (RUSTSEC-2025-0052); this adapter
//! stays for the programs that still run on it. It shares everything but
//! task spawning with `kontiki-smol` through `kontiki-async-io`, since
//! async-std runs on the same async-io reactor. New programs should
//! prefer `kontiki-smol` or `kontiki-tokio`; the API is the same.
//!
//! ```
//! use std::collections::BTreeMap;
//! use kontiki_async_std::kontiki::{LogIndex, NodeId};
//! use kontiki_async_std::{Bytes, LocalNetwork, MemoryStorage, NodeConfig, StateMachine};
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
//! async_std::task::block_on(async {
//!     // A cluster of one voter elects itself at once.
//!     let config = NodeConfig::new(NodeId(1), "127.0.0.1:7001".parse().unwrap(), BTreeMap::new());
//!     let network = LocalNetwork::new();
//!     let node = kontiki_async_std::start_local(kontiki_async_std::runtime(), &network, config, MemoryStorage::new(), Echo)
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

/// Spawns onto async-std's executor.
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncStdSpawner;

impl Spawner for AsyncStdSpawner {
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        drop(async_std::task::spawn(task));
    }
}

/// The driver's [`Runtime`] on async-std.
pub type AsyncStdRuntime = AsyncIoRuntime<AsyncStdSpawner>;

/// The async-std runtime.
#[must_use]
pub fn runtime() -> AsyncStdRuntime {
    AsyncIoRuntime::new(AsyncStdSpawner)
}

/// Starts a node on async-std (see [`kontiki_driver::start`]).
pub async fn start<S: Storage, M: StateMachine>(
    config: NodeConfig,
    storage: S,
    state_machine: M,
) -> Result<Handle<M>, StartError> {
    kontiki_driver::start(runtime(), config, storage, state_machine).await
}

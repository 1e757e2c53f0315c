//! # kontiki-async-std — kontiki Raft nodes on async-std
//!
//! async-std is discontinued upstream (RUSTSEC-2025-0052); this adapter
//! stays for the programs that still run on it. It shares everything but
//! task spawning with `kontiki-smol` through `kontiki-async-io`, since
//! async-std runs on the same async-io reactor. New programs should
//! prefer `kontiki-smol` or `kontiki-tokio`; the API is the same.

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

//! # kontiki-tests
//!
//! A deterministic simulator for [`kontiki`] clusters and the scenario
//! suites built on it.
//!
//! A [`Cluster`](sim::Cluster) runs N real kontiki cores on a virtual clock,
//! through a simulated network that delays, loses, duplicates and reorders
//! messages, isolates nodes and cuts links one way; nodes crash (the core is
//! dropped) and restart from what they persisted. Every random choice comes
//! from one `u64` seed, and Raft's safety invariants are checked after every
//! event. A failure panics with the seed and the latest events; set
//! `KONTIKI_SEED=<seed>` to replay exactly that run.
//!
//! [`live`] holds the scenarios real nodes must pass on every async
//! runtime over loopback TCP.

pub mod chaos;
#[cfg(feature = "live")]
pub mod in_process;
#[cfg(feature = "live")]
pub mod live;
pub mod mit;
pub mod probe;
pub mod rss;
pub mod seeds;
pub mod sim;

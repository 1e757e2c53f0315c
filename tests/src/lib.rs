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
//! Five nodes on a faulty network elect a leader and commit a write:
//!
//! ```
//! use std::time::Duration;
//! use kontiki_tests::chaos::has_stable_leader;
//! use kontiki_tests::sim::{Cluster, ClusterConfig, NetworkConfig};
//!
//! let config = ClusterConfig {
//!     network: NetworkConfig::chaotic(),
//!     ..ClusterConfig::new(5)
//! };
//! let mut cluster = Cluster::new(42, config); // the seed decides everything
//! assert!(cluster.run_until_condition(Duration::from_secs(10), |c| has_stable_leader(c).is_some()));
//! let leader = has_stable_leader(&cluster).expect("elected");
//! let (index, term) = cluster.propose(leader, b"hello".to_vec()).expect("the leader takes it");
//! // Invariants are checked after every event while this runs.
//! let committed = cluster.run_until_condition(Duration::from_secs(10), |c| {
//!     c.applied().iter().any(|a| a.entry.index == index && a.entry.term == term)
//! });
//! assert!(committed);
//! ```
//!
//! [`live`] holds the scenarios real nodes must pass on every async
//! runtime over loopback TCP.

pub mod chaos;
#[cfg(feature = "live")]
pub mod in_process;
#[cfg(feature = "live")]
pub mod live;
#[cfg(feature = "live")]
pub mod load;
pub mod mit;
pub mod model;
pub mod peer_wire;
pub mod probe;
pub mod rss;
pub mod seeds;
pub mod sim;

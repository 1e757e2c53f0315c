//! The deterministic cluster simulator.

mod cluster;
mod invariants;
mod network;
mod schedule;
mod trace;

pub use cluster::{Applied, Cluster, ClusterConfig, HarnessRng, RoleChange, SimNode, Traffic};
pub use invariants::Checker;
pub use network::{Loss, NetworkConfig};
pub use schedule::run_schedule;
pub use trace::{ShowMessage, Trace, TraceEvent};

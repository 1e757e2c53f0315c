//! # kontiki — a sans-IO Raft core
//!
//! `kontiki` is one Raft peer as a plain state machine: it performs no IO,
//! reads no clock, spawns nothing and owns no global random number
//! generator. The caller hands it one event at a time — a message from a
//! peer, its timer firing, a local command — together with the current
//! time, and performs the ordered list of outputs it answers with: persist
//! the hard state, send messages, arm the timer, note a role change.
//!
//! Because nothing in here touches the outside world, the same code runs on
//! a Cortex-M microcontroller, under any async runtime, and inside a
//! deterministic simulator that replays a whole cluster from one seed.
//!
//! The crate is `#![no_std]` and needs only `alloc`.
//!
//! ## The drive loop
//!
//! ```
//! use kontiki::{Config, Input, Instant, Message, Node, NodeId, Output, PersistedState, Role};
//! use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};
//! use std::collections::VecDeque;
//!
//! // Three peers in one process, with a perfect network: a queue.
//! let ids = [NodeId(1), NodeId(2), NodeId(3)];
//! let mut nodes: Vec<Node<ChaCha8Rng>> = ids
//!     .iter()
//!     .map(|&id| {
//!         let rng = ChaCha8Rng::seed_from_u64(id.get());
//!         Node::new(id, &ids, Config::default(), rng, PersistedState::default(), Instant::ZERO)
//!             .expect("valid configuration")
//!     })
//!     .collect();
//! let mut timers = vec![None; nodes.len()];
//! let mut network: VecDeque<(NodeId, NodeId, Message)> = VecDeque::new();
//! let mut now = Instant::ZERO;
//!
//! for _step in 0..1_000 {
//!     // Perform every node's outputs, in order.
//!     for (position, node) in nodes.iter_mut().enumerate() {
//!         for output in node.drain_outputs() {
//!             match output {
//!                 // Real code makes this durable before performing later sends.
//!                 Output::PersistHardState(_hard_state) => {}
//!                 Output::Send { to, message } => network.push_back((ids[position], to, message)),
//!                 Output::SetTimer { deadline } => timers[position] = Some(deadline),
//!                 Output::RoleChanged { .. } => {}
//!                 _ => {}
//!             }
//!         }
//!     }
//!     if nodes.iter().any(|node| node.role() == Role::Leader) {
//!         break;
//!     }
//!     // Deliver one message, or else jump to the earliest timer.
//!     if let Some((from, to, message)) = network.pop_front() {
//!         let node = &mut nodes[(to.get() - 1) as usize];
//!         // A refused message is only worth a log line.
//!         let _ = node.handle(now, Input::Message { from, message });
//!     } else {
//!         let (position, deadline) = timers
//!             .iter()
//!             .enumerate()
//!             .filter_map(|(position, deadline)| deadline.map(|d| (position, d)))
//!             .min_by_key(|&(_, deadline)| deadline)
//!             .expect("every node keeps a timer armed");
//!         now = now.max(deadline);
//!         timers[position] = None;
//!         nodes[position].handle(now, Input::Timer).expect("timers are always accepted");
//!     }
//! }
//! assert_eq!(nodes.iter().filter(|node| node.role() == Role::Leader).count(), 1);
//! ```
//!
//! ## Where things are
//!
//! - [`Node`]: the peer; [`Input`] in, [`Output`] out.
//! - [`Config`]: timeouts and protocol options, validated at construction.
//! - [`Message`]: what peers exchange.
//! - [`Command::Read`] and [`Output::ReadReady`]: linearizable reads without
//!   log writes (ReadIndex).
//! - [`PersistedState`], [`HardState`] and [`Snapshot`]: what survives a crash.
//! - [`wire`]: the versioned byte encoding of messages.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod config;
mod election;
mod leadership;
mod log;
mod message;
mod node;
mod output;
mod quorum;
mod read;
mod replication;
mod role;
mod snapshot;
mod time;
mod types;
pub mod wire;

pub use config::{Config, ConfigError};
pub use log::{Entry, EntryKind, LogError};
pub use message::{
    AppendEntries, AppendEntriesResponse, InstallSnapshot, InvalidMessage, LeadershipCheck,
    LeadershipCheckResponse, Message, RequestVote, RequestVoteResponse,
};
pub use node::{
    Command, DropReason, HandleError, Handled, Input, Node, NodeStats, PersistedState, StartError,
};
pub use output::{HardState, Output, Role};
pub use quorum::majority;
pub use snapshot::Snapshot;
pub use time::Instant;
pub use types::{LogIndex, NodeId, Term};

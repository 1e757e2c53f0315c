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
//! use kontiki::{Command, Config, Input, Instant, Message, Node, NodeId, Output, Persist, PersistedState, Role};
//! use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};
//! use std::collections::VecDeque;
//!
//! // Three peers in one process, with a perfect network: a queue. Each
//! // peer's "disk" is a `PersistedState` that outlives it.
//! let ids = [NodeId(1), NodeId(2), NodeId(3)];
//! let mut disks = vec![PersistedState::default(); ids.len()];
//! let mut nodes: Vec<Node<ChaCha8Rng>> = ids
//!     .iter()
//!     .zip(&disks)
//!     .map(|(&id, disk)| {
//!         let rng = ChaCha8Rng::seed_from_u64(id.get());
//!         Node::new(id, &ids, Config::default(), rng, disk.clone(), Instant::ZERO)
//!             .expect("valid configuration")
//!     })
//!     .collect();
//! let mut network: VecDeque<(NodeId, NodeId, Message)> = VecDeque::new();
//! let mut applied = vec![Vec::new(); ids.len()];
//! let mut proposed = false;
//! let mut now = Instant::ZERO;
//!
//! for _step in 0..10_000 {
//!     // Perform every node's outputs, in order.
//!     for (position, node) in nodes.iter_mut().enumerate() {
//!         let mut written = None;
//!         for output in node.drain_outputs() {
//!             match output {
//!                 // Durable before any later output is performed.
//!                 Output::Persist(write) => {
//!                     if let Persist::Entries(entries) = &write {
//!                         written = entries.last().map(|entry| (entry.index, entry.term));
//!                     }
//!                     disks[position].apply(write).expect("in order");
//!                 }
//!                 Output::Send { to, message } => network.push_back((ids[position], to, message)),
//!                 Output::Apply(entry) => applied[position].push(entry.data),
//!                 // The timer's deadline is also `node.next_deadline()`.
//!                 Output::SetTimer { .. } => {}
//!                 // No snapshots or reads in this example.
//!                 Output::RestoreSnapshot(_)
//!                 | Output::InstallSnapshot(_)
//!                 | Output::ReadReady { .. }
//!                 | Output::ReadsFailed { .. }
//!                 | Output::RoleChanged { .. } => {}
//!             }
//!         }
//!         // Say the write is durable: a leader that writes in parallel with
//!         // its followers (the default) counts its own copy only then.
//!         if let Some((index, term)) = written {
//!             let _ = node.handle(now, Input::Persisted { index, term });
//!         }
//!     }
//!     if !proposed {
//!         if let Some(leader) = nodes.iter_mut().find(|node| node.role() == Role::Leader) {
//!             let command = Command::Propose(b"hello".to_vec().into());
//!             leader.handle(now, Input::Command(command)).expect("the leader takes it");
//!             proposed = true;
//!             continue;
//!         }
//!     }
//!     if applied.iter().all(|entries| entries.iter().any(|data| &data[..] == b"hello")) {
//!         break;
//!     }
//!     // Deliver one message, or else jump to the earliest deadline.
//!     if let Some((from, to, message)) = network.pop_front() {
//!         let node = &mut nodes[(to.get() - 1) as usize];
//!         // A refused message is only worth a log line.
//!         let _ = node.handle(now, Input::Message { from, message });
//!     } else {
//!         let node = nodes
//!             .iter_mut()
//!             .min_by_key(|node| node.next_deadline())
//!             .expect("three nodes");
//!         now = now.max(node.next_deadline());
//!         node.handle(now, Input::Timer).expect("timers are always accepted");
//!     }
//! }
//! // Every node applied the command, and every term and vote that
//! // mattered is on its disk.
//! assert!(applied.iter().all(|entries| entries.iter().any(|data| &data[..] == b"hello")));
//! assert!(disks.iter().all(|disk| disk.hard_state.term.get() >= 1));
//! ```
//!
//! ## Randomness
//!
//! A node draws its election timeouts from the RNG it is given, any
//! [`rand_core::Rng`] (rand_core 0.10). Seed it per node — a seeded
//! generator such as `rand_chacha::ChaCha8Rng` makes a whole run
//! replayable — and never share one stream between nodes. An RNG written
//! against an older rand_core (0.6 to 0.9, whose trait was `RngCore`) can
//! be passed through a newtype that implements `rand_core::TryRng` with
//! `Error = Infallible` by forwarding `next_u32`, `next_u64` and
//! `fill_bytes`; `rand_chacha` 0.10 produces the same ChaCha stream for the
//! same seed as 0.3 did.
//!
//! ## Where things are
//!
//! - [`Node`]: the peer; [`Input`] in, [`Output`] out.
//! - [`Config`]: timeouts and protocol options, validated at construction.
//! - [`Message`]: what peers exchange.
//! - [`Command::Read`] and [`Output::ReadReady`]: linearizable reads without
//!   log writes (ReadIndex).
//! - [`Persist`] and [`PersistedState`]: what the node writes to stable
//!   storage, and what [`PersistedState::apply`] makes of it; [`HardState`]
//!   and [`Snapshot`] are part of it.
//! - [`wire`]: the versioned byte encoding of messages.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

// Modules that hold data: they import none of the modules below them.
mod ack;
mod config;
mod entry;
mod error;
mod inflight;
mod input;
mod log;
mod membership;
mod membership_log;
mod message;
mod node;
mod output;
mod persist;
mod progress;
mod quorum;
mod read_queue;
mod role;
mod time;
mod tracker;
mod types;
pub mod wire;

// The protocol: each is a further `impl Node` for one concern.
mod durability;
mod election;
mod inspect;
mod invariants;
mod leadership;
mod read;
mod reconfigure;
mod replication;
mod snapshot;
mod transfer;

pub use config::{Config, ConfigError};
pub use entry::{Entry, EntryKind, Snapshot};
pub use error::{DropReason, HandleError, StartError, TransferError};
pub use input::{Command, Handled, Input};
pub use log::LogError;
pub use membership::{Membership, MembershipChange, MembershipError};
pub use message::{
    AppendEntries, AppendEntriesResponse, InstallSnapshot, InvalidMessage, LeadershipCheck,
    LeadershipCheckResponse, Message, RequestVote, RequestVoteResponse, TimeoutNow,
};
pub use node::{Node, NodeStats};
pub use output::Output;
pub use persist::{HardState, Persist, PersistError, PersistedState};
pub use quorum::majority;
pub use role::Role;
pub use time::Instant;
pub use types::{LogIndex, NodeId, Term};

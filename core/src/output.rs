//! What the core asks its caller to do, and the public view of its role.

use core::fmt;

use alloc::vec::Vec;

use crate::log::Entry;
use crate::message::Message;
use crate::snapshot::Snapshot;
use crate::time::Instant;
use crate::types::LogIndex;
use crate::types::{NodeId, Term};

/// The state a node must find again after a crash: its term and its vote.
///
/// Raft's safety rests on both surviving restarts: a node that forgot its
/// vote could vote twice in one term, and one that forgot its term could
/// accept a deposed leader.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HardState {
    /// The latest term the node has seen.
    pub term: Term,
    /// The candidate the node voted for in `term`, if any.
    pub voted_for: Option<NodeId>,
}

/// A node's role in the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asks for pre-votes, without raising its term, to learn whether it
    /// could win an election.
    PreCandidate,
    /// Has raised its term and asks for votes.
    Candidate,
    /// Leads the cluster in the current term.
    Leader,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        })
    }
}

/// One action the caller must perform.
///
/// # Ordering rule
///
/// Perform the outputs of a node **in the order they are drained**. In
/// particular every persist output
/// ([`PersistHardState`](Output::PersistHardState),
/// [`PersistEntries`](Output::PersistEntries),
/// [`TruncateLog`](Output::TruncateLog),
/// [`PersistSnapshot`](Output::PersistSnapshot)) must be durable before any
/// [`Send`](Output::Send), [`Apply`](Output::Apply) or
/// [`RestoreSnapshot`](Output::RestoreSnapshot) drained after it is
/// performed: a vote, a term or an entry that reaches a peer or the state
/// machine must survive a crash of this node. Persist outputs may be
/// batched into one write (group commit) as long as that write completes
/// before the next send or apply. [`SetTimer`](Output::SetTimer) and
/// [`RoleChanged`](Output::RoleChanged) carry no ordering constraint.
///
/// Outputs are never withdrawn: once drained, each must be performed (or the
/// node treated as crashed and rebuilt from what was persisted).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Make this hard state durable, replacing the previous one, before
    /// performing any later `Send`.
    PersistHardState(HardState),
    /// Make these entries durable at the end of the log. They continue the
    /// log as persisted (after any [`TruncateLog`](Output::TruncateLog)
    /// drained before them). With
    /// [`Config::leader_persists_in_parallel`](crate::Config::leader_persists_in_parallel),
    /// report each once it is durable with
    /// [`Input::Persisted`](crate::Input::Persisted) naming its last entry;
    /// a leader's appends of these entries may then come before it in the
    /// outputs.
    PersistEntries(Vec<Entry>),
    /// Remove the persisted entries at `from` and after: a new leader
    /// overwrote them. Never reaches a committed entry.
    TruncateLog {
        /// The first index to remove.
        from: LogIndex,
    },
    /// Make this snapshot durable, replacing any earlier one. The store
    /// may then drop its log entries up to the snapshot's index: a node
    /// restarted on it skips them.
    PersistSnapshot(Snapshot),
    /// Replace the state machine's state with this snapshot's: it now
    /// reflects entries `1..=snapshot.index`, and the next
    /// [`Apply`](Output::Apply) is of the entry after it. Comes first after
    /// the start of a node that has a snapshot, and when a follower takes
    /// one from its leader.
    RestoreSnapshot(Snapshot),
    /// Apply this committed entry to the state machine. Entries arrive
    /// exactly once each, in index order, starting after every start of
    /// the node at index 1, or after the snapshot it restored: a restarted
    /// node applies its log again from there, so the state machine is
    /// rebuilt (or skips what it has).
    Apply(Entry),
    /// Deliver `message` to peer `to`. Delivery may fail, be delayed,
    /// duplicated or reordered: Raft tolerates all of these.
    Send {
        /// The peer to deliver to.
        to: NodeId,
        /// The message.
        message: Message,
    },
    /// Arm the node's single timer for `deadline`, replacing any earlier
    /// deadline; when the caller's clock reaches it, hand the node
    /// [`Input::Timer`](crate::Input::Timer). Firing early, late or twice is
    /// harmless: the node checks its own deadlines and re-arms.
    SetTimer {
        /// When to fire, on the caller's clock.
        deadline: Instant,
    },
    /// Every read this node handed a round up to `round` (see
    /// [`Handled::ReadQueued`](crate::Handled::ReadQueued)) may now be
    /// served from the state machine: the node confirmed it still led after
    /// those reads arrived, and entries up to `index`, which include every
    /// entry committed before they arrived, are applied by the outputs
    /// before this one. A state machine read then is linearizable.
    ReadReady {
        /// The last round served.
        round: u64,
        /// The read index: the state machine reflects at least the entries
        /// up to here.
        index: LogIndex,
    },
    /// The node stopped leading before the reads of rounds up to `round`
    /// could be served: they fail, and may be retried on the new leader.
    ReadsFailed {
        /// The last round that fails.
        round: u64,
    },
    /// The node's role, term or known leader changed. Informational: the
    /// node has already acted on it.
    RoleChanged {
        /// The new role.
        role: Role,
        /// The current term.
        term: Term,
        /// The leader of `term`, when known (the node itself when it leads).
        leader: Option<NodeId>,
    },
}

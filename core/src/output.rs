//! What the core asks its caller to do.

use crate::entry::{Entry, Snapshot};
use crate::message::Message;
use crate::persist::Persist;
use crate::role::Role;
use crate::time::Instant;
use crate::types::{LogIndex, NodeId, Term};

/// One action the caller must perform.
///
/// # Ordering rule
///
/// Perform the outputs of a node **in the order they are drained**. In
/// particular every [`Persist`](Output::Persist) must be durable before any
/// [`Send`](Output::Send), [`Apply`](Output::Apply),
/// [`InstallSnapshot`](Output::InstallSnapshot),
/// [`ReadReady`](Output::ReadReady) or [`ReadsFailed`](Output::ReadsFailed)
/// drained after it is performed: a vote, a term or an entry that reaches a
/// peer or the state machine must survive a crash of this node. Persists
/// may be batched into one write (group commit) as long as that write
/// completes before the next of those. [`SetTimer`](Output::SetTimer) and
/// [`RoleChanged`](Output::RoleChanged) carry no ordering constraint.
///
/// # With asynchronous writes
///
/// With [`Config::asynchronous_writes`](crate::Config::asynchronous_writes)
/// the rule is narrower, so that a slow disk never holds up heartbeats,
/// votes or the state machine:
///
/// - Persists are still performed in the order drained, by one writer,
///   and every one that ends in a log entry or a snapshot is reported with
///   [`Input::Persisted`](crate::Input::Persisted) once durable (several
///   may be batched into one write and one report naming its last entry).
/// - A [`Send`](Output::Send) drained after a
///   [`Persist::HardState`](crate::Persist::HardState) waits until that
///   write is durable: a term or a vote must survive a crash before a peer
///   hears of it. (So does every later send, to keep each peer's messages
///   in order.)
/// - Everything else may be performed at once, ahead of log writes still
///   in flight: sends drained after a log write (the node never sends what
///   vouches for an unreported write), [`Apply`](Output::Apply) and
///   [`InstallSnapshot`](Output::InstallSnapshot) (entries a majority made
///   durable; a crash rebuilds the state machine from what this node had
///   durably), and read answers.
///
/// Outputs are never withdrawn: once drained, each must be performed (or the
/// node treated as crashed and rebuilt from what was persisted).
///
/// Deliberately not `#[non_exhaustive]`: a driver matches every variant, so
/// an output added in a later release fails to compile instead of being
/// dropped by a catch-all arm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Make this write durable (see [`PersistedState::apply`](crate::PersistedState::apply) for what it
    /// does) before performing any later send, apply, snapshot install or
    /// read answer. With
    /// [`Config::leader_persists_in_parallel`](crate::Config::leader_persists_in_parallel),
    /// report each [`Persist::Entries`] once it is durable with
    /// [`Input::Persisted`](crate::Input::Persisted) naming its last entry;
    /// a leader's appends of those entries may then come before it in the
    /// outputs.
    Persist(Persist),
    /// The node starts from this snapshot: its state machine must hold the
    /// state `snapshot.data` describes (entries `1..=snapshot.index`)
    /// before the first [`Apply`](Output::Apply), which is of the entry
    /// after it. Only ever the first output of a node built on a persisted
    /// snapshot; a state machine that keeps its own durable state may
    /// already hold it.
    RestoreSnapshot(Snapshot),
    /// The leader sent a snapshot that replaces the state machine's state:
    /// it now reflects entries `1..=snapshot.index`, and the next
    /// [`Apply`](Output::Apply) is of the entry after it. Proposals this
    /// node accepted up to that index are decided, but the node cannot say
    /// how: it never saw their entries applied.
    InstallSnapshot(Snapshot),
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

//! What a node is handed: the inputs of [`Node::handle`](crate::Node::handle)
//! and what it answers when it accepts one.

use bytes::Bytes;

use crate::message::Message;
use crate::types::{LogIndex, NodeId, Term};

/// One event for a node.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// A message from peer `from`.
    Message {
        /// The sender, as the transport authenticated it.
        from: NodeId,
        /// The message.
        message: Message,
    },
    /// The timer armed by the latest [`Output::SetTimer`](crate::Output::SetTimer) fired.
    Timer,
    /// A request from the local application.
    Command(Command),
    /// The caller made this node's log durable up to `index`, whose entry
    /// has `term`: send it after performing a `Persist::Entries` output,
    /// naming that output's last entry (or a `Persist::Snapshot`, naming
    /// the snapshot's last index and term). Needed (and heeded by the
    /// commit rule) with [`Config::leader_persists_in_parallel`](crate::Config::leader_persists_in_parallel),
    /// the default, and with [`Config::asynchronous_writes`](crate::Config::asynchronous_writes),
    /// where a follower acknowledges entries only once they are reported;
    /// a report about an entry the log no longer holds is ignored.
    Persisted {
        /// The last index made durable.
        index: LogIndex,
        /// The term of the entry at `index`.
        term: Term,
    },
    /// The caller could not deliver messages to `peer` because it is
    /// unreachable (its connection broke, or it is not running): whatever
    /// was in flight to it, a snapshot included, may be lost. A leader
    /// then probes the peer again from what it is known to hold, starting
    /// at its next heartbeat, and sends a snapshot it needs only once it
    /// answers, instead of waiting for answers that will not come or
    /// sending the whole snapshot to a peer that is down. Reporting it is
    /// optional (without it, a leader learns of a loss from the peer's
    /// later answers); do not report a message dropped from a full queue,
    /// which is back-pressure: it would pause a busy follower's stream
    /// until the next heartbeat. On any node but a leader, it changes
    /// nothing.
    Unreachable {
        /// The peer a message could not be delivered to.
        peer: NodeId,
    },
    /// The application captured its state machine as of applied entry
    /// `index` (at most [`Node::applied_index`](crate::Node::applied_index)), encoded as `data`. The
    /// node asks for it to be persisted
    /// ([`Persist::Snapshot`](crate::Persist::Snapshot)), sends it to followers that need
    /// entries it no longer holds, and drops its log entries up to
    /// `index` less [`Config::compaction_lag`](crate::Config::compaction_lag) (§7).
    SnapshotTaken {
        /// The last applied index the state covers.
        index: LogIndex,
        /// The state, in the application's encoding.
        data: Bytes,
    },
}

/// A request from the local application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Start an election now, as if the election timeout had elapsed
    /// (including the pre-vote round, when pre-vote is on).
    Campaign,
    /// Append this command to the replicated log (leader only). On
    /// success [`Node::handle`](crate::Node::handle) returns [`Handled::Proposed`] with the
    /// position the entry will have if it commits; an
    /// [`Output::Apply`](crate::Output::Apply) of that index and term means it did. The entry is
    /// sent to followers when the outputs are next drained, together with
    /// every other proposal handled before then. A `Vec<u8>` becomes
    /// [`Bytes`](bytes::Bytes) without copying: `Propose(vec.into())`.
    Propose(bytes::Bytes),
    /// Append a no-op entry (leader only), as [`Propose`](Command::Propose)
    /// does a command: once an [`Output::Apply`](crate::Output::Apply) of the returned index and
    /// term appears, every entry committed before this command was handled
    /// has been applied. That makes it a linearizable read point: a read
    /// of the state machine after the barrier is applied sees every write
    /// acknowledged before the barrier was asked for.
    Barrier,
    /// Ask for a linearizable read (leader only) without writing to the
    /// log: the ReadIndex protocol of the Raft dissertation, §6.4. On
    /// success [`Node::handle`](crate::Node::handle) returns [`Handled::ReadQueued`] with a
    /// round; once an [`Output::ReadReady`](crate::Output::ReadReady) of that round or a later one is
    /// drained (after the outputs before it are performed), a read of the
    /// state machine sees every write committed before this command was
    /// handled. [`Output::ReadsFailed`](crate::Output::ReadsFailed) of the round means the node stopped
    /// leading first. The leader confirms it still leads by one exchange
    /// with a majority per round, not per read: every read handled between
    /// two drains shares a round.
    Read,
    /// Change the cluster's configuration (leader only): see
    /// [`MembershipChange`](crate::MembershipChange). On success
    /// [`Node::handle`](crate::Node::handle) returns
    /// [`Handled::Proposed`] with the index of the membership entry, which
    /// is in force from now on and done once an
    /// [`Output::Apply`](crate::Output::Apply) of that index and term is
    /// drained; a joint change with `auto_leave` is left by a second entry
    /// that the leader appends by itself when the first commits. Refused
    /// with [`HandleError::Membership`](crate::HandleError::Membership)
    /// (changing nothing) while another change is pending, before the
    /// leader has committed an entry of its term, or when the change
    /// itself does not fit the configuration.
    ChangeMembership(crate::MembershipChange),
    /// Hand the leadership to voter `target` (leader only; dissertation
    /// §3.10). The leader stops taking proposals, brings the target up to
    /// date and tells it to campaign at once; the transfer is done when
    /// an [`Output::RoleChanged`](crate::Output::RoleChanged) shows this
    /// node following a new term's leader. If none is elected within
    /// [`Config::election_timeout_max`](crate::Config::election_timeout_max)
    /// the leader gives up and takes proposals again. Refused for the
    /// leader itself, a learner or a node not in the configuration.
    TransferLeadership(crate::NodeId),
}

/// What [`Node::handle`](crate::Node::handle) did with an accepted input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled {
    /// The input was handled; see the outputs.
    Done,
    /// A proposal was appended to the leader's log at `index` in `term`.
    /// It is committed once an [`Output::Apply`](crate::Output::Apply) with this index and term
    /// is drained; an entry of another term at this index means it was
    /// lost to a new leader.
    Proposed {
        /// The entry's index.
        index: LogIndex,
        /// The entry's term.
        term: Term,
    },
    /// A read joined read round `round`; see [`Command::Read`](crate::Command::Read).
    ReadQueued {
        /// The round to wait for in [`Output::ReadReady`](crate::Output::ReadReady).
        round: u64,
    },
}

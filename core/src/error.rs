//! Why a node refused to start or refused an input. Every refusal is a
//! value the caller can match on; none changes the node.

use core::fmt;

use crate::config::ConfigError;
use crate::log::LogError;
use crate::membership::MembershipError;
use crate::message::InvalidMessage;
use crate::types::{LogIndex, NodeId};

/// Why [`Node::new`](crate::Node::new) (or
/// [`Node::with_membership`](crate::Node::with_membership)) refused to
/// build a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration cannot work.
    Config(ConfigError),
    /// The same id appears twice in the voter set.
    DuplicateVoter(NodeId),
    /// The node's own id is not in the (non-empty) voter set it was asked
    /// to start a cluster with.
    NotAVoter(NodeId),
    /// The configuration a cluster was asked to start with is joint: a
    /// cluster starts with one voter set.
    JointBootstrap,
    /// The persisted membership entry at `index` cannot be decoded.
    InvalidMembership {
        /// Where the entry is in the log.
        index: LogIndex,
    },
    /// The persisted log cannot have been written by Raft.
    Log(LogError),
    /// The persisted log or snapshot holds an entry of a term above the
    /// persisted current term, so they come from different lives.
    LogTermAboveCurrentTerm,
    /// The persisted snapshot has index 0, index `u64::MAX` or term 0,
    /// which no node writes.
    InvalidSnapshot,
    /// The persisted current term is `u64::MAX`, which no node reaches
    /// (messages that carry it are refused).
    TermTooLarge,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(error) => write!(f, "invalid config: {error}"),
            StartError::DuplicateVoter(id) => write!(f, "voter {id} is listed twice"),
            StartError::NotAVoter(id) => write!(f, "node {id} is not in the voter set"),
            StartError::JointBootstrap => {
                f.write_str("a cluster cannot start in a joint configuration")
            }
            StartError::InvalidMembership { index } => {
                write!(
                    f,
                    "the persisted membership entry at index {index} is corrupt"
                )
            }
            StartError::Log(error) => write!(f, "invalid persisted log: {error}"),
            StartError::LogTermAboveCurrentTerm => {
                f.write_str("the persisted log has a term above the persisted current term")
            }
            StartError::InvalidSnapshot => {
                f.write_str("the persisted snapshot has index 0, index u64::MAX or term 0")
            }
            StartError::TermTooLarge => {
                f.write_str("the persisted term is u64::MAX, which no node reaches")
            }
        }
    }
}

impl core::error::Error for StartError {}

/// Why [`Node::handle`](crate::Node::handle) refused an input. A refused input changed nothing
/// and produced no outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandleError {
    /// A peer's message was dropped; it is also counted in
    /// [`NodeStats::messages_dropped`](crate::NodeStats::messages_dropped). Worth a log line, never fatal.
    Dropped(DropReason),
    /// [`Command::Campaign`](crate::Command::Campaign) was given to the leader.
    AlreadyLeader,
    /// [`Command::Campaign`](crate::Command::Campaign) was given to a node
    /// that does not vote (a learner, or a node not in the configuration).
    NotAVoter,
    /// [`Command::Campaign`](crate::Command::Campaign) was given to a node
    /// that lost part of its log and has not yet caught up (see
    /// [`HardState::log_lost_at_term`](crate::HardState::log_lost_at_term)).
    Recovering,
    /// A membership change was refused, for the reason given.
    Membership(MembershipError),
    /// The leader is handing its leadership to `target` (see
    /// [`Command::TransferLeadership`](crate::Command::TransferLeadership)):
    /// it takes no proposal, membership change or other transfer until the
    /// transfer ends (the target's election, or an election timeout).
    TransferInProgress {
        /// The node the leadership is going to.
        target: NodeId,
    },
    /// A leadership transfer was refused, for the reason given.
    TransferRefused(TransferError),
    /// A proposal was given to a node that is not the leader.
    NotLeader {
        /// The leader this node knows of, if any: retry there.
        leader_hint: Option<NodeId>,
    },
    /// A proposal was refused because the leader already holds
    /// [`Config::max_uncommitted_bytes`](crate::Config::max_uncommitted_bytes) of entries not yet
    /// committed or not yet written on its own disk; retry once earlier
    /// proposals settle.
    TooManyUncommittedBytes,
    /// [`Input::SnapshotTaken`](crate::Input::SnapshotTaken) named an index not yet applied.
    SnapshotBeyondApplied {
        /// The highest index applied so far.
        applied_index: LogIndex,
    },
    /// [`Input::SnapshotTaken`](crate::Input::SnapshotTaken) named an index the node's snapshot already
    /// covers.
    SnapshotNotNewer {
        /// The index of the node's current snapshot.
        snapshot_index: LogIndex,
    },
}

/// Why a leadership transfer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferError {
    /// The target is the leader itself.
    ToSelf,
    /// The target does not vote (a learner, or not a member): it could
    /// not be elected.
    NotAVoter(NodeId),
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferError::ToSelf => f.write_str("this node already leads"),
            TransferError::NotAVoter(id) => write!(f, "node {id} does not vote, so it cannot lead"),
        }
    }
}

impl core::error::Error for TransferError {}

/// Why a peer's message was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// The message claims to come from this node itself.
    FromSelf,
    /// A field is nonsensical.
    Invalid(InvalidMessage),
    /// An AppendEntries of the current term from a node other than the
    /// leader already known for this term (or received by that leader):
    /// two leaders in one term, which a correct cluster never has.
    ConflictingLeader,
    /// An AppendEntries that would overwrite a committed entry, which no
    /// correct leader sends.
    OverwritesCommitted,
    /// A response that claims to hold entries the leader never had.
    BeyondLeaderLog,
    /// A leadership check's answer for a read round this node never
    /// started.
    UnsentReadRound,
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandleError::Dropped(DropReason::FromSelf) => {
                f.write_str("dropped a message that claims to come from this node")
            }
            HandleError::Dropped(DropReason::Invalid(why)) => {
                write!(f, "dropped an invalid message: {why}")
            }
            HandleError::Dropped(DropReason::ConflictingLeader) => {
                f.write_str("dropped an append from a second leader of the current term")
            }
            HandleError::Dropped(DropReason::OverwritesCommitted) => {
                f.write_str("dropped an append that would overwrite committed entries")
            }
            HandleError::Dropped(DropReason::BeyondLeaderLog) => {
                f.write_str("dropped a response that matches entries this leader does not have")
            }
            HandleError::Dropped(DropReason::UnsentReadRound) => {
                f.write_str("dropped an answer to a leadership check this node never sent")
            }
            HandleError::AlreadyLeader => f.write_str("this node is already the leader"),
            HandleError::NotAVoter => f.write_str("this node does not vote"),
            HandleError::Recovering => f.write_str(
                "this node lost part of its log and does not campaign until it has caught up",
            ),
            HandleError::Membership(error) => write!(f, "membership change refused: {error}"),
            HandleError::TransferInProgress { target } => {
                write!(
                    f,
                    "the leadership is being handed to node {target}; retry shortly"
                )
            }
            HandleError::TransferRefused(error) => error.fmt(f),
            HandleError::NotLeader {
                leader_hint: Some(leader),
            } => write!(f, "not the leader; node {leader} is"),
            HandleError::NotLeader { leader_hint: None } => {
                f.write_str("not the leader, and no leader is known")
            }
            HandleError::TooManyUncommittedBytes => {
                f.write_str("too many uncommitted bytes; retry when earlier proposals commit")
            }
            HandleError::SnapshotBeyondApplied { applied_index } => write!(
                f,
                "a snapshot must cover applied entries only; {applied_index} is the last applied"
            ),
            HandleError::SnapshotNotNewer { snapshot_index } => write!(
                f,
                "the node already has a snapshot through index {snapshot_index}"
            ),
        }
    }
}

impl core::error::Error for HandleError {}

impl From<MembershipError> for HandleError {
    fn from(error: MembershipError) -> Self {
        HandleError::Membership(error)
    }
}

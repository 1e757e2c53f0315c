//! Every error the driver reports, as enums a caller can match on.

use std::io;
use std::net::SocketAddr;

use kontiki::NodeId;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The node's own id is listed among its peers.
    #[error("invalid node configuration: node {0} is listed among its own peers")]
    SelfAmongPeers(NodeId),
    /// A node with this id is already running on the same
    /// [`LocalNetwork`](crate::LocalNetwork).
    #[error("node {0} is already running on this network")]
    AlreadyRunning(NodeId),
    /// The core refused the configuration or the persisted state.
    #[error("cannot start the Raft core: {0}")]
    Core(#[from] kontiki::StartError),
    /// The transport's limits contradict each other (see
    /// [`TransportConfig`](crate::TransportConfig)).
    #[error("invalid transport configuration: {0}")]
    Transport(&'static str),
    /// The node's [`PeerTls`](crate::PeerTls) was loaded for another node.
    #[error("node {node} was given the TLS material of node {certified}")]
    TlsForAnotherNode {
        /// This node.
        node: NodeId,
        /// The node the material is for.
        certified: NodeId,
    },
    /// Reading the persisted state failed.
    #[error("cannot read the persisted state: {0}")]
    Storage(#[source] io::Error),
    /// The peer address could not be bound.
    #[error("cannot listen on {address}: {error}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        error: io::Error,
    },
}

/// Why a proposal did not succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProposeError {
    /// This node does not lead; `leader` is the one it knows, if any.
    #[error("not the leader; {}", known_leader(*.leader))]
    NotLeader {
        /// The leader this node knows.
        leader: Option<NodeId>,
    },
    /// Too many proposed bytes are not yet committed; try again later.
    #[error("too many uncommitted proposals; try again")]
    Busy,
    /// The entry was overwritten by a new leader's log: it did not commit.
    #[error("the entry was overwritten by a new leader")]
    Superseded,
    /// The node stopped before the outcome was known.
    #[error("the node stopped")]
    Stopped,
    /// The node took a leader's snapshot that covers the entry, so it
    /// cannot tell whether this entry or another one committed there.
    #[error("a snapshot covers the entry; whether it committed is unknown")]
    OutcomeUnknown,
}

/// Why a read barrier did not succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// This node does not lead, or stopped leading before the read could
    /// be served; `leader` is the one it knows, if any.
    #[error("not the leader; {}", known_leader(*.leader))]
    NotLeader {
        /// The leader this node knows.
        leader: Option<NodeId>,
    },
    /// The node stopped before the read was served.
    #[error("the node stopped")]
    Stopped,
}

/// A failed read is also a reason a proposal could fail, for callers that
/// answer both the same way.
impl From<ReadError> for ProposeError {
    fn from(error: ReadError) -> ProposeError {
        match error {
            ReadError::NotLeader { leader } => ProposeError::NotLeader { leader },
            ReadError::Stopped => ProposeError::Stopped,
        }
    }
}

/// Why a membership change did not succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeError {
    /// This node does not lead; `leader` is the one it knows, if any.
    #[error("not the leader; {}", known_leader(*.leader))]
    NotLeader {
        /// The leader this node knows.
        leader: Option<NodeId>,
    },
    /// The leader refused the change, for the reason given; nothing
    /// changed.
    #[error("{0}")]
    Refused(kontiki::MembershipError),
    /// The leader is handing its leadership to `target`; ask the new
    /// leader.
    #[error("the leadership is being handed to node {target}")]
    TransferInProgress {
        /// The node the leadership is going to.
        target: NodeId,
    },
    /// The change's entry was overwritten by a new leader: it did not
    /// happen.
    #[error("the change was overwritten by a new leader")]
    Superseded,
    /// The node took a leader's snapshot that covers the change's entry,
    /// so it cannot tell whether the change committed; the configuration
    /// in [`Status::members`](crate::Status::members) tells.
    #[error("a snapshot covers the change; whether it committed is unknown")]
    OutcomeUnknown,
    /// The node stopped before the outcome was known.
    #[error("the node stopped")]
    Stopped,
}

impl ChangeError {
    /// Whether the same change may succeed if asked again shortly, as it
    /// is: the leader was handing over, the entry was overwritten, another
    /// change is still pending, the leader has not yet committed an entry
    /// of its term, or the learner to promote is still catching up. Ask
    /// the leader again (after [`ChangeError::NotLeader`], the one it
    /// names).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ChangeError::TransferInProgress { .. }
                | ChangeError::Superseded
                | ChangeError::Refused(
                    kontiki::MembershipError::LearnerBehind { .. }
                        | kontiki::MembershipError::ChangePending { .. }
                        | kontiki::MembershipError::LeaderNotSettled,
                )
        )
    }
}

impl From<ProposeError> for ChangeError {
    fn from(error: ProposeError) -> ChangeError {
        match error {
            ProposeError::NotLeader { leader } => ChangeError::NotLeader { leader },
            // A change is not refused for the leader's backlog; should it
            // be, the caller retries as for a proposal overwritten.
            ProposeError::Busy | ProposeError::Superseded => ChangeError::Superseded,
            ProposeError::Stopped => ChangeError::Stopped,
            ProposeError::OutcomeUnknown => ChangeError::OutcomeUnknown,
        }
    }
}

/// Why a leadership transfer did not succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// This node does not lead; `leader` is the one it knows, if any.
    #[error("not the leader; {}", known_leader(*.leader))]
    NotLeader {
        /// The leader this node knows.
        leader: Option<NodeId>,
    },
    /// The leader refused: the target is itself, a learner or not a
    /// member.
    #[error("{0}")]
    Refused(kontiki::TransferError),
    /// Another transfer, to `target`, is under way.
    #[error("the leadership is already being handed to node {target}")]
    InProgress {
        /// The node the leadership is going to.
        target: NodeId,
    },
    /// The target was not elected within an election timeout; this node
    /// went back to leading (or no leader is known).
    #[error("the target was not elected in time; the transfer was abandoned")]
    Abandoned,
    /// Another node than the target was elected.
    #[error("node {leader} was elected instead of the target")]
    OtherLeader {
        /// The node elected.
        leader: NodeId,
    },
    /// The node stopped before the outcome was known.
    #[error("the node stopped")]
    Stopped,
}

fn known_leader(leader: Option<NodeId>) -> String {
    match leader {
        Some(leader) => format!("node {leader} leads"),
        None => String::from("no leader known"),
    }
}

/// Why a peer connection's handshake failed; the text is what gets logged
/// and, when this node refuses a peer, what the peer is told.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HandshakeError {
    #[error("refused by the peer: {0}")]
    RefusedByPeer(String),
    #[error("not a kontiki peer (bad magic)")]
    BadMagic,
    #[error("truncated handshake")]
    Truncated,
    #[error("malformed handshake (bytes after the address)")]
    TrailingBytes,
    #[error("malformed handshake (the address is not a socket address)")]
    BadAddress,
    #[error("cluster id is not UTF-8")]
    ClusterIdNotUtf8,
    #[error("unsupported protocol version {found} (this node speaks {speaks})")]
    UnsupportedVersion { found: u8, speaks: u8 },
    #[error("peer belongs to cluster {found:?}, this node to {expected:?}")]
    OtherCluster { found: String, expected: String },
    #[error("the peer claims this node's own id ({0})")]
    OwnId(NodeId),
    #[error("expected node {expected} at {address}, found node {found}")]
    UnexpectedNode {
        expected: NodeId,
        found: NodeId,
        address: SocketAddr,
    },
    #[error("the peer's certificate is not for node {0}, which it claims to be")]
    NotCertified(NodeId),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    NoPlace(#[from] NoPlace),
    #[error("peer closed the connection during the handshake")]
    ClosedEarly,
    #[error("no handshake within the timeout")]
    TimedOut,
    #[error("{0}")]
    Io(String),
}

/// Why a connection that finished its handshake has no place.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NoPlace {
    /// The established places are full.
    #[error("too many peer connections (limit {limit})")]
    Full {
        /// The limit.
        limit: usize,
    },
    /// Newer connections took its pending place first.
    #[error("displaced by newer connections during the handshake")]
    Displaced,
}

impl HandshakeError {
    /// A short name for the kind of refusal: the `reason` label of the
    /// refused-connections metric.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            HandshakeError::RefusedByPeer(_) => "refused_by_peer",
            HandshakeError::BadMagic
            | HandshakeError::Truncated
            | HandshakeError::TrailingBytes
            | HandshakeError::BadAddress
            | HandshakeError::ClusterIdNotUtf8 => "malformed",
            HandshakeError::UnsupportedVersion { .. } => "version",
            HandshakeError::OtherCluster { .. } => "other_cluster",
            HandshakeError::OwnId(_) | HandshakeError::UnexpectedNode { .. } => "wrong_node",
            HandshakeError::NotCertified(_) => "not_certified",
            HandshakeError::Tls(_) => "tls",
            HandshakeError::NoPlace(NoPlace::Full { .. }) => "full",
            HandshakeError::NoPlace(NoPlace::Displaced) => "displaced",
            HandshakeError::ClosedEarly => "closed_early",
            HandshakeError::TimedOut => "timed_out",
            HandshakeError::Io(_) => "io",
        }
    }

    /// A TLS handshake that failed: a bad certificate, plaintext or
    /// garbage where TLS was expected.
    pub(crate) fn tls(error: io::Error) -> HandshakeError {
        HandshakeError::Tls(error.to_string())
    }
}

impl From<io::Error> for HandshakeError {
    fn from(error: io::Error) -> HandshakeError {
        HandshakeError::Io(error.to_string())
    }
}

/// `error` with `context` in front of its message, keeping its kind.
pub(crate) fn annotate(error: io::Error, context: impl std::fmt::Display) -> io::Error {
    io::Error::new(error.kind(), format!("{context}: {error}"))
}

#[cfg(test)]
mod tests {
    use kontiki::MembershipError;

    use super::*;

    #[test]
    fn only_refusals_that_pass_by_themselves_are_transient() {
        let transient = [
            ChangeError::Superseded,
            ChangeError::TransferInProgress { target: NodeId(2) },
            ChangeError::Refused(MembershipError::LeaderNotSettled),
            ChangeError::Refused(MembershipError::ChangePending {
                index: kontiki::LogIndex(3),
            }),
        ];
        assert!(transient.iter().all(ChangeError::is_transient));
        let lasting = [
            ChangeError::NotLeader { leader: None },
            ChangeError::Stopped,
            ChangeError::OutcomeUnknown,
            ChangeError::Refused(MembershipError::NotAMember(NodeId(9))),
            ChangeError::Refused(MembershipError::NoVoters),
        ];
        assert!(!lasting.iter().any(ChangeError::is_transient));
    }
}

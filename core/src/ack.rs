//! What a follower owes its leader: a success answer held back until the
//! write it vouches for is reported durable (see `durability.rs`).

use crate::types::{LogIndex, NodeId, Term};

/// A success a follower owes its leader once its log is durable through
/// `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PendingAck {
    /// The leader that sent what is acknowledged.
    pub(crate) leader: NodeId,
    /// The term it led: an answer in a later term would vouch for a log
    /// the new leader may not share.
    pub(crate) term: Term,
    /// The last index the follower's log matches the leader's through.
    pub(crate) index: LogIndex,
}

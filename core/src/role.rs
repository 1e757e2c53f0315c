//! Per-role state. Each role carries exactly the data it needs, so a
//! follower cannot hold stale vote tallies nor a candidate stale progress.

use alloc::vec::Vec;

use crate::output::Role;
use crate::quorum::{vote_outcome, VoteOutcome};
use crate::time::Instant;
use crate::types::{LogIndex, NodeId};

/// The votes an election has received so far.
///
/// Invariant: at most one answer per voter (a duplicated or repeated
/// answer overwrites the first, so it cannot be counted twice). Clusters
/// are small, so a list beats a map in both code size and speed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct VoteTally {
    answers: Vec<(NodeId, bool)>,
}

impl VoteTally {
    /// Records `voter`'s answer and returns the election's outcome among
    /// `voter_count` voters.
    pub(crate) fn record(
        &mut self,
        voter: NodeId,
        granted: bool,
        voter_count: usize,
    ) -> VoteOutcome {
        match self.answers.iter_mut().find(|(id, _)| *id == voter) {
            Some(answer) => answer.1 = granted,
            None => self.answers.push((voter, granted)),
        }
        let granted_count = self.answers.iter().filter(|(_, granted)| *granted).count();
        vote_outcome(
            voter_count,
            granted_count,
            self.answers.len() - granted_count,
        )
    }
}

/// What a leader tracks about one follower.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Progress {
    /// When the follower last answered in the leader's term; the leader's
    /// election counts as an answer. Invariant: never in the future.
    pub(crate) last_contact_at: Instant,
    /// Highest index known to be replicated on the follower.
    /// Invariant: `match_index < next_index`.
    pub(crate) match_index: LogIndex,
    /// The next index to send.
    pub(crate) next_index: LogIndex,
    /// When `match_index` last advanced (or the follower became caught up).
    pub(crate) last_progress_at: Instant,
    /// The highest read round whose leadership check the follower answered
    /// in the leader's term.
    pub(crate) read_round_seen: u64,
    pub(crate) state: ReplicationState,
}

/// How a leader sends to one follower (the flow-control state machine).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ReplicationState {
    /// Where the follower's log matches is not known: send one append at
    /// a time from `next_index` and wait for its answer.
    Probe {
        /// An append is outstanding; send no other until it is answered
        /// or the next heartbeat.
        paused: bool,
    },
    /// The follower matches up to `match_index`: stream appends without
    /// waiting, up to the in-flight limit.
    Replicate {
        /// Appends sent and not yet answered.
        in_flight: usize,
    },
    /// The follower needs entries the leader compacted away: it was sent
    /// the snapshot through `index`, and nothing else is sent until it
    /// answers (or the snapshot is sent again, after an election timeout).
    Snapshot {
        /// The index of the snapshot sent.
        index: LogIndex,
        /// When it was sent.
        sent_at: Instant,
    },
}

impl Progress {
    /// A follower about which nothing is known yet, probed from
    /// `next_index`.
    pub(crate) fn new(now: Instant, next_index: LogIndex) -> Progress {
        Progress {
            last_contact_at: now,
            match_index: LogIndex(0),
            next_index,
            last_progress_at: now,
            read_round_seen: 0,
            state: ReplicationState::Probe { paused: false },
        }
    }
}

/// A node's role together with the data only that role has.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum RoleState {
    Follower {
        /// The leader of the current term, once heard from.
        leader: Option<NodeId>,
    },
    PreCandidate {
        votes: VoteTally,
    },
    /// Votes of a candidate live in `Node::election_votes`: they belong
    /// to the term, and outlast a return to pre-voting within it.
    Candidate,
    Leader {
        /// One entry per peer (every voter but the leader), sorted by id.
        followers: Vec<(NodeId, Progress)>,
    },
}

/// Finds `id`'s progress in a leader's id-sorted follower list.
pub(crate) fn progress_of(
    followers: &mut [(NodeId, Progress)],
    id: NodeId,
) -> Option<&mut Progress> {
    let position = followers
        .binary_search_by_key(&id, |(follower, _)| *follower)
        .ok()?;
    Some(&mut followers[position].1)
}

impl RoleState {
    pub(crate) fn role(&self) -> Role {
        match self {
            RoleState::Follower { .. } => Role::Follower,
            RoleState::PreCandidate { .. } => Role::PreCandidate,
            RoleState::Candidate => Role::Candidate,
            RoleState::Leader { .. } => Role::Leader,
        }
    }
}

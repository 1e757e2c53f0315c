//! Per-role state. Each role carries exactly the data it needs, so a
//! follower cannot hold stale vote tallies nor a candidate stale progress.

use alloc::vec::Vec;

use crate::output::Role;
use crate::quorum::{vote_outcome, VoteOutcome};
use crate::time::Instant;
use crate::types::NodeId;

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
    Candidate {
        votes: VoteTally,
    },
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
            RoleState::Candidate { .. } => Role::Candidate,
            RoleState::Leader { .. } => Role::Leader,
        }
    }
}

//! Per-role state. Each role carries exactly the data it needs, so a
//! follower cannot hold stale vote tallies nor a candidate stale progress.

use alloc::vec::Vec;
use core::fmt;

use crate::quorum::{vote_outcome, JointConfig, VoteOutcome};
use crate::time::Instant;
use crate::tracker::ProgressTracker;
use crate::types::NodeId;

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
    /// Records `voter`'s answer and returns the election's outcome in
    /// `voters`.
    pub(crate) fn record(
        &mut self,
        voter: NodeId,
        granted: bool,
        voters: &JointConfig,
    ) -> VoteOutcome {
        debug_assert!(voters.contains(voter), "only voters' answers are counted");
        match self.answers.iter_mut().find(|(id, _)| *id == voter) {
            Some(answer) => answer.1 = granted,
            None => self.answers.push((voter, granted)),
        }
        debug_assert!(self.answers.len() <= voters.all_voters().len());
        if !voters.is_joint() {
            // One voter set, and only its members answer: count directly.
            let granted = self.answers.iter().filter(|(_, granted)| *granted).count();
            let rejected = self.answers.len() - granted;
            return vote_outcome(voters.all_voters().len(), granted, rejected);
        }
        voters.vote_result(|id| self.vote_of(id))
    }

    /// `voter`'s answer, if it gave one.
    fn vote_of(&self, voter: NodeId) -> Option<bool> {
        self.answers
            .iter()
            .find(|(id, _)| *id == voter)
            .map(|&(_, granted)| granted)
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
        /// What the leader knows of every other voter.
        progress: ProgressTracker,
    },
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

/// A transfer under way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct LeadershipTransfer {
    /// The voter the leadership goes to.
    pub(crate) target: NodeId,
    /// When the leader gives up.
    pub(crate) deadline: Instant,
    /// `TimeoutNow` went out: the target had the whole log.
    pub(crate) timeout_sent: bool,
}

//! Quorum arithmetic: pure functions over counts, and the two shapes of
//! voter configuration Raft decides by — one voter set decided by
//! majority, and a joint configuration of two (dissertation §4.3), where a
//! decision needs a majority of each.
//!
//! Nothing here knows about roles or messages: callers say what each
//! voter holds (a match index, a vote, a recent answer) through a closure,
//! and get the configuration's verdict.

use alloc::vec::Vec;

use crate::types::{LogIndex, NodeId};

/// The smallest number of voters that forms a majority of `voter_count`.
#[must_use]
pub const fn majority(voter_count: usize) -> usize {
    voter_count / 2 + 1
}

/// Where an election stands once some votes are in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteOutcome {
    /// A majority granted.
    Won,
    /// So many refused that a majority can no longer grant.
    Lost,
    /// Neither yet.
    Pending,
}

/// The outcome of an election among `voter_count` voters with `granted`
/// votes for and `rejected` against. Voters not counted have not answered.
#[must_use]
pub const fn vote_outcome(voter_count: usize, granted: usize, rejected: usize) -> VoteOutcome {
    debug_assert!(granted + rejected <= voter_count);
    let needed = majority(voter_count);
    if granted >= needed {
        VoteOutcome::Won
    } else if voter_count.saturating_sub(rejected) < needed {
        VoteOutcome::Lost
    } else {
        VoteOutcome::Pending
    }
}

/// The highest index stored on a majority, given each voter's highest
/// stored index in `match_indices` (reordered in place).
#[must_use]
pub fn majority_match_index(match_indices: &mut [LogIndex]) -> LogIndex {
    if match_indices.is_empty() {
        return LogIndex(0);
    }
    // Insertion sort, highest first. Voter sets are a handful of nodes, for
    // which it is as fast as the standard library's sort, and it is a few
    // dozen bytes of code where `sort_unstable` costs about 5 KB of flash
    // on a Cortex-M (measured with examples/cortex-m3/sizes.sh).
    for sorted in 1..match_indices.len() {
        let mut position = sorted;
        while position > 0 && match_indices[position - 1] < match_indices[position] {
            match_indices.swap(position - 1, position);
            position -= 1;
        }
    }
    debug_assert!(match_indices.windows(2).all(|pair| pair[0] >= pair[1]));
    match_indices[majority(match_indices.len()) - 1]
}

/// Checks that `ids` is sorted without duplicates, the form every voter set
/// is kept in (so that membership is a binary search).
pub(crate) fn is_sorted_set(ids: &[NodeId]) -> bool {
    ids.windows(2).all(|pair| pair[0] < pair[1])
}

/// One set of voters, decided by majority.
///
/// Invariant: sorted, without duplicates. An empty set takes part in no
/// decision: it agrees to everything, so that a joint configuration whose
/// outgoing half is empty behaves as its incoming half alone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct MajorityConfig {
    voters: Vec<NodeId>,
}

impl MajorityConfig {
    /// A voter set of `voters`, which must be sorted without duplicates.
    pub(crate) fn new(voters: Vec<NodeId>) -> MajorityConfig {
        assert!(is_sorted_set(&voters), "a voter set is sorted and unique");
        MajorityConfig { voters }
    }

    /// The voters, sorted.
    pub(crate) fn voters(&self) -> &[NodeId] {
        &self.voters
    }

    /// The highest index a majority holds, given what each voter holds;
    /// `LogIndex::MAX` for an empty set (it constrains nothing). `scratch`
    /// is reused so that the computation allocates nothing once warm.
    pub(crate) fn committed_index(
        &self,
        mut match_of: impl FnMut(NodeId) -> LogIndex,
        scratch: &mut Vec<LogIndex>,
    ) -> LogIndex {
        if self.voters.is_empty() {
            return LogIndex::MAX;
        }
        scratch.clear();
        scratch.extend(self.voters.iter().map(|&voter| match_of(voter)));
        let committed = majority_match_index(scratch);
        debug_assert!(
            scratch.iter().filter(|&&held| held >= committed).count()
                >= majority(self.voters.len())
        );
        committed
    }

    /// The outcome of a vote in which `vote_of` gives each voter's answer
    /// (`None`: not answered yet). An empty set has won.
    pub(crate) fn vote_result(
        &self,
        mut vote_of: impl FnMut(NodeId) -> Option<bool>,
    ) -> VoteOutcome {
        if self.voters.is_empty() {
            return VoteOutcome::Won;
        }
        let (mut granted, mut rejected) = (0, 0);
        for &voter in &self.voters {
            match vote_of(voter) {
                Some(true) => granted += 1,
                Some(false) => rejected += 1,
                None => {}
            }
        }
        vote_outcome(self.voters.len(), granted, rejected)
    }

    /// Whether the voters for which `agrees` holds form a majority (always,
    /// for an empty set).
    pub(crate) fn has_quorum(&self, mut agrees: impl FnMut(NodeId) -> bool) -> bool {
        self.vote_result(|voter| Some(agrees(voter))) == VoteOutcome::Won
    }
}

/// The voters a node counts: one voter set, or while a membership change
/// is under way a joint configuration of the incoming and the outgoing set,
/// in which every decision needs a majority of each (dissertation §4.3).
///
/// The incoming set is empty only for a node that has no configuration
/// yet (it waits to be added to a cluster): such a node decides nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct JointConfig {
    incoming: MajorityConfig,
    /// Empty unless the configuration is joint.
    outgoing: MajorityConfig,
    /// While joint, the sorted union of both sets; empty otherwise, when
    /// the incoming set is every voter (which saves a node an allocation).
    joint_voters: Vec<NodeId>,
}

impl JointConfig {
    /// A joint configuration of `incoming` and `outgoing` (which may be
    /// empty: then it is `incoming` alone).
    pub(crate) fn new(incoming: MajorityConfig, outgoing: MajorityConfig) -> JointConfig {
        debug_assert!(
            !incoming.voters().is_empty() || outgoing.voters().is_empty(),
            "a joint configuration has an incoming half"
        );
        if outgoing.voters().is_empty() {
            // Not joint: `all_voters` is the incoming set itself.
            return JointConfig {
                incoming,
                outgoing,
                joint_voters: Vec::new(),
            };
        }
        let mut all = Vec::with_capacity(incoming.voters().len() + outgoing.voters().len());
        let (mut a, mut b) = (incoming.voters(), outgoing.voters());
        // A merge of two sorted sets, keeping one of each shared id.
        while let (Some(&x), Some(&y)) = (a.first(), b.first()) {
            all.push(x.min(y));
            if x <= y {
                a = &a[1..];
            }
            if y <= x {
                b = &b[1..];
            }
        }
        all.extend_from_slice(a);
        all.extend_from_slice(b);
        debug_assert!(is_sorted_set(&all));
        JointConfig {
            incoming,
            outgoing,
            joint_voters: all,
        }
    }

    /// A configuration of one voter set (not joint).
    #[cfg(test)]
    pub(crate) fn simple(voters: MajorityConfig) -> JointConfig {
        JointConfig::new(voters, MajorityConfig::default())
    }

    /// The incoming and the outgoing voter set.
    pub(crate) fn halves(&self) -> (&[NodeId], &[NodeId]) {
        (self.incoming.voters(), self.outgoing.voters())
    }

    /// Whether a membership change is under way (two voter sets decide).
    pub(crate) fn is_joint(&self) -> bool {
        !self.outgoing.voters().is_empty()
    }

    /// Every voter of either half, sorted and without duplicates.
    pub(crate) fn all_voters(&self) -> &[NodeId] {
        if !self.is_joint() {
            self.incoming.voters()
        } else {
            &self.joint_voters
        }
    }

    /// The only voter, if the configuration is a single node (which needs
    /// no one else to elect it or to commit).
    pub(crate) fn sole_voter(&self) -> Option<NodeId> {
        match self.all_voters() {
            [only] => Some(*only),
            _ => None,
        }
    }

    /// Whether `id` votes in either half.
    pub(crate) fn contains(&self, id: NodeId) -> bool {
        self.all_voters().binary_search(&id).is_ok()
    }

    /// The highest index a majority of each half holds.
    pub(crate) fn committed_index(
        &self,
        mut match_of: impl FnMut(NodeId) -> LogIndex,
        scratch: &mut Vec<LogIndex>,
    ) -> LogIndex {
        let incoming = self.incoming.committed_index(&mut match_of, scratch);
        let outgoing = self.outgoing.committed_index(&mut match_of, scratch);
        let committed = incoming.min(outgoing);
        debug_assert!(
            committed != LogIndex::MAX,
            "only a node with voters counts commitment"
        );
        committed
    }

    /// The outcome of a vote: won when both halves won, lost when either
    /// lost.
    pub(crate) fn vote_result(
        &self,
        mut vote_of: impl FnMut(NodeId) -> Option<bool>,
    ) -> VoteOutcome {
        match (
            self.incoming.vote_result(&mut vote_of),
            self.outgoing.vote_result(&mut vote_of),
        ) {
            (VoteOutcome::Won, VoteOutcome::Won) => VoteOutcome::Won,
            (VoteOutcome::Lost, _) | (_, VoteOutcome::Lost) => VoteOutcome::Lost,
            _ => VoteOutcome::Pending,
        }
    }

    /// Whether the voters for which `agrees` holds form a majority of each
    /// half.
    pub(crate) fn has_quorum(&self, mut agrees: impl FnMut(NodeId) -> bool) -> bool {
        self.incoming.has_quorum(&mut agrees) && self.outgoing.has_quorum(&mut agrees)
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;

    fn ids(raw: &[u64]) -> MajorityConfig {
        MajorityConfig::new(raw.iter().map(|&id| NodeId(id)).collect())
    }

    #[test]
    fn the_majority_match_index_is_the_median_from_the_top() {
        let mut three = [LogIndex(5), LogIndex(9), LogIndex(7)];
        assert_eq!(majority_match_index(&mut three), LogIndex(7));
        let mut four = [LogIndex(1), LogIndex(4), LogIndex(3), LogIndex(2)];
        assert_eq!(majority_match_index(&mut four), LogIndex(2));
        let mut one = [LogIndex(3)];
        assert_eq!(majority_match_index(&mut one), LogIndex(3));
        let mut five = [
            LogIndex(2),
            LogIndex(8),
            LogIndex(8),
            LogIndex(1),
            LogIndex(5),
        ];
        assert_eq!(majority_match_index(&mut five), LogIndex(5));
        assert_eq!(five, [8, 8, 5, 2, 1].map(LogIndex));
    }

    #[test]
    fn majority_is_more_than_half() {
        assert_eq!(majority(1), 1);
        assert_eq!(majority(2), 2);
        assert_eq!(majority(3), 2);
        assert_eq!(majority(4), 3);
        assert_eq!(majority(5), 3);
        assert_eq!(majority(7), 4);
    }

    #[test]
    fn a_majority_of_grants_wins() {
        assert_eq!(vote_outcome(3, 2, 0), VoteOutcome::Won);
        assert_eq!(vote_outcome(5, 3, 2), VoteOutcome::Won);
        assert_eq!(vote_outcome(1, 1, 0), VoteOutcome::Won);
    }

    #[test]
    fn an_election_is_lost_once_a_majority_is_out_of_reach() {
        assert_eq!(vote_outcome(3, 1, 2), VoteOutcome::Lost);
        assert_eq!(vote_outcome(4, 2, 2), VoteOutcome::Lost);
        assert_eq!(vote_outcome(5, 1, 2), VoteOutcome::Pending);
        assert_eq!(vote_outcome(5, 1, 3), VoteOutcome::Lost);
    }

    #[test]
    fn with_missing_answers_the_outcome_is_pending() {
        assert_eq!(vote_outcome(3, 1, 0), VoteOutcome::Pending);
        assert_eq!(vote_outcome(5, 2, 1), VoteOutcome::Pending);
    }

    #[test]
    fn a_voter_set_commits_what_a_majority_of_it_holds() {
        let voters = ids(&[1, 2, 3]);
        let held = |id: NodeId| LogIndex([0, 9, 4, 7][id.get() as usize]);
        let mut scratch = Vec::new();
        assert_eq!(voters.committed_index(held, &mut scratch), LogIndex(7));
        assert_eq!(
            MajorityConfig::default().committed_index(held, &mut scratch),
            LogIndex::MAX
        );
    }

    #[test]
    fn a_joint_configuration_commits_only_what_both_halves_hold() {
        // Old {1, 2, 3} holds 7 on a majority; new {3, 4, 5} only 2.
        let held = |id: NodeId| LogIndex([0, 9, 7, 2, 1, 8][id.get() as usize]);
        let joint = JointConfig::new(ids(&[3, 4, 5]), ids(&[1, 2, 3]));
        let mut scratch = Vec::new();
        assert_eq!(joint.committed_index(held, &mut scratch), LogIndex(2));
        let simple = JointConfig::simple(ids(&[1, 2, 3]));
        assert_eq!(simple.committed_index(held, &mut scratch), LogIndex(7));
    }

    #[test]
    fn a_joint_election_needs_both_halves() {
        let joint = JointConfig::new(ids(&[1, 2, 3]), ids(&[3, 4, 5]));
        let granted = |yes: &'static [u64], no: &'static [u64]| {
            move |id: NodeId| {
                if yes.contains(&id.get()) {
                    Some(true)
                } else if no.contains(&id.get()) {
                    Some(false)
                } else {
                    None
                }
            }
        };
        assert_eq!(
            joint.vote_result(granted(&[1, 2], &[])),
            VoteOutcome::Pending
        );
        assert_eq!(
            joint.vote_result(granted(&[1, 3, 4], &[])),
            VoteOutcome::Won
        );
        assert_eq!(
            joint.vote_result(granted(&[1, 2, 3], &[4, 5])),
            VoteOutcome::Lost
        );
        assert!(joint.has_quorum(|id| [2, 3, 5].contains(&id.get())));
        assert!(!joint.has_quorum(|id| [1, 2, 4].contains(&id.get())));
    }

    #[test]
    fn the_voters_of_a_joint_configuration_are_listed_once_in_order() {
        let joint = JointConfig::new(ids(&[1, 3, 5, 6]), ids(&[2, 3, 4, 6, 7]));
        let listed: Vec<u64> = joint.all_voters().iter().map(|id| id.get()).collect();
        assert_eq!(listed, [1, 2, 3, 4, 5, 6, 7]);
        assert!(joint.contains(NodeId(7)) && !joint.contains(NodeId(8)));
        assert_eq!(joint.sole_voter(), None);
        assert_eq!(JointConfig::simple(ids(&[4])).sole_voter(), Some(NodeId(4)));
    }
}

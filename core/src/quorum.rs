//! Quorum arithmetic, as pure functions over counts.

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
pub fn majority_match_index(match_indices: &mut [crate::LogIndex]) -> crate::LogIndex {
    if match_indices.is_empty() {
        return crate::LogIndex(0);
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
    match_indices[majority(match_indices.len()) - 1]
}

#[cfg(test)]
mod tests {
    use crate::LogIndex;

    #[test]
    fn the_majority_match_index_is_the_median_from_the_top() {
        let mut three = [LogIndex(5), LogIndex(9), LogIndex(7)];
        assert_eq!(super::majority_match_index(&mut three), LogIndex(7));
        let mut four = [LogIndex(1), LogIndex(4), LogIndex(3), LogIndex(2)];
        assert_eq!(super::majority_match_index(&mut four), LogIndex(2));
        let mut one = [LogIndex(3)];
        assert_eq!(super::majority_match_index(&mut one), LogIndex(3));
        let mut five = [
            LogIndex(2),
            LogIndex(8),
            LogIndex(8),
            LogIndex(1),
            LogIndex(5),
        ];
        assert_eq!(super::majority_match_index(&mut five), LogIndex(5));
        assert_eq!(five, [8, 8, 5, 2, 1].map(LogIndex));
    }

    use super::*;

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
}

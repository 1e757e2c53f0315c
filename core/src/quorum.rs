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

#[cfg(test)]
mod tests {
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

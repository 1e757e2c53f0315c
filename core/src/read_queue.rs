//! A leader's reads waiting for their round to be confirmed: the data
//! half of the ReadIndex protocol (`read.rs` has the protocol).

use alloc::collections::VecDeque;

use crate::types::LogIndex;

/// A leader's reads waiting for their round to be confirmed and their
/// read index applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct ReadQueue {
    /// The last round opened; 0 before the first.
    round: u64,
    /// The last round opened has not had its checks sent yet, so reads
    /// may still join it.
    unsent: bool,
    /// Each waiting round with its read index, oldest first. Both increase
    /// along the queue.
    waiting: VecDeque<(u64, LogIndex)>,
}

impl ReadQueue {
    /// Adds a read with `index` to the open round, opening one if the last
    /// was already sent; returns the read's round.
    pub(crate) fn join(&mut self, index: LogIndex) -> u64 {
        match self.waiting.back_mut() {
            Some((round, round_index)) if self.unsent && *round == self.round => {
                // A later read of the same round may carry a higher index;
                // serving the earlier ones at it is still linearizable.
                *round_index = (*round_index).max(index);
            }
            _ => {
                self.round += 1;
                self.unsent = true;
                self.waiting.push_back((self.round, index));
            }
        }
        self.round
    }

    /// The last round opened (0 before the first): no follower can have
    /// answered a check of a later one.
    pub(crate) fn last_round_opened(&self) -> u64 {
        self.round
    }

    /// The open round, if its leadership checks are still to be sent; it
    /// is closed to further reads from here on.
    pub(crate) fn take_unsent_round(&mut self) -> Option<u64> {
        core::mem::take(&mut self.unsent).then_some(self.round)
    }

    /// Removes every waiting round, for a node that stopped leading;
    /// returns the last of them, if any waited.
    pub(crate) fn fail_all(&mut self) -> Option<u64> {
        self.unsent = false;
        let last = self.waiting.back().map(|&(round, _)| round);
        self.waiting.clear();
        last
    }

    /// Removes the rounds, oldest first, that `is_confirmed` and whose read
    /// index is at most `applied_index`; returns the last one removed with
    /// its read index. A later round is never served before an earlier one.
    pub(crate) fn serve(
        &mut self,
        applied_index: LogIndex,
        mut is_confirmed: impl FnMut(u64) -> bool,
    ) -> Option<(u64, LogIndex)> {
        let mut served = None;
        while let Some(&(round, index)) = self.waiting.front() {
            if index > applied_index || !is_confirmed(round) {
                break;
            }
            self.waiting.pop_front();
            served = Some((round, index));
        }
        served
    }

    /// Whether any read waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Checks the queue's invariants for a leader whose log ends at
    /// `last_index`.
    pub(crate) fn check_invariants(&self, last_index: LogIndex) {
        let mut previous: Option<(u64, LogIndex)> = None;
        for &(round, index) in &self.waiting {
            assert!(round <= self.round, "reads: a round not yet opened waits");
            assert!(index <= last_index, "reads: a read index beyond the log");
            if let Some((previous_round, previous_index)) = previous {
                assert!(
                    round > previous_round && index >= previous_index,
                    "reads: rounds out of order"
                );
            }
            previous = Some((round, index));
        }
        // An unsent round is the last one opened; it may be served already
        // (a single voter confirms its own leadership), and then so is
        // every round before it.
        if let (true, Some((round, _))) = (self.unsent, previous) {
            assert_eq!(round, self.round, "reads: an unsent round is not the last");
        }
    }
}

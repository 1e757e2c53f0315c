//! The appends a leader has out to one streaming follower: how many, and
//! how many payload bytes, so that what it holds for a slow follower stays
//! bounded (etcd's `MaxInflightMsgs` and `MaxInflightBytes`).
//!
//! Each append is remembered by its last index, so an acknowledgement
//! frees every append it covers at once: a follower may answer many
//! appends with one (it acknowledges only what its disk has made durable,
//! and a later answer covers the earlier ones), and one lost answer frees
//! nothing less than the next one does.

use alloc::collections::VecDeque;

use crate::types::LogIndex;

/// Appends sent and not yet acknowledged, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Inflights {
    /// Each append's last index and payload bytes. Invariant: indexes
    /// strictly increase from front to back.
    appends: VecDeque<(LogIndex, usize)>,
    /// The sum of the payload bytes of `appends`.
    bytes: usize,
}

impl Inflights {
    /// Whether another append may go out: fewer than `max_appends` are
    /// out, and fewer than `max_bytes` bytes (the limit is soft by one
    /// append, so that an entry larger than it still goes, alone).
    pub(crate) fn has_room(&self, max_appends: usize, max_bytes: usize) -> bool {
        self.appends.len() < max_appends && (self.appends.is_empty() || self.bytes < max_bytes)
    }

    /// An append of `bytes` payload bytes, through `last`, went out.
    pub(crate) fn add(&mut self, last: LogIndex, bytes: usize) {
        debug_assert!(
            self.appends.back().is_none_or(|&(back, _)| back < last),
            "appends go out in index order"
        );
        self.appends.push_back((last, bytes));
        self.bytes += bytes;
    }

    /// The follower holds everything through `index`: the appends that
    /// carried it are answered.
    pub(crate) fn free_through(&mut self, index: LogIndex) {
        while let Some(&(last, bytes)) = self.appends.front() {
            if last > index {
                break;
            }
            self.appends.pop_front();
            self.bytes -= bytes;
        }
    }

    /// Forgets every append (the follower is probed again, or sent a
    /// snapshot), keeping the memory for the next stream.
    pub(crate) fn clear(&mut self) {
        self.appends.clear();
        self.bytes = 0;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.appends.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.appends.len()
    }

    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Checks the invariants against the limits.
    pub(crate) fn check_invariants(&self, max_appends: usize, max_bytes: usize) {
        assert!(
            self.appends.len() <= max_appends,
            "inflights: {} appends out, over the limit of {max_appends}",
            self.appends.len()
        );
        // Soft by one append: all but the last were within the limit.
        let before_last = self.bytes - self.appends.back().map_or(0, |&(_, bytes)| bytes);
        assert!(
            self.appends.len() <= 1 || before_last < max_bytes,
            "inflights: {} bytes out before the last append, over the limit of {max_bytes}",
            before_last
        );
        assert!(
            self.appends
                .iter()
                .zip(self.appends.iter().skip(1))
                .all(|(a, b)| a.0 < b.0),
            "inflights: appends out of index order"
        );
        assert_eq!(
            self.appends.iter().map(|&(_, bytes)| bytes).sum::<usize>(),
            self.bytes,
            "inflights: the byte count disagrees with the appends"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_and_the_bytes_both_bound_what_goes_out() {
        let mut inflights = Inflights::default();
        assert!(inflights.has_room(2, 100));
        inflights.add(LogIndex(3), 60);
        assert!(inflights.has_room(2, 100));
        inflights.add(LogIndex(5), 60);
        assert!(!inflights.has_room(2, 1000), "two appends out of two");
        assert!(!inflights.has_room(3, 100), "120 bytes out of 100");
        assert!(inflights.has_room(3, 121));
        inflights.check_invariants(2, 1000);
    }

    #[test]
    fn one_acknowledgement_frees_every_append_it_covers() {
        let mut inflights = Inflights::default();
        for (last, bytes) in [(2, 10), (4, 20), (7, 30)] {
            inflights.add(LogIndex(last), bytes);
        }
        inflights.free_through(LogIndex(1));
        assert_eq!((inflights.len(), inflights.bytes()), (3, 60), "covers none");
        inflights.free_through(LogIndex(5));
        assert_eq!((inflights.len(), inflights.bytes()), (1, 30));
        inflights.free_through(LogIndex(9));
        assert!(inflights.is_empty());
        assert_eq!(inflights.bytes(), 0);
    }

    #[test]
    fn an_entry_larger_than_the_byte_limit_still_goes_alone() {
        let mut inflights = Inflights::default();
        assert!(inflights.has_room(64, 100));
        inflights.add(LogIndex(1), 1_000);
        assert!(!inflights.has_room(64, 100));
        inflights.free_through(LogIndex(1));
        assert!(inflights.has_room(64, 100));
    }
}

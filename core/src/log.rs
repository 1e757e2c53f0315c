//! The replicated log as the core holds it in memory.
//!
//! Elections compare logs (§5.4.1), so the log lives in the core from the
//! start. Replication appends to it and truncates it; both arrive with the
//! replication work.

use alloc::vec::Vec;
use core::fmt;

use crate::entry::Entry;
use crate::types::{LogIndex, Term};

/// Why a log given to [`Node::new`](crate::Node::new) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogError {
    /// An entry's index is not the previous entry's index plus one (the
    /// first must be 1).
    NotContiguous {
        /// The index that was expected at this position.
        expected: LogIndex,
        /// The index found there.
        found: LogIndex,
    },
    /// An entry's term is lower than the term of the entry before it, which
    /// no Raft leader can produce.
    TermDecreases {
        /// Index of the offending entry.
        index: LogIndex,
    },
    /// An entry has term 0, which no leader can produce.
    ZeroTerm {
        /// Index of the offending entry.
        index: LogIndex,
    },
    /// An entry sits at index `u64::MAX`, which no log reaches.
    IndexTooLarge,
    /// The log holds the snapshot's last entry with another term, so the
    /// two come from different histories.
    SnapshotMismatch {
        /// The snapshot's index.
        index: LogIndex,
    },
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::NotContiguous { expected, found } => {
                write!(f, "log entry {found} found where entry {expected} belongs")
            }
            LogError::TermDecreases { index } => {
                write!(f, "log entry {index} has a lower term than its predecessor")
            }
            LogError::ZeroTerm { index } => write!(f, "log entry {index} has term 0"),
            LogError::IndexTooLarge => f.write_str("a log entry has index u64::MAX"),
            LogError::SnapshotMismatch { index } => write!(
                f,
                "log entry {index} has another term than the snapshot ending there"
            ),
        }
    }
}

impl core::error::Error for LogError {}

/// The log: entries `first_index..=last_index`, in order, after a base
/// position that a snapshot covers.
///
/// Invariant: `entries[i].index == base_index + 1 + i`, every term is at
/// least 1, and terms never decrease along the log, starting from
/// `base_term`. Entries at or below the base were committed and dropped
/// (§7): every leader's log agrees with them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Log {
    /// The last index dropped into a snapshot; 0 for a log never compacted.
    base_index: LogIndex,
    /// The term of the entry at `base_index` (0 when it is 0).
    base_term: Term,
    entries: Vec<Entry>,
}

impl Log {
    /// Adopts `entries` as restored from storage, after checking they could
    /// have been written by Raft: they follow `base` (the position of the
    /// snapshot, or index 0 term 0 without one), and entries at or below
    /// it are skipped, as the snapshot covers them. An entry at the base
    /// itself must have the base's term.
    pub(crate) fn restore(
        (base_index, base_term): (LogIndex, Term),
        entries: Vec<Entry>,
    ) -> Result<Log, LogError> {
        let mut entries = entries;
        let covered = entries.partition_point(|entry| entry.index <= base_index);
        if let Some(at_base) = entries[..covered].last() {
            if at_base.index == base_index && at_base.term != base_term {
                return Err(LogError::SnapshotMismatch { index: base_index });
            }
        }
        entries.drain(..covered);
        let mut previous_term = base_term;
        for (position, entry) in entries.iter().enumerate() {
            let expected = LogIndex(base_index.get() + position as u64 + 1);
            if entry.index != expected {
                return Err(LogError::NotContiguous {
                    expected,
                    found: entry.index,
                });
            }
            if entry.term == Term(0) {
                return Err(LogError::ZeroTerm { index: entry.index });
            }
            if entry.index == LogIndex::MAX {
                return Err(LogError::IndexTooLarge);
            }
            if entry.term < previous_term {
                return Err(LogError::TermDecreases { index: entry.index });
            }
            previous_term = entry.term;
        }
        Ok(Log {
            base_index,
            base_term,
            entries,
        })
    }

    /// The last index dropped into a snapshot (0 when none was).
    pub(crate) fn base_index(&self) -> LogIndex {
        self.base_index
    }

    /// Index of the last entry, the base's when no entry follows it.
    pub(crate) fn last_index(&self) -> LogIndex {
        LogIndex(self.base_index.get() + self.entries.len() as u64)
    }

    /// Term of the last entry, the base's when no entry follows it.
    pub(crate) fn last_term(&self) -> Term {
        self.entries
            .last()
            .map_or(self.base_term, |entry| entry.term)
    }

    /// Where `index` sits in `entries`, if it is there.
    fn position(&self, index: LogIndex) -> Option<usize> {
        let offset = index.get().checked_sub(self.base_index.get() + 1)?;
        let position = usize::try_from(offset).ok()?;
        (position < self.entries.len()).then_some(position)
    }

    /// Term of the entry at `index`: the base's at the base (`Some(0)` for
    /// index 0 of a log never compacted), `None` below the base (dropped)
    /// and past the end.
    pub(crate) fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.base_index {
            return Some(self.base_term);
        }
        self.position(index)
            .map(|position| self.entries[position].term)
    }

    /// Whether this log holds an entry at `index` with `term` (the
    /// AppendEntries consistency check). Below the base the answer is yes:
    /// those entries were committed, and a leader holds every committed
    /// entry (§5.4.1), so its log agrees there.
    pub(crate) fn matches(&self, index: LogIndex, term: Term) -> bool {
        index < self.base_index || self.term_at(index) == Some(term)
    }

    /// Whether a log ending at (`last_term`, `last_index`) is at least as
    /// up-to-date as this one (§5.4.1): the later last term wins, and with
    /// equal last terms the longer log wins.
    pub(crate) fn is_up_to_date(&self, last_term: Term, last_index: LogIndex) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// The entries after the base, in order.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry at `index`, if present.
    pub(crate) fn entry(&self, index: LogIndex) -> Option<&Entry> {
        self.position(index).map(|position| &self.entries[position])
    }

    /// Entries from `from` on, as many as fit in `max_bytes` of payload but
    /// at least one (so an oversized entry still travels), at most
    /// `max_count`. Empty when `from` is not in the log.
    pub(crate) fn entries_from(
        &self,
        from: LogIndex,
        max_bytes: usize,
        max_count: usize,
    ) -> &[Entry] {
        let Some(start) = self.position(from) else {
            return &[];
        };
        let tail = &self.entries[start..];
        let mut bytes = 0;
        let mut count = 0;
        for entry in tail.iter().take(max_count.max(1)) {
            // Counted as encoded, so that the budget bounds the message
            // even for entries with little or no payload.
            bytes += crate::wire::entry_encoded_len(entry);
            if count > 0 && bytes > max_bytes {
                break;
            }
            count += 1;
        }
        &tail[..count]
    }

    /// Payload bytes of the entries in `from..=to` (clamped to the log):
    /// what a leader counts against its uncommitted-bytes bound.
    pub(crate) fn payload_bytes(&self, from: LogIndex, to: LogIndex) -> usize {
        self.slice(from, to)
            .iter()
            .map(|entry| entry.data.len())
            .sum()
    }

    /// Entries in `from..=to`, clamped to what the log holds.
    pub(crate) fn slice(&self, from: LogIndex, to: LogIndex) -> &[Entry] {
        let first = self.base_index.get() + 1;
        let start = from.get().max(first) - first;
        let end = (to.get().saturating_add(1).max(first) - first).min(self.entries.len() as u64);
        self.entries
            .get(start as usize..end as usize)
            .unwrap_or(&[])
    }

    /// Appends `entry`, which must continue the log.
    pub(crate) fn push(&mut self, entry: Entry) {
        self.assert_continued_by(&entry);
        self.entries.push(entry);
    }

    /// Panics unless `entry` may follow the last entry: the next index, a
    /// term no lower.
    fn assert_continued_by(&self, entry: &Entry) {
        assert_eq!(
            entry.index,
            self.last_index().next(),
            "log entries must be contiguous"
        );
        assert!(
            entry.term >= self.last_term(),
            "log terms must not decrease"
        );
    }

    /// Appends `entries`, which must continue the log, in order (as
    /// [`Log::push`] of each would, with one reservation).
    pub(crate) fn extend_from_slice(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else {
            return;
        };
        self.assert_continued_by(first);
        assert!(
            entries
                .windows(2)
                .all(|pair| pair[1].index == pair[0].index.next() && pair[1].term >= pair[0].term),
            "log entries must be contiguous, with terms that never decrease"
        );
        self.entries.extend_from_slice(entries);
    }

    /// Checks the log's invariants in constant time: `push`, `restore` and
    /// the compaction functions keep the entries between the ends
    /// contiguous and their terms in order.
    pub(crate) fn check_invariants(&self) {
        assert_eq!(
            self.base_index == LogIndex(0),
            self.base_term == Term(0),
            "log: only the empty base has term 0"
        );
        if let (Some(first), Some(last)) = (self.entries.first(), self.entries.last()) {
            assert_eq!(
                first.index,
                self.base_index.next(),
                "log: a gap after the base"
            );
            assert_eq!(last.index, self.last_index(), "log: entries not contiguous");
            assert!(
                first.term >= self.base_term && first.term > Term(0) && last.term >= first.term,
                "log: terms decrease"
            );
        }
    }

    /// Removes the entries at `from` and after (never the base).
    pub(crate) fn truncate_from(&mut self, from: LogIndex) {
        let first = self.base_index.get() + 1;
        let keep = from.get().max(first) - first;
        self.entries.truncate(keep as usize);
    }

    /// Drops the entries up to `through`, which must be in the log (or at
    /// or below the base, which changes nothing): a snapshot covers them.
    pub(crate) fn compact_through(&mut self, through: LogIndex) {
        if through <= self.base_index {
            return;
        }
        let term = self
            .term_at(through)
            .expect("compaction stays within the log");
        let dropped = (through.get() - self.base_index.get()) as usize;
        assert!(
            dropped <= self.entries.len(),
            "log: compacting past its end"
        );
        self.entries.drain(..dropped);
        self.base_index = through;
        self.base_term = term;
    }

    /// Makes the log start after a snapshot at (`index`, `term`): entries
    /// after it stay if the log holds that entry, otherwise every entry
    /// goes (the caller truncated any conflicting suffix first).
    pub(crate) fn reset_to_snapshot(&mut self, index: LogIndex, term: Term) {
        assert!(
            index > LogIndex(0) && term > Term(0),
            "log: a snapshot at {index}@{term}"
        );
        if self.term_at(index) == Some(term) {
            self.compact_through(index);
        } else {
            self.entries.clear();
            self.base_index = index;
            self.base_term = term;
        }
        assert_eq!(
            (self.base_index, self.base_term),
            (index, term),
            "log: the snapshot is not the log's base"
        );
    }

    /// The first index of the run of entries with `term` that contains
    /// `index` (which must be in the log); the run is cut at the base.
    pub(crate) fn first_index_of_term_run(&self, index: LogIndex) -> LogIndex {
        let Some(term) = self.term_at(index).filter(|_| index > self.base_index) else {
            return index;
        };
        // Terms never decrease along the log: the run starts right after
        // the last entry of a lower term (a binary search, so a long log
        // costs no more than a short one).
        let before_run = self.entries.partition_point(|entry| entry.term < term);
        LogIndex(self.base_index.get() + before_run as u64 + 1)
    }

    /// The index of the last entry with `term`, if the log has one (the
    /// base counts as an entry).
    pub(crate) fn last_index_of_term(&self, term: Term) -> Option<LogIndex> {
        // Terms never decrease along the log: binary search for the end of
        // the entries at or below `term`.
        let end = self.entries.partition_point(|entry| entry.term <= term);
        match end.checked_sub(1).map(|last| &self.entries[last]) {
            Some(last) => (last.term == term).then_some(last.index),
            None => {
                (term == self.base_term && self.base_index > LogIndex(0)).then_some(self.base_index)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const NO_BASE: (LogIndex, Term) = (LogIndex(0), Term(0));

    fn entry(index: u64, term: u64) -> Entry {
        Entry::command(LogIndex(index), Term(term), vec![index as u8])
    }

    fn log(terms: &[u64]) -> Log {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, &term)| entry(i as u64 + 1, term))
            .collect();
        Log::restore((LogIndex(0), Term(0)), entries).unwrap()
    }

    #[test]
    fn entries_from_respects_the_byte_budget_but_sends_at_least_one() {
        let log = log(&[1, 1, 1, 1]); // each takes four bytes encoded
        assert_eq!(log.entries_from(LogIndex(2), 8, 100).len(), 2);
        assert_eq!(log.entries_from(LogIndex(2), 7, 100).len(), 1);
        assert_eq!(log.entries_from(LogIndex(2), 0, 100).len(), 1);
        assert_eq!(log.entries_from(LogIndex(1), 100, 3).len(), 3);
        assert!(log.entries_from(LogIndex(5), 100, 100).is_empty());
        assert!(log.entries_from(LogIndex(0), 100, 100).is_empty());
    }

    #[test]
    fn extending_appends_what_pushing_each_would() {
        let mut extended = log(&[1, 1]);
        let mut pushed = extended.clone();
        let more = [entry(3, 1), entry(4, 2), entry(5, 2)];
        extended.extend_from_slice(&more);
        for entry in more {
            pushed.push(entry);
        }
        assert_eq!(extended, pushed);
        extended.extend_from_slice(&[]);
        assert_eq!(extended, pushed);
    }

    #[test]
    #[should_panic(expected = "contiguous")]
    fn extending_refuses_a_gap_within_the_entries() {
        log(&[1]).extend_from_slice(&[entry(2, 1), entry(4, 1)]);
    }

    #[test]
    #[should_panic(expected = "never decrease")]
    fn extending_refuses_a_term_that_decreases_within_the_entries() {
        log(&[1]).extend_from_slice(&[entry(2, 2), entry(3, 1)]);
    }

    #[test]
    #[should_panic(expected = "contiguous")]
    fn extending_refuses_entries_that_do_not_continue_the_log() {
        log(&[1]).extend_from_slice(&[entry(3, 1)]);
    }

    #[test]
    fn term_runs_are_found_from_either_end() {
        let log = log(&[1, 2, 2, 2, 4]);
        assert_eq!(log.first_index_of_term_run(LogIndex(4)), LogIndex(2));
        assert_eq!(log.first_index_of_term_run(LogIndex(1)), LogIndex(1));
        assert_eq!(log.last_index_of_term(Term(2)), Some(LogIndex(4)));
        assert_eq!(log.last_index_of_term(Term(3)), None);
        assert_eq!(log.last_index_of_term(Term(4)), Some(LogIndex(5)));
        assert_eq!(log.last_index_of_term(Term(0)), None);
        assert_eq!(log.first_index_of_term_run(LogIndex(0)), LogIndex(0));
        assert_eq!(log.first_index_of_term_run(LogIndex(6)), LogIndex(6));
    }

    #[test]
    fn truncation_removes_the_suffix() {
        let mut log = log(&[1, 1, 2]);
        log.truncate_from(LogIndex(2));
        assert_eq!(log.last_index(), LogIndex(1));
        log.push(Entry::noop(LogIndex(2), Term(3)));
        assert_eq!(log.last_term(), Term(3));
    }

    #[test]
    fn empty_log_ends_at_index_zero_term_zero() {
        let log = Log::default();
        assert_eq!(log.last_index(), LogIndex(0));
        assert_eq!(log.last_term(), Term(0));
        assert!(log.matches(LogIndex(0), Term(0)));
        assert!(!log.matches(LogIndex(1), Term(1)));
    }

    #[test]
    fn restore_refuses_gaps_and_decreasing_terms() {
        assert_eq!(
            Log::restore(NO_BASE, vec![entry(1, 1), entry(3, 1)]).unwrap_err(),
            LogError::NotContiguous {
                expected: LogIndex(2),
                found: LogIndex(3)
            }
        );
        assert_eq!(
            Log::restore(NO_BASE, vec![entry(1, 2), entry(2, 1)]).unwrap_err(),
            LogError::TermDecreases { index: LogIndex(2) }
        );
        assert_eq!(
            Log::restore(NO_BASE, vec![entry(1, 0)]).unwrap_err(),
            LogError::ZeroTerm { index: LogIndex(1) }
        );
    }

    #[test]
    fn term_at_reports_each_entry_and_nothing_past_the_end() {
        let log = log(&[1, 1, 3]);
        assert_eq!(log.term_at(LogIndex(2)), Some(Term(1)));
        assert_eq!(log.term_at(LogIndex(3)), Some(Term(3)));
        assert_eq!(log.term_at(LogIndex(4)), None);
        assert_eq!(log.term_at(LogIndex(u64::MAX)), None);
    }

    #[test]
    fn later_last_term_is_more_up_to_date_than_a_longer_log() {
        let log = log(&[1, 1, 1, 1]);
        assert!(log.is_up_to_date(Term(2), LogIndex(1)));
        assert!(!log.is_up_to_date(Term(1), LogIndex(3)));
    }

    #[test]
    fn with_equal_last_terms_the_longer_log_is_more_up_to_date() {
        let log = log(&[1, 2, 2]);
        assert!(log.is_up_to_date(Term(2), LogIndex(3)));
        assert!(log.is_up_to_date(Term(2), LogIndex(4)));
        assert!(!log.is_up_to_date(Term(2), LogIndex(2)));
    }

    #[test]
    fn a_compacted_log_answers_from_its_base() {
        let mut log = log(&[1, 1, 2, 2, 3]);
        log.compact_through(LogIndex(3));
        assert_eq!(log.base_index(), LogIndex(3));
        assert_eq!(log.last_index(), LogIndex(5));
        assert_eq!(log.term_at(LogIndex(3)), Some(Term(2)));
        assert_eq!(log.term_at(LogIndex(2)), None);
        assert!(
            log.matches(LogIndex(1), Term(7)),
            "below the base all agree"
        );
        assert!(log.matches(LogIndex(3), Term(2)));
        assert!(!log.matches(LogIndex(3), Term(1)));
        assert_eq!(log.entry(LogIndex(4)).map(|e| e.index), Some(LogIndex(4)));
        assert!(log.entry(LogIndex(3)).is_none());
        assert_eq!(log.entries_from(LogIndex(4), 100, 100).len(), 2);
        assert!(log.entries_from(LogIndex(3), 100, 100).is_empty());
        assert_eq!(log.slice(LogIndex(1), LogIndex(4)).len(), 1);
        assert_eq!(log.first_index_of_term_run(LogIndex(4)), LogIndex(4));
        assert_eq!(log.last_index_of_term(Term(2)), Some(LogIndex(4)));
        assert_eq!(log.last_index_of_term(Term(1)), None);
        log.compact_through(LogIndex(5));
        assert_eq!((log.last_index(), log.last_term()), (LogIndex(5), Term(3)));
        assert_eq!(log.last_index_of_term(Term(3)), Some(LogIndex(5)));
        log.truncate_from(LogIndex(2));
        assert_eq!(log.last_index(), LogIndex(5), "the base is never truncated");
    }

    #[test]
    fn a_snapshot_keeps_the_entries_after_it_only_if_the_log_agrees() {
        let mut log = log(&[1, 1, 2]);
        log.reset_to_snapshot(LogIndex(2), Term(1));
        assert_eq!(
            (log.base_index(), log.last_index()),
            (LogIndex(2), LogIndex(3))
        );
        let mut other = self::log(&[1, 1, 2]);
        other.reset_to_snapshot(LogIndex(5), Term(4));
        assert_eq!(
            (other.base_index(), other.last_index()),
            (LogIndex(5), LogIndex(5))
        );
        assert_eq!(other.last_term(), Term(4));
    }

    #[test]
    fn restore_skips_what_the_snapshot_covers_and_checks_the_seam() {
        let entries = || vec![entry(3, 1), entry(4, 2), entry(5, 2)];
        let log = Log::restore((LogIndex(4), Term(2)), entries()).unwrap();
        assert_eq!(
            (log.base_index(), log.last_index()),
            (LogIndex(4), LogIndex(5))
        );
        assert_eq!(
            Log::restore((LogIndex(4), Term(1)), entries()).unwrap_err(),
            LogError::SnapshotMismatch { index: LogIndex(4) }
        );
        assert_eq!(
            Log::restore((LogIndex(1), Term(1)), entries()).unwrap_err(),
            LogError::NotContiguous {
                expected: LogIndex(2),
                found: LogIndex(3)
            }
        );
        assert_eq!(
            Log::restore((LogIndex(5), Term(3)), vec![entry(6, 2)]).unwrap_err(),
            LogError::TermDecreases { index: LogIndex(6) }
        );
        let beyond = Log::restore((LogIndex(9), Term(3)), entries()).unwrap();
        assert_eq!(
            (beyond.last_index(), beyond.last_term()),
            (LogIndex(9), Term(3))
        );
    }
}

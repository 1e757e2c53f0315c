//! The replicated log as the core holds it in memory.
//!
//! Elections compare logs (§5.4.1), so the log lives in the core from the
//! start. Replication appends to it and truncates it; both arrive with the
//! replication work.

use alloc::vec::Vec;
use core::fmt;

use crate::types::{LogIndex, Term};

/// One log entry: an opaque command stamped with the term of the leader
/// that created it and its position in the log.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// Position in the log (the first entry has index 1).
    pub index: LogIndex,
    /// Term of the leader that created the entry.
    pub term: Term,
    /// The command, opaque to the core.
    pub data: Vec<u8>,
}

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
        }
    }
}

impl core::error::Error for LogError {}

/// The log: entries `1..=last_index`, in order.
///
/// Invariant: `entries[i].index == i + 1`, every term is at least 1, and
/// terms never decrease along the log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Log {
    entries: Vec<Entry>,
}

impl Log {
    /// Adopts `entries` as restored from storage, after checking they could
    /// have been written by Raft.
    pub(crate) fn restore(entries: Vec<Entry>) -> Result<Log, LogError> {
        let mut previous_term = Term(0);
        for (position, entry) in entries.iter().enumerate() {
            let expected = LogIndex(position as u64 + 1);
            if entry.index != expected {
                return Err(LogError::NotContiguous {
                    expected,
                    found: entry.index,
                });
            }
            if entry.term == Term(0) {
                return Err(LogError::ZeroTerm { index: entry.index });
            }
            if entry.term < previous_term {
                return Err(LogError::TermDecreases { index: entry.index });
            }
            previous_term = entry.term;
        }
        Ok(Log { entries })
    }

    /// Index of the last entry, 0 when empty.
    pub(crate) fn last_index(&self) -> LogIndex {
        LogIndex(self.entries.len() as u64)
    }

    /// Term of the last entry, 0 when empty.
    pub(crate) fn last_term(&self) -> Term {
        self.entries.last().map_or(Term(0), |entry| entry.term)
    }

    /// Term of the entry at `index`; `Some(0)` for index 0 and `None` past
    /// the end.
    pub(crate) fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == LogIndex(0) {
            return Some(Term(0));
        }
        let position = usize::try_from(index.0 - 1).ok()?;
        self.entries.get(position).map(|entry| entry.term)
    }

    /// Whether this log holds an entry at `index` with `term` (the
    /// AppendEntries consistency check).
    pub(crate) fn matches(&self, index: LogIndex, term: Term) -> bool {
        self.term_at(index) == Some(term)
    }

    /// Whether a log ending at (`last_term`, `last_index`) is at least as
    /// up-to-date as this one (§5.4.1): the later last term wins, and with
    /// equal last terms the longer log wins.
    pub(crate) fn is_up_to_date(&self, last_term: Term, last_index: LogIndex) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// All entries, in order.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index: LogIndex(index),
            term: Term(term),
            data: vec![index as u8],
        }
    }

    fn log(terms: &[u64]) -> Log {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, &term)| entry(i as u64 + 1, term))
            .collect();
        Log::restore(entries).unwrap()
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
            Log::restore(vec![entry(1, 1), entry(3, 1)]).unwrap_err(),
            LogError::NotContiguous {
                expected: LogIndex(2),
                found: LogIndex(3)
            }
        );
        assert_eq!(
            Log::restore(vec![entry(1, 2), entry(2, 1)]).unwrap_err(),
            LogError::TermDecreases { index: LogIndex(2) }
        );
        assert_eq!(
            Log::restore(vec![entry(1, 0)]).unwrap_err(),
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
}

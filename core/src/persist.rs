//! What a node keeps in stable storage, and the one definition of what
//! each write the node asks for does to it.
//!
//! A node asks for writes through [`Output::Persist`](crate::Output::Persist);
//! a store performs them in order and makes them durable before the
//! outputs that follow. [`PersistedState::apply`] is that meaning written
//! down once: in-memory stores, the simulator, the fuzz targets and the
//! firmware all use it, and a disk store must leave the same state behind.

use alloc::vec::Vec;
use core::fmt;

use crate::entry::{Entry, Snapshot};
use crate::types::{LogIndex, NodeId, Term};

/// The state a node must find again after a crash: its term and its vote.
///
/// Raft's safety rests on both surviving restarts: a node that forgot its
/// vote could vote twice in one term, and one that forgot its term could
/// accept a deposed leader.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HardState {
    /// The latest term the node has seen.
    pub term: Term,
    /// The candidate the node voted for in `term`, if any.
    pub voted_for: Option<NodeId>,
    /// Set when the node lost part of its log (a store that found a
    /// damaged or missing suffix, and dropped it) while its term was this:
    /// it may have acknowledged entries it no longer holds, so it neither
    /// votes nor campaigns until its log holds an entry of a later term —
    /// which only a leader elected without it can have sent, and which
    /// brings everything that leader held when elected. The node clears it
    /// then (protocol-aware recovery; see `docs/architecture.md`).
    pub log_lost_at_term: Option<Term>,
}

/// One write to stable storage, in the order the node asks for them.
///
/// Deliberately not `#[non_exhaustive]`: a store must handle every kind of
/// write, so a new kind is a breaking change that fails to compile rather
/// than a write silently dropped by a catch-all arm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Persist {
    /// Replace the hard state.
    HardState(HardState),
    /// Append these entries to the log. They continue the log as stored
    /// (after any truncation asked for before them).
    Entries(Vec<Entry>),
    /// Remove the stored entries at `from` and after: a new leader
    /// overwrote them. Never reaches a committed entry.
    TruncateLog {
        /// The first index to remove.
        from: LogIndex,
    },
    /// Replace the snapshot, and drop the stored entries it covers: a node
    /// restarted on it starts its log after it.
    Snapshot(Snapshot),
}

/// What a node finds in stable storage when it starts: everything it asked
/// to persist, and nothing else.
///
/// A fresh node starts from `PersistedState::default()`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PersistedState {
    /// The last hard state the node asked to persist.
    pub hard_state: HardState,
    /// The latest snapshot the node asked to persist, if any.
    pub snapshot: Option<Snapshot>,
    /// The log in order: from index 1, or from any index up to just after
    /// the snapshot's (entries the snapshot covers are skipped).
    pub entries: Vec<Entry>,
}

/// Why [`PersistedState::apply`] refused a write. The state is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PersistError {
    /// An append does not continue the stored log: the writes were
    /// performed out of order, or some were lost.
    Gap {
        /// The last index stored (the snapshot's, or 0, when no entry is).
        last_index: LogIndex,
        /// The first index of the refused append.
        first: LogIndex,
    },
}

impl fmt::Display for PersistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PersistError::Gap { last_index, first } => write!(
                f,
                "an append at index {first} does not continue a log ending at {last_index}"
            ),
        }
    }
}

impl core::error::Error for PersistError {}

impl PersistedState {
    /// The index of the last entry stored: the last log entry's, else the
    /// snapshot's, else 0.
    #[must_use]
    pub fn last_index(&self) -> LogIndex {
        self.entries
            .last()
            .map_or_else(|| self.snapshot_index(), |entry| entry.index)
    }

    /// The last index the stored snapshot covers (0 without one).
    #[must_use]
    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot
            .as_ref()
            .map_or(LogIndex(0), |snapshot| snapshot.index)
    }

    /// Performs one write, as stable storage must: what a node restarted on
    /// the result finds is what it asked for. Takes the write by value, so
    /// entries move into the state without a copy; a store that must keep
    /// its writes clones them (cheaply: payloads are shared).
    ///
    /// # Errors
    ///
    /// [`PersistError::Gap`] for an append that does not continue the
    /// stored log (and then nothing changes).
    pub fn apply(&mut self, write: Persist) -> Result<(), PersistError> {
        match write {
            Persist::HardState(hard_state) => self.hard_state = hard_state,
            Persist::Entries(entries) => {
                if let Some(first) = entries.first() {
                    let last_index = self.last_index();
                    if first.index != last_index.next() {
                        return Err(PersistError::Gap {
                            last_index,
                            first: first.index,
                        });
                    }
                }
                self.entries.extend(entries);
            }
            Persist::TruncateLog { from } => {
                let keep = self.entries.partition_point(|entry| entry.index < from);
                self.entries.truncate(keep);
            }
            Persist::Snapshot(snapshot) => {
                let covered = self
                    .entries
                    .partition_point(|entry| entry.index <= snapshot.index);
                self.entries.drain(..covered);
                self.snapshot = Some(snapshot);
            }
        }
        debug_assert!(self
            .entries
            .windows(2)
            .all(|pair| pair[1].index == pair[0].index.next()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use bytes::Bytes;

    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry::command(LogIndex(index), Term(term), vec![index as u8])
    }

    #[test]
    fn writes_build_the_state_a_restart_finds() {
        let mut state = PersistedState::default();
        let hard_state = HardState {
            term: Term(3),
            voted_for: Some(NodeId(2)),
            log_lost_at_term: None,
        };
        for write in [
            Persist::HardState(hard_state),
            Persist::Entries(vec![entry(1, 1), entry(2, 1), entry(3, 2)]),
            Persist::TruncateLog { from: LogIndex(3) },
            Persist::Entries(vec![entry(3, 3)]),
        ] {
            state.apply(write).expect("in order");
        }
        assert_eq!(state.hard_state, hard_state);
        assert_eq!(state.entries, [entry(1, 1), entry(2, 1), entry(3, 3)]);
        assert_eq!(state.last_index(), LogIndex(3));
    }

    #[test]
    fn a_snapshot_replaces_the_entries_it_covers() {
        let mut state = PersistedState::default();
        state
            .apply(Persist::Entries(vec![
                entry(1, 1),
                entry(2, 1),
                entry(3, 1),
            ]))
            .expect("in order");
        let snapshot = Snapshot {
            index: LogIndex(2),
            term: Term(1),
            membership: crate::Membership::default(),
            data: Bytes::from_static(b"state"),
        };
        state
            .apply(Persist::Snapshot(snapshot.clone()))
            .expect("always");
        assert_eq!(state.snapshot, Some(snapshot));
        assert_eq!(state.entries, [entry(3, 1)]);
        // A truncation after a snapshot leaves only the snapshot.
        state
            .apply(Persist::TruncateLog { from: LogIndex(3) })
            .expect("always");
        assert_eq!(state.last_index(), LogIndex(2));
        state
            .apply(Persist::Entries(vec![entry(3, 2)]))
            .expect("continues the snapshot");
    }

    #[test]
    fn an_append_with_a_gap_is_refused_and_changes_nothing() {
        let mut state = PersistedState::default();
        state
            .apply(Persist::Entries(vec![entry(1, 1)]))
            .expect("in order");
        let before = state.clone();
        assert_eq!(
            state.apply(Persist::Entries(vec![entry(3, 1)])),
            Err(PersistError::Gap {
                last_index: LogIndex(1),
                first: LogIndex(3)
            })
        );
        assert_eq!(state, before);
    }
}

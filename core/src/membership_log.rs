//! Where a node's configuration comes from: the latest membership entry
//! in its log, or else the one its snapshot (or its start) gave it.
//!
//! A configuration takes effect when its entry is appended, not when it
//! commits (dissertation §4.1), so a node must be able to go back to the
//! one before when a new leader truncates the entry away: this keeps every
//! membership entry of the log, by index, above the configuration of the
//! log's base.

use alloc::vec::Vec;

use crate::entry::{Entry, EntryKind};
use crate::error::StartError;
use crate::membership::{Membership, MembershipError};
use crate::types::{LogIndex, NodeId};
use crate::wire::entry_membership;

/// Every configuration a node's log holds, and the one beneath them.
///
/// Invariant: `changes` are in increasing index order, all above
/// `base.0`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct MembershipLog {
    /// The configuration as of the log's base: the snapshot's, or the
    /// voters the node was started with (at index 0).
    base: (LogIndex, Membership),
    /// The membership entries in the log above the base.
    changes: Vec<(LogIndex, Membership)>,
}

impl MembershipLog {
    /// The configuration a node starts with when its storage holds none:
    /// `voters` (which must contain `id`), or none at all for a node that
    /// waits to be added.
    pub(crate) fn initial(id: NodeId, voters: &[NodeId]) -> Result<Membership, StartError> {
        if voters.is_empty() {
            return Ok(Membership::default());
        }
        let membership = Membership::with_voters(voters).map_err(|error| match error {
            MembershipError::Duplicate(id) => StartError::DuplicateVoter(id),
            _ => unreachable!("a non-empty voter list fails only on duplicates"),
        })?;
        Self::check_initial(id, &membership)?;
        Ok(membership)
    }

    /// Whether node `id` may start a cluster with `membership`: one voter
    /// set, its own id among the voters — or no configuration at all.
    pub(crate) fn check_initial(id: NodeId, membership: &Membership) -> Result<(), StartError> {
        if membership.is_empty() {
            return Ok(());
        }
        if membership.is_joint() {
            return Err(StartError::JointBootstrap);
        }
        if !membership.is_voter(id) {
            return Err(StartError::NotAVoter(id));
        }
        Ok(())
    }

    /// The configurations of a stored log: the snapshot's (or, without one or
    /// for a snapshot stored before membership changes existed, `initial`)
    /// and every membership entry above the snapshot.
    pub(crate) fn restore(
        base_index: LogIndex,
        snapshot_membership: Option<&Membership>,
        initial: Membership,
        entries: &[Entry],
    ) -> Result<MembershipLog, StartError> {
        let base = match snapshot_membership {
            Some(membership) if !membership.is_empty() => membership.clone(),
            _ => initial,
        };
        let mut memberships = MembershipLog::new(base_index, base);
        for entry in entries {
            if entry.index > base_index && entry.kind == EntryKind::Membership {
                let membership = entry_membership(entry)
                    .ok_or(StartError::InvalidMembership { index: entry.index })?;
                memberships.push(entry.index, membership);
            }
        }
        Ok(memberships)
    }

    /// A log whose configuration as of `index` is `membership`, with no
    /// change above it yet.
    pub(crate) fn new(index: LogIndex, membership: Membership) -> MembershipLog {
        MembershipLog {
            base: (index, membership),
            changes: Vec::new(),
        }
    }

    /// The configuration in force: the latest in the log.
    pub(crate) fn current(&self) -> &Membership {
        self.changes
            .last()
            .map_or(&self.base.1, |(_, membership)| membership)
    }

    /// The index of the entry that holds the configuration in force (the
    /// base's index when no entry above it does).
    pub(crate) fn current_index(&self) -> LogIndex {
        self.changes.last().map_or(self.base.0, |(index, _)| *index)
    }

    /// The configuration in force at `index`: the latest at or before it.
    pub(crate) fn at(&self, index: LogIndex) -> &Membership {
        let after = self.changes.partition_point(|(at, _)| *at <= index);
        if after == 0 {
            &self.base.1
        } else {
            &self.changes[after - 1].1
        }
    }

    /// Whether node `id` may campaign, given that entries up to `commit`
    /// are known committed: it votes in the configuration in force — or
    /// that configuration is not known committed and `id` votes in one
    /// still pending with it or in the last known committed (dissertation
    /// §4.2.2: a server being removed may still be needed to elect a
    /// leader until its removal commits; without it, a removal whose entry
    /// only the removed server holds could leave no one able to win).
    pub(crate) fn may_campaign(&self, id: NodeId, commit: LogIndex) -> bool {
        if self.current().is_voter(id) {
            return true;
        }
        if self.current_index() <= commit {
            return false;
        }
        self.at(commit).is_voter(id)
            || self
                .changes
                .iter()
                .any(|(index, membership)| *index > commit && membership.is_voter(id))
    }

    /// A membership entry at `index`, the log's new last entry.
    pub(crate) fn push(&mut self, index: LogIndex, membership: Membership) {
        assert!(
            index > self.current_index(),
            "membership entries are appended in order"
        );
        self.changes.push((index, membership));
    }

    /// The log lost its entries from `from` on: so do the configurations.
    pub(crate) fn truncate_from(&mut self, from: LogIndex) {
        let keep = self.changes.partition_point(|(at, _)| *at < from);
        self.changes.truncate(keep);
    }

    /// The log now starts after a snapshot through `index`, whose
    /// configuration is `membership`: the changes it covers are folded
    /// into it.
    pub(crate) fn rebase(&mut self, index: LogIndex, membership: Membership) {
        let covered = self.changes.partition_point(|(at, _)| *at <= index);
        self.changes.drain(..covered);
        self.base = (index, membership);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voters(ids: &[u64]) -> Membership {
        let ids: Vec<NodeId> = ids.iter().map(|&id| NodeId(id)).collect();
        Membership::with_voters(&ids).expect("valid")
    }

    #[test]
    fn the_latest_entry_rules_and_truncation_brings_back_the_one_before() {
        let mut log = MembershipLog::new(LogIndex(0), voters(&[1, 2, 3]));
        log.push(LogIndex(5), voters(&[1, 2, 3, 4]));
        log.push(LogIndex(9), voters(&[1, 2, 4]));
        assert_eq!(log.current(), &voters(&[1, 2, 4]));
        assert_eq!(log.current_index(), LogIndex(9));
        assert_eq!(log.at(LogIndex(4)), &voters(&[1, 2, 3]));
        assert_eq!(log.at(LogIndex(5)), &voters(&[1, 2, 3, 4]));
        assert_eq!(log.at(LogIndex(8)), &voters(&[1, 2, 3, 4]));
        log.truncate_from(LogIndex(9));
        assert_eq!(log.current(), &voters(&[1, 2, 3, 4]));
        log.truncate_from(LogIndex(2));
        assert_eq!(log.current(), &voters(&[1, 2, 3]));
        assert_eq!(log.current_index(), LogIndex(0));
    }

    #[test]
    fn a_snapshot_folds_in_the_changes_it_covers() {
        let mut log = MembershipLog::new(LogIndex(0), voters(&[1]));
        log.push(LogIndex(3), voters(&[1, 2]));
        log.push(LogIndex(7), voters(&[1, 2, 3]));
        log.rebase(LogIndex(5), voters(&[1, 2]));
        assert_eq!(log.current(), &voters(&[1, 2, 3]));
        log.truncate_from(LogIndex(6));
        assert_eq!(log.current(), &voters(&[1, 2]));
        assert_eq!(log.current_index(), LogIndex(5));
    }
}

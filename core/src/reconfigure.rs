//! Membership changes (Raft dissertation, chapter 4): the leader's rules
//! for accepting a change, and how every node follows the configuration
//! its log holds.
//!
//! A configuration is in force from the moment its entry is appended, on
//! every node, committed or not (§4.1). The leader accepts one change at a
//! time, only once it has committed an entry of its own term: a leader that
//! has not may hold an uncommitted change of an earlier leader in its log,
//! and a second single-server change on top of it could give two disjoint
//! majorities (the flaw reported on raft-dev in 2015). A leader that is no
//! longer a voter leads until the change that removed it commits, then
//! steps down (§4.2.2); a joint configuration entered with `auto_leave` is
//! left by the leader as soon as it commits.

use alloc::vec::Vec;

use rand_core::Rng;

use crate::entry::{Entry, EntryKind};
use crate::error::HandleError;
use crate::input::Handled;
use crate::membership::{Membership, MembershipChange, MembershipError};
use crate::node::Node;
use crate::role::RoleState;
use crate::time::Instant;
use crate::types::{LogIndex, NodeId};
use crate::wire::{encode_membership, entry_membership, membership_encoded_len};

impl<R: Rng> Node<R> {
    /// A leader's answer to a request to change the configuration.
    pub(crate) fn handle_change_membership(
        &mut self,
        change: &MembershipChange,
    ) -> Result<Handled, HandleError> {
        self.check_leader_free()?;
        let pending = self.memberships.current_index();
        if pending > self.commit_index {
            return Err(MembershipError::ChangePending { index: pending }.into());
        }
        if self.log.term_at(self.commit_index) != Some(self.term) && !self.skips_own_term_rule() {
            return Err(MembershipError::LeaderNotSettled.into());
        }
        let current = self.memberships.current();
        let next = current.with_change(change)?;
        for id in current.new_voters(&next) {
            self.check_caught_up(id)?;
        }
        let index = self.append_membership(next);
        Ok(Handled::Proposed {
            index,
            term: self.term,
        })
    }

    /// Whether the model checks' deliberate flaw is on (see
    /// `Config::flaw_skip_own_term_rule`); never in a real build.
    fn skips_own_term_rule(&self) -> bool {
        #[cfg(feature = "flawed-variants")]
        return self.config.flaw_skip_own_term_rule;
        #[cfg(not(feature = "flawed-variants"))]
        false
    }

    /// Refuses to make `learner` a voter unless it keeps up with the log:
    /// streaming, heard from within the minimum election timeout, and at
    /// most `max_learner_lag_entries` behind.
    fn check_caught_up(&self, learner: NodeId) -> Result<(), MembershipError> {
        let RoleState::Leader { progress } = &self.role else {
            return Ok(());
        };
        let Some(follower) = progress.get(learner) else {
            return Err(MembershipError::NotAMember(learner));
        };
        let match_index = follower.match_index();
        let behind = self
            .log
            .last_index()
            .get()
            .saturating_sub(match_index.get());
        let keeps_up = follower.is_streaming()
            && follower.is_recently_active(self.now, self.config.election_timeout_min)
            && behind <= self.config.max_learner_lag_entries;
        if keeps_up {
            Ok(())
        } else {
            Err(MembershipError::LearnerBehind {
                id: learner,
                match_index,
            })
        }
    }

    /// Appends `next` as the leader's new configuration, in force at once;
    /// returns the entry's index.
    fn append_membership(&mut self, next: Membership) -> LogIndex {
        let mut data = Vec::with_capacity(membership_encoded_len(&next));
        encode_membership(&next, &mut data);
        // In force before the entry is counted: a configuration commits by
        // its own majority.
        let index = self.log.last_index().next();
        self.memberships.push(index, next);
        self.on_membership_changed();
        let appended = self.append_new_entry(EntryKind::Membership, data.into());
        debug_assert_eq!(appended, index);
        index
    }

    /// Follows the membership entries among `entries`, just appended to a
    /// follower's log (each checked on arrival by `first_new_entry`).
    pub(crate) fn follow_appended_memberships(&mut self, entries: &[Entry]) {
        let mut changed = false;
        for entry in entries {
            if entry.kind == EntryKind::Membership {
                if let Some(membership) = entry_membership(entry) {
                    self.memberships.push(entry.index, membership);
                    changed = true;
                }
            }
        }
        if changed {
            self.on_membership_changed();
        }
    }

    /// The log lost its entries from `from` on: the configuration in force
    /// is the latest of those left.
    pub(crate) fn follow_truncated_memberships(&mut self, from: LogIndex) {
        let before = self.memberships.current_index();
        self.memberships.truncate_from(from);
        if self.memberships.current_index() != before {
            self.on_membership_changed();
        }
    }

    /// The log now starts after a snapshot through `index` whose
    /// configuration is `membership`.
    pub(crate) fn follow_snapshot_membership(&mut self, index: LogIndex, membership: Membership) {
        self.memberships.rebase(index, membership);
        self.on_membership_changed();
    }

    /// Brings what depends on the configuration in line with the one now
    /// in force: the voters counted, and a leader's followers.
    pub(crate) fn on_membership_changed(&mut self) {
        self.voters = self.memberships.current().quorum();
        let next_index = self.log.last_index().next();
        if let RoleState::Leader { progress } = &mut self.role {
            progress.reconcile(self.id, self.memberships.current(), self.now, next_index);
            // A voter fewer may be what the commit waited for.
            self.maybe_commit();
        }
    }

    /// At the end of every input, a leader acts on a configuration that
    /// committed: it steps down if it no longer votes in it, and leaves a
    /// joint configuration entered with `auto_leave`.
    pub(crate) fn settle_membership(&mut self, now: Instant) {
        if !matches!(self.role, RoleState::Leader { .. })
            || self.memberships.current_index() > self.commit_index
        {
            return;
        }
        let current = self.memberships.current();
        if !current.is_voter(self.id) {
            // Removed (or demoted), and every member of the configuration
            // that did it knows: the remaining voters elect a leader among
            // themselves, at once if one has the whole log.
            self.hand_off_leadership();
            self.become_follower(now, self.term, None);
        } else if current.is_joint() && current.auto_leave() {
            let left = current
                .with_change(&MembershipChange::LeaveJoint)
                .expect("a joint configuration can be left");
            self.append_membership(left);
        }
    }
}

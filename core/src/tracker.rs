//! A leader's view of all its followers: their [`Progress`], kept in one
//! id-sorted list, and the quorum questions asked of them together (the
//! commit index, check-quorum, read confirmation), answered through
//! `quorum.rs`.

use alloc::vec::Vec;

use crate::entry::Snapshot;
use crate::membership::Membership;
use crate::progress::Progress;
use crate::quorum::{majority_match_index, JointConfig};
use crate::time::Instant;
use crate::types::{LogIndex, NodeId};

/// A leader's progress for every other member, voter or learner, in one
/// id-sorted list.
///
/// Invariant: sorted by id without duplicates, and exactly the members of
/// the configuration but the leader.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ProgressTracker {
    followers: Vec<(NodeId, Progress)>,
    /// The leader's snapshot before its newest, kept while some follower
    /// was last sent it and the log still continues from it: resending it
    /// lets a transfer under way carry on (see `resumable_snapshot_for`).
    resumable_snapshot: Option<Snapshot>,
}

impl ProgressTracker {
    /// A new leader's view: every member but `leader`, probed from
    /// `next_index`, in contact as of `now`.
    pub(crate) fn new(
        leader: NodeId,
        membership: &Membership,
        now: Instant,
        next_index: LogIndex,
    ) -> ProgressTracker {
        let mut tracker = ProgressTracker {
            followers: Vec::new(),
            resumable_snapshot: None,
        };
        tracker.reconcile(leader, membership, now, next_index);
        tracker
    }

    /// Follows a change of configuration: members that left are dropped,
    /// new ones are probed from `next_index`, counted in contact as of
    /// `now` (so that check-quorum gives them a window to answer), and
    /// the progress of those that stay is kept.
    pub(crate) fn reconcile(
        &mut self,
        leader: NodeId,
        membership: &Membership,
        now: Instant,
        next_index: LogIndex,
    ) {
        // `members` is sorted, so the list stays sorted.
        let members = membership.members();
        self.followers
            .retain(|(id, _)| *id != leader && members.binary_search(id).is_ok());
        for id in members {
            if id == leader {
                continue;
            }
            if let Err(position) = self.followers.binary_search_by_key(&id, |(f, _)| *f) {
                self.followers
                    .insert(position, (id, Progress::new(now, next_index)));
            }
        }
    }

    /// The number of followers tracked.
    pub(crate) fn len(&self) -> usize {
        self.followers.len()
    }

    /// The id of the follower at `position` (in id order), for walking the
    /// followers while the leader sends to each.
    pub(crate) fn id_at(&self, position: usize) -> NodeId {
        self.followers[position].0
    }

    /// `id`'s progress, if it is a tracked follower.
    pub(crate) fn get(&self, id: NodeId) -> Option<&Progress> {
        let position = self.position(id)?;
        Some(&self.followers[position].1)
    }

    /// `id`'s progress, to change it, if it is a tracked follower.
    pub(crate) fn get_mut(&mut self, id: NodeId) -> Option<&mut Progress> {
        let position = self.position(id)?;
        Some(&mut self.followers[position].1)
    }

    fn position(&self, id: NodeId) -> Option<usize> {
        self.followers
            .binary_search_by_key(&id, |(follower, _)| *follower)
            .ok()
    }

    /// The follower at `position` (in id order) and its progress, for
    /// walking the followers while the leader sends to each.
    pub(crate) fn at(&self, position: usize) -> (NodeId, &Progress) {
        let (id, progress) = &self.followers[position];
        (*id, progress)
    }

    /// The follower at `position` (in id order) and its progress, to
    /// change it while walking the followers.
    pub(crate) fn at_mut(&mut self, position: usize) -> (NodeId, &mut Progress) {
        let (id, progress) = &mut self.followers[position];
        (*id, progress)
    }

    /// One pass over the followers for the commit news of `commit` at
    /// `now`: whether any follower is due news now, and when the leader
    /// must next act for one of them otherwise: a heartbeat that tells
    /// whether a snapshot arrived (see [`Progress::snapshot_probe_at`],
    /// after `retransmit_interval`), or news that waits for its follower's
    /// `news_interval` to end (see [`Progress::commit_news_at`]). The
    /// common case, news waiting for its interval, is decided here without
    /// sending anything.
    pub(crate) fn commit_news_plan(
        &self,
        commit: LogIndex,
        now: Instant,
        retransmit_interval: core::time::Duration,
        news_interval: core::time::Duration,
    ) -> (bool, Option<Instant>) {
        let mut due_now = false;
        let mut wakeup: Option<Instant> = None;
        let mut wake_at = |at: Instant| {
            wakeup = Some(wakeup.map_or(at, |earliest| earliest.min(at)));
        };
        for (_, progress) in &self.followers {
            match progress.commit_news_at(commit, news_interval) {
                Some(at) if at <= now => due_now = true,
                Some(at) => wake_at(at),
                None => {}
            }
            if let Some(at) = progress.snapshot_probe_at(retransmit_interval) {
                wake_at(at);
            }
        }
        (due_now, wakeup)
    }

    /// How far the leader may compact its log without costing a follower
    /// it should wait for a snapshot: the lowest of the followers' holds
    /// (see [`Progress::compaction_hold`]), if any has one.
    pub(crate) fn compaction_hold(
        &self,
        now: Instant,
        window: core::time::Duration,
    ) -> Option<LogIndex> {
        self.followers
            .iter()
            .filter_map(|(_, progress)| progress.compaction_hold(now, window))
            .min()
    }

    /// The leader took a newer snapshot than `previous` and its log now
    /// starts after `base_index`: keeps `previous` if a follower was last
    /// sent it and the log still continues from it.
    pub(crate) fn keep_resumable_snapshot(
        &mut self,
        previous: Option<Snapshot>,
        base_index: LogIndex,
    ) {
        self.resumable_snapshot = previous
            .filter(|previous| previous.index >= base_index && self.is_being_sent(previous));
    }

    /// Whether some follower was last sent `snapshot` and does not hold
    /// that far yet.
    fn is_being_sent(&self, snapshot: &Snapshot) -> bool {
        self.followers
            .iter()
            .any(|(_, progress)| progress.snapshot_sent() == Some(snapshot.index))
    }

    /// The snapshot to send `peer` instead of the newest, if any: the one
    /// it was last sent, when the leader still has it and the log
    /// continues from it (on a log starting after `base_index`), so that a
    /// large transfer under way — the driver streams it, and resumes it
    /// after a reconnection — is not replaced by another just as large.
    pub(crate) fn resumable_snapshot_for(
        &self,
        peer: NodeId,
        base_index: LogIndex,
    ) -> Option<&Snapshot> {
        let sent = self.get(peer)?.snapshot_sent()?;
        self.resumable_snapshot
            .as_ref()
            .filter(|snapshot| snapshot.index == sent && snapshot.index >= base_index)
    }

    /// The leader's heartbeat tick: each follower's periodic transition
    /// (see [`Progress::on_heartbeat_tick`]), and the older snapshot kept
    /// for resending goes once no follower is being sent it, rather than
    /// at the next snapshot (its data may be the application's state).
    pub(crate) fn on_heartbeat_tick(
        &mut self,
        now: Instant,
        last_index: LogIndex,
        heartbeat_interval: core::time::Duration,
    ) {
        for (_, progress) in &mut self.followers {
            progress.on_heartbeat_tick(now, last_index, heartbeat_interval);
        }
        if self
            .resumable_snapshot
            .as_ref()
            .is_some_and(|kept| !self.is_being_sent(kept))
        {
            self.resumable_snapshot = None;
        }
    }

    /// The highest index a quorum of `voters` holds, counting `own_match`
    /// for the leader itself. `scratch` is reused so that this allocates
    /// nothing once warm.
    pub(crate) fn committed_index(
        &self,
        voters: &JointConfig,
        leader: NodeId,
        own_match: LogIndex,
        scratch: &mut Vec<LogIndex>,
    ) -> LogIndex {
        // The common case, on every acknowledgement: one voter set, the
        // leader in it, no learners. The tracker lists exactly the other
        // members (checked by `check_invariants`), so then it lists exactly
        // the other voters, and their match indexes and the leader's own
        // are the whole count, with no lookup per voter.
        if !voters.is_joint()
            && self.followers.len() + 1 == voters.all_voters().len()
            && voters.contains(leader)
        {
            scratch.clear();
            scratch.push(own_match);
            scratch.extend(
                self.followers
                    .iter()
                    .map(|(_, progress)| progress.match_index()),
            );
            return majority_match_index(scratch);
        }
        voters.committed_index(
            |voter| {
                if voter == leader {
                    own_match
                } else {
                    self.get(voter).map_or(LogIndex(0), Progress::match_index)
                }
            },
            scratch,
        )
    }

    /// Whether the leader and the followers for which `agrees` holds form a
    /// quorum of `voters`.
    pub(crate) fn has_quorum(
        &self,
        voters: &JointConfig,
        leader: NodeId,
        mut agrees: impl FnMut(&Progress) -> bool,
    ) -> bool {
        voters.has_quorum(|voter| voter == leader || self.get(voter).is_some_and(&mut agrees))
    }

    /// Checks the tracker's invariants and each follower's, for a leader
    /// `leader` of `membership` whose log ends at `last_index`.
    pub(crate) fn check_invariants(
        &self,
        leader: NodeId,
        membership: &Membership,
        now: Instant,
        last_index: LogIndex,
        (max_inflight_appends, max_inflight_bytes): (usize, usize),
    ) {
        // Without allocating: checked after every input in debug builds.
        let others = membership.member_count() - usize::from(membership.is_member(leader));
        assert!(
            self.followers.windows(2).all(|pair| pair[0].0 < pair[1].0)
                && self
                    .followers
                    .iter()
                    .all(|(id, _)| *id != leader && membership.is_member(*id))
                && self.followers.len() == others,
            "the progress tracker does not list exactly the other members"
        );
        for (_, progress) in &self.followers {
            progress.check_invariants(now, last_index, max_inflight_appends, max_inflight_bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use bytes::Bytes;

    use super::*;

    fn snapshot(index: u64, membership: &Membership) -> Snapshot {
        Snapshot {
            index: LogIndex(index),
            term: crate::types::Term(1),
            membership: membership.clone(),
            data: Bytes::from_static(b"state"),
        }
    }

    #[test]
    fn a_snapshot_kept_for_resending_goes_once_no_follower_is_sent_it() {
        let membership = Membership::with_voters(&[NodeId(1), NodeId(2), NodeId(3)]).unwrap();
        let now = Instant::ZERO;
        let mut tracker = ProgressTracker::new(NodeId(1), &membership, now, LogIndex(1));
        tracker
            .get_mut(NodeId(3))
            .unwrap()
            .become_snapshot(now, LogIndex(10));
        tracker.keep_resumable_snapshot(Some(snapshot(10, &membership)), LogIndex(10));
        let beat = Duration::from_millis(50);
        tracker.on_heartbeat_tick(now, LogIndex(20), beat);
        assert_eq!(
            tracker
                .resumable_snapshot_for(NodeId(3), LogIndex(10))
                .map(|s| s.index),
            Some(LogIndex(10)),
            "kept while node 3 is being sent it"
        );
        tracker
            .get_mut(NodeId(3))
            .unwrap()
            .on_ack(now, LogIndex(10));
        tracker.on_heartbeat_tick(now, LogIndex(20), beat);
        assert_eq!(tracker.resumable_snapshot, None);
    }
}

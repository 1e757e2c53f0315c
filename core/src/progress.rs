//! What a leader knows about each follower, and the flow-control state
//! machine that decides what it may send next.
//!
//! Every change to a follower's progress goes through a named transition
//! here (`on_entries_sent`, `on_ack`, `on_reject`, `become_snapshot`,
//! `on_heartbeat_tick`, ...), and each transition checks the invariants it
//! must leave behind. The replication rules in `replication.rs` decide
//! *when* to call them; this module alone decides *what changes*.
//!
//! The states, after etcd's tracker:
//!
//! - **Probe**: where the follower's log matches the leader's is unknown.
//!   One append at a time from `next_index`, then wait for its answer (or
//!   the next heartbeat).
//! - **Replicate**: the follower matches up to `match_index`. Appends
//!   stream without waiting, up to the in-flight limit.
//! - **Snapshot**: the follower needs entries the leader compacted away;
//!   it was sent the snapshot and nothing else goes out until it answers.

use alloc::vec::Vec;

use crate::quorum::{majority_match_index, JointConfig};
use crate::time::Instant;
use crate::types::{LogIndex, NodeId};

/// How a leader sends to one follower (the flow-control state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ReplicationState {
    /// Where the follower's log matches is not known: send one append at
    /// a time from `next_index` and wait for its answer.
    Probe {
        /// An append is outstanding; send no other until it is answered
        /// or the next heartbeat.
        paused: bool,
    },
    /// The follower matches up to `match_index`: stream appends without
    /// waiting, up to the in-flight limit.
    Replicate {
        /// Appends sent and not yet answered. Invariant: at most the
        /// in-flight limit.
        in_flight: usize,
    },
    /// The follower was sent the snapshot through `index`, and nothing
    /// else is sent until it answers (or the snapshot is sent again, after
    /// an election timeout).
    Snapshot {
        /// The index of the snapshot sent.
        index: LogIndex,
        /// When it was sent.
        sent_at: Instant,
    },
}

/// What a leader tracks about one follower. Its fields change only
/// through the transitions below.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Progress {
    /// When the follower last answered in the leader's term; the leader's
    /// election counts as an answer. Invariant: never in the future.
    last_contact_at: Instant,
    /// Highest index known to be replicated on the follower.
    /// Invariant: `match_index < next_index`.
    match_index: LogIndex,
    /// The next index to send.
    next_index: LogIndex,
    /// When `match_index` last advanced (or the follower became caught
    /// up): a streaming follower whose match index stands still for a
    /// heartbeat interval lost appends.
    last_progress_at: Instant,
    /// The highest read round whose leadership check the follower answered
    /// in the leader's term.
    read_round_seen: u64,
    state: ReplicationState,
}

impl Progress {
    /// A follower about which nothing is known yet, probed from
    /// `next_index`. A new leader has just heard from a majority (its
    /// votes), so every follower counts as in contact `now`.
    pub(crate) fn new(now: Instant, next_index: LogIndex) -> Progress {
        assert!(next_index > LogIndex(0), "index 0 is never sent");
        Progress {
            last_contact_at: now,
            match_index: LogIndex(0),
            next_index,
            last_progress_at: now,
            read_round_seen: 0,
            state: ReplicationState::Probe { paused: false },
        }
    }

    /// Highest index known to be replicated on the follower.
    pub(crate) fn match_index(&self) -> LogIndex {
        self.match_index
    }

    /// The next index to send.
    pub(crate) fn next_index(&self) -> LogIndex {
        self.next_index
    }

    /// The flow-control state.
    #[cfg(test)]
    pub(crate) fn state(&self) -> ReplicationState {
        self.state
    }

    /// Whether the follower answered within `window` of `now`.
    pub(crate) fn is_recently_active(&self, now: Instant, window: core::time::Duration) -> bool {
        now < self.last_contact_at + window
    }

    /// Whether the follower answered the leadership check of `round` (or a
    /// later one).
    pub(crate) fn has_seen_read_round(&self, round: u64) -> bool {
        self.read_round_seen >= round
    }

    /// The follower answered something in the leader's term.
    pub(crate) fn record_contact(&mut self, now: Instant) {
        debug_assert!(now >= self.last_contact_at, "time went backwards");
        self.last_contact_at = now;
    }

    /// The follower answered the leadership check of `round`.
    pub(crate) fn record_read_round(&mut self, now: Instant, round: u64) {
        self.record_contact(now);
        self.read_round_seen = self.read_round_seen.max(round);
    }

    /// Whether flow control lets entries (or a snapshot) go to the
    /// follower now.
    pub(crate) fn may_send_entries(&self, max_inflight_appends: usize) -> bool {
        match self.state {
            ReplicationState::Probe { paused } => !paused,
            ReplicationState::Replicate { in_flight } => in_flight < max_inflight_appends,
            ReplicationState::Snapshot { .. } => false,
        }
    }

    /// The index an empty heartbeat names as its previous entry: what a
    /// streaming follower is known to hold, the entry before the probe
    /// point of a probed one, and the log's base while a snapshot is out.
    /// Never below `base_index`, whose term is the oldest the leader knows.
    pub(crate) fn heartbeat_prev_index(&self, base_index: LogIndex) -> LogIndex {
        let prev = match self.state {
            ReplicationState::Replicate { .. } => self.match_index,
            ReplicationState::Probe { .. } => LogIndex(self.next_index.get() - 1),
            ReplicationState::Snapshot { .. } => base_index,
        };
        prev.max(base_index)
    }

    /// An append of entries up to `last_sent` (from `next_index`) went
    /// out, as [`Progress::may_send_entries`] allowed.
    pub(crate) fn on_entries_sent(&mut self, now: Instant, last_sent: LogIndex) {
        debug_assert!(
            last_sent >= self.next_index,
            "an append carries the next entry"
        );
        match &mut self.state {
            ReplicationState::Probe { paused } => {
                debug_assert!(!*paused, "a paused probe sends nothing");
                *paused = true;
            }
            ReplicationState::Replicate { in_flight } => {
                if self.match_index.next() == self.next_index {
                    // The follower was caught up: the stall clock starts
                    // with this append, not at its last progress.
                    self.last_progress_at = now;
                }
                *in_flight += 1;
                self.next_index = last_sent.next();
            }
            ReplicationState::Snapshot { .. } => {
                debug_assert!(false, "nothing but the snapshot goes out while it is");
            }
        }
    }

    /// The leader sent the follower its snapshot through `index`.
    pub(crate) fn become_snapshot(&mut self, now: Instant, index: LogIndex) {
        debug_assert!(index > self.match_index, "the follower needs the snapshot");
        self.state = ReplicationState::Snapshot {
            index,
            sent_at: now,
        };
    }

    /// Whether an answer with `success` about `index` means anything: while
    /// a snapshot is out, only its answer (or a later success) does;
    /// anything else predates it.
    pub(crate) fn is_answer_current(&self, success: bool, index: LogIndex) -> bool {
        match self.state {
            ReplicationState::Snapshot {
                index: snapshot, ..
            } => success && index >= snapshot,
            ReplicationState::Probe { .. } | ReplicationState::Replicate { .. } => true,
        }
    }

    /// The follower holds every entry through `index` (a successful
    /// answer): it now streams from there.
    pub(crate) fn on_ack(&mut self, now: Instant, index: LogIndex) {
        if index > self.match_index {
            self.match_index = index;
            self.last_progress_at = now;
        }
        match &mut self.state {
            ReplicationState::Probe { .. } | ReplicationState::Snapshot { .. } => {
                self.become_replicate(now);
            }
            ReplicationState::Replicate { in_flight } => {
                *in_flight = in_flight.saturating_sub(1);
                if self.next_index <= self.match_index {
                    self.next_index = self.match_index.next();
                }
            }
        }
        self.assert_indices();
    }

    /// Whether a rejection saying only that the follower's log ends before
    /// `index` (no conflicting term) tells the leader anything. It does
    /// only while probing, and only if that end lies between what the
    /// follower is known to hold and what is being probed. Otherwise the
    /// answer is stale: the follower has since received more, or (when
    /// streaming) the missing entries are on their way because appends
    /// overtook each other. Lost appends are caught by the stall check at
    /// the next heartbeat.
    pub(crate) fn is_short_log_news(&self, index: LogIndex) -> bool {
        match self.state {
            ReplicationState::Replicate { .. } | ReplicationState::Snapshot { .. } => false,
            ReplicationState::Probe { .. } => index > self.match_index && index < self.next_index,
        }
    }

    /// The follower's log does not match where the leader tried: probe
    /// again from `retry_from`, but never below what the follower is known
    /// to hold nor past the leader's log (which ends at `last_index`).
    pub(crate) fn on_reject(&mut self, retry_from: LogIndex, last_index: LogIndex) {
        let next = retry_from
            .max(self.match_index.next())
            .min(last_index.next());
        self.become_probe(next);
    }

    /// The leader's periodic look at the follower: a streaming follower
    /// whose match index has not moved for `heartbeat_interval` while the
    /// leader's log (ending at `last_index`) is ahead lost appends, and is
    /// probed again from just past what it holds; a probe whose answer was
    /// lost is sent again; an unanswered snapshot may be lost or merely
    /// large, so it is sent again only after `snapshot_timeout`.
    pub(crate) fn on_heartbeat_tick(
        &mut self,
        now: Instant,
        last_index: LogIndex,
        heartbeat_interval: core::time::Duration,
        snapshot_timeout: core::time::Duration,
    ) {
        let stalled =
            self.match_index < last_index && now >= self.last_progress_at + heartbeat_interval;
        match self.state {
            ReplicationState::Replicate { .. } if stalled => {
                self.become_probe(self.match_index.next());
            }
            ReplicationState::Probe { .. } => {
                self.state = ReplicationState::Probe { paused: false };
            }
            ReplicationState::Snapshot { sent_at, .. } if now >= sent_at + snapshot_timeout => {
                self.become_probe(self.match_index.next());
            }
            ReplicationState::Replicate { .. } | ReplicationState::Snapshot { .. } => {}
        }
    }

    fn become_probe(&mut self, next_index: LogIndex) {
        self.next_index = next_index;
        self.state = ReplicationState::Probe { paused: false };
        self.assert_indices();
    }

    fn become_replicate(&mut self, now: Instant) {
        self.state = ReplicationState::Replicate { in_flight: 0 };
        self.next_index = self.match_index.next();
        self.last_progress_at = now;
        self.assert_indices();
    }

    fn assert_indices(&self) {
        assert!(
            self.match_index < self.next_index,
            "progress: match index {} is not below next index {}",
            self.match_index,
            self.next_index
        );
    }

    /// Checks every invariant of one follower's progress on a leader whose
    /// log ends at `last_index`, at time `now`.
    pub(crate) fn check_invariants(
        &self,
        now: Instant,
        last_index: LogIndex,
        max_inflight_appends: usize,
    ) {
        self.assert_indices();
        assert!(
            self.match_index <= last_index,
            "progress: match index {} beyond the leader's log ({last_index})",
            self.match_index
        );
        assert!(
            self.next_index <= last_index.next(),
            "progress: next index {} more than one past the leader's log ({last_index})",
            self.next_index
        );
        assert!(
            self.last_contact_at <= now && self.last_progress_at <= now,
            "progress: contact or progress in the future"
        );
        match self.state {
            ReplicationState::Probe { .. } => {}
            ReplicationState::Replicate { in_flight } => assert!(
                in_flight <= max_inflight_appends,
                "progress: {in_flight} appends in flight, over the limit"
            ),
            ReplicationState::Snapshot { index, sent_at } => {
                assert!(sent_at <= now, "progress: a snapshot sent in the future");
                assert!(
                    index > self.match_index,
                    "progress: a snapshot through {index} sent to a follower holding {}",
                    self.match_index
                );
            }
        }
    }
}

/// A leader's progress for every other member, in one id-sorted list.
///
/// Invariant: sorted by id without duplicates, and exactly the voters of
/// the configuration but the leader.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ProgressTracker {
    followers: Vec<(NodeId, Progress)>,
}

impl ProgressTracker {
    /// A new leader's view: every voter but `leader`, probed from
    /// `next_index`, in contact as of `now`.
    pub(crate) fn new(
        leader: NodeId,
        voters: &JointConfig,
        now: Instant,
        next_index: LogIndex,
    ) -> ProgressTracker {
        // `all_voters` is sorted, so the list is too.
        let followers = voters
            .all_voters()
            .iter()
            .filter(|&&voter| voter != leader)
            .map(|&voter| (voter, Progress::new(now, next_index)))
            .collect();
        ProgressTracker { followers }
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

    /// Every follower's progress, to run a periodic transition on each.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Progress> {
        self.followers.iter_mut().map(|(_, progress)| progress)
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
        if !voters.is_joint() {
            // The common case, on every acknowledgement: the tracker lists
            // exactly the other voters (checked by `check_invariants`), so
            // their match indexes and the leader's own are the whole count,
            // with no lookup per voter.
            scratch.clear();
            scratch.push(own_match);
            scratch.extend(
                self.followers
                    .iter()
                    .map(|(_, progress)| progress.match_index),
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
    /// `leader` of `voters` whose log ends at `last_index`.
    pub(crate) fn check_invariants(
        &self,
        leader: NodeId,
        voters: &JointConfig,
        now: Instant,
        last_index: LogIndex,
        max_inflight_appends: usize,
    ) {
        let mut expected = voters.all_voters().iter().filter(|&&id| id != leader);
        for (id, progress) in &self.followers {
            assert_eq!(
                expected.next(),
                Some(id),
                "the progress tracker does not list exactly the other voters"
            );
            progress.check_invariants(now, last_index, max_inflight_appends);
        }
        assert_eq!(expected.next(), None, "the progress tracker misses a voter");
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::*;

    const HEARTBEAT: Duration = Duration::from_millis(50);
    const SNAPSHOT_TIMEOUT: Duration = Duration::from_millis(300);

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    #[test]
    fn a_probe_sends_one_append_and_waits_for_its_answer() {
        let mut progress = Progress::new(at(0), LogIndex(6));
        assert!(progress.may_send_entries(4));
        progress.on_entries_sent(at(1), LogIndex(8));
        assert!(!progress.may_send_entries(4));
        // A probe does not move its next index until it hears back.
        assert_eq!(progress.next_index(), LogIndex(6));
        progress.on_ack(at(2), LogIndex(8));
        assert_eq!(
            progress.state(),
            ReplicationState::Replicate { in_flight: 0 }
        );
        assert_eq!(
            (progress.match_index(), progress.next_index()),
            (LogIndex(8), LogIndex(9))
        );
        progress.check_invariants(at(2), LogIndex(8), 4);
    }

    #[test]
    fn replication_streams_up_to_the_in_flight_limit() {
        let mut progress = Progress::new(at(0), LogIndex(1));
        progress.on_ack(at(0), LogIndex(0));
        for last in 1..=2 {
            assert!(progress.may_send_entries(2));
            progress.on_entries_sent(at(1), LogIndex(last));
        }
        assert!(!progress.may_send_entries(2));
        assert_eq!(progress.next_index(), LogIndex(3));
        progress.on_ack(at(2), LogIndex(1));
        assert!(progress.may_send_entries(2));
        progress.check_invariants(at(2), LogIndex(2), 2);
    }

    #[test]
    fn a_rejection_probes_again_but_never_below_what_the_follower_holds() {
        let mut progress = Progress::new(at(0), LogIndex(10));
        progress.on_ack(at(0), LogIndex(4));
        progress.on_reject(LogIndex(2), LogIndex(9));
        assert_eq!(progress.next_index(), LogIndex(5));
        assert_eq!(progress.state(), ReplicationState::Probe { paused: false });
        progress.on_reject(LogIndex(50), LogIndex(9));
        assert_eq!(progress.next_index(), LogIndex(10));
    }

    #[test]
    fn a_short_log_is_news_only_to_a_probe_between_match_and_next() {
        let mut progress = Progress::new(at(0), LogIndex(10));
        assert!(progress.is_short_log_news(LogIndex(5)));
        assert!(!progress.is_short_log_news(LogIndex(10)));
        progress.on_ack(at(0), LogIndex(7));
        assert!(!progress.is_short_log_news(LogIndex(5)));
    }

    #[test]
    fn only_the_snapshot_s_answer_ends_the_wait_for_it() {
        let mut progress = Progress::new(at(0), LogIndex(3));
        progress.become_snapshot(at(1), LogIndex(20));
        assert!(!progress.may_send_entries(4));
        assert!(!progress.is_answer_current(true, LogIndex(19)));
        assert!(!progress.is_answer_current(false, LogIndex(25)));
        assert!(progress.is_answer_current(true, LogIndex(20)));
        progress.on_ack(at(2), LogIndex(20));
        assert_eq!(progress.next_index(), LogIndex(21));
    }

    #[test]
    fn the_heartbeat_tick_restarts_stalled_streams_and_lost_snapshots() {
        let mut progress = Progress::new(at(0), LogIndex(1));
        progress.on_ack(at(0), LogIndex(0));
        progress.on_entries_sent(at(10), LogIndex(5));
        progress.on_heartbeat_tick(at(40), LogIndex(5), HEARTBEAT, SNAPSHOT_TIMEOUT);
        assert_eq!(
            progress.state(),
            ReplicationState::Replicate { in_flight: 1 }
        );
        progress.on_heartbeat_tick(at(60), LogIndex(5), HEARTBEAT, SNAPSHOT_TIMEOUT);
        assert_eq!(progress.state(), ReplicationState::Probe { paused: false });
        assert_eq!(progress.next_index(), LogIndex(1));

        progress.become_snapshot(at(100), LogIndex(9));
        progress.on_heartbeat_tick(at(399), LogIndex(9), HEARTBEAT, SNAPSHOT_TIMEOUT);
        assert!(matches!(
            progress.state(),
            ReplicationState::Snapshot { .. }
        ));
        progress.on_heartbeat_tick(at(400), LogIndex(9), HEARTBEAT, SNAPSHOT_TIMEOUT);
        assert_eq!(progress.state(), ReplicationState::Probe { paused: false });
    }
}

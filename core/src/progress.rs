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
//!   stream without waiting, up to the in-flight limits (appends and
//!   payload bytes, see `inflight.rs`).
//! - **Snapshot**: the follower needs entries the leader compacted away;
//!   it was sent the snapshot and nothing else goes out until it answers,
//!   or an answer shows the snapshot was lost.
//!
//! Whatever the state, news that something was lost sends the leader back
//! to probing at once: a rejection showing the follower lacks entries that
//! were sent, an answer showing it still lacks the snapshot a heartbeat
//! interval after it left, or the driver's report that the follower is
//! unreachable ([`Progress::on_unreachable`]).

use crate::inflight::Inflights;
use crate::time::Instant;
use crate::types::LogIndex;

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
    /// waiting, up to the in-flight limits (see `Progress::inflights`).
    Replicate,
    /// The follower was sent the snapshot through `index`, and nothing
    /// else is sent until it answers, or until an answer shows the
    /// snapshot lost (see [`Progress::is_snapshot_overdue`]).
    Snapshot {
        /// The index of the snapshot sent.
        index: LogIndex,
        /// When it was sent.
        sent_at: Instant,
        /// A heartbeat went to the follower at least a retransmission
        /// interval after the snapshot (see [`Progress::snapshot_probe_at`]).
        probed: bool,
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
    /// The highest commit index the follower was sent together with the
    /// entries it covers (an append's commit index counts only up to its
    /// last entry). Optimistic: the message may be lost, which the next
    /// heartbeat makes good.
    commit_sent: LogIndex,
    /// When the follower was last sent an append carrying nothing but the
    /// commit index (see [`Progress::commit_news_at`]).
    commit_news_sent_at: Option<Instant>,
    /// The driver reported the follower unreachable and it has not
    /// answered since: a snapshot for it waits for its answer, so that a
    /// peer that is down is not sent the whole snapshot every heartbeat.
    unreachable: bool,
    /// While streaming: the last entry of a gap resent and not yet
    /// acknowledged (see [`Progress::gap_to_resend`]), so that the many
    /// rejections one missing append causes resend it once.
    gap_resent_through: Option<LogIndex>,
    /// The appends out while streaming. Invariant: empty in any other
    /// state, and within the in-flight limits.
    inflights: Inflights,
    /// The index of the snapshot last sent to the follower, until the
    /// follower holds that far or is reported unreachable: while the log
    /// still continues from it, a resend sends that snapshot again rather
    /// than a newer one, so that a transfer under way (which may take
    /// seconds for a large snapshot) carries on instead of starting over.
    snapshot_sent: Option<LogIndex>,
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
            commit_sent: LogIndex(0),
            commit_news_sent_at: None,
            gap_resent_through: None,
            unreachable: false,
            inflights: Inflights::default(),
            snapshot_sent: None,
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

    /// The index of the snapshot last sent to the follower, while the
    /// follower does not hold that far and has not been reported
    /// unreachable since.
    pub(crate) fn snapshot_sent(&self) -> Option<LogIndex> {
        self.snapshot_sent
    }

    /// How far the leader may compact its log without costing this
    /// follower a snapshot, if the leader should wait for it: a follower
    /// sent a snapshot needs the entries after it (it is busy receiving or
    /// installing it, and may not answer for a while), and a streaming one
    /// that answered within `window` of `now` needs those after what it
    /// holds. `None` for a follower that is being probed (what it needs is
    /// not known) or silent.
    pub(crate) fn compaction_hold(
        &self,
        now: Instant,
        window: core::time::Duration,
    ) -> Option<LogIndex> {
        match self.state {
            ReplicationState::Snapshot { index, .. } => Some(index),
            ReplicationState::Replicate if self.is_recently_active(now, window) => {
                Some(self.match_index)
            }
            ReplicationState::Replicate | ReplicationState::Probe { .. } => None,
        }
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

    /// The follower answered something in the leader's term. Returns
    /// whether it had been reported unreachable, so that what waited for
    /// its answer (a snapshot) may go now.
    pub(crate) fn record_contact(&mut self, now: Instant) -> bool {
        debug_assert!(now >= self.last_contact_at, "time went backwards");
        self.last_contact_at = now;
        core::mem::take(&mut self.unreachable)
    }

    /// Whether a snapshot may go to the follower: not while it has been
    /// reported unreachable and has not answered since.
    pub(crate) fn may_send_snapshot(&self) -> bool {
        !self.unreachable
    }

    /// The follower answered the leadership check of `round`.
    pub(crate) fn record_read_round(&mut self, now: Instant, round: u64) {
        // A snapshot waiting for it goes with the next heartbeat.
        let _revived = self.record_contact(now);
        self.read_round_seen = self.read_round_seen.max(round);
    }

    /// An append went out telling the follower that entries through
    /// `commit` are committed (its commit index, capped at the append's
    /// last entry).
    pub(crate) fn on_commit_sent(&mut self, commit: LogIndex) {
        self.commit_sent = self.commit_sent.max(commit);
    }

    /// When the follower should be told that entries it holds are
    /// committed through `commit`, if it should: it holds some it was not
    /// told of, and no append is out to it whose answer would bring an
    /// append carrying the news anyway (so a burst of appends brings one
    /// piece of news, after the last answer, not one per answer). At once,
    /// unless it was sent such news less than `interval` ago: then at the
    /// interval's end, so that a leader committing entry after entry sends
    /// a follower one message of news per interval, not one per entry.
    pub(crate) fn commit_news_at(
        &self,
        commit: LogIndex,
        interval: core::time::Duration,
    ) -> Option<Instant> {
        // The index comparison first: it rules out most followers most of
        // the time.
        let needs = self.commit_sent < commit.min(self.match_index)
            && self.state == ReplicationState::Replicate
            && self.inflights.is_empty();
        if !needs {
            return None;
        }
        Some(
            self.commit_news_sent_at
                .map_or(Instant::ZERO, |sent_at| sent_at + interval),
        )
    }

    /// An append carrying nothing new but the commit index went out `now`.
    pub(crate) fn on_commit_news_sent(&mut self, now: Instant) {
        self.commit_news_sent_at = Some(now);
    }

    /// Whether flow control lets entries (or a snapshot) go to the
    /// follower now: a stream may have `max_appends` appends out, and up
    /// to `max_bytes` payload bytes (one append always goes).
    pub(crate) fn may_send_entries(&self, max_appends: usize, max_bytes: usize) -> bool {
        match self.state {
            ReplicationState::Probe { paused } => !paused,
            ReplicationState::Replicate => self.inflights.has_room(max_appends, max_bytes),
            ReplicationState::Snapshot { .. } => false,
        }
    }

    /// Appends out to a streaming follower, and their payload bytes.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> (usize, usize) {
        (self.inflights.len(), self.inflights.bytes())
    }

    /// The index an empty heartbeat names as its previous entry: what a
    /// streaming follower is known to hold, the entry before the probe
    /// point of a probed one, and the snapshot's last entry while a
    /// snapshot is out, so that a follower that installed it answers with
    /// the snapshot's acknowledgement (in case the first was lost) and one
    /// that did not says it lacks it. Never below `base_index`, whose term
    /// is the oldest the leader knows.
    pub(crate) fn heartbeat_prev_index(&self, base_index: LogIndex) -> LogIndex {
        let prev = match self.state {
            ReplicationState::Replicate => self.match_index,
            ReplicationState::Probe { .. } => LogIndex(self.next_index.get() - 1),
            ReplicationState::Snapshot { index, .. } => index,
        };
        prev.max(base_index)
    }

    /// An append of entries up to `last_sent` (from `next_index`), of
    /// `bytes` payload bytes, went out, as [`Progress::may_send_entries`]
    /// allowed.
    pub(crate) fn on_entries_sent(&mut self, now: Instant, last_sent: LogIndex, bytes: usize) {
        debug_assert!(
            last_sent >= self.next_index,
            "an append carries the next entry"
        );
        match &mut self.state {
            ReplicationState::Probe { paused } => {
                debug_assert!(!*paused, "a paused probe sends nothing");
                *paused = true;
            }
            ReplicationState::Replicate => {
                if self.match_index.next() == self.next_index {
                    // The follower was caught up: the stall clock starts
                    // with this append, not at its last progress.
                    self.last_progress_at = now;
                }
                self.inflights.add(last_sent, bytes);
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
        self.end_stream();
        self.snapshot_sent = Some(index);
        self.state = ReplicationState::Snapshot {
            index,
            sent_at: now,
            probed: false,
        };
    }

    /// When the leader should send the follower a heartbeat to learn
    /// whether the snapshot out to it arrived: one retransmission interval
    /// after it left, unless a heartbeat has gone since then. The answer
    /// then comes a round trip later and tells (see
    /// [`Progress::is_snapshot_overdue`]), so a lost snapshot costs one
    /// interval plus a round trip, whatever the phase of the heartbeats.
    pub(crate) fn snapshot_probe_at(
        &self,
        retransmit_interval: core::time::Duration,
    ) -> Option<Instant> {
        match self.state {
            ReplicationState::Snapshot {
                sent_at,
                probed: false,
                ..
            } => Some(sent_at + retransmit_interval),
            _ => None,
        }
    }

    /// A heartbeat went to the follower `now`: if a snapshot is out and
    /// the retransmission interval has passed, its answer will tell
    /// whether the snapshot arrived.
    pub(crate) fn on_heartbeat_sent(
        &mut self,
        now: Instant,
        retransmit_interval: core::time::Duration,
    ) {
        if let ReplicationState::Snapshot {
            sent_at, probed, ..
        } = &mut self.state
        {
            if now >= *sent_at + retransmit_interval {
                *probed = true;
            }
        }
    }

    /// Whether an answer with `success` about `index` means anything: while
    /// a snapshot is out, only its answer (or a later success) does;
    /// anything else predates it.
    pub(crate) fn is_answer_current(&self, success: bool, index: LogIndex) -> bool {
        match self.state {
            ReplicationState::Snapshot {
                index: snapshot, ..
            } => success && index >= snapshot,
            ReplicationState::Probe { .. } | ReplicationState::Replicate => true,
        }
    }

    /// Whether the snapshot out to the follower is presumed lost, given an
    /// answer (received `now`) that does not acknowledge it: the answer
    /// shows the follower lacks it, and it arrived at least
    /// `retransmit_interval` after the snapshot left. An earlier answer may
    /// predate the snapshot's arrival; a later one answers a heartbeat sent
    /// after the snapshot, which on an ordered link arrives behind it,
    /// provided a round trip takes less than the interval.
    pub(crate) fn is_snapshot_overdue(
        &self,
        now: Instant,
        retransmit_interval: core::time::Duration,
    ) -> bool {
        match self.state {
            ReplicationState::Snapshot { sent_at, .. } => now >= sent_at + retransmit_interval,
            ReplicationState::Probe { .. } | ReplicationState::Replicate => false,
        }
    }

    /// The snapshot out to the follower was lost: probe again from just
    /// past what the follower holds (which sends the snapshot again if the
    /// log no longer reaches back there).
    pub(crate) fn on_snapshot_lost(&mut self) {
        debug_assert!(
            matches!(self.state, ReplicationState::Snapshot { .. }),
            "no snapshot is out"
        );
        self.become_probe(self.match_index.next());
    }

    /// The driver could not deliver a message to the follower (its link is
    /// down or its queue overflowed), so whatever is in flight to it may be
    /// lost: probe again from just past what it holds, starting at the
    /// next heartbeat rather than at once, so that a follower that stays
    /// unreachable costs one small append per heartbeat interval; and if
    /// it needs a snapshot, send that only once it answers.
    pub(crate) fn on_unreachable(&mut self) {
        self.unreachable = true;
        // Its transfer may be gone with the connection; should the leader
        // no longer have that snapshot to send, it sends its newest.
        self.snapshot_sent = None;
        if let ReplicationState::Replicate | ReplicationState::Snapshot { .. } = self.state {
            self.next_index = self.match_index.next();
        }
        self.state = ReplicationState::Probe { paused: true };
        self.end_stream();
        self.assert_indices();
    }

    /// The follower holds every entry through `index` (a successful
    /// answer): it now streams from there.
    pub(crate) fn on_ack(&mut self, now: Instant, index: LogIndex) {
        if index > self.match_index {
            self.match_index = index;
            self.last_progress_at = now;
        }
        if self
            .gap_resent_through
            .is_some_and(|through| through <= self.match_index)
        {
            self.gap_resent_through = None;
        }
        if self
            .snapshot_sent
            .is_some_and(|index| index <= self.match_index)
        {
            self.snapshot_sent = None;
        }
        match &mut self.state {
            ReplicationState::Probe { .. } | ReplicationState::Snapshot { .. } => {
                self.become_replicate(now);
            }
            ReplicationState::Replicate => {
                // One answer covers every append up to what it names.
                self.inflights.free_through(self.match_index);
                if self.next_index <= self.match_index {
                    self.next_index = self.match_index.next();
                }
            }
        }
        self.assert_indices();
    }

    /// Whether a rejection saying only that the follower's log ends before
    /// `index` (no conflicting term) tells the leader anything: it does if
    /// that end lies between what the follower is known to hold and what
    /// was sent, so entries sent are missing there (see
    /// [`Progress::gap_to_resend`] for a streaming follower). An answer
    /// outside that range is stale: the follower has since received more.
    /// While a snapshot is out, only its answer counts (see
    /// [`Progress::is_answer_current`]).
    pub(crate) fn is_short_log_news(&self, index: LogIndex) -> bool {
        match self.state {
            ReplicationState::Snapshot { .. } => false,
            ReplicationState::Probe { .. } | ReplicationState::Replicate => {
                index > self.match_index && index < self.next_index
            }
        }
    }

    /// Whether the follower streams (its log is known to match up to
    /// `match_index`).
    pub(crate) fn is_streaming(&self) -> bool {
        matches!(self.state, ReplicationState::Replicate)
    }

    /// A streaming follower refused an append because its log ends just
    /// before `index`, entries that were sent: an append was lost, or
    /// overtaken by a later one (which the follower had to refuse). Returns
    /// the last entry of the gap, `index` up to what was sent, which the
    /// leader sends again at once (see [`Progress::on_gap_resent`]) while
    /// the stream goes on: one round trip, rather than waiting for the
    /// stall check at the next heartbeat. An overtaken append then arrives
    /// twice, which is harmless. While a resent gap is unacknowledged, no
    /// other is resent (`None`): it covers what was sent, so the refusals
    /// of the appends behind it (or overtaken with it) cost nothing more;
    /// if it is lost too, the stall check probes the follower at the next
    /// heartbeat.
    pub(crate) fn gap_to_resend(&self, index: LogIndex) -> Option<LogIndex> {
        debug_assert!(self.is_streaming() && self.is_short_log_news(index));
        if self.gap_resent_through.is_some() {
            return None;
        }
        Some(LogIndex(self.next_index.get() - 1))
    }

    /// The gap of a streaming follower was sent again, through `last`.
    pub(crate) fn on_gap_resent(&mut self, last: LogIndex) {
        debug_assert!(
            self.is_streaming() && last > self.match_index && last < self.next_index,
            "a resent gap lies within what the stream has out"
        );
        self.gap_resent_through = Some(last);
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
    /// leader's log (ending at `last_index`) is ahead lost appends (and no
    /// later append's rejection said so), and is probed again from just
    /// past what it holds; a probe whose answer was lost is sent again. An
    /// unanswered snapshot stays out: it may be merely large, and the
    /// heartbeat sent now will tell (see
    /// [`Progress::is_snapshot_overdue`]).
    pub(crate) fn on_heartbeat_tick(
        &mut self,
        now: Instant,
        last_index: LogIndex,
        heartbeat_interval: core::time::Duration,
    ) {
        let stalled =
            self.match_index < last_index && now >= self.last_progress_at + heartbeat_interval;
        match self.state {
            ReplicationState::Replicate if stalled => {
                self.become_probe(self.match_index.next());
            }
            ReplicationState::Probe { .. } => {
                self.state = ReplicationState::Probe { paused: false };
            }
            ReplicationState::Replicate | ReplicationState::Snapshot { .. } => {}
        }
    }

    fn become_probe(&mut self, next_index: LogIndex) {
        self.next_index = next_index;
        self.end_stream();
        self.state = ReplicationState::Probe { paused: false };
        self.assert_indices();
    }

    fn become_replicate(&mut self, now: Instant) {
        self.state = ReplicationState::Replicate;
        self.end_stream();
        self.next_index = self.match_index.next();
        self.last_progress_at = now;
        self.assert_indices();
    }

    /// Forgets what belonged to the stream (if any) the follower leaves or
    /// restarts: its appends out, and its resent gap, which left set would
    /// outlive the stream and, once a snapshot is acknowledged, lie beyond
    /// the new stream's next index (and hold back resending a real gap).
    fn end_stream(&mut self) {
        self.gap_resent_through = None;
        self.inflights.clear();
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
        max_inflight_bytes: usize,
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
        if let Some(through) = self.gap_resent_through {
            assert!(
                self.is_streaming() && through > self.match_index && through < self.next_index,
                "progress: a resent gap through {through} outside what a stream has out"
            );
        }
        assert!(
            self.is_streaming() || self.inflights.is_empty(),
            "progress: appends counted in flight while not streaming"
        );
        if let Some(sent) = self.snapshot_sent {
            assert!(
                sent > self.match_index,
                "progress: snapshot {sent} remembered for a follower holding {}",
                self.match_index
            );
        }
        match self.state {
            ReplicationState::Probe { .. } => {}
            ReplicationState::Replicate => self
                .inflights
                .check_invariants(max_inflight_appends, max_inflight_bytes),
            ReplicationState::Snapshot { index, sent_at, .. } => {
                assert!(sent_at <= now, "progress: a snapshot sent in the future");
                assert_eq!(
                    self.snapshot_sent,
                    Some(index),
                    "progress: the snapshot out is the one last sent"
                );
                assert!(
                    index > self.match_index,
                    "progress: a snapshot through {index} sent to a follower holding {}",
                    self.match_index
                );
            }
        }
    }
}

#[cfg(test)]
#[path = "progress_tests.rs"]
mod tests;

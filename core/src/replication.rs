//! Log replication (§5.3, §5.4): proposals, the leader's appends with
//! per-follower flow control, the follower's consistency check with fast
//! conflict backtracking, commitment (only by counting replicas of the
//! current term, Figure 8) and applying committed entries.

use alloc::vec::Vec;

use bytes::Bytes;
use rand_core::Rng;

use crate::entry::{Entry, EntryKind};
use crate::error::{DropReason, HandleError};
use crate::input::Handled;
use crate::message::{AppendEntries, AppendEntriesResponse, InvalidMessage, Message};
use crate::node::Node;
use crate::output::Output;
use crate::persist::Persist;
use crate::role::RoleState;
use crate::time::Instant;
use crate::types::{LogIndex, NodeId, Term};
use crate::wire::entry_membership;

impl<R: Rng> Node<R> {
    /// Appends a client's command to the leader's log and sends it on.
    pub(crate) fn handle_propose(
        &mut self,
        kind: EntryKind,
        data: Bytes,
    ) -> Result<Handled, HandleError> {
        self.check_leader_free()?;
        // One proposal is always admitted when nothing is pending, so that
        // a command larger than the bound is not refused forever.
        if self.uncommitted_bytes > 0
            && self.uncommitted_bytes + data.len() > self.config.max_uncommitted_bytes
        {
            return Err(HandleError::TooManyUncommittedBytes);
        }
        let index = self.append_new_entry(kind, data);
        Ok(Handled::Proposed {
            index,
            term: self.term,
        })
    }

    /// Refuses a write (a proposal, a membership change, a transfer) on a
    /// node that does not lead, or whose leadership is being handed over.
    pub(crate) fn check_leader_free(&self) -> Result<(), HandleError> {
        if !matches!(self.role, RoleState::Leader { .. }) {
            return Err(HandleError::NotLeader {
                leader_hint: self.leader(),
            });
        }
        if let Some(transfer) = self.transfer {
            return Err(HandleError::TransferInProgress {
                target: transfer.target,
            });
        }
        Ok(())
    }

    /// Appends a new entry of the leader's term to its log, to be sent
    /// when the outputs are drained; returns its index.
    pub(crate) fn append_new_entry(&mut self, kind: EntryKind, data: Bytes) -> LogIndex {
        assert!(
            matches!(self.role, RoleState::Leader { .. }),
            "only a leader creates entries"
        );
        let index = self.log.last_index().next();
        self.append_to_own_log(Entry {
            index,
            term: self.term,
            kind,
            data,
        });
        // Sent when the outputs are drained, together with any proposals
        // that follow before then.
        self.appends_pending = true;
        // A single-node cluster commits at once; otherwise nothing new is
        // replicated yet, so there is nothing to count.
        if self.voters.sole_voter().is_some() {
            self.maybe_commit();
        }
        index
    }

    /// Sends every follower what it is missing, as flow control allows
    /// (see [`Node::send_append`] for `heartbeat`).
    pub(crate) fn send_appends_to_followers(&mut self, heartbeat: bool) {
        let mut position = 0;
        while let RoleState::Leader { progress } = &self.role {
            if position == progress.len() {
                return;
            }
            let peer = progress.id_at(position);
            self.send_append(peer, heartbeat);
            position += 1;
        }
    }

    /// Tells every follower that holds entries it does not know are
    /// committed, and has no append out, what is committed: an empty
    /// append, sent when the outputs are drained (or when the timer says
    /// deferred news may go), so that a follower applies one round trip
    /// after its leader rather than at the next heartbeat. Followers with
    /// appends out learn it from the appends that follow their answers.
    /// At most one such message per follower per
    /// [`Config::commit_news_interval`](crate::Config::commit_news_interval):
    /// news due sooner waits for the interval's end. The same walk over
    /// the followers sets when the leader must next act for one of them
    /// (see `Node::leader_wakeup`).
    pub(crate) fn send_commit_news(&mut self) {
        let commit = self.commit_index;
        let now = self.now;
        let news_interval = self.config.commit_news_interval;
        let RoleState::Leader { progress } = &self.role else {
            self.leader_wakeup = None;
            return;
        };
        let (due_now, wakeup) =
            progress.commit_news_plan(commit, now, self.config.heartbeat_interval, news_interval);
        // News sent now does not change when the leader must next act:
        // the next news to that follower waits for a commit after this.
        self.leader_wakeup = wakeup;
        if !due_now {
            return;
        }
        let mut position = 0;
        while let RoleState::Leader { progress } = &mut self.role {
            if position == progress.len() {
                break;
            }
            let (peer, follower) = progress.at_mut(position);
            position += 1;
            let due = follower
                .commit_news_at(commit, news_interval)
                .is_some_and(|at| at <= now);
            if due {
                follower.on_commit_news_sent(now);
                self.send_append(peer, true);
            }
        }
    }

    /// Appends `entry` to the leader's own log; it is asked to be persisted
    /// by [`Node::flush_own_entries`].
    pub(crate) fn append_to_own_log(&mut self, entry: Entry) {
        self.uncommitted_bytes += entry.data.len();
        self.flush_hard_state();
        self.unpersisted_from.get_or_insert(entry.index);
        self.log.push(entry);
    }

    /// Emits one `Persist::Entries` for the leader's own entries appended
    /// since the last one. Called before anything is sent or applied, before
    /// any input but a proposal, and when outputs are drained: so
    /// proposals handled back to back become one write, and the ordering
    /// rule (persist before any later send or apply) holds.
    pub(crate) fn flush_own_entries(&mut self) {
        if let Some(from) = self.unpersisted_from.take() {
            let entries = self.log.slice(from, self.log.last_index()).to_vec();
            self.outputs
                .push(Output::Persist(Persist::Entries(entries)));
        }
    }

    /// Sends `peer` the entries it is missing, if flow control allows; with
    /// `heartbeat`, sends an empty append when there is nothing else to
    /// send, so the follower hears from its leader and learns the commit
    /// index.
    pub(crate) fn send_append(&mut self, peer: NodeId, heartbeat: bool) {
        let now = self.now;
        let log = &self.log;
        let last_index = log.last_index();
        let RoleState::Leader { progress } = &mut self.role else {
            return;
        };
        let Some(follower) = progress.get_mut(peer) else {
            return;
        };
        let may_send_entries = follower.may_send_entries(
            self.config.max_inflight_appends,
            self.config.max_inflight_bytes,
        );
        let next_index = follower.next_index();
        // What the follower needs next was compacted away.
        let needs_snapshot = next_index <= log.base_index();
        if may_send_entries && needs_snapshot && follower.may_send_snapshot() {
            self.send_snapshot(peer);
            return;
        }
        let (prev_log_index, entries) =
            if may_send_entries && !needs_snapshot && next_index <= last_index {
                let entries = log
                    .entries_from(next_index, self.config.max_append_bytes, usize::MAX)
                    .to_vec();
                let last_sent = entries
                    .last()
                    .expect("invariant: an append from within the log carries an entry")
                    .index;
                let bytes = entries.iter().map(|entry| entry.data.len()).sum();
                follower.on_entries_sent(now, last_sent, bytes);
                (LogIndex(next_index.get() - 1), entries)
            } else if heartbeat {
                // A follower that lacks the entry named (at worst the log's
                // base) answers with a failure, which changes nothing, but
                // it still hears from its leader.
                follower.on_heartbeat_sent(now, self.config.heartbeat_interval);
                (follower.heartbeat_prev_index(log.base_index()), Vec::new())
            } else {
                return;
            };
        // A follower commits what the append says is committed only up
        // to the append's last entry.
        let last_carried = entries.last().map_or(prev_log_index, |entry| entry.index);
        follower.on_commit_sent(self.commit_index.min(last_carried));
        self.send_entries(peer, prev_log_index, entries);
    }

    /// Sends `peer` an AppendEntries of `entries` after `prev_log_index`
    /// (which the log holds), with the commit index; the caller noted in
    /// the follower's progress what it carries.
    fn send_entries(&mut self, peer: NodeId, prev_log_index: LogIndex, entries: Vec<Entry>) {
        let prev_log_term = self
            .log
            .term_at(prev_log_index)
            .expect("invariant: an append starts within the leader's log");
        let message = Message::AppendEntries(AppendEntries {
            term: self.term,
            prev_log_index,
            prev_log_term,
            leader_commit: self.commit_index,
            entries,
        });
        self.send(peer, message);
    }

    /// Sends a streaming follower the entries `from..=to` again, or as
    /// many as one append carries: a gap its rejection reported, which the
    /// log holds.
    fn resend_gap(&mut self, peer: NodeId, from: LogIndex, to: LogIndex) {
        let count = (to.get() - from.get() + 1) as usize;
        let entries = self
            .log
            .entries_from(from, self.config.max_append_bytes, count)
            .to_vec();
        let Some(last) = entries.last().map(|entry| entry.index) else {
            return;
        };
        if let RoleState::Leader { progress } = &mut self.role {
            if let Some(follower) = progress.get_mut(peer) {
                follower.on_gap_resent(last);
                follower.on_commit_sent(self.commit_index.min(last));
            }
        }
        self.send_entries(peer, LogIndex(from.get() - 1), entries);
    }

    /// Handles an AppendEntries of our current term (a higher one was
    /// adopted before this is called).
    pub(crate) fn handle_append_entries(
        &mut self,
        now: Instant,
        from: NodeId,
        append: AppendEntries,
    ) -> Result<(), HandleError> {
        self.check_sender_may_lead(from)?;
        let first_new = self.first_new_entry(&append)?;
        // A (pre-)candidate that hears from this term's leader has lost; a
        // follower notes its leader is alive.
        self.become_follower(now, self.term, Some(from));

        let prev = append.prev_log_index;
        if !self.log.matches(prev, append.prev_log_term) {
            // Tell the leader where to retry from, skipping a whole
            // conflicting term at once (or the gap, if our log is short).
            let (index, conflict_term) = match self.log.term_at(prev) {
                None => (self.log.last_index().next(), Term(0)),
                Some(term) => (self.log.first_index_of_term_run(prev), term),
            };
            self.send_rejection(from, index, conflict_term);
            return Ok(());
        }
        let last_new = LogIndex(prev.get() + append.entries.len() as u64);
        let brings_nothing_new = first_new.is_none();
        if let Some(position) = first_new {
            let mut new_entries = append.entries;
            // In place: the entries already held are dropped from the front.
            new_entries.drain(..position);
            let from_index = new_entries[0].index;
            if from_index <= self.log.last_index() {
                self.log.truncate_from(from_index);
                self.follow_truncated_memberships(from_index);
                self.durable_index = self.durable_index.min(LogIndex(from_index.get() - 1));
                self.outputs
                    .push(Output::Persist(Persist::TruncateLog { from: from_index }));
            }
            self.flush_hard_state();
            self.log.extend_from_slice(&new_entries);
            self.follow_appended_memberships(&new_entries);
            self.outputs
                .push(Output::Persist(Persist::Entries(new_entries)));
            // Cleared after the entries' write, so durable only with them.
            self.maybe_end_recovery();
        }
        // Only entries known to match the leader's may be committed here.
        let commit = append.leader_commit.min(last_new);
        if commit > self.commit_index {
            self.advance_commit(commit);
        }
        if brings_nothing_new {
            self.acknowledge_nothing_new(from, last_new, append.leader_commit);
        } else {
            self.acknowledge(from, last_new);
        }
        Ok(())
    }

    /// Refuses a leader's message of the current term from `from` when this
    /// node leads the term itself or already follows another leader in it.
    pub(crate) fn check_sender_may_lead(&self, from: NodeId) -> Result<(), HandleError> {
        match self.role {
            RoleState::Leader { .. } => Err(HandleError::Dropped(DropReason::ConflictingLeader)),
            RoleState::Follower {
                leader: Some(leader),
            } if leader != from => Err(HandleError::Dropped(DropReason::ConflictingLeader)),
            _ => Ok(()),
        }
    }

    /// The position in `append.entries` of the first entry this log does
    /// not already hold, if any; refuses an append that would overwrite a
    /// committed entry, or that holds a membership entry without a valid
    /// configuration. Checked before anything changes.
    fn first_new_entry(&self, append: &AppendEntries) -> Result<Option<usize>, HandleError> {
        let bad_membership = append
            .entries
            .iter()
            .any(|entry| entry.kind == EntryKind::Membership && entry_membership(entry).is_none());
        if bad_membership {
            return Err(HandleError::Dropped(DropReason::Invalid(
                InvalidMessage::BadMembership,
            )));
        }
        if !self
            .log
            .matches(append.prev_log_index, append.prev_log_term)
        {
            return Ok(None);
        }
        for (position, entry) in append.entries.iter().enumerate() {
            if entry.index < self.log.base_index() {
                // Covered by the snapshot: committed, so the leader's agrees.
                continue;
            }
            if entry.index == self.log.base_index() {
                // The one covered entry whose term the node knows: a leader
                // that disagrees contradicts a committed entry.
                if self.log.term_at(entry.index) != Some(entry.term) {
                    return Err(HandleError::Dropped(DropReason::OverwritesCommitted));
                }
                continue;
            }
            match self.log.term_at(entry.index) {
                Some(term) if term == entry.term => continue,
                Some(_) if entry.index <= self.commit_index => {
                    return Err(HandleError::Dropped(DropReason::OverwritesCommitted));
                }
                _ => return Ok(Some(position)),
            }
        }
        Ok(None)
    }

    fn send_rejection(&mut self, to: NodeId, index: LogIndex, conflict_term: Term) {
        let response = AppendEntriesResponse {
            term: self.term,
            success: false,
            index,
            conflict_term,
        };
        self.send(to, Message::AppendEntriesResponse(response));
    }

    /// Updates the follower's progress with its answer, commits what a
    /// majority now holds, and sends the follower what it still lacks.
    pub(crate) fn handle_append_entries_response(
        &mut self,
        now: Instant,
        from: NodeId,
        response: AppendEntriesResponse,
    ) -> Result<(), HandleError> {
        let last_index = self.log.last_index();
        if response.success && response.index > last_index {
            return Err(HandleError::Dropped(DropReason::BeyondLeaderLog));
        }
        let revived = self.take_append_answer(now, from, response);
        if revived {
            // Back after being reported unreachable: what waited for an
            // answer (a snapshot) goes now.
            self.send_append(from, false);
        }
        self.maybe_send_timeout_now(from);
        Ok(())
    }

    /// Updates a follower's progress with its answer (of the current term,
    /// within the leader's log), commits what a majority now holds, and
    /// sends the follower what it still lacks. Returns whether the follower
    /// had been reported unreachable (see [`Progress::record_contact`]).
    ///
    /// [`Progress::record_contact`]: crate::progress::Progress::record_contact
    fn take_append_answer(
        &mut self,
        now: Instant,
        from: NodeId,
        response: AppendEntriesResponse,
    ) -> bool {
        let last_index = self.log.last_index();
        let log = &self.log;
        let RoleState::Leader { progress } = &mut self.role else {
            return false;
        };
        let Some(follower) = progress.get_mut(from) else {
            return false;
        };
        let revived = follower.record_contact(now);
        if !follower.is_answer_current(response.success, response.index) {
            // The follower still lacks the snapshot out to it: if the
            // answer is late enough to follow the snapshot, it was lost.
            if follower.is_snapshot_overdue(now, self.config.heartbeat_interval) {
                follower.on_snapshot_lost();
                self.send_append(from, false);
            }
            return revived;
        }
        if response.success {
            follower.on_ack(now, response.index);
            // The answer may leave the follower idle with news to hear.
            self.commit_news_due = true;
            self.maybe_commit();
        } else {
            // A follower whose log merely ends early (no conflicting term)
            // may be answering from before it received more: only an end
            // short of what was sent is news.
            if response.conflict_term == Term(0) && !follower.is_short_log_news(response.index) {
                return revived;
            }
            if response.conflict_term == Term(0) && follower.is_streaming() {
                // A gap in the stream: resend it, and stream on. A gap the
                // log no longer holds is left to the stall check: the
                // answer may predate acknowledgements still on their way,
                // and a snapshot costs too much to send on a guess.
                if response.index > log.base_index() {
                    if let Some(last) = follower.gap_to_resend(response.index) {
                        self.resend_gap(from, response.index, last);
                    }
                }
                return revived;
            }
            // Retry past the leader's own entries of the conflicting term
            // if it has any, else from the follower's hint.
            let retry_from = match log.last_index_of_term(response.conflict_term) {
                Some(last_of_term) if response.conflict_term != Term(0) => last_of_term.next(),
                _ => response.index,
            };
            follower.on_reject(retry_from, last_index);
        }
        self.send_append(from, false);
        revived
    }

    /// The caller could not deliver a message to `peer`: if it is a
    /// follower of this leader, probe it again from the next heartbeat.
    pub(crate) fn handle_unreachable(&mut self, peer: NodeId) {
        if let RoleState::Leader { progress } = &mut self.role {
            if let Some(follower) = progress.get_mut(peer) {
                follower.on_unreachable();
            }
        }
    }

    /// Commits the highest index a majority holds, if it is of the current
    /// term (§5.4.2: older entries commit only with a current one).
    pub(crate) fn maybe_commit(&mut self) {
        let RoleState::Leader { progress } = &self.role else {
            return;
        };
        let own = self.own_match_index();
        let candidate =
            progress.committed_index(&self.voters, self.id, own, &mut self.match_scratch);
        if candidate > self.commit_index && self.log.term_at(candidate) == Some(self.term) {
            self.advance_commit(candidate);
        }
    }

    /// Raises the commit index to `commit` and applies what it covers.
    fn advance_commit(&mut self, commit: LogIndex) {
        assert!(
            commit > self.commit_index && commit <= self.log.last_index(),
            "commit {commit} is not past {} within the log ({})",
            self.commit_index,
            self.log.last_index()
        );
        let settled_before = self.settled_index();
        self.commit_index = commit;
        if let RoleState::Leader { .. } = self.role {
            self.release_settled(settled_before);
            self.commit_news_due = true;
        }
        if self.applied_index < self.commit_index {
            // Only a single-node cluster commits its own entries before
            // they were sent anywhere; they must be persisted first.
            self.flush_own_entries();
            let to_apply = self.log.slice(self.applied_index.next(), self.commit_index);
            assert_eq!(
                to_apply.len() as u64,
                self.commit_index.get() - self.applied_index.get(),
                "invariant: committed entries are in the log"
            );
            self.outputs
                .extend(to_apply.iter().cloned().map(Output::Apply));
            self.applied_index = self.commit_index;
        }
    }
}

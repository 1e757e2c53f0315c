//! Log replication (§5.3, §5.4): proposals, the leader's appends with
//! per-follower flow control, the follower's consistency check with fast
//! conflict backtracking, commitment (only by counting replicas of the
//! current term, Figure 8) and applying committed entries.

use alloc::vec::Vec;

use bytes::Bytes;
use rand_core::RngCore;

use crate::log::{Entry, EntryKind};
use crate::message::{AppendEntries, AppendEntriesResponse, Message};
use crate::node::{DropReason, HandleError, Handled, Node};
use crate::output::Output;
use crate::quorum::majority_match_index;
use crate::role::{progress_of, ReplicationState, RoleState};
use crate::time::Instant;
use crate::types::{LogIndex, NodeId, Term};

impl<R: RngCore> Node<R> {
    /// Appends a client's command to the leader's log and sends it on.
    pub(crate) fn handle_propose(
        &mut self,
        kind: EntryKind,
        data: Bytes,
    ) -> Result<Handled, HandleError> {
        if !matches!(self.role, RoleState::Leader { .. }) {
            return Err(HandleError::NotLeader {
                leader_hint: self.leader(),
            });
        }
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

    /// Appends a new entry of the leader's term to its log, to be sent
    /// when the outputs are drained; returns its index.
    pub(crate) fn append_new_entry(&mut self, kind: EntryKind, data: Bytes) -> LogIndex {
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
        if self.voters.len() == 1 {
            self.maybe_commit();
        }
        index
    }

    /// Sends every follower what it is missing, as flow control allows
    /// (see [`Node::send_append`] for `heartbeat`).
    pub(crate) fn send_appends_to_followers(&mut self, heartbeat: bool) {
        for position in 0..self.voters.len() {
            let peer = self.voters[position];
            if peer != self.id {
                self.send_append(peer, heartbeat);
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

    /// Emits one `PersistEntries` for the leader's own entries appended
    /// since the last one. Called before anything is sent or applied, before
    /// any input but a proposal, and when outputs are drained: so
    /// proposals handled back to back become one write, and the ordering
    /// rule (persist before any later send or apply) holds.
    pub(crate) fn flush_own_entries(&mut self) {
        if let Some(from) = self.unpersisted_from.take() {
            let entries = self.log.slice(from, self.log.last_index()).to_vec();
            self.outputs.push(Output::PersistEntries(entries));
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
        let RoleState::Leader { followers } = &mut self.role else {
            return;
        };
        let Some(progress) = progress_of(followers, peer) else {
            return;
        };
        let may_send_entries = match progress.state {
            ReplicationState::Probe { paused } => !paused,
            ReplicationState::Replicate { in_flight } => {
                in_flight < self.config.max_inflight_appends
            }
            ReplicationState::Snapshot { .. } => false,
        };
        if may_send_entries && progress.next_index <= log.base_index() {
            // What the follower needs next was compacted away.
            self.send_snapshot(peer);
            return;
        }
        let (prev_log_index, entries) = if may_send_entries && progress.next_index <= last_index {
            let entries = log
                .entries_from(
                    progress.next_index,
                    self.config.max_append_bytes,
                    usize::MAX,
                )
                .to_vec();
            let prev = LogIndex(progress.next_index.get() - 1);
            match &mut progress.state {
                ReplicationState::Probe { paused } => *paused = true,
                ReplicationState::Replicate { in_flight } => {
                    if progress.match_index.next() == progress.next_index {
                        // The follower was caught up: the stall clock
                        // starts with this append, not at its last progress.
                        progress.last_progress_at = now;
                    }
                    *in_flight += 1;
                    progress.next_index = entries
                        .last()
                        .map_or(progress.next_index, |e| e.index.next());
                }
                ReplicationState::Snapshot { .. } => {}
            }
            (prev, entries)
        } else if heartbeat {
            // A streaming follower is known to hold `match_index`; a probed
            // one is asked about the entry before `next_index`.
            // Never below the log's base, whose term is the oldest known: a
            // follower that lacks the base answers with a failure, which
            // changes nothing, but still hears from its leader.
            let prev = match progress.state {
                ReplicationState::Replicate { .. } => progress.match_index,
                ReplicationState::Probe { .. } => LogIndex(progress.next_index.get() - 1),
                ReplicationState::Snapshot { .. } => log.base_index(),
            };
            (prev.max(log.base_index()), Vec::new())
        } else {
            return;
        };
        let prev_log_term = log
            .term_at(prev_log_index)
            .expect("invariant: a follower's next index is at most one past the leader's log");
        let message = Message::AppendEntries(AppendEntries {
            term: self.term,
            prev_log_index,
            prev_log_term,
            leader_commit: self.commit_index,
            entries,
        });
        self.send(peer, message);
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
            self.send_append_response(from, false, index, conflict_term);
            return Ok(());
        }
        let last_new = LogIndex(prev.get() + append.entries.len() as u64);
        if let Some(position) = first_new {
            let mut new_entries = append.entries;
            // In place: the entries already held are dropped from the front.
            new_entries.drain(..position);
            let from_index = new_entries[0].index;
            if from_index <= self.log.last_index() {
                self.log.truncate_from(from_index);
                self.durable_index = self.durable_index.min(LogIndex(from_index.get() - 1));
                self.outputs.push(Output::TruncateLog { from: from_index });
            }
            self.flush_hard_state();
            for entry in &new_entries {
                self.log.push(entry.clone());
            }
            self.outputs.push(Output::PersistEntries(new_entries));
        }
        // Only entries known to match the leader's may be committed here.
        let commit = append.leader_commit.min(last_new);
        if commit > self.commit_index {
            self.advance_commit(commit);
        }
        self.send_append_response(from, true, last_new, Term(0));
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
    /// committed entry. Checked before anything changes.
    fn first_new_entry(&self, append: &AppendEntries) -> Result<Option<usize>, HandleError> {
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

    fn send_append_response(
        &mut self,
        to: NodeId,
        success: bool,
        index: LogIndex,
        conflict_term: Term,
    ) {
        let response = AppendEntriesResponse {
            term: self.term,
            success,
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
        // The leader's next index after a rejection: past the leader's own
        // entries of the conflicting term if it has any, else the hint.
        let retry_from = || match self.log.last_index_of_term(response.conflict_term) {
            Some(last_of_term) if response.conflict_term != Term(0) => last_of_term.next(),
            _ => response.index,
        };
        let RoleState::Leader { followers } = &mut self.role else {
            return Ok(());
        };
        let Some(progress) = progress_of(followers, from) else {
            return Ok(());
        };
        progress.last_contact_at = now;
        if let ReplicationState::Snapshot { index, .. } = progress.state {
            // Only the answer to the snapshot (or a later success) ends the
            // wait; anything else predates it.
            if !(response.success && response.index >= index) {
                return Ok(());
            }
        }
        if response.success {
            if response.index > progress.match_index {
                progress.match_index = response.index;
                progress.last_progress_at = now;
            }
            match &mut progress.state {
                ReplicationState::Probe { .. } | ReplicationState::Snapshot { .. } => {
                    progress.state = ReplicationState::Replicate { in_flight: 0 };
                    progress.next_index = progress.match_index.next();
                    progress.last_progress_at = now;
                }
                ReplicationState::Replicate { in_flight } => {
                    *in_flight = in_flight.saturating_sub(1);
                    if progress.next_index <= progress.match_index {
                        progress.next_index = progress.match_index.next();
                    }
                }
            }
            self.maybe_commit();
        } else {
            // A follower whose log merely ends early (no conflicting term)
            // is worth probing only if that end lies between what it is
            // known to hold and what is being probed. Otherwise the answer
            // is stale: the follower has since received more, or (when
            // streaming) the missing entries are on their way because
            // appends overtook each other. Lost appends are caught by the
            // stall check at the next heartbeat.
            let short_log_is_news = match progress.state {
                ReplicationState::Replicate { .. } | ReplicationState::Snapshot { .. } => false,
                ReplicationState::Probe { .. } => {
                    response.index > progress.match_index && response.index < progress.next_index
                }
            };
            if response.conflict_term == Term(0) && !short_log_is_news {
                return Ok(());
            }
            let lowest = progress.match_index.next();
            progress.next_index = retry_from().max(lowest).min(last_index.next());
            progress.state = ReplicationState::Probe { paused: false };
        }
        self.send_append(from, false);
        Ok(())
    }

    /// Notes that the log is durable up to `index` (if the entry there is
    /// still the one written) and commits what that completes.
    pub(crate) fn handle_persisted(&mut self, index: LogIndex, term: Term) {
        if index > self.durable_index && self.log.term_at(index) == Some(term) {
            self.durable_index = index;
            self.maybe_commit();
        }
    }

    /// Commits the highest index a majority holds, if it is of the current
    /// term (§5.4.2: older entries commit only with a current one).
    pub(crate) fn maybe_commit(&mut self) {
        let RoleState::Leader { followers } = &self.role else {
            return;
        };
        let mut match_indices = core::mem::take(&mut self.match_scratch);
        match_indices.clear();
        // The leader's own replica: what is durable, when it persists in
        // parallel with its followers; else its whole log, which it
        // persisted before sending any of it.
        let own = if self.config.leader_persists_in_parallel {
            self.durable_index.min(self.log.last_index())
        } else {
            self.log.last_index()
        };
        match_indices.push(own);
        match_indices.extend(followers.iter().map(|(_, progress)| progress.match_index));
        let candidate = majority_match_index(&mut match_indices);
        self.match_scratch = match_indices;
        if candidate > self.commit_index && self.log.term_at(candidate) == Some(self.term) {
            self.advance_commit(candidate);
        }
    }

    /// Raises the commit index to `commit` and applies what it covers.
    fn advance_commit(&mut self, commit: LogIndex) {
        debug_assert!(commit > self.commit_index && commit <= self.log.last_index());
        if let RoleState::Leader { .. } = self.role {
            let newly_committed: usize = self
                .log
                .slice(self.commit_index.next(), commit)
                .iter()
                .map(|entry| entry.data.len())
                .sum();
            self.uncommitted_bytes = self.uncommitted_bytes.saturating_sub(newly_committed);
        }
        self.commit_index = commit;
        while self.applied_index < self.commit_index {
            self.applied_index = self.applied_index.next();
            let entry = self
                .log
                .entry(self.applied_index)
                .expect("invariant: committed entries are in the log")
                .clone();
            // Only a single-node cluster commits its own entries before
            // they were sent anywhere; they must be persisted first.
            self.flush_own_entries();
            self.outputs.push(Output::Apply(entry));
        }
    }
}

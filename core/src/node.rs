//! The node: one Raft peer's state, its single input path and its output
//! queue. Election and leadership logic live in their own modules as
//! further `impl Node` blocks.

use alloc::vec::Vec;
use core::hash::{Hash, Hasher};
use core::time::Duration;

use bytes::Bytes;
use rand_core::Rng;

use crate::ack::PendingAck;
use crate::config::Config;
use crate::entry::{EntryKind, Snapshot};
use crate::error::{DropReason, HandleError, StartError};
use crate::input::{Command, Handled, Input};
use crate::log::Log;
use crate::membership_log::MembershipLog;
use crate::message::{
    AppendEntriesResponse, LeadershipCheckResponse, Message, RequestVoteResponse,
};
use crate::output::Output;
use crate::persist::{Persist, PersistedState};
use crate::quorum::JointConfig;
use crate::read_queue::ReadQueue;
use crate::role::{LeadershipTransfer, Role, RoleState, VoteTally};
use crate::time::{duration_as_micros, Instant};
use crate::types::{LogIndex, NodeId, Term};

/// Counters a node keeps about its own life, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// Peer messages dropped as invalid (see [`DropReason`]).
    pub messages_dropped: u64,
    /// Responses from an earlier term, ignored.
    pub stale_responses: u64,
    /// Vote requests ignored because a live leader was heard from within
    /// the minimum election timeout (leader stickiness).
    pub vote_requests_ignored: u64,
    /// Pre-vote rounds started.
    pub pre_votes_started: u64,
    /// Elections started (terms raised by this node).
    pub elections_started: u64,
}

/// One Raft peer, as a state machine.
///
/// Feed it inputs with [`handle`](Node::handle), then perform what
/// [`drain_outputs`](Node::drain_outputs) yields, in order (see [`Output`]).
/// A crash is modelled by dropping the node; build the next one from what
/// was persisted.
///
/// A node can be cloned (a snapshot for exploring alternative futures, as a
/// model checker does), compared and hashed: equality and the hash cover
/// the whole protocol state and the RNG, but not the [`NodeStats`] counters
/// nor outputs not yet drained, so two nodes that would behave alike are
/// equal.
#[derive(Clone, Debug)]
pub struct Node<R> {
    pub(crate) id: NodeId,
    /// The configurations the log holds; the latest is in force.
    pub(crate) memberships: MembershipLog,
    /// The voters of the configuration in force, as quorum arithmetic
    /// counts them: every election and commit decision is a quorum of
    /// them. Invariant: derived from `memberships.current()`.
    pub(crate) voters: JointConfig,
    pub(crate) config: Config,
    pub(crate) rng: R,
    pub(crate) term: Term,
    /// Invariant: was persisted with `term` before any message depending
    /// on it was sent. (It may name a node this one does not know as a
    /// voter: a candidate of a configuration not yet replicated here.)
    pub(crate) voted_for: Option<NodeId>,
    pub(crate) log: Log,
    /// The latest snapshot, persisted or about to be by a pending output.
    /// Invariant: covers at least the log's base, and at most the applied
    /// index.
    pub(crate) snapshot: Option<Snapshot>,
    /// Highest index known committed. Invariant: never decreases while the
    /// node lives, never above the log's last index.
    pub(crate) commit_index: LogIndex,
    /// Highest index handed out as [`Output::Apply`]. Invariant:
    /// `applied_index <= commit_index`.
    pub(crate) applied_index: LogIndex,
    /// On a leader: payload bytes of its log entries not yet settled,
    /// above the commit index or its own durable index, whichever is
    /// lower (see `settled_index`).
    pub(crate) uncommitted_bytes: usize,
    pub(crate) role: RoleState,
    /// Votes for this node's own election in the current term, while that
    /// election is undecided: opened when it campaigns, closed (`None`)
    /// once it wins, so that no later answer can make it leader of the
    /// same term a second time. Counted only while `voted_for` is this node.
    pub(crate) election_votes: Option<VoteTally>,
    /// When a follower or candidate starts an election; unused by a leader.
    pub(crate) election_deadline: Instant,
    /// When a leader next sends heartbeats; unused by other roles.
    pub(crate) heartbeat_deadline: Instant,
    /// When a follower last heard from the current term's leader.
    pub(crate) leader_contact_at: Option<Instant>,
    /// The latest `now` seen; time never goes backwards.
    pub(crate) now: Instant,
    pub(crate) outputs: Vec<Output>,
    /// Reused by the commit computation, so that it allocates nothing.
    pub(crate) match_scratch: Vec<LogIndex>,
    /// Term or vote changed since the last `Persist::HardState` output.
    hard_state_dirty: bool,
    /// A leader appended proposals that are sent to followers when the
    /// outputs are next drained, so proposals handled between two drains
    /// travel in one AppendEntries per follower.
    pub(crate) appends_pending: bool,
    /// A leader's commit index advanced or a follower answered since the
    /// last drain, so some follower may need to be told what is committed
    /// (see `send_commit_news`).
    pub(crate) commit_news_due: bool,
    /// On a leader: the earliest time it must act for one follower besides
    /// its heartbeat (check on a snapshot, send commit news that waited
    /// for its interval), kept by `refresh_leader_wakeup` when either may
    /// have become due sooner. It may be early, when what it was set for
    /// happened otherwise: the timer then finds nothing to do.
    pub(crate) leader_wakeup: Option<Instant>,
    /// The first of the leader's own new entries not yet handed out in a
    /// `Persist::Entries` output. They go out in one output, before anything
    /// else is sent, applied or handled (see `flush_own_entries`).
    pub(crate) unpersisted_from: Option<LogIndex>,
    /// How far the caller has reported the log durable (see
    /// [`Input::Persisted`]); what a leader counts as its own replica when
    /// it persists in parallel.
    pub(crate) durable_index: LogIndex,
    /// The term in which this node lost part of its log, until its log
    /// holds an entry of a later term (see `HardState::log_lost_at_term`).
    /// Invariant: while set, the node neither votes nor campaigns.
    pub(crate) recovering_from_term: Option<Term>,
    /// With asynchronous writes: the success a follower owes its leader
    /// for entries (or a snapshot) not yet reported durable. Invariant:
    /// its index is above `durable_index` when set.
    pub(crate) pending_ack: Option<PendingAck>,
    /// Reads waiting for a leader to confirm it still leads.
    pub(crate) reads: ReadQueue,
    /// On a leader: the leadership transfer under way, if any.
    pub(crate) transfer: Option<LeadershipTransfer>,
    /// The deadline of the caller's timer as last set, until it fires.
    armed_timer: Option<Instant>,
    /// The (role, term, leader) last reported through `RoleChanged`.
    reported: (Role, Term, Option<NodeId>),
    pub(crate) stats: NodeStats,
}

impl<R> Node<R> {
    /// Everything that decides the node's future behaviour, but the RNG:
    /// all fields except the counters and the undrained outputs. Equality
    /// and hashing both go through this one list (adding the RNG), so they
    /// cannot disagree.
    fn protocol_state(&self) -> impl Hash + PartialEq + '_ {
        // Destructured so that a new field cannot be forgotten here.
        let Node {
            id,
            memberships,
            voters,
            config,
            rng: _,
            term,
            voted_for,
            log,
            snapshot,
            commit_index,
            applied_index,
            uncommitted_bytes,
            role,
            election_votes,
            election_deadline,
            heartbeat_deadline,
            leader_contact_at,
            now,
            outputs: _,
            match_scratch: _,
            hard_state_dirty,
            appends_pending,
            commit_news_due,
            leader_wakeup,
            unpersisted_from,
            durable_index,
            recovering_from_term,
            pending_ack,
            reads,
            transfer,
            armed_timer,
            reported,
            stats: _,
        } = self;
        (
            (
                id,
                memberships,
                voters,
                config,
                term,
                voted_for,
                log,
                snapshot,
            ),
            role,
            (
                commit_index,
                applied_index,
                uncommitted_bytes,
                election_votes,
            ),
            (
                election_deadline,
                heartbeat_deadline,
                leader_wakeup,
                leader_contact_at,
                now,
                armed_timer,
            ),
            (
                hard_state_dirty,
                appends_pending,
                commit_news_due,
                unpersisted_from,
                durable_index,
                recovering_from_term,
                pending_ack,
                reads,
                transfer,
                reported,
            ),
        )
    }
}

impl<R: Hash> Hash for Node<R> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.protocol_state().hash(state);
        self.rng.hash(state);
    }
}

impl<R: PartialEq> PartialEq for Node<R> {
    fn eq(&self, other: &Self) -> bool {
        self.protocol_state() == other.protocol_state() && self.rng == other.rng
    }
}

impl<R: Eq> Eq for Node<R> {}

impl<R: Rng> Node<R> {
    /// Builds a node.
    ///
    /// `voters` is the voter set the cluster starts with, which must
    /// contain `id` — or nothing, for a node that joins an existing
    /// cluster: it waits, never campaigning, until a leader adds it (see
    /// [`MembershipChange::AddLearner`](crate::MembershipChange::AddLearner)).
    /// Once the node's log or snapshot holds a configuration, that one is
    /// in force and `voters` is not used. `rng` is the node's only source
    /// of randomness (election timeouts); `persisted` is what an earlier
    /// life of this node persisted, or the default for a fresh node; `now`
    /// is the caller's clock.
    ///
    /// The new node already has outputs (at least its first timer): drain
    /// them before the first input. A single-node cluster elects itself
    /// here and now.
    pub fn new(
        id: NodeId,
        voters: &[NodeId],
        config: Config,
        rng: R,
        persisted: PersistedState,
        now: Instant,
    ) -> Result<Node<R>, StartError> {
        let initial = MembershipLog::initial(id, voters)?;
        Node::with_membership(id, initial, config, rng, persisted, now)
    }

    /// Builds a node like [`Node::new`], starting the cluster with
    /// `initial` — which may give the founding members' addresses (see
    /// [`Membership::with_address`](crate::Membership::with_address)), so
    /// that every configuration after it carries them — or with the
    /// empty configuration, for a node that waits to be added. Every
    /// founding member must be started with the same voters; the
    /// addresses that travel on are those of the first leader to change
    /// the configuration.
    pub fn with_membership(
        id: NodeId,
        initial: crate::Membership,
        config: Config,
        rng: R,
        persisted: PersistedState,
        now: Instant,
    ) -> Result<Node<R>, StartError> {
        config.validate().map_err(StartError::Config)?;
        MembershipLog::check_initial(id, &initial)?;
        let base = match &persisted.snapshot {
            None => (LogIndex(0), Term(0)),
            Some(snapshot)
                if snapshot.index == LogIndex(0)
                    || snapshot.index == LogIndex::MAX
                    || snapshot.term == Term(0) =>
            {
                return Err(StartError::InvalidSnapshot);
            }
            Some(snapshot) => (snapshot.index, snapshot.term),
        };
        if persisted.hard_state.term == Term::MAX {
            return Err(StartError::TermTooLarge);
        }
        let log = Log::restore(base, persisted.entries).map_err(StartError::Log)?;
        let memberships = MembershipLog::restore(
            base.0,
            persisted
                .snapshot
                .as_ref()
                .map(|snapshot| &snapshot.membership),
            initial,
            log.entries(),
        )?;
        if log.last_term() > persisted.hard_state.term {
            return Err(StartError::LogTermAboveCurrentTerm);
        }
        // Everything the snapshot covers was committed and applied.
        let applied_index = base.0;
        let term = persisted.hard_state.term;
        // What was loaded is durable.
        let durable_index = log.last_index();
        let mut node = Node {
            id,
            voters: memberships.current().quorum(),
            memberships,
            config,
            rng,
            term,
            voted_for: persisted.hard_state.voted_for,
            log,
            snapshot: None,
            commit_index: applied_index,
            applied_index,
            uncommitted_bytes: 0,
            role: RoleState::Follower { leader: None },
            election_votes: None,
            election_deadline: now,
            heartbeat_deadline: now,
            leader_contact_at: None,
            now,
            outputs: Vec::new(),
            match_scratch: Vec::new(),
            hard_state_dirty: false,
            appends_pending: false,
            commit_news_due: false,
            leader_wakeup: None,
            unpersisted_from: None,
            durable_index,
            recovering_from_term: persisted.hard_state.log_lost_at_term,
            pending_ack: None,
            reads: ReadQueue::default(),
            transfer: None,
            armed_timer: None,
            reported: (Role::Follower, term, None),
            stats: NodeStats::default(),
        };
        if let Some(snapshot) = persisted.snapshot {
            // The state machine starts from the snapshot, as the Apply
            // outputs that follow assume.
            node.outputs.push(Output::RestoreSnapshot(snapshot.clone()));
            node.snapshot = Some(snapshot);
        }
        node.reset_election_deadline(now);
        if node.voters.sole_voter() == Some(node.id) {
            node.start_election(now);
        }
        node.finish(now);
        #[cfg(debug_assertions)]
        node.check_invariants();
        Ok(node)
    }

    /// Handles one input at time `now` (which must not be earlier than the
    /// `now` of any earlier call). Drain the outputs afterwards.
    ///
    /// An `Err` means the input was refused and changed nothing.
    pub fn handle(&mut self, now: Instant, input: Input) -> Result<Handled, HandleError> {
        debug_assert!(now >= self.now, "time went backwards: {now} < {}", self.now);
        // In release builds a clock that stepped back is treated as standing still.
        let now = now.max(self.now);
        self.now = now;
        // Only another proposal (or a read, which may append a no-op) may
        // join the leader's unpersisted entries: anything else could change
        // the log, so they go out first.
        if !matches!(
            input,
            Input::Command(Command::Propose(_) | Command::Barrier | Command::Read)
        ) {
            self.flush_own_entries();
        }
        let result = match input {
            Input::Message { from, message } => self
                .handle_message(now, from, message)
                .map(|()| Handled::Done),
            Input::Timer => {
                self.armed_timer = None;
                self.handle_timer(now);
                Ok(Handled::Done)
            }
            Input::Command(Command::Campaign) => self.handle_campaign(now).map(|()| Handled::Done),
            Input::Command(Command::Propose(data)) => self.handle_propose(EntryKind::Command, data),
            Input::Command(Command::Barrier) => self.handle_propose(EntryKind::Noop, Bytes::new()),
            Input::Command(Command::Read) => self.handle_read(),
            Input::Command(Command::ChangeMembership(change)) => {
                self.handle_change_membership(&change)
            }
            Input::Command(Command::TransferLeadership(target)) => self
                .handle_transfer_leadership(now, target)
                .map(|()| Handled::Done),
            Input::Persisted { index, term } => {
                self.handle_persisted(index, term);
                Ok(Handled::Done)
            }
            Input::Unreachable { peer } => {
                self.handle_unreachable(peer);
                Ok(Handled::Done)
            }
            Input::SnapshotTaken { index, data } => {
                self.take_snapshot(index, data).map(|()| Handled::Done)
            }
        };
        if let Err(HandleError::Dropped(_)) = result {
            self.stats.messages_dropped += 1;
        }
        self.finish(now);
        #[cfg(debug_assertions)]
        self.check_invariants();
        result
    }

    /// Takes the pending outputs, in the order they must be performed.
    ///
    /// A leader sends the entries proposed since the last drain here, so
    /// every proposal handled between two drains travels to a follower in
    /// one AppendEntries: a caller with many commands waiting batches them
    /// by handling them all before draining.
    ///
    /// The queue's memory is kept for the next input, so a steady state
    /// allocates nothing here.
    #[must_use = "outputs must be performed, in order"]
    pub fn drain_outputs(&mut self) -> alloc::vec::Drain<'_, Output> {
        let appends_pending = core::mem::take(&mut self.appends_pending);
        let wakeup_before = self.leader_wakeup;
        if self.config.leader_writes_in_parallel() {
            // The followers' writes start while the leader's own runs.
            if appends_pending {
                self.send_appends_to_followers(false);
            }
            self.flush_own_entries();
        } else {
            self.flush_own_entries();
            if appends_pending {
                self.send_appends_to_followers(false);
            }
        }
        if core::mem::take(&mut self.commit_news_due) {
            self.send_commit_news();
        }
        if self.leader_wakeup != wakeup_before {
            // A snapshot sent or news deferred here needs the timer sooner.
            self.arm_timer(self.now);
        }
        self.send_leadership_checks();
        #[cfg(debug_assertions)]
        self.check_invariants();
        self.outputs.drain(..)
    }

    fn handle_message(
        &mut self,
        now: Instant,
        from: NodeId,
        message: Message,
    ) -> Result<(), HandleError> {
        // A sender need not be in this node's configuration: it may be a
        // leader or candidate of a configuration not yet replicated here
        // (dissertation §4.1). Only voters' votes and members' answers
        // count, and a removed server cannot disrupt the cluster (see
        // `Config::pre_vote` and `Config::leader_stickiness`).
        if from == self.id {
            return Err(HandleError::Dropped(DropReason::FromSelf));
        }
        message
            .validate()
            .map_err(|why| HandleError::Dropped(DropReason::Invalid(why)))?;

        let term = message.term();
        if let Message::RequestVote(request) = &message {
            // Leader stickiness (dissertation §4.2.3): while a live leader is
            // known, vote requests come from a disruptive server; ignoring
            // them (rather than adopting their term) keeps the leader. The
            // exception: a candidate the leader handed its place to.
            if !request.transfer && term >= self.term && self.is_in_leader_lease(now) {
                self.stats.vote_requests_ignored += 1;
                return Ok(());
            }
        }
        if term > self.term {
            match &message {
                // A pre-vote request or a granted pre-vote carries a term
                // nobody has adopted yet; adopting it would defeat pre-vote.
                Message::RequestVote(request) if request.pre_vote => {}
                Message::RequestVoteResponse(response) if response.pre_vote && response.granted => {
                }
                Message::AppendEntries(_)
                | Message::InstallSnapshot(_)
                | Message::LeadershipCheck(_)
                | Message::TimeoutNow(_) => self.become_follower(now, term, Some(from)),
                _ => self.become_follower(now, term, None),
            }
        } else if term < self.term {
            self.reply_to_stale_message(from, &message);
            return Ok(());
        }

        match message {
            Message::RequestVote(request) => self.handle_request_vote(now, from, request),
            Message::RequestVoteResponse(response) => {
                self.handle_request_vote_response(now, from, response)
            }
            Message::AppendEntries(append) => self.handle_append_entries(now, from, append)?,
            Message::InstallSnapshot(install) => {
                self.handle_install_snapshot(now, from, install)?
            }
            Message::AppendEntriesResponse(response) => {
                self.handle_append_entries_response(now, from, response)?
            }
            Message::LeadershipCheck(check) => self.handle_leadership_check(now, from, check)?,
            Message::LeadershipCheckResponse(response) => {
                self.handle_leadership_check_response(now, from, response)?
            }
            Message::TimeoutNow(_) => self.handle_timeout_now(now, from)?,
        }
        Ok(())
    }

    /// Answers a request from an earlier term with our term, so that a
    /// deposed leader or stale candidate learns it is behind; responses from
    /// earlier terms are ignored.
    fn reply_to_stale_message(&mut self, from: NodeId, message: &Message) {
        let reply = match message {
            Message::RequestVote(request) => Message::RequestVoteResponse(RequestVoteResponse {
                term: self.term,
                granted: false,
                pre_vote: request.pre_vote,
            }),
            Message::AppendEntries(_) | Message::InstallSnapshot(_) => {
                Message::AppendEntriesResponse(AppendEntriesResponse {
                    term: self.term,
                    success: false,
                    index: self.log.last_index().next(),
                    conflict_term: Term(0),
                })
            }
            Message::LeadershipCheck(check) => {
                Message::LeadershipCheckResponse(LeadershipCheckResponse {
                    term: self.term,
                    round: check.round,
                })
            }
            Message::RequestVoteResponse(_)
            | Message::AppendEntriesResponse(_)
            | Message::LeadershipCheckResponse(_) => {
                self.stats.stale_responses += 1;
                return;
            }
            // A deposed leader's hand-off: it learns of the new term from
            // the answers to its other messages.
            Message::TimeoutNow(_) => return,
        };
        self.send(from, reply);
    }

    fn handle_timer(&mut self, now: Instant) {
        if let RoleState::Leader { .. } = self.role {
            if now >= self.heartbeat_deadline {
                self.check_transfer_deadline(now);
                self.handle_heartbeat_tick(now);
            }
            self.send_due_snapshot_probes(now);
            // News that waited for its interval to end.
            self.send_commit_news();
        } else if now >= self.election_deadline {
            self.start_election(now);
        }
    }

    fn handle_campaign(&mut self, now: Instant) -> Result<(), HandleError> {
        if let RoleState::Leader { .. } = self.role {
            return Err(HandleError::AlreadyLeader);
        }
        if !self.may_campaign() {
            return Err(HandleError::NotAVoter);
        }
        if self.is_recovering() {
            return Err(HandleError::Recovering);
        }
        self.start_election(now);
        Ok(())
    }

    /// Steps down to (or stays) follower in `term`, which must not be below
    /// the current term.
    pub(crate) fn become_follower(&mut self, now: Instant, term: Term, leader: Option<NodeId>) {
        assert!(term >= self.term, "a node never goes back a term");
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.mark_hard_state_dirty();
        }
        let was_follower = matches!(self.role, RoleState::Follower { .. });
        self.role = RoleState::Follower { leader };
        self.leader_wakeup = None;
        self.transfer = None;
        self.leader_contact_at = leader.map(|_| now);
        if !was_follower || leader.is_some() {
            self.reset_election_deadline(now);
        }
    }

    /// Sets a fresh randomized election deadline, in
    /// `[now + election_timeout_min, now + election_timeout_max)`.
    pub(crate) fn reset_election_deadline(&mut self, now: Instant) {
        let timeout = self.random_election_timeout();
        self.election_deadline = now + timeout;
    }

    fn random_election_timeout(&mut self) -> Duration {
        let min = duration_as_micros(self.config.election_timeout_min);
        let span = duration_as_micros(self.config.election_timeout_max) - min;
        // Multiply-and-shift maps a uniform u64 onto [0, span) without
        // division and with negligible bias.
        let offset = ((u128::from(self.rng.next_u64()) * u128::from(span)) >> 64) as u64;
        Duration::from_micros(min + offset)
    }

    /// Queues `message` for `to`, after any hard-state change it depends on
    /// (and after the leader's own new entries, unless it persists them in
    /// parallel: then only its appends can follow them within one drain,
    /// since any other input flushes them first).
    pub(crate) fn send(&mut self, to: NodeId, message: Message) {
        self.flush_hard_state();
        if !self.config.leader_writes_in_parallel() {
            self.flush_own_entries();
        }
        self.outputs.push(Output::Send { to, message });
    }

    /// Queues `message` for every other voter.
    pub(crate) fn broadcast(&mut self, message: &Message) {
        for position in 0..self.voters.all_voters().len() {
            let peer = self.voters.all_voters()[position];
            if peer != self.id {
                self.send(peer, message.clone());
            }
        }
    }

    pub(crate) fn mark_hard_state_dirty(&mut self) {
        self.hard_state_dirty = true;
    }

    pub(crate) fn flush_hard_state(&mut self) {
        if self.hard_state_dirty {
            self.hard_state_dirty = false;
            let hard_state = self.hard_state();
            self.outputs
                .push(Output::Persist(Persist::HardState(hard_state)));
        }
    }

    /// Completes the output list of one input: persists what is still
    /// dirty, reports a changed role and arms the timer.
    fn finish(&mut self, now: Instant) {
        self.settle_membership(now);
        self.flush_hard_state();
        self.settle_reads();
        let current = (self.role(), self.term, self.leader());
        if current != self.reported {
            self.reported = current;
            let (role, term, leader) = current;
            self.outputs
                .push(Output::RoleChanged { role, term, leader });
        }
        self.arm_timer(now);
    }

    /// Asks for the timer at the next deadline, unless the timer armed
    /// already serves.
    fn arm_timer(&mut self, now: Instant) {
        let deadline = self.next_deadline();
        // A timer that will fire before the deadline is left alone: its
        // early firing is harmless and re-arms. This saves an output per
        // heartbeat on followers, whose deadline moves later each time.
        let keep_armed = matches!(self.armed_timer, Some(armed) if armed <= deadline && (armed > now || armed == deadline));
        if !keep_armed {
            self.armed_timer = Some(deadline);
            self.outputs.push(Output::SetTimer { deadline });
        }
    }
}

//! A harness for one node in isolation: the test plays every peer by hand,
//! feeding messages and timer firings and reading back the outputs.
//! Unit-level scenarios (the Raft paper's sentences) are written with it.

use std::time::Duration;

use kontiki::{
    AppendEntries, AppendEntriesResponse, Command, Config, Entry, HandleError, Handled, Input,
    Instant, LogIndex, Message, Node, NodeId, Output, PersistedState, RequestVote,
    RequestVoteResponse, Role, Term,
};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Config for probes: pre-vote, check-quorum and writing in parallel off,
/// so each test turns on exactly the features it is about (a probe
/// performs writes at once and reports none).
pub fn plain_config() -> Config {
    Config {
        election_timeout_min: Duration::from_millis(150),
        election_timeout_max: Duration::from_millis(300),
        heartbeat_interval: Duration::from_millis(50),
        pre_vote: false,
        check_quorum: false,
        leader_stickiness: false,
        noop_on_election: false,
        leader_persists_in_parallel: false,
        ..Config::default()
    }
}

/// One node under test, with its outputs and its durable state.
pub struct Probe {
    /// The node.
    pub node: Node<ChaCha8Rng>,
    /// The outputs of the latest input (and of construction, at first).
    pub outputs: Vec<Output>,
    /// What the node persisted so far through its outputs.
    pub durable: PersistedState,
    /// Every entry applied so far, in order.
    pub applied: Vec<Entry>,
    /// The timer as last armed.
    pub timer: Option<Instant>,
    /// The clock.
    pub now: Instant,
    voters: Vec<NodeId>,
    config: Config,
}

impl Probe {
    /// Node 1 of a cluster of `voters` nodes (ids `1..=voters`).
    pub fn new(voters: u64, config: Config) -> Probe {
        Probe::restore(voters, config, PersistedState::default())
    }

    /// Node 1 restarted from `persisted`.
    pub fn restore(voters: u64, config: Config, persisted: PersistedState) -> Probe {
        Probe::restore_as(NodeId(1), voters, config, persisted)
    }

    /// Node `id` restarted from `persisted`.
    pub fn restore_as(id: NodeId, voters: u64, config: Config, persisted: PersistedState) -> Probe {
        let voters: Vec<NodeId> = (1..=voters).map(NodeId).collect();
        let durable = persisted.clone();
        let node = Node::new(
            id,
            &voters,
            config.clone(),
            ChaCha8Rng::seed_from_u64(7),
            persisted,
            Instant::ZERO,
        )
        .expect("valid probe configuration");
        let mut probe = Probe {
            node,
            outputs: Vec::new(),
            durable,
            applied: Vec::new(),
            timer: None,
            now: Instant::ZERO,
            voters,
            config,
        };
        probe.collect();
        probe
    }

    /// Simulates a crash and a restart from the durable state (the log is
    /// kept as it was).
    pub fn crash_and_restart(&mut self) {
        let persisted = self.durable.clone();
        let voters = self.voters.len() as u64;
        let config = self.config.clone();
        let now = self.now;
        *self = Probe::restore_as(self.node.id(), voters, config, persisted);
        self.now = now;
    }

    fn collect(&mut self) {
        self.outputs = self.node.drain_outputs().collect();
        for output in &self.outputs {
            match output {
                Output::Persist(write) => self
                    .durable
                    .apply(write.clone())
                    .expect("the core persists in order"),
                Output::Apply(entry) => self.applied.push(entry.clone()),
                Output::SetTimer { deadline } => self.timer = Some(*deadline),
                Output::RestoreSnapshot(_)
                | Output::InstallSnapshot(_)
                | Output::Send { .. }
                | Output::ReadReady { .. }
                | Output::ReadsFailed { .. }
                | Output::RoleChanged { .. } => {}
            }
        }
    }

    /// Reports the node's writes durable through `index`, written in
    /// `term`.
    pub fn persisted(&mut self, index: u64, term: u64) {
        self.input(Input::Persisted {
            index: LogIndex(index),
            term: Term(term),
        })
        .expect("a write report is accepted");
    }

    /// Hands the node `input` at the current time.
    pub fn input(&mut self, input: Input) -> Result<Handled, HandleError> {
        let result = self.node.handle(self.now, input);
        self.collect();
        result
    }

    /// Delivers `message` from `from`.
    pub fn receive(&mut self, from: u64, message: Message) -> Result<Handled, HandleError> {
        self.input(Input::Message {
            from: NodeId(from),
            message,
        })
    }

    /// Moves the clock to the armed timer and fires it.
    pub fn fire_timer(&mut self) {
        let deadline = self.timer.take().expect("a timer is armed");
        self.now = self.now.max(deadline);
        self.input(Input::Timer).expect("timers are accepted");
    }

    /// Fires timers until the node's role becomes `role` (at most 20 times).
    pub fn fire_timer_until(&mut self, role: Role) {
        for _ in 0..20 {
            if self.node.role() == role {
                return;
            }
            self.fire_timer();
        }
        panic!("node did not become {role} after 20 timer firings");
    }

    /// Advances the clock by `duration` without firing anything.
    pub fn advance(&mut self, duration: Duration) {
        self.now = self.now + duration;
    }

    /// Asks the node to campaign.
    pub fn campaign(&mut self) -> Result<Handled, HandleError> {
        self.input(Input::Command(Command::Campaign))
    }

    /// Messages sent by the latest input, in order.
    pub fn sent(&self) -> Vec<(NodeId, Message)> {
        self.outputs
            .iter()
            .filter_map(|output| match output {
                Output::Send { to, message } => Some((*to, message.clone())),
                _ => None,
            })
            .collect()
    }

    fn vote_requests_sent(&self) -> Vec<(NodeId, RequestVote)> {
        self.sent()
            .into_iter()
            .filter_map(|(to, message)| match message {
                Message::RequestVote(request) => Some((to, request)),
                _ => None,
            })
            .collect()
    }

    /// Makes node 1 leader of term `term` (pre-vote and check-quorum as
    /// configured) by campaigning and granting votes from every peer.
    pub fn elect(&mut self) {
        self.campaign().expect("a follower may campaign");
        // Requests of the pre-vote round, if any, then of the election: each
        // round's requests leave with the answer that ended the last one.
        let mut requests = self.vote_requests_sent();
        for _round in 0..2 {
            let mut next_round = Vec::new();
            for (to, request) in requests {
                if self.node.role() == Role::Leader {
                    break;
                }
                let response = Message::RequestVoteResponse(RequestVoteResponse {
                    term: request.term,
                    granted: true,
                    pre_vote: request.pre_vote,
                });
                self.receive(to.get(), response).expect("valid vote");
                next_round.extend(self.vote_requests_sent());
            }
            requests = next_round;
        }
        assert_eq!(
            self.node.role(),
            Role::Leader,
            "probe failed to win its election"
        );
    }
}

/// A vote request from a candidate whose log ends at `last_index@last_term`.
pub fn request_vote(term: u64, last_index: u64, last_term: u64, pre_vote: bool) -> Message {
    Message::RequestVote(RequestVote {
        term: Term(term),
        last_log_index: LogIndex(last_index),
        last_log_term: Term(last_term),
        pre_vote,
        transfer: false,
    })
}

/// A vote response.
pub fn vote_response(term: u64, granted: bool, pre_vote: bool) -> Message {
    Message::RequestVoteResponse(RequestVoteResponse {
        term: Term(term),
        granted,
        pre_vote,
    })
}

/// A heartbeat (empty AppendEntries) of `term` claiming the log ends at
/// `prev_index@prev_term`.
pub fn heartbeat(term: u64, prev_index: u64, prev_term: u64) -> Message {
    append(term, prev_index, prev_term, 0, &[])
}

/// An AppendEntries of `term` after `prev_index@prev_term` carrying
/// commands of the given terms (payload: the entry's index as one byte).
pub fn append(
    term: u64,
    prev_index: u64,
    prev_term: u64,
    leader_commit: u64,
    entry_terms: &[u64],
) -> Message {
    Message::AppendEntries(AppendEntries {
        term: Term(term),
        prev_log_index: LogIndex(prev_index),
        prev_log_term: Term(prev_term),
        leader_commit: LogIndex(leader_commit),
        entries: entry_terms
            .iter()
            .enumerate()
            .map(|(offset, &entry_term)| {
                let index = prev_index + 1 + offset as u64;
                Entry::command(LogIndex(index), Term(entry_term), vec![index as u8])
            })
            .collect(),
    })
}

/// An AppendEntriesResponse.
pub fn append_response(term: u64, success: bool, index: u64, conflict_term: u64) -> Message {
    Message::AppendEntriesResponse(AppendEntriesResponse {
        term: Term(term),
        success,
        index: LogIndex(index),
        conflict_term: Term(conflict_term),
    })
}

//! Exhaustive model checking of elections and replication with stateright,
//! driving the real kontiki core (not a re-written copy of it).
//!
//! A state is every node (cloned and hashed whole), what each node has
//! persisted, its armed timer, and the messages in flight as wire bytes.
//! From any state, any of these may happen next: an in-flight message is
//! delivered, duplicated (delivered while a copy stays in flight) or lost,
//! a node's timer fires (that node's clock jumps to the deadline; clocks
//! are per node, as on real machines), a leader is handed a proposal or a
//! linearizable read (as many as the check allows), or — once per run — a
//! node crashes and later
//! restarts from what it persisted. The RNG always
//! draws zero, so every node uses the minimum election timeout: the model
//! checker, not the RNG, chooses who times out first.
//!
//! Checked in every reachable state: at most one leader per term over the
//! whole history, at most one vote per (node, term), every hard-state change
//! persisted, terms never below what was persisted, log matching over the
//! persisted logs, and state machine safety (every node, in every life,
//! applies the same entry at each index), and linearizable reads (a read is
//! served at a read index no lower than any entry applied anywhere before
//! it arrived). `sometimes` properties make sure a leader is elected, a
//! proposal applied and a read served, so the model is not vacuous.
//!
//! The check has teeth: a deliberately broken variant, in which a node
//! forgets its vote when it restarts, is caught with a counterexample.

use std::collections::BTreeSet;
use std::time::Duration;

use kontiki::{
    wire, Command, Config, Entry, Handled, Input, Instant, Node, NodeId, Output, Persist,
    PersistedState, Role,
};
use kontiki_tests::model::{logs_match, record_apply, ZeroRng};
use stateright::{Checker, Model, Property};

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Peer {
    node: Option<Node<ZeroRng>>,
    durable: PersistedState,
    timer: Option<Instant>,
    /// The clock of the machine this node runs on; it survives crashes.
    clock: Instant,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct State {
    peers: Vec<Peer>,
    /// In-flight messages as (from, to, wire bytes), kept sorted: the
    /// network is a multiset, and order must not split equal states.
    network: Vec<(u64, u64, Vec<u8>)>,
    /// Every (term, leader) ever observed.
    leaders: BTreeSet<(u64, u64)>,
    /// Every (voter, term, candidate) ever persisted.
    votes: BTreeSet<(u64, u64, u64)>,
    /// The first entry any node applied at each index (position + 1).
    applied: Vec<Entry>,
    proposals: u8,
    /// Reads asked so far, and those served.
    reads: u8,
    reads_served: u8,
    /// Reads waiting on a node as (node, round, highest index applied
    /// anywhere when the read arrived), which the read index must reach.
    waiting_reads: Vec<(u64, u64, u64)>,
    duplicates: u8,
    crashes: u8,
    /// Set when a node's in-memory hard state differs from what it
    /// persisted after its outputs were performed, or a term went down.
    broken: Option<String>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Action {
    Deliver(usize),
    Duplicate(usize),
    Lose(usize),
    Propose(u64),
    Read(u64),
    Timer(u64),
    Crash(u64),
    Restart(u64),
}

struct Election {
    nodes: u64,
    config: Config,
    max_term: u64,
    max_in_flight: usize,
    max_crashes: u8,
    max_duplicates: u8,
    max_proposals: u8,
    max_reads: u8,
    /// The broken variant: a restarted node forgets whom it voted for.
    forget_vote_on_restart: bool,
    /// No node's clock passes this: leaders would otherwise send
    /// heartbeats, and the state space grow, forever.
    max_clock: Instant,
}

impl Election {
    fn voters(&self) -> Vec<NodeId> {
        (1..=self.nodes).map(NodeId).collect()
    }

    fn start(&self, state: &mut State, id: u64) {
        let position = (id - 1) as usize;
        if self.forget_vote_on_restart {
            state.peers[position].durable.hard_state.voted_for = None;
        }
        let persisted = state.peers[position].durable.clone();
        let clock = state.peers[position].clock;
        let node = Node::new(
            NodeId(id),
            &self.voters(),
            self.config.clone(),
            ZeroRng,
            persisted,
            clock,
        )
        .expect("valid model configuration");
        state.peers[position].node = Some(node);
        self.perform(state, id);
    }

    fn perform(&self, state: &mut State, id: u64) {
        let position = (id - 1) as usize;
        let Some(node) = state.peers[position].node.as_mut() else {
            return;
        };
        let outputs: Vec<Output> = node.drain_outputs().collect();
        // The model runs in release builds, where the core does not check
        // itself after every input.
        node.check_invariants();
        for output in outputs {
            match output {
                Output::Persist(write) => {
                    if let Persist::HardState(hard_state) = &write {
                        if hard_state.term < state.peers[position].durable.hard_state.term {
                            state.broken = Some(format!("n{id} persisted a lower term"));
                        }
                        if let Some(candidate) = hard_state.voted_for {
                            state
                                .votes
                                .insert((id, hard_state.term.get(), candidate.get()));
                        }
                    }
                    if let Err(refused) = state.peers[position].durable.apply(write) {
                        state.broken = Some(format!("n{id}: {refused}"));
                    }
                }
                Output::Send { to, message } => {
                    let mut bytes = Vec::new();
                    wire::encode(&message, &mut bytes);
                    state.network.push((id, to.get(), bytes));
                }
                Output::Apply(entry) => {
                    if let Err(violation) = record_apply(&mut state.applied, id, entry) {
                        state.broken = Some(violation);
                    }
                }
                Output::SetTimer { deadline } => state.peers[position].timer = Some(deadline),
                Output::ReadReady { round, index } => {
                    for &(node, read_round, committed) in &state.waiting_reads {
                        if node == id && read_round <= round && index.get() < committed {
                            state.broken = Some(format!(
                                "linearizability: n{id} served a read at {index} after {committed} was applied"
                            ));
                        }
                    }
                    let before = state.waiting_reads.len();
                    state
                        .waiting_reads
                        .retain(|&(node, read_round, _)| node != id || read_round > round);
                    state.reads_served += (before - state.waiting_reads.len()) as u8;
                }
                Output::ReadsFailed { round } => state
                    .waiting_reads
                    .retain(|&(node, read_round, _)| node != id || read_round > round),
                Output::RoleChanged {
                    role: Role::Leader,
                    term,
                    ..
                } => {
                    state.leaders.insert((term.get(), id));
                }
                // No snapshots in these models.
                Output::RoleChanged { .. }
                | Output::RestoreSnapshot(_)
                | Output::InstallSnapshot(_) => {}
            }
        }
        state.network.sort();
        let node = state.peers[position].node.as_ref().expect("still running");
        if node.hard_state() != state.peers[position].durable.hard_state {
            state.broken = Some(format!("n{id} holds a hard state it did not persist"));
        }
    }

    /// Hands `to` the message `from` sent as `bytes`.
    fn deliver(&self, state: &mut State, from: u64, to: u64, bytes: &[u8]) {
        let message = wire::decode(bytes).expect("the core only sends decodable messages");
        let from = NodeId(from);
        self.handle(state, to, Input::Message { from, message });
    }

    fn handle(&self, state: &mut State, id: u64, input: Input) {
        let position = (id - 1) as usize;
        let clock = state.peers[position].clock;
        if let Some(node) = state.peers[position].node.as_mut() {
            let _ = node.handle(clock, input);
            self.perform(state, id);
        }
    }
}

impl Model for Election {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let mut state = State {
            peers: (0..self.nodes)
                .map(|_| Peer {
                    node: None,
                    durable: PersistedState::default(),
                    timer: None,
                    clock: Instant::ZERO,
                })
                .collect(),
            network: Vec::new(),
            leaders: BTreeSet::new(),
            votes: BTreeSet::new(),
            applied: Vec::new(),
            proposals: 0,
            reads: 0,
            reads_served: 0,
            waiting_reads: Vec::new(),
            duplicates: 0,
            crashes: 0,
            broken: None,
        };
        for id in 1..=self.nodes {
            self.start(&mut state, id);
        }
        vec![state]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        for index in 0..state.network.len() {
            // Equal neighbours are the same message: explore it once.
            if index > 0 && state.network[index] == state.network[index - 1] {
                continue;
            }
            actions.push(Action::Deliver(index));
            if state.duplicates < self.max_duplicates {
                actions.push(Action::Duplicate(index));
            }
            actions.push(Action::Lose(index));
        }
        for (position, peer) in state.peers.iter().enumerate() {
            let id = position as u64 + 1;
            match &peer.node {
                Some(node) => {
                    if node.role() == Role::Leader && state.proposals < self.max_proposals {
                        actions.push(Action::Propose(id));
                    }
                    if node.role() == Role::Leader && state.reads < self.max_reads {
                        actions.push(Action::Read(id));
                    }
                    if peer.timer.is_some() {
                        actions.push(Action::Timer(id));
                    }
                    if state.crashes < self.max_crashes {
                        actions.push(Action::Crash(id));
                    }
                }
                None => actions.push(Action::Restart(id)),
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut state = last.clone();
        match action {
            Action::Deliver(index) => {
                let (from, to, bytes) = state.network.remove(index);
                self.deliver(&mut state, from, to, &bytes);
            }
            Action::Duplicate(index) => {
                state.duplicates += 1;
                let (from, to, bytes) = state.network[index].clone();
                self.deliver(&mut state, from, to, &bytes);
            }
            Action::Lose(index) => {
                state.network.remove(index);
            }
            Action::Propose(id) => {
                state.proposals += 1;
                let command = vec![state.proposals];
                self.handle(
                    &mut state,
                    id,
                    Input::Command(Command::Propose(command.into())),
                );
            }
            Action::Read(id) => {
                state.reads += 1;
                let position = (id - 1) as usize;
                let clock = state.peers[position].clock;
                let node = state.peers[position].node.as_mut()?;
                if let Ok(Handled::ReadQueued { round }) =
                    node.handle(clock, Input::Command(Command::Read))
                {
                    let committed = state.applied.len() as u64;
                    state.waiting_reads.push((id, round, committed));
                }
                self.perform(&mut state, id);
            }
            Action::Timer(id) => {
                let peer = &mut state.peers[(id - 1) as usize];
                let deadline = peer.timer.take()?;
                peer.clock = peer.clock.max(deadline);
                self.handle(&mut state, id, Input::Timer);
            }
            Action::Crash(id) => {
                let peer = &mut state.peers[(id - 1) as usize];
                peer.node = None;
                peer.timer = None;
                state.crashes += 1;
                // Its waiting reads are lost with it.
                state.waiting_reads.retain(|(node, _, _)| *node != id);
                // Messages to the dead incarnation are never delivered.
                state.network.retain(|(_, to, _)| *to != id);
            }
            Action::Restart(id) => self.start(&mut state, id),
        }
        Some(state)
    }

    fn within_boundary(&self, state: &State) -> bool {
        state.network.len() <= self.max_in_flight
            && state.peers.iter().all(|peer| {
                peer.durable.hard_state.term.get() <= self.max_term && peer.clock <= self.max_clock
            })
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("at most one leader per term", |_, state: &State| {
                let terms: Vec<u64> = state.leaders.iter().map(|(term, _)| *term).collect();
                terms.windows(2).all(|pair| pair[0] != pair[1])
            }),
            Property::always("at most one vote per node and term", |_, state: &State| {
                let keys: Vec<(u64, u64)> = state
                    .votes
                    .iter()
                    .map(|(voter, term, _)| (*voter, *term))
                    .collect();
                keys.windows(2).all(|pair| pair[0] != pair[1])
            }),
            Property::always(
                "persistence, applies and terms stay consistent",
                |_, state: &State| state.broken.is_none(),
            ),
            Property::always("log matching", |_, state: &State| {
                logs_match(state.peers.iter().map(|peer| &peer.durable))
            }),
            Property::sometimes("a leader is elected", |_, state: &State| {
                !state.leaders.is_empty()
            }),
            Property::sometimes(
                "a proposal is applied (when proposals are allowed)",
                |model: &Election, state: &State| {
                    model.max_proposals == 0 || !state.applied.is_empty()
                },
            ),
            Property::sometimes(
                "a read is served (when reads are allowed)",
                |model: &Election, state: &State| model.max_reads == 0 || state.reads_served > 0,
            ),
        ]
    }
}

fn check(model: Election) -> usize {
    // Depth-first: the visited set holds fingerprints only, so memory stays
    // small where breadth-first would queue millions of whole clusters.
    let started = std::time::Instant::now();
    let checker = model.checker().threads(2).spawn_dfs().join();
    println!(
        "{} unique states, max depth {}, in {:?}",
        checker.unique_state_count(),
        checker.max_depth(),
        started.elapsed()
    );
    checker.assert_properties();
    checker.unique_state_count()
}

const MAX_IN_FLIGHT: usize = 3;

/// How far clocks may run (election timeouts are 3 ms). The default, 3 ms,
/// covers every interleaving of the first election round, with a crash and
/// restart anywhere in it (about 2 million states, seconds). CI's
/// model-check step sets `KONTIKI_MODEL_CLOCK_MS=4`, adding a heartbeat
/// round and second elections (about 11 million states, a minute in
/// release). Each further millisecond multiplies the states by about four.
fn max_clock() -> Instant {
    let millis = std::env::var("KONTIKI_MODEL_CLOCK_MS")
        .ok()
        .map(|value| {
            value
                .parse()
                .expect("KONTIKI_MODEL_CLOCK_MS must be an integer")
        })
        .unwrap_or(3);
    Instant::from_millis(millis)
}

fn config(pre_vote: bool, check_quorum: bool) -> Config {
    Config {
        // Coarse units keep the state space small; safety does not depend
        // on the values, only on the order of events.
        election_timeout_min: Duration::from_millis(3),
        election_timeout_max: Duration::from_millis(4),
        heartbeat_interval: Duration::from_millis(1),
        pre_vote,
        check_quorum,
        leader_stickiness: check_quorum,
        // Entries come from the model's proposals only, so the state space
        // stays small.
        noop_on_election: false,
        // The model performs writes at once and reports none.
        leader_persists_in_parallel: false,
        ..Config::default()
    }
}

/// Checks the 3-node model with the given options (up to `proposals`
/// client commands and `duplicates` duplicated messages, one crash), and
/// that the model was not vacuous.
fn check_three_nodes(pre_vote: bool, check_quorum: bool, proposals: u8, duplicates: u8) {
    check_three_nodes_with(config(pre_vote, check_quorum), proposals, 0, duplicates, 1);
}

fn check_three_nodes_with(config: Config, proposals: u8, reads: u8, duplicates: u8, crashes: u8) {
    let states = check(Election {
        nodes: 3,
        config,
        max_term: 2,
        max_in_flight: MAX_IN_FLIGHT,
        max_crashes: crashes,
        max_duplicates: duplicates,
        max_proposals: proposals,
        max_reads: reads,
        forget_vote_on_restart: false,
        max_clock: max_clock(),
    });
    println!("explored {states} states");
    assert!(
        states > 1_000,
        "the model explored suspiciously few states: {states}"
    );
}

#[test]
fn three_node_election_without_pre_vote_is_safe_in_every_interleaving() {
    check_three_nodes(false, false, 0, 0);
}

#[test]
fn three_node_election_with_pre_vote_and_check_quorum_is_safe_in_every_interleaving() {
    check_three_nodes(true, true, 0, 0);
}

/// Replication: a proposal, a crash, lost and reordered messages. About
/// 22 million states at the default clock bound (three minutes in
/// release), so the README's test command skips it and CI runs it on its
/// own: `cargo test --release -p kontiki-tests --test model_check --
/// --ignored`.
#[test]
#[ignore = "22 million states: CI runs it with --ignored, in release"]
fn three_node_replication_of_a_proposal_is_safe_in_every_interleaving() {
    check_three_nodes(true, true, 1, 0);
}

/// Duplication: elections where one message may also be delivered twice.
#[test]
#[ignore = "10 million states: CI runs it with --ignored, in release"]
fn three_node_election_with_a_duplicated_message_is_safe_in_every_interleaving() {
    check_three_nodes(true, true, 0, 1);
}

/// The check has teeth: with a storage bug that loses a node's vote when it
/// restarts, the node can vote twice in one term, and the model checker
/// finds two leaders of one term and prints how.
#[test]
fn a_node_that_forgets_its_vote_on_restart_is_caught() {
    let model = Election {
        nodes: 3,
        config: config(false, false),
        max_term: 2,
        max_in_flight: MAX_IN_FLIGHT,
        max_crashes: 1,
        max_duplicates: 0,
        max_proposals: 0,
        max_reads: 0,
        forget_vote_on_restart: true,
        max_clock: Instant::from_millis(3),
    };
    let checker = model.checker().threads(2).spawn_dfs().join();
    let discoveries = checker.discoveries();
    let counterexample = discoveries
        .get("at most one leader per term")
        .expect("the broken variant is caught");
    let steps: Vec<Action> = counterexample.clone().into_actions();
    println!("counterexample ({} steps): {steps:?}", steps.len());
    assert!(steps.iter().any(|step| matches!(step, Action::Restart(_))));
}

/// Reads: a linearizable read on any leader, with no-ops on election and
/// check-quorum off, so that a leader of term 1 may linger while a leader
/// of term 2 commits its no-op. Every read served must see every entry
/// applied anywhere before it arrived. About 4.4 million states (a minute
/// in release). A core that serves reads without the leadership check is
/// caught: n1, deposed, serves a read at index 1 after the leader of term
/// 2 applied index 2.
#[test]
#[ignore = "4.4 million states: CI runs it with --ignored, in release"]
fn three_node_reads_are_linearizable_in_every_interleaving() {
    let config = Config {
        noop_on_election: true,
        ..config(false, false)
    };
    check_three_nodes_with(config, 0, 1, 0, 0);
}

//! The deterministic cluster: N kontiki cores on a virtual clock, joined by
//! the simulated network, with crashes and restarts. One `u64` seed decides
//! every random choice, so a seed replays a whole run exactly.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use kontiki::{
    wire, Command, Config, Entry, HandleError, Handled, HardState, Input, Instant, LogIndex,
    MembershipChange, Message, Node, NodeId, Output, Persist, PersistedState, Role, Term,
};
use rand_08::{Rng, SeedableRng};
use rand_chacha::rand_core::SeedableRng as _;
use rand_chacha::ChaCha8Rng;

/// The simulator's own random source, kept on rand_chacha 0.3 and rand
/// 0.8's sampling so that recorded seeds replay the same runs (nodes get
/// rand_chacha 0.10, whose stream per seed is the same).
pub type HarnessRng = rand_chacha_03::ChaCha8Rng;

use super::invariants::{
    apply_to_digest, check_configuration, check_log_matching, entry_at, holds_durably, Checker,
    SendRules,
};
use super::network::{chance, Envelope, Loss, Network, NetworkConfig};
use super::trace::{Trace, TraceEvent};

/// How to build a [`Cluster`].
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Number of voters the cluster starts with, with ids `1..=node_count`.
    pub node_count: usize,
    /// Nodes that start with no configuration, waiting to be added, with
    /// ids after the voters'.
    pub spare_nodes: usize,
    /// The configuration every node runs with.
    pub node: Config,
    /// How the network treats messages.
    pub network: NetworkConfig,
    /// Probability that a node crashes part-way through performing the
    /// outputs of one input (after a random number of them), which tests
    /// that the core orders persists before the sends that depend on them.
    /// Only with instant writes: with a `write_latency`, a crash from the
    /// fault injector already lands between a node's queued outputs.
    pub crash_during_outputs_probability: f64,
    /// How long each disk write takes. `None`: writes are instant and a
    /// node's outputs are performed as they are drained. `Some`: a node's
    /// outputs queue behind each write until it completes, while the node
    /// goes on handling inputs (a pipelined driver); a crash loses the
    /// write in flight and everything queued behind it.
    pub write_latency: Option<Duration>,
    /// Every node snapshots its state machine each time it has applied
    /// this many entries past its latest snapshot, so that logs are
    /// compacted and lagging followers catch up by InstallSnapshot.
    /// `None`: never.
    pub snapshot_interval: Option<u64>,
    /// A node learns when a message it sent could not be delivered because
    /// the link is cut (a partition or isolation, not random loss), as a
    /// driver on TCP learns of a broken connection, and reports it to its
    /// core ([`Input::Unreachable`]).
    pub report_unreachable: bool,
    /// A crash during a write (with a `write_latency`) tears it: a random
    /// prefix of it reaches the disk — whole persists, and part of an
    /// append — and the rest is lost. Never reported, so nothing the node
    /// sent may rest on it.
    pub tear_writes_at_crash: bool,
}

impl ClusterConfig {
    /// `node_count` nodes with the core's default config on a reliable
    /// network.
    pub fn new(node_count: usize) -> ClusterConfig {
        ClusterConfig {
            node_count,
            spare_nodes: 0,
            node: Config::default(),
            network: NetworkConfig::reliable(),
            crash_during_outputs_probability: 0.0,
            write_latency: None,
            snapshot_interval: None,
            report_unreachable: false,
            tear_writes_at_crash: false,
        }
    }
}

/// The simulated node type: a kontiki core with a seeded ChaCha RNG.
pub type SimNode = Node<ChaCha8Rng>;

/// One node's place in the cluster; it outlives the node's crashes.
struct Slot {
    id: NodeId,
    /// The voters the node is started with: the first configuration, or
    /// none for a spare node waiting to be added.
    initial_voters: Vec<NodeId>,
    node: Option<SimNode>,
    /// What survives a crash: only what the node asked to persist and the
    /// simulator performed.
    storage: PersistedState,
    /// The deadline of the node's timer, as last armed.
    timer: Option<Instant>,
    /// Increments on every crash, so messages to a dead incarnation are not
    /// delivered to its successor.
    incarnation: u64,
    /// This node's disk write latency (see `ClusterConfig::write_latency`).
    write_latency: Option<Duration>,
    /// Outputs drained but not yet performed (with a write latency only),
    /// each with the node's commit index before the step that drained it.
    queue: VecDeque<(Output, LogIndex)>,
    /// When the write at the head of `queue` completes, once started.
    write_done_at: Option<Instant>,
    /// The node's state machine in its current life: the last index
    /// applied and the digest of everything applied (see
    /// `apply_to_digest`), which is what its snapshots carry.
    state_machine: (LogIndex, u64),
}

/// Messages and bytes a node has put on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Messages sent (requests and responses).
    pub messages: u64,
    /// Requests sent (RequestVote, AppendEntries): labrpc's "RPC count".
    pub requests: u64,
    /// Bytes sent, in kontiki's wire encoding (without transport framing).
    pub bytes: u64,
    /// InstallSnapshot messages sent.
    pub snapshots: u64,
}

/// A role change observed in the run, for timelines and statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleChange {
    /// When.
    pub at: Instant,
    /// Which node.
    pub node: NodeId,
    /// Its new role.
    pub role: Role,
    /// Its term.
    pub term: Term,
    /// The leader it knows.
    pub leader: Option<NodeId>,
}

/// A simulated Raft cluster.
pub struct Cluster {
    seed: u64,
    config: ClusterConfig,
    rng: HarnessRng,
    now: Instant,
    slots: Vec<Slot>,
    /// Every node's id, the starting voters' and the spares'.
    ids: Vec<NodeId>,
    network: Network,
    checker: Checker,
    trace: Trace,
    traffic: BTreeMap<NodeId, Traffic>,
    role_changes: Vec<RoleChange>,
    steps: u64,
    /// Reused for encoding each message sent.
    wire_buffer: Vec<u8>,
    /// Some persisted log changed during the current step.
    log_changed: bool,
    /// Every apply performed, in order.
    applied: Vec<Applied>,
    /// Nodes to which the next InstallSnapshot sent is lost.
    lose_next_snapshot_to: BTreeSet<NodeId>,
    /// (sender, peer) pairs of undeliverable messages not yet reported
    /// (see `ClusterConfig::report_unreachable`).
    unreachable_reports: Vec<(NodeId, NodeId)>,
}

/// One entry applied by one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// When it was applied (the output performed).
    pub at: Instant,
    /// The node that applied it.
    pub node: NodeId,
    /// The entry.
    pub entry: Entry,
}

impl Cluster {
    /// Starts `config.node_count` fresh nodes (and the spares) at time
    /// zero.
    pub fn new(seed: u64, config: ClusterConfig) -> Cluster {
        let voters: Vec<NodeId> = (1..=config.node_count as u64).map(NodeId).collect();
        let ids: Vec<NodeId> = (1..=(config.node_count + config.spare_nodes) as u64)
            .map(NodeId)
            .collect();
        let mut cluster = Cluster {
            seed,
            rng: HarnessRng::seed_from_u64(seed),
            now: Instant::ZERO,
            slots: ids
                .iter()
                .map(|&id| Slot {
                    id,
                    initial_voters: if voters.contains(&id) {
                        voters.clone()
                    } else {
                        Vec::new()
                    },
                    node: None,
                    storage: PersistedState::default(),
                    timer: None,
                    incarnation: 0,
                    write_latency: config.write_latency,
                    queue: VecDeque::new(),
                    write_done_at: None,
                    state_machine: (LogIndex(0), 0),
                })
                .collect(),
            network: Network::new(config.network.clone()),
            ids,
            config,
            checker: Checker::default(),
            trace: Trace::default(),
            traffic: BTreeMap::new(),
            role_changes: Vec::new(),
            steps: 0,
            wire_buffer: Vec::new(),
            log_changed: false,
            applied: Vec::new(),
            lose_next_snapshot_to: BTreeSet::new(),
            unreachable_reports: Vec::new(),
        };
        for id in cluster.ids.clone() {
            cluster.start_node(id);
        }
        cluster
    }

    /// The seed this run replays from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Events processed so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// All node ids: the starting voters `1..=node_count`, then the
    /// spares.
    pub fn ids(&self) -> &[NodeId] {
        &self.ids
    }

    /// The running node `id`, or `None` while it is crashed.
    pub fn node(&self, id: NodeId) -> Option<&SimNode> {
        self.slot(id).node.as_ref()
    }

    /// What node `id` has made durable.
    pub fn storage(&self, id: NodeId) -> &PersistedState {
        &self.slot(id).storage
    }

    /// The size of what node `id` has persisted, in bytes: its hard state
    /// as a fixed record (term, vote flag, voted-for id: 17 bytes) plus each
    /// log entry as the wire format writes it. Raft's "persisted state
    /// size", for budgets such as 6.824's snapshot tests.
    pub fn persisted_bytes(&self, id: NodeId) -> usize {
        const HARD_STATE_BYTES: usize = 8 + 1 + 8;
        let storage = self.storage(id);
        HARD_STATE_BYTES
            + storage.snapshot.as_ref().map_or(0, |s| 16 + s.data.len())
            + storage
                .entries
                .iter()
                .map(wire::entry_encoded_len)
                .sum::<usize>()
    }

    /// Whether node `id` is running.
    pub fn is_running(&self, id: NodeId) -> bool {
        self.node(id).is_some()
    }

    /// Whether node `id` is cut off from everyone.
    pub fn is_isolated(&self, id: NodeId) -> bool {
        self.network.is_isolated(id)
    }

    /// What node `id` has sent so far.
    pub fn traffic(&self, id: NodeId) -> Traffic {
        self.traffic.get(&id).copied().unwrap_or_default()
    }

    /// Everything sent so far, summed over nodes.
    pub fn total_traffic(&self) -> Traffic {
        self.traffic
            .values()
            .fold(Traffic::default(), |sum, t| Traffic {
                messages: sum.messages + t.messages,
                requests: sum.requests + t.requests,
                bytes: sum.bytes + t.bytes,
                snapshots: sum.snapshots + t.snapshots,
            })
    }

    /// Messages on the wire, not yet delivered or dropped.
    pub fn messages_in_flight(&self) -> usize {
        self.network.in_flight_count()
    }

    /// Every role change so far, in order.
    pub fn role_changes(&self) -> &[RoleChange] {
        &self.role_changes
    }

    /// The invariant checker's memory (leaders per term, ...).
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// The latest events.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The cluster's own RNG, for tests that make random choices (which
    /// nodes to disconnect, ...) reproducible from the seed.
    pub fn rng(&mut self) -> &mut HarnessRng {
        &mut self.rng
    }

    /// Records a free-form line in the trace.
    pub fn note(&mut self, text: impl Into<String>) {
        self.trace.record(self.now, TraceEvent::Note(text.into()));
    }

    /// Fails the run: panics with the seed, the reason and the trace.
    #[track_caller]
    pub fn fail(&self, reason: impl std::fmt::Display) -> ! {
        panic!(
            "{reason}\n  seed {seed} at {now} after {steps} steps; replay with KONTIKI_SEED={seed}\n\
             latest events:\n{trace}",
            seed = self.seed,
            now = self.now,
            steps = self.steps,
            trace = self.trace
        )
    }

    /// Fails the run with `reason` unless `condition` holds.
    #[track_caller]
    pub fn check(&self, condition: bool, reason: impl std::fmt::Display) {
        if !condition {
            self.fail(reason);
        }
    }

    // ----- faults and commands -------------------------------------------

    /// Cuts node `id` off from every other node, both ways (6.824's
    /// `disconnect`).
    pub fn isolate(&mut self, id: NodeId) {
        self.note(format!("-- isolate n{id}"));
        self.network.isolate(id);
    }

    /// Undoes [`isolate`](Cluster::isolate) (6.824's `connect`).
    pub fn reconnect(&mut self, id: NodeId) {
        self.note(format!("-- reconnect n{id}"));
        self.network.reconnect(id);
    }

    /// Cuts the link from `from` to `to` only.
    pub fn cut_link(&mut self, from: NodeId, to: NodeId) {
        self.note(format!("-- cut link n{from} -> n{to}"));
        self.network.cut(from, to);
    }

    /// Splits the cluster: nodes in different groups cannot talk. Nodes in
    /// no group are cut off from all groups.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        self.note(format!("-- partition {groups:?}"));
        let group_of = |id: NodeId| groups.iter().position(|group| group.contains(&id));
        for &from in &self.ids {
            for &to in &self.ids {
                if from != to && (group_of(from).is_none() || group_of(from) != group_of(to)) {
                    self.network.cut(from, to);
                }
            }
        }
    }

    /// Removes every isolation and link cut.
    pub fn heal(&mut self) {
        self.note("-- heal the network");
        self.network.heal();
    }

    /// Replaces the network's behaviour (delays, loss, ...).
    pub fn set_network(&mut self, config: NetworkConfig) {
        self.network.config = config;
    }

    /// Sets the probability of crashing part-way through a node's outputs.
    pub fn set_crash_during_outputs_probability(&mut self, probability: f64) {
        self.config.crash_during_outputs_probability = probability;
    }

    /// Gives node `id` a disk whose writes take `latency` from now on
    /// (`None`: instant, once what is queued has been performed).
    pub fn set_write_latency(&mut self, id: NodeId, latency: Option<Duration>) {
        self.slot_mut(id).write_latency = latency;
    }

    /// Crashes node `id`: its in-memory state is lost, its storage kept
    /// (with part of a write in flight, if writes tear).
    pub fn crash(&mut self, id: NodeId) {
        if self.config.tear_writes_at_crash && self.is_running(id) {
            self.tear_write_in_flight(id);
        }
        if self.drop_node(id) {
            self.trace.record(
                self.now,
                TraceEvent::Crash {
                    node: id,
                    performed: 0,
                    pending: 0,
                },
            );
        }
    }

    /// Performs a random prefix of node `id`'s write in flight, if any: the
    /// persists at the head of its queue, once started, of which a random
    /// number land whole and the next, if an append, in part.
    fn tear_write_in_flight(&mut self, id: NodeId) {
        if self.slot(id).write_done_at.is_none() {
            return;
        }
        let in_flight = self
            .slot(id)
            .queue
            .iter()
            .take_while(|(output, _)| matches!(output, Output::Persist(_)))
            .count();
        let whole = self.rng.gen_range(0..=in_flight);
        for _ in 0..whole {
            let (output, commit_before) = self.slot_mut(id).queue.pop_front().expect("in flight");
            self.perform(id, output, commit_before);
        }
        if whole < in_flight {
            let next = match self.slot(id).queue.front() {
                Some((Output::Persist(Persist::Entries(entries)), commit_before)) => {
                    Some((entries.clone(), *commit_before))
                }
                _ => None,
            };
            let torn = next.map(|(entries, commit_before)| {
                let landed = self.rng.gen_range(0..entries.len());
                (entries[..landed].to_vec(), commit_before)
            });
            if let Some((landed, commit_before)) = torn.filter(|(landed, _)| !landed.is_empty()) {
                self.perform(id, Output::Persist(Persist::Entries(landed)), commit_before);
            }
        }
        self.trace.record(
            self.now,
            TraceEvent::Note(format!(
                "n{id} crashes mid-write: {whole} of {in_flight} writes land whole"
            )),
        );
    }

    /// Drops node `id`'s in-memory state; returns whether it was running.
    fn drop_node(&mut self, id: NodeId) -> bool {
        let slot = self.slot_mut(id);
        let was_running = slot.node.take().is_some();
        if was_running {
            slot.timer = None;
            slot.incarnation += 1;
            slot.queue.clear();
            slot.write_done_at = None;
            slot.state_machine = (LogIndex(0), 0);
        }
        was_running
    }

    /// Damages crashed node `id`'s disk: its stored log loses every entry
    /// from `from` on (damaged there and found at the next start, or torn
    /// away). With `detected`, the store notices, as kontiki's stores do
    /// (each record has a checksum), and marks the hard state
    /// (`HardState::log_lost_at_term`) so that the node abstains from
    /// votes until it has caught up; without, the node starts as if it
    /// had never held those entries — the naive recovery, which may lose
    /// a committed entry (a scenario shows the checker catching it).
    pub fn lose_log_suffix(&mut self, id: NodeId, from: LogIndex, detected: bool) {
        assert!(
            !self.is_running(id),
            "a disk is damaged while its node is down"
        );
        let storage = &mut self.slot_mut(id).storage;
        let keep = storage.entries.partition_point(|entry| entry.index < from);
        let lost = storage.entries.len() - keep;
        storage.entries.truncate(keep);
        if detected {
            let term = storage.hard_state.term;
            let earlier = storage.hard_state.log_lost_at_term;
            storage.hard_state.log_lost_at_term = Some(earlier.map_or(term, |t| t.max(term)));
        }
        self.trace.record(
            self.now,
            TraceEvent::Note(format!(
                "n{id}'s disk loses {lost} log entries from {from} ({})",
                if detected { "detected" } else { "unnoticed" }
            )),
        );
    }

    /// Loses the next InstallSnapshot sent to `to`, whatever the network
    /// would have done with it: the one lost snapshot of a scenario.
    pub fn lose_next_snapshot_to(&mut self, to: NodeId) {
        self.lose_next_snapshot_to.insert(to);
    }

    /// Restarts node `id` from its storage (a no-op if it is running).
    pub fn restart(&mut self, id: NodeId) {
        if !self.is_running(id) {
            self.start_node(id);
            self.after_event();
        }
    }

    /// Hands node `id` a proposal; returns where it will land if it
    /// commits, or why it was refused (a crashed node refuses as not leader).
    pub fn propose(&mut self, id: NodeId, data: Vec<u8>) -> Result<(LogIndex, Term), HandleError> {
        self.propose_batch(id, vec![data])
            .pop()
            .expect("one result per proposal")
    }

    /// Hands node `id` every proposal in `batch`, one input each, before
    /// performing its outputs once (as a driver with several client
    /// writes waiting does); one result per proposal.
    pub fn propose_batch(
        &mut self,
        id: NodeId,
        batch: Vec<Vec<u8>>,
    ) -> Vec<Result<(LogIndex, Term), HandleError>> {
        let now = self.now;
        let Some(node) = self.slot_mut(id).node.as_mut() else {
            return batch
                .iter()
                .map(|_| Err(HandleError::NotLeader { leader_hint: None }))
                .collect();
        };
        let results: Vec<_> = batch
            .into_iter()
            .map(|data| node.handle(now, Input::Command(Command::Propose(data.into()))))
            .collect();
        self.perform_outputs(id);
        self.after_event();
        results
            .into_iter()
            .map(|result| match result {
                Ok(Handled::Proposed { index, term }) => Ok((index, term)),
                Ok(other) => self.fail(format!("a proposal was handled as {other:?}")),
                Err(error) => Err(error),
            })
            .collect()
    }

    /// Hands node `id` a linearizable read ([`Command::Read`]); returns its
    /// round, or why it was refused (a crashed node refuses as not
    /// leader). The checker then holds the node to serving it at a read
    /// index no lower than anything committed by now.
    pub fn read(&mut self, id: NodeId) -> Result<u64, HandleError> {
        let now = self.now;
        let Some(node) = self.slot_mut(id).node.as_mut() else {
            return Err(HandleError::NotLeader { leader_hint: None });
        };
        let round = match node.handle(now, Input::Command(Command::Read)) {
            Ok(Handled::ReadQueued { round }) => round,
            Ok(other) => self.fail(format!("a read was handled as {other:?}")),
            Err(error) => return Err(error),
        };
        self.checker.read_asked(id, round);
        self.perform_outputs(id);
        self.after_event();
        Ok(round)
    }

    /// Every entry applied so far by any node, in order of applying.
    pub fn applied(&self) -> &[Applied] {
        &self.applied
    }

    /// Forgets the applies recorded so far (long runs keep memory bounded).
    pub fn clear_applied(&mut self) {
        self.applied.clear();
    }

    /// Asks node `id` to change the cluster's configuration; returns where
    /// the membership entry will land, or why it was refused (a crashed
    /// node refuses as not leader).
    pub fn change_membership(
        &mut self,
        id: NodeId,
        change: MembershipChange,
    ) -> Result<(LogIndex, Term), HandleError> {
        let now = self.now;
        self.note(format!("-- n{id} asked to change membership: {change:?}"));
        let Some(node) = self.slot_mut(id).node.as_mut() else {
            return Err(HandleError::NotLeader { leader_hint: None });
        };
        let result = node.handle(now, Input::Command(Command::ChangeMembership(change)));
        self.perform_outputs(id);
        self.after_event();
        match result {
            Ok(Handled::Proposed { index, term }) => Ok((index, term)),
            Ok(other) => self.fail(format!("a membership change was handled as {other:?}")),
            Err(error) => Err(error),
        }
    }

    /// Asks node `id` to hand its leadership to `target`; returns why it
    /// refused, if it did (a crashed node refuses as not leader).
    pub fn transfer_leadership(&mut self, id: NodeId, target: NodeId) -> Result<(), HandleError> {
        let now = self.now;
        self.note(format!(
            "-- n{id} asked to hand its leadership to n{target}"
        ));
        let Some(node) = self.slot_mut(id).node.as_mut() else {
            return Err(HandleError::NotLeader { leader_hint: None });
        };
        let result = node.handle(now, Input::Command(Command::TransferLeadership(target)));
        self.perform_outputs(id);
        self.after_event();
        result.map(|_| ())
    }

    /// Asks node `id` to campaign now.
    pub fn campaign(&mut self, id: NodeId) {
        self.note(format!("-- n{id} asked to campaign"));
        self.handle(id, Input::Command(Command::Campaign));
        self.after_event();
    }

    // ----- running -------------------------------------------------------

    /// When the next event (delivery, timer or completed write) happens,
    /// if any is pending.
    pub fn next_event_at(&self) -> Option<Instant> {
        let timers = self.slots.iter().filter_map(|slot| slot.timer);
        let writes = self.slots.iter().filter_map(|slot| slot.write_done_at);
        let local = timers.chain(writes).min();
        match (self.network.next_delivery_at(), local) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Processes the next event, advancing the clock to it, then checks
    /// every invariant. Returns false if nothing was pending.
    pub fn step(&mut self) -> bool {
        let Some(at) = self.next_event_at() else {
            return false;
        };
        self.now = self.now.max(at);
        self.steps += 1;
        let completed_write = self
            .slots
            .iter()
            .position(|slot| slot.write_done_at.is_some_and(|done| done <= self.now));
        if let Some(position) = completed_write {
            let id = self.slots[position].id;
            self.perform_queued(id);
        } else if let Some(envelope) = self.network.pop_due(self.now) {
            self.deliver(envelope);
        } else {
            // Earliest timer, lowest id first on ties.
            let position = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(position, slot)| slot.timer.map(|deadline| (deadline, position)))
                .min()
                .map(|(_, position)| position)
                .expect("an event was pending");
            self.fire_timer_at(position);
        }
        self.after_event();
        true
    }

    fn fire_timer_at(&mut self, position: usize) {
        let id = self.slots[position].id;
        self.slots[position].timer = None;
        self.trace.record(self.now, TraceEvent::Timer { node: id });
        self.handle(id, Input::Timer);
    }

    // ----- an adversary's scheduling (the fuzzer's) --------------------

    /// Delivers message `position` of those in flight (modulo their
    /// number) now, whatever its delay, then checks every invariant.
    /// Returns false if nothing was in flight.
    pub fn deliver_any(&mut self, position: usize) -> bool {
        let Some(envelope) = self.network.take_any(position) else {
            return false;
        };
        self.steps += 1;
        self.deliver(envelope);
        self.after_event();
        true
    }

    /// Loses message `position` of those in flight (modulo their number).
    pub fn drop_any(&mut self, position: usize) -> bool {
        let Some(Envelope { from, to, .. }) = self.network.take_any(position) else {
            return false;
        };
        let why = Loss::Dropped.as_str();
        self.trace
            .record(self.now, TraceEvent::Lost { from, to, why });
        if self.config.report_unreachable {
            // The adversary's loss is one the sender's transport noticed.
            self.unreachable_reports.push((from, to));
            self.after_event();
        }
        true
    }

    /// Puts a second copy of message `position` in flight.
    pub fn duplicate_any(&mut self, position: usize) -> bool {
        self.network.duplicate_any(position)
    }

    /// Fires node `id`'s timer now, moving the clock to its deadline if
    /// that is later, then checks every invariant. Returns false if the
    /// node is down or has no timer armed.
    pub fn fire_timer(&mut self, id: NodeId) -> bool {
        let position = (id.get() - 1) as usize;
        let Some(deadline) = self.slots[position].timer else {
            return false;
        };
        self.now = self.now.max(deadline);
        self.steps += 1;
        self.fire_timer_at(position);
        self.after_event();
        true
    }

    /// Moves the clock forward by `by` without processing anything that
    /// falls due: everything pending is simply late.
    pub fn advance_clock(&mut self, by: Duration) {
        self.now = self.now + by;
    }

    /// Processes events until the clock reaches `deadline`.
    pub fn run_until(&mut self, deadline: Instant) {
        while self.next_event_at().is_some_and(|at| at <= deadline) {
            self.step();
        }
        self.now = self.now.max(deadline);
    }

    /// Processes events for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(self.now + duration);
    }

    /// Runs until `condition` holds (checked after every event) or `limit`
    /// of virtual time passes; returns whether it held.
    pub fn run_until_condition(
        &mut self,
        limit: Duration,
        mut condition: impl FnMut(&Cluster) -> bool,
    ) -> bool {
        let deadline = self.now + limit;
        loop {
            if condition(self) {
                return true;
            }
            match self.next_event_at() {
                Some(at) if at <= deadline => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(deadline);
                    return condition(self);
                }
            }
        }
    }

    // ----- internals -----------------------------------------------------

    fn slot(&self, id: NodeId) -> &Slot {
        &self.slots[(id.get() - 1) as usize]
    }

    fn slot_mut(&mut self, id: NodeId) -> &mut Slot {
        &mut self.slots[(id.get() - 1) as usize]
    }

    fn start_node(&mut self, id: NodeId) {
        self.checker.restarted(id);
        let rng = ChaCha8Rng::seed_from_u64(self.rng.gen());
        let persisted = self.slot(id).storage.clone();
        let hard_state = persisted.hard_state;
        let node = match Node::new(
            id,
            &self.slot(id).initial_voters,
            self.config.node.clone(),
            rng,
            persisted,
            self.now,
        ) {
            Ok(node) => node,
            Err(error) => self.fail(format!("n{id} failed to start: {error}")),
        };
        if self.slot(id).incarnation > 0 || hard_state != HardState::default() {
            self.trace.record(
                self.now,
                TraceEvent::Restart {
                    node: id,
                    hard_state,
                },
            );
        }
        self.slot_mut(id).node = Some(node);
        self.perform_outputs(id);
    }

    fn deliver(&mut self, envelope: Envelope) {
        let Envelope {
            from,
            to,
            to_incarnation,
            message,
        } = envelope;
        let loss = if !self.network.can_deliver(from, to) {
            Some(Loss::Disconnected)
        } else if !self.is_running(to) || self.slot(to).incarnation != to_incarnation {
            Some(Loss::ReceiverGone)
        } else {
            None
        };
        if let Some(loss) = loss {
            self.trace.record(
                self.now,
                TraceEvent::Lost {
                    from,
                    to,
                    why: loss.as_str(),
                },
            );
            return;
        }
        self.trace.record(
            self.now,
            TraceEvent::Deliver {
                from,
                to,
                message: message.clone(),
            },
        );
        self.handle(to, Input::Message { from, message });
    }

    /// Hands `input` to running node `id` and performs its outputs.
    fn handle(&mut self, id: NodeId, input: Input) {
        let now = self.now;
        let Some(node) = self.slot_mut(id).node.as_mut() else {
            return;
        };
        if let Err(error) = node.handle(now, input) {
            self.trace.record(
                now,
                TraceEvent::Refused {
                    node: id,
                    why: error.to_string(),
                },
            );
        }
        self.perform_outputs(id);
    }

    /// Performs node `id`'s pending outputs in order, as a careful driver
    /// would — unless the node is chosen to crash part-way through.
    fn perform_outputs(&mut self, id: NodeId) {
        let Some(node) = self.slot_mut(id).node.as_mut() else {
            return;
        };
        let outputs: Vec<Output> = node.drain_outputs().collect();
        if !cfg!(debug_assertions) {
            // Debug builds of the core check themselves after every input
            // and drain; a release run (a long soak) checks here.
            node.check_invariants();
        }
        let slot = self.slot(id);
        if slot.write_latency.is_some() || !slot.queue.is_empty() {
            let commit_before = self.checker.commit_seen(id);
            for output in outputs {
                if self.must_wait_for_writes(id, &output) {
                    self.slot_mut(id).queue.push_back((output, commit_before));
                } else {
                    self.perform(id, output, commit_before);
                }
            }
            self.perform_queued(id);
            return;
        }
        let crash_after = (!outputs.is_empty()
            && chance(&mut self.rng, self.config.crash_during_outputs_probability))
        .then(|| self.rng.gen_range(0..outputs.len()));
        let pending = outputs.len();
        let mut wrote_reported = false;
        for (performed, output) in outputs.into_iter().enumerate() {
            wrote_reported |= self.is_reported(&output);
            if crash_after == Some(performed) {
                self.drop_node(id);
                self.trace.record(
                    self.now,
                    TraceEvent::Crash {
                        node: id,
                        performed,
                        pending,
                    },
                );
                return;
            }
            let commit_before = self.checker.commit_seen(id);
            self.perform(id, output, commit_before);
        }
        // The write is done: say so, as a driver does (the core heeds it
        // when its leader persists in parallel).
        if wrote_reported {
            self.report_persisted(id);
        }
        self.snapshot_if_due(id);
    }

    /// Whether `output` of node `id` must wait behind the writes queued
    /// (with a write latency). Without asynchronous writes everything
    /// does. With them only the writes themselves do, and the sends after
    /// a hard state write not yet durable (and the sends after those, to
    /// keep each peer's messages in order): the core's ordering rule lets
    /// the rest run ahead of log writes.
    fn must_wait_for_writes(&self, id: NodeId, output: &Output) -> bool {
        if !self.config.node.asynchronous_writes {
            return true;
        }
        match output {
            Output::Persist(_) => true,
            Output::Send { .. } => self.slot(id).queue.iter().any(|(queued, _)| {
                matches!(
                    queued,
                    Output::Persist(Persist::HardState(_)) | Output::Send { .. }
                )
            }),
            _ => false,
        }
    }

    /// Hands node `id` a snapshot of its state machine once it has applied
    /// `snapshot_interval` entries past its latest snapshot, as a driver
    /// does.
    fn snapshot_if_due(&mut self, id: NodeId) {
        let Some(interval) = self.config.snapshot_interval else {
            return;
        };
        let Some(node) = self.node(id) else {
            return;
        };
        let (applied, digest) = self.slot(id).state_machine;
        let covered = node.snapshot_index();
        if applied.get() >= covered.get() + interval.max(1) {
            self.trace.record(
                self.now,
                TraceEvent::Note(format!("n{id} snapshots its state through {applied}")),
            );
            let data = digest.to_le_bytes().to_vec().into();
            self.handle(
                id,
                Input::SnapshotTaken {
                    index: applied,
                    data,
                },
            );
        }
    }

    /// Tells node `id` that its log is durable as stored, after a write,
    /// and performs (or queues) what that produces.
    fn report_persisted(&mut self, id: NodeId) {
        let storage = &self.slot(id).storage;
        let last = match (storage.entries.last(), &storage.snapshot) {
            (Some(entry), _) => Some((entry.index, entry.term)),
            (None, Some(snapshot)) => Some((snapshot.index, snapshot.term)),
            (None, None) => None,
        };
        if let Some((index, term)) = last {
            self.handle(id, Input::Persisted { index, term });
        }
    }

    /// Whether a write of node `id` is reported once done: one that
    /// appends entries, and, with asynchronous writes, one that stores a
    /// snapshot (a follower acknowledges a leader's snapshot only then).
    fn is_reported(&self, write: &Output) -> bool {
        match write {
            Output::Persist(Persist::Entries(_)) => true,
            Output::Persist(Persist::Snapshot(_)) => self.config.node.asynchronous_writes,
            _ => false,
        }
    }

    /// Performs node `id`'s queued outputs in order up to the next write
    /// that has not completed (starting it, if it has not started), then
    /// snapshots if one is due.
    fn perform_queued(&mut self, id: NodeId) {
        self.perform_queued_writes(id);
        self.snapshot_if_due(id);
    }

    fn perform_queued_writes(&mut self, id: NodeId) {
        let latency = self.slot(id).write_latency.unwrap_or(Duration::ZERO);
        let is_persist = |output: &Output| matches!(output, Output::Persist(_));
        while self.slot(id).node.is_some() {
            let Some((front, _)) = self.slot(id).queue.front() else {
                return;
            };
            if !is_persist(front) {
                let (output, commit_before) = self.slot_mut(id).queue.pop_front().expect("a front");
                self.perform(id, output, commit_before);
                continue;
            }
            match self.slot(id).write_done_at {
                None => {
                    self.slot_mut(id).write_done_at = Some(self.now + latency);
                    return;
                }
                Some(done) if done > self.now => return,
                Some(_) => {}
            }
            // Every persist at the head makes one write, now complete.
            self.slot_mut(id).write_done_at = None;
            let mut wrote_reported = false;
            while self
                .slot(id)
                .queue
                .front()
                .is_some_and(|(output, _)| is_persist(output))
            {
                let (output, commit_before) = self.slot_mut(id).queue.pop_front().expect("a front");
                wrote_reported |= self.is_reported(&output);
                self.perform(id, output, commit_before);
            }
            if wrote_reported {
                // Re-enters this function through `handle`; the queue is
                // left consistent for the loop to go on with.
                self.report_persisted(id);
            }
        }
    }

    /// Performs one write of node `id` on its storage, after checking it
    /// against the safety invariants; `commit_before` is the node's commit
    /// index before the step that asked for it.
    fn persist(&mut self, id: NodeId, write: Persist, commit_before: LogIndex) {
        match &write {
            Persist::HardState(hard_state) => {
                let old = self.slot(id).storage.hard_state;
                if let Err(violation) = self.checker.check_persist(id, old, *hard_state) {
                    self.fail(violation);
                }
                self.trace.record(
                    self.now,
                    TraceEvent::Persist {
                        node: id,
                        hard_state: *hard_state,
                    },
                );
            }
            Persist::Entries(entries) => {
                self.trace.record(
                    self.now,
                    TraceEvent::Note(format!(
                        "n{id} persists entries {}..={}",
                        entries.first().map_or(0, |e| e.index.get()),
                        entries.last().map_or(0, |e| e.index.get())
                    )),
                );
                self.log_changed = true;
            }
            Persist::TruncateLog { from } => {
                let role = self.node(id).map_or(Role::Follower, |node| node.role());
                let stored = &self.slot(id).storage.entries;
                let keep = stored.partition_point(|entry| entry.index < *from);
                let removed = &stored[keep..];
                if let Err(violation) =
                    self.checker
                        .check_truncate(id, *from, role, removed, commit_before)
                {
                    self.fail(violation);
                }
                self.trace.record(
                    self.now,
                    TraceEvent::Note(format!("n{id} truncates its log from {from}")),
                );
                self.log_changed = true;
            }
            Persist::Snapshot(snapshot) => {
                self.trace.record(
                    self.now,
                    TraceEvent::Note(format!(
                        "n{id} persists a snapshot through {}@t{}",
                        snapshot.index, snapshot.term
                    )),
                );
                self.log_changed = true;
            }
        }
        if let Err(refused) = self.slot_mut(id).storage.apply(write) {
            self.fail(format!("n{id} asked for a write out of order: {refused}"));
        }
    }

    /// Performs one output of node `id`; `commit_before` is the node's
    /// commit index before the step that drained it.
    fn perform(&mut self, id: NodeId, output: Output, commit_before: LogIndex) {
        match output {
            Output::Persist(write) => self.persist(id, write, commit_before),
            Output::RestoreSnapshot(snapshot) | Output::InstallSnapshot(snapshot) => {
                let restores_ahead = self.config.node.asynchronous_writes;
                if !restores_ahead && snapshot.index > self.slot(id).storage.snapshot_index() {
                    self.fail(format!(
                        "n{id} restored a snapshot through {} before persisting it",
                        snapshot.index
                    ));
                }
                if let Err(violation) = self.checker.check_restore(id, &snapshot) {
                    self.fail(violation);
                }
                let digest = u64::from_le_bytes(
                    snapshot.data[..]
                        .try_into()
                        .expect("checked: a digest's eight bytes"),
                );
                self.slot_mut(id).state_machine = (snapshot.index, digest);
            }
            Output::Apply(entry) => {
                // With asynchronous writes a committed entry may be
                // applied before this node's own copy is durable: a
                // majority holds it durably (checked at commit).
                let applies_ahead = self.config.node.asynchronous_writes;
                if !applies_ahead && entry.index > self.slot(id).storage.last_index() {
                    self.fail(format!(
                        "n{id} applied entry {} before persisting it",
                        entry.index
                    ));
                }
                let term = self.node(id).map_or(Term(0), |node| node.term());
                if let Err(violation) = self.checker.check_apply(id, term, &entry) {
                    self.fail(violation);
                }
                let (_, digest) = self.slot(id).state_machine;
                self.slot_mut(id).state_machine = (entry.index, apply_to_digest(digest, &entry));
                self.applied.push(Applied {
                    at: self.now,
                    node: id,
                    entry,
                });
            }
            Output::Send { to, message } => self.send(id, to, message),
            Output::SetTimer { deadline } => self.slot_mut(id).timer = Some(deadline),
            Output::ReadReady { round, index } => {
                let applied = self.slot(id).state_machine.0;
                if let Err(violation) = self.checker.check_read_ready(id, round, index, applied) {
                    self.fail(violation);
                }
                self.trace.record(
                    self.now,
                    TraceEvent::Note(format!(
                        "n{id} serves reads through round {round} at {index}"
                    )),
                );
            }
            Output::ReadsFailed { round } => self.checker.reads_failed(id, round),
            Output::RoleChanged { role, term, leader } => {
                self.trace.record(
                    self.now,
                    TraceEvent::RoleChanged {
                        node: id,
                        role,
                        term,
                        leader,
                    },
                );
                self.role_changes.push(RoleChange {
                    at: self.now,
                    node: id,
                    role,
                    term,
                    leader,
                });
                if role == Role::Leader {
                    if let Err(violation) = self.checker.check_leader(id, term) {
                        self.fail(violation);
                    }
                    let log = self
                        .node(id)
                        .map(|node| node.entries().to_vec())
                        .unwrap_or_default();
                    if let Err(violation) = self.checker.check_leader_log(id, term, &log) {
                        self.fail(violation);
                    }
                }
            }
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, message: Message) {
        let slot = &self.slots[(from.get() - 1) as usize];
        let acknowledged = match (&message, &slot.node) {
            (Message::AppendEntriesResponse(response), Some(node)) if response.success => {
                entry_at(node.entries(), response.index)
            }
            _ => None,
        };
        let rules = SendRules {
            entries_may_precede_persist: self.config.node.leader_persists_in_parallel
                || self.config.node.asynchronous_writes,
            snapshots_may_precede_persist: self.config.node.asynchronous_writes,
            acknowledged,
        };
        if let Err(violation) = self
            .checker
            .check_send(from, to, &message, &slot.storage, rules)
        {
            self.fail(violation);
        }
        // Every message crosses the wire format, as it would between
        // processes: what is delivered is what was decoded.
        self.wire_buffer.clear();
        wire::encode(&message, &mut self.wire_buffer);
        let message = match wire::decode(&self.wire_buffer) {
            Ok(decoded) if decoded == message => decoded,
            Ok(decoded) => self.fail(format!(
                "wire round trip changed {message:?} into {decoded:?}"
            )),
            Err(error) => self.fail(format!("wire round trip of {message:?} failed: {error}")),
        };
        let traffic = self.traffic.entry(from).or_default();
        traffic.messages += 1;
        traffic.bytes += self.wire_buffer.len() as u64;
        if matches!(
            message,
            Message::RequestVote(_) | Message::AppendEntries(_) | Message::InstallSnapshot(_)
        ) {
            traffic.requests += 1;
        }
        if let Message::InstallSnapshot(_) = message {
            traffic.snapshots += 1;
        }
        self.trace.record(
            self.now,
            TraceEvent::Send {
                from,
                to,
                message: message.clone(),
            },
        );
        let lost_on_purpose = matches!(message, Message::InstallSnapshot(_))
            && self.lose_next_snapshot_to.remove(&to);
        let envelope = Envelope {
            from,
            to,
            to_incarnation: self.slot(to).incarnation,
            message,
        };
        let sent = if lost_on_purpose {
            Err(Loss::Dropped)
        } else {
            self.network.send(self.now, &mut self.rng, envelope)
        };
        if sent == Err(Loss::Disconnected) && self.config.report_unreachable {
            self.unreachable_reports.push((from, to));
        }
        if let Err(loss) = sent {
            self.trace.record(
                self.now,
                TraceEvent::Lost {
                    from,
                    to,
                    why: loss.as_str(),
                },
            );
        }
    }

    /// What follows every event: the reports of undeliverable messages
    /// (which send nothing, so this ends), then the per-step checks.
    fn after_event(&mut self) {
        while !self.unreachable_reports.is_empty() {
            for (from, peer) in std::mem::take(&mut self.unreachable_reports) {
                self.handle(from, Input::Unreachable { peer });
            }
        }
        self.check_invariants();
    }

    /// The per-step checks over every running node.
    fn check_invariants(&mut self) {
        for position in 0..self.slots.len() {
            let slot = &self.slots[position];
            let Some(node) = &slot.node else { continue };
            let (id, term, role) = (slot.id, node.term(), node.role());
            // While outputs wait behind a write, the node is ahead of its
            // storage by design.
            let settled = slot.queue.is_empty();
            if settled && node.hard_state() != slot.storage.hard_state {
                self.fail(format!(
                    "n{id} holds {:?} but asked to persist only {:?}",
                    node.hard_state(),
                    slot.storage.hard_state
                ));
            }
            if let Err(violation) = self.checker.check_node(id, term, role, settled) {
                self.fail(violation);
            }
            let stored_last = slot.storage.last_index();
            if settled
                && (node.last_log_index() != stored_last
                    || slot
                        .storage
                        .entries
                        .last()
                        .is_some_and(|last| node.entries().last() != Some(last)))
            {
                self.fail(format!(
                    "n{id} holds a log ending at {} but persisted one ending at {stored_last}",
                    node.last_log_index(),
                ));
            }
            let commit_before = self.checker.commit_seen(id);
            if let Err(violation) = check_configuration(node, &slot.initial_voters, commit_before) {
                self.fail(violation);
            }
            let (commit, applied, last) = (
                node.commit_index(),
                node.applied_index(),
                node.last_log_index(),
            );
            if role == Role::Leader && commit > commit_before {
                self.check_commit_has_quorum(node, commit);
            }
            if let Err(violation) = self.checker.check_commit(id, commit, applied, last) {
                self.fail(violation);
            }
        }
        if std::mem::take(&mut self.log_changed) {
            self.check_log_matching();
        }
    }

    /// A leader that just committed `commit` did so with a majority of
    /// every configuration in force (both halves of a joint one) holding
    /// the entry durably: the property persist-before-send protects, and
    /// the one a leader that persists in parallel must keep by its commit
    /// rule alone.
    ///
    /// A voter whose disk lost part of its log and noticed counts with
    /// the holders while it abstains: it may have acknowledged the entry
    /// before the loss (its acknowledgement still in flight), and what the
    /// count protects is that no election quorum lacks a holder — which
    /// holds while holders and abstainers together are a majority, since
    /// an election quorum is a majority drawn from the voters that vote.
    /// It stops abstaining only once a leader elected without it has
    /// caught it up, and so holds the entry again.
    fn check_commit_has_quorum(&self, leader: &SimNode, commit: LogIndex) {
        // An entry compacted into the leader's snapshot was checked when
        // it was committed.
        let Some(entry) = entry_at(leader.entries(), commit) else {
            return;
        };
        let membership = leader.membership();
        // A leader that persists before it sends counts its own copy at
        // once: its write is ordered before every output that could reveal
        // the commit (checked by `check_send` and at apply), so a crash
        // that loses the write loses the commit with it.
        let counts_own_log =
            !(self.config.node.leader_persists_in_parallel || self.config.node.asynchronous_writes);
        for voters in [membership.voters(), membership.outgoing_voters()] {
            if voters.is_empty() {
                continue;
            }
            let durable_on = voters
                .iter()
                .filter(|&&voter| {
                    (voter == leader.id() && counts_own_log)
                        || holds_durably(&self.slot(voter).storage, entry)
                })
                .count();
            let abstaining = voters
                .iter()
                .filter(|&&voter| {
                    let slot = self.slot(voter);
                    !holds_durably(&slot.storage, entry)
                        && slot.storage.hard_state.log_lost_at_term.is_some()
                        && slot.node.as_ref().is_none_or(SimNode::is_recovering)
                })
                .count();
            if (durable_on + abstaining) * 2 <= voters.len() {
                self.fail(format!(
                    "n{} committed entry {commit} but only {durable_on} of the voters {voters:?} \
                     hold it durably, and {abstaining} more abstain from votes after losing \
                     part of their log",
                    leader.id(),
                ));
            }
        }
    }

    /// Log matching between every pair of persisted logs.
    fn check_log_matching(&self) {
        for a in 0..self.slots.len() {
            for b in a + 1..self.slots.len() {
                let (left, right) = (&self.slots[a], &self.slots[b]);
                if let Err(violation) = check_log_matching(
                    (left.id, &left.storage.entries),
                    (right.id, &right.storage.entries),
                ) {
                    self.fail(violation);
                }
            }
        }
    }
}

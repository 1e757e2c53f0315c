//! T0 of docs/benchmarks.md: three kontiki cores on one thread, messages through one
//! in-memory queue.
//!
//! `cargo bench -p kontiki-tests --bench t0` runs every workload in its own
//! child process (so each peak RSS is its own), `KONTIKI_BENCH_RUNS` times
//! (default 5), and prints every run and the medians. One workload alone:
//! `cargo bench -p kontiki-tests --bench t0 -- single`.
//!
//! Workloads: `single` (propose one entry, run until the leader applied
//! it; N times), `batch100` (propose 100, run until all are applied; N/100
//! times), `batch100-codec` (the same with every message encoded and
//! decoded by `kontiki::wire`), `election` (1000 fresh clusters until a
//! leader) and `failover` (1000 elected clusters whose leader is cut off,
//! until another leads). N = 100,000 entries of 16 bytes (or
//! `KONTIKI_BENCH_PAYLOAD` bytes), each a fresh
//! allocation; an entry is done when the leader applied it, and the count
//! is asserted. Each node snapshots (a few bytes standing for its state)
//! and compacts every 10,000 applied entries, as docs/benchmarks.md describes.
//! A counting global allocator reports the heap allocations per entry of
//! the replication workloads (the whole process: three nodes, the queue,
//! the stores, and the payloads themselves).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::VecDeque;
use std::process::Command as Process;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant as WallClock;

use kontiki::{
    wire, Command, Config, EntryKind, Input, Instant, Message, Node, NodeId, Output,
    PersistedState, Role,
};
use kontiki_tests::rss::peak_rss_kib;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Counts every allocation and reallocation, and defers to the system
/// allocator.
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call goes to the system allocator unchanged; the counter
// only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const ENTRIES: usize = 100_000;
/// Applied entries between two snapshots of a node (the interval of docs/benchmarks.md).
const SNAPSHOT_INTERVAL: u64 = 10_000;
/// The payload size: `KONTIKI_BENCH_PAYLOAD` bytes (at least 16; 16 by
/// default, 1024 and 65536 for the larger tiers of docs/benchmarks.md).
/// Read once: a lookup per payload would cost more than the core's work
/// on a small entry.
fn payload_bytes() -> usize {
    static BYTES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BYTES.get_or_init(|| kontiki_tests::load::env_number("KONTIKI_BENCH_PAYLOAD", 16usize).max(16))
}
const TRIALS: u64 = 1_000;
const WORKLOADS: [&str; 5] = [
    "single",
    "batch100",
    "batch100-codec",
    "election",
    "failover",
];

fn main() {
    // `cargo bench` passes `--bench`; anything else names a workload.
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    if let Ok(workload) = std::env::var(CHILD_WORKLOAD) {
        println!("{}", run_workload(&workload).to_line());
        return;
    }
    let runs: usize = kontiki_tests::load::env_number("KONTIKI_BENCH_RUNS", 5);
    let workloads: Vec<&str> = if chosen.is_empty() {
        WORKLOADS.to_vec()
    } else {
        WORKLOADS
            .iter()
            .copied()
            .filter(|workload| chosen.iter().any(|c| c == workload))
            .collect()
    };
    println!("T0: 3 cores on one thread; {runs} process runs per workload\n");
    let mut medians = Vec::new();
    for workload in workloads {
        let results: Vec<Measurement> = (0..runs).map(|_| run_child(workload)).collect();
        for (run, result) in results.iter().enumerate() {
            println!("{workload:>15} run {}: {}", run + 1, result.describe());
        }
        let median = Measurement::median_of(&results);
        println!("{workload:>15} median: {}\n", median.describe());
        medians.push((workload, median));
    }
    println!(
        "| workload | throughput | latency p50 / p99 | msgs/entry | allocations/entry | peak RSS |"
    );
    println!("|---|---|---|---|---|---|");
    for (workload, median) in medians {
        println!("| {workload} | {} |", median.table_cells());
    }
}

/// The environment variable that makes the binary run one workload and
/// print its measurement line.
const CHILD_WORKLOAD: &str = "KONTIKI_T0_WORKLOAD";

fn run_child(workload: &str) -> Measurement {
    let output = Process::new(std::env::current_exe().expect("the bench binary's path"))
        .env(CHILD_WORKLOAD, workload)
        .output()
        .expect("the bench binary runs as a child");
    assert!(
        output.status.success(),
        "workload {workload} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("the child prints UTF-8");
    Measurement::from_line(stdout.trim()).expect("the child prints one measurement line")
}

fn run_workload(workload: &str) -> Measurement {
    let mut measurement = match workload {
        "single" => replicate(1, false),
        "batch100" => replicate(100, false),
        "batch100-codec" => replicate(100, true),
        "election" => elections(),
        "failover" => failovers(),
        other => panic!("unknown workload {other}; one of {WORKLOADS:?}"),
    };
    measurement.peak_rss_kib = peak_rss_kib();
    measurement
}

/// What one run of a workload measured. Replication workloads fill the
/// throughput fields; election workloads the per-trial ones.
#[derive(Clone, Copy, Debug, Default)]
struct Measurement {
    /// Entries applied on the leader per second of wall time.
    entries_per_second: f64,
    /// Wall time from proposing to applied on the leader (`single` only).
    latency_p50_ns: f64,
    latency_p99_ns: f64,
    messages_per_entry: f64,
    /// Wall time per trial, on one thread (election workloads).
    trial_ns: f64,
    /// Virtual time without a leader per trial (election workloads).
    virtual_p50_ms: f64,
    virtual_p99_ms: f64,
    peak_rss_kib: u64,
    /// Heap allocations per entry replicated, in the whole process.
    allocations_per_entry: f64,
}

impl Measurement {
    const FIELDS: usize = 9;

    fn values(&self) -> [f64; Self::FIELDS] {
        [
            self.entries_per_second,
            self.latency_p50_ns,
            self.latency_p99_ns,
            self.messages_per_entry,
            self.trial_ns,
            self.virtual_p50_ms,
            self.virtual_p99_ms,
            self.peak_rss_kib as f64,
            self.allocations_per_entry,
        ]
    }

    fn from_values(values: [f64; Self::FIELDS]) -> Measurement {
        Measurement {
            entries_per_second: values[0],
            latency_p50_ns: values[1],
            latency_p99_ns: values[2],
            messages_per_entry: values[3],
            trial_ns: values[4],
            virtual_p50_ms: values[5],
            virtual_p99_ms: values[6],
            peak_rss_kib: values[7] as u64,
            allocations_per_entry: values[8],
        }
    }

    fn to_line(self) -> String {
        let values: Vec<String> = self.values().iter().map(f64::to_string).collect();
        values.join(" ")
    }

    fn from_line(line: &str) -> Option<Measurement> {
        let parsed: Vec<f64> = line
            .split(' ')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        Some(Measurement::from_values(parsed.try_into().ok()?))
    }

    /// The median of each field on its own.
    fn median_of(runs: &[Measurement]) -> Measurement {
        let mut medians = [0.0; Self::FIELDS];
        for (field, median) in medians.iter_mut().enumerate() {
            let mut column: Vec<f64> = runs.iter().map(|run| run.values()[field]).collect();
            *median = percentile(&mut column, 50.0);
        }
        Measurement::from_values(medians)
    }

    fn is_election(&self) -> bool {
        self.trial_ns > 0.0
    }

    fn describe(&self) -> String {
        if self.is_election() {
            format!(
                "{:.2} µs per trial, virtual time to a leader p50 {:.0} ms / p99 {:.0} ms, peak RSS {:.1} MB",
                self.trial_ns / 1e3,
                self.virtual_p50_ms,
                self.virtual_p99_ms,
                self.peak_rss_kib as f64 / 1024.0
            )
        } else {
            format!(
                "{:.0} entries/s, p50 {:.2} µs / p99 {:.2} µs, {:.2} msgs/entry, {:.2} allocations/entry, peak RSS {:.1} MB",
                self.entries_per_second,
                self.latency_p50_ns / 1e3,
                self.latency_p99_ns / 1e3,
                self.messages_per_entry,
                self.allocations_per_entry,
                self.peak_rss_kib as f64 / 1024.0
            )
        }
    }

    fn table_cells(&self) -> String {
        let rss = format!("{:.1} MB", self.peak_rss_kib as f64 / 1024.0);
        if self.is_election() {
            format!(
                "{:.2} µs per trial (virtual p50 {:.0} ms, p99 {:.0} ms) | – | – | – | {rss}",
                self.trial_ns / 1e3,
                self.virtual_p50_ms,
                self.virtual_p99_ms
            )
        } else if self.latency_p50_ns > 0.0 {
            format!(
                "{:.0} entries/s | {:.2} µs / {:.2} µs | {:.2} | {:.2} | {rss}",
                self.entries_per_second,
                self.latency_p50_ns / 1e3,
                self.latency_p99_ns / 1e3,
                self.messages_per_entry,
                self.allocations_per_entry
            )
        } else {
            format!(
                "{:.0} entries/s | – | {:.2} | {:.2} | {rss}",
                self.entries_per_second, self.messages_per_entry, self.allocations_per_entry
            )
        }
    }
}

/// The `p`th percentile (nearest rank) of `values`, which it sorts.
fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// Three cores, one message queue, and the minimal driver around them: it
/// performs every output in order, keeps each node's persisted log in
/// memory (a real store would write it out), and fires timers only when
/// asked to.
struct Bench {
    nodes: Vec<Node<ChaCha8Rng>>,
    /// What each node was asked to persist, as a store would hold it.
    stores: Vec<PersistedState>,
    /// Per node: the last index applied, and the last one snapshotted.
    applied: Vec<(u64, u64)>,
    timers: Vec<Option<Instant>>,
    queue: VecDeque<(NodeId, NodeId, Message)>,
    now: Instant,
    /// Encode and decode every message with the wire format.
    codec: bool,
    /// A node whose messages (both ways) are dropped.
    isolated: Option<NodeId>,
    messages_delivered: u64,
    commands_applied_on_leader: u64,
    leader: Option<NodeId>,
}

impl Bench {
    fn new(seed: u64, codec: bool) -> Bench {
        let ids = [NodeId(1), NodeId(2), NodeId(3)];
        let nodes: Vec<_> = ids
            .iter()
            .map(|&id| {
                let rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(31).wrapping_add(id.get()));
                // Writes are performed at once here, so a leader that
                // persists first waits for nothing; T0 keeps measuring that
                // path (and sends no write reports).
                let config = Config {
                    leader_persists_in_parallel: false,
                    ..Config::default()
                };
                Node::new(
                    id,
                    &ids,
                    config,
                    rng,
                    PersistedState::default(),
                    Instant::ZERO,
                )
                .expect("the default configuration is valid")
            })
            .collect();
        let mut bench = Bench {
            stores: vec![PersistedState::default(); nodes.len()],
            applied: vec![(0, 0); nodes.len()],
            timers: vec![None; nodes.len()],
            nodes,
            queue: VecDeque::new(),
            now: Instant::ZERO,
            codec,
            isolated: None,
            messages_delivered: 0,
            commands_applied_on_leader: 0,
            leader: None,
        };
        for position in 0..bench.nodes.len() {
            bench.perform_outputs(position);
        }
        bench
    }

    fn perform_outputs(&mut self, position: usize) {
        let id = self.nodes[position].id();
        let leads = self.nodes[position].role() == Role::Leader;
        for output in self.nodes[position].drain_outputs() {
            match output {
                Output::Persist(write) => self.stores[position]
                    .apply(write)
                    .expect("the core persists in order"),
                Output::Apply(entry) => {
                    self.applied[position].0 = entry.index.get();
                    if leads && entry.kind == EntryKind::Command {
                        self.commands_applied_on_leader += 1;
                    }
                }
                Output::Send { to, message } => {
                    if self.isolated == Some(id) || self.isolated == Some(to) {
                        continue;
                    }
                    let message = if self.codec {
                        // As a transport would: the sender encodes a frame,
                        // the receiver decodes it where it landed, its
                        // entries sharing the frame's memory.
                        let mut frame = Vec::with_capacity(wire::encoded_len(&message));
                        wire::encode(&message, &mut frame);
                        wire::decode_shared(&frame.into()).expect("what was encoded decodes")
                    } else {
                        message
                    };
                    self.queue.push_back((id, to, message));
                }
                Output::SetTimer { deadline } => self.timers[position] = Some(deadline),
                Output::RoleChanged { role, leader, .. } => {
                    if role == Role::Leader {
                        self.leader = leader;
                    } else if self.leader == Some(id) {
                        self.leader = None;
                    }
                }
                Output::RestoreSnapshot(_)
                | Output::InstallSnapshot(_)
                | Output::ReadReady { .. }
                | Output::ReadsFailed { .. } => {}
            }
        }
        let (applied, snapshotted) = self.applied[position];
        if applied >= snapshotted + SNAPSHOT_INTERVAL {
            self.applied[position].1 = applied;
            let snapshot = Input::SnapshotTaken {
                index: kontiki::LogIndex(applied),
                data: applied.to_le_bytes().to_vec().into(),
            };
            self.nodes[position]
                .handle(self.now, snapshot)
                .expect("a snapshot of applied entries is accepted");
            self.perform_outputs(position);
        }
    }

    /// Delivers queued messages (and what they cause) until none is left.
    fn run_until_quiet(&mut self) {
        while let Some((from, to, message)) = self.queue.pop_front() {
            self.messages_delivered += 1;
            let position = (to.get() - 1) as usize;
            // Stale or duplicate messages may be refused; that is Raft.
            let _ = self.nodes[position].handle(self.now, Input::Message { from, message });
            self.perform_outputs(position);
        }
    }

    /// Fires the earliest timer after running until quiet.
    fn fire_next_timer(&mut self) {
        self.run_until_quiet();
        let (position, deadline) = self
            .timers
            .iter()
            .enumerate()
            .filter_map(|(position, deadline)| deadline.map(|d| (position, d)))
            .min_by_key(|&(_, deadline)| deadline)
            .expect("every node keeps a timer armed");
        self.now = self.now.max(deadline);
        self.timers[position] = None;
        self.nodes[position]
            .handle(self.now, Input::Timer)
            .expect("timers are always accepted");
        self.perform_outputs(position);
        self.run_until_quiet();
    }

    /// Fires timers until a leader other than `not` is elected and every
    /// reachable node follows it; returns it.
    fn elect(&mut self, not: Option<NodeId>) -> NodeId {
        loop {
            if let Some(leader) = self.leader.filter(|&leader| Some(leader) != not) {
                let settled = self
                    .nodes
                    .iter()
                    .all(|node| Some(node.id()) == self.isolated || node.leader() == Some(leader));
                if settled {
                    return leader;
                }
            }
            self.fire_next_timer();
        }
    }

    /// Hands the leader a proposal per payload, then performs its outputs
    /// once: the proposals travel together.
    fn propose(&mut self, leader: NodeId, payloads: impl Iterator<Item = Vec<u8>>) {
        let position = (leader.get() - 1) as usize;
        for data in payloads {
            self.nodes[position]
                .handle(self.now, Input::Command(Command::Propose(data.into())))
                .expect("the leader accepts proposals");
        }
        self.perform_outputs(position);
    }
}

/// A fresh allocation of the payload size: the sequence number, twice,
/// then zeros.
fn payload(sequence: usize) -> Vec<u8> {
    let size = payload_bytes();
    let mut data = Vec::with_capacity(size);
    data.extend_from_slice(&(sequence as u64).to_le_bytes());
    data.extend_from_slice(&(sequence as u64).to_le_bytes());
    data.resize(size, 0);
    data
}

/// Proposes `ENTRIES` entries `batch` at a time, running until all of a
/// batch is applied on the leader before the next.
fn replicate(batch: usize, codec: bool) -> Measurement {
    let mut bench = Bench::new(1, codec);
    let leader = bench.elect(None);
    bench.messages_delivered = 0;
    bench.commands_applied_on_leader = 0;
    let mut latencies_ns = Vec::with_capacity(if batch == 1 { ENTRIES } else { 0 });
    let allocations_before = ALLOCATIONS.load(Ordering::Relaxed);
    let started = WallClock::now();
    for first in (0..ENTRIES).step_by(batch) {
        let batch_started = WallClock::now();
        bench.propose(leader, (first..first + batch).map(payload));
        bench.run_until_quiet();
        if batch == 1 {
            latencies_ns.push(batch_started.elapsed().as_nanos() as f64);
        }
    }
    let elapsed = started.elapsed();
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations_before;
    assert_eq!(bench.commands_applied_on_leader, ENTRIES as u64);
    for (store, &(_, snapshotted)) in bench.stores.iter().zip(&bench.applied) {
        // The store ends with the last entry, or with a snapshot of it.
        assert!(store.snapshot.as_ref().map_or(0, |s| s.index.get()) <= snapshotted);
        assert_eq!(
            store.last_index().get(),
            ENTRIES as u64 + 1,
            "every entry and the no-op persisted"
        );
        assert!(
            store.entries.len() <= SNAPSHOT_INTERVAL as usize,
            "snapshots compacted the store"
        );
    }
    let (latency_p50_ns, latency_p99_ns) = if latencies_ns.is_empty() {
        (0.0, 0.0)
    } else {
        (
            percentile(&mut latencies_ns, 50.0),
            percentile(&mut latencies_ns, 99.0),
        )
    };
    Measurement {
        entries_per_second: ENTRIES as f64 / elapsed.as_secs_f64(),
        latency_p50_ns,
        latency_p99_ns,
        messages_per_entry: bench.messages_delivered as f64 / ENTRIES as f64,
        allocations_per_entry: allocations as f64 / ENTRIES as f64,
        ..Measurement::default()
    }
}

/// Fresh clusters until a leader: wall time per trial (building the nodes
/// included) and virtual time to the leader.
fn elections() -> Measurement {
    let mut virtual_ms = Vec::with_capacity(TRIALS as usize);
    let started = WallClock::now();
    for trial in 0..TRIALS {
        let mut bench = Bench::new(trial, false);
        bench.elect(None);
        virtual_ms.push(bench.now.as_micros() as f64 / 1e3);
    }
    let elapsed = started.elapsed();
    election_measurement(elapsed.as_nanos() as f64 / TRIALS as f64, &mut virtual_ms)
}

/// Elected clusters whose leader is cut off: wall time of the failover
/// alone and virtual time from the cut to the next leader.
fn failovers() -> Measurement {
    let mut virtual_ms = Vec::with_capacity(TRIALS as usize);
    let mut failover_ns = 0.0;
    for trial in 0..TRIALS {
        let mut bench = Bench::new(trial, false);
        let old = bench.elect(None);
        let cut_at = bench.now;
        let started = WallClock::now();
        bench.isolated = Some(old);
        bench.elect(Some(old));
        failover_ns += started.elapsed().as_nanos() as f64;
        virtual_ms.push(bench.now.saturating_duration_since(cut_at).as_micros() as f64 / 1e3);
    }
    election_measurement(failover_ns / TRIALS as f64, &mut virtual_ms)
}

fn election_measurement(trial_ns: f64, virtual_ms: &mut [f64]) -> Measurement {
    Measurement {
        trial_ns,
        virtual_p50_ms: percentile(virtual_ms, 50.0),
        virtual_p99_ms: percentile(virtual_ms, 99.0),
        ..Measurement::default()
    }
}

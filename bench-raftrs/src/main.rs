//! T0's replication workloads (docs/benchmarks.md) on raft-rs 0.7: three
//! `RawNode`s on one thread, messages through one in-memory queue, each
//! node's `MemStorage` as its store, compacted every 10,000 applied
//! entries. The payloads are made exactly as kontiki's T0 makes them, and
//! the same counting allocator counts the process's allocations.
//!
//! `kontiki-bench-raftrs WORKLOAD` runs one of `single`, `batch100` and
//! `batch100-codec` (every message encoded and decoded with protobuf) on
//! `KONTIKI_BENCH_PAYLOAD` bytes (16 by default) and prints one line:
//! entries per second, allocations per entry, peak RSS in KiB. raft-rs gets
//! its best settings: `batch_append`, and appends of up to 64 KiB (as
//! kontiki's `max_append_bytes`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, EntryType, Message};
use raft::storage::MemStorage;
use raft::{Config, RawNode, StateRole};

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
const SNAPSHOT_INTERVAL: u64 = 10_000;

/// Read once, as kontiki's T0 does: a lookup per payload would cost more
/// than a Raft's work on a small entry.
fn payload_bytes() -> usize {
    static BYTES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BYTES.get_or_init(|| {
        std::env::var("KONTIKI_BENCH_PAYLOAD")
            .ok()
            .and_then(|bytes| bytes.parse().ok())
            .unwrap_or(16usize)
            .max(16)
    })
}

/// A fresh allocation of the payload size, as kontiki's T0 makes it.
fn payload(sequence: usize) -> Vec<u8> {
    let size = payload_bytes();
    let mut data = Vec::with_capacity(size);
    data.extend_from_slice(&(sequence as u64).to_le_bytes());
    data.extend_from_slice(&(sequence as u64).to_le_bytes());
    data.resize(size, 0);
    data
}

struct Bench {
    nodes: Vec<RawNode<MemStorage>>,
    queue: VecDeque<Message>,
    codec: bool,
    /// Per node: the last index applied, and the last one compacted to.
    applied: Vec<(u64, u64)>,
    commands_applied_on_leader: u64,
    messages_delivered: u64,
}

impl Bench {
    fn new(codec: bool) -> Bench {
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let nodes = (1..=3u64)
            .map(|id| {
                let storage =
                    MemStorage::new_with_conf_state(ConfState::from((vec![1, 2, 3], vec![])));
                let config = Config {
                    id,
                    election_tick: 10,
                    heartbeat_tick: 1,
                    max_size_per_msg: 64 * 1024,
                    max_inflight_msgs: 256,
                    batch_append: true,
                    ..Config::default()
                };
                config.validate().expect("a valid configuration");
                RawNode::new(&config, storage, &logger).expect("the node starts")
            })
            .collect();
        Bench {
            nodes,
            queue: VecDeque::new(),
            codec,
            applied: vec![(0, 0); 3],
            commands_applied_on_leader: 0,
            messages_delivered: 0,
        }
    }

    fn send(queue: &mut VecDeque<Message>, codec: bool, messages: Vec<Message>) {
        for message in messages {
            let message = if codec {
                let bytes = message.write_to_bytes().expect("the message encodes");
                Message::parse_from_bytes(&bytes).expect("what was encoded decodes")
            } else {
                message
            };
            queue.push_back(message);
        }
    }

    fn apply(&mut self, position: usize, entries: Vec<Entry>, leads: bool) {
        for entry in entries {
            self.applied[position].0 = entry.index;
            if leads && entry.get_entry_type() == EntryType::EntryNormal && !entry.data.is_empty() {
                self.commands_applied_on_leader += 1;
            }
        }
    }

    /// Performs a node's ready: sends, persists, applies, advances.
    fn on_ready(&mut self, position: usize) {
        if !self.nodes[position].has_ready() {
            return;
        }
        let store = self.nodes[position].raft.raft_log.store.clone();
        let leads = self.nodes[position].raft.state == StateRole::Leader;
        let mut ready = self.nodes[position].ready();
        Self::send(&mut self.queue, self.codec, ready.take_messages());
        if !ready.snapshot().is_empty() {
            store
                .wl()
                .apply_snapshot(ready.snapshot().clone())
                .expect("the snapshot applies");
        }
        self.apply(position, ready.take_committed_entries(), leads);
        if !ready.entries().is_empty() {
            store
                .wl()
                .append(ready.entries())
                .expect("the entries append");
        }
        if let Some(hard_state) = ready.hs() {
            store.wl().set_hardstate(hard_state.clone());
        }
        Self::send(&mut self.queue, self.codec, ready.take_persisted_messages());
        let mut light = self.nodes[position].advance(ready);
        if let Some(commit) = light.commit_index() {
            store.wl().mut_hard_state().set_commit(commit);
        }
        Self::send(&mut self.queue, self.codec, light.take_messages());
        self.apply(position, light.take_committed_entries(), leads);
        self.nodes[position].advance_apply();
        let (applied, compacted) = self.applied[position];
        if applied >= compacted + SNAPSHOT_INTERVAL {
            self.applied[position].1 = applied;
            store
                .wl()
                .compact(applied)
                .expect("applied entries compact");
        }
    }

    fn run_until_quiet(&mut self) {
        loop {
            for position in 0..self.nodes.len() {
                self.on_ready(position);
            }
            if self.queue.is_empty() {
                return;
            }
            while let Some(message) = self.queue.pop_front() {
                self.messages_delivered += 1;
                let position = (message.to - 1) as usize;
                // Stale messages may be refused; that is Raft.
                let _ = self.nodes[position].step(message);
                self.on_ready(position);
            }
        }
    }

    fn elect(&mut self) -> usize {
        self.nodes[0].campaign().expect("node 1 campaigns");
        self.run_until_quiet();
        assert_eq!(self.nodes[0].raft.state, StateRole::Leader);
        0
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn replicate(batch: usize, codec: bool) -> (f64, f64) {
    let mut bench = Bench::new(codec);
    let leader = bench.elect();
    bench.commands_applied_on_leader = 0;
    let allocations_before = ALLOCATIONS.load(Ordering::Relaxed);
    let started = Instant::now();
    for first in (0..ENTRIES).step_by(batch) {
        for sequence in first..first + batch {
            bench.nodes[leader]
                .propose(Vec::new(), payload(sequence))
                .expect("the leader accepts proposals");
        }
        bench.run_until_quiet();
    }
    let elapsed = started.elapsed();
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations_before;
    assert_eq!(bench.commands_applied_on_leader, ENTRIES as u64);
    (
        ENTRIES as f64 / elapsed.as_secs_f64(),
        allocations as f64 / ENTRIES as f64,
    )
}

fn main() {
    let workload = std::env::args().nth(1).unwrap_or_default();
    let (entries_per_second, allocations_per_entry) = match workload.as_str() {
        "single" => replicate(1, false),
        "batch100" => replicate(100, false),
        "batch100-codec" => replicate(100, true),
        other => panic!("unknown workload {other:?}: single, batch100 or batch100-codec"),
    };
    println!(
        "{entries_per_second:.0} {allocations_per_entry:.2} {}",
        peak_rss_kib()
    );
}

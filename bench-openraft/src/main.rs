//! the T1 workload of docs/benchmarks.md on openraft 0.9.25, so that kontiki's T1 can be
//! compared with it as docs/benchmarks.md describes: as a ratio measured in the same run
//! on the same machine (`compare.sh` alternates the two).
//!
//! The setup follows kontiki's T1 bench (`tests/benches/common`) wherever
//! openraft allows: three voters in one process on one tokio runtime
//! (current_thread, or multi_thread with 2 workers); an in-memory log and a
//! state machine that counts and reads every command; 16-byte payloads,
//! a fresh allocation per proposal; C writer tasks each awaiting its own
//! write until N are done (N / 5 for one writer), the clock started once a
//! leader exists; the leader's applied count asserted; snapshots every
//! 10,000 entries; then the leader is shut down and the time until the
//! other two agree on a new one is taken. Timeouts as kontiki's T1:
//! election 150–300 ms, heartbeat 50 ms.
//!
//! Messages travel as direct calls into the target's `Raft` handle, as
//! openraft's own cluster benchmark does; kontiki's T1 goes through
//! channels, so this is, if anything, kind to openraft.
//!
//! Usage: `kontiki-bench-openraft [tokio-ct] [tokio-mt]` (both by default);
//! `KONTIKI_BENCH_WRITES` and `KONTIKI_BENCH_WRITERS` as in kontiki's bench.

mod network;
mod store;

use std::collections::{BTreeMap, BTreeSet};
// The snapshot data type that `declare_raft_types!` names by default.
use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use openraft::{Config, ServerState, SnapshotPolicy};

use crate::network::{Network, Routes};
use crate::store::{LogStore, Tally};

openraft::declare_raft_types!(
    /// The bench's type configuration: byte commands, answered with their
    /// log index.
    pub TypeConfig:
        D = Vec<u8>,
        R = u64,
        Node = (),
);

/// An openraft node of this bench.
pub type Raft = openraft::Raft<TypeConfig>;
/// Node ids, as openraft 0.9 spells them.
pub type NodeId = u64;

const WRITERS: [usize; 3] = [1, 64, 256];

fn main() {
    let chosen: Vec<String> = std::env::args().skip(1).collect();
    let wanted = |name: &str| chosen.is_empty() || chosen.iter().any(|c| c == name);
    let writes: usize = std::env::var("KONTIKI_BENCH_WRITES")
        .ok()
        .and_then(|writes| writes.parse().ok())
        .unwrap_or(100_000);
    let writer_counts: Vec<usize> = match std::env::var("KONTIKI_BENCH_WRITERS") {
        Ok(list) => list
            .split(',')
            .map(|count| {
                count
                    .trim()
                    .parse()
                    .expect("KONTIKI_BENCH_WRITERS: numbers")
            })
            .collect(),
        Err(_) => WRITERS.to_vec(),
    };
    println!("T1 on openraft 0.9.25, N = {writes}\n");
    println!("| runtime | writers | writes/s | latency p50 | latency p99 | failover |");
    println!("|---|---|---|---|---|---|");
    for (name, multi_thread) in [("openraft-tokio-ct", false), ("openraft-tokio-mt", true)] {
        if !wanted(&name["openraft-".len()..]) {
            continue;
        }
        let runtime = if multi_thread {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        .expect("tokio runtime");
        for &writers in &writer_counts {
            let total = if writers == 1 { writes / 5 } else { writes };
            let result = runtime.block_on(run_one(writers, total));
            println!(
                "| {name} | {writers} | {:.0} | {:.1} µs | {:.1} µs | {:.0} ms |",
                result.writes_per_second,
                result.p50.as_secs_f64() * 1e6,
                result.p99.as_secs_f64() * 1e6,
                result.failover.as_secs_f64() * 1e3
            );
        }
    }
    println!(
        "\npeak RSS of the process (the largest run): {:.0} MB",
        peak_rss_kib() as f64 / 1024.0
    );
}

struct Outcome {
    writes_per_second: f64,
    p50: Duration,
    p99: Duration,
    failover: Duration,
}

async fn run_one(writers: usize, total: usize) -> Outcome {
    let config = Arc::new(
        Config {
            heartbeat_interval: 50,
            election_timeout_min: 150,
            election_timeout_max: 300,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(10_000),
            ..Default::default()
        }
        .validate()
        .expect("a valid openraft config"),
    );
    let routes: Routes = Arc::new(OnceLock::new());
    let mut nodes = BTreeMap::new();
    let mut tallies = BTreeMap::new();
    for id in 1..=3 {
        let tally = Tally::default();
        tallies.insert(id, tally.clone());
        let raft = Raft::new(
            id,
            Arc::clone(&config),
            Network::new(&routes),
            LogStore::default(),
            tally,
        )
        .await
        .expect("node starts");
        nodes.insert(id, raft);
    }
    if routes.set(nodes.clone()).is_err() {
        unreachable!("routes are set once");
    }
    nodes[&1]
        .initialize(BTreeSet::from([1, 2, 3]))
        .await
        .expect("cluster initializes");
    let leader = agreed_leader(nodes.values(), None).await;

    let remaining = Arc::new(AtomicUsize::new(total));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let raft = nodes[&leader].clone();
        let remaining = Arc::clone(&remaining);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut sequence = 0u64;
            while remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(1)
                })
                .is_ok()
            {
                sequence += 1;
                let asked = Instant::now();
                let mut command = Vec::with_capacity(16);
                command.extend_from_slice(&sequence.to_le_bytes());
                command.extend_from_slice(&sequence.to_le_bytes());
                raft.client_write(command)
                    .await
                    .expect("the leader commits");
                latencies.push(asked.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("writer finished"));
    }
    let elapsed = started.elapsed();
    assert_eq!(latencies.len(), total, "every write acknowledged");
    assert_eq!(
        tallies[&leader].applied(),
        total as u64,
        "every write applied on the leader, once"
    );
    latencies.sort_unstable();
    let percentile =
        |p: f64| latencies[((p * latencies.len() as f64) as usize).min(latencies.len() - 1)];

    let cut = Instant::now();
    nodes[&leader].shutdown().await.expect("leader shuts down");
    let survivors: Vec<&Raft> = nodes
        .iter()
        .filter(|&(&id, _)| id != leader)
        .map(|(_, raft)| raft)
        .collect();
    agreed_leader(survivors.iter().copied(), Some(leader)).await;
    let failover = cut.elapsed();
    for raft in survivors {
        raft.shutdown().await.expect("node shuts down");
    }
    Outcome {
        writes_per_second: total as f64 / elapsed.as_secs_f64(),
        p50: percentile(0.50),
        p99: percentile(0.99),
        failover,
    }
}

/// Waits until one of `nodes`, other than `not`, leads and every one of
/// them follows it (as kontiki's bench waits); panics after 10 s.
async fn agreed_leader<'a>(
    nodes: impl Iterator<Item = &'a Raft> + Clone,
    not: Option<NodeId>,
) -> NodeId {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics: Vec<_> = nodes
            .clone()
            .map(|raft| raft.metrics().borrow().clone())
            .collect();
        let leader = metrics
            .iter()
            .find(|node| node.state == ServerState::Leader && Some(node.id) != not)
            .map(|node| node.id);
        if let Some(leader) = leader {
            if metrics
                .iter()
                .all(|node| node.current_leader == Some(leader))
            {
                return leader;
            }
        }
        assert!(Instant::now() < deadline, "no agreed leader within 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The process's peak resident set (VmHWM), as kontiki's bench reports it.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

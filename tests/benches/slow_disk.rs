//! A node whose disk turns slow, under load: three nodes over loopback
//! TCP on tokio (two workers), each on a `WalStorage` wrapped so that one
//! node's writes can be made to take 500 ms longer, or to stall for 2 s;
//! 16 clients write 16-byte commands through whichever node leads.
//!
//! Each run measures a baseline window, then four disturbances one after
//! the other, each on the node that then has the role: the leader's
//! writes +500 ms for 3 s, the leader's disk stalled 2 s, a follower's
//! writes +500 ms for 3 s, a follower's disk stalled 2 s. Reported per
//! window: writes/s and latency p50/p99, elections (term changes), and the
//! longest a follower went without hearing from its leader (sampled every
//! 2 ms; the heartbeat interval is 50 ms). Storage writes never block the
//! node's task, so none of these should cost an election, and the
//! follower's should cost no throughput.
//!
//! `cargo bench -p kontiki-tests --bench slow_disk`; `KONTIKI_BENCH_RUNS`
//! (default 3) runs; the last lines give the medians.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kontiki::{Persist, PersistedState, Role};
use kontiki_driver::{Handle, Runtime, SnapshotStore, Storage, WalStorage};
use kontiki_tests::live::{agreed_leader, cluster_configs, free_addresses, Tally};
use kontiki_tests::load::{median, Nodes, Window, Writers};
use kontiki_tokio::TokioRuntime;

const WRITERS: usize = 16;

/// What a disturbed disk does to each write.
#[derive(Default)]
struct Slowdown {
    /// Added to every write, in microseconds.
    extra_micros: AtomicU64,
    /// Writes wait while this is set.
    stalled: Mutex<Option<Instant>>,
}

/// A disk store whose writes a benchmark slows down.
struct SlowDisk {
    inner: WalStorage,
    slowdown: Arc<Slowdown>,
}

impl Storage for SlowDisk {
    fn load(&mut self) -> io::Result<PersistedState> {
        self.inner.load()
    }

    fn write(&mut self, writes: &[Persist]) -> io::Result<()> {
        let stalled_until = *self.slowdown.stalled.lock().unwrap();
        if let Some(until) = stalled_until {
            std::thread::sleep(until.saturating_duration_since(Instant::now()));
        }
        let extra = self.slowdown.extra_micros.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_micros(extra));
        self.inner.write(writes)
    }

    fn snapshots(&self) -> Arc<dyn SnapshotStore> {
        self.inner.snapshots()
    }
}

#[derive(Clone, Copy)]
enum Disturbance {
    None,
    Slow(Role),
    Stall(Role),
}

impl Disturbance {
    const ALL: [Disturbance; 5] = [
        Disturbance::None,
        Disturbance::Slow(Role::Leader),
        Disturbance::Stall(Role::Leader),
        Disturbance::Slow(Role::Follower),
        Disturbance::Stall(Role::Follower),
    ];

    fn name(self) -> &'static str {
        match self {
            Disturbance::None => "baseline",
            Disturbance::Slow(Role::Leader) => "leader writes +500 ms",
            Disturbance::Stall(Role::Leader) => "leader disk stalled 2 s",
            Disturbance::Slow(_) => "follower writes +500 ms",
            Disturbance::Stall(_) => "follower disk stalled 2 s",
        }
    }

    fn window(self) -> Duration {
        match self {
            Disturbance::Stall(_) => Duration::from_secs(2),
            _ => Duration::from_secs(3),
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Figures {
    load: Window,
    elections: u64,
    longest_silence: Duration,
}

/// Samples every node's status every 2 ms: term changes, and the longest
/// any follower went without hearing from its leader.
async fn watch(runtime: TokioRuntime, nodes: Vec<Handle<Tally>>, done: Arc<AtomicBool>) -> Figures {
    let mut terms: Vec<_> = nodes.iter().map(|node| node.status().term).collect();
    let mut figures = Figures::default();
    while !done.load(Ordering::Relaxed) {
        for (node, term) in nodes.iter().zip(&mut terms) {
            let status = node.status();
            if status.term != *term {
                *term = status.term;
                figures.elections += 1;
            }
            if status.role == Role::Follower {
                if let Some(contact) = status.last_leader_contact {
                    figures.longest_silence = figures.longest_silence.max(contact.elapsed());
                }
            }
        }
        runtime
            .sleep_until(runtime.now() + Duration::from_millis(2))
            .await;
    }
    figures
}

async fn run_once() -> Vec<Figures> {
    let runtime = TokioRuntime::current();
    let data = tempfile::tempdir().expect("a temporary directory");
    let addresses = free_addresses(3);
    let nodes: Nodes = Arc::default();
    let mut slowdowns = Vec::new();
    for config in cluster_configs(&addresses, "slow-disk") {
        let inner = WalStorage::open(data.path().join(config.id.to_string())).expect("a store");
        let slowdown = Arc::new(Slowdown::default());
        slowdowns.push(slowdown.clone());
        let store = SlowDisk { inner, slowdown };
        let node = kontiki_driver::start(runtime.clone(), config, store, Tally::default())
            .await
            .expect("a node starts");
        nodes.lock().unwrap().push(node);
    }
    let all = nodes.lock().unwrap().clone();
    agreed_leader(&runtime, &all, None).await.expect("a leader");
    let writers = Writers::start(&runtime, &nodes, WRITERS);
    runtime
        .sleep_until(runtime.now() + Duration::from_secs(1))
        .await;

    let mut figures = Vec::new();
    for disturbance in Disturbance::ALL {
        let position_of = |role: Role| {
            all.iter()
                .position(|node| node.status().role == role)
                .expect("a node in that role")
        };
        let done = Arc::new(AtomicBool::new(false));
        let watcher = tokio::spawn(watch(runtime.clone(), all.clone(), done.clone()));
        let start = Instant::now();
        match disturbance {
            Disturbance::None => {}
            Disturbance::Slow(role) => {
                slowdowns[position_of(role)]
                    .extra_micros
                    .store(500_000, Ordering::Relaxed);
            }
            Disturbance::Stall(role) => {
                *slowdowns[position_of(role)].stalled.lock().unwrap() =
                    Some(start + disturbance.window());
            }
        }
        runtime
            .sleep_until(runtime.now() + disturbance.window())
            .await;
        let end = Instant::now();
        for slowdown in &slowdowns {
            slowdown.extra_micros.store(0, Ordering::Relaxed);
            *slowdown.stalled.lock().unwrap() = None;
        }
        done.store(true, Ordering::Relaxed);
        let mut window = watcher.await.expect("the watcher");
        window.load = writers.window(start, end);
        figures.push(window);
        // Let the slow node's queued writes drain before the next one.
        runtime
            .sleep_until(runtime.now() + Duration::from_secs(1))
            .await;
    }
    writers.stop().await;
    for node in all {
        node.shutdown().await;
    }
    figures
}

fn main() {
    let runs: usize = kontiki_tests::load::env_number("KONTIKI_BENCH_RUNS", 3);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    println!("A slow disk under load: 3 nodes over loopback TCP, disk stores, {WRITERS} writers\n");
    println!("| run | window | writes/s (p50 / p99) | elections | longest silence at a follower |");
    println!("|---|---|---|---|---|");
    let mut all: Vec<Vec<Figures>> = Vec::new();
    for run in 1..=runs {
        let figures = runtime.block_on(run_once());
        for (disturbance, figures) in Disturbance::ALL.iter().zip(&figures) {
            println!(
                "| {run} | {} | {} | {} | {:.1} ms |",
                disturbance.name(),
                figures.load,
                figures.elections,
                figures.longest_silence.as_secs_f64() * 1e3
            );
        }
        all.push(figures);
    }
    for (position, disturbance) in Disturbance::ALL.iter().enumerate() {
        let runs: Vec<Figures> = all.iter().map(|run| run[position]).collect();
        let load = Window::median_of(&runs.iter().map(|f| f.load).collect::<Vec<_>>());
        let elections: u64 = runs.iter().map(|f| f.elections).sum();
        let mut silences: Vec<Duration> = runs.iter().map(|f| f.longest_silence).collect();
        let silence = median(&mut silences, Duration::as_secs_f64);
        println!(
            "| median | {} | {load} | {elections} (all runs) | {:.1} ms |",
            disturbance.name(),
            silence.as_secs_f64() * 1e3
        );
    }
}

//! The writers workload shared by T1 and T2 of BENCH.md: three nodes in
//! one process on each runtime; C client tasks each await their own write
//! until N writes are done; then the leader is shut down and the time
//! until the other two agree on a new leader is measured.
//!
//! Arguments filter by runtime name (`tokio-ct`, `tokio-mt`, `smol`,
//! `async-std`). `KONTIKI_BENCH_WRITES` sets N (default 100,000; a single
//! writer does a fifth of that). `KONTIKI_BENCH_STORAGE=disk` puts each
//! node on a `DiskStorage` (one fsync per round) in a temporary directory
//! instead of memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::future::join_all;
use kontiki_driver::{DiskStorage, Handle, MemoryStorage, Runtime};
use kontiki_tests::in_process::InProcess;
use kontiki_tests::live::{agreed_leader, cluster_configs, free_addresses, Recorder};
use kontiki_tokio::TokioRuntime;

const WRITERS: [usize; 3] = [1, 64, 256];

/// How the nodes of a run reach each other.
// Each bench binary compiles this module and uses one variant.
#[allow(dead_code)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Loopback TCP (T2).
    Tcp,
    /// In-memory pipes (T1).
    InProcess,
}

/// Runs the workload on every chosen runtime and prints a table.
pub fn run(title: &str, network: Network) {
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let writes: usize = std::env::var("KONTIKI_BENCH_WRITES")
        .ok()
        .and_then(|writes| writes.parse().ok())
        .unwrap_or(100_000);
    let wanted = |name: &str| chosen.is_empty() || chosen.iter().any(|c| c == name);
    println!("{title}, N = {writes}\n");
    println!("| runtime | writers | writes/s | latency p50 | latency p99 | failover |");
    println!("|---|---|---|---|---|---|");
    if wanted("tokio-ct") {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        runtime.block_on(async {
            run_all("tokio-ct", TokioRuntime::current(), writes, network).await
        });
    }
    if wanted("tokio-mt") {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        runtime.block_on(async {
            run_all("tokio-mt", TokioRuntime::current(), writes, network).await
        });
    }
    if wanted("smol") {
        smol::block_on(run_all("smol", kontiki_smol::runtime(), writes, network));
    }
    if wanted("async-std") {
        async_std::task::block_on(run_all(
            "async-std",
            kontiki_async_std::runtime(),
            writes,
            network,
        ));
    }
}

async fn run_all<R: Runtime>(name: &str, runtime: R, writes: usize, network: Network) {
    match network {
        Network::Tcp => run_writer_counts(name, runtime, writes).await,
        Network::InProcess => run_writer_counts(name, InProcess::new(runtime), writes).await,
    }
}

async fn run_writer_counts<R: Runtime>(name: &str, runtime: R, writes: usize) {
    for writers in WRITERS {
        let total = if writers == 1 { writes / 5 } else { writes };
        let result = run_one(runtime.clone(), writers, total).await;
        println!(
            "| {name} | {writers} | {:.0} | {:.1} µs | {:.1} µs | {:.0} ms |",
            result.writes_per_second,
            result.p50.as_secs_f64() * 1e6,
            result.p99.as_secs_f64() * 1e6,
            result.failover.as_secs_f64() * 1e3
        );
    }
}

struct Result {
    writes_per_second: f64,
    p50: Duration,
    p99: Duration,
    failover: Duration,
}

async fn run_one<R: Runtime>(runtime: R, writers: usize, total: usize) -> Result {
    let addresses = free_addresses(3);
    let on_disk = std::env::var("KONTIKI_BENCH_STORAGE").is_ok_and(|storage| storage == "disk");
    let data = tempfile::tempdir().expect("a temporary directory");
    let mut nodes: Vec<Handle<Recorder>> = Vec::new();
    for config in cluster_configs(&addresses, "t2") {
        let node = if on_disk {
            let store =
                DiskStorage::open(data.path().join(config.id.to_string())).expect("store opens");
            kontiki_driver::start(runtime.clone(), config, store, Recorder::default()).await
        } else {
            kontiki_driver::start(
                runtime.clone(),
                config,
                MemoryStorage::new(),
                Recorder::default(),
            )
            .await
        }
        .expect("node starts");
        nodes.push(node);
    }
    let leader = agreed_leader(&runtime, &nodes, None)
        .await
        .expect("a leader");
    let remaining = Arc::new(AtomicUsize::new(total));
    let started = Instant::now();
    let mut finished = Vec::new();
    for _ in 0..writers {
        let (done, finished_writer) = oneshot::channel();
        finished.push(finished_writer);
        let node = nodes[leader].clone();
        let remaining = Arc::clone(&remaining);
        runtime.spawn(async move {
            let mut latencies = Vec::new();
            let mut sequence = 0u64;
            while remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(1)
                })
                .is_ok()
            {
                sequence += 1;
                let mut command = Vec::with_capacity(16);
                command.extend_from_slice(&sequence.to_le_bytes());
                command.extend_from_slice(&sequence.to_le_bytes());
                let proposed = Instant::now();
                node.propose(command).await.expect("the leader commits");
                latencies.push(proposed.elapsed());
            }
            let _ = done.send(latencies);
        });
    }
    let mut latencies: Vec<Duration> = join_all(finished)
        .await
        .into_iter()
        .flat_map(|latencies| latencies.expect("writer finished"))
        .collect();
    let elapsed = started.elapsed();
    assert_eq!(latencies.len(), total, "every write acknowledged");
    latencies.sort_unstable();
    let percentile =
        |p: f64| latencies[((p * latencies.len() as f64) as usize).min(latencies.len() - 1)];

    let old_leader = nodes[leader].status().id;
    let cut = Instant::now();
    nodes[leader].shutdown().await;
    let survivors: Vec<Handle<Recorder>> = nodes
        .iter()
        .enumerate()
        .filter(|&(position, _)| position != leader)
        .map(|(_, node)| node.clone())
        .collect();
    agreed_leader(&runtime, &survivors, Some(old_leader))
        .await
        .expect("a new leader");
    let failover = cut.elapsed();
    for node in &survivors {
        node.shutdown().await;
    }
    Result {
        writes_per_second: total as f64 / elapsed.as_secs_f64(),
        p50: percentile(0.50),
        p99: percentile(0.99),
        failover,
    }
}

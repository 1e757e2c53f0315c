//! Replacing a node under load: three nodes over loopback TCP on tokio
//! (two workers), each on a `WalStorage` (one fsync per round) and
//! snapshotting every 10,000 entries; 16 clients write 16-byte commands
//! the whole time. After N writes (so the newcomer catches up from a
//! snapshot and the log after it), a follower is shut down for good; a
//! new node started to join is added as a learner, promoted as soon as
//! the leader accepts (retried every millisecond while it is behind), and
//! the old follower removed.
//!
//! Reported per run: time from the addition to the promotion, and writes/s
//! and latency p50/p99 in the 2 s before the follower stops, during the
//! replacement (from the stop to the removal's commit) and in the 2 s
//! after. `cargo bench -p kontiki-tests --bench replace`;
//! `KONTIKI_BENCH_RUNS` (default 5) and `KONTIKI_BENCH_WRITES` (N,
//! default 100,000) tune it; the last line gives the medians.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kontiki::{LogIndex, NodeId};
use kontiki_driver::{ChangeError, Handle, NodeConfig, Runtime, WalStorage};
use kontiki_tests::live::{agreed_leader, cluster_configs, free_addresses, Tally};
use kontiki_tests::load::{leader_of, median, Nodes, Window, Writers};
use kontiki_tokio::TokioRuntime;

const WRITERS: usize = 16;
const WINDOW: Duration = Duration::from_secs(2);

struct Figures {
    promoted_after: Duration,
    before: Window,
    during: Window,
    after: Window,
}

/// Makes `change` on whichever node leads, retrying while the refusal is
/// one that passes (a learner still behind, another change pending, a
/// new leader).
async fn change_until_done<F, Fut>(runtime: &TokioRuntime, nodes: &Nodes, change: F)
where
    F: Fn(Handle<Tally>) -> Fut,
    Fut: std::future::Future<Output = Result<LogIndex, ChangeError>>,
{
    loop {
        match change(leader_of(runtime, nodes).await).await {
            Ok(_) => return,
            Err(error)
                if error.is_transient() || matches!(error, ChangeError::NotLeader { .. }) =>
            {
                runtime
                    .sleep_until(runtime.now() + Duration::from_millis(1))
                    .await;
            }
            Err(error) => panic!("a membership change failed: {error}"),
        }
    }
}

async fn run_once(writes: u64) -> Figures {
    let runtime = TokioRuntime::current();
    let data = tempfile::tempdir().expect("a temporary directory");
    let addresses = free_addresses(4);
    let nodes: Nodes = Arc::default();
    for config in cluster_configs(&addresses[..3], "replace") {
        let store = WalStorage::open(data.path().join(config.id.to_string())).expect("a store");
        let node = kontiki_driver::start(runtime.clone(), config, store, Tally::default())
            .await
            .expect("a node starts");
        nodes.lock().unwrap().push(node);
    }
    let all = nodes.lock().unwrap().clone();
    agreed_leader(&runtime, &all, None).await.expect("a leader");

    // Each client writes through whichever node leads (a leader may lose
    // its place when a slow fsync delays its heartbeats).
    let writers = Writers::start(&runtime, &nodes, WRITERS);
    while (writers.count() as u64) < writes {
        runtime
            .sleep_until(runtime.now() + Duration::from_millis(10))
            .await;
    }
    runtime.sleep_until(runtime.now() + WINDOW).await;

    // The follower that leaves, and the node that replaces it.
    let leader_id = leader_of(&runtime, &nodes).await.status().id;
    let old = {
        let mut nodes = nodes.lock().unwrap();
        let position = nodes
            .iter()
            .position(|node| node.status().id != leader_id)
            .expect("a follower");
        nodes.remove(position)
    };
    let old_id = old.status().id;
    let stopped = Instant::now();
    old.shutdown().await;
    let mut join = NodeConfig::new(NodeId(4), addresses[3], Default::default());
    join.cluster_id = "replace".into();
    join.join = true;
    let store = WalStorage::open(data.path().join("4")).expect("a store");
    let newcomer = kontiki_driver::start(runtime.clone(), join, store, Tally::default())
        .await
        .expect("the newcomer starts");
    nodes.lock().unwrap().push(newcomer);
    let added = Instant::now();
    let peer = addresses[3];
    change_until_done(&runtime, &nodes, |leader| async move {
        leader.add_learner(NodeId(4), peer, None).await
    })
    .await;
    change_until_done(&runtime, &nodes, |leader| async move {
        leader.promote(NodeId(4)).await
    })
    .await;
    let promoted_after = added.elapsed();
    change_until_done(&runtime, &nodes, |leader| async move {
        leader.remove(old_id).await
    })
    .await;
    let replaced = Instant::now();
    runtime.sleep_until(runtime.now() + WINDOW).await;
    let finished = Instant::now();
    let figures = Figures {
        promoted_after,
        before: writers.window(stopped - WINDOW, stopped),
        during: writers.window(stopped, replaced),
        after: writers.window(replaced, finished),
    };
    writers.stop().await;
    let running = nodes.lock().unwrap().clone();
    for node in running {
        node.shutdown().await;
    }
    figures
}

fn main() {
    let runs: usize = kontiki_tests::load::env_number("KONTIKI_BENCH_RUNS", 5);
    let writes: u64 = kontiki_tests::load::env_number("KONTIKI_BENCH_WRITES", 100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    println!(
        "Replacing a follower under load: 3 nodes over loopback TCP, disk stores, \
         {WRITERS} writers, after {writes} writes\n"
    );
    println!("| run | add to promoted | before: writes/s (p50 / p99) | during | after |");
    println!("|---|---|---|---|---|");
    let mut all = Vec::new();
    for run in 1..=runs {
        let figures = runtime.block_on(run_once(writes));
        println!(
            "| {run} | {:.1} ms | {} | {} | {} |",
            figures.promoted_after.as_secs_f64() * 1e3,
            figures.before,
            figures.during,
            figures.after
        );
        all.push(figures);
    }
    let mut promoted: Vec<Duration> = all.iter().map(|f| f.promoted_after).collect();
    let pick = |select: fn(&Figures) -> Window| {
        Window::median_of(&all.iter().map(select).collect::<Vec<_>>())
    };
    println!(
        "| median | {:.1} ms | {} | {} | {} |",
        median(&mut promoted, Duration::as_secs_f64).as_secs_f64() * 1e3,
        pick(|f| f.before),
        pick(|f| f.during),
        pick(|f| f.after)
    );
}

//! The writers workload shared by T1 and T2 of docs/benchmarks.md: three nodes in
//! one process on each runtime; C client tasks each await their own write
//! until N writes are done; then the leader is shut down and the time
//! until the other two agree on a new leader is measured.
//!
//! Arguments filter by runtime name (`tokio-ct`, `tokio-mt`, `smol`,
//! `async-std`). `KONTIKI_BENCH_WRITES` sets N (default 100,000; a single
//! writer does a fifth of that). `KONTIKI_BENCH_STORAGE=disk` puts each
//! node on a `WalStorage` (one fdatasync per round) in a temporary
//! directory instead of memory, and `KONTIKI_BENCH_STORAGE=redb` on a
//! `DiskStorage` (one redb commit per round). `KONTIKI_BENCH_WRITERS=1,64` picks the writer
//! counts (default 1, 64 and 256). `KONTIKI_BENCH_LEADER_PERSISTS_FIRST=1`
//! makes leaders persist before sending (the core's default) instead of
//! in parallel with their followers (the driver's), for comparison. Nodes
//! snapshot their state machine and compact every 10,000 entries (the
//! driver's default, the interval of docs/benchmarks.md); `KONTIKI_BENCH_SNAPSHOTS=0`
//! keeps whole logs instead, for comparison. `KONTIKI_BENCH_OPERATION=read`
//! has the clients take linearizable read barriers instead of writing
//! (kontiki's own workload, not one of docs/benchmarks.md's): nothing is written, and
//! the run checks that nothing was. On TCP, `KONTIKI_BENCH_TLS=1` links
//! the nodes with mutual TLS, and `KONTIKI_BENCH_TLS=both` runs every
//! writer count in plaintext and then with TLS, one row each, for a
//! same-run ratio.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::future::join_all;
use futures::{AsyncReadExt, AsyncWriteExt};
use kontiki_driver::{
    DiskStorage, Handle, LocalNetwork, MemoryStorage, Runtime, Storage, WalStorage,
};
use kontiki_tests::live::{agreed_leader, cluster_configs, free_addresses, Tally};
use kontiki_tokio::TokioRuntime;

const WRITERS: [usize; 3] = [1, 64, 256];

/// The writer counts to run: `KONTIKI_BENCH_WRITERS`, or all of `WRITERS`.
fn writer_counts() -> Vec<usize> {
    match std::env::var("KONTIKI_BENCH_WRITERS") {
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
    }
}

/// Whether the clients write (the workload of docs/benchmarks.md) or take linearizable
/// read barriers (`KONTIKI_BENCH_OPERATION=read`).
fn clients_read() -> bool {
    match std::env::var("KONTIKI_BENCH_OPERATION").as_deref() {
        Ok("read") => true,
        Ok("write") | Err(_) => false,
        Ok(other) => panic!("KONTIKI_BENCH_OPERATION: read or write, not {other:?}"),
    }
}

/// How the nodes of a run reach each other.
// Each bench binary compiles this module and uses one variant.
#[allow(dead_code)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Loopback TCP (T2).
    Tcp,
    /// In-process channels carrying the core's messages (T1).
    Local,
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
    if clients_read() {
        println!("| runtime | readers | read barriers/s | latency p50 | latency p99 | failover |");
    } else {
        println!("| runtime | writers | writes/s | latency p50 | latency p99 | failover |");
    }
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
    // The workloads report peak RSS: with compaction every 10,000 entries it
    // stays bounded; with KONTIKI_BENCH_SNAPSHOTS=0 every entry stays in
    // memory on all three nodes, in the core's log and in the store.
    println!(
        "\npeak RSS of the process (the largest run): {:.0} MB",
        kontiki_tests::rss::peak_rss_kib() as f64 / 1024.0
    );
}

async fn run_all<R: Runtime>(name: &str, runtime: R, writes: usize, network: Network) {
    if network == Network::Tcp {
        let round_trip = loopback_round_trip(&runtime).await;
        println!(
            "| {name} | loopback round trip (64 bytes, this runtime): {:.1} µs, \
             so one sequential writer's floor is {:.0} writes/s |",
            round_trip.as_secs_f64() * 1e6,
            1.0 / round_trip.as_secs_f64()
        );
        if on_disk() {
            let (alone, three_at_once) = fdatasync_medians();
            let floor = alone + round_trip;
            println!(
                "| {name} | fdatasync of a 64-byte append here: {:.1} µs alone, {:.1} µs with \
                 three files at once; durable floor (alone + round trip) {:.1} µs, \
                 {:.0} writes/s for one sequential writer; one store write of one \
                 16-byte entry: {:.1} µs |",
                alone.as_secs_f64() * 1e6,
                three_at_once.as_secs_f64() * 1e6,
                floor.as_secs_f64() * 1e6,
                1.0 / floor.as_secs_f64(),
                store_write_median().as_secs_f64() * 1e6
            );
        }
    }
    let tls_modes = if network == Network::Tcp {
        tls_modes()
    } else {
        vec![false]
    };
    for writers in writer_counts() {
        let total = if writers == 1 { writes / 5 } else { writes };
        for &tls in &tls_modes {
            let result = run_one(runtime.clone(), network, writers, total, tls).await;
            let label = if tls { " TLS" } else { "" };
            println!(
                "| {name}{label} | {writers} | {:.0} | {:.1} µs | {:.1} µs | {:.0} ms |",
                result.writes_per_second,
                result.p50.as_secs_f64() * 1e6,
                result.p99.as_secs_f64() * 1e6,
                result.failover.as_secs_f64() * 1e3
            );
        }
    }
}

/// Whether runs link the nodes with TLS: `KONTIKI_BENCH_TLS` of 0 or
/// unset (no), 1 (yes) or `both` (each run twice, plaintext first).
fn tls_modes() -> Vec<bool> {
    match std::env::var("KONTIKI_BENCH_TLS").as_deref() {
        Err(_) | Ok("0") => vec![false],
        Ok("1") => vec![true],
        Ok("both") => vec![false, true],
        Ok(other) => panic!("KONTIKI_BENCH_TLS: 0, 1 or both, not {other:?}"),
    }
}

/// Each node's TLS material, from one CA made for the run.
fn peer_tls(configs: &[kontiki_driver::NodeConfig]) -> Vec<kontiki_driver::PeerTls> {
    use kontiki_driver::tls::{CertificateAuthority, Validity};
    let ca = CertificateAuthority::generate(Validity::days_from_now(1)).expect("a CA");
    configs
        .iter()
        .map(|config| {
            let issued = ca
                .issue(config.id, Validity::days_from_now(1), &[])
                .expect("a certificate");
            let pem = kontiki_driver::TlsPem {
                ca: ca.cert_pem().as_bytes(),
                cert: issued.cert_pem.as_bytes(),
                key: issued.key_pem.as_bytes(),
            };
            kontiki_driver::PeerTls::from_pem(config.id, pem).expect("valid material")
        })
        .collect()
}

/// Where the nodes store: `KONTIKI_BENCH_STORAGE` of `disk` (a
/// `WalStorage`), `redb` (a `DiskStorage`), or unset (memory).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Store {
    Memory,
    Wal,
    Redb,
}

fn store_kind() -> Store {
    match std::env::var("KONTIKI_BENCH_STORAGE").as_deref() {
        Err(_) | Ok("memory") => Store::Memory,
        Ok("disk") => Store::Wal,
        Ok("redb") => Store::Redb,
        Ok(other) => panic!("KONTIKI_BENCH_STORAGE: memory, disk or redb, not {other:?}"),
    }
}

fn on_disk() -> bool {
    store_kind() != Store::Memory
}

/// A store of the kind the run asks for, in `dir` for the disk kinds.
fn open_store(dir: &std::path::Path) -> Box<dyn Storage> {
    match store_kind() {
        Store::Memory => Box::new(MemoryStorage::new()),
        Store::Wal => Box::new(WalStorage::open(dir).expect("store opens")),
        Store::Redb => Box::new(DiskStorage::open(dir).expect("store opens")),
    }
}

/// The median time to append 64 bytes to a file and `fdatasync` it, in a
/// temporary directory (the filesystem the nodes' stores use): alone, and
/// while two other threads do the same to their own files, as three nodes
/// on one disk do.
fn fdatasync_medians() -> (Duration, Duration) {
    fn appends(dir: &std::path::Path, name: &str, rounds: usize) -> Vec<Duration> {
        use std::io::Write;
        let mut file = std::fs::File::create(dir.join(name)).expect("a file");
        (0..rounds)
            .map(|_| {
                let started = Instant::now();
                file.write_all(&[7; 64]).expect("a write");
                file.sync_data().expect("fdatasync");
                started.elapsed()
            })
            .collect()
    }
    fn median(mut samples: Vec<Duration>) -> Duration {
        samples.sort_unstable();
        samples[samples.len() / 2]
    }
    const ROUNDS: usize = 500;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let alone = median(appends(dir.path(), "alone", ROUNDS));
    let together = std::thread::scope(|scope| {
        let threads: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|name| scope.spawn(|| appends(dir.path(), name, ROUNDS)))
            .collect();
        threads
            .into_iter()
            .flat_map(|thread| thread.join().expect("an fsync thread"))
            .collect()
    });
    (alone, median(together))
}

/// The median time of one write of the run's store appending one
/// 16-byte entry, in a temporary directory.
fn store_write_median() -> Duration {
    const ROUNDS: u64 = 500;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut store = open_store(dir.path());
    let mut samples: Vec<Duration> = (1..=ROUNDS)
        .map(|index| {
            let entry =
                kontiki::Entry::command(kontiki::LogIndex(index), kontiki::Term(1), vec![7; 16]);
            let started = Instant::now();
            store
                .write(&[kontiki::Persist::Entries(vec![entry])])
                .expect("a write");
            started.elapsed()
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// The median time of a 64-byte ping-pong between two connected loopback
/// sockets on `runtime`: the round-trip floor of docs/benchmarks.md, measured in the same
/// process as the workload so that T2 can be compared with it.
async fn loopback_round_trip<R: Runtime>(runtime: &R) -> Duration {
    const ROUNDS: usize = 20_000;
    let listener = runtime
        .bind("127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("bind loopback");
    let address = R::local_addr(&listener).expect("bound address");
    let (echoed, echo_done) = oneshot::channel();
    runtime.spawn(async move {
        let (mut stream, _) = R::accept(&listener).await.expect("accept");
        let mut ball = [0u8; 64];
        while stream.read_exact(&mut ball).await.is_ok() {
            if stream.write_all(&ball).await.is_err() {
                break;
            }
        }
        let _ = echoed.send(());
    });
    let mut stream = runtime.connect(address).await.expect("connect");
    let mut ball = [7u8; 64];
    let mut round_trips = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let sent = Instant::now();
        stream.write_all(&ball).await.expect("ping");
        stream.read_exact(&mut ball).await.expect("pong");
        round_trips.push(sent.elapsed());
    }
    drop(stream);
    let _ = echo_done.await;
    round_trips.sort_unstable();
    round_trips[ROUNDS / 2]
}

struct Result {
    writes_per_second: f64,
    p50: Duration,
    p99: Duration,
    failover: Duration,
}

async fn run_one<R: Runtime>(
    runtime: R,
    network: Network,
    writers: usize,
    total: usize,
    tls: bool,
) -> Result {
    let addresses = free_addresses(3);
    let persists_first =
        std::env::var("KONTIKI_BENCH_LEADER_PERSISTS_FIRST").is_ok_and(|on| on == "1");
    let whole_logs = std::env::var("KONTIKI_BENCH_SNAPSHOTS").is_ok_and(|on| on == "0");
    let data = tempfile::tempdir().expect("a temporary directory");
    let local = LocalNetwork::new();
    let mut nodes: Vec<Handle<Tally>> = Vec::new();
    let mut tallies = Vec::new();
    let mut configs = cluster_configs(&addresses, "t2");
    if tls {
        let material = peer_tls(&configs);
        for (config, tls) in configs.iter_mut().zip(material) {
            config.tls = Some(tls);
        }
    }
    for mut config in configs {
        config.raft.leader_persists_in_parallel = !persists_first;
        if whole_logs {
            config.snapshot_interval = 0;
        }
        let tally = Tally::default();
        tallies.push(tally.clone());
        let store = open_store(&data.path().join(config.id.to_string()));
        let node = match network {
            Network::Tcp => kontiki_driver::start(runtime.clone(), config, store, tally).await,
            Network::Local => {
                let runtime = runtime.clone();
                kontiki_driver::start_local(runtime, &local, config, store, tally).await
            }
        }
        .expect("node starts");
        nodes.push(node);
    }
    let leader = agreed_leader(&runtime, &nodes, None)
        .await
        .expect("a leader");
    let remaining = Arc::new(AtomicUsize::new(total));
    let reads = clients_read();
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
                let asked = Instant::now();
                if reads {
                    node.read_barrier().await.expect("the leader serves reads");
                } else {
                    sequence += 1;
                    let mut command = Vec::with_capacity(16);
                    command.extend_from_slice(&sequence.to_le_bytes());
                    command.extend_from_slice(&sequence.to_le_bytes());
                    node.propose(command).await.expect("the leader commits");
                }
                latencies.push(asked.elapsed());
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
    assert_eq!(latencies.len(), total, "every operation acknowledged");
    let applied = tallies[leader].applied();
    let written = if reads { 0 } else { total as u64 };
    assert_eq!(
        applied, written,
        "every write applied on the leader, once, and reads write nothing"
    );
    latencies.sort_unstable();
    let percentile =
        |p: f64| latencies[((p * latencies.len() as f64) as usize).min(latencies.len() - 1)];

    let old_leader = nodes[leader].status().id;
    let cut = Instant::now();
    nodes[leader].shutdown().await;
    let survivors: Vec<Handle<Tally>> = nodes
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

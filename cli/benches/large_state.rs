//! Replacing a node of a cluster with a large store: three `kontiki node`
//! processes (tokio) on loopback, each on its own data directory, are
//! filled with about 1 GiB of values (16 KiB each) and snapshot every
//! 20,000 entries. Then a follower is SIGKILLed and its directory
//! deleted, and while 8 clients keep writing 1 KiB values to the leader a
//! fresh node is added (`kontiki member add`), catches up through the
//! streamed snapshot and the log after it, and is promoted; the dead node
//! is removed.
//!
//! Reported per run: the time to fill the store; the time from the
//! addition until the newcomer has installed the snapshot and until it is
//! promoted; writes/s and latency p50/p99 in the 5 s before the addition
//! and during the transfer (addition to installation); and each node's
//! resident memory: before the transfer (the leader and the surviving
//! follower hold the whole store), its peak during the transfer (peaks
//! reset through `/proc/<pid>/clear_refs` at the addition), and for the
//! newcomer its resident memory once caught up. The goal is that no
//! node's peak exceeds its baseline by more than a few chunks (1 MiB
//! each): the snapshot is never held in memory, only the store it
//! rebuilds.
//!
//! `cargo bench -p kontiki-cli --bench large_state`; `KONTIKI_BENCH_RUNS`
//! (default 3) runs, `KONTIKI_BENCH_STORE_MIB` (default 1024) the store's
//! size; the last line gives the medians.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{kontiki, Client, ProcessCluster};
use kontiki_tests::load::{median, Samples, Window};

const VALUE_BYTES: usize = 16 * 1024;
const SNAPSHOT_INTERVAL: u64 = 20_000;
const LOADERS: usize = 4;
const PIPELINE: usize = 16;
const WRITERS: usize = 8;
const WRITE_BYTES: usize = 1024;
const BASELINE: Duration = Duration::from_secs(5);
/// How long a transfer may take before the run is called failed.
const TRANSFER_LIMIT: Duration = Duration::from_secs(600);

/// Resident memory of a process, from `/proc/<pid>/status`, in MiB.
#[derive(Clone, Copy, Debug, Default)]
struct Memory {
    rss_mib: f64,
    peak_mib: f64,
}

fn memory(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .map_or(0.0, |kib| kib / 1024.0)
    };
    Memory {
        rss_mib: field("VmRSS:"),
        peak_mib: field("VmHWM:"),
    }
}

/// Resets the peak resident memory (VmHWM) of a process to its current.
fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset the peak RSS");
}

/// A RESP SET command.
fn set_command(key: &[u8], value: &[u8], into: &mut Vec<u8>) {
    into.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
    for part in [key, value] {
        into.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        into.extend_from_slice(part);
        into.extend_from_slice(b"\r\n");
    }
}

/// Writes `keys` values of `VALUE_BYTES` to the leader at `leader`, over
/// `LOADERS` connections, each pipelining `PIPELINE` SETs; a batch not
/// wholly acknowledged goes again, to whichever node a `-MOVED` names.
/// Returns how many batches went again.
fn fill(leader: SocketAddr, keys: u64) -> u64 {
    let resent = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let loaders: Vec<_> = (0..LOADERS)
        .map(|_| {
            let (next, resent) = (Arc::clone(&next), Arc::clone(&resent));
            std::thread::spawn(move || {
                let connect = |target: SocketAddr| {
                    let stream = TcpStream::connect(target).expect("connect to the leader");
                    stream.set_nodelay(true).unwrap();
                    (stream.try_clone().unwrap(), BufReader::new(stream))
                };
                let (mut writer, mut reader) = connect(leader);
                let mut value = vec![0u8; VALUE_BYTES];
                let mut batch = Vec::new();
                let mut line = String::new();
                loop {
                    let first = next.fetch_add(PIPELINE as u64, Ordering::Relaxed);
                    if first >= keys {
                        return;
                    }
                    let last = keys.min(first + PIPELINE as u64);
                    batch.clear();
                    for key in first..last {
                        // Different bytes in every value, cheaply.
                        for (position, byte) in value.iter_mut().enumerate().step_by(64) {
                            *byte = (key as usize).wrapping_add(position) as u8;
                        }
                        set_command(format!("fill:{key:010}").as_bytes(), &value, &mut batch);
                    }
                    loop {
                        writer.write_all(&batch).expect("send SETs");
                        let mut moved_to = None;
                        let mut failed = false;
                        for _ in first..last {
                            line.clear();
                            reader.read_line(&mut line).expect("a reply");
                            if let Some(moved) = line.strip_prefix("-MOVED ") {
                                let address = moved.trim_end().rsplit(' ').next().unwrap();
                                moved_to = Some(address.parse().expect("MOVED names an address"));
                            }
                            failed |= line != "+OK\r\n";
                        }
                        if !failed {
                            break;
                        }
                        resent.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(20));
                        if let Some(target) = moved_to {
                            (writer, reader) = connect(target);
                        }
                    }
                }
            })
        })
        .collect();
    for loader in loaders {
        loader.join().expect("a loader");
    }
    resent.load(Ordering::Relaxed)
}

/// Starts `WRITERS` clients writing 1 KiB values to `leader`, one write
/// at a time each, until `stop`. A client sent elsewhere (`-MOVED`, a
/// new leader) follows; a write counts once acknowledged, its latency
/// including any redirection or retry.
fn start_writers(
    leader: SocketAddr,
    stop: &Arc<AtomicBool>,
    completions: &Samples,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..WRITERS)
        .map(|writer| {
            let (stop, completions) = (Arc::clone(stop), Arc::clone(completions));
            std::thread::spawn(move || {
                let mut target = leader;
                let mut client = None;
                let value = vec![b'w'; WRITE_BYTES];
                let mut sequence = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    sequence += 1;
                    let key = format!("write:{writer}:{sequence}");
                    let started = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        let connected = match client.as_mut() {
                            Some(client) => Ok(client),
                            None => Client::connect(target).map(|new| client.insert(new)),
                        };
                        let reply =
                            connected.and_then(|c| c.call(&[b"SET", key.as_bytes(), &value]));
                        match reply {
                            Ok(common::Reply::Simple(ok)) if ok == "OK" => {
                                let done = Instant::now();
                                completions.lock().unwrap().push((done, done - started));
                                break;
                            }
                            Ok(common::Reply::Error(error)) if error.starts_with("MOVED ") => {
                                let address = error.rsplit(' ').next().unwrap_or_default();
                                target = address.parse().expect("MOVED names an address");
                                client = None;
                            }
                            // No leader yet, or a connection lost: retry.
                            _ => {
                                client = None;
                                std::thread::sleep(Duration::from_millis(5));
                            }
                        }
                    }
                }
            })
        })
        .collect()
}

/// `INFO raft` of the node at `address`, if it answers.
fn info(address: SocketAddr) -> Option<HashMap<String, String>> {
    Client::connect(address)
        .and_then(|mut client| client.raft_info())
        .ok()
}

fn field(info: &HashMap<String, String>, name: &str) -> u64 {
    info.get(name)
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// Runs `kontiki <arguments>` until it succeeds, for at most
/// `TRANSFER_LIMIT` (`kontiki member promote` refuses a learner still
/// behind after a while of its own).
fn kontiki_command(arguments: &[&str]) {
    let started = Instant::now();
    loop {
        let output = kontiki().args(arguments).output().expect("run kontiki");
        if output.status.success() {
            return;
        }
        assert!(
            started.elapsed() < TRANSFER_LIMIT,
            "kontiki {arguments:?} failed: {}{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Total size of the files under `dir`, in MiB.
fn dir_mib(dir: &std::path::Path) -> f64 {
    let mut total = 0u64;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let metadata = entry.metadata().unwrap();
        total += if metadata.is_dir() {
            (dir_mib(&entry.path()) * 1024.0 * 1024.0) as u64
        } else {
            metadata.len()
        };
    }
    total as f64 / 1024.0 / 1024.0
}

#[derive(Clone, Copy)]
struct Figures {
    fill: Duration,
    installed_after: Duration,
    promoted_after: Duration,
    before: Window,
    during: Window,
    /// Leader, surviving follower: RSS before the transfer and the peak
    /// during it.
    leader: Memory,
    follower: Memory,
    /// The newcomer: RSS at the end and the peak.
    newcomer: Memory,
    snapshot_mib: f64,
}

fn run_once(store_mib: u64) -> Figures {
    let mut cluster =
        ProcessCluster::start_snapshotting(&["tokio", "tokio", "tokio"], SNAPSHOT_INTERVAL);
    let first_leader = cluster.wait_for_leader(None, Duration::from_secs(20));
    let first_client = cluster.nodes[first_leader as usize - 1].client;

    let keys = store_mib * 1024 * 1024 / VALUE_BYTES as u64;
    let filling = Instant::now();
    let resent = fill(first_client, keys);
    let fill_time = filling.elapsed();
    let leader = cluster.wait_for_leader(None, Duration::from_secs(20));
    let leader_client = cluster.nodes[leader as usize - 1].client;

    // Every node applies everything, and the leader has a snapshot of it
    // (or of nearly all: one is taken every interval).
    let leader_info = info(leader_client).expect("the leader answers");
    let (commit, first_term) = (
        field(&leader_info, "commit_index"),
        field(&leader_info, "term"),
    );
    eprintln!(
        "filled in {fill_time:?} ({resent} batches sent again), term {first_term}, \
         node {first_leader} led, node {leader} leads"
    );
    let settle = Instant::now();
    while cluster
        .client_addresses()
        .iter()
        .any(|&address| info(address).is_none_or(|info| field(&info, "applied_index") < commit))
    {
        assert!(
            settle.elapsed() < TRANSFER_LIMIT,
            "the followers never caught up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let completions: Samples = Arc::default();
    let writers = start_writers(leader_client, &stop, &completions);
    std::thread::sleep(BASELINE);

    // A follower dies and loses its directory.
    let dead = if leader == 1 { 2 } else { 1 };
    let survivor = (1..=3).find(|&id| id != leader && id != dead).unwrap();
    cluster.nodes[dead as usize - 1].kill();
    std::fs::remove_dir_all(cluster.data_dir(dead)).unwrap();
    let pid = |cluster: &ProcessCluster, id: u64| cluster.nodes[id as usize - 1].pid().unwrap();
    let leader_base = memory(pid(&cluster, leader));
    let follower_base = memory(pid(&cluster, survivor));
    reset_peak(pid(&cluster, leader));
    reset_peak(pid(&cluster, survivor));
    let leader_snapshot = field(&info(leader_client).unwrap(), "snapshot_index");

    let peer = cluster.start_joining(4);
    let newcomer_client = cluster.nodes[3].client;
    let added_at = Instant::now();
    let any = leader_client.to_string();
    kontiki_command(&[
        "member",
        "add",
        "4",
        &peer.to_string(),
        &newcomer_client.to_string(),
        "--node",
        &any,
    ]);
    loop {
        let installed = info(newcomer_client)
            .is_some_and(|info| field(&info, "snapshot_index") >= leader_snapshot);
        if installed {
            break;
        }
        assert!(
            added_at.elapsed() < TRANSFER_LIMIT,
            "the snapshot never arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let installed_at = Instant::now();
    eprintln!("installed after {:?}", installed_at - added_at);
    kontiki_command(&["member", "promote", "4", "--node", &any]);
    let promoted_after = added_at.elapsed();
    kontiki_command(&["member", "remove", &dead.to_string(), "--node", &any]);
    let newcomer = memory(pid(&cluster, 4));
    let leader_peak = memory(pid(&cluster, leader));
    let follower_peak = memory(pid(&cluster, survivor));
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().expect("a writer");
    }
    let snapshot_mib = dir_mib(&cluster.data_dir(4).join("snapshots"));
    let terms: Vec<u64> = cluster
        .client_addresses()
        .into_iter()
        .filter_map(info)
        .map(|info| field(&info, "term"))
        .collect();
    eprintln!("terms at the end {terms:?} (at the start {first_term})");
    let samples = completions.lock().unwrap().clone();
    let figures = Figures {
        fill: fill_time,
        installed_after: installed_at - added_at,
        promoted_after,
        before: Window::of(&samples, added_at - BASELINE, added_at),
        during: Window::of(&samples, added_at, installed_at),
        leader: Memory {
            rss_mib: leader_base.rss_mib,
            peak_mib: leader_peak.peak_mib,
        },
        follower: Memory {
            rss_mib: follower_base.rss_mib,
            peak_mib: follower_peak.peak_mib,
        },
        newcomer,
        snapshot_mib,
    };
    for node in &mut cluster.nodes {
        if node.is_running() {
            node.terminate(Duration::from_secs(30));
        }
    }
    figures
}

fn report(label: &str, figures: &Figures) {
    let memory = |memory: &Memory, from: &str| {
        format!(
            "{from} {:.0} -> peak {:.0} (+{:.0})",
            memory.rss_mib,
            memory.peak_mib,
            memory.peak_mib - memory.rss_mib
        )
    };
    println!(
        "{label}: filled in {:.1} s; snapshot {:.0} MiB installed after {:.2} s, promoted after {:.2} s; \
         writes/s (p50 / p99) before {}, during the transfer {}; RSS MiB {}, {}, {}",
        figures.fill.as_secs_f64(),
        figures.snapshot_mib,
        figures.installed_after.as_secs_f64(),
        figures.promoted_after.as_secs_f64(),
        figures.before,
        figures.during,
        memory(&figures.leader, "leader"),
        memory(&figures.follower, "follower"),
        memory(&figures.newcomer, "newcomer at rest"),
    );
}

fn main() {
    let number = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let runs = number("KONTIKI_BENCH_RUNS", 3).max(1);
    let store_mib = number("KONTIKI_BENCH_STORE_MIB", 1024);
    let all: Vec<Figures> = (0..runs)
        .map(|run| {
            let figures = run_once(store_mib);
            report(&format!("run {}", run + 1), &figures);
            figures
        })
        .collect();
    let before = Window::median_of(&all.iter().map(|f| f.before).collect::<Vec<_>>());
    let during = Window::median_of(&all.iter().map(|f| f.during).collect::<Vec<_>>());
    let mut all = all;
    let mut pick = |get: fn(&Figures) -> f64| get(&median(&mut all, get));
    let seconds = |value: f64| Duration::from_secs_f64(value);
    let fill = seconds(pick(|f| f.fill.as_secs_f64()));
    let installed_after = seconds(pick(|f| f.installed_after.as_secs_f64()));
    let promoted_after = seconds(pick(|f| f.promoted_after.as_secs_f64()));
    let mut memory = |rss: fn(&Figures) -> f64, peak: fn(&Figures) -> f64| Memory {
        rss_mib: pick(rss),
        peak_mib: pick(peak),
    };
    let leader = memory(|f| f.leader.rss_mib, |f| f.leader.peak_mib);
    let follower = memory(|f| f.follower.rss_mib, |f| f.follower.peak_mib);
    let newcomer = memory(|f| f.newcomer.rss_mib, |f| f.newcomer.peak_mib);
    let snapshot_mib = pick(|f| f.snapshot_mib);
    let medians = Figures {
        fill,
        installed_after,
        promoted_after,
        before,
        during,
        leader,
        follower,
        newcomer,
        snapshot_mib,
    };
    report(&format!("median of {runs}"), &medians);
}

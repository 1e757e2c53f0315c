//! MIT 6.824 (2022) Lab 2D — log compaction — on the simulator, with the
//! lab's constants in virtual time: SnapshotBasic, SnapshotInstall,
//! SnapshotInstallUnreliable, SnapshotInstallCrash,
//! SnapshotInstallUnCrash, SnapshotAllCrash and SnapshotInit.
//!
//! Every node snapshots its state machine each time it has applied the
//! lab's `SnapShotInterval` (10) entries past its last snapshot, and the
//! persisted state of every node must stay under the lab's `MAXLOGSIZE`
//! (2,000 bytes). Followers cut off or crashed while the others compact
//! can only catch up through the leader's InstallSnapshot, which the
//! tests check happened.

use kontiki::{Config, LogIndex, NodeId};
use kontiki_tests::mit::{
    check_one_leader, is_connected, lab_node_config, n_committed, one, start1,
};
use kontiki_tests::seeds::seeds;
use kontiki_tests::sim::{Cluster, ClusterConfig, NetworkConfig};
use rand_08::Rng;

/// The lab's `SnapShotInterval`.
const SNAPSHOT_INTERVAL: u64 = 10;
/// The lab's `MAXLOGSIZE`: the most persisted state a node may hold.
const MAX_LOG_SIZE: usize = 2000;
/// The lab's iterations per test.
const ITERATIONS: usize = 30;
const SERVERS: usize = 3;

/// The lab's `make_config(t, servers, !reliable, snapshot = true)`: the
/// lab has no no-op entries on election, and a node keeps no log behind
/// its snapshot.
fn snapshot_cluster(seed: u64, reliable: bool) -> Cluster {
    let config = ClusterConfig {
        node: Config {
            noop_on_election: false,
            compaction_lag: 0,
            ..lab_node_config()
        },
        network: if reliable {
            NetworkConfig::reliable()
        } else {
            NetworkConfig::unreliable()
        },
        snapshot_interval: Some(SNAPSHOT_INTERVAL),
        ..ClusterConfig::new(SERVERS)
    };
    Cluster::new(seed, config)
}

fn random_command(cluster: &mut Cluster) -> Vec<u8> {
    cluster.rng().gen::<u32>().to_be_bytes().to_vec()
}

/// The lab's `one(rand.Int(), expected, true)`: a random command agreed
/// on by `expected` nodes; returns its index.
fn one_random(cluster: &mut Cluster, expected: usize) -> LogIndex {
    let command = random_command(cluster);
    one(cluster, command, expected, true)
}

/// The lab's `LogSize()`: the largest persisted state of any node.
fn log_size(cluster: &Cluster) -> usize {
    let ids = cluster.ids().to_vec();
    ids.iter()
        .map(|&id| cluster.persisted_bytes(id))
        .max()
        .unwrap_or(0)
}

/// The lab's `snapcommon(name, disconnect, reliable, crash)`.
fn snapshot_common(seed: u64, disconnect: bool, reliable: bool, crash: bool) -> Cluster {
    let mut cluster = snapshot_cluster(seed, reliable);
    one_random(&mut cluster, SERVERS);
    let mut leader = check_one_leader(&mut cluster);
    for iteration in 0..ITERATIONS {
        let next = |id: NodeId| NodeId(id.get() % SERVERS as u64 + 1);
        let (mut victim, mut sender) = (next(leader), leader);
        if iteration % 3 == 1 {
            (sender, victim) = (next(leader), leader);
        }
        if disconnect {
            cluster.isolate(victim);
            one_random(&mut cluster, SERVERS - 1);
        }
        if crash {
            cluster.crash(victim);
            one_random(&mut cluster, SERVERS - 1);
        }
        // Enough commands for a snapshot, sent to a node that may not lead.
        let burst = SNAPSHOT_INTERVAL / 2 + cluster.rng().gen_range(0..SNAPSHOT_INTERVAL);
        for _ in 0..burst {
            let command = random_command(&mut cluster);
            let _ = cluster.propose(sender, command);
        }
        let expected = if disconnect || crash {
            SERVERS - 1
        } else {
            SERVERS
        };
        one_random(&mut cluster, expected);
        let size = log_size(&cluster);
        cluster.check(
            size < MAX_LOG_SIZE,
            format!("persisted state too large: {size} bytes"),
        );
        if disconnect {
            cluster.reconnect(victim);
            one_random(&mut cluster, SERVERS);
            leader = check_one_leader(&mut cluster);
        }
        if crash {
            start1(&mut cluster, victim);
            one_random(&mut cluster, SERVERS);
            leader = check_one_leader(&mut cluster);
        }
    }
    cluster
}

/// Runs `snapshot_common` over the seeds; with a victim, checks that some
/// seed needed a snapshot sent (the victim fell behind the compaction).
fn snapshot_suite(disconnect: bool, reliable: bool, crash: bool) {
    let (mut snapshots_sent, mut entries) = (0, 0);
    for seed in seeds(8) {
        let cluster = snapshot_common(seed, disconnect, reliable, crash);
        snapshots_sent += cluster.total_traffic().snapshots;
        entries += cluster.checker().applied_history().len();
    }
    println!("{entries} entries committed, {snapshots_sent} snapshots sent");
    if disconnect || crash {
        assert!(snapshots_sent > 0, "no follower ever needed a snapshot");
    }
}

#[test]
fn snapshot_basic_2d() {
    snapshot_suite(false, true, false);
}

#[test]
fn snapshot_install_2d() {
    snapshot_suite(true, true, false);
}

#[test]
fn snapshot_install_unreliable_2d() {
    snapshot_suite(true, false, false);
}

#[test]
fn snapshot_install_crash_2d() {
    snapshot_suite(false, true, true);
}

#[test]
fn snapshot_install_uncrash_2d() {
    snapshot_suite(false, false, true);
}

/// The lab's TestSnapshotAllCrash2D: every node crashes and restarts
/// between bursts; the cluster carries on from its snapshots.
#[test]
fn snapshot_all_crash_2d() {
    for seed in seeds(8) {
        let mut cluster = snapshot_cluster(seed, false);
        one_random(&mut cluster, SERVERS);
        for _ in 0..5 {
            // Perhaps enough to get a snapshot.
            let burst = SNAPSHOT_INTERVAL / 2 + cluster.rng().gen_range(0..SNAPSHOT_INTERVAL);
            for _ in 0..burst {
                one_random(&mut cluster, SERVERS);
            }
            let first = one_random(&mut cluster, SERVERS);
            for id in cluster.ids().to_vec() {
                cluster.crash(id);
            }
            for id in cluster.ids().to_vec() {
                cluster.restart(id);
            }
            let after = one_random(&mut cluster, SERVERS);
            cluster.check(
                after > first,
                format!("index decreased from {first} to {after}"),
            );
        }
    }
}

/// The lab's TestSnapshotInit2D: a node restarted on a snapshot starts
/// from it — its state machine is restored, not rebuilt from the log —
/// and the cluster goes on.
#[test]
fn snapshot_init_2d() {
    for seed in seeds(8) {
        let mut cluster = snapshot_cluster(seed, false);
        one_random(&mut cluster, SERVERS);
        // Enough ops to make a snapshot.
        for _ in 0..=SNAPSHOT_INTERVAL {
            one_random(&mut cluster, SERVERS);
        }
        for round in 0..2 {
            for id in cluster.ids().to_vec() {
                cluster.crash(id);
            }
            for id in cluster.ids().to_vec() {
                cluster.restart(id);
                let node = cluster.node(id).expect("restarted");
                let snapshot = node.snapshot_index();
                cluster.check(
                    snapshot >= LogIndex(SNAPSHOT_INTERVAL)
                        && node.applied_index() == snapshot
                        && node.entries().first().is_none_or(|e| e.index > snapshot),
                    format!(
                        "restart {round}: n{id} came back with snapshot {snapshot}, applied {}",
                        node.applied_index()
                    ),
                );
            }
            one_random(&mut cluster, SERVERS);
        }
        let connected = cluster
            .ids()
            .iter()
            .filter(|&&id| is_connected(&cluster, id))
            .count();
        let last = cluster.checker().applied_history().len() as u64;
        let (count, _) = n_committed(&cluster, LogIndex(last));
        cluster.check(
            count == connected,
            format!("{count} of {connected} nodes applied the last entry"),
        );
    }
}

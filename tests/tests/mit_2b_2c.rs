//! MIT 6.824 (2022) Lab 2B and 2C, on the simulator, with the lab's
//! constants, in virtual time. (More of the lab's tests are ported as the
//! replication work continues.)

use std::time::Duration;

use kontiki::{LogIndex, NodeId};
use kontiki_tests::mit::{check_one_leader, lab_cluster, n_committed, one, ELECTION_TIMEOUT_UNIT};
use kontiki_tests::seeds::seeds;
use rand::Rng;

fn command(cluster: &mut kontiki_tests::sim::Cluster) -> Vec<u8> {
    cluster.rng().gen::<u32>().to_be_bytes().to_vec()
}

#[test]
fn basic_agree_2b() {
    for seed in seeds(200) {
        let servers = 3;
        // The lab numbers commands from 1: no no-op entry on election.
        let mut cluster = lab_cluster_without_noop(seed, servers, false);
        for index in 1..4u64 {
            let (count, _) = n_committed(&cluster, LogIndex(index));
            cluster.check(count == 0, "some have committed before Start()");
            let command = command(&mut cluster);
            let got = one(&mut cluster, command, servers, false);
            cluster.check(
                got == LogIndex(index),
                format!("got index {got} but expected {index}"),
            );
        }
    }
}

#[test]
fn fail_agree_2b() {
    for seed in seeds(200) {
        let servers = 3;
        let mut cluster = lab_cluster(seed, servers, false);
        let c = command(&mut cluster);
        one(&mut cluster, c, servers, false);
        // Disconnect one follower from the network.
        let leader = check_one_leader(&mut cluster);
        let follower = NodeId(leader.get() % servers as u64 + 1);
        cluster.isolate(follower);
        // The leader and the remaining follower should be able to agree
        // despite the disconnected follower.
        for _ in 0..4 {
            let c = command(&mut cluster);
            one(&mut cluster, c, servers - 1, false);
        }
        cluster.run_for(ELECTION_TIMEOUT_UNIT);
        let c = command(&mut cluster);
        one(&mut cluster, c, servers - 1, false);
        // Re-connect: it catches up.
        cluster.reconnect(follower);
        let c = command(&mut cluster);
        one(&mut cluster, c, servers, true);
        cluster.run_for(ELECTION_TIMEOUT_UNIT);
        let c = command(&mut cluster);
        one(&mut cluster, c, servers, true);
    }
}

#[test]
fn fail_no_agree_2b() {
    for seed in seeds(200) {
        let servers = 5;
        let mut cluster = lab_cluster(seed, servers, false);
        let c = command(&mut cluster);
        one(&mut cluster, c, servers, false);
        // Three of five followers disconnect.
        let leader = check_one_leader(&mut cluster);
        for offset in 1..=3 {
            cluster.isolate(NodeId((leader.get() - 1 + offset) % servers as u64 + 1));
        }
        let c = command(&mut cluster);
        let Ok((index, _)) = cluster.propose(leader, c) else {
            cluster.fail("leader rejected the proposal");
        };
        cluster.run_for(2 * ELECTION_TIMEOUT_UNIT);
        let (count, _) = n_committed(&cluster, index);
        cluster.check(count == 0, format!("{count} committed without a majority"));
        // Repair.
        cluster.heal();
        // The disconnected majority may have chosen a leader from among
        // their own ranks, forgetting the entry; or the old leader is still
        // leader: either way, agreement resumes.
        let c = command(&mut cluster);
        one(&mut cluster, c, servers, true);
    }
}

/// Lab 2C's Figure 8: leaders crash right after accepting a command, at
/// random moments, with at most two nodes down at once; at the end the
/// cluster must still agree on a new command. Entries of old terms must
/// never be counted committed by replicas alone (Raft Figure 8).
#[test]
fn figure_8_2c() {
    for seed in seeds(30) {
        let servers = 5;
        let mut cluster = lab_cluster(seed, servers, false);
        let c = command(&mut cluster);
        one(&mut cluster, c, 1, true);
        let mut up = servers;
        for _ in 0..1000 {
            let mut leader = None;
            for id in cluster.ids().to_vec() {
                let c = command(&mut cluster);
                if cluster.propose(id, c).is_ok() {
                    leader = Some(id);
                }
            }
            let pause = if cluster.rng().gen_range(0..1000) < 100 {
                Duration::from_millis(
                    cluster
                        .rng()
                        .gen_range(0..ELECTION_TIMEOUT_UNIT.as_millis() as u64 / 2),
                )
            } else {
                Duration::from_millis(cluster.rng().gen_range(0..13))
            };
            cluster.run_for(pause);
            if let Some(leader) = leader {
                cluster.crash(leader);
                up -= 1;
            }
            if up < 3 {
                let candidate = NodeId(cluster.rng().gen_range(1..=servers as u64));
                if !cluster.is_running(candidate) {
                    cluster.restart(candidate);
                    up += 1;
                }
            }
        }
        for id in cluster.ids().to_vec() {
            cluster.restart(id);
        }
        let c = command(&mut cluster);
        one(&mut cluster, c, servers, true);
    }
}

fn lab_cluster_without_noop(
    seed: u64,
    servers: usize,
    unreliable: bool,
) -> kontiki_tests::sim::Cluster {
    use kontiki_tests::sim::{Cluster, ClusterConfig, NetworkConfig};
    let config = ClusterConfig {
        node: kontiki::Config {
            noop_on_election: false,
            ..kontiki_tests::mit::lab_node_config()
        },
        network: if unreliable {
            NetworkConfig::unreliable()
        } else {
            NetworkConfig::reliable()
        },
        ..ClusterConfig::new(servers)
    };
    Cluster::new(seed, config)
}

//! MIT 6.824 (2022) Lab 2B and 2C, on the simulator, with the lab's
//! constants, in virtual time: BasicAgree, RPCBytes, FailAgree,
//! FailNoAgree, ConcurrentStarts, Rejoin, Backup, Count, Persist1-3,
//! Figure8, UnreliableAgree, Figure8Unreliable (with labrpc's long
//! reordering of replies), ReliableChurn and UnreliableChurn.

use std::time::Duration;

use kontiki::{LogIndex, NodeId};
use kontiki_tests::mit::{
    check_one_leader, int_command, lab_cluster, n_committed, one, start1, wait,
    ELECTION_TIMEOUT_UNIT,
};
use kontiki_tests::seeds::seeds;
use kontiki_tests::sim::NetworkConfig;
use rand_08::Rng;

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
    for seed in seeds(100) {
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
            figure_8_pause(&mut cluster);
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
    let node = kontiki::Config {
        noop_on_election: false,
        ..kontiki_tests::mit::lab_node_config()
    };
    kontiki_tests::mit::lab_cluster_with(seed, servers, unreliable, node)
}

/// The lab's server `i` (from 0, taken modulo `servers`) as a node id.
fn server(index: u64, servers: usize) -> NodeId {
    NodeId(index % servers as u64 + 1)
}

/// A leader's id as the lab's index (from 0).
fn index_of(id: NodeId) -> u64 {
    id.get() - 1
}

#[test]
fn rejoin_2b() {
    for seed in seeds(200) {
        let servers = 3;
        let mut cluster = lab_cluster(seed, servers, false);
        one(&mut cluster, int_command(101), servers, true);
        // The leader's network fails.
        let leader1 = check_one_leader(&mut cluster);
        cluster.isolate(leader1);
        // Make the old leader try to agree on some entries.
        for value in [102, 103, 104] {
            let _ = cluster.propose(leader1, int_command(value));
        }
        // The new leader commits, also for index 2.
        one(&mut cluster, int_command(103), 2, true);
        // The new leader's network fails; the old one comes back.
        let leader2 = check_one_leader(&mut cluster);
        cluster.isolate(leader2);
        cluster.reconnect(leader1);
        one(&mut cluster, int_command(104), 2, true);
        // All together now.
        cluster.reconnect(leader2);
        one(&mut cluster, int_command(105), servers, true);
    }
}

#[test]
fn backup_2b() {
    for seed in seeds(100) {
        let servers = 5;
        let mut cluster = lab_cluster(seed, servers, false);
        let c = command(&mut cluster);
        one(&mut cluster, c, servers, true);
        // Put the leader and one follower in a partition.
        let leader1 = index_of(check_one_leader(&mut cluster));
        for offset in 2..5 {
            cluster.isolate(server(leader1 + offset, servers));
        }
        // Submit lots of commands that won't commit.
        for _ in 0..50 {
            let c = command(&mut cluster);
            let _ = cluster.propose(server(leader1, servers), c);
        }
        cluster.run_for(ELECTION_TIMEOUT_UNIT / 2);
        cluster.isolate(server(leader1, servers));
        cluster.isolate(server(leader1 + 1, servers));
        // Allow the other partition to recover.
        for offset in 2..5 {
            cluster.reconnect(server(leader1 + offset, servers));
        }
        // Lots of successful commands to the new group.
        for _ in 0..50 {
            let c = command(&mut cluster);
            one(&mut cluster, c, 3, true);
        }
        // Now another partitioned leader and one follower.
        let leader2 = index_of(check_one_leader(&mut cluster));
        let mut other = (leader1 + 2) % servers as u64;
        if leader2 == other {
            other = (leader2 + 1) % servers as u64;
        }
        cluster.isolate(server(other, servers));
        // Lots more commands that won't commit.
        for _ in 0..50 {
            let c = command(&mut cluster);
            let _ = cluster.propose(server(leader2, servers), c);
        }
        cluster.run_for(ELECTION_TIMEOUT_UNIT / 2);
        // Bring the original leader back to life.
        for i in 0..servers as u64 {
            cluster.isolate(server(i, servers));
        }
        cluster.reconnect(server(leader1, servers));
        cluster.reconnect(server(leader1 + 1, servers));
        cluster.reconnect(server(other, servers));
        // Lots of successful commands to the new group.
        for _ in 0..50 {
            let c = command(&mut cluster);
            one(&mut cluster, c, 3, true);
        }
        // Now everyone.
        cluster.heal();
        let c = command(&mut cluster);
        one(&mut cluster, c, servers, true);
    }
}

#[test]
fn concurrent_starts_2b() {
    for seed in seeds(200) {
        let servers = 3;
        let mut cluster = lab_cluster(seed, servers, false);
        let mut success = false;
        for attempt in 0..5 {
            if attempt > 0 {
                // Give the solution some time to settle.
                cluster.run_for(Duration::from_secs(3));
            }
            let leader = check_one_leader(&mut cluster);
            let Ok((_, term)) = cluster.propose(leader, int_command(1)) else {
                continue; // leader moved on really quickly
            };
            let mut started = Vec::new();
            for value in 100..105 {
                if let Ok((index, t)) = cluster.propose(leader, int_command(value)) {
                    if t == term {
                        started.push((index, int_command(value)));
                    }
                }
            }
            let mut committed = Vec::new();
            let mut moved_on = false;
            for (index, _) in &started {
                match wait(&mut cluster, *index, servers, Some(term)) {
                    Some(command) => committed.push(command),
                    None => moved_on = true,
                }
            }
            if moved_on || started.len() != 5 {
                continue;
            }
            for (_, command) in &started {
                cluster.check(
                    committed.contains(command),
                    format!("command {command:?} missing"),
                );
            }
            success = true;
            break;
        }
        cluster.check(success, "term changed too often");
    }
}

/// Lab 2B's TestCount, replication part: at most (12 + 3) x 3 = 42 RPCs
/// (requests, as labrpc counts them) to agree on 12 commands, and at most
/// 60 in an idle second.
#[test]
fn count_2b() {
    let (mut worst_used, mut worst_idle) = (0, 0);
    for seed in seeds(200) {
        let servers = 3;
        let mut cluster = lab_cluster(seed, servers, false);
        check_one_leader(&mut cluster);
        let mut success = false;
        let iterations = 10u64;
        let mut total2 = 0;
        for attempt in 0..5 {
            if attempt > 0 {
                cluster.run_for(Duration::from_secs(3));
            }
            let leader = check_one_leader(&mut cluster);
            let total1 = cluster.total_traffic().requests;
            let Ok((start_index, term)) = cluster.propose(leader, int_command(1)) else {
                continue;
            };
            let mut commands = Vec::new();
            let mut retry = false;
            for i in 1..iterations + 2 {
                let value = cluster.rng().gen::<u32>() as u64;
                commands.push(int_command(value));
                match cluster.propose(leader, int_command(value)) {
                    Ok((index, t)) if t == term => {
                        cluster.check(index.get() == start_index.get() + i, "Start() failed");
                    }
                    _ => {
                        retry = true;
                        break;
                    }
                }
            }
            if retry {
                continue;
            }
            for i in 1..iterations + 1 {
                match wait(
                    &mut cluster,
                    LogIndex(start_index.get() + i),
                    servers,
                    Some(term),
                ) {
                    Some(command) => cluster.check(
                        command == commands[(i - 1) as usize],
                        "wrong value committed",
                    ),
                    None => retry = true,
                }
            }
            let moved = cluster
                .ids()
                .iter()
                .any(|&id| cluster.node(id).is_some_and(|node| node.term() != term));
            if retry || moved {
                continue;
            }
            total2 = cluster.total_traffic().requests;
            let used = total2 - total1;
            let budget = (iterations + 1 + 3) * 3;
            cluster.check(
                used <= budget,
                format!("too many RPCs ({used}) for {iterations} entries; budget {budget}"),
            );
            worst_used = worst_used.max(used);
            success = true;
            break;
        }
        cluster.check(success, "term changed too often");
        cluster.run_for(ELECTION_TIMEOUT_UNIT);
        let idle = cluster.total_traffic().requests - total2;
        cluster.check(
            idle <= 3 * 20,
            format!("too many RPCs ({idle}) for 1 second of idleness"),
        );
        worst_idle = worst_idle.max(idle);
    }
    println!(
        "count: worst {worst_used} RPCs for 12 commands (budget 42), \
         {worst_idle} per idle second (budget 60)"
    );
}

/// Lab 2B's TestRPCBytes: ten 5000-byte commands on three nodes cost at
/// most 200,000 bytes on the wire (the lab's `servers * sent + 50000`),
/// measured with kontiki's real encoding.
#[test]
fn rpc_bytes_2b() {
    let mut worst = 0;
    for seed in seeds(200) {
        let servers = 3;
        let mut cluster = lab_cluster(seed, servers, false);
        one(&mut cluster, int_command(99), servers, false);
        let bytes0 = cluster.total_traffic().bytes;
        let mut sent = 0;
        for _ in 2..12 {
            let command: Vec<u8> = (0..5000).map(|_| cluster.rng().gen()).collect();
            sent += command.len() as u64;
            one(&mut cluster, command, servers, false);
        }
        let got = cluster.total_traffic().bytes - bytes0;
        // Every node persisted the commands, and little else.
        for id in cluster.ids().to_vec() {
            let persisted = cluster.persisted_bytes(id) as u64;
            cluster.check(
                (sent..sent + 1_000).contains(&persisted),
                format!("n{id} persisted {persisted} bytes for {sent} bytes of commands"),
            );
        }
        let expected = servers as u64 * sent;
        cluster.check(
            got <= expected + 50_000,
            format!("too many RPC bytes; got {got}, expected {expected}"),
        );
        worst = worst.max(got);
    }
    println!("rpc bytes: worst {worst} bytes for ten 5000-byte commands (budget 200000)");
}

#[test]
fn persist_1_2c() {
    for seed in seeds(100) {
        let servers = 3;
        let mut cluster = lab_cluster(seed, servers, false);
        one(&mut cluster, int_command(11), servers, true);
        // Crash and re-start all.
        for id in cluster.ids().to_vec() {
            start1(&mut cluster, id);
        }
        one(&mut cluster, int_command(12), servers, true);
        let leader1 = check_one_leader(&mut cluster);
        start1(&mut cluster, leader1);
        one(&mut cluster, int_command(13), servers, true);
        let leader2 = check_one_leader(&mut cluster);
        cluster.isolate(leader2);
        one(&mut cluster, int_command(14), servers - 1, true);
        start1(&mut cluster, leader2);
        cluster.reconnect(leader2);
        // Wait for leader2 to join before killing i3.
        wait(&mut cluster, LogIndex(4), servers, None);
        let i3 = server(index_of(check_one_leader(&mut cluster)) + 1, servers);
        cluster.isolate(i3);
        one(&mut cluster, int_command(15), servers - 1, true);
        start1(&mut cluster, i3);
        cluster.reconnect(i3);
        one(&mut cluster, int_command(16), servers, true);
    }
}

#[test]
fn persist_2_2c() {
    for seed in seeds(100) {
        let servers = 5;
        let mut cluster = lab_cluster(seed, servers, false);
        let mut index = 1;
        for _ in 0..5 {
            one(&mut cluster, int_command(10 + index), servers, true);
            index += 1;
            let leader1 = index_of(check_one_leader(&mut cluster));
            cluster.isolate(server(leader1 + 1, servers));
            cluster.isolate(server(leader1 + 2, servers));
            one(&mut cluster, int_command(10 + index), servers - 2, true);
            index += 1;
            for offset in [0, 3, 4] {
                cluster.isolate(server(leader1 + offset, servers));
            }
            for offset in [1, 2] {
                start1(&mut cluster, server(leader1 + offset, servers));
                cluster.reconnect(server(leader1 + offset, servers));
            }
            cluster.run_for(ELECTION_TIMEOUT_UNIT);
            start1(&mut cluster, server(leader1 + 3, servers));
            cluster.reconnect(server(leader1 + 3, servers));
            one(&mut cluster, int_command(10 + index), servers - 2, true);
            index += 1;
            cluster.reconnect(server(leader1 + 4, servers));
            cluster.reconnect(server(leader1, servers));
        }
        one(&mut cluster, int_command(1000), servers, true);
    }
}

#[test]
fn persist_3_2c() {
    for seed in seeds(100) {
        let servers = 3;
        let mut cluster = lab_cluster(seed, servers, false);
        one(&mut cluster, int_command(101), 3, true);
        let leader = index_of(check_one_leader(&mut cluster));
        cluster.isolate(server(leader + 2, servers));
        one(&mut cluster, int_command(102), 2, true);
        cluster.crash(server(leader, servers));
        cluster.crash(server(leader + 1, servers));
        cluster.reconnect(server(leader + 2, servers));
        cluster.restart(server(leader, servers));
        one(&mut cluster, int_command(103), 2, true);
        cluster.restart(server(leader + 1, servers));
        one(&mut cluster, int_command(104), servers, true);
    }
}

#[test]
fn unreliable_agree_2c() {
    for seed in seeds(100) {
        let servers = 5;
        let mut cluster = lab_cluster(seed, servers, true);
        for iteration in 1..50 {
            for j in 0..4 {
                one(&mut cluster, int_command(100 * iteration + j), 1, true);
            }
            one(&mut cluster, int_command(iteration), 1, true);
        }
        cluster.set_network(kontiki_tests::sim::NetworkConfig::reliable());
        one(&mut cluster, int_command(100), servers, true);
    }
}

/// Lab 2C's Figure 8 (unreliable): as Figure 8, on the unreliable network,
/// with labrpc's long reordering of replies from the 200th iteration on;
/// leaders are disconnected rather than crashed.
#[test]
fn figure_8_unreliable_2c() {
    for seed in seeds(100) {
        let servers = 5;
        let mut cluster = lab_cluster(seed, servers, true);
        let c = int_command(cluster.rng().gen_range(0..10_000));
        one(&mut cluster, c, 1, true);
        let mut up = servers;
        for iteration in 0..1000 {
            if iteration == 200 {
                cluster.set_network(NetworkConfig::unreliable().with_long_reordering());
            }
            let mut leader = None;
            for id in cluster.ids().to_vec() {
                let c = int_command(cluster.rng().gen_range(0..10_000));
                if cluster.propose(id, c).is_ok() && !cluster.is_isolated(id) {
                    leader = Some(id);
                }
            }
            figure_8_pause(&mut cluster);
            if let Some(leader) = leader {
                if cluster.rng().gen_range(0..1000) < ELECTION_TIMEOUT_UNIT.as_millis() as u64 / 2 {
                    cluster.isolate(leader);
                    up -= 1;
                }
            }
            if up < 3 {
                let candidate = NodeId(cluster.rng().gen_range(1..=servers as u64));
                if cluster.is_isolated(candidate) {
                    cluster.reconnect(candidate);
                    up += 1;
                }
            }
        }
        cluster.heal();
        let c = int_command(cluster.rng().gen_range(0..10_000));
        one(&mut cluster, c, servers, true);
    }
}

/// One of the lab's churn clients: submits a random value to every node,
/// then checks with backoff whether it committed.
enum ChurnClient {
    Idle {
        until: kontiki::Instant,
    },
    Waiting {
        index: LogIndex,
        value: Vec<u8>,
        checks_done: usize,
        next_check: kontiki::Instant,
    },
}

/// The lab's backoff between commit checks, in milliseconds.
const CHURN_BACKOFF_MS: [u64; 5] = [10, 20, 50, 100, 200];

fn churn_client_step(
    cluster: &mut kontiki_tests::sim::Cluster,
    me: u64,
    client: &mut ChurnClient,
    values: &mut Vec<Vec<u8>>,
) {
    let now = cluster.now();
    match client {
        ChurnClient::Idle { until } if now >= *until => {
            let value = int_command(cluster.rng().gen::<u32>() as u64);
            let mut submitted = None;
            for id in cluster.ids().to_vec() {
                if let Ok((index, _)) = cluster.propose(id, value.clone()) {
                    submitted = Some(index);
                }
            }
            *client = match submitted {
                Some(index) => ChurnClient::Waiting {
                    index,
                    value,
                    checks_done: 0,
                    next_check: now,
                },
                None => ChurnClient::Idle {
                    until: now + Duration::from_millis(79 + me * 17),
                },
            };
        }
        ChurnClient::Waiting {
            index,
            value,
            checks_done,
            next_check,
        } if now >= *next_check => {
            let (count, command) = n_committed(cluster, *index);
            if count > 0 {
                if command.as_deref() == Some(&value[..]) {
                    values.push(value.clone());
                }
                *client = ChurnClient::Idle { until: now };
            } else if *checks_done == CHURN_BACKOFF_MS.len() {
                *client = ChurnClient::Idle { until: now };
            } else {
                *next_check = now + Duration::from_millis(CHURN_BACKOFF_MS[*checks_done]);
                *checks_done += 1;
            }
        }
        _ => {}
    }
}

/// The lab's internalChurn: three clients write all the time while nodes
/// are disconnected, crashed and restarted at random; every value a client
/// saw committed must be in the final log.
fn churn(seed: u64, unreliable: bool) {
    let servers = 5;
    let mut cluster = lab_cluster(seed, servers, unreliable);
    let mut clients: Vec<ChurnClient> = (0..3)
        .map(|_| ChurnClient::Idle {
            until: cluster.now(),
        })
        .collect();
    let mut values = Vec::new();
    let run_clients = |cluster: &mut kontiki_tests::sim::Cluster,
                       clients: &mut Vec<ChurnClient>,
                       values: &mut Vec<Vec<u8>>,
                       duration: Duration| {
        let end = cluster.now() + duration;
        while cluster.now() < end {
            for (me, client) in clients.iter_mut().enumerate() {
                churn_client_step(cluster, me as u64, client, values);
            }
            cluster.run_for(Duration::from_millis(1));
        }
    };
    for _ in 0..20 {
        if cluster.rng().gen_range(0..1000) < 200 {
            let id = NodeId(cluster.rng().gen_range(1..=servers as u64));
            cluster.isolate(id);
        }
        if cluster.rng().gen_range(0..1000) < 500 {
            let id = NodeId(cluster.rng().gen_range(1..=servers as u64));
            if !cluster.is_running(id) {
                cluster.restart(id);
            }
            cluster.reconnect(id);
        }
        if cluster.rng().gen_range(0..1000) < 200 {
            let id = NodeId(cluster.rng().gen_range(1..=servers as u64));
            if cluster.is_running(id) {
                cluster.crash(id);
                cluster.isolate(id);
            }
        }
        run_clients(
            &mut cluster,
            &mut clients,
            &mut values,
            ELECTION_TIMEOUT_UNIT * 7 / 10,
        );
    }
    run_clients(
        &mut cluster,
        &mut clients,
        &mut values,
        ELECTION_TIMEOUT_UNIT,
    );
    cluster.set_network(NetworkConfig::reliable());
    for id in cluster.ids().to_vec() {
        cluster.restart(id);
        cluster.reconnect(id);
    }
    let c = int_command(cluster.rng().gen::<u32>() as u64);
    let last_index = one(&mut cluster, c, servers, true);
    let mut really = Vec::new();
    for index in 1..=last_index.get() {
        if let Some(command) = wait(&mut cluster, LogIndex(index), servers, None) {
            really.push(command);
        }
    }
    for value in &values {
        cluster.check(
            really.contains(value),
            format!("didn't find a value {value:?}"),
        );
    }
    cluster.check(!values.is_empty(), "no client saw anything commit");
}

#[test]
fn reliable_churn_2c() {
    for seed in seeds(100) {
        churn(seed, false);
    }
}

#[test]
fn unreliable_churn_2c() {
    for seed in seeds(100) {
        churn(seed, true);
    }
}

/// Figure 8's pause between rounds: mostly a few milliseconds, one time in
/// ten up to half an election timeout.
fn figure_8_pause(cluster: &mut kontiki_tests::sim::Cluster) {
    let half_timeout = ELECTION_TIMEOUT_UNIT.as_millis() as u64 / 2;
    let millis = if cluster.rng().gen_range(0..1000) < 100 {
        cluster.rng().gen_range(0..half_timeout)
    } else {
        cluster.rng().gen_range(0..13)
    };
    cluster.run_for(Duration::from_millis(millis));
}

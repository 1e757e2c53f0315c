//! MIT 6.824 (2022) Lab 2A, on the simulator, with the lab's constants:
//! `RaftElectionTimeout` of 1000 ms, `checkOneLeader` polling up to ten
//! times 450–550 ms apart, at most ten heartbeats per second. Each test runs
//! for many seeds; a failure names its seed (`KONTIKI_SEED` replays it).
//!
//! The lab counts RPCs (requests) in `rpcCount`; the simulator counts both
//! requests and all messages, and the budgets below hold for messages,
//! which is the stricter reading.

use std::time::Duration;

use kontiki::NodeId;
use kontiki_tests::mit::{
    check_no_leader, check_one_leader, check_terms, lab_cluster, ELECTION_TIMEOUT_UNIT,
};
use kontiki_tests::seeds::seeds;
use rand_08::Rng;

const SEEDS: u64 = 1_000;

/// The lab's server index `i` (from 0) as our node id.
fn server(index: usize) -> NodeId {
    NodeId(index as u64 + 1)
}

#[test]
fn initial_election_2a() {
    for seed in seeds(SEEDS) {
        let mut cluster = lab_cluster(seed, 3, false);
        check_one_leader(&mut cluster);

        // Sleep a bit to avoid racing with followers learning of the election.
        cluster.run_for(Duration::from_millis(50));
        let term1 = check_terms(&cluster);
        cluster.check(
            term1.get() >= 1,
            format!("term is {term1}, but should be at least 1"),
        );

        // Without failures, the leader and term stay as they are.
        cluster.run_for(2 * ELECTION_TIMEOUT_UNIT);
        let term2 = check_terms(&cluster);
        cluster.check(
            term1 == term2,
            format!("term changed from {term1} to {term2} even though there were no failures"),
        );

        // There should still be a leader.
        check_one_leader(&mut cluster);
    }
}

#[test]
fn re_election_2a() {
    for seed in seeds(SEEDS) {
        let servers = 3;
        let mut cluster = lab_cluster(seed, servers, false);
        let leader1 = check_one_leader(&mut cluster);

        // If the leader disconnects, a new one should be elected.
        cluster.isolate(leader1);
        check_one_leader(&mut cluster);

        // If the old leader rejoins, that shouldn't disturb the new leader.
        cluster.reconnect(leader1);
        let leader2 = check_one_leader(&mut cluster);

        // If there's no quorum, no new leader should be elected.
        let index2 = (leader2.get() - 1) as usize;
        cluster.isolate(leader2);
        cluster.isolate(server((index2 + 1) % servers));
        cluster.run_for(2 * ELECTION_TIMEOUT_UNIT);

        // Check that the one connected server does not think it is the leader.
        check_no_leader(&cluster);

        // If a quorum arises, it should elect a leader.
        cluster.reconnect(server((index2 + 1) % servers));
        check_one_leader(&mut cluster);

        // Re-join of the last node shouldn't prevent leader from existing.
        cluster.reconnect(leader2);
        check_one_leader(&mut cluster);
    }
}

#[test]
fn many_elections_2a() {
    for seed in seeds(SEEDS) {
        let servers = 7;
        let mut cluster = lab_cluster(seed, servers, false);
        check_one_leader(&mut cluster);

        let iterations = 10;
        for _ in 1..iterations {
            // Disconnect three nodes (possibly the same one twice).
            let picks: Vec<NodeId> = (0..3)
                .map(|_| server(cluster.rng().gen_range(0..servers)))
                .collect();
            for &id in &picks {
                cluster.isolate(id);
            }

            // Either the current leader should still be alive, or the
            // remaining four should elect a new one.
            check_one_leader(&mut cluster);

            for &id in &picks {
                cluster.reconnect(id);
            }
        }
        check_one_leader(&mut cluster);
    }
}

/// Lab 2B's TestCount, election part: at most 30 RPCs by the time
/// `checkOneLeader` returns, and at most 60 in an idle second (3 nodes).
#[test]
fn election_message_budgets_2b() {
    let (mut worst_election, mut worst_requests, mut worst_idle, mut worst_idle_bytes) =
        (0, 0, 0, 0);
    for seed in seeds(SEEDS) {
        let mut cluster = lab_cluster(seed, 3, false);

        // Messages (requests and responses) until the first leader exists.
        let elected = cluster.run_until_condition(5 * ELECTION_TIMEOUT_UNIT, |cluster| {
            cluster.ids().iter().any(|&id| {
                cluster
                    .node(id)
                    .is_some_and(|node| node.leader() == Some(id))
            })
        });
        cluster.check(elected, "no leader within 5 s");
        let until_leader = cluster.total_traffic().messages;
        cluster.check(
            until_leader <= 30,
            format!("{until_leader} messages until the first leader; the budget is 30"),
        );

        // The lab's own measure: RPCs by the time checkOneLeader returns.
        check_one_leader(&mut cluster);
        let requests = cluster.total_traffic().requests;
        cluster.check(
            requests <= 30,
            format!("too many RPCs ({requests}) for the initial election; the budget is 30"),
        );

        // One idle second: heartbeats only.
        cluster.run_for(ELECTION_TIMEOUT_UNIT);
        let before = cluster.total_traffic();
        cluster.run_for(Duration::from_secs(1));
        let idle = cluster.total_traffic().messages - before.messages;
        let idle_bytes = cluster.total_traffic().bytes - before.bytes;
        cluster.check(
            idle <= 60,
            format!("too many messages ({idle}) for 1 second of idleness; the budget is 60"),
        );
        worst_election = worst_election.max(until_leader);
        worst_requests = worst_requests.max(requests);
        worst_idle = worst_idle.max(idle);
        worst_idle_bytes = worst_idle_bytes.max(idle_bytes);
    }
    println!(
        "worst over seeds: {worst_election} messages until the first leader, \
         {worst_requests} RPCs by checkOneLeader's return, {worst_idle} messages ({worst_idle_bytes} bytes) per idle second"
    );
}

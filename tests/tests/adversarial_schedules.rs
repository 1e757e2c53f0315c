//! The cluster under an adversary's schedule: messages delivered in any
//! order, lost, duplicated; timers fired early or late; crashes and
//! restarts anywhere. Safety must hold whatever the schedule (the
//! simulator checks every invariant after every event), and a schedule
//! that keeps delivering must still elect and commit. The `cluster` fuzz
//! target explores the same schedules for as long as it is given.

use kontiki::{NodeId, Role};
use kontiki_tests::sim::{run_schedule, Cluster, ClusterConfig};
use proptest::prelude::*;

/// Delivers everything in flight, newest first, after duplicating each
/// message once: the most reordered, most repetitive network there is.
fn deliver_all_reversed_and_twice(cluster: &mut Cluster) {
    let mut duplicated = 0;
    while cluster.messages_in_flight() > 0 {
        if duplicated < 200 && cluster.duplicate_any(usize::MAX) {
            duplicated += 1;
        }
        cluster.deliver_any(usize::MAX);
    }
}

fn leader(cluster: &Cluster) -> Option<NodeId> {
    cluster.ids().iter().copied().find(|&id| {
        cluster
            .node(id)
            .is_some_and(|node| node.role() == Role::Leader)
    })
}

#[test]
fn reversed_duplicated_delivery_still_elects_and_commits() {
    let mut cluster = Cluster::new(3, ClusterConfig::new(3));
    assert!(cluster.fire_timer(NodeId(2)), "every node arms its timer");
    deliver_all_reversed_and_twice(&mut cluster);
    // With pre-vote, the first round only gathers pre-votes; the
    // candidate's next round (its own timer) is the election.
    for _ in 0..3 {
        if leader(&cluster).is_some() {
            break;
        }
        cluster.fire_timer(NodeId(2));
        deliver_all_reversed_and_twice(&mut cluster);
    }
    let leader = leader(&cluster).expect("a leader after delivering every vote");
    for command in 0..5u8 {
        cluster
            .propose(leader, vec![command])
            .expect("the leader accepts");
        deliver_all_reversed_and_twice(&mut cluster);
    }
    // A heartbeat carries the final commit index to the followers.
    cluster.fire_timer(leader);
    deliver_all_reversed_and_twice(&mut cluster);
    for id in [NodeId(1), NodeId(2), NodeId(3)] {
        let commands = cluster
            .applied()
            .iter()
            .filter(|applied| applied.node == id && !applied.entry.data.is_empty())
            .count();
        assert_eq!(commands, 5, "n{id} applied every command exactly once");
    }
}

#[test]
fn the_adversary_cannot_deliver_what_is_not_in_flight() {
    let mut cluster = Cluster::new(1, ClusterConfig::new(3));
    assert_eq!(cluster.messages_in_flight(), 0);
    assert!(!cluster.deliver_any(0));
    assert!(!cluster.drop_any(0));
    assert!(!cluster.duplicate_any(0));
    cluster.crash(NodeId(1));
    assert!(
        !cluster.fire_timer(NodeId(1)),
        "a crashed node has no timer"
    );
}

/// Every schedule checked in as a starting point for the `cluster` fuzz
/// target (among them each input that once found a bug) replays safely
/// here too, so the test command catches a regression without the fuzzer.
#[test]
fn the_fuzzers_checked_in_schedules_are_safe() {
    let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/cluster");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&directory).expect("the fuzz seeds are checked in") {
        let path = entry.expect("a readable directory entry").path();
        let schedule = std::fs::read(&path).expect("a readable seed");
        // The simulator panics on a violation; name the schedule first.
        let outcome = std::panic::catch_unwind(|| run_schedule(&schedule));
        assert!(
            outcome.is_ok(),
            "schedule {} broke an invariant",
            path.display()
        );
        replayed += 1;
    }
    assert!(replayed > 0, "no schedules in {}", directory.display());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any schedule at all: the simulator panics on the first safety
    /// violation, which fails the case and shrinks the schedule.
    #[test]
    fn any_schedule_is_safe(schedule in proptest::collection::vec(any::<u8>(), 2..300)) {
        prop_assert!(run_schedule(&schedule).is_some());
    }
}

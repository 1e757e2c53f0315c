//! A leader that writes its log in parallel with its followers
//! (dissertation §10.2.1, `Config::leader_persists_in_parallel`): it may
//! send entries before persisting them, but counts its own copy toward a
//! majority only once the caller reports it durable.

use std::time::Duration;

use kontiki::{Command, Config, Input, LogIndex, Output, Persist};
use kontiki_tests::probe::{append_response, plain_config, Probe};
use kontiki_tests::sim::{Cluster, ClusterConfig};

fn parallel() -> Config {
    Config {
        leader_persists_in_parallel: true,
        ..plain_config()
    }
}

/// A leader of term 1 over `voters` nodes whose followers all stream.
fn streaming_leader(voters: u64) -> Probe {
    let mut probe = Probe::new(voters, parallel());
    probe.elect();
    for follower in 2..=voters {
        probe
            .receive(follower, append_response(1, true, 0, 0))
            .unwrap();
    }
    probe
}

fn propose(probe: &mut Probe, data: &[u8]) {
    probe
        .input(Input::Command(Command::Propose(data.to_vec().into())))
        .unwrap();
}

#[test]
fn the_leader_sends_new_entries_before_persisting_them() {
    let mut probe = streaming_leader(3);
    propose(&mut probe, b"x");
    let first_send = probe
        .outputs
        .iter()
        .position(|output| matches!(output, Output::Send { .. }))
        .expect("appends sent");
    let persist_at = probe
        .outputs
        .iter()
        .position(|output| matches!(output, Output::Persist(Persist::Entries(_))))
        .expect("entries persisted");
    assert!(first_send < persist_at, "{:?}", probe.outputs);
    assert_eq!(probe.sent().len(), 2, "one append per follower");
}

#[test]
fn its_own_entries_count_only_once_reported_durable() {
    let mut probe = streaming_leader(3);
    propose(&mut probe, b"x");
    probe.receive(2, append_response(1, true, 1, 0)).unwrap();
    assert_eq!(
        probe.node.commit_index(),
        LogIndex(0),
        "one follower and an unfinished write of the leader are not a majority"
    );
    assert!(probe.applied.is_empty());
    probe.persisted(1, 1);
    assert_eq!(probe.node.commit_index(), LogIndex(1));
    assert_eq!(probe.applied.len(), 1);
}

#[test]
fn a_majority_of_followers_commits_without_the_leader_s_own_write() {
    let mut probe = streaming_leader(5);
    propose(&mut probe, b"x");
    for follower in [2, 3] {
        probe
            .receive(follower, append_response(1, true, 1, 0))
            .unwrap();
    }
    assert_eq!(probe.node.commit_index(), LogIndex(0), "two of five");
    probe.receive(4, append_response(1, true, 1, 0)).unwrap();
    assert_eq!(probe.node.commit_index(), LogIndex(1), "three of five");
}

#[test]
fn a_report_about_an_entry_not_in_the_log_is_ignored() {
    let mut probe = streaming_leader(3);
    propose(&mut probe, b"x");
    probe.receive(2, append_response(1, true, 1, 0)).unwrap();
    probe.persisted(1, 7);
    probe.persisted(2, 1);
    assert_eq!(probe.node.commit_index(), LogIndex(0));
    probe.persisted(1, 1);
    assert_eq!(probe.node.commit_index(), LogIndex(1));
}

#[test]
fn a_single_node_commits_once_its_write_is_reported() {
    let mut probe = Probe::new(1, parallel());
    assert_eq!(probe.node.role(), kontiki::Role::Leader);
    propose(&mut probe, b"x");
    assert!(probe
        .outputs
        .iter()
        .any(|output| matches!(output, Output::Persist(Persist::Entries(_)))));
    assert!(probe.applied.is_empty(), "not durable yet");
    probe.persisted(1, 1);
    assert_eq!(probe.applied.len(), 1);
}

#[test]
fn without_the_option_the_leader_persists_first_and_needs_no_report() {
    let mut probe = Probe::new(3, plain_config());
    probe.elect();
    probe.receive(2, append_response(1, true, 0, 0)).unwrap();
    probe.receive(3, append_response(1, true, 0, 0)).unwrap();
    propose(&mut probe, b"x");
    assert!(matches!(
        probe.outputs[0],
        Output::Persist(Persist::Entries(_))
    ));
    probe.receive(2, append_response(1, true, 1, 0)).unwrap();
    assert_eq!(probe.node.commit_index(), LogIndex(1));
}

// In the simulator, with a leader whose disk writes take 5 ms, one
// follower whose writes take 0.5 ms, the other follower cut off, and a
// network that delivers within 1 ms: the follower's acknowledgement
// reaches the leader before the leader's own write completes, and the
// leader must wait for its write (commits are also checked to be durable
// on a majority after every event).
#[test]
fn in_a_cluster_the_leader_commits_once_its_own_write_completes() {
    let config = ClusterConfig {
        node: parallel(),
        write_latency: Some(Duration::from_millis(5)),
        ..ClusterConfig::new(3)
    };
    let mut cluster = Cluster::new(11, config);
    assert!(
        cluster.run_until_condition(Duration::from_secs(2), |cluster| {
            cluster.ids().iter().any(|&id| {
                cluster
                    .node(id)
                    .is_some_and(|node| node.role() == kontiki::Role::Leader)
            })
        })
    );
    let leader = *cluster
        .ids()
        .iter()
        .find(|&&id| cluster.node(id).unwrap().role() == kontiki::Role::Leader)
        .unwrap();
    // One follower with a fast disk; the other cut off, so that a
    // majority needs the leader's own copy. Let the election settle.
    let followers: Vec<_> = cluster
        .ids()
        .iter()
        .copied()
        .filter(|&id| id != leader)
        .collect();
    cluster.set_write_latency(followers[0], Some(Duration::from_micros(500)));
    cluster.isolate(followers[1]);
    cluster.run_for(Duration::from_millis(20));
    let (index, _) = cluster.propose(leader, b"x".to_vec()).unwrap();
    let proposed_at = cluster.now();
    let acknowledged =
        |cluster: &Cluster| cluster.storage(followers[0]).entries.len() as u64 >= index.get();
    // A follower holds it durably within the leader's 5 ms write.
    assert!(cluster.run_until_condition(Duration::from_millis(5), acknowledged));
    assert!(
        cluster.storage(leader).entries.len() < index.get() as usize,
        "the leader's own write is still in flight"
    );
    let committed = |cluster: &Cluster| cluster.node(leader).unwrap().commit_index() >= index;
    assert!(cluster.run_until_condition(Duration::from_millis(50), committed));
    assert!(
        cluster.now() >= proposed_at + Duration::from_millis(5),
        "committed only after the leader's write completed"
    );
}

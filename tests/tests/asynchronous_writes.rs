//! Asynchronous storage writes (`Config::asynchronous_writes`): the node
//! goes on while its log writes are in flight, and never vouches for one
//! before the caller reports it durable.
//!
//! The probe tests play the leader by hand; the cluster tests give one
//! node a slow disk in the simulator, whose checker verifies after every
//! event that nothing sent vouches for an unfinished write (an
//! acknowledged entry must be the very one the follower stores).

use std::time::Duration;

use bytes::Bytes;
use kontiki::{
    Config, Input, InstallSnapshot, LogIndex, Membership, Message, NodeId, Output, Persist, Role,
    Snapshot, Term,
};
use kontiki_tests::probe::{append, append_response, heartbeat, plain_config, request_vote, Probe};
use kontiki_tests::sim::{Cluster, ClusterConfig};

fn asynchronous() -> Config {
    Config {
        asynchronous_writes: true,
        ..plain_config()
    }
}

/// The success answers the latest input sent: (to, term, index).
fn acknowledgements(probe: &Probe) -> Vec<(u64, u64, u64)> {
    probe
        .sent()
        .into_iter()
        .filter_map(|(to, message)| match message {
            Message::AppendEntriesResponse(response) if response.success => {
                Some((to.get(), response.term.get(), response.index.get()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_follower_acknowledges_entries_only_once_reported_durable() {
    let mut probe = Probe::new(3, asynchronous());
    probe.receive(2, append(1, 0, 0, 0, &[1, 1, 1])).unwrap();
    assert!(probe
        .outputs
        .iter()
        .any(|output| matches!(output, Output::Persist(Persist::Entries(_)))));
    assert_eq!(acknowledgements(&probe), [], "nothing is durable yet");
    probe.persisted(1, 1);
    assert_eq!(acknowledgements(&probe), [(2, 1, 1)], "as far as reported");
    probe.persisted(3, 1);
    assert_eq!(acknowledgements(&probe), [(2, 1, 3)]);
    probe.persisted(3, 1);
    assert_eq!(acknowledgements(&probe), [], "nothing more is owed");
}

#[test]
fn what_is_already_durable_is_acknowledged_at_once() {
    let mut probe = Probe::new(3, asynchronous());
    probe.receive(2, append(1, 0, 0, 0, &[1, 1])).unwrap();
    probe.persisted(2, 1);
    probe.receive(2, heartbeat(1, 2, 1)).unwrap();
    assert_eq!(acknowledgements(&probe), [(2, 1, 2)]);
    // New entries not yet durable wait; sent again, they are answered at
    // once with what is durable (the leader hears this node is alive),
    // and the acknowledgement that covers them still waits.
    probe.receive(2, append(1, 2, 1, 0, &[1])).unwrap();
    assert_eq!(acknowledgements(&probe), []);
    probe.receive(2, append(1, 2, 1, 0, &[1])).unwrap();
    assert_eq!(acknowledgements(&probe), [(2, 1, 2)]);
    probe.persisted(3, 1);
    assert_eq!(acknowledgements(&probe), [(2, 1, 3)]);
}

#[test]
fn a_report_of_an_overwritten_write_acknowledges_nothing() {
    let mut probe = Probe::new(3, asynchronous());
    probe.receive(2, append(1, 0, 0, 0, &[1, 1])).unwrap();
    // Leader 3 of term 2 replaces entry 2 before the first write is done.
    probe.receive(3, append(2, 1, 1, 0, &[2])).unwrap();
    assert_eq!(acknowledgements(&probe), []);
    probe.persisted(2, 1);
    assert_eq!(
        acknowledgements(&probe),
        [],
        "entry 2 of term 1 is no longer the log's"
    );
    probe.persisted(2, 2);
    assert_eq!(acknowledgements(&probe), [(3, 2, 2)]);
}

#[test]
fn an_acknowledgement_owed_to_a_deposed_leader_is_dropped() {
    let mut probe = Probe::new(3, asynchronous());
    probe.receive(2, append(1, 0, 0, 0, &[1])).unwrap();
    probe.receive(3, request_vote(2, 1, 1, false)).unwrap();
    probe.persisted(1, 1);
    assert_eq!(
        acknowledgements(&probe),
        [],
        "leader 2 of term 1 is no longer followed"
    );
}

#[test]
fn a_leader_s_snapshot_is_acknowledged_once_reported_durable() {
    let mut probe = Probe::new(3, asynchronous());
    let snapshot = Snapshot {
        index: LogIndex(5),
        term: Term(1),
        membership: Membership::with_voters(&[NodeId(1), NodeId(2), NodeId(3)]).unwrap(),
        data: Bytes::from_static(b"state"),
    };
    let install = Message::InstallSnapshot(InstallSnapshot {
        term: Term(1),
        snapshot,
    });
    probe.receive(2, install).unwrap();
    assert!(
        probe
            .outputs
            .iter()
            .any(|output| matches!(output, Output::InstallSnapshot(_))),
        "the state machine may take it at once"
    );
    assert_eq!(acknowledgements(&probe), []);
    probe.persisted(5, 1);
    assert_eq!(acknowledgements(&probe), [(2, 1, 5)]);
}

#[test]
fn without_the_option_a_follower_answers_in_the_same_outputs() {
    let mut probe = Probe::new(3, plain_config());
    probe.receive(2, append(1, 0, 0, 0, &[1, 1])).unwrap();
    assert_eq!(acknowledgements(&probe), [(2, 1, 2)]);
    // And the answer comes after the write it vouches for.
    let write = probe
        .outputs
        .iter()
        .position(|output| matches!(output, Output::Persist(Persist::Entries(_))));
    let answer = probe
        .outputs
        .iter()
        .position(|output| matches!(output, Output::Send { .. }));
    assert!(write < answer);
}

#[test]
fn a_leader_counts_its_own_log_only_as_far_as_reported() {
    let mut probe = Probe::new(3, asynchronous());
    probe.elect();
    probe.receive(2, append_response(1, true, 0, 0)).unwrap();
    probe
        .input(Input::Command(kontiki::Command::Propose(
            Bytes::from_static(b"x"),
        )))
        .unwrap();
    probe.receive(2, append_response(1, true, 1, 0)).unwrap();
    assert_eq!(probe.node.commit_index(), LogIndex(0));
    probe.persisted(1, 1);
    assert_eq!(probe.node.commit_index(), LogIndex(1));
}

// ----- in the simulator ----------------------------------------------------

#[test]
fn a_heartbeat_is_answered_at_once_with_what_is_durable() {
    let mut probe = Probe::new(3, asynchronous());
    probe.receive(2, append(1, 0, 0, 0, &[1, 1, 1])).unwrap();
    probe.persisted(1, 1);
    assert_eq!(acknowledgements(&probe), [(2, 1, 1)]);
    // Entries 2 and 3 are still being written: the leader hears that this
    // node is alive, and only what is durable.
    probe.receive(2, heartbeat(1, 3, 1)).unwrap();
    assert_eq!(acknowledgements(&probe), [(2, 1, 1)]);
    // Not when the durable part falls short of the leader's commit index:
    // a leader probing from there might need entries it compacted.
    probe.receive(2, append(1, 3, 1, 2, &[])).unwrap();
    assert_eq!(acknowledgements(&probe), []);
    // The full acknowledgement still waits for the write.
    probe.persisted(3, 1);
    assert_eq!(acknowledgements(&probe), [(2, 1, 3)]);
}

fn leader_of(cluster: &Cluster) -> Option<NodeId> {
    cluster.ids().iter().copied().find(|&id| {
        cluster
            .node(id)
            .is_some_and(|node| node.role() == Role::Leader)
    })
}

fn elected(seed: u64, node: Config) -> (Cluster, NodeId) {
    let config = ClusterConfig {
        node,
        write_latency: Some(Duration::from_micros(200)),
        ..ClusterConfig::new(3)
    };
    let mut cluster = Cluster::new(seed, config);
    assert!(
        cluster.run_until_condition(Duration::from_secs(5), |cluster| leader_of(cluster)
            .is_some())
    );
    cluster.run_for(Duration::from_millis(100));
    let leader = leader_of(&cluster).expect("still leading");
    (cluster, leader)
}

fn default_with(asynchronous_writes: bool) -> Config {
    Config {
        asynchronous_writes,
        ..Config::default()
    }
}

/// A leader whose disk stalls for 2 s while it has writes to make: with
/// asynchronous writes it keeps sending heartbeats and stays leader; with
/// every output queued behind its writes (the ordering rule without the
/// option), its followers stop hearing from it and elect another.
fn stalled_leader_keeps_its_term(asynchronous_writes: bool, seed: u64) -> bool {
    let (mut cluster, leader) = elected(seed, default_with(asynchronous_writes));
    let term = cluster.node(leader).unwrap().term();
    cluster.set_write_latency(leader, Some(Duration::from_secs(2)));
    cluster.propose(leader, b"stalled".to_vec()).unwrap();
    cluster.run_for(Duration::from_millis(2500));
    cluster
        .ids()
        .iter()
        .all(|&id| cluster.node(id).unwrap().term() == term)
        && leader_of(&cluster) == Some(leader)
}

#[test]
fn a_leader_whose_disk_stalls_keeps_leading() {
    for seed in 1..=5 {
        assert!(
            stalled_leader_keeps_its_term(true, seed),
            "seed {seed}: an election while the leader's disk stalled"
        );
    }
}

#[test]
fn without_asynchronous_writes_a_stalled_disk_costs_the_leadership() {
    // The scenario above can tell the two apart.
    for seed in 1..=5 {
        assert!(!stalled_leader_keeps_its_term(false, seed), "seed {seed}");
    }
}

#[test]
fn with_a_follower_s_disk_stalled_commits_go_on_at_the_other_majority_s_speed() {
    let (mut cluster, leader) = elected(3, default_with(true));
    let slow = cluster
        .ids()
        .iter()
        .copied()
        .find(|&id| id != leader)
        .unwrap();
    let term = cluster.node(leader).unwrap().term();
    cluster.set_write_latency(slow, Some(Duration::from_secs(2)));
    for round in 0..20u8 {
        let (index, _) = cluster.propose(leader, vec![round]).unwrap();
        let proposed_at = cluster.now();
        assert!(
            cluster.run_until_condition(Duration::from_millis(100), |cluster| {
                cluster.node(leader).unwrap().commit_index() >= index
            })
        );
        assert!(
            cluster.now() <= proposed_at + Duration::from_millis(20),
            "entry {index} took {:?} to commit",
            cluster.now().saturating_duration_since(proposed_at)
        );
    }
    assert!(cluster
        .ids()
        .iter()
        .all(|&id| cluster.node(id).unwrap().term() == term));
    // Once its disk catches up, the slow follower acknowledges everything.
    cluster.set_write_latency(slow, Some(Duration::from_micros(200)));
    let last = cluster.node(leader).unwrap().last_log_index();
    assert!(
        cluster.run_until_condition(Duration::from_secs(5), |cluster| {
            cluster.node(leader).unwrap().match_index(slow) == Some(last)
        })
    );
}

/// Every follower's disk stalls for 2 s with an append to write (every
/// node writing a large snapshot at once, say): they still answer the
/// leader's heartbeats and resends with what is durable, so its
/// check-quorum hears from a majority and it keeps leading; the entry
/// commits once the disks are back.
#[test]
fn a_leader_whose_followers_disks_all_stall_keeps_leading() {
    for seed in 1..=5 {
        let (mut cluster, leader) = elected(seed, default_with(true));
        let term = cluster.node(leader).unwrap().term();
        for id in cluster.ids().to_vec() {
            if id != leader {
                cluster.set_write_latency(id, Some(Duration::from_secs(2)));
            }
        }
        let (index, _) = cluster.propose(leader, b"stalled".to_vec()).unwrap();
        cluster.run_for(Duration::from_millis(2500));
        assert_eq!(leader_of(&cluster), Some(leader), "seed {seed}");
        assert!(
            cluster
                .ids()
                .iter()
                .all(|&id| cluster.node(id).unwrap().term() == term),
            "seed {seed}: an election while the followers' disks stalled"
        );
        assert!(
            cluster.run_until_condition(Duration::from_secs(3), |cluster| {
                cluster.node(leader).unwrap().commit_index() >= index
            }),
            "seed {seed}: the entry commits once the disks are back"
        );
    }
}

/// Crashes that lose every write not yet reported, on every node, while
/// clients write: the checker holds after every event.
#[test]
fn crashes_lose_unreported_writes_and_every_invariant_holds() {
    for seed in 1..=6 {
        let (mut cluster, _) = elected(seed, default_with(true));
        for id in cluster.ids().to_vec() {
            let latency = Duration::from_micros(500 + 700 * id.get());
            cluster.set_write_latency(id, Some(latency));
        }
        for round in 0..40u64 {
            if let Some(leader) = leader_of(&cluster) {
                let _ = cluster.propose(leader, round.to_le_bytes().to_vec());
            }
            cluster.run_for(Duration::from_millis(3));
            if round % 7 == 3 {
                let victim = NodeId(1 + (round + seed) % 3);
                cluster.crash(victim);
                cluster.run_for(Duration::from_millis(200));
                cluster.restart(victim);
            }
        }
        cluster.run_for(Duration::from_secs(2));
        let leader = leader_of(&cluster).expect("a leader after the crashes");
        let committed = cluster.node(leader).unwrap().commit_index();
        assert!(
            committed >= LogIndex(20),
            "seed {seed}: only {committed} committed"
        );
    }
}

/// The checker is what makes the scenarios above evidence: a follower
/// that acknowledges entries before its write is reported is caught.
#[test]
fn acknowledging_before_the_write_is_reported_is_caught() {
    let flawed = Config {
        flaw_acknowledge_before_durable: true,
        ..default_with(true)
    };
    let caught = std::panic::catch_unwind(|| {
        let (mut cluster, leader) = elected(1, flawed);
        for id in cluster.ids().to_vec() {
            cluster.set_write_latency(id, Some(Duration::from_millis(2)));
        }
        cluster.propose(leader, b"x".to_vec()).unwrap();
        cluster.run_for(Duration::from_millis(50));
    });
    let message = match caught {
        Ok(()) => panic!("the flawed variant ran without a violation"),
        Err(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default(),
    };
    assert!(
        message.contains("an acknowledgement of entries"),
        "caught for another reason: {message}"
    );
}

/// A leader whose own disk is stalled while its followers commit holds
/// every entry not yet written in memory (its writer's queue): proposals
/// beyond `max_uncommitted_bytes` of them are refused until the disk
/// catches up, so that memory stays bounded.
#[test]
fn a_leader_s_unwritten_entries_are_bounded_like_uncommitted_ones() {
    let mut probe = Probe::new(
        3,
        Config {
            max_uncommitted_bytes: 1_000,
            ..asynchronous()
        },
    );
    probe.elect();
    for follower in [2, 3] {
        probe
            .receive(follower, append_response(1, true, 0, 0))
            .unwrap();
    }
    let propose = |probe: &mut Probe| {
        probe.input(Input::Command(kontiki::Command::Propose(Bytes::from(
            vec![1; 400],
        ))))
    };
    for index in 1..=2 {
        propose(&mut probe).expect("within the bound");
        for follower in [2, 3] {
            probe
                .receive(follower, append_response(1, true, index, 0))
                .unwrap();
        }
    }
    assert_eq!(
        probe.node.commit_index(),
        LogIndex(2),
        "committed by the followers"
    );
    assert_eq!(
        propose(&mut probe),
        Err(kontiki::HandleError::TooManyUncommittedBytes),
        "800 bytes committed but not written here, and 400 more"
    );
    probe.persisted(2, 1);
    propose(&mut probe).expect("written: settled");
}

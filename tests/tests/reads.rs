//! Linearizable reads without log writes (ReadIndex, dissertation §6.4):
//! first one core at a time, with the test playing the followers, then
//! whole simulated clusters whose checker holds every served read to a
//! read index no lower than anything committed before the read arrived.

use std::time::Duration;

use kontiki::{
    Command, Config, DropReason, HandleError, Handled, Input, InvalidMessage, LeadershipCheck,
    LeadershipCheckResponse, LogIndex, Message, NodeId, Output, Persist, Term,
};
use kontiki_tests::chaos::{
    believed_leaders, chaos_step, has_stable_leader, time_to_stable_leader,
};
use kontiki_tests::probe::{append_response, plain_config, Probe};
use kontiki_tests::sim::{Cluster, ClusterConfig};
use rand_08::Rng;

fn read(probe: &mut Probe) -> Result<u64, HandleError> {
    match probe.input(Input::Command(Command::Read))? {
        Handled::ReadQueued { round } => Ok(round),
        other => panic!("a read was handled as {other:?}"),
    }
}

fn check_response(term: u64, round: u64) -> Message {
    Message::LeadershipCheckResponse(LeadershipCheckResponse {
        term: Term(term),
        round,
    })
}

/// The leadership checks the latest input sent, as (peer, round).
fn checks_sent(probe: &Probe) -> Vec<(u64, u64)> {
    probe
        .sent()
        .into_iter()
        .filter_map(|(to, message)| match message {
            Message::LeadershipCheck(check) => Some((to.get(), check.round)),
            _ => None,
        })
        .collect()
}

fn reads_ready(probe: &Probe) -> Vec<(u64, LogIndex)> {
    probe
        .outputs
        .iter()
        .filter_map(|output| match output {
            Output::ReadReady { round, index } => Some((*round, *index)),
            _ => None,
        })
        .collect()
}

/// Node 1 leading a 3-node cluster in term 1 with its no-op (index 1)
/// committed by node 2's acknowledgement.
fn leader_with_committed_noop() -> Probe {
    let mut probe = Probe::new(
        3,
        Config {
            noop_on_election: true,
            ..plain_config()
        },
    );
    probe.elect();
    probe.receive(2, append_response(1, true, 1, 0)).unwrap();
    assert_eq!(probe.node.commit_index(), LogIndex(1));
    probe
}

#[test]
fn a_read_is_served_after_a_majority_confirms_the_leader_without_writing_the_log() {
    let mut probe = leader_with_committed_noop();
    let last_index = probe.node.last_log_index();
    let round = read(&mut probe).unwrap();
    assert_eq!(round, 1);
    assert_eq!(checks_sent(&probe), vec![(2, 1), (3, 1)]);
    assert!(
        !probe
            .outputs
            .iter()
            .any(|output| matches!(output, Output::Persist(Persist::Entries(_)))),
        "a read writes nothing"
    );
    assert_eq!(probe.node.last_log_index(), last_index);
    assert!(reads_ready(&probe).is_empty(), "not before a majority");
    probe.receive(3, check_response(1, 1)).unwrap();
    assert_eq!(reads_ready(&probe), vec![(1, LogIndex(1))]);
}

#[test]
fn reads_between_two_drains_share_one_round_and_one_check_per_follower() {
    let mut probe = leader_with_committed_noop();
    let now = probe.now;
    let rounds: Vec<_> = (0..3)
        .map(|_| probe.node.handle(now, Input::Command(Command::Read)))
        .collect();
    assert!(rounds
        .iter()
        .all(|handled| *handled == Ok(Handled::ReadQueued { round: 1 })));
    let checks: Vec<_> = probe
        .node
        .drain_outputs()
        .filter(|output| {
            matches!(
                output,
                Output::Send {
                    message: Message::LeadershipCheck(_),
                    ..
                }
            )
        })
        .collect();
    assert_eq!(checks.len(), 2, "one check per follower");
    // A read after the drain needs a check sent after it arrived.
    assert_eq!(read(&mut probe), Ok(2));
    assert_eq!(checks_sent(&probe), vec![(2, 2), (3, 2)]);
}

#[test]
fn an_answer_to_an_earlier_round_does_not_serve_a_later_read() {
    let mut probe = leader_with_committed_noop();
    assert_eq!(read(&mut probe), Ok(1));
    assert_eq!(read(&mut probe), Ok(2));
    probe.receive(2, check_response(1, 1)).unwrap();
    assert_eq!(reads_ready(&probe), vec![(1, LogIndex(1))]);
    // Node 3 saw round 1 only: still one voter short for round 2.
    probe.receive(3, check_response(1, 1)).unwrap();
    assert!(reads_ready(&probe).is_empty());
    probe.receive(3, check_response(1, 2)).unwrap();
    assert_eq!(reads_ready(&probe), vec![(2, LogIndex(1))]);
}

#[test]
fn a_new_leader_s_read_waits_for_the_first_entry_of_its_term() {
    let mut probe = Probe::new(
        3,
        Config {
            noop_on_election: true,
            ..plain_config()
        },
    );
    probe.elect();
    assert_eq!(read(&mut probe), Ok(1));
    probe.receive(2, check_response(1, 1)).unwrap();
    assert!(
        reads_ready(&probe).is_empty(),
        "confirmed, but the no-op at index 1 is not committed yet"
    );
    probe.receive(2, append_response(1, true, 1, 0)).unwrap();
    assert_eq!(reads_ready(&probe), vec![(1, LogIndex(1))]);
    let applied = probe
        .outputs
        .iter()
        .position(|o| matches!(o, Output::Apply(_)));
    let ready = probe
        .outputs
        .iter()
        .position(|o| matches!(o, Output::ReadReady { .. }));
    assert!(
        applied < ready,
        "the read index is applied before the read is served"
    );
}

#[test]
fn without_a_no_op_on_election_the_first_read_appends_one() {
    let mut probe = Probe::new(3, plain_config());
    probe.elect();
    assert_eq!(probe.node.last_log_index(), LogIndex(0));
    assert_eq!(read(&mut probe), Ok(1));
    assert_eq!(probe.node.last_log_index(), LogIndex(1));
    assert!(probe
        .outputs
        .iter()
        .any(|o| matches!(o, Output::Persist(Persist::Entries(entries)) if entries.len() == 1)));
    probe.receive(2, check_response(1, 1)).unwrap();
    assert!(reads_ready(&probe).is_empty());
    probe.receive(2, append_response(1, true, 1, 0)).unwrap();
    assert_eq!(reads_ready(&probe), vec![(1, LogIndex(1))]);
}

#[test]
fn a_leader_that_steps_down_fails_its_waiting_reads() {
    let mut probe = leader_with_committed_noop();
    assert_eq!(read(&mut probe), Ok(1));
    assert_eq!(read(&mut probe), Ok(2));
    // A follower answers from a later term: the leader was deposed.
    probe.receive(3, check_response(4, 2)).unwrap();
    assert!(probe.outputs.contains(&Output::ReadsFailed { round: 2 }));
    assert!(reads_ready(&probe).is_empty());
    assert!(matches!(
        read(&mut probe),
        Err(HandleError::NotLeader { .. })
    ));
}

#[test]
fn a_follower_answers_its_leader_s_check_and_counts_it_as_contact() {
    let mut probe = Probe::new(3, plain_config());
    let check = |term, round| {
        Message::LeadershipCheck(LeadershipCheck {
            term: Term(term),
            round,
        })
    };
    probe.receive(2, check(2, 7)).unwrap();
    assert_eq!(probe.node.leader(), Some(NodeId(2)));
    assert_eq!(probe.node.term(), Term(2));
    assert_eq!(probe.sent(), vec![(NodeId(2), check_response(2, 7))]);
    // A check from a deposed leader learns the newer term.
    probe.receive(3, check(1, 3)).unwrap();
    assert_eq!(probe.sent(), vec![(NodeId(3), check_response(2, 3))]);
    // A second leader of the same term is refused.
    assert_eq!(
        probe.receive(3, check(2, 1)),
        Err(HandleError::Dropped(DropReason::ConflictingLeader))
    );
    assert_eq!(
        probe.input(Input::Command(Command::Read)),
        Err(HandleError::NotLeader {
            leader_hint: Some(NodeId(2))
        })
    );
}

#[test]
fn answers_for_rounds_never_sent_or_round_zero_are_dropped() {
    let mut probe = leader_with_committed_noop();
    assert_eq!(read(&mut probe), Ok(1));
    assert_eq!(
        probe.receive(2, check_response(1, 2)),
        Err(HandleError::Dropped(DropReason::UnsentReadRound))
    );
    assert_eq!(
        probe.receive(2, check_response(1, 0)),
        Err(HandleError::Dropped(DropReason::Invalid(
            InvalidMessage::ZeroReadRound
        )))
    );
    assert!(reads_ready(&probe).is_empty());
}

#[test]
fn a_single_node_serves_a_read_at_once() {
    let mut probe = Probe::new(1, plain_config());
    assert_eq!(probe.node.role(), kontiki::Role::Leader);
    let round = read(&mut probe).unwrap();
    assert_eq!(reads_ready(&probe), vec![(round, LogIndex(1))]);
}

/// A leader cut off from the others keeps taking reads until
/// check-quorum deposes it, while the majority elects a new leader and
/// commits writes: the checker fails the run if the old leader ever serves
/// a read that misses them.
#[test]
fn a_partitioned_leader_never_serves_a_stale_read() {
    for seed in 0..20 {
        let mut cluster = Cluster::new(seed, ClusterConfig::new(5));
        time_to_stable_leader(&mut cluster, Duration::from_secs(5)).expect("a leader");
        let old = has_stable_leader(&cluster).expect("settled");
        cluster.propose(old, b"before".to_vec()).expect("leader");
        cluster.run_for(Duration::from_millis(20));
        cluster.isolate(old);
        let mut new_leader = None;
        for step in 0..400 {
            // Reads keep arriving at the old leader while it believes it
            // leads.
            let _ = cluster.read(old);
            if new_leader.is_none() {
                new_leader = believed_leaders(&cluster).into_iter().find(|&id| id != old);
            }
            if let Some(leader) = new_leader {
                let _ = cluster.propose(leader, format!("after-{step}").into_bytes());
            }
            cluster.run_for(Duration::from_millis(2));
        }
        let new_leader = new_leader.expect("the majority elects a leader");
        assert!(cluster.node(new_leader).unwrap().commit_index() > LogIndex(2));
        assert_ne!(
            cluster.node(old).unwrap().role(),
            kontiki::Role::Leader,
            "check-quorum deposed the old leader"
        );
        let (_, failed) = cluster.checker().read_outcomes();
        assert!(failed > 0, "seed {seed}: the old leader's reads failed");
    }
}

/// Reads on a healthy cluster under a steady write load are all served,
/// each at a read index no lower than anything committed before it.
#[test]
fn reads_interleaved_with_writes_are_served_and_linearizable() {
    let mut cluster = Cluster::new(3, ClusterConfig::new(3));
    time_to_stable_leader(&mut cluster, Duration::from_secs(5)).expect("a leader");
    let leader = has_stable_leader(&cluster).expect("settled");
    let mut asked = 0;
    for step in 0..500 {
        cluster
            .propose(leader, format!("w{step}").into_bytes())
            .unwrap();
        if step % 3 == 0 {
            cluster.read(leader).unwrap();
            asked += 1;
        }
        cluster.run_for(Duration::from_micros(300));
    }
    cluster.run_for(Duration::from_millis(100));
    let (served, failed) = cluster.checker().read_outcomes();
    assert_eq!((served, failed), (asked, 0));
}

/// Chaos with check-quorum off, so a deposed leader keeps believing it
/// leads for as long as a partition lasts and keeps being asked to read:
/// the checker fails the run if any node serves a read at an index below
/// something committed before the read arrived.
#[test]
fn reads_stay_linearizable_under_chaos_with_deposed_leaders_lingering() {
    let mut served_total = 0;
    for seed in kontiki_tests::seeds::seeds(150) {
        let config = ClusterConfig {
            node: Config {
                check_quorum: false,
                leader_stickiness: false,
                ..Config::default()
            },
            network: kontiki_tests::sim::NetworkConfig::chaotic(),
            ..ClusterConfig::new(3 + (seed % 3) as usize)
        };
        let mut cluster = Cluster::new(seed, config);
        let mut proposals = 0u64;
        while cluster.steps() < 4_000 {
            for leader in believed_leaders(&cluster) {
                if cluster.rng().gen_bool(0.05) {
                    proposals += 1;
                    let _ = cluster.propose(leader, format!("p{proposals}").into_bytes());
                }
                if cluster.rng().gen_bool(0.05) {
                    let _ = cluster.read(leader);
                }
            }
            chaos_step(&mut cluster);
        }
        served_total += cluster.checker().read_outcomes().0;
    }
    assert!(served_total > 0, "reads were served");
}

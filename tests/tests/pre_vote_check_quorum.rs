//! Pre-vote (dissertation §9.6) and check-quorum with leader stickiness
//! (§4.2.3, §6.2): unit scenarios on one node, then whole-cluster
//! scenarios on the simulator, each with a control run that shows the
//! scenario fails without the feature.

use std::time::Duration;

use kontiki::{Config, NodeId, Output, Persist, Role, Term};
use kontiki_tests::chaos::{has_stable_leader, time_to_stable_leader};
use kontiki_tests::probe::{heartbeat, plain_config, request_vote, vote_response, Probe};
use kontiki_tests::seeds::seeds;
use kontiki_tests::sim::{Cluster, ClusterConfig};

fn with_pre_vote() -> Config {
    Config {
        pre_vote: true,
        ..plain_config()
    }
}

fn with_check_quorum() -> Config {
    Config {
        check_quorum: true,
        leader_stickiness: true,
        ..plain_config()
    }
}

fn with_pre_vote_and_check_quorum() -> Config {
    Config {
        pre_vote: true,
        check_quorum: true,
        leader_stickiness: true,
        ..plain_config()
    }
}

// ----- pre-vote on one node ---------------------------------------------

#[test]
fn pre_candidate_asks_about_the_next_term_without_raising_its_own() {
    let mut probe = Probe::new(3, with_pre_vote());
    probe.fire_timer();
    assert_eq!(probe.node.role(), Role::PreCandidate);
    assert_eq!(probe.node.term(), Term(0));
    assert!(!probe
        .outputs
        .iter()
        .any(|output| matches!(output, Output::Persist(Persist::HardState(_)))));
    let requests = probe.sent();
    assert_eq!(requests.len(), 2);
    assert!(requests
        .iter()
        .all(|(_, message)| *message == request_vote(1, 0, 0, true)));
}

#[test]
fn pre_vote_majority_starts_the_real_election() {
    let mut probe = Probe::new(3, with_pre_vote());
    probe.fire_timer();
    probe.receive(2, vote_response(1, true, true)).unwrap();
    assert_eq!(probe.node.role(), Role::Candidate);
    assert_eq!(probe.node.term(), Term(1));
    assert!(probe
        .sent()
        .iter()
        .all(|(_, message)| *message == request_vote(1, 0, 0, false)));
}

#[test]
fn granting_a_pre_vote_changes_nothing_on_the_voter() {
    let mut probe = Probe::new(3, with_pre_vote());
    probe.receive(2, request_vote(1, 0, 0, true)).unwrap();
    assert_eq!(
        probe.sent(),
        vec![(NodeId(2), vote_response(1, true, true))]
    );
    assert_eq!(probe.node.term(), Term(0));
    assert_eq!(probe.node.hard_state().voted_for, None);
    assert!(!probe
        .outputs
        .iter()
        .any(|output| matches!(output, Output::Persist(Persist::HardState(_)))));
}

#[test]
fn pre_vote_is_refused_to_a_candidate_with_a_stale_log() {
    let mut voter = Probe::restore(
        3,
        with_pre_vote(),
        kontiki::PersistedState {
            snapshot: None,
            hard_state: kontiki::HardState {
                term: Term(2),
                voted_for: None,
                log_lost_at_term: None,
            },
            entries: vec![kontiki::Entry::command(
                kontiki::LogIndex(1),
                Term(2),
                vec![],
            )],
        },
    );
    voter.receive(3, request_vote(3, 0, 0, true)).unwrap();
    assert_eq!(
        voter.sent(),
        vec![(NodeId(3), vote_response(2, false, true))]
    );
}

#[test]
fn pre_candidate_adopts_a_higher_term_from_a_refusal() {
    let mut probe = Probe::new(3, with_pre_vote());
    probe.fire_timer();
    probe.receive(2, vote_response(7, false, true)).unwrap();
    assert_eq!(probe.node.role(), Role::Follower);
    assert_eq!(probe.node.term(), Term(7));
}

// ----- check-quorum and stickiness on one node -----------------------------

/// A follower of node 2 (term 1) asked by node 3, 100 ms after it last
/// heard its leader, for a vote in term 2.
fn asked_for_a_vote_while_its_leader_lives(config: Config) -> Probe {
    let mut probe = Probe::new(3, config);
    probe.receive(2, heartbeat(1, 0, 0)).unwrap();
    probe.advance(Duration::from_millis(100));
    probe.receive(3, request_vote(2, 0, 0, false)).unwrap();
    probe
}

#[test]
fn follower_that_heard_from_a_live_leader_ignores_vote_requests() {
    let mut probe = asked_for_a_vote_while_its_leader_lives(with_check_quorum());
    assert!(probe.sent().is_empty(), "ignored, not even refused");
    assert_eq!(
        probe.node.term(),
        Term(1),
        "the disruptive term is not adopted"
    );
    assert_eq!(probe.node.stats().vote_requests_ignored, 1);

    // Once the minimum election timeout has passed without the leader, the
    // request is considered.
    probe.advance(Duration::from_millis(60));
    probe.receive(3, request_vote(2, 0, 0, false)).unwrap();
    assert_eq!(
        probe.sent(),
        vec![(NodeId(3), vote_response(2, true, false))]
    );
}

#[test]
fn leader_stickiness_and_check_quorum_are_separate_switches() {
    // Stickiness alone: the follower ignores the request.
    let sticky = asked_for_a_vote_while_its_leader_lives(Config {
        leader_stickiness: true,
        ..plain_config()
    });
    assert!(sticky.sent().is_empty(), "ignored with stickiness on");
    assert_eq!(sticky.node.stats().vote_requests_ignored, 1);

    // Check-quorum alone: the same request is answered (and granted).
    let check_quorum_only = Config {
        check_quorum: true,
        ..plain_config()
    };
    let checking = asked_for_a_vote_while_its_leader_lives(check_quorum_only.clone());
    assert_eq!(
        checking.sent(),
        vec![(NodeId(3), vote_response(2, true, false))]
    );

    // ... while a leader with check-quorum alone still steps down when a
    // majority goes quiet.
    let mut leader = Probe::new(3, check_quorum_only);
    leader.elect();
    leader.fire_timer_until(Role::Follower);
    assert_eq!(leader.node.role(), Role::Follower);
}

#[test]
fn leader_ignores_vote_requests_while_it_holds_a_quorum() {
    let mut probe = Probe::new(3, with_check_quorum());
    probe.elect();
    probe.receive(3, request_vote(5, 0, 0, false)).unwrap();
    assert_eq!(probe.node.role(), Role::Leader);
    assert_eq!(probe.node.term(), Term(1));
}

#[test]
fn leader_steps_down_when_a_majority_is_silent_for_the_check_quorum_window() {
    let mut probe = Probe::new(3, with_check_quorum());
    probe.elect();
    let elected_at = probe.now;
    probe.fire_timer_until(Role::Follower);
    let after = probe.now.saturating_duration_since(elected_at);
    // The window: the minimum plus the maximum election timeout (150 +
    // 300 ms), noticed at the next heartbeat tick.
    assert!(
        after >= Duration::from_millis(450),
        "stepped down after {after:?}"
    );
    assert!(
        after <= Duration::from_millis(500),
        "stepped down after {after:?}"
    );
    assert_eq!(probe.node.term(), Term(1), "stepping down keeps the term");
    assert_eq!(probe.node.leader(), None);
}

// Found by the soak: a leader that stepped down kept its election's
// votes, and any late answer to that election (even a refusal) made it
// leader of the same term again.
#[test]
fn a_leader_that_stepped_down_is_not_made_leader_again_by_late_votes() {
    let mut probe = Probe::new(5, with_pre_vote_and_check_quorum());
    probe.elect();
    probe.fire_timer_until(Role::Follower);
    probe.fire_timer_until(Role::PreCandidate);
    assert_eq!(probe.node.term(), Term(1));
    for (voter, granted) in [(2, false), (3, true), (4, true), (5, true)] {
        probe
            .receive(voter, vote_response(1, granted, false))
            .unwrap();
        assert_ne!(probe.node.role(), Role::Leader, "re-elected by n{voter}");
    }
}

#[test]
fn leader_keeps_leading_while_one_follower_of_two_answers() {
    let mut probe = Probe::new(3, with_check_quorum());
    probe.elect();
    for _ in 0..40 {
        probe.fire_timer();
        probe
            .receive(2, kontiki_tests::probe::append_response(1, true, 0, 0))
            .unwrap();
    }
    assert_eq!(probe.node.role(), Role::Leader);
}

// ----- cluster scenarios ---------------------------------------------------

const SEEDS: u64 = 500;

fn settled_cluster(seed: u64, nodes: usize, config: Config) -> (Cluster, NodeId, Term) {
    let mut cluster = Cluster::new(
        seed,
        ClusterConfig {
            node: config,
            ..ClusterConfig::new(nodes)
        },
    );
    if time_to_stable_leader(&mut cluster, Duration::from_secs(3)).is_none() {
        cluster.fail("no stable leader at the start");
    }
    let leader = has_stable_leader(&cluster).expect("settled");
    let term = cluster.node(leader).expect("running").term();
    (cluster, leader, term)
}

fn some_follower(cluster: &Cluster, leader: NodeId) -> NodeId {
    *cluster
        .ids()
        .iter()
        .find(|&&id| id != leader)
        .expect("more than one node")
}

fn highest_term(cluster: &Cluster) -> Term {
    cluster
        .ids()
        .iter()
        .filter_map(|&id| cluster.node(id).map(|node| node.term()))
        .max()
        .expect("nodes run")
}

/// Isolates a follower for five seconds and reconnects it; returns the
/// cluster, the leader and term before, and the follower's term while away.
fn rejoin(seed: u64, config: Config) -> (Cluster, NodeId, Term, Term) {
    let (mut cluster, leader, term) = settled_cluster(seed, 5, config);
    let away = some_follower(&cluster, leader);
    cluster.isolate(away);
    cluster.run_for(Duration::from_secs(5));
    let away_term = cluster.node(away).expect("running").term();
    cluster.reconnect(away);
    cluster.run_for(Duration::from_secs(2));
    (cluster, leader, term, away_term)
}

#[test]
fn partitioned_node_rejoins_without_a_term_bump_or_a_leader_change() {
    for seed in seeds(SEEDS) {
        let (cluster, leader, term, away_term) = rejoin(seed, Config::default());
        cluster.check(
            away_term == term,
            format!("the isolated node raised its term to {away_term}"),
        );
        cluster.check(
            has_stable_leader(&cluster) == Some(leader),
            format!("leader changed from n{leader}"),
        );
        cluster.check(highest_term(&cluster) == term, "the term changed");
    }
}

#[test]
fn control_without_pre_vote_a_rejoining_node_deposes_the_leader() {
    let config = Config {
        pre_vote: false,
        check_quorum: false,
        leader_stickiness: false,
        ..Config::default()
    };
    let (cluster, _, term, away_term) = rejoin(0, config);
    assert!(
        away_term > term,
        "without pre-vote the isolated node raises its term"
    );
    assert!(
        highest_term(&cluster) > term,
        "and drags the cluster into a new term"
    );
}

/// Splits a settled five-node cluster into the leader plus one follower
/// against the other three; returns how long the old leader kept leading.
fn minority_leader(seed: u64, config: Config) -> (Cluster, NodeId, Option<Duration>) {
    let (mut cluster, leader, _) = settled_cluster(seed, 5, config);
    let mut minority = vec![leader];
    minority.push(some_follower(&cluster, leader));
    let majority: Vec<NodeId> = cluster
        .ids()
        .iter()
        .copied()
        .filter(|id| !minority.contains(id))
        .collect();
    cluster.partition(&[minority, majority]);
    let start = cluster.now();
    let stepped_down = cluster.run_until_condition(Duration::from_secs(2), |cluster| {
        cluster.node(leader).expect("running").role() != Role::Leader
    });
    let took = stepped_down.then(|| cluster.now().saturating_duration_since(start));
    (cluster, leader, took)
}

#[test]
fn leader_cut_off_into_a_minority_steps_down_within_the_check_quorum_window() {
    let config = Config::default();
    // At most one check-quorum window (a minimum plus a maximum election
    // timeout) plus the heartbeat tick that notices.
    let bound =
        config.election_timeout_min + config.election_timeout_max + config.heartbeat_interval;
    for seed in seeds(SEEDS) {
        let (mut cluster, old_leader, took) = minority_leader(seed, config.clone());
        let Some(took) = took else {
            cluster.fail("the minority leader never stepped down");
        };
        cluster.check(
            took <= bound,
            format!("stepped down after {took:?}, bound {bound:?}"),
        );
        // The majority side elects a new leader meanwhile.
        let elected = cluster.run_until_condition(Duration::from_secs(3), |cluster| {
            cluster.ids().iter().any(|&id| {
                id != old_leader
                    && cluster
                        .node(id)
                        .is_some_and(|node| node.role() == Role::Leader)
            })
        });
        cluster.check(elected, "the majority elected no leader");
    }
}

#[test]
fn control_without_check_quorum_a_minority_leader_keeps_leading() {
    let config = Config {
        check_quorum: false,
        leader_stickiness: false,
        ..Config::default()
    };
    let (_, _, took) = minority_leader(0, config);
    assert_eq!(
        took, None,
        "without check-quorum the cut-off leader stays leader"
    );
}

/// Cuts one direction of the link between the leader and a follower for
/// ten seconds; returns the cluster, the leader and term before.
fn one_way_cut(seed: u64, config: Config, leader_to_follower: bool) -> (Cluster, NodeId, Term) {
    let (mut cluster, leader, term) = settled_cluster(seed, 3, config);
    let follower = some_follower(&cluster, leader);
    if leader_to_follower {
        cluster.cut_link(leader, follower);
    } else {
        cluster.cut_link(follower, leader);
    }
    cluster.run_for(Duration::from_secs(10));
    (cluster, leader, term)
}

#[test]
fn one_way_link_failure_does_not_cause_endless_elections() {
    for seed in seeds(SEEDS) {
        for leader_to_follower in [true, false] {
            let (cluster, leader, term) = one_way_cut(seed, Config::default(), leader_to_follower);
            let direction = if leader_to_follower {
                "leader->follower"
            } else {
                "follower->leader"
            };
            cluster.check(
                highest_term(&cluster) == term,
                format!(
                    "{direction} cut: the term rose from {term} to {}",
                    highest_term(&cluster)
                ),
            );
            cluster.check(
                cluster.node(leader).expect("running").role() == Role::Leader,
                format!("{direction} cut: n{leader} lost its leadership"),
            );
        }
    }
}

#[test]
fn control_without_pre_vote_a_one_way_cut_disrupts_the_leader() {
    let config = Config {
        pre_vote: false,
        check_quorum: false,
        leader_stickiness: false,
        ..Config::default()
    };
    let (cluster, _, term) = one_way_cut(0, config, true);
    assert!(
        highest_term(&cluster) > term,
        "without pre-vote the cut-off follower raises the term and deposes the leader"
    );
}

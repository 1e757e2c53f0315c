//! Leadership transfer (Raft dissertation §3.10), in the simulator: the
//! leader brings the target up to date, refuses proposals meanwhile, and
//! tells it to campaign at once; voters answer it although they hear from
//! the leader. A transfer that cannot complete is abandoned after an
//! election timeout.

use std::time::Duration;

use bytes::Bytes;
use kontiki::{HandleError, MembershipChange, NodeId, Role, TransferError};
use kontiki_tests::chaos::{believed_leaders, has_stable_leader};
use kontiki_tests::sim::{Cluster, ClusterConfig, NetworkConfig};

const LIMIT: Duration = Duration::from_secs(10);

fn settled(cluster: &mut Cluster) -> NodeId {
    assert!(cluster.run_until_condition(LIMIT, |c| has_stable_leader(c).is_some()));
    // Let the leader's first heartbeat answers arrive.
    cluster.run_for(Duration::from_millis(100));
    has_stable_leader(cluster).expect("stable")
}

fn other_than(leader: NodeId, count: u64) -> NodeId {
    (1..=count).map(NodeId).find(|&id| id != leader).unwrap()
}

#[test]
fn the_leadership_moves_to_an_up_to_date_follower_within_a_round_trip_or_two() {
    let mut cluster = Cluster::new(1, ClusterConfig::new(3));
    let first = settled(&mut cluster);
    let target = other_than(first, 3);
    let term = cluster.node(first).unwrap().term();
    let asked_at = cluster.now();
    cluster
        .transfer_leadership(first, target)
        .expect("accepted");
    let moved = cluster.run_until_condition(LIMIT, |c| has_stable_leader(c) == Some(target));
    assert!(moved, "the leadership did not move");
    let took = cluster.now().saturating_duration_since(asked_at);
    // The default network delivers in well under a millisecond each way;
    // an election timeout (150 ms at least) would mean it fell back on one.
    assert!(took < Duration::from_millis(50), "took {took:?}");
    assert_eq!(
        cluster.node(target).unwrap().term(),
        term.next(),
        "one election"
    );
}

#[test]
fn a_lagging_target_is_brought_up_to_date_first_and_proposals_wait() {
    let mut cluster = Cluster::new(2, ClusterConfig::new(3));
    let first = settled(&mut cluster);
    let target = other_than(first, 3);
    cluster.isolate(target);
    for n in 0..20 {
        cluster
            .propose(first, format!("w{n}").into_bytes())
            .expect("leader");
        cluster.run_for(Duration::from_millis(2));
    }
    cluster.reconnect(target);
    assert!(
        cluster.node(target).unwrap().last_log_index()
            < cluster.node(first).unwrap().last_log_index()
    );
    cluster
        .transfer_leadership(first, target)
        .expect("accepted");
    assert_eq!(
        cluster.propose(first, b"late".to_vec()),
        Err(HandleError::TransferInProgress { target })
    );
    assert_eq!(
        cluster.transfer_leadership(first, target),
        Err(HandleError::TransferInProgress { target })
    );
    let moved = cluster.run_until_condition(LIMIT, |c| has_stable_leader(c) == Some(target));
    assert!(moved, "the leadership did not move to the lagging node");
    // The new leader has every entry the old one had.
    let old_last = cluster.node(first).unwrap().last_log_index();
    assert!(cluster.node(target).unwrap().last_log_index() >= old_last);
}

#[test]
fn a_transfer_to_a_dead_node_is_abandoned_after_an_election_timeout() {
    let mut cluster = Cluster::new(3, ClusterConfig::new(3));
    let first = settled(&mut cluster);
    let target = other_than(first, 3);
    cluster.crash(target);
    cluster
        .transfer_leadership(first, target)
        .expect("accepted");
    assert!(matches!(
        cluster.propose(first, b"x".to_vec()),
        Err(HandleError::TransferInProgress { .. })
    ));
    // The longest election timeout (300 ms) and a heartbeat later, the
    // leader takes proposals again, still leading.
    cluster.run_for(Duration::from_millis(360));
    assert_eq!(cluster.node(first).unwrap().role(), Role::Leader);
    cluster
        .propose(first, b"after".to_vec())
        .expect("proposals resume");
}

#[test]
fn transfers_to_itself_a_learner_or_a_stranger_are_refused() {
    let mut cluster = Cluster::new(
        4,
        ClusterConfig {
            spare_nodes: 1,
            network: NetworkConfig::reliable(),
            ..ClusterConfig::new(3)
        },
    );
    let first = settled(&mut cluster);
    assert_eq!(
        cluster.transfer_leadership(first, first),
        Err(HandleError::TransferRefused(TransferError::ToSelf))
    );
    assert_eq!(
        cluster.transfer_leadership(first, NodeId(9)),
        Err(HandleError::TransferRefused(TransferError::NotAVoter(
            NodeId(9)
        )))
    );
    cluster
        .change_membership(
            first,
            MembershipChange::AddLearner {
                id: NodeId(4),
                address: Bytes::new(),
            },
        )
        .expect("accepted");
    assert_eq!(
        cluster.transfer_leadership(first, NodeId(4)),
        Err(HandleError::TransferRefused(TransferError::NotAVoter(
            NodeId(4)
        )))
    );
    let follower = other_than(first, 3);
    assert!(matches!(
        cluster.transfer_leadership(follower, first),
        Err(HandleError::NotLeader { .. })
    ));
    // None of it disturbed the leader.
    cluster.run_for(Duration::from_millis(500));
    assert_eq!(believed_leaders(&cluster), vec![first]);
}

#[test]
fn a_leader_that_removes_itself_hands_over_at_once() {
    let mut cluster = Cluster::new(5, ClusterConfig::new(3));
    let first = settled(&mut cluster);
    let (index, _) = cluster
        .change_membership(first, MembershipChange::Remove { id: first })
        .expect("accepted");
    let stepped_down_at = {
        assert!(cluster.run_until_condition(LIMIT, |c| {
            c.node(first)
                .is_some_and(|n| n.role() == Role::Follower && n.commit_index() >= index)
        }));
        cluster.now()
    };
    let elected =
        cluster.run_until_condition(LIMIT, |c| believed_leaders(c).iter().any(|&id| id != first));
    assert!(elected);
    let took = cluster.now().saturating_duration_since(stepped_down_at);
    assert!(
        took < Duration::from_millis(50),
        "a successor took {took:?}: it waited for an election timeout"
    );
}

//! Changing a live cluster (Raft dissertation, chapter 4), in the
//! simulator: learners, single-server changes, joint consensus, a leader
//! that removes itself, a removed node that keeps campaigning, and every
//! refusal. The simulator checks after every event that each node's
//! configuration is the latest in its log and that every commit had a
//! majority of each configuration in force.

use std::time::Duration;

use bytes::Bytes;
use kontiki::{
    HandleError, LogIndex, Membership, MembershipChange, MembershipError, NodeId, Role, Term,
};
use kontiki_tests::chaos::believed_leaders;
use kontiki_tests::sim::{Cluster, ClusterConfig, NetworkConfig};

const LIMIT: Duration = Duration::from_secs(10);

fn ids(raw: &[u64]) -> Vec<NodeId> {
    raw.iter().copied().map(NodeId).collect()
}

/// `voters` starting voters and `spares` nodes waiting to be added, on a
/// reliable network with the default configuration (pre-vote,
/// check-quorum and leader stickiness on).
fn cluster(seed: u64, voters: usize, spares: usize) -> Cluster {
    Cluster::new(
        seed,
        ClusterConfig {
            spare_nodes: spares,
            ..ClusterConfig::new(voters)
        },
    )
}

/// The leader of the highest term among the running nodes that believe
/// they lead.
fn leader(cluster: &Cluster) -> Option<NodeId> {
    believed_leaders(cluster)
        .into_iter()
        .max_by_key(|&id| cluster.node(id).map(|node| node.term()))
}

/// Runs until a leader has committed an entry of its term (it then takes
/// membership changes); returns it.
fn settled_leader(cluster: &mut Cluster) -> NodeId {
    let settled = cluster.run_until_condition(LIMIT, |cluster| {
        leader(cluster).is_some_and(|id| {
            let node = cluster.node(id).expect("running");
            node.entries()
                .iter()
                .any(|entry| entry.index == node.commit_index() && entry.term == node.term())
        })
    });
    assert!(settled, "no leader settled within {LIMIT:?}");
    leader(cluster).expect("settled")
}

/// Asks the leader for `change` and runs until every running member of
/// the resulting configuration has it committed.
fn change(cluster: &mut Cluster, change: MembershipChange) -> (LogIndex, Term) {
    let leader = settled_leader(cluster);
    let (index, term) = cluster
        .change_membership(leader, change.clone())
        .unwrap_or_else(|error| panic!("{change:?} refused: {error}"));
    let done = cluster.run_until_condition(LIMIT, |cluster| {
        cluster.applied().iter().any(|applied| {
            applied.node == leader && applied.entry.index == index && applied.entry.term == term
        })
    });
    assert!(done, "{change:?} did not commit within {LIMIT:?}");
    (index, term)
}

fn add_learner(id: u64) -> MembershipChange {
    MembershipChange::AddLearner {
        id: NodeId(id),
        address: Bytes::from(format!("10.0.0.{id}:7000")),
    }
}

/// Adds node `id` as a learner, waits for it to catch up, promotes it.
fn add_voter(cluster: &mut Cluster, id: u64) {
    change(cluster, add_learner(id));
    let caught_up = cluster.run_until_condition(LIMIT, |cluster| {
        let Some(leader) = leader(cluster) else {
            return false;
        };
        let last = cluster.node(leader).expect("running").last_log_index();
        cluster
            .node(NodeId(id))
            .is_some_and(|node| node.last_log_index() == last)
    });
    assert!(caught_up, "learner {id} did not catch up");
    // The leader learns the learner caught up from its next answer.
    cluster.run_for(Duration::from_millis(60));
    change(cluster, MembershipChange::Promote { id: NodeId(id) });
}

/// Proposes `count` commands on the leader, one every `gap`, and returns
/// those it accepted.
fn write_for(cluster: &mut Cluster, count: usize, gap: Duration) -> Vec<(LogIndex, Term)> {
    let mut accepted = Vec::new();
    for sequence in 0..count {
        if let Some(leader) = leader(cluster) {
            if let Ok(at) = cluster.propose(leader, format!("w{sequence}").into_bytes()) {
                accepted.push(at);
            }
        }
        cluster.run_for(gap);
    }
    accepted
}

/// Every running node holds configuration `expected`, and every command
/// accepted in `writes` was applied by each of `members`.
fn assert_converged(
    cluster: &mut Cluster,
    expected: &Membership,
    members: &[NodeId],
    writes: &[(LogIndex, Term)],
) {
    let converged = cluster.run_until_condition(LIMIT, |cluster| {
        members.iter().all(|&id| {
            cluster
                .node(id)
                .is_some_and(|node| node.membership() == expected)
        })
    });
    assert!(converged, "the members did not converge on {expected:?}");
    let leader = settled_leader(cluster);
    let last = cluster.node(leader).expect("running").last_log_index();
    let applied = cluster.run_until_condition(LIMIT, |cluster| {
        members.iter().all(|&id| {
            cluster
                .node(id)
                .is_some_and(|node| node.applied_index() >= last)
        })
    });
    assert!(applied, "the members did not apply everything");
    // A write the leader accepted either committed (and then every member
    // applied it) or was lost to a change of leader; with no crash and a
    // reliable network, none is lost.
    for &(index, term) in writes {
        for &member in members {
            let has = cluster.applied().iter().any(|applied| {
                applied.node == member && applied.entry.index == index && applied.entry.term == term
            });
            assert!(has, "n{member} never applied {index}@{term}");
        }
    }
}

#[test]
fn a_cluster_grows_from_one_to_three_to_five_under_load() {
    let mut cluster = cluster(1, 1, 4);
    let mut writes = write_for(&mut cluster, 20, Duration::from_millis(5));
    for id in 2..=5 {
        add_voter(&mut cluster, id);
        writes.extend(write_for(&mut cluster, 20, Duration::from_millis(5)));
    }
    let five = Membership::with_voters(&ids(&[1, 2, 3, 4, 5])).expect("valid");
    for id in 2..=5 {
        // The addresses the learners were added with travel along.
        let address = Bytes::from(format!("10.0.0.{id}:7000"));
        assert_eq!(
            cluster
                .node(NodeId(1))
                .unwrap()
                .membership()
                .address(NodeId(id)),
            Some(&address)
        );
    }
    let expected = cluster.node(NodeId(1)).unwrap().membership().clone();
    assert_eq!(expected.voters(), five.voters());
    assert_converged(&mut cluster, &expected, &ids(&[1, 2, 3, 4, 5]), &writes);
    assert_eq!(
        believed_leaders(&cluster),
        ids(&[1]),
        "growing never cost the leadership"
    );
}

#[test]
fn a_dead_voter_is_replaced_by_a_learner_without_downtime() {
    let mut cluster = cluster(2, 3, 1);
    let first = settled_leader(&mut cluster);
    let dead = if first == NodeId(3) {
        NodeId(2)
    } else {
        NodeId(3)
    };
    cluster.crash(dead);
    let mut writes = write_for(&mut cluster, 10, Duration::from_millis(5));
    add_voter(&mut cluster, 4);
    writes.extend(write_for(&mut cluster, 10, Duration::from_millis(5)));
    change(&mut cluster, MembershipChange::Remove { id: dead });
    writes.extend(write_for(&mut cluster, 10, Duration::from_millis(5)));
    let members: Vec<NodeId> = ids(&[1, 2, 3, 4])
        .into_iter()
        .filter(|&id| id != dead)
        .collect();
    let expected = cluster.node(first).unwrap().membership().clone();
    assert_eq!(expected.voters(), members);
    assert!(!expected.is_member(dead));
    assert_converged(&mut cluster, &expected, &members, &writes);

    // The new three-voter cluster survives losing its leader.
    cluster.crash(first);
    let survivors: Vec<NodeId> = members.iter().copied().filter(|&id| id != first).collect();
    let elected = cluster.run_until_condition(LIMIT, |cluster| {
        leader(cluster).is_some_and(|id| survivors.contains(&id))
    });
    assert!(elected, "the survivors elected no leader");
}

#[test]
fn a_leader_that_removes_itself_leads_until_the_change_commits_then_steps_down() {
    let mut cluster = cluster(3, 3, 0);
    let first = settled_leader(&mut cluster);
    let (index, _) = cluster
        .change_membership(first, MembershipChange::Remove { id: first })
        .expect("accepted");
    // In force at once: the leader no longer counts itself, but leads on.
    let node = cluster.node(first).unwrap();
    assert!(!node.membership().is_voter(first));
    assert_eq!(node.role(), Role::Leader);
    let stepped_down = cluster.run_until_condition(LIMIT, |cluster| {
        cluster
            .node(first)
            .is_some_and(|node| node.role() == Role::Follower && node.commit_index() >= index)
    });
    assert!(stepped_down, "the removed leader did not step down");
    let others: Vec<NodeId> = ids(&[1, 2, 3])
        .into_iter()
        .filter(|&id| id != first)
        .collect();
    let elected = cluster.run_until_condition(LIMIT, |cluster| {
        leader(cluster).is_some_and(|id| others.contains(&id))
    });
    assert!(elected, "the remaining voters elected no leader");
    let since = cluster.now();
    cluster.run_for(Duration::from_secs(3));
    assert!(
        !cluster
            .role_changes()
            .iter()
            .any(|change| change.node == first
                && change.at >= since
                && change.role != Role::Follower),
        "the removed node campaigned"
    );
}

#[test]
fn a_removed_node_that_never_heard_of_its_removal_cannot_disrupt_the_cluster() {
    let mut cluster = cluster(4, 3, 0);
    let first = settled_leader(&mut cluster);
    let removed = if first == NodeId(3) {
        NodeId(2)
    } else {
        NodeId(3)
    };
    cluster.isolate(removed);
    change(&mut cluster, MembershipChange::Remove { id: removed });
    cluster.run_for(Duration::from_secs(2));
    // Cut off, it times out and asks for (pre-)votes over and over; it
    // still believes in the old configuration.
    assert!(cluster
        .node(removed)
        .unwrap()
        .membership()
        .is_voter(removed));
    cluster.reconnect(removed);
    let term = cluster.node(first).unwrap().term();
    let since = cluster.now();
    cluster.run_for(Duration::from_secs(5));
    assert_eq!(leader(&cluster), Some(first), "the leader kept its place");
    assert_eq!(
        cluster.node(first).unwrap().term(),
        term,
        "no term was raised"
    );
    assert!(
        !cluster
            .role_changes()
            .iter()
            .any(|change| change.node != removed
                && change.at >= since
                && change.role != Role::Follower
                && change.node != first),
        "a member campaigned"
    );
}

#[test]
fn a_change_on_a_leader_cut_off_in_a_minority_is_undone_by_the_majority() {
    let mut cluster = cluster(5, 5, 1);
    let first = settled_leader(&mut cluster);
    let all = ids(&[1, 2, 3, 4, 5]);
    let other = *all.iter().find(|&&id| id != first).unwrap();
    let majority: Vec<NodeId> = all
        .iter()
        .copied()
        .filter(|&id| id != first && id != other)
        .collect();
    cluster.partition(&[vec![first, other], majority.clone(), vec![NodeId(6)]]);
    // Accepted, in force on the old leader, but never committed.
    let (stale, _) = cluster
        .change_membership(first, add_learner(6))
        .expect("the old leader takes it");
    assert!(cluster
        .node(first)
        .unwrap()
        .membership()
        .is_member(NodeId(6)));
    let elected = cluster.run_until_condition(LIMIT, |cluster| {
        leader(cluster).is_some_and(|id| majority.contains(&id))
    });
    assert!(elected);
    let new_leader = leader(&cluster).unwrap();
    change(&mut cluster, MembershipChange::Remove { id: other });
    cluster.heal();
    let expected = cluster.node(new_leader).unwrap().membership().clone();
    assert!(!expected.is_member(NodeId(6)) && !expected.is_member(other));
    let undone = cluster.run_until_condition(LIMIT, |cluster| {
        cluster
            .node(first)
            .is_some_and(|node| node.membership() == &expected)
    });
    assert!(
        undone,
        "the old leader kept its uncommitted change (index {stale})"
    );
}

#[test]
fn a_joint_change_replaces_a_majority_at_once_and_leaves_by_itself() {
    let mut cluster = cluster(6, 3, 2);
    for id in [4, 5] {
        change(&mut cluster, add_learner(id));
    }
    cluster.run_for(Duration::from_millis(200));
    let first = settled_leader(&mut cluster);
    let keep = first;
    let incoming = {
        let mut voters = vec![keep, NodeId(4), NodeId(5)];
        voters.sort();
        voters
    };
    let (joint_index, _) = change(
        &mut cluster,
        MembershipChange::EnterJoint {
            voters: incoming.clone(),
            learners: Vec::new(),
            auto_leave: true,
        },
    );
    let left = cluster.run_until_condition(LIMIT, |cluster| {
        incoming.iter().all(|&id| {
            cluster.node(id).is_some_and(|node| {
                !node.membership().is_joint()
                    && node.membership().voters() == incoming
                    && node.commit_index() >= node.membership_index()
                    && node.membership_index() > joint_index
            })
        })
    });
    assert!(left, "the joint configuration was not left");
    let writes = write_for(&mut cluster, 10, Duration::from_millis(5));
    let expected = cluster.node(keep).unwrap().membership().clone();
    assert_eq!(expected.members(), incoming, "the replaced voters are gone");
    assert_converged(&mut cluster, &expected, &incoming, &writes);
}

#[test]
fn while_joint_a_commit_needs_a_majority_of_the_incoming_voters_too() {
    let mut cluster = cluster(7, 3, 2);
    for id in [4, 5] {
        change(&mut cluster, add_learner(id));
    }
    cluster.run_for(Duration::from_millis(200));
    let first = settled_leader(&mut cluster);
    let mut incoming = vec![first, NodeId(4), NodeId(5)];
    incoming.sort();
    change(
        &mut cluster,
        MembershipChange::EnterJoint {
            voters: incoming,
            learners: Vec::new(),
            auto_leave: false,
        },
    );
    // The old voters are all there; two of the three new ones are not.
    cluster.isolate(NodeId(4));
    cluster.isolate(NodeId(5));
    let (index, term) = cluster
        .propose(first, b"held back".to_vec())
        .expect("the leader takes it");
    cluster.run_for(Duration::from_millis(300));
    assert!(
        cluster.node(first).unwrap().commit_index() < index,
        "committed without the incoming half"
    );
    cluster.reconnect(NodeId(4));
    let committed = cluster.run_until_condition(LIMIT, |cluster| {
        cluster.applied().iter().any(|applied| {
            applied.node == first && applied.entry.index == index && applied.entry.term == term
        })
    });
    assert!(committed, "one incoming voter back makes a majority of it");
    // Leaving is a change of its own.
    change(&mut cluster, MembershipChange::LeaveJoint);
    assert!(!cluster.node(first).unwrap().membership().is_joint());
}

#[test]
fn bad_requests_get_a_clear_error_and_change_nothing() {
    let mut cluster = cluster(8, 3, 1);
    let first = settled_leader(&mut cluster);
    let refused = |cluster: &mut Cluster, change: MembershipChange| {
        let before = cluster.node(first).unwrap().membership().clone();
        let last = cluster.node(first).unwrap().last_log_index();
        let error = cluster
            .change_membership(first, change)
            .expect_err("refused");
        let node = cluster.node(first).unwrap();
        assert_eq!(
            node.membership(),
            &before,
            "{error} changed the configuration"
        );
        assert_eq!(node.last_log_index(), last, "{error} appended an entry");
        match error {
            HandleError::Membership(why) => why,
            other => panic!("not a membership error: {other}"),
        }
    };
    assert_eq!(
        refused(&mut cluster, add_learner(2)),
        MembershipError::AlreadyMember(NodeId(2))
    );
    assert_eq!(
        refused(&mut cluster, MembershipChange::Remove { id: NodeId(9) }),
        MembershipError::NotAMember(NodeId(9))
    );
    assert_eq!(
        refused(&mut cluster, MembershipChange::Promote { id: NodeId(9) }),
        MembershipError::NotAMember(NodeId(9))
    );
    assert_eq!(
        refused(&mut cluster, MembershipChange::LeaveJoint),
        MembershipError::NotJoint
    );
    // A learner that cannot be reached never catches up: promoting it is
    // refused.
    cluster.isolate(NodeId(4));
    change(&mut cluster, add_learner(4));
    assert!(matches!(
        refused(&mut cluster, MembershipChange::Promote { id: NodeId(4) }),
        MembershipError::LearnerBehind { id: NodeId(4), .. }
    ));
    // A change while another is pending.
    let (pending, _) = cluster
        .change_membership(first, MembershipChange::Remove { id: NodeId(4) })
        .expect("accepted");
    assert_eq!(
        refused(&mut cluster, add_learner(4)),
        MembershipError::ChangePending { index: pending }
    );
    // On a follower, the usual redirect.
    let follower = ids(&[1, 2, 3]).into_iter().find(|&id| id != first).unwrap();
    assert!(matches!(
        cluster.change_membership(follower, add_learner(5)),
        Err(HandleError::NotLeader { .. })
    ));
}

#[test]
fn a_new_leader_takes_no_change_before_it_commits_an_entry_of_its_term() {
    // A five-node cluster whose leader is cut off: the new leader's first
    // moments, before its no-op commits, refuse changes.
    let mut cluster = cluster(9, 5, 0);
    let first = settled_leader(&mut cluster);
    cluster.isolate(first);
    let elected = cluster.run_until_condition(LIMIT, |cluster| {
        leader(cluster).is_some_and(|id| id != first)
    });
    assert!(elected);
    let new_leader = leader(&cluster).unwrap();
    let node = cluster.node(new_leader).unwrap();
    let own_term_committed = node
        .entries()
        .iter()
        .any(|entry| entry.index <= node.commit_index() && entry.term == node.term());
    assert!(!own_term_committed, "observed right at the election");
    assert_eq!(
        cluster.change_membership(new_leader, MembershipChange::Remove { id: first }),
        Err(HandleError::Membership(MembershipError::LeaderNotSettled))
    );
    change(&mut cluster, MembershipChange::Remove { id: first });
}

#[test]
fn a_node_waiting_to_be_added_never_campaigns() {
    let mut cluster = cluster(10, 1, 1);
    cluster.run_for(Duration::from_secs(5));
    let spare = NodeId(2);
    assert!(cluster.node(spare).unwrap().membership().is_empty());
    assert!(
        cluster
            .role_changes()
            .iter()
            .all(|change| change.node != spare || change.role == Role::Follower),
        "the spare campaigned"
    );
    cluster.campaign(spare);
    assert_eq!(cluster.node(spare).unwrap().role(), Role::Follower);
}

#[test]
fn the_configuration_survives_snapshots_and_restarts() {
    let mut cluster = Cluster::new(
        11,
        ClusterConfig {
            spare_nodes: 2,
            snapshot_interval: Some(5),
            network: NetworkConfig::reliable(),
            ..ClusterConfig::new(3)
        },
    );
    add_voter(&mut cluster, 4);
    change(&mut cluster, add_learner(5));
    let writes = write_for(&mut cluster, 30, Duration::from_millis(5));
    let leader = settled_leader(&mut cluster);
    let expected = cluster.node(leader).unwrap().membership().clone();
    let members = ids(&[1, 2, 3, 4, 5]);
    assert_converged(&mut cluster, &expected, &members, &writes);
    assert!(
        members
            .iter()
            .all(|&id| cluster.node(id).unwrap().snapshot_index() > LogIndex(0)),
        "every node took a snapshot"
    );
    for &id in &members {
        cluster.crash(id);
    }
    for &id in &members {
        cluster.restart(id);
        assert_eq!(cluster.node(id).unwrap().membership(), &expected, "n{id}");
    }
    let writes = write_for(&mut cluster, 5, Duration::from_millis(5));
    assert_converged(&mut cluster, &expected, &members, &writes);
}

// Found by the membership soak (seed 21): a leader of two voters removes
// itself, and crashes before its only follower got the entry. Back, it
// holds the longer log, so the follower cannot win without its vote; and
// it is not a voter in its latest configuration. It must still campaign
// while that configuration is not known committed (dissertation §4.2.2):
// elected, it commits its own removal, and steps down for the follower.
#[test]
fn a_removed_node_holding_the_only_copy_of_its_removal_still_helps_elect_a_leader() {
    let mut cluster = cluster(12, 3, 0);
    let first = settled_leader(&mut cluster);
    let others: Vec<NodeId> = ids(&[1, 2, 3])
        .into_iter()
        .filter(|&id| id != first)
        .collect();
    let (follower, gone) = (others[0], others[1]);
    change(&mut cluster, MembershipChange::Remove { id: gone });
    cluster.crash(gone);
    cluster.run_for(Duration::from_millis(100));
    cluster.cut_link(first, follower);
    let (removal, _) = cluster
        .change_membership(first, MembershipChange::Remove { id: first })
        .expect("accepted");
    cluster.run_for(Duration::from_millis(20));
    assert!(cluster.node(follower).unwrap().last_log_index() < removal);
    cluster.crash(first);
    cluster.restart(first);
    cluster.heal();
    let recovered = cluster.run_until_condition(LIMIT, |cluster| {
        leader(cluster) == Some(follower)
            && cluster
                .node(follower)
                .is_some_and(|node| node.commit_index() >= removal)
    });
    assert!(recovered, "the cluster never recovered from the removal");
    let expected = Membership::with_voters(&[follower]).expect("valid");
    assert_eq!(cluster.node(follower).unwrap().membership(), &expected);
    assert!(cluster.node(first).unwrap().role() != Role::Leader);
}

#[test]
fn founding_members_addresses_travel_with_the_first_change() {
    use kontiki::{
        Command, Config, Handled, Input, Instant, Node, Output, Persist, PersistedState,
    };
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    let founders = Membership::with_voters(&ids(&[1]))
        .and_then(|m| m.with_address(NodeId(1), Bytes::from_static(b"10.0.0.1:7000")))
        .expect("a member");
    let mut node = Node::with_membership(
        NodeId(1),
        founders,
        Config::default(),
        ChaCha8Rng::seed_from_u64(1),
        PersistedState::default(),
        Instant::ZERO,
    )
    .expect("a valid start");
    // Reports every write durable, so the sole voter commits its entries.
    let settle = |node: &mut Node<ChaCha8Rng>| loop {
        let written: Vec<(LogIndex, Term)> = node
            .drain_outputs()
            .filter_map(|output| match output {
                Output::Persist(Persist::Entries(entries)) => {
                    entries.last().map(|entry| (entry.index, entry.term))
                }
                _ => None,
            })
            .collect();
        if written.is_empty() {
            return;
        }
        for (index, term) in written {
            let _ = node.handle(Instant::ZERO, Input::Persisted { index, term });
        }
    };
    settle(&mut node);
    assert_eq!(node.role(), Role::Leader);
    let added = node.handle(
        Instant::ZERO,
        Input::Command(Command::ChangeMembership(add_learner(2))),
    );
    assert!(matches!(added, Ok(Handled::Proposed { .. })), "{added:?}");
    settle(&mut node);
    let membership = node.membership();
    assert_eq!(membership.learners(), ids(&[2]));
    assert_eq!(
        membership.address(NodeId(1)).map(|a| &a[..]),
        Some(&b"10.0.0.1:7000"[..]),
        "the founder's address is in the entry every member receives"
    );
    assert!(node.commit_index() >= node.membership_index());
    assert_eq!(node.match_index(NodeId(1)), Some(node.last_log_index()));
    assert_eq!(node.match_index(NodeId(2)), Some(LogIndex(0)));
    assert_eq!(node.match_index(NodeId(9)), None);
    assert_eq!(
        Node::with_membership(
            NodeId(1),
            membership
                .with_change(&MembershipChange::EnterJoint {
                    voters: ids(&[2]),
                    learners: Vec::new(),
                    auto_leave: true,
                })
                .expect("a joint configuration"),
            Config::default(),
            ChaCha8Rng::seed_from_u64(1),
            PersistedState::default(),
            Instant::ZERO,
        )
        .err(),
        Some(kontiki::StartError::JointBootstrap)
    );
}

//! Changing a running cluster through the driver's handle, over loopback
//! TCP: a node started to join is added as a learner, catches up (from a
//! snapshot), is promoted; a dead voter is removed; the leadership is
//! handed to the new node, which reaches the founders at the addresses
//! the log carries; a joint change demotes a founder; every refusal is a
//! clear error. Every acknowledged write is on every member at the end.

use std::time::Duration;

use bytes::Bytes;
use kontiki::{LogIndex, MembershipError, NodeId, Role};
use kontiki_driver::{
    ChangeError, Handle, MemberRole, MemoryStorage, NodeConfig, Runtime, TransferError,
};
use kontiki_tests::live::{
    agreed_leader, all_applied, cluster_configs, free_addresses, propose_all, wait_for, within,
    Recorder,
};
use kontiki_tokio::TokioRuntime;

const LIMIT: Duration = Duration::from_secs(20);

async fn start(config: NodeConfig, recorder: &Recorder) -> Handle<Recorder> {
    kontiki_driver::start(
        TokioRuntime::current(),
        config,
        MemoryStorage::new(),
        recorder.clone(),
    )
    .await
    .expect("the node starts")
}

/// Writes `count` commands through `leader`; returns their indices.
async fn write(leader: &Handle<Recorder>, prefix: &str, count: u32) -> Vec<LogIndex> {
    let commands = (0..count).map(|n| format!("{prefix}-{n}").into_bytes());
    within(
        &TokioRuntime::current(),
        LIMIT,
        "writes commit",
        propose_all(leader, commands),
    )
    .await
    .expect("in time")
    .expect("the leader commits them")
}

/// Promotes `id`, retrying while the leader says it has not caught up.
async fn promote(leader: &Handle<Recorder>, id: NodeId) -> LogIndex {
    let runtime = TokioRuntime::current();
    for _ in 0..200 {
        match leader.promote(id).await {
            Ok(index) => return index,
            Err(ChangeError::Refused(MembershipError::LearnerBehind { .. })) => {
                let deadline = runtime.now() + Duration::from_millis(20);
                runtime.sleep_until(deadline).await;
            }
            Err(error) => panic!("promoting n{id} failed: {error}"),
        }
    }
    panic!("n{id} never caught up");
}

fn role_of(node: &Handle<Recorder>, id: u64) -> Option<MemberRole> {
    node.status()
        .members
        .iter()
        .find(|member| member.id == NodeId(id))
        .map(|member| member.role)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_a_dead_one_is_removed_and_the_newcomer_takes_the_lead() {
    let runtime = TokioRuntime::current();
    let addresses = free_addresses(4);
    let mut configs = cluster_configs(&addresses[..3], "membership");
    for config in &mut configs {
        // Snapshots, so the newcomer catches up from one.
        config.snapshot_interval = 50;
    }
    let recorders: Vec<Recorder> = (0..4).map(|_| Recorder::default()).collect();
    let mut nodes = Vec::new();
    for (config, recorder) in configs.into_iter().zip(&recorders) {
        nodes.push(start(config, recorder).await);
    }
    let first = agreed_leader(&runtime, &nodes, None).await.unwrap();
    let leader = nodes[first].clone();
    let mut acknowledged = write(&leader, "before", 200).await;

    // Refusals: on a follower, for a node that is not a learner, and a
    // transfer to a node that cannot lead.
    let follower = &nodes[(first + 1) % 3];
    assert!(matches!(
        follower.add_learner(NodeId(4), addresses[3], None).await,
        Err(ChangeError::NotLeader { leader: Some(_) })
    ));
    assert_eq!(
        leader.promote(NodeId(9)).await,
        Err(ChangeError::Refused(MembershipError::NotAMember(NodeId(9))))
    );
    assert!(matches!(
        leader.transfer_leadership(NodeId(9)).await,
        Err(TransferError::Refused(_))
    ));

    // Node 4 starts knowing nobody, and waits to be added.
    let mut join = NodeConfig::new(NodeId(4), addresses[3], Default::default());
    join.cluster_id = "membership".into();
    join.join = true;
    join.seed = Some(7);
    let newcomer = start(join, &recorders[3]).await;
    assert!(newcomer.status().members.is_empty());
    let client_address: std::net::SocketAddr = "127.0.0.1:6379".parse().unwrap();
    leader
        .add_learner(NodeId(4), addresses[3], Some(client_address))
        .await
        .expect("the learner is added");
    assert_eq!(role_of(&leader, 4), Some(MemberRole::Learner));
    let last = *acknowledged.last().unwrap();
    all_applied(&runtime, std::slice::from_ref(&newcomer), last)
        .await
        .expect("the learner catches up");
    promote(&leader, NodeId(4)).await;
    assert_eq!(role_of(&leader, 4), Some(MemberRole::Voter));
    let match_index = leader.status().members[3].match_index;
    assert!(
        match_index.is_some_and(|index| index >= last),
        "{match_index:?}"
    );

    // A founder other than the leader dies and is removed.
    let dead = (first + 2) % 3;
    let dead_id = nodes[dead].status().id;
    nodes[dead].shutdown().await;
    leader
        .remove(dead_id)
        .await
        .expect("the dead voter is removed");
    acknowledged.extend(write(&leader, "during", 100).await);
    let members: Vec<NodeId> = leader.status().members.iter().map(|m| m.id).collect();
    assert!(!members.contains(&dead_id) && members.contains(&NodeId(4)));

    // The newcomer takes the lead and reaches the founders, whose
    // addresses it learned from the log.
    leader
        .transfer_leadership(NodeId(4))
        .await
        .expect("the transfer succeeds");
    wait_for(&runtime, "the newcomer leads", || {
        (newcomer.status().role == Role::Leader).then_some(())
    })
    .await
    .unwrap();
    acknowledged.extend(write(&newcomer, "after", 100).await);
    assert_eq!(
        newcomer.transfer_leadership(NodeId(4)).await,
        Ok(()),
        "the leader asked to lead is already done"
    );
    let seen_by_newcomer = newcomer.status().members;
    let itself = seen_by_newcomer.iter().find(|m| m.id == NodeId(4)).unwrap();
    assert_eq!(
        (itself.address, itself.client_address),
        (Some(addresses[3]), Some(client_address)),
        "the addresses it was added with are in the configuration"
    );
    assert!(
        seen_by_newcomer.iter().all(|m| m.address.is_some()),
        "the founders' addresses came with the first change: {seen_by_newcomer:?}"
    );

    // One joint change: the old leader becomes a learner.
    let old_leader = leader.status().id;
    let voters: Vec<NodeId> = members
        .iter()
        .copied()
        .filter(|&id| id != old_leader)
        .collect();
    newcomer
        .change_voters(&voters, &[old_leader])
        .await
        .expect("the joint change settles");
    let status = newcomer.status();
    assert!(status.commit_index >= status.membership_index);
    assert_eq!(
        role_of(&newcomer, old_leader.get()),
        Some(MemberRole::Learner)
    );
    acknowledged.extend(write(&newcomer, "last", 50).await);

    let alive: Vec<Handle<Recorder>> = nodes
        .iter()
        .enumerate()
        .filter(|&(position, _)| position != dead)
        .map(|(_, node)| node.clone())
        .chain([newcomer.clone()])
        .collect();
    let last = *acknowledged.iter().max().unwrap();
    all_applied(&runtime, &alive, last).await.unwrap();
    let histories: Vec<Vec<(LogIndex, Bytes)>> = [first, (first + 1) % 3, 3]
        .iter()
        .map(|&position| recorders[position].applied())
        .collect();
    for history in &histories {
        let through: Vec<_> = history.iter().filter(|(i, _)| *i <= last).collect();
        let reference: Vec<_> = histories[0].iter().filter(|(i, _)| *i <= last).collect();
        assert_eq!(through, reference, "every member applied the same history");
        for index in &acknowledged {
            assert!(
                history.iter().any(|(applied, _)| applied == index),
                "acknowledged entry {index} is missing"
            );
        }
    }
    for node in alive {
        node.shutdown().await;
    }
}

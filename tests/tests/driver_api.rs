//! The client handle's promises, on a live cluster (tokio).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kontiki::{NodeId, Role};
use kontiki_tests::live::{
    agreed_leader, all_applied, cluster_configs, free_addresses, within, Recorder,
};
use kontiki_tokio::{Handle, MemoryStorage, NodeConfig, ProposeError, ReadError, TokioRuntime};

async fn cluster(size: usize, name: &str) -> (Vec<Handle<Recorder>>, Vec<Recorder>) {
    let addresses = free_addresses(size);
    let mut nodes = Vec::new();
    let mut recorders = Vec::new();
    for config in cluster_configs(&addresses, name) {
        let recorder = Recorder::default();
        let node = kontiki_tokio::start(config, MemoryStorage::new(), recorder.clone())
            .await
            .unwrap();
        nodes.push(node);
        recorders.push(recorder);
    }
    (nodes, recorders)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_refuse_with_the_leader_and_barriers_make_reads_linearizable_without_log_writes()
{
    let runtime = TokioRuntime::current();
    let (nodes, recorders) = cluster(3, "api").await;
    let leader = agreed_leader(&runtime, &nodes, None).await.unwrap();
    let leader_id = nodes[leader].status().id;
    let follower = (leader + 1) % 3;

    assert_eq!(
        nodes[follower].propose(&b"x"[..]).await,
        Err(ProposeError::NotLeader {
            leader: Some(leader_id)
        })
    );
    assert_eq!(
        nodes[follower].read_barrier().await,
        Err(ReadError::NotLeader {
            leader: Some(leader_id)
        })
    );

    let index = nodes[leader].propose(&b"written"[..]).await.unwrap();
    nodes[leader].read_barrier().await.unwrap();
    // After the barrier, the leader's state machine holds the write.
    assert!(recorders[leader]
        .applied()
        .iter()
        .any(|(applied, command)| *applied == index && command == &b"written"[..]));
    let status = nodes[leader].status();
    assert_eq!(status.role, Role::Leader);
    assert!(status.applied_index >= index);
    // Barriers write nothing to the log, and many at once are all served
    // (they share leadership checks).
    let barriers = (0..50).map(|_| nodes[leader].read_barrier());
    let answers = futures::future::join_all(barriers).await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert_eq!(
        nodes[leader].status().last_log_index,
        status.last_log_index,
        "a read barrier appends nothing"
    );

    for node in &nodes {
        node.shutdown().await;
    }
    assert_eq!(
        nodes[leader].propose(&b"late"[..]).await,
        Err(ProposeError::Stopped)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_changes_are_announced_to_watchers() {
    let runtime = TokioRuntime::current();
    let (nodes, _) = cluster(3, "watch").await;
    let first = agreed_leader(&runtime, &nodes, None).await.unwrap();
    let first_id = nodes[first].status().id;
    let watcher_position = (first + 1) % 3;
    let mut changes = nodes[watcher_position].leader_changes();
    let current = changes.next().await.unwrap();
    assert_eq!(current.leader, Some(first_id));

    nodes[first].shutdown().await;
    let next = within(
        &runtime,
        Duration::from_secs(10),
        "a new leader is announced",
        async {
            loop {
                let change = changes.next().await.expect("the node is running");
                if let Some(leader) = change.leader {
                    if leader != first_id {
                        return change;
                    }
                }
            }
        },
    )
    .await
    .unwrap();
    assert!(next.term > current.term);
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_single_node_leads_at_once_and_commits_alone() {
    let address = free_addresses(1)[0];
    let config = NodeConfig::new(NodeId(1), address, BTreeMap::new());
    let recorder = Recorder::default();
    let node = kontiki_tokio::start(config, MemoryStorage::new(), recorder.clone())
        .await
        .unwrap();
    let index = node.propose(&b"alone"[..]).await.unwrap();
    assert_eq!(node.status().role, Role::Leader);
    assert_eq!(recorder.applied().last().unwrap().0, index);
    node.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_restarted_node_reapplies_what_it_persisted() {
    let address = free_addresses(1)[0];
    let storage = MemoryStorage::new();
    let config = NodeConfig::new(NodeId(1), address, BTreeMap::new());
    let node = kontiki_tokio::start(config.clone(), storage.clone(), Recorder::default())
        .await
        .unwrap();
    for n in 0..5u8 {
        node.propose(vec![n]).await.unwrap();
    }
    node.shutdown().await;
    drop(node);

    let recorder = Recorder::default();
    let node = kontiki_tokio::start(config, storage, recorder.clone())
        .await
        .unwrap();
    node.read_barrier().await.unwrap();
    let commands: Vec<u8> = recorder
        .applied()
        .iter()
        .map(|(_, command)| command[0])
        .collect();
    assert_eq!(commands, vec![0, 1, 2, 3, 4]);
    node.shutdown().await;
}

/// The status never runs ahead of the state machine: once a node's status
/// says an index was applied, its state machine holds every command up
/// to that index (the node publishes its status after applying and before
/// answering). Watchers sample each node's status and then its state
/// machine while writers keep the cluster busy on two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_never_says_more_was_applied_than_the_state_machine_holds() {
    let runtime = TokioRuntime::current();
    let (nodes, recorders) = cluster(3, "status-order").await;
    let leader = agreed_leader(&runtime, &nodes, None).await.unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let mut watchers = Vec::new();
    for (node, recorder) in nodes.iter().zip(&recorders) {
        let (node, recorder, done) = (node.clone(), recorder.clone(), done.clone());
        watchers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let said = node.status().applied_index;
                let held = recorder.applied().last().map(|(index, _)| *index);
                samples.push((said, held));
                tokio::task::yield_now().await;
            }
            samples
        }));
    }
    let mut writers = Vec::new();
    for writer in 0..8u32 {
        let node = nodes[leader].clone();
        writers.push(tokio::spawn(async move {
            let mut indexes = Vec::new();
            for write in 0..250u32 {
                let command = [writer.to_le_bytes(), write.to_le_bytes()].concat();
                indexes.push(node.propose(command).await.expect("committed"));
            }
            indexes
        }));
    }
    let mut commands = BTreeSet::new();
    for writer in writers {
        commands.extend(writer.await.unwrap());
    }
    let last = *commands.last().unwrap();
    all_applied(&runtime, &nodes, last).await.unwrap();
    done.store(true, Ordering::Relaxed);
    let mut checked = 0;
    for watcher in watchers {
        for (said, held) in watcher.await.unwrap() {
            // The last command at or below the index the status gave
            // (entries between are the leader's no-ops).
            let Some(&due) = commands.range(..=said).next_back() else {
                continue;
            };
            assert!(
                held >= Some(due),
                "status said {said} was applied while the state machine held up to {held:?}"
            );
            checked += 1;
        }
    }
    assert!(
        checked > 100,
        "the watchers saw the writes: {checked} samples"
    );
    for node in &nodes {
        node.shutdown().await;
    }
}

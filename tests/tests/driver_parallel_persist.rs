//! The driver's side of writes that run in the background: a leader's
//! appends leave before its own write completes, and a proposal that
//! needs the leader's copy for a majority completes only once that write
//! does; a node whose disk stalls keeps answering and sending heartbeats,
//! so a stalled leader keeps its leadership and a stalled follower holds
//! back no commit. A node's disk is a gate the test holds shut.

use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use futures::FutureExt;
use kontiki::{Persist, PersistedState};
use kontiki_driver::{Handle, LocalNetwork, MemoryStorage, SnapshotStore, Storage};
use kontiki_tests::live::{
    agreed_leader, cluster_configs, free_addresses, start_local_cluster, Recorder,
};
use kontiki_tokio::TokioRuntime;

/// A memory store whose writes wait while its gate is shut.
#[derive(Clone, Default)]
struct GatedStorage {
    store: MemoryStorage,
    shut: Arc<(Mutex<bool>, Condvar)>,
}

impl GatedStorage {
    fn set_shut(&self, shut: bool) {
        let (lock, changed) = &*self.shut;
        *lock.lock().unwrap() = shut;
        changed.notify_all();
    }
}

impl Storage for GatedStorage {
    fn load(&mut self) -> io::Result<PersistedState> {
        self.store.load()
    }

    fn write(&mut self, writes: &[Persist]) -> io::Result<()> {
        let (lock, changed) = &*self.shut;
        let mut shut = lock.lock().unwrap();
        while *shut {
            shut = changed.wait(shut).unwrap();
        }
        drop(shut);
        self.store.write(writes)
    }

    fn blocks(&self) -> bool {
        // Runs on the blocking pool, so a shut gate stalls only this node.
        true
    }
    fn snapshots(&self) -> Arc<dyn SnapshotStore> {
        self.store.snapshots()
    }
}

/// Opens the gate when dropped, so that a failing test ends instead of
/// leaving a blocking thread stuck in a write.
struct OpenOnDrop(GatedStorage);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.set_shut(false);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_sends_before_its_write_and_commits_only_after_it() {
    let runtime = TokioRuntime::current();
    let network = LocalNetwork::new();
    let configs = cluster_configs(&free_addresses(3), "gated");
    let stores: Vec<GatedStorage> = configs.iter().map(|_| GatedStorage::default()).collect();
    let nodes = start_local_cluster(&runtime, &network, &configs, &stores).await;
    let leader = agreed_leader(&runtime, &nodes, None).await.unwrap();
    let (up, down) = ((leader + 1) % 3, (leader + 2) % 3);
    // With one follower gone, a majority needs the leader's own copy.
    nodes[down].shutdown().await;

    let before = nodes[leader].status().last_log_index;
    stores[leader].set_shut(true);
    let _reopen = OpenOnDrop(stores[leader].clone());
    let proposer = nodes[leader].clone();
    let mut proposal = tokio::spawn(async move { proposer.propose(b"x".to_vec()).await });
    let entry_reached_follower = async {
        loop {
            let follower_log = stores[up].store.contents().entries;
            if follower_log.iter().any(|entry| entry.data[..] == b"x"[..]) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), entry_reached_follower)
        .await
        .expect("the follower holds the entry while the leader's write is stuck");
    // Well within the election timeout (150 ms), so the follower keeps
    // its leader although the leader's task is stuck in the write.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        (&mut proposal).now_or_never().is_none(),
        "committed without the leader's own write"
    );

    stores[leader].set_shut(false);
    let committed = tokio::time::timeout(Duration::from_secs(5), proposal)
        .await
        .expect("commits once the write completes")
        .unwrap()
        .expect("the proposal commits");
    assert!(committed > before);
    for node in [&nodes[leader], &nodes[up]] {
        node.shutdown().await;
    }
}

/// How long a disk stays stalled: several election timeouts (150–300 ms).
const STALL: Duration = Duration::from_secs(2);

/// The (term, leader) every node reports, if they agree.
fn agreed(nodes: &[Handle<Recorder>]) -> Option<(kontiki::Term, Option<kontiki::NodeId>)> {
    let first = nodes[0].status();
    nodes
        .iter()
        .all(|node| {
            let status = node.status();
            (status.term, status.leader) == (first.term, first.leader)
        })
        .then_some((first.term, first.leader))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_disk_stalls_keeps_leading_and_its_followers_commit() {
    let runtime = TokioRuntime::current();
    let network = LocalNetwork::new();
    let configs = cluster_configs(&free_addresses(3), "stalled-leader");
    let stores: Vec<GatedStorage> = configs.iter().map(|_| GatedStorage::default()).collect();
    let nodes = start_local_cluster(&runtime, &network, &configs, &stores).await;
    let leader = agreed_leader(&runtime, &nodes, None).await.unwrap();
    let before = agreed(&nodes).expect("one term, one leader");

    stores[leader].set_shut(true);
    let _reopen = OpenOnDrop(stores[leader].clone());
    let stalled_at = std::time::Instant::now();
    // Both followers make a majority without the leader's own copy: each
    // proposal commits while the leader's write of it is stuck.
    for round in 0..20u8 {
        tokio::time::timeout(Duration::from_secs(1), nodes[leader].propose(vec![round]))
            .await
            .expect("commits while the leader's disk is stalled")
            .expect("the proposal commits");
    }
    let remaining = STALL.saturating_sub(stalled_at.elapsed());
    tokio::time::sleep(remaining).await;
    assert_eq!(
        agreed(&nodes),
        Some(before),
        "the same leader in the same term after a {STALL:?} stall"
    );
    for (position, node) in nodes.iter().enumerate() {
        if position == leader {
            continue;
        }
        let contact = node.status().last_leader_contact.expect("a leader heard");
        assert!(
            contact.elapsed() < Duration::from_millis(150),
            "heartbeats kept coming: the last {:?} ago",
            contact.elapsed()
        );
    }
    stores[leader].set_shut(false);
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_whose_disk_stalls_holds_back_no_commit() {
    let runtime = TokioRuntime::current();
    let network = LocalNetwork::new();
    let configs = cluster_configs(&free_addresses(3), "stalled-follower");
    let stores: Vec<GatedStorage> = configs.iter().map(|_| GatedStorage::default()).collect();
    let nodes = start_local_cluster(&runtime, &network, &configs, &stores).await;
    let leader = agreed_leader(&runtime, &nodes, None).await.unwrap();
    let before = agreed(&nodes).expect("one term, one leader");
    let stalled = (leader + 1) % 3;

    stores[stalled].set_shut(true);
    let _reopen = OpenOnDrop(stores[stalled].clone());
    let stalled_at = std::time::Instant::now();
    let mut last = kontiki::LogIndex(0);
    for round in 0..50u8 {
        last = tokio::time::timeout(Duration::from_secs(1), nodes[leader].propose(vec![round]))
            .await
            .expect("commits at the speed of the other majority")
            .expect("the proposal commits");
    }
    let remaining = STALL.saturating_sub(stalled_at.elapsed());
    tokio::time::sleep(remaining).await;
    assert_eq!(agreed(&nodes), Some(before), "no election");
    assert!(
        stores[stalled].store.contents().last_index() < last,
        "the stalled follower has not written everything"
    );
    // Once its disk is back it catches up.
    stores[stalled].set_shut(false);
    kontiki_tests::live::wait_for(&runtime, "the stalled follower applies all", || {
        (nodes[stalled].status().applied_index >= last).then_some(())
    })
    .await
    .unwrap();
    for node in &nodes {
        node.shutdown().await;
    }
}

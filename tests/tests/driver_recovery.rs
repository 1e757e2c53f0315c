//! A node whose store lost part of its log, through the driver: its status
//! says it is recovering (it neither votes nor campaigns) until a leader
//! elected without it has sent it an entry of a later term.

use std::time::Duration;

use kontiki::{HardState, Persist};
use kontiki_driver::{LocalNetwork, MemoryStorage, Storage};
use kontiki_tests::live::{
    agreed_leader, cluster_configs, free_addresses, start_local_cluster, wait_for, Recorder,
};
use kontiki_tokio::TokioRuntime;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_lost_part_of_its_log_says_so_until_a_new_leader_catches_it_up() {
    let runtime = TokioRuntime::current();
    let network = LocalNetwork::new();
    let configs = cluster_configs(&free_addresses(3), "recovery");
    let stores: Vec<MemoryStorage> = configs.iter().map(|_| MemoryStorage::new()).collect();
    let mut nodes = start_local_cluster(&runtime, &network, &configs, &stores).await;
    let leader = agreed_leader(&runtime, &nodes, None).await.unwrap();
    for round in 0..10u8 {
        nodes[leader].propose(vec![round]).await.unwrap();
    }
    assert!(nodes.iter().all(|node| !node.status().recovering));

    // A follower goes down, and its store is found damaged: it marks the
    // hard state as a damaged store does.
    let damaged = (leader + 1) % 3;
    nodes[damaged].shutdown().await;
    let mut store = stores[damaged].clone();
    let mut hard_state = store.load().unwrap().hard_state;
    hard_state.log_lost_at_term = Some(hard_state.term);
    store.write(&[Persist::HardState(hard_state)]).unwrap();
    let restarted = kontiki_driver::start_local(
        runtime.clone(),
        &network,
        configs[damaged].clone(),
        stores[damaged].clone(),
        Recorder::default(),
    )
    .await
    .unwrap();
    nodes[damaged] = restarted;
    assert!(nodes[damaged].status().recovering);

    // The leader of the same term catches it up, but only a leader elected
    // after the loss ends its recovery.
    nodes[leader].propose(b"after".to_vec()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        nodes[damaged].status().recovering,
        "same term: still recovering"
    );
    let other = 3 - leader - damaged;
    nodes[leader]
        .transfer_leadership(configs[other].id)
        .await
        .expect("the healthy follower takes over");
    wait_for(&runtime, "the damaged node recovered", || {
        (!nodes[damaged].status().recovering).then_some(())
    })
    .await
    .unwrap();
    let stored: HardState = stores[damaged].contents().hard_state;
    assert_eq!(stored.log_lost_at_term, None, "the recovery is durable");
    for node in &nodes {
        node.shutdown().await;
    }
}

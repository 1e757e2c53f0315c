//! Nodes on a `LocalNetwork`: the core's messages through in-process
//! channels, with the driver's event loop, storage and timers unchanged.

use std::time::Duration;

use kontiki_driver::{LocalNetwork, MemoryStorage, StartError};
use kontiki_tests::live::{
    agreed_leader, all_applied, cluster_configs, elect_replicate_fail_over, free_addresses,
    local_starter, propose_all, start_local_cluster, Recorder,
};
use kontiki_tokio::TokioRuntime;

#[tokio::test(flavor = "current_thread")]
async fn three_nodes_elect_replicate_and_fail_over_on_a_local_network() {
    let network = LocalNetwork::new();
    let runtime = TokioRuntime::current();
    let starters = (0..3)
        .map(|_| local_starter(runtime.clone(), &network))
        .collect();
    elect_replicate_fail_over(runtime, starters, "local")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_restarts_on_its_store_and_catches_up() {
    let network = LocalNetwork::new();
    let runtime = TokioRuntime::current();
    let configs = cluster_configs(&free_addresses(3), "local-restart");
    let stores: Vec<MemoryStorage> = configs.iter().map(|_| MemoryStorage::new()).collect();
    let mut nodes = start_local_cluster(&runtime, &network, &configs, &stores).await;
    let leader = agreed_leader(&runtime, &nodes, None).await.unwrap();
    let follower = (leader + 1) % 3;

    // While it runs, its id is taken.
    let duplicate = kontiki_driver::start_local(
        runtime.clone(),
        &network,
        configs[follower].clone(),
        MemoryStorage::new(),
        Recorder::default(),
    )
    .await;
    let taken = configs[follower].id;
    assert!(matches!(duplicate, Err(StartError::AlreadyRunning(id)) if id == taken));

    nodes[follower].shutdown().await;
    let commands = (0..200u32).map(|n| n.to_le_bytes().to_vec());
    let indices = propose_all(&nodes[leader], commands).await.unwrap();
    let last = *indices.iter().max().unwrap();

    let recorder = Recorder::default();
    nodes[follower] = kontiki_driver::start_local(
        runtime.clone(),
        &network,
        configs[follower].clone(),
        stores[follower].clone(),
        recorder.clone(),
    )
    .await
    .expect("a stopped node's id is free again");
    all_applied(&runtime, &nodes, last).await.unwrap();
    let applied: Vec<_> = recorder
        .applied()
        .into_iter()
        .map(|(index, _)| index)
        .collect();
    for index in &indices {
        assert!(
            applied.contains(index),
            "entry {index} reached the restarted node"
        );
    }
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_node_alone_on_the_network_waits_for_its_peers() {
    let network = LocalNetwork::new();
    let runtime = TokioRuntime::current();
    let configs = cluster_configs(&free_addresses(3), "local-late");
    let first = kontiki_driver::start_local(
        runtime.clone(),
        &network,
        configs[0].clone(),
        MemoryStorage::new(),
        Recorder::default(),
    )
    .await
    .expect("node starts");
    // Its messages go nowhere: no majority, no leader.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(first.status().leader, None);
    let mut nodes = vec![first];
    for config in &configs[1..] {
        let node = kontiki_driver::start_local(
            runtime.clone(),
            &network,
            config.clone(),
            MemoryStorage::new(),
            Recorder::default(),
        )
        .await
        .expect("node starts");
        nodes.push(node);
    }
    agreed_leader(&runtime, &nodes, None).await.unwrap();
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_node_listed_among_its_own_peers_is_refused_by_name() {
    let network = LocalNetwork::new();
    let mut config = cluster_configs(&free_addresses(3), "self-peer").remove(0);
    let own_address = config.listen;
    config.peers.insert(config.id, own_address);
    let started = kontiki_driver::start_local(
        TokioRuntime::current(),
        &network,
        config.clone(),
        MemoryStorage::new(),
        Recorder::default(),
    )
    .await;
    let Err(error) = started else {
        panic!("a node listed among its own peers started");
    };
    assert!(matches!(error, StartError::SelfAmongPeers(id) if id == config.id));
    assert!(error.to_string().contains("listed among its own peers"));
}

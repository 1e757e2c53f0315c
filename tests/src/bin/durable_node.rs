//! One durable node of a test cluster, in its own process, for the kill -9
//! test (`tests/kill_nine.rs`). While it leads, four writers propose
//! commands and print `ACK <index> <command>` for each acknowledged one.
//! Closing its standard input shuts it down gracefully.
//!
//! Usage: `durable_node <id> <data-dir> <cluster-id> <address of node 1> ...`

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

use kontiki::{LogIndex, NodeId, Role};
use kontiki_driver::{open_data_dir, Bytes, NodeConfig, ProposeError, StateMachine};

struct Indices;

impl StateMachine for Indices {
    type Output = LogIndex;

    fn apply(&mut self, index: LogIndex, _command: &Bytes) -> LogIndex {
        index
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [id, data_dir, cluster_id, addresses @ ..] = args.as_slice() else {
        eprintln!("usage: durable_node <id> <data-dir> <cluster-id> <address>...");
        std::process::exit(2);
    };
    let id = NodeId(id.parse().expect("a numeric node id"));
    let addresses: Vec<SocketAddr> = addresses
        .iter()
        .map(|address| address.parse().expect("a socket address"))
        .collect();
    let peers: BTreeMap<NodeId, SocketAddr> = (1..=addresses.len() as u64)
        .map(NodeId)
        .zip(addresses.iter().copied())
        .filter(|(peer, _)| *peer != id)
        .collect();
    let mut config = NodeConfig::new(id, addresses[(id.get() - 1) as usize], peers);
    config.cluster_id = cluster_id.clone();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let storage = open_data_dir(data_dir).expect("the data directory opens");
        let node = kontiki_tokio::start(config, storage, Indices)
            .await
            .expect("the node starts");
        for writer in 0..4 {
            let node = node.clone();
            tokio::spawn(async move {
                let mut sequence = 0u64;
                loop {
                    if node.status().role != Role::Leader {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                    sequence += 1;
                    let command = format!("n{id}-w{writer}-{sequence}");
                    match node.propose(command.clone().into_bytes()).await {
                        Ok(index) => println!("ACK {index} {command}"),
                        // The node is shutting down: stop writing.
                        Err(ProposeError::Stopped) => return,
                        // Leadership moved: wait for the status to catch up
                        // rather than spin.
                        Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
            });
        }
        // Standard input closing is the signal to stop.
        tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        })
        .await
        .expect("stdin watcher");
        node.shutdown().await;
    });
}

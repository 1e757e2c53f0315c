//! Three `kontiki node` processes on loopback — one per runtime, so the
//! runtimes also prove they interoperate — serve writes and reads through
//! the Redis protocol, lose their leader to SIGKILL while a client keeps
//! writing, elect another, take the killed node back, and end with every
//! acknowledged write on all three.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{wait_until, write_through_leader, Client, ProcessCluster, Reply};

const ELECTION_LIMIT: Duration = Duration::from_secs(20);

#[test]
fn a_mixed_runtime_cluster_survives_sigkill_of_its_leader() {
    let mut cluster = ProcessCluster::start(&["tokio", "smol", "async-std"]);
    let addresses = cluster.client_addresses();
    let first = cluster.wait_for_leader(None, ELECTION_LIMIT);

    // Reads and writes through the leader; a follower redirects.
    let mut leader = Client::connect(addresses[first as usize - 1]).unwrap();
    assert_eq!(
        leader.command("SET greeting hello").unwrap(),
        Reply::Simple("OK".into())
    );
    assert_eq!(
        leader.command("GET greeting").unwrap(),
        Reply::Bulk(Some(b"hello".to_vec()))
    );
    assert_eq!(leader.command("INCR visits").unwrap(), Reply::Integer(1));
    let follower = if first == 1 { 2 } else { 1 };
    let mut follower = Client::connect(addresses[follower - 1]).unwrap();
    let moved = format!("MOVED 0 {}", addresses[first as usize - 1]);
    assert_eq!(
        follower.command("SET x 1").unwrap(),
        Reply::Error(moved.clone())
    );
    assert_eq!(
        follower.command("GET greeting").unwrap(),
        Reply::Error(moved)
    );

    // A client writes the whole time, recording what was acknowledged.
    let acknowledged = Arc::new(Mutex::new(BTreeMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acknowledged, stop, addresses) =
            (acknowledged.clone(), stop.clone(), addresses.clone());
        std::thread::spawn(move || {
            let mut sequence = 0u64;
            while !stop.load(Ordering::Relaxed) {
                sequence += 1;
                let (key, value) = (format!("key-{sequence}"), format!("value-{sequence}"));
                if write_through_leader(&addresses, &key, &value, Duration::from_secs(30)) {
                    acknowledged.lock().unwrap().insert(key, value);
                }
            }
        })
    };
    let count = || acknowledged.lock().unwrap().len();
    wait_until("100 acknowledged writes", || count() >= 100);
    cluster.nodes[first as usize - 1].kill();
    let before_kill = count();
    let second = cluster.wait_for_leader(Some(first), ELECTION_LIMIT);
    wait_until("100 more writes under the new leader", || {
        count() >= before_kill + 100
    });
    cluster.nodes[first as usize - 1].restart();
    wait_until("50 more writes with the old leader back", || {
        count() >= before_kill + 150
    });
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    // Every node catches up with the leader's commit index, then holds
    // every acknowledged write (READONLY reads a node's own state).
    let commit = cluster
        .info(second)
        .and_then(|info| info["commit_index"].parse::<u64>().ok());
    let commit = commit.expect("the leader answers INFO");
    let acknowledged = acknowledged.lock().unwrap().clone();
    for node in 1..=3u64 {
        cluster.assert_holds(node, commit, &acknowledged);
        // Over 250 writes with a snapshot every 50: every node, the one
        // restarted after SIGKILL included, holds a snapshot.
        let snapshot = cluster
            .info(node)
            .and_then(|info| info["snapshot_index"].parse::<u64>().ok());
        assert!(
            snapshot.is_some_and(|index| index >= 50),
            "node {node} reports snapshot index {snapshot:?}"
        );
    }

    // SIGTERM stops each node gracefully.
    for node in &mut cluster.nodes {
        assert!(
            node.terminate(Duration::from_secs(10)),
            "node {} did not exit cleanly",
            node.id
        );
    }
}

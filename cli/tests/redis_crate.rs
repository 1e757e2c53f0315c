//! The `redis` crate (redis-rs), Rust's most used Redis client, against a
//! three-node `kontiki node` cluster, doing what its users typically do:
//! plain commands, a pipeline, an atomic pipeline (MULTI/EXEC), hashes,
//! expiry, a WATCH transaction, SCAN, RESP3,
//! and its cluster client, which finds the leader through any node and
//! again after the leader is killed.

mod common;

use std::time::{Duration, Instant};

use common::ProcessCluster;
use redis::Commands;

fn url(address: std::net::SocketAddr, query: &str) -> String {
    format!("redis://{address}/{query}")
}

#[test]
fn the_redis_crate_works_against_a_cluster() {
    let mut cluster = ProcessCluster::start(&["tokio", "tokio", "tokio"]);
    let leader = cluster.wait_for_leader(None, Duration::from_secs(20));
    let addresses = cluster.client_addresses();
    let leader_address = addresses[leader as usize - 1];

    for protocol in ["", "?protocol=resp3"] {
        let client = redis::Client::open(url(leader_address, protocol)).unwrap();
        let mut connection = client.get_connection().unwrap();
        let () = connection.set("greeting", "hello").unwrap();
        let greeting: String = connection.get("greeting").unwrap();
        assert_eq!(greeting, "hello");
        let missing: Option<String> = connection.get("missing").unwrap();
        assert_eq!(missing, None, "{protocol}");
        let _: () = connection.del("counter").unwrap();
        let counter: i64 = connection.incr("counter", 5).unwrap();
        assert_eq!(counter, 5);
        let counter: i64 = connection.decr("counter", 2).unwrap();
        assert_eq!(counter, 3);
        let () = connection.mset(&[("a", "1"), ("b", "2")]).expect("MSET");
        let values: Vec<Option<String>> = connection.mget(&["a", "b", "c"]).unwrap();
        assert_eq!(values, [Some("1".into()), Some("2".into()), None]);

        // A pipeline, then an atomic one: MULTI ... EXEC, one log entry.
        let (length, old): (i64, String) = redis::pipe()
            .append("a", "x")
            .getset("b", "3")
            .query(&mut connection)
            .unwrap();
        assert_eq!((length, old.as_str()), (2, "2"));
        let (set, incremented, read): (bool, i64, String) = redis::pipe()
            .atomic()
            .set_nx("fresh-key", "v")
            .incr("counter", 1)
            .get("b")
            .query(&mut connection)
            .unwrap();
        assert!(set, "{protocol}");
        assert_eq!((incremented, read.as_str()), (4, "3"));
        let _: () = connection.del("fresh-key").unwrap();

        // Hashes, expiry, and the crate's optimistic transaction helper
        // (WATCH, then MULTI ... EXEC, retried while a watched key moves).
        let _: () = connection.del("h").unwrap();
        let () = connection
            .hset_multiple("h", &[("f", "1"), ("g", "x")])
            .unwrap();
        let all: std::collections::HashMap<String, String> = connection.hgetall("h").unwrap();
        assert_eq!(all.len(), 2, "{protocol}");
        let bumped: i64 = connection.hincr("h", "f", 4).unwrap();
        assert_eq!(bumped, 5);
        let set: bool = connection.expire("h", 60).unwrap();
        assert!(set);
        let ttl: i64 = connection.ttl("h").unwrap();
        assert!((59..=60).contains(&ttl), "{ttl}");
        let (total,): (i64,) = redis::transaction(&mut connection, &["h"], |con, pipe| {
            let current: i64 = con.hget("h", "f")?;
            pipe.hset("h", "f", current * 2)
                .ignore()
                .hget("h", "f")
                .query(con)
        })
        .unwrap();
        assert_eq!(total, 10);
        let (cursor, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(0)
            .arg("TYPE")
            .arg("hash")
            .arg("COUNT")
            .arg(1000)
            .query(&mut connection)
            .unwrap();
        assert_eq!((cursor, keys), (0, vec!["h".to_string()]));
    }

    // The cluster client starts from a follower, finds the leader in
    // CLUSTER SLOTS, and after the leader is killed finds the new one.
    let follower = addresses[if leader == 1 { 1 } else { 0 }];
    let client = redis::cluster::ClusterClient::new(vec![url(follower, "")]).unwrap();
    let mut connection = client.get_connection().unwrap();
    let () = connection.set("cluster-key", "before").unwrap();
    cluster.nodes[leader as usize - 1].kill();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match connection.set::<_, _, ()>("cluster-key", "after") {
            Ok(()) => break,
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "no write after the kill: {error}"
                );
                eprintln!("after the kill: {error}");
                std::thread::sleep(Duration::from_millis(100));
                // The crate's synchronous cluster connection keeps its
                // view of the slots on a refused connection; a new one
                // asks the cluster again.
                if let Ok(fresh) = client.get_connection() {
                    connection = fresh;
                }
            }
        }
    }
    let value: String = connection.get("cluster-key").unwrap();
    assert_eq!(value, "after");
    let counter: i64 = connection.get("counter").unwrap();
    assert_eq!(counter, 4, "what was acknowledged before the kill is there");
}

//! redis-py, the most used Python client, against a three-node cluster:
//! its defaults (which open with `HELLO` and `CLIENT SETINFO`), RESP2 and
//! RESP3, plain and transactional pipelines, and `RedisCluster` from a
//! follower, then again after the leader is SIGKILLed
//! (`tests/python/clients.py` does the calls).
//!
//! It needs a Python with redis-py: `KONTIKI_PYTHON` names it (`.ci/run`
//! makes a virtual environment with redis from PyPI and sets it). Without
//! one the test says so and passes, unless `KONTIKI_REQUIRE_REDIS_PY=1`
//! (CI sets it).

mod common;

use std::process::Command;
use std::time::Duration;

use common::ProcessCluster;

/// The Python to run, if one with redis-py is there.
fn python() -> Option<String> {
    let python = std::env::var("KONTIKI_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_redis = Command::new(&python)
        .args(["-c", "import redis"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !has_redis {
        assert!(
            std::env::var_os("KONTIKI_REQUIRE_REDIS_PY").is_none(),
            "{python} has no redis-py (pip install redis)"
        );
        eprintln!("SKIPPED: {python} has no redis-py (set KONTIKI_PYTHON)");
        return None;
    }
    Some(python)
}

fn run(python: &str, arguments: &[String]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/clients.py");
    let output = Command::new(python)
        .arg(script)
        .args(arguments)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "redis-py {arguments:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn redis_py_works_against_a_cluster_and_across_a_leader_kill() {
    let Some(python) = python() else {
        return;
    };
    let mut cluster = ProcessCluster::start(&["tokio", "tokio", "tokio"]);
    let leader = cluster.wait_for_leader(None, Duration::from_secs(20));
    let addresses = cluster.client_addresses();
    let leader_address = addresses[leader as usize - 1];
    let follower = addresses[if leader == 1 { 1 } else { 0 }];
    let host = leader_address.ip().to_string();
    run(
        &python,
        &[
            "before".into(),
            host.clone(),
            leader_address.port().to_string(),
            follower.port().to_string(),
        ],
    );
    cluster.nodes[leader as usize - 1].kill();
    run(
        &python,
        &[
            "after".into(),
            host,
            follower.port().to_string(),
            leader_address.port().to_string(),
        ],
    );
}

/// redis-py over TLS with a password (`ssl=True`, `ssl_ca_certs`,
/// `password`), in RESP2 and RESP3, and its errors for a wrong password,
/// none, and plaintext.
#[test]
fn redis_py_works_over_tls_with_a_password() {
    let Some(python) = python() else {
        return;
    };
    let node = common::SecureNode::start("async-std");
    let address = node.address();
    run(
        &python,
        &[
            "secure".into(),
            address.ip().to_string(),
            address.port().to_string(),
            node.ca.display().to_string(),
            node.password.into(),
        ],
    );
}

//! Three `kontiki node` processes — one per runtime — linked by mutual
//! TLS, with certificates from `kontiki cert` and the TLS files named in
//! config files: they elect, replicate, survive a SIGHUP (which rereads
//! the files), and a node given another node's certificate refuses to
//! start, saying why.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{kontiki, write_through_leader, ProcessCluster};

/// Writes node `id`'s config file, naming its TLS files in `certs`.
fn tls_config(dir: &Path, certs: &Path, id: u64, certified: u64) -> String {
    let path = dir.join(format!("node-{id}.toml"));
    let text = format!(
        "tls_ca = {:?}\ntls_cert = {:?}\ntls_key = {:?}\n",
        certs.join("ca.pem"),
        certs.join(format!("node-{certified}.pem")),
        certs.join(format!("node-{certified}-key.pem")),
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_tls_cluster_of_processes_serves_clients() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let made = kontiki()
        .args(["cert", "--dir", certs.to_str().unwrap(), "--nodes", "1,2,3"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    assert!(String::from_utf8_lossy(&made.stdout).contains("node-3-key.pem"));

    let configs: BTreeMap<u64, String> = (1..=3)
        .map(|id| (id, tls_config(dir.path(), &certs, id, id)))
        .collect();
    let cluster = ProcessCluster::start_each(&["tokio", "smol", "async-std"], &|id| {
        vec![format!("--config={}", configs[&id])]
    });
    cluster.wait_for_leader(None, Duration::from_secs(30));
    let addresses = cluster.client_addresses();
    let mut acknowledged = BTreeMap::new();
    for n in 0..20 {
        let (key, value) = (format!("key-{n}"), format!("value-{n}"));
        assert!(write_through_leader(
            &addresses,
            &key,
            &value,
            Duration::from_secs(20)
        ));
        acknowledged.insert(key, value);
    }
    let commit: u64 = cluster
        .info(cluster.wait_for_leader(None, Duration::from_secs(10)))
        .unwrap()["commit_index"]
        .parse()
        .unwrap();
    for id in 1..=3 {
        cluster.assert_holds(id, commit, &acknowledged);
    }

    // SIGHUP rereads the files and leaves the node serving.
    let pid = cluster.nodes[0].pid().unwrap();
    let hangup = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(hangup.success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        cluster.info(1).is_some(),
        "node 1 stopped answering after SIGHUP"
    );
    assert!(write_through_leader(
        &addresses,
        "after-hangup",
        "yes",
        Duration::from_secs(20)
    ));

    // Node 1's files given to a node 4: refused before it starts.
    let wrong = tls_config(dir.path(), &certs, 4, 1);
    let refused = kontiki()
        .args([
            "node",
            "--config",
            &wrong,
            "--id=4",
            "--listen=127.0.0.1:0",
            "--client=127.0.0.1:1",
            "--join",
        ])
        .arg(format!(
            "--data-dir={}",
            dir.path().join("node-4").display()
        ))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("the certificate is not for node 4"),
        "{stderr}"
    );
}

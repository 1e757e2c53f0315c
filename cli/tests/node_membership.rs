//! Replacing a dead node of a running `kontiki node` cluster with the
//! `kontiki` command, under load: a follower is SIGKILLed and its data
//! deleted; a fresh node started with `--join` is added
//! (`kontiki member add`), promoted and the dead one removed; then the
//! leader is SIGKILLed too, and brought back. Every acknowledged write is
//! on every member at the end, and `kontiki transfer` hands the
//! leadership to another voter. Prints how long the replacement took and
//! the write rate before and during it.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{kontiki, wait_until, write_through_leader, ProcessCluster};

const ELECTION_LIMIT: Duration = Duration::from_secs(20);

/// Runs `kontiki <arguments>`; its standard output, or a panic with its
/// error.
fn kontiki_command(arguments: &[&str]) -> String {
    let output = kontiki().args(arguments).output().expect("run kontiki");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kontiki {arguments:?} failed: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn a_dead_node_is_replaced_under_load_and_nothing_acknowledged_is_lost() {
    let mut cluster = ProcessCluster::start(&["tokio", "smol", "tokio"]);
    let first = cluster.wait_for_leader(None, ELECTION_LIMIT);
    let addresses = Arc::new(Mutex::new(cluster.client_addresses()));

    // A client writes the whole time, through whichever node leads.
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
                let targets: Vec<SocketAddr> = addresses.lock().unwrap().clone();
                if write_through_leader(&targets, &key, &value, Duration::from_secs(30)) {
                    acknowledged.lock().unwrap().insert(key, value);
                }
            }
        })
    };
    let count = || acknowledged.lock().unwrap().len();
    wait_until("100 acknowledged writes", || count() >= 100);
    let steady_start = (Instant::now(), count());
    std::thread::sleep(Duration::from_secs(1));
    let steady_rate = (count() - steady_start.1) as f64 / steady_start.0.elapsed().as_secs_f64();

    // A follower dies and loses its disk.
    let dead = if first == 1 { 2 } else { 1 };
    cluster.nodes[dead as usize - 1].kill();
    std::fs::remove_dir_all(cluster.data_dir(dead)).unwrap();
    // The client stops trying the dead node first (each try would cost
    // it a refused connection and a pause, and hide the cluster's rate).
    let dead_client = cluster.nodes[dead as usize - 1].client;
    addresses
        .lock()
        .unwrap()
        .retain(|&address| address != dead_client);
    let any = cluster.nodes[first as usize - 1].client.to_string();

    // A fresh node joins in its place.
    let change_start = (Instant::now(), count());
    let peer = cluster.start_joining(4);
    let client = cluster.nodes[3].client;
    addresses.lock().unwrap().push(client);
    let added = kontiki_command(&[
        "member",
        "add",
        "4",
        &peer.to_string(),
        &client.to_string(),
        "--node",
        &any,
    ]);
    assert_eq!(added.trim(), "OK");
    kontiki_command(&["member", "promote", "4", "--node", &any]);
    let promoted_after = change_start.0.elapsed();
    kontiki_command(&["member", "remove", &dead.to_string(), "--node", &any]);
    let change_rate = (count() - change_start.1) as f64 / change_start.0.elapsed().as_secs_f64();
    eprintln!(
        "replacement: added to promoted in {promoted_after:?}; {steady_rate:.0} writes/s before, \
         {change_rate:.0} during the change"
    );
    let listed = kontiki_command(&["member", "list", "--node", &any]);
    let ids: Vec<&str> = listed
        .lines()
        .filter_map(|line| line.split(' ').next())
        .collect();
    assert_eq!(
        ids.len(),
        3,
        "three members after the replacement: {listed}"
    );
    assert!(!ids.contains(&format!("id={dead}").as_str()), "{listed}");
    assert!(listed.contains("id=4 role=voter"), "{listed}");
    let before = count();
    wait_until("100 writes after the replacement", || {
        count() >= before + 100
    });

    // The leader dies too: the survivor and the newcomer elect a leader
    // and go on; the old leader comes back.
    cluster.nodes[first as usize - 1].kill();
    let before = count();
    let members_running = |cluster: &ProcessCluster| {
        cluster
            .nodes
            .iter()
            .filter(|node| node.id != dead && node.is_running())
            .count()
    };
    assert_eq!(members_running(&cluster), 2);
    wait_until("100 writes under a new leader", || count() >= before + 100);
    cluster.nodes[first as usize - 1].restart();
    let before = count();
    wait_until("50 writes with the old leader back", || {
        count() >= before + 50
    });
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    // The leadership goes where it is asked to, and asking the leader
    // for itself is already done.
    let voters: Vec<u64> = (1..=4u64).filter(|&node| node != dead).collect();
    let current = cluster.wait_for_leader(None, ELECTION_LIMIT);
    let target = *voters.iter().find(|&&node| node != current).unwrap();
    let via = cluster.nodes[voters[0] as usize - 1].client.to_string();
    let target_text = target.to_string();
    assert_eq!(
        kontiki_command(&["transfer", &target_text, "--node", &via]).trim(),
        "OK"
    );
    assert_eq!(
        cluster.info(target).map(|info| info["role"].clone()),
        Some("leader".to_string()),
        "node {target} leads after the transfer"
    );
    assert_eq!(
        kontiki_command(&["transfer", &target_text, "--node", &via]).trim(),
        "OK"
    );

    // Every member holds every acknowledged write.
    let commit = cluster
        .info(target)
        .and_then(|info| info["commit_index"].parse::<u64>().ok())
        .expect("the leader answers INFO");
    let acknowledged = acknowledged.lock().unwrap().clone();
    for node in (1..=4u64).filter(|&node| node != dead) {
        cluster.assert_holds(node, commit, &acknowledged);
    }
    for node in &mut cluster.nodes {
        if node.is_running() {
            assert!(
                node.terminate(Duration::from_secs(10)),
                "node {} did not exit cleanly",
                node.id
            );
        }
    }
}

//! kill -9 at any moment loses nothing acknowledged: three node processes
//! on disk storage; the leader, busy writing, is killed with SIGKILL twice
//! and restarted on its data directory; afterwards every acknowledged
//! write is durable on a majority of the stores, the stores agree on
//! every acknowledged entry, and every store loads without damage.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use kontiki::LogIndex;
use kontiki_driver::open_data_dir;
use kontiki_tests::live::free_addresses;

/// Acknowledgements seen so far: (index, command, printed by node).
type Acks = Arc<Mutex<Vec<(LogIndex, String, usize)>>>;

fn spawn_node(id: usize, dir: &Path, addresses: &[SocketAddr], acks: &Acks) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_durable_node"))
        .arg(id.to_string())
        .arg(dir)
        .arg("kill-nine")
        .args(addresses.iter().map(ToString::to_string))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the node process starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let acks = Arc::clone(acks);
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let mut words = line.split_whitespace();
            if let (Some("ACK"), Some(index), Some(command)) =
                (words.next(), words.next(), words.next())
            {
                let index = LogIndex(index.parse().expect("an index"));
                acks.lock().unwrap().push((index, command.to_string(), id));
            }
        }
    });
    child
}

fn wait_for_acks(acks: &Acks, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while acks.lock().unwrap().len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} acknowledgements",
            acks.lock().unwrap().len()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn sigkill_of_a_busy_leader_loses_no_acknowledged_write() {
    let addresses = free_addresses(3);
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let acks: Acks = Arc::default();
    let mut children: Vec<Child> = (0..3)
        .map(|position| spawn_node(position + 1, dirs[position].path(), &addresses, &acks))
        .collect();

    let mut target = 300;
    for _round in 0..2 {
        wait_for_acks(&acks, target);
        // The node that printed the latest acknowledgement leads: kill it
        // while its writers are busy.
        let leader = acks.lock().unwrap().last().expect("acks").2;
        children[leader - 1].kill().expect("SIGKILL");
        children[leader - 1].wait().expect("reaped");
        target = acks.lock().unwrap().len() + 200;
        wait_for_acks(&acks, target);
        children[leader - 1] = spawn_node(leader, dirs[leader - 1].path(), &addresses, &acks);
        target = acks.lock().unwrap().len() + 200;
    }
    wait_for_acks(&acks, target);
    // Let the restarted node catch up, then stop everyone gracefully.
    thread::sleep(Duration::from_millis(500));
    for child in &mut children {
        drop(child.stdin.take());
    }
    for child in &mut children {
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().expect("the node's status") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("a node did not stop within 20 s of its input closing");
            }
            thread::sleep(Duration::from_millis(10));
        };
        assert!(status.success(), "a node exited with {status}");
    }

    let logs: Vec<Vec<kontiki::Entry>> = dirs
        .iter()
        .map(|dir| {
            open_data_dir(dir.path())
                .and_then(|mut store| store.load())
                .expect("every store loads without damage")
                .entries
        })
        .collect();
    let acks = acks.lock().unwrap().clone();
    for (index, command, _) in &acks {
        let holders = logs
            .iter()
            .filter(|log| {
                log.get((index.get() - 1) as usize)
                    .is_some_and(|entry| entry.data == command.as_bytes())
            })
            .count();
        assert!(
            holders >= 2,
            "acknowledged entry {index} ({command}) is on {holders} store(s)"
        );
        for log in &logs {
            if let Some(entry) = log.get((index.get() - 1) as usize) {
                assert_eq!(
                    entry.data,
                    command.as_bytes(),
                    "a store disagrees at {index}"
                );
            }
        }
    }
}

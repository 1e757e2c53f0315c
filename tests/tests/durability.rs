//! The disk stores keep their promises: a node stopped without shutdown
//! in the middle of writes restarts on its data directory and the cluster
//! loses no acknowledged write (the log store and the redb store); damaged
//! bytes in the redb store are found when the node loads and dropped,
//! never handed to Raft, and the node is told it lost them (the log
//! store's own tests do the same to it, at every byte of a cut write).

use std::fs;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kontiki::{Entry, LogIndex, Persist, Term};
use kontiki_driver::{DiskStorage, Storage, WalStorage};
use kontiki_tests::live::{agreed_leader, all_applied, cluster_configs, free_addresses, Recorder};
use kontiki_tokio::{Handle, NodeConfig, ProposeError, TokioRuntime};

/// Opens a store of one kind in a directory.
type Open<S> = fn(&std::path::Path) -> std::io::Result<S>;

/// Opens the store once the previous node on `dir` has let go of it.
async fn reopen<S: Storage>(dir: &std::path::Path, open: Open<S>) -> S {
    for _ in 0..200 {
        match open(dir) {
            Ok(store) => return store,
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    panic!("the store in {} stayed locked", dir.display());
}

async fn start<S: Storage>(
    config: NodeConfig,
    dir: &std::path::Path,
    recorder: Recorder,
    open: Open<S>,
) -> Handle<Recorder> {
    kontiki_tokio::start(config, reopen(dir, open).await, recorder)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_mid_write_restarts_and_no_acknowledged_write_is_lost() {
    stopped_mid_write(|dir| WalStorage::open(dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_redb_stopped_mid_write_restarts_and_no_acknowledged_write_is_lost() {
    stopped_mid_write(|dir| DiskStorage::open(dir)).await;
}

async fn stopped_mid_write<S: Storage>(open: Open<S>) {
    let runtime = TokioRuntime::current();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let configs = cluster_configs(&free_addresses(3), "durable");
    let mut recorders: Vec<Recorder> = (0..3).map(|_| Recorder::default()).collect();
    let mut nodes = Vec::new();
    for ((config, dir), recorder) in configs.iter().zip(&dirs).zip(&recorders) {
        nodes.push(start(config.clone(), dir.path(), recorder.clone(), open).await);
    }
    let leader = agreed_leader(&runtime, &nodes, None).await.unwrap();

    // Writers keep proposing through the leader; each acknowledgement is
    // recorded as it arrives.
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for writer in 0..8u32 {
        let node = nodes[leader].clone();
        let acknowledged = Arc::clone(&acknowledged);
        writers.push(tokio::spawn(async move {
            for n in 0u32.. {
                let command = format!("w{writer}-{n}").into_bytes();
                match node.propose(command.clone()).await {
                    Ok(index) => acknowledged.lock().unwrap().push((index, command)),
                    Err(ProposeError::Stopped) => return,
                    Err(error) => panic!("write refused: {error}"),
                }
            }
        }));
    }
    while acknowledged.lock().unwrap().len() < 300 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    // Stop the leader in the middle of its writes: its writers vanish
    // mid-proposal and its handles are dropped, without a shutdown.
    for writer in &writers {
        writer.abort();
    }
    let killed = leader;
    let killed_id = nodes[killed].status().id;
    {
        let _gone = nodes.remove(killed);
    }
    let survivor_handles: Vec<Handle<Recorder>> = nodes.clone();
    let second = agreed_leader(&runtime, &survivor_handles, Some(killed_id))
        .await
        .unwrap();
    for n in 0..100u32 {
        let command = format!("after-{n}").into_bytes();
        let index = survivor_handles[second]
            .propose(command.clone())
            .await
            .unwrap();
        acknowledged.lock().unwrap().push((index, command));
    }

    // The stopped node comes back on its own data directory.
    recorders[killed] = Recorder::default();
    let restarted = start(
        configs[killed].clone(),
        dirs[killed].path(),
        recorders[killed].clone(),
        open,
    )
    .await;
    nodes.insert(killed, restarted);
    survivor_handles[second].read_barrier().await.unwrap();
    let commit = survivor_handles[second].status().commit_index;
    all_applied(&runtime, &nodes, commit).await.unwrap();

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 400);
    for (position, recorder) in recorders.iter().enumerate() {
        let applied = recorder.applied();
        for (index, command) in &acknowledged {
            let found = applied
                .iter()
                .any(|(at, applied)| at == index && applied == &command[..]);
            assert!(
                found,
                "node {} lacks acknowledged entry {index}",
                position + 1
            );
        }
    }
    for node in &nodes {
        node.shutdown().await;
    }
}

/// A bit flipped in the database file, inside entry 42's record: the
/// store finds it by its checksum, drops the log from there, and marks the
/// hard state so that the node abstains from votes until it has caught up
/// (see `HardState::log_lost_at_term`); the repair is durable.
#[test]
fn a_damaged_record_in_the_store_loses_the_log_from_there_and_marks_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let marker = b"MARKER-a-payload-we-can-find-in-the-file";
    {
        let mut store = DiskStorage::open(dir.path()).unwrap();
        let entries: Vec<Entry> = (1..=50)
            .map(|index| {
                let data = if index == 42 {
                    marker.to_vec()
                } else {
                    vec![index as u8; 24]
                };
                Entry::command(LogIndex(index), Term(1), data)
            })
            .collect();
        store.write(&[Persist::Entries(entries)]).unwrap();
    }
    let path = dir.path().join("kontiki.redb");
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes
        .windows(marker.len())
        .position(|window| window == marker)
        .expect("the payload is stored as written");
    bytes[at + 3] ^= 0x01;
    fs::write(&path, &bytes).unwrap();

    let loaded = DiskStorage::open(dir.path())
        .and_then(|mut store| store.load())
        .expect("the damage is repaired, not fatal");
    assert_eq!(
        loaded.last_index(),
        LogIndex(41),
        "entries 42 and after lost"
    );
    assert_eq!(loaded.hard_state.log_lost_at_term, Some(Term(0)));
    let again = DiskStorage::open(dir.path())
        .and_then(|mut store| store.load())
        .unwrap();
    assert_eq!(again, loaded);
}

#[test]
fn a_torn_tail_never_loads_a_broken_log() {
    // Cut the file short by various amounts, as a crash during a write
    // might: opening either fails with an error or finds a complete,
    // consistent earlier state — never a log with gaps or bad records.
    for cut in [1usize, 17, 512, 4096, 8192] {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = DiskStorage::open(dir.path()).unwrap();
            for batch in 0..10u64 {
                let entries = (1..=10)
                    .map(|i| Entry::command(LogIndex(batch * 10 + i), Term(1), vec![i as u8; 100]))
                    .collect();
                store.write(&[Persist::Entries(entries)]).unwrap();
            }
        }
        let path = dir.path().join("kontiki.redb");
        let length = fs::metadata(&path).unwrap().len();
        let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(length.saturating_sub(cut as u64)).unwrap();
        drop(file);
        if let Ok(state) = DiskStorage::open(dir.path()).and_then(|mut store| store.load()) {
            for (position, entry) in state.entries.iter().enumerate() {
                assert_eq!(
                    entry.index,
                    LogIndex(position as u64 + 1),
                    "cut {cut}: a gap"
                );
            }
            assert_eq!(state.entries.len() % 10, 0, "cut {cut}: a partial commit");
        }
    }
}

/// `shutdown()` completes only once the node has let go of its store, so
/// a restart on the same directory can open it straight away (no retry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_opens_again_as_soon_as_shutdown_completes() {
    let dir = tempfile::tempdir().unwrap();
    let config = cluster_configs(&free_addresses(1), "reopen").remove(0);
    for round in 0..20 {
        let store = WalStorage::open(dir.path())
            .unwrap_or_else(|error| panic!("round {round}: the store is still held: {error}"));
        let node = kontiki_tokio::start(config.clone(), store, Recorder::default())
            .await
            .unwrap();
        node.shutdown().await;
    }
}

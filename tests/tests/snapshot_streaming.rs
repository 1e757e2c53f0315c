//! Snapshots larger than a frame stream to a follower in chunks over
//! loopback TCP: a follower that fell behind the leader's compacted log
//! catches up from a snapshot several times the peers' frame limit, and
//! does so through a connection cut again and again mid-stream, which
//! only works if every new connection resumes where the last one broke.
//! On disk, the snapshot streams from the leader's file into a file of
//! the follower's, and the follower restarts from it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kontiki::LogIndex;
use kontiki_driver::{DiskStorage, Handle, NodeConfig, Storage};
use kontiki_tests::live::{
    agreed_leader, all_applied, cluster_configs, free_addresses, propose_all, starter, wait_for,
    within, Recorder,
};
use kontiki_tokio::TokioRuntime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(30);
/// Commands of 1 KiB: 400 of them make a snapshot of about 400 KiB.
const COMMANDS: u32 = 400;
const FRAME_LIMIT: usize = 64 * 1024;

/// Small chunks and frames, so that a modest snapshot is many chunks and
/// far beyond one frame.
fn streaming_configs(addresses: &[SocketAddr]) -> Vec<NodeConfig> {
    let mut configs = cluster_configs(addresses, "streaming");
    for config in &mut configs {
        config.snapshot_interval = 50;
        // The log keeps nothing a snapshot covers: a follower behind it
        // needs the snapshot.
        config.raft.compaction_lag = 0;
        config.transport.max_frame_bytes = FRAME_LIMIT;
        // Appends well within a frame.
        config.raft.max_append_bytes = 16 * 1024;
        config.transport.snapshot_chunk_bytes = 8 * 1024;
        config.transport.snapshot_window_bytes = 32 * 1024;
    }
    configs
}

/// Where each node keeps its state: in memory, or in a directory of its
/// own under the one given.
#[derive(Clone, Copy)]
enum Stores<'a> {
    Memory,
    Disk(&'a std::path::Path),
}

impl Stores<'_> {
    async fn start(&self, config: NodeConfig, recorder: &Recorder) -> Handle<Recorder> {
        let Stores::Disk(dir) = self else {
            return starter(TokioRuntime::current())(config, recorder.clone())
                .await
                .expect("the node starts");
        };
        let store: Box<dyn Storage> =
            Box::new(DiskStorage::open(dir.join(config.id.to_string())).unwrap());
        kontiki_driver::start(TokioRuntime::current(), config, store, recorder.clone())
            .await
            .expect("the node starts")
    }
}

/// Starts nodes 1 and 2 of `configs`, writes [`COMMANDS`] commands of
/// 1 KiB, then starts node 3 empty and waits until it applied them all,
/// from a snapshot; checks it applied exactly what the leader did, and
/// returns what that was.
async fn catch_up_from_a_streamed_snapshot(
    configs: Vec<NodeConfig>,
    stores: Stores<'_>,
) -> Vec<(LogIndex, bytes::Bytes)> {
    let runtime = TokioRuntime::current();
    let recorders: Vec<Recorder> = (0..3).map(|_| Recorder::default()).collect();
    let mut configs = configs.into_iter();
    let mut nodes = Vec::new();
    for recorder in &recorders[..2] {
        nodes.push(stores.start(configs.next().unwrap(), recorder).await);
    }
    let leader = agreed_leader(&runtime, &nodes, None).await.unwrap();
    let commands = (0..COMMANDS).map(|n| {
        let mut command = format!("command-{n}-").into_bytes();
        command.resize(1024, (n % 251) as u8);
        command
    });
    let indices = within(
        &runtime,
        LIMIT,
        "writes commit",
        propose_all(&nodes[leader], commands),
    )
    .await
    .unwrap()
    .unwrap();
    let last = *indices.iter().max().unwrap();
    // Snapshots are written in the background: wait for a recent one.
    wait_for(&runtime, "the leader compacts its log", || {
        (nodes[leader].status().snapshot_index > LogIndex(COMMANDS as u64 / 2)).then_some(())
    })
    .await
    .unwrap();

    nodes.push(stores.start(configs.next().unwrap(), &recorders[2]).await);
    all_applied(&runtime, &nodes, last).await.unwrap();
    let newcomer = nodes[2].status();
    assert!(
        newcomer.snapshot_index > LogIndex(0),
        "node 3 caught up from a snapshot"
    );
    let snapshot_bytes: usize = recorders[leader]
        .applied()
        .iter()
        .filter(|(index, _)| *index <= newcomer.snapshot_index)
        .map(|(_, command)| command.len())
        .sum();
    assert!(
        snapshot_bytes > 4 * FRAME_LIMIT,
        "the snapshot ({snapshot_bytes} bytes) is several frames long"
    );
    assert_eq!(recorders[2].applied(), recorders[leader].applied());
    for node in &nodes {
        node.shutdown().await;
    }
    recorders[2].applied()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_many_frames_long_streams_to_a_follower_that_fell_behind() {
    let addresses = free_addresses(3);
    catch_up_from_a_streamed_snapshot(streaming_configs(&addresses), Stores::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_disk_a_streamed_snapshot_lands_in_a_file_that_the_follower_restarts_from() {
    let addresses = free_addresses(3);
    let dir = tempfile::tempdir().unwrap();
    let configs = streaming_configs(&addresses);
    let newcomer = configs[2].clone();
    let applied = catch_up_from_a_streamed_snapshot(configs, Stores::Disk(dir.path())).await;

    // Node 3 holds one snapshot file (older ones and partial files gone).
    let snapshots = dir.path().join("3").join("snapshots");
    let files: Vec<_> = std::fs::read_dir(&snapshots)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with(".snap"), "{files:?}");

    // Alone, it cannot commit, but it restores its snapshot from the file
    // and applies the log it holds after it.
    let recorder = Recorder::default();
    let node = Stores::Disk(dir.path()).start(newcomer, &recorder).await;
    let snapshot_index = node.status().snapshot_index;
    assert!(snapshot_index > LogIndex(0));
    let runtime = TokioRuntime::current();
    wait_for(&runtime, "the restarted node restores its snapshot", || {
        (node.status().applied_index >= snapshot_index).then_some(())
    })
    .await
    .unwrap();
    let restored = recorder.applied();
    assert!(!restored.is_empty());
    assert_eq!(
        restored[..],
        applied[..restored.len()],
        "restored what it had"
    );
    node.shutdown().await;
}

/// Forwards connections made to `listener` to `target`: answers come
/// back as they are, and `forward` carries what goes towards `target`
/// (the connection ends when it returns).
async fn proxy<F, Forward>(listener: TcpListener, target: SocketAddr, forward: F)
where
    F: Fn(OwnedReadHalf, OwnedWriteHalf) -> Forward + Send + Sync + 'static,
    Forward: Future<Output = ()> + Send + 'static,
{
    let forward = Arc::new(forward);
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            return;
        };
        let forward = Arc::clone(&forward);
        tokio::spawn(async move {
            let Ok(outbound) = TcpStream::connect(target).await else {
                return;
            };
            let (from_client, mut to_client) = inbound.into_split();
            let (mut from_target, to_target) = outbound.into_split();
            let backward = tokio::io::copy(&mut from_target, &mut to_client);
            tokio::select! {
                () = forward(from_client, to_target) => {}
                _ = backward => {}
            }
            // Dropping every half closes both connections.
        });
    }
}

/// Forwards connections made to `listener` to `target`, cutting each one
/// once `cut_after` bytes went towards `target`; counts the cuts.
async fn cutting_proxy(
    listener: TcpListener,
    target: SocketAddr,
    cut_after: usize,
    cuts: Arc<AtomicUsize>,
) {
    proxy(listener, target, move |mut from_client, mut to_target| {
        let cuts = Arc::clone(&cuts);
        async move {
            let mut buffer = vec![0u8; 16 * 1024];
            let mut forwarded = 0;
            while forwarded < cut_after {
                let room = buffer.len().min(cut_after - forwarded);
                let Ok(read @ 1..) = from_client.read(&mut buffer[..room]).await else {
                    return;
                };
                if to_target.write_all(&buffer[..read]).await.is_err() {
                    return;
                }
                forwarded += read;
            }
            cuts.fetch_add(1, Ordering::Relaxed);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_again_and_again_resumes_where_it_broke() {
    let addresses = free_addresses(3);
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_address = proxy.local_addr().unwrap();
    let cuts = Arc::new(AtomicUsize::new(0));
    // Each connection to node 3 carries about a quarter of the snapshot
    // before it is cut: starting over on each would never finish.
    tokio::spawn(cutting_proxy(
        proxy,
        addresses[2],
        100 * 1024,
        Arc::clone(&cuts),
    ));
    let mut configs = streaming_configs(&addresses);
    for config in &mut configs[..2] {
        config.peers.insert(kontiki::NodeId(3), proxy_address);
    }
    catch_up_from_a_streamed_snapshot(configs, Stores::Memory).await;
    assert!(
        cuts.load(Ordering::Relaxed) >= 3,
        "the stream was cut {} times",
        cuts.load(Ordering::Relaxed)
    );
}

/// Forwards connections made to `listener` to `target`, passing at most
/// `bytes_per_second` towards `target`.
async fn throttling_proxy(listener: TcpListener, target: SocketAddr, bytes_per_second: usize) {
    const SLICE: usize = 4 * 1024;
    let pause = Duration::from_secs_f64(SLICE as f64 / bytes_per_second as f64);
    proxy(
        listener,
        target,
        move |mut from_client, mut to_target| async move {
            let mut buffer = vec![0u8; SLICE];
            while let Ok(read @ 1..) = from_client.read(&mut buffer).await {
                if to_target.write_all(&buffer[..read]).await.is_err() {
                    return;
                }
                tokio::time::sleep(pause).await;
            }
        },
    )
    .await;
}

// A slow link to a newcomer: its snapshot takes seconds to stream, and
// meanwhile the leader commits more and takes a newer snapshot. The
// newcomer is sent the first one to the end (the newer one would start
// the transfer over), installs it once, and catches up from the log the
// leader kept for it. (The leader keeps entries back to its previous
// snapshot at most, so a transfer that outlasts two snapshot intervals
// still starts over with a newer one.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_snapshot_does_not_restart_a_slow_transfer_under_way() {
    let runtime = TokioRuntime::current();
    let addresses = free_addresses(3);
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_address = proxy.local_addr().unwrap();
    // About 4 s for a snapshot of about 400 KiB.
    tokio::spawn(throttling_proxy(proxy, addresses[2], 100 * 1024));
    let mut configs = streaming_configs(&addresses);
    for config in &mut configs[..2] {
        config.peers.insert(kontiki::NodeId(3), proxy_address);
    }
    let recorders: Vec<Recorder> = (0..3).map(|_| Recorder::default()).collect();
    let mut configs = configs.into_iter();
    let mut nodes = Vec::new();
    for recorder in &recorders[..2] {
        let config = configs.next().unwrap();
        nodes.push(
            starter(runtime.clone())(config, recorder.clone())
                .await
                .unwrap(),
        );
    }
    let leader = agreed_leader(&runtime, &nodes, None).await.unwrap();
    let command = |n: u32| {
        let mut command = format!("command-{n}-").into_bytes();
        command.resize(1024, (n % 251) as u8);
        command
    };
    let writes = propose_all(&nodes[leader], (0..COMMANDS).map(command));
    let indices = within(&runtime, LIMIT, "writes commit", writes)
        .await
        .unwrap()
        .unwrap();
    let last = *indices.iter().max().unwrap();
    // The leader's snapshot is as recent as it gets: the next comes 50
    // entries on (`snapshot_interval`).
    wait_for(&runtime, "the leader snapshots its log", || {
        (nodes[leader].status().snapshot_index.get() + 50 > last.get()).then_some(())
    })
    .await
    .unwrap();
    let first_offered = nodes[leader].status().snapshot_index;
    let config = configs.next().unwrap();
    nodes.push(
        starter(runtime.clone())(config, recorders[2].clone())
            .await
            .unwrap(),
    );
    // Once node 3 hears the leader, it answers, and the snapshot goes.
    wait_for(&runtime, "node 3 hears the leader", || {
        nodes[2].status().leader.map(drop)
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Enough for one newer snapshot, at once, while the first streams.
    let writes = propose_all(&nodes[leader], (COMMANDS..COMMANDS + 60).map(command));
    let indices = within(&runtime, LIMIT, "writes commit", writes)
        .await
        .unwrap()
        .unwrap();
    let last = *indices.iter().max().unwrap();
    wait_for(&runtime, "a newer snapshot", || {
        (nodes[leader].status().snapshot_index > first_offered).then_some(())
    })
    .await
    .unwrap();
    let newest = nodes[leader].status().snapshot_index;
    all_applied(&runtime, &nodes, last).await.unwrap();
    let restored = recorders[2].restored();
    assert_eq!(
        restored,
        vec![first_offered],
        "node 3 installed the snapshot first offered, once (the leader took {newest} meanwhile)"
    );
    assert_eq!(recorders[2].applied(), recorders[leader].applied());
    for node in &nodes {
        node.shutdown().await;
    }
}

//! Bad input on a peer port costs only its own connection: a node under
//! attack closes (or refuses, with the reason) every bad connection and
//! its cluster keeps committing.

use std::net::SocketAddr;
use std::time::Duration;

use kontiki_tests::live::{agreed_leader, cluster_configs, free_addresses, propose_all, Recorder};
use kontiki_tests::peer_wire::{self, frame, PROTOCOL_VERSION};
use kontiki_tokio::{Handle, MemoryStorage, TokioRuntime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(300);
const MAX_INBOUND: usize = 8;

async fn cluster() -> Vec<Handle<Recorder>> {
    let addresses = free_addresses(3);
    let mut nodes = Vec::new();
    for mut config in cluster_configs(&addresses, "attacked") {
        config.transport.handshake_timeout = HANDSHAKE_TIMEOUT;
        config.transport.max_inbound_connections = MAX_INBOUND;
        config.transport.max_pending_handshakes = MAX_INBOUND;
        config.transport.max_pending_per_address = MAX_INBOUND;
        config.transport.max_frame_bytes = 64 * 1024;
        config.transport.snapshot_chunk_bytes = 16 * 1024;
        let node = kontiki_tokio::start(config, MemoryStorage::new(), Recorder::default())
            .await
            .unwrap();
        nodes.push(node);
    }
    nodes
}

fn hello(node: u64, cluster: &str, version: u8) -> Vec<u8> {
    peer_wire::hello(node, cluster, version, "")
}

/// Everything the node sends until it closes the connection (fails if it
/// stays open for two seconds).
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut received));
    match read.await {
        Ok(_) => received,
        Err(_) => panic!("the node kept a bad connection open"),
    }
}

async fn connect(address: SocketAddr) -> TcpStream {
    TcpStream::connect(address).await.unwrap()
}

/// Checks that the cluster still commits, through the same leader, then
/// shuts it down.
async fn still_serving(runtime: &TokioRuntime, nodes: &[Handle<Recorder>], leader: usize) {
    let committed = propose_all(&nodes[leader], (0..10u8).map(|n| vec![n]))
        .await
        .unwrap();
    assert_eq!(committed.len(), 10);
    assert_eq!(agreed_leader(runtime, nodes, None).await.unwrap(), leader);
    for node in nodes {
        node.shutdown().await;
    }
}

/// Reads one frame's body.
async fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await.unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut body).await.unwrap();
    body
}

/// A connection that completed the handshake as node 9: a node the
/// cluster does not have, so that it never takes the place of a member's
/// connection (a node holds one connection per peer id, the latest).
async fn introduced(address: SocketAddr) -> TcpStream {
    let mut stream = connect(address).await;
    stream
        .write_all(&hello(9, "attacked", PROTOCOL_VERSION))
        .await
        .unwrap();
    let body = read_frame(&mut stream).await;
    // The answer is node 1's hello, as WIRE.md describes it, with the
    // address it listens on.
    assert_eq!(&body[..5], b"KNTK\x05");
    assert_eq!(body[5..13], 1u64.to_be_bytes());
    assert_eq!(&body[13..22], b"\x08attacked");
    let advertised = address.to_string();
    assert_eq!(usize::from(body[22]), advertised.len());
    assert_eq!(&body[23..], advertised.as_bytes());
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_peer_connections_are_closed_and_the_cluster_keeps_serving() {
    let runtime = TokioRuntime::current();
    let nodes = cluster().await;
    let leader = agreed_leader(&runtime, &nodes, None).await.unwrap();
    let target = nodes[0].local_addr();

    // Handshakes the node refuses, with the reason.
    for (bytes, reason) in [
        (hello(2, "elsewhere", PROTOCOL_VERSION), "cluster"),
        (hello(1, "attacked", PROTOCOL_VERSION), "own id"),
        (
            peer_wire::hello(2, "attacked", PROTOCOL_VERSION, "nowhere"),
            "not a socket address",
        ),
        (hello(2, "attacked", 3), "version 3"),
        (hello(2, "attacked", 4), "version 4"),
        (hello(2, "attacked", PROTOCOL_VERSION + 8), "version"),
        (frame(b"KNTK"), "truncated handshake"),
    ] {
        let mut stream = connect(target).await;
        stream.write_all(&bytes).await.unwrap();
        let answer = until_closed(&mut stream).await;
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.contains(reason),
            "expected a refusal naming {reason:?}, got {text:?}"
        );
    }

    // Garbage, a peer that never speaks, bad frames after a good handshake.
    let mut garbage = connect(target).await;
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    until_closed(&mut garbage).await;

    let mut silent = connect(target).await;
    let started = tokio::time::Instant::now();
    until_closed(&mut silent).await;
    assert!(started.elapsed() >= HANDSHAKE_TIMEOUT);

    let mut oversized = introduced(target).await;
    oversized
        .write_all(&(1u32 << 20).to_be_bytes())
        .await
        .unwrap();
    until_closed(&mut oversized).await;

    let mut undecodable = introduced(target).await;
    undecodable
        .write_all(&frame(b"\x00\x02\x09nonsense"))
        .await
        .unwrap();
    until_closed(&mut undecodable).await;

    let mut truncated = introduced(target).await;
    truncated.write_all(&[0, 0, 0, 100, 1, 2, 3]).await.unwrap();
    truncated.shutdown().await.unwrap();
    until_closed(&mut truncated).await;

    // A flood: connections beyond the limit displace the oldest ones
    // still in their handshake, which are closed at once.
    let mut flood = Vec::new();
    for _ in 0..MAX_INBOUND + 4 {
        flood.push(connect(target).await);
    }
    let mut closed_early = 0;
    for stream in &mut flood {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(100), stream.read(&mut byte)).await
        {
            closed_early += 1;
        }
    }
    assert!(
        closed_early >= 4,
        "only {closed_early} flood connections were turned away"
    );
    drop(flood);

    still_serving(&runtime, &nodes, leader).await;
}

/// Frame kinds after the handshake (WIRE.md).
const OFFER: u8 = 1;
const CHUNK: u8 = 2;
const PROGRESS: u8 = 3;

/// A snapshot offer as WIRE.md describes it: the data's length, then an
/// InstallSnapshot of term 1 at index 5 (term 1) for voters 1, 2, 3,
/// without data.
fn offer(data_len: u64) -> Vec<u8> {
    let mut body = vec![OFFER];
    body.extend_from_slice(&data_len.to_be_bytes());
    body.extend_from_slice(&[2, 5, 1, 5, 1, 0, 3, 1, 2, 3, 0, 0, 0, 0]);
    frame(&body)
}

/// A chunk of that snapshot at `offset`, its checksum as given.
fn chunk(offset: u64, data: &[u8], checksum: u32) -> Vec<u8> {
    let mut body = vec![CHUNK];
    for field in [1u64, 5, 1, offset] {
        body.extend_from_slice(&field.to_be_bytes());
    }
    body.extend_from_slice(&checksum.to_be_bytes());
    body.extend_from_slice(data);
    frame(&body)
}

fn good_chunk(offset: u64, data: &[u8]) -> Vec<u8> {
    chunk(offset, data, crc32fast::hash(data))
}

/// Reads one progress report: its status and received count.
async fn progress(stream: &mut TcpStream) -> (u8, u64) {
    let body = read_frame(stream).await;
    assert_eq!(body.len(), 34, "kind, stream, status, count");
    assert_eq!(body[0], PROGRESS);
    assert_eq!(
        body[1..25],
        [
            [0, 0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 0, 5],
            [0, 0, 0, 0, 0, 0, 0, 1]
        ]
        .concat()
    );
    (body[25], u64::from_be_bytes(body[26..].try_into().unwrap()))
}

const RECEIVING: u8 = 0;
const REFUSED: u8 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_snapshot_chunks_cost_their_connection_and_nothing_received() {
    let runtime = TokioRuntime::current();
    let nodes = cluster().await;
    let leader = agreed_leader(&runtime, &nodes, None).await.unwrap();
    let target = nodes[0].local_addr();

    // Too large for the node: refused, and told so.
    let mut stream = introduced(target).await;
    stream.write_all(&offer(u64::MAX)).await.unwrap();
    assert_eq!(progress(&mut stream).await, (REFUSED, 0));

    // A good offer and chunk: 40 of 100 bytes held.
    stream.write_all(&offer(100)).await.unwrap();
    assert_eq!(progress(&mut stream).await, (RECEIVING, 0));
    stream.write_all(&good_chunk(0, &[7; 40])).await.unwrap();
    assert_eq!(progress(&mut stream).await, (RECEIVING, 40));

    // Each bad chunk closes its connection; the next offer shows that the
    // 40 bytes are still held.
    let bad_chunks = [
        chunk(40, &[7; 10], 12345), // wrong checksum
        good_chunk(50, &[7; 10]),   // out of order
        good_chunk(40, &[7; 61]),   // past the announced length
        good_chunk(40, &[]),        // empty
        frame(&[CHUNK, 0, 1]),      // truncated
    ];
    for bad in bad_chunks {
        stream.write_all(&bad).await.unwrap();
        until_closed(&mut stream).await;
        stream = introduced(target).await;
        stream.write_all(&offer(100)).await.unwrap();
        assert_eq!(progress(&mut stream).await, (RECEIVING, 40));
    }
    // A chunk of another stream (another term) is dropped unanswered,
    // the connection kept.
    let mut other_term = chunk(40, &[7; 10], crc32fast::hash(&[7; 10]));
    other_term[5 + 7] = 9;
    stream.write_all(&other_term).await.unwrap();
    stream.write_all(&good_chunk(40, &[7; 10])).await.unwrap();
    assert_eq!(progress(&mut stream).await, (RECEIVING, 50));
    drop(stream);

    still_serving(&runtime, &nodes, leader).await;
}

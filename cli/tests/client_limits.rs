//! The client port's limits on a real `kontiki node`: a connection past
//! `--max-clients` is answered Redis's error and closed, and a place frees
//! when a client leaves; a client silent past `--client-idle-timeout` is
//! closed; a client that pipelines requests with huge replies and never
//! reads costs the node a bounded amount of memory, not the replies.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{Client, ProcessCluster, Reply};

fn pong(client: &mut Client) -> bool {
    client.command("PING").ok() == Some(Reply::Simple("PONG".into()))
}

/// A client the node serves, once a place is free: connections that
/// just closed (the test's own probes) free theirs when the node notices.
fn served(address: std::net::SocketAddr) -> Client {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut client = Client::connect(address).unwrap();
        if pong(&mut client) {
            return client;
        }
        assert!(Instant::now() < deadline, "no place was freed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The node's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_node_keeps_its_client_limits() {
    let cluster =
        ProcessCluster::start_with(&["tokio"], &["--max-clients=3", "--client-idle-timeout=2"]);
    cluster.wait_for_leader(None, Duration::from_secs(20));
    let address = cluster.client_addresses()[0];

    // Three clients are served; a fourth is told why and closed.
    let mut clients: Vec<Client> = (0..3).map(|_| served(address)).collect();
    let mut fourth = Client::connect(address).unwrap();
    assert_eq!(
        fourth.read_reply().unwrap(),
        Reply::Error("ERR max number of clients reached".into())
    );
    assert!(!pong(&mut fourth), "closed after the refusal");
    // One leaves: its place is free again.
    drop(clients.pop());
    let mut replacement = served(address);

    // A client silent past the idle timeout is closed; one that keeps
    // talking is not.
    let started = Instant::now();
    let mut silent = clients.pop().unwrap();
    while started.elapsed() < Duration::from_secs(3) {
        assert!(pong(&mut replacement), "an active client stays");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(!pong(&mut silent), "the silent client was closed");
    drop(clients);
    drop(silent);
    drop(replacement);

    // A list whose LRANGE answers about 1 MiB, asked for 2,000 times in
    // one pipeline by a client that never reads: 2 GiB of replies, of
    // which the node may hold only a bounded part.
    let mut writer = served(address);
    let item = "x".repeat(1000);
    for _ in 0..10 {
        let mut push = vec![b"RPUSH".as_slice(), b"big"];
        push.extend(std::iter::repeat_n(item.as_bytes(), 100));
        assert!(matches!(writer.call(&push).unwrap(), Reply::Integer(_)));
    }
    let pid = cluster.nodes[0].pid().unwrap();
    let before = rss_kib(pid);
    let mut greedy = std::net::TcpStream::connect(address).unwrap();
    std::io::Write::write_all(&mut greedy, &b"LRANGE big 0 -1\r\n".repeat(2000)).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let grown = rss_kib(pid).saturating_sub(before);
    assert!(
        grown < 256 * 1024,
        "the node grew {grown} KiB for a client that does not read"
    );
    // The node still serves everyone else (the writer has been idle past
    // the timeout and is gone: a new client takes its place).
    drop(writer);
    served(address);
    // And the greedy client gets its replies as it reads them.
    let mut first = vec![0u8; 4096];
    greedy.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"*1000\r\n$1000\r\n"));
}

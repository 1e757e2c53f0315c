//! `kontiki node --metrics ADDR`: Prometheus's text format over HTTP,
//! scraped with a real HTTP client (curl), whose values move as the
//! cluster works: the commit index, proposals and durable writes, and a
//! refused peer connection by its reason.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use common::{free_address, write_through_leader, ProcessCluster};

/// `GET http://address/path` with curl: the status code and the body.
fn scrape(address: SocketAddr, path: &str) -> (u16, String) {
    let output = Command::new("curl")
        .args([
            "--silent",
            "--max-time",
            "10",
            "--write-out",
            "\n%{http_code}",
        ])
        .arg(format!("http://{address}{path}"))
        .output()
        .expect("curl runs (apt install curl)");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').expect("curl wrote the status");
    (
        code.trim().parse().expect("a status code"),
        body.to_string(),
    )
}

/// The value of the series `name{labels}` (labels as rendered, e.g.
/// `node="1"`), summed over the series that carry those labels.
fn value(body: &str, name: &str, labels: &str) -> f64 {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name && rest.contains(labels)).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

#[test]
fn a_scrape_shows_the_cluster_at_work() {
    let scrapes: BTreeMap<u64, SocketAddr> = (1..=3).map(|id| (id, free_address())).collect();
    let cluster = ProcessCluster::start_each(&["tokio", "smol", "async-std"], &|id| {
        vec![format!("--metrics={}", scrapes[&id])]
    });
    let leader = cluster.wait_for_leader(None, Duration::from_secs(30));
    let at = scrapes[&leader];
    let node = format!("node=\"{leader}\"");

    let (status, before) = scrape(at, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(value(&before, "kontiki_is_leader", &node), 1.0);
    assert!(value(&before, "kontiki_term", &node) >= 1.0);
    assert!(value(&before, "kontiki_elections_won_total", &node) >= 1.0);
    let commit = value(&before, "kontiki_commit_index", &node);
    let proposals = value(&before, "kontiki_proposal_seconds_count", &node);
    let writes = value(&before, "kontiki_storage_write_seconds_count", &node);

    let addresses = cluster.client_addresses();
    for n in 0..20 {
        assert!(write_through_leader(
            &addresses,
            &format!("k{n}"),
            "v",
            Duration::from_secs(20)
        ));
    }
    // A stranger's garbage on the leader's peer port.
    let peer_port = cluster.nodes[leader as usize - 1].peer_address();
    let mut stranger = TcpStream::connect(peer_port).unwrap();
    let _ = stranger.write_all(b"\x00\x00\x00\x05hello");

    common::wait_until("the measures to move", || {
        let (_, after) = scrape(at, "/metrics");
        value(&after, "kontiki_commit_index", &node) >= commit + 20.0
            && value(&after, "kontiki_proposal_seconds_count", &node) >= proposals + 20.0
            && value(&after, "kontiki_storage_write_seconds_count", &node) > writes
            && value(&after, "kontiki_append_batch_entries_count", &node) > 0.0
            && value(
                &after,
                "kontiki_peer_connections_refused_total",
                "reason=\"malformed\"",
            ) >= 1.0
    });
    // A follower reports itself and the same commit index, soon.
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    let (_, theirs) = scrape(scrapes[&follower], "/metrics");
    assert_eq!(
        value(
            &theirs,
            "kontiki_is_leader",
            &format!("node=\"{follower}\"")
        ),
        0.0
    );
    assert_eq!(scrape(at, "/elsewhere").0, 404);

    // The live view of the same cluster, three frames (not a terminal:
    // one after another), while writes go on.
    let writer = std::thread::spawn(move || {
        for n in 0..50 {
            write_through_leader(&addresses, &format!("w{n}"), "v", Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let mut watch = common::kontiki();
    watch.args(["status", "--watch", "--interval=300ms", "--count=3"]);
    watch.args(cluster.client_addresses().iter().map(ToString::to_string));
    let output = watch.output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout
            .matches("kontiki status: 3 node(s), every 300ms")
            .count(),
        3,
        "{stdout}"
    );
    assert_eq!(stdout.matches("COMMITS/S").count(), 3, "{stdout}");
    assert_eq!(stdout.matches(" leader ").count(), 3, "{stdout}");
}

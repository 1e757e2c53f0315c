//! `kontiki demo` runs a mixed-runtime cluster, stops its leader,
//! replaces a follower by a new node, and ends with a summary whose check
//! passed.

mod common;

use common::kontiki;

#[test]
fn the_demo_fails_over_and_keeps_every_acknowledged_write() {
    let output = kontiki()
        .args([
            "demo",
            "--nodes=3",
            "--runtime=mixed",
            "--duration=8s",
            "--seed=3",
        ])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("INFO"),
        "the demo's view is not interleaved with logs: {stderr}"
    );
    assert!(output.status.success(), "demo failed: {stdout}");
    // Not a terminal: a plain log, then the summary.
    assert!(stdout.contains("stopped node"), "{stdout}");
    assert!(stdout.contains("check: every acknowledged write is in every node's final log: OK"));
    // The new node is checked with the others: it holds every write,
    // those from before it joined included.
    assert!(
        stdout.contains("replaced by node 4: added as a learner"),
        "{stdout}"
    );
    let stops_line = stdout
        .lines()
        .find(|line| line.contains("leader stops:"))
        .unwrap();
    assert!(!stops_line.contains("leader stops: 0"), "{stops_line}");
    assert!(
        !stdout.contains("\x1b["),
        "no terminal control codes in a log"
    );
}

#[test]
fn the_demo_refuses_a_bad_node_count() {
    let output = kontiki().args(["demo", "--nodes=0"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--nodes must be 1 to 9"), "{stderr}");
}

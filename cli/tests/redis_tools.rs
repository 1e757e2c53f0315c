//! The real Redis tools against a 3-node cluster: redis-cli (following
//! redirects with -c) sets and gets, and redis-benchmark runs its whole
//! default test set (strings, lists, sets, a hash, a sorted set, MSET) to
//! the end with no errors. They come from the Debian package
//! redis-tools, which `.ci/run` installs; without them this test says so
//! and passes, unless KONTIKI_REQUIRE_REDIS_TOOLS=1 (CI sets it).

mod common;

use std::process::Command;
use std::time::Duration;

use common::ProcessCluster;

fn tool_available(name: &str) -> bool {
    let found = Command::new(name).arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var_os("KONTIKI_REQUIRE_REDIS_TOOLS").is_none(),
            "{name} is required (apt install redis-tools)"
        );
        eprintln!("SKIPPED: {name} is not installed (apt install redis-tools)");
    }
    found
}

fn run(tool: &str, arguments: &[String]) -> String {
    let output = Command::new(tool).args(arguments).output().unwrap();
    assert!(
        output.status.success(),
        "{tool} {arguments:?} failed: {output:?}"
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[test]
fn redis_cli_and_redis_benchmark_work_against_a_cluster() {
    if !tool_available("redis-cli") || !tool_available("redis-benchmark") {
        return;
    }
    let cluster = ProcessCluster::start(&["tokio", "tokio", "tokio"]);
    let leader = cluster.wait_for_leader(None, Duration::from_secs(20));
    let follower = if leader == 1 { 2 } else { 1 };
    let follower = cluster.client_addresses()[follower as usize - 1];
    let via_follower = |command: &[&str]| {
        let mut arguments = vec![
            "-c".to_string(),
            "-h".into(),
            follower.ip().to_string(),
            "-p".into(),
            follower.port().to_string(),
        ];
        arguments.extend(command.iter().map(|s| s.to_string()));
        run("redis-cli", &arguments).trim().to_string()
    };
    // -c follows the follower's -MOVED to the leader.
    assert_eq!(via_follower(&["SET", "tool", "redis-cli"]), "OK");
    assert_eq!(via_follower(&["GET", "tool"]), "redis-cli");
    assert_eq!(via_follower(&["INCR", "n"]), "1");
    // Cluster-aware clients find the leader in CLUSTER SLOTS: one range of
    // every slot, the leader's client address first.
    let slots = via_follower(&["CLUSTER", "SLOTS"]);
    let slots: Vec<&str> = slots.lines().collect();
    let leader_address = cluster.client_addresses()[leader as usize - 1];
    assert_eq!(slots[..2], ["0", "16383"], "{slots:?}");
    assert_eq!(slots[3], leader_address.port().to_string(), "{slots:?}");
    assert_eq!(
        slots.len(),
        2 + 3 * 3,
        "the leader and two replicas: {slots:?}"
    );

    // The benchmark talks to one node and treats a redirect as an error. A
    // leader change during the run is Raft doing its job (on a loaded
    // machine a slow fsync can delay heartbeats past the election
    // timeout), so then the run is repeated against the new leader; any
    // other error fails the test at once.
    let mut attempts = 0;
    let csv = loop {
        attempts += 1;
        let leader = cluster.wait_for_leader(None, Duration::from_secs(20));
        let leader = cluster.client_addresses()[leader as usize - 1];
        let output = Command::new("redis-benchmark")
            .args([
                "-h",
                &leader.ip().to_string(),
                "-p",
                &leader.port().to_string(),
            ])
            // Its default test set: redis-benchmark stops at the first
            // error reply, so every test must be served.
            .args(["-n", "200", "-c", "10", "--csv"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        if output.status.success() {
            break String::from_utf8_lossy(&output.stdout).to_string();
        }
        let leadership_moved = stderr.contains("TRYAGAIN") || stderr.contains("MOVED");
        assert!(
            leadership_moved && attempts < 3,
            "redis-benchmark failed (attempt {attempts}): {output:?}"
        );
        eprintln!("the leader changed during redis-benchmark; running it again: {stderr}");
    };
    // A header, then one line per test with its requests per second.
    let rows: Vec<&str> = csv
        .lines()
        .filter(|line| !line.starts_with("\"test\""))
        .collect();
    let names: Vec<&str> = rows
        .iter()
        .map(|row| row.split(',').next().unwrap().trim_matches('"'))
        .collect();
    for test in [
        "PING_INLINE",
        "SET",
        "GET",
        "INCR",
        "LPUSH",
        "RPOP",
        "SADD",
        "HSET",
        "SPOP",
        "ZADD",
        "ZPOPMIN",
        "LRANGE_600 (first 600 elements)",
        "MSET (10 keys)",
    ] {
        assert!(names.contains(&test), "{test} ran: {csv}");
    }
    for row in rows {
        let rate: f64 = row
            .split(',')
            .nth(1)
            .unwrap()
            .trim_matches('"')
            .parse()
            .unwrap();
        assert!(rate > 0.0, "{row}");
    }
    // The benchmark's writes landed: without -r it sets the one key
    // "key:__rand_int__" to a 3-byte value (its default -d).
    assert_eq!(via_follower(&["GET", "key:__rand_int__"]).len(), 3);
}

/// redis-cli in RESP3 (`-3` opens with `HELLO 3`) against one node: the
/// handshake, a missing key as RESP3's null, a connection's name, the
/// one database, and the command table redis-cli reads for its hints.
#[test]
fn redis_cli_speaks_resp3_with_a_node() {
    if !tool_available("redis-cli") {
        return;
    }
    let cluster = ProcessCluster::start(&["tokio"]);
    cluster.wait_for_leader(None, Duration::from_secs(20));
    let node = cluster.client_addresses()[0];
    let session = |protocol: &str, commands: &str| {
        let mut child = Command::new("redis-cli")
            .args([protocol, "--no-raw", "-h", &node.ip().to_string()])
            .args(["-p", &node.port().to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(commands.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let output = session(
        "-3",
        "GET missing\nSET k v\nGET k\nCLIENT SETNAME tester\nCLIENT GETNAME\nCLIENT INFO\n\
         SELECT 0\nSELECT 1\nCOMMAND COUNT\nINCRBY c 5\nDECR c\nDECRBY c 10\n\
         MSET a 1 b 2\nMGET a b nope\nAPPEND a xy\nSET a z NX\nSETNX a z\nGETSET a w\nGETDEL a\n\
         TYPE b\nKEYS [bc]\nFLUSHALL\nDBSIZE\nCOMMAND DOCS get\n",
    );
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(
        lines[..5],
        ["(nil)", "OK", "\"v\"", "OK", "\"tester\""],
        "{output}"
    );
    assert!(lines[5].contains("name=tester db=0 resp=3"), "{output}");
    assert_eq!(lines[6], "OK");
    assert_eq!(lines[7], "(error) ERR DB index is out of range");
    assert!(lines[8].starts_with("(integer) "), "{output}");
    assert_eq!(lines[9..12], ["(integer) 5", "(integer) 4", "(integer) -6"]);
    assert_eq!(
        lines[12..24],
        [
            "OK",
            "1) \"1\"",
            "2) \"2\"",
            "3) (nil)",
            "(integer) 3",
            "(nil)",
            "(integer) 0",
            "\"1xy\"",
            "\"w\"",
            "string",
            "1) \"b\"",
            "2) \"c\"",
        ],
        "{output}"
    );
    assert_eq!(lines[24..26], ["OK", "(integer) 0"], "{output}");
    assert!(
        output.contains("\"summary\" => "),
        "docs as a map: {output}"
    );
    // A transaction is one log entry, answered command by command; a
    // command that cannot be queued discards the whole.
    let transaction = session(
        "-3",
        "MULTI\nSET t 1\nINCRBY t 4\nMGET t u\nEXEC\nMULTI\nSET u 1\nFROB\nEXEC\nEXISTS u\n",
    );
    let lines: Vec<&str> = transaction.lines().collect();
    assert_eq!(
        lines,
        [
            "OK",
            "QUEUED",
            "QUEUED",
            "QUEUED",
            "1) OK",
            "2) (integer) 5",
            "3) 1) \"5\"",
            "   2) (nil)",
            "OK",
            "QUEUED",
            "(error) ERR unknown command 'FROB'",
            "(error) EXECABORT Transaction discarded because of previous errors.",
            "(integer) 0",
        ],
        "{transaction}"
    );
    // RESP2 stays the default: HELLO without a version answers in it.
    let resp2 = session("-2", "HELLO\nCLIENT INFO\nCONFIG GET append*\n");
    assert!(
        resp2.ends_with("1) \"appendfsync\"\n2) \"always\"\n3) \"appendonly\"\n4) \"yes\"\n"),
        "{resp2}"
    );
    assert!(
        resp2.contains(" 7) \"proto\"\n 8) (integer) 2\n"),
        "{resp2}"
    );
    assert!(resp2.contains("resp=2"), "{resp2}");
}

/// redis-cli over TLS (`--tls --cacert`) with a password, against a node
/// serving clients over TLS: a write and a read back, and without the
/// password the node's `NOAUTH`.
#[test]
fn redis_cli_works_over_tls_with_a_password() {
    if !tool_available("redis-cli") {
        return;
    }
    let node = common::SecureNode::start("tokio");
    let address = node.address();
    let arguments = |command: &[&str], password: Option<&str>| {
        let mut arguments = vec![
            "--tls".to_string(),
            "--cacert".to_string(),
            node.ca.display().to_string(),
            "-h".to_string(),
            address.ip().to_string(),
            "-p".to_string(),
            address.port().to_string(),
            "--no-auth-warning".to_string(),
        ];
        if let Some(password) = password {
            arguments.extend(["-a".to_string(), password.to_string()]);
        }
        arguments.extend(command.iter().map(|word| word.to_string()));
        arguments
    };
    let set = run(
        "redis-cli",
        &arguments(&["SET", "over", "tls"], Some(node.password)),
    );
    assert_eq!(set.trim(), "OK");
    let get = run(
        "redis-cli",
        &arguments(&["GET", "over"], Some(node.password)),
    );
    assert_eq!(get.trim(), "tls");
    let refused = run("redis-cli", &arguments(&["GET", "over"], None));
    assert!(refused.contains("NOAUTH"), "{refused}");
}

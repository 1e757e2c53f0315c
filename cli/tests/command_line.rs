//! The command line: bad flags, an occupied port, an unwritable data
//! directory and an unreachable node each get one line naming the
//! problem and a non-zero exit, never a panic.

mod common;

use std::net::TcpListener;
use std::process::Output;

use common::{free_address, kontiki};

fn one_line_error(output: &Output) -> String {
    assert!(!output.status.success(), "expected a failure");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!stderr.contains("panicked"), "panicked: {stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("kontiki:"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line expected, got: {stderr}");
    lines[0].to_string()
}

fn node(extra: &[&str]) -> Output {
    let data = tempfile::tempdir().unwrap();
    let listen = free_address().to_string();
    let client = free_address().to_string();
    let dir = data.path().join("d");
    let mut arguments = vec![
        "--id=1".to_string(),
        format!("--listen={listen}"),
        format!("--client={client}"),
        format!("--data-dir={}", dir.display()),
    ];
    // An extra `--flag=value` replaces the default for that flag.
    for flag in extra {
        let name = flag.split('=').next().unwrap_or(flag);
        arguments.retain(|argument| !argument.starts_with(&format!("{name}=")));
        arguments.push(flag.to_string());
    }
    kontiki()
        .arg("node")
        .args(&arguments)
        .env("RUST_LOG", "off")
        .output()
        .unwrap()
}

#[test]
fn bad_flags_name_the_problem() {
    let output = kontiki().args(["node", "--bogus"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(one_line_error(&output).contains("--bogus"));
    let output = kontiki()
        .args(["node", "--peer", "two=127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(one_line_error(&output).contains("not a positive integer"));
    let output = kontiki().args(["node", "--id", "1"]).output().unwrap();
    assert!(one_line_error(&output).contains("missing --listen"));
    let output = node(&["--peer=1=127.0.0.1:9"]);
    assert!(one_line_error(&output).contains("other than this node's"));
    let output = node(&["--config=/nonexistent/kontiki.toml"]);
    assert!(one_line_error(&output).contains("cannot read the config file"));
}

#[test]
fn an_occupied_port_is_named() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = node(&[&format!("--client={address}")]);
    let line = one_line_error(&output);
    assert!(
        line.contains(&format!("cannot listen for clients on {address}")),
        "{line}"
    );
    let output = node(&[&format!("--listen={address}")]);
    let line = one_line_error(&output);
    assert!(
        line.contains(&format!("cannot listen on {address}")),
        "{line}"
    );
}

#[test]
fn an_unwritable_data_directory_is_named() {
    let output = node(&["--data-dir=/proc/kontiki-cannot-live-here"]);
    let line = one_line_error(&output);
    assert!(line.contains("/proc/kontiki-cannot-live-here"), "{line}");
}

#[test]
fn status_of_an_unreachable_node_says_so() {
    let nobody = free_address().to_string();
    let output = kontiki()
        .args(["status", "--json", &nobody])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(json["address"], nobody.as_str());
    assert!(json["error"].as_str().unwrap().contains("cannot connect"));
    // The default is a table: a heading, then the node's row.
    let output = kontiki().args(["status", &nobody]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("ADDRESS"), "{stdout}");
    assert!(lines[1].starts_with(&nobody), "{stdout}");
    assert!(lines[1].contains("error: cannot connect"), "{stdout}");
}

#[test]
fn a_config_file_works_like_flags() {
    let data = tempfile::tempdir().unwrap();
    let path = data.path().join("node.toml");
    let (listen, client) = (free_address(), free_address());
    std::fs::write(
        &path,
        format!(
            "id = 1\nlisten = \"{listen}\"\nclient = \"{client}\"\ndata_dir = \"{}\"\nruntime = \"smol\"\n",
            data.path().join("d").display()
        ),
    )
    .unwrap();
    let mut child = kontiki()
        .args(["node", &format!("--config={}", path.display())])
        .env("RUST_LOG", "off")
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let answered = loop {
        let output = kontiki()
            .args(["status", "--json", &client.to_string()])
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&output.stdout).to_string();
        if line.contains("\"role\":\"leader\"") || std::time::Instant::now() > deadline {
            break line;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    let json: serde_json::Value = serde_json::from_str(answered.trim()).unwrap();
    assert_eq!(json["id"], 1);
    assert_eq!(json["role"], "leader");
    assert_eq!(json["leader_addr"], client.to_string().as_str());
    let mut bad = std::fs::read_to_string(&path).unwrap();
    bad.push_str("colour = \"blue\"\n");
    std::fs::write(&path, bad).unwrap();
    let output = kontiki()
        .args(["node", &format!("--config={}", path.display())])
        .output()
        .unwrap();
    assert!(one_line_error(&output).contains("is invalid"));
}

#[test]
fn logs_can_be_json_lines() {
    let data = tempfile::tempdir().unwrap();
    let (listen, client) = (free_address(), free_address());
    let mut child = kontiki()
        .args([
            "--log-format=json",
            "node",
            "--id=1",
            &format!("--listen={listen}"),
            &format!("--client={client}"),
            &format!("--data-dir={}", data.path().join("d").display()),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (mut started, mut leading) = (None, None);
    for line in std::io::BufRead::lines(stderr) {
        let line = line.unwrap();
        let object: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|error| panic!("not a JSON line ({error}): {line}"));
        if object["fields"]["message"] == "node started" && object["target"] == "kontiki_cli::node"
        {
            started = Some(object);
        } else if object["target"] == "kontiki_driver::start" {
            leading = Some(object);
        }
        if started.is_some() && leading.is_some() {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let started = started.expect("the node logged its start");
    assert_eq!(started["level"], "INFO");
    assert_eq!(started["fields"]["node"], 1);
    assert_eq!(started["fields"]["clients"], client.to_string().as_str());
    // The driver's lines carry the node's span: its id and current term.
    let driver = leading.expect("the driver logged the node's start");
    assert_eq!(driver["span"]["name"], "node", "{driver}");
    assert_eq!(driver["span"]["id"], 1, "{driver}");
    assert!(driver["span"]["term"].is_u64(), "{driver}");
}

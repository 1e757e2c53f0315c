//! Helpers for the `kontiki` command's tests: a small blocking RESP
//! client and a cluster of `kontiki node` processes on loopback.

#![allow(dead_code)] // Each test file uses part of this.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A reply from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+text`
    Simple(String),
    /// `-text`
    Error(String),
    /// `:n`
    Integer(i64),
    /// `$n` (None for `$-1`)
    Bulk(Option<Vec<u8>>),
    /// `*n`
    Array(Vec<Reply>),
}

/// A blocking RESP client.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    /// Connects, with a timeout on every read.
    pub fn connect(address: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Client {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
        })
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Sends one command as an array of bulk strings and reads the reply.
    pub fn call(&mut self, arguments: &[&[u8]]) -> io::Result<Reply> {
        let mut request = format!("*{}\r\n", arguments.len()).into_bytes();
        for argument in arguments {
            request.extend_from_slice(format!("${}\r\n", argument.len()).as_bytes());
            request.extend_from_slice(argument);
            request.extend_from_slice(b"\r\n");
        }
        self.send_raw(&request)?;
        self.read_reply()
    }

    /// `call` with text arguments split on spaces.
    pub fn command(&mut self, text: &str) -> io::Result<Reply> {
        let words: Vec<&[u8]> = text.split(' ').map(str::as_bytes).collect();
        self.call(&words)
    }

    /// Reads one reply.
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let bad = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad reply line {line:?}"),
            )
        };
        let (kind, rest) = line.split_at(1.min(line.len()));
        Ok(match kind {
            "+" => Reply::Simple(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Integer(rest.parse().map_err(|_| bad())?),
            "$" => {
                let length: i64 = rest.parse().map_err(|_| bad())?;
                if length < 0 {
                    Reply::Bulk(None)
                } else {
                    let mut data = vec![0; length as usize + 2];
                    self.reader.read_exact(&mut data)?;
                    data.truncate(length as usize);
                    Reply::Bulk(Some(data))
                }
            }
            "*" => {
                let length: i64 = rest.parse().map_err(|_| bad())?;
                let mut items = Vec::new();
                for _ in 0..length.max(0) {
                    items.push(self.read_reply()?);
                }
                Reply::Array(items)
            }
            _ => return Err(bad()),
        })
    }

    /// `INFO raft` as a map.
    pub fn raft_info(&mut self) -> io::Result<HashMap<String, String>> {
        match self.command("INFO raft")? {
            Reply::Bulk(Some(text)) => Ok(String::from_utf8_lossy(&text)
                .lines()
                .filter_map(|line| line.split_once(':'))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()),
            other => Err(io::Error::other(format!("INFO answered {other:?}"))),
        }
    }
}

/// A free loopback address for a node to listen on (below the ephemeral
/// range, so that no outgoing connection takes it first).
pub fn free_address() -> SocketAddr {
    kontiki_driver::unused_loopback_address().expect("a free loopback port")
}

/// The `kontiki` binary under test.
pub fn kontiki() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kontiki"))
}

/// One `kontiki node` process.
pub struct NodeProcess {
    /// Its id.
    pub id: u64,
    /// Its client address.
    pub client: SocketAddr,
    arguments: Vec<String>,
    child: Option<Child>,
}

impl NodeProcess {
    fn start(&mut self) {
        let child = kontiki()
            .args(&self.arguments)
            .env(
                "RUST_LOG",
                std::env::var("KONTIKI_NODE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kontiki node");
        self.child = Some(child);
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the process to exit; returns whether it
    /// exited successfully within `limit`.
    pub fn terminate(&mut self, limit: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Starts it again on the same data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "node {} is still running", self.id);
        self.start();
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Its peer address (`--listen`).
    pub fn peer_address(&self) -> SocketAddr {
        self.arguments
            .iter()
            .find_map(|argument| argument.strip_prefix("--listen="))
            .and_then(|address| address.parse().ok())
            .expect("every node has --listen")
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The arguments every test node runs with: its addresses and data
/// directory, the tests' cluster id, a snapshot every `snapshot_interval`
/// entries.
fn node_arguments(
    id: u64,
    listen: SocketAddr,
    client: SocketAddr,
    dir: &Path,
    snapshot_interval: u64,
) -> Vec<String> {
    vec![
        "node".to_string(),
        format!("--id={id}"),
        format!("--listen={listen}"),
        format!("--client={client}"),
        format!("--data-dir={}", dir.display()),
        "--cluster-id=cli-test".to_string(),
        format!("--snapshot-interval={snapshot_interval}"),
    ]
}

/// A cluster of `kontiki node` processes, one per runtime given.
pub struct ProcessCluster {
    /// The nodes; node `i + 1` is `nodes[i]`.
    pub nodes: Vec<NodeProcess>,
    data: tempfile::TempDir,
    snapshot_interval: u64,
}

impl ProcessCluster {
    /// Starts one node per entry of `runtimes`. Each snapshots its store
    /// every 50 entries, so the suites cover snapshots and restores.
    pub fn start(runtimes: &[&str]) -> ProcessCluster {
        ProcessCluster::start_snapshotting(runtimes, 50)
    }

    /// Starts one node per entry of `runtimes`, each snapshotting its
    /// store every `snapshot_interval` entries (as will nodes added).
    pub fn start_snapshotting(runtimes: &[&str], snapshot_interval: u64) -> ProcessCluster {
        ProcessCluster::start_configured(runtimes, snapshot_interval, &|_| Vec::new())
    }

    /// Starts one node per entry of `runtimes`, each with the flags
    /// `extra` beside the usual ones.
    pub fn start_with(runtimes: &[&str], extra: &[&str]) -> ProcessCluster {
        let extra: Vec<String> = extra.iter().map(|flag| flag.to_string()).collect();
        ProcessCluster::start_configured(runtimes, 50, &|_| extra.clone())
    }

    /// Starts one node per entry of `runtimes`, node `id` with the flags
    /// `extra(id)` beside the usual ones.
    pub fn start_each(runtimes: &[&str], extra: &dyn Fn(u64) -> Vec<String>) -> ProcessCluster {
        ProcessCluster::start_configured(runtimes, 50, extra)
    }

    fn start_configured(
        runtimes: &[&str],
        snapshot_interval: u64,
        extra: &dyn Fn(u64) -> Vec<String>,
    ) -> ProcessCluster {
        let data = tempfile::tempdir().expect("a temporary directory");
        let peers: Vec<(SocketAddr, SocketAddr)> = runtimes
            .iter()
            .map(|_| (free_address(), free_address()))
            .collect();
        let mut nodes = Vec::new();
        for (position, runtime) in runtimes.iter().enumerate() {
            let id = position as u64 + 1;
            let (listen, client) = peers[position];
            let dir: PathBuf = data.path().join(format!("node-{id}"));
            let mut arguments = node_arguments(id, listen, client, &dir, snapshot_interval);
            arguments.push(format!("--runtime={runtime}"));
            arguments.extend(extra(id));
            for (other, (peer, peer_client)) in peers.iter().enumerate() {
                if other != position {
                    arguments.push(format!("--peer={}={peer},{peer_client}", other + 1));
                }
            }
            let mut node = NodeProcess {
                id,
                client,
                arguments,
                child: None,
            };
            node.start();
            nodes.push(node);
        }
        ProcessCluster {
            nodes,
            data,
            snapshot_interval,
        }
    }

    /// Where node `id` keeps its data.
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.data.path().join(format!("node-{id}"))
    }

    /// Starts node `id` (the next one) with an empty data directory,
    /// knowing no peer, to wait until the leader adds it; returns its peer
    /// address.
    pub fn start_joining(&mut self, id: u64) -> SocketAddr {
        assert_eq!(
            id as usize,
            self.nodes.len() + 1,
            "nodes are numbered in order"
        );
        let (listen, client) = (free_address(), free_address());
        let mut arguments = node_arguments(
            id,
            listen,
            client,
            &self.data_dir(id),
            self.snapshot_interval,
        );
        arguments.push("--join".to_string());
        let mut node = NodeProcess {
            id,
            client,
            arguments,
            child: None,
        };
        node.start();
        self.nodes.push(node);
        listen
    }

    /// Every node's client address.
    pub fn client_addresses(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|node| node.client).collect()
    }

    /// `INFO raft` of node `id`, if it answers.
    pub fn info(&self, id: u64) -> Option<HashMap<String, String>> {
        Client::connect(self.nodes[id as usize - 1].client)
            .and_then(|mut client| client.raft_info())
            .ok()
    }

    /// Waits until a running node other than `not` leads and the others
    /// running agree; returns its id.
    pub fn wait_for_leader(&self, not: Option<u64>, limit: Duration) -> u64 {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let infos: Vec<(u64, HashMap<String, String>)> = self
                .nodes
                .iter()
                .filter(|node| node.is_running())
                .filter_map(|node| self.info(node.id).map(|info| (node.id, info)))
                .collect();
            let leader = infos
                .iter()
                .find(|(_, info)| info.get("role").map(String::as_str) == Some("leader"))
                .map(|(id, _)| *id);
            if let Some(leader) = leader.filter(|&leader| Some(leader) != not) {
                let agreed = infos
                    .iter()
                    .all(|(_, info)| info.get("leader_id") == Some(&leader.to_string()));
                if agreed && infos.len() == self.running() {
                    return leader;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no agreed leader (other than {not:?}) within {limit:?}");
    }

    fn running(&self) -> usize {
        self.nodes.iter().filter(|node| node.is_running()).count()
    }
}

impl ProcessCluster {
    /// Waits until node `id` has applied through `commit`, then reads
    /// back (READONLY: its own state, no redirect) every write in
    /// `acknowledged` from it.
    pub fn assert_holds(&self, id: u64, commit: u64, acknowledged: &BTreeMap<String, String>) {
        wait_until(&format!("node {id} applies through {commit}"), || {
            self.info(id)
                .and_then(|info| info["applied_index"].parse::<u64>().ok())
                .is_some_and(|applied| applied >= commit)
        });
        let mut client = Client::connect(self.nodes[id as usize - 1].client).unwrap();
        assert_eq!(
            client.command("READONLY").unwrap(),
            Reply::Simple("OK".into())
        );
        for (key, value) in acknowledged {
            let reply = client.call(&[b"GET", key.as_bytes()]).unwrap();
            assert_eq!(
                reply,
                Reply::Bulk(Some(value.clone().into_bytes())),
                "node {id} lost acknowledged write {key}"
            );
        }
    }
}

/// Polls `condition` every 20 ms; panics naming `what` after 60 s.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `key = value` through whichever node leads, following
/// `-MOVED` and retrying `-TRYAGAIN` and dead nodes until `limit`; true
/// once a node answered `+OK`.
pub fn write_through_leader(
    addresses: &[SocketAddr],
    key: &str,
    value: &str,
    limit: Duration,
) -> bool {
    let deadline = Instant::now() + limit;
    let mut target = addresses[0];
    let mut next = 0;
    while Instant::now() < deadline {
        let reply = Client::connect(target)
            .and_then(|mut c| c.call(&[b"SET", key.as_bytes(), value.as_bytes()]));
        match reply {
            Ok(Reply::Simple(ok)) if ok == "OK" => return true,
            Ok(Reply::Error(error)) if error.starts_with("MOVED ") => {
                let address = error.rsplit(' ').next().unwrap_or_default();
                target = address.parse().expect("MOVED names an address");
                continue;
            }
            _ => {
                next = (next + 1) % addresses.len();
                target = addresses[next];
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    false
}

/// A node that serves clients over TLS and asks them to authenticate, as
/// the secure-client tests start it.
pub struct SecureNode {
    /// The one-node cluster.
    pub cluster: ProcessCluster,
    /// The CA file that certifies its client port (its certificate also
    /// names 127.0.0.1 and localhost).
    pub ca: PathBuf,
    /// The default user's password.
    pub password: &'static str,
    _files: tempfile::TempDir,
}

impl SecureNode {
    /// Makes certificates with `kontiki cert` and a users file, and
    /// starts the node with `--client-tls-cert`, `--client-tls-key` and
    /// `--auth-file`, on `runtime`; waits until it leads.
    pub fn start(runtime: &str) -> SecureNode {
        let files = tempfile::tempdir().expect("a temporary directory");
        let certs = files.path().join("certs");
        let made = kontiki()
            .args([
                "cert",
                "--nodes",
                "1",
                "--name",
                "127.0.0.1",
                "--name",
                "localhost",
            ])
            .arg(format!("--dir={}", certs.display()))
            .output()
            .expect("run kontiki cert");
        assert!(made.status.success(), "{made:?}");
        let users = files.path().join("users");
        let password = "s3cret";
        std::fs::write(&users, format!("default {password}\n")).expect("write the users");
        let flags = [
            format!("--client-tls-cert={}", certs.join("node-1.pem").display()),
            format!(
                "--client-tls-key={}",
                certs.join("node-1-key.pem").display()
            ),
            format!("--auth-file={}", users.display()),
        ];
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let cluster = ProcessCluster::start_with(&[runtime], &flags);
        let node = SecureNode {
            cluster,
            ca: certs.join("ca.pem"),
            password,
            _files: files,
        };
        wait_until("the secure node to lead", || {
            String::from_utf8_lossy(&node.status().stdout).contains(r#""role":"leader""#)
        });
        node
    }

    /// Its client address.
    pub fn address(&self) -> SocketAddr {
        self.cluster.nodes[0].client
    }

    /// `kontiki status` of it, over TLS, logged in.
    pub fn status(&self) -> std::process::Output {
        kontiki()
            .args(["status", "--json", &self.address().to_string()])
            .arg(format!("--tls-ca={}", self.ca.display()))
            .env("KONTIKI_PASSWORD", self.password)
            .output()
            .expect("run kontiki status")
    }
}

//! The `kontiki` command: a local cluster demo, one node of a real
//! replicated key-value store that Redis clients use, and a status probe.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use kontiki_cli::demo::{self, DemoOptions, DemoRuntime};
use kontiki_cli::settings::{FileSettings, NodeSettings, PeerSpec, RuntimeChoice};
use kontiki_cli::{admin, cert, client, node, status};

/// kontiki: Raft consensus you can run.
#[derive(Parser)]
#[command(name = "kontiki", version, propagate_version = true)]
struct Cli {
    /// How log lines are written to standard error: text for people, or
    /// JSON (one object per line) for log shippers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// The format of log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line: timestamp, level, target, fields.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a local cluster in this process, over loopback TCP, with no
    /// setup: a live view of every node while a client writes and the
    /// leader is stopped every few seconds and brought back, and halfway a
    /// follower is replaced by a new node (as after a disk failure); then
    /// a summary with elections, failover times, the replacement, and a
    /// check that every acknowledged write is in every node's log.
    Demo {
        /// How many nodes (1 to 9).
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        /// The runtime the nodes run on; `mixed` rotates through all three.
        #[arg(long, value_enum, default_value_t = DemoRuntime::Tokio)]
        runtime: DemoRuntime,
        /// How long to run, such as 30s, 2m or 1500ms.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
        /// Seeds the nodes' election timeouts and when the leader is
        /// stopped.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Link the nodes with mutual TLS, certified by a CA made for the
        /// run.
        #[arg(long)]
        tls: bool,
    },
    /// Run one node of a replicated key-value store that speaks the Redis
    /// protocol (redis-cli, redis-benchmark and Redis client libraries work).
    ///
    /// Writes (SET, DEL, INCR) are acknowledged once committed by a majority
    /// and applied; reads (GET, EXISTS, DBSIZE) are linearizable. A node
    /// that does not lead answers -MOVED 0 <leader's client address>, or
    /// -TRYAGAIN while no leader is known. SIGTERM or SIGINT stops the
    /// node gracefully; after SIGKILL it restarts from DIR with every
    /// acknowledged write.
    Node(Box<NodeArgs>),
    /// Change the members of a running cluster, or list them. The change
    /// is sent to --node and redirected to the leader; it is done when
    /// the command returns.
    Member {
        /// The client address (host:port) of any node of the cluster.
        #[arg(
            long,
            value_name = "ADDR",
            global = true,
            default_value = "127.0.0.1:6379"
        )]
        node: String,
        #[command(subcommand)]
        action: MemberAction,
        #[command(flatten)]
        login: LoginArgs,
    },
    /// Hand the leadership to voter ID: the leader brings it up to date
    /// and has it elected at once (to restart the leader's machine, say).
    Transfer {
        /// The voter to lead.
        id: u64,
        /// The client address (host:port) of any node of the cluster.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:6379")]
        node: String,
        #[command(flatten)]
        login: LoginArgs,
    },
    /// Make a development certificate authority and node certificates in
    /// a directory, for `kontiki node --tls-ca DIR/ca.pem --tls-cert
    /// DIR/node-ID.pem --tls-key DIR/node-ID-key.pem`. The CA is made on
    /// the first run and reused after (run again with new ids to add
    /// nodes); node certificates are made anew.
    Cert {
        /// Where the files go (created if missing).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The node ids to issue certificates for, such as 1,2,3.
        #[arg(long, value_name = "IDS", value_delimiter = ',', required = true)]
        nodes: Vec<u64>,
        /// How long the certificates are valid.
        #[arg(long, value_name = "DAYS", default_value_t = 365)]
        days: u32,
        /// A host name or IP address every node certificate also names;
        /// repeat for more.
        #[arg(long = "name", value_name = "HOST")]
        names: Vec<String>,
    },
    /// Print each node's state (asked over its client address): id, role,
    /// term, leader, commit, applied and last log index, snapshot,
    /// members, as a table. Exits 1 if any node did not answer.
    Status {
        /// Client addresses (host:port) of the nodes to ask.
        #[arg(required = true, value_name = "ADDR")]
        addresses: Vec<String>,
        /// One JSON object per node instead, one per line (every field of
        /// `INFO raft`).
        #[arg(long, conflicts_with = "watch")]
        json: bool,
        /// A live view instead: the table redrawn every --interval, with
        /// each node's commits per second, until Ctrl-C.
        #[arg(long)]
        watch: bool,
        /// How often --watch redraws, such as 1s or 500ms.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
        /// Stop --watch after this many frames.
        #[arg(long, value_name = "N", requires = "watch")]
        count: Option<u64>,
        #[command(flatten)]
        login: LoginArgs,
    },
}

#[derive(Subcommand)]
enum MemberAction {
    /// Add node ID as a learner: it receives the log but does not vote
    /// until promoted. Start it first with `kontiki node --join`.
    Add {
        /// The new node's id.
        id: u64,
        /// Its --listen address (host:port), where its peers reach it.
        peer_addr: String,
        /// Its --client address, so that other nodes can redirect clients
        /// to it once it leads.
        client_addr: Option<String>,
    },
    /// Make learner ID a voter, once it has caught up with the leader
    /// (retried for a while if it has not yet).
    Promote {
        /// The learner's id.
        id: u64,
    },
    /// Remove member ID (a dead node, or one to retire); the leader may
    /// remove itself.
    Remove {
        /// The member's id.
        id: u64,
    },
    /// List the members as the node sees them: id, role, peer and client
    /// addresses, and on the leader how far each has replicated.
    List,
}

/// How the commands that ask nodes authenticate, for nodes started with
/// `--auth-file`.
#[derive(Args)]
struct LoginArgs {
    /// The user to authenticate as [default: the default user].
    #[arg(long, value_name = "NAME", global = true)]
    user: Option<String>,
    /// A file holding the password (its first line); the environment
    /// variable KONTIKI_PASSWORD may give it instead.
    #[arg(long, value_name = "FILE", global = true)]
    password_file: Option<PathBuf>,
    /// Reach the nodes over TLS (for nodes started with
    /// --client-tls-cert), trusting the CA certificates in this file.
    #[arg(long, value_name = "FILE", global = true)]
    tls_ca: Option<PathBuf>,
    /// The name the nodes' certificates must carry [default: the IP
    /// address dialed].
    #[arg(long, value_name = "NAME", global = true, requires = "tls_ca")]
    tls_server_name: Option<String>,
}

impl LoginArgs {
    /// The access these arguments describe: a login when a password is
    /// given (by file or environment).
    fn access(&self) -> Result<client::Access, String> {
        let password = match &self.password_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| {
                    format!("cannot read the password file {}: {error}", path.display())
                })?;
                Some(text.lines().next().unwrap_or_default().to_string())
            }
            None => std::env::var("KONTIKI_PASSWORD").ok(),
        };
        if password.is_none() && self.user.is_some() {
            return Err("--user needs a password (--password-file or KONTIKI_PASSWORD)".into());
        }
        let login = password.map(|password| client::Login {
            user: self.user.clone(),
            password,
        });
        let tls = self
            .tls_ca
            .as_deref()
            .map(|ca| client::ClientTls::load(ca, self.tls_server_name.as_deref()))
            .transpose()?;
        Ok(client::Access { login, tls })
    }
}

#[derive(Args)]
struct NodeArgs {
    /// Read settings from this TOML file (keys as the flags, with `_` for
    /// `-`, and peers as `[[peer]]` tables with id, addr and client); flags
    /// given too win over it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// This node's id: a positive integer, unique in the cluster.
    #[arg(long)]
    id: Option<u64>,
    /// Where to accept connections from the other nodes (host:port).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Another node of the cluster: its id, its --listen address, and
    /// optionally its --client address (used to redirect clients to it
    /// when it leads). Repeat for every other node.
    #[arg(long = "peer", value_name = "ID=PEER_ADDR[,CLIENT_ADDR]")]
    peers: Vec<PeerSpec>,
    /// Where to serve Redis clients (host:port).
    #[arg(long, value_name = "ADDR")]
    client: Option<String>,
    /// Where the node keeps its log and vote (created if missing).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The async runtime to run on [default: tokio].
    #[arg(long, value_enum)]
    runtime: Option<RuntimeChoice>,
    /// A name all nodes of the cluster share; nodes of another cluster are
    /// refused [default: kontiki].
    #[arg(long, value_name = "NAME")]
    cluster_id: Option<String>,
    /// Snapshot the key-value store and compact the log every this many
    /// applied entries; 0 never does [default: 10000].
    #[arg(long, value_name = "ENTRIES")]
    snapshot_interval: Option<u64>,
    /// The address other nodes reach this one at, when --listen is not it
    /// (a wildcard such as 0.0.0.0:7001, or behind NAT) [default: --listen].
    #[arg(long, value_name = "ADDR")]
    advertise: Option<String>,
    /// Join a running cluster instead of founding one: the node waits,
    /// without ever campaigning, until the leader adds it (`kontiki member
    /// add`). --peer may then be left out: the node learns its peers from
    /// the leader. Ignored once the node's data directory holds a
    /// configuration.
    #[arg(long)]
    join: bool,
    /// Client connections served at once; one more is answered "-ERR max
    /// number of clients reached" and closed. Lowered, with a warning, to
    /// fit under the process's file limit [default: 10000].
    #[arg(long, value_name = "N")]
    max_clients: Option<usize>,
    /// Close a client connection that sends nothing for this many
    /// seconds; 0 never does [default: 0].
    #[arg(long, value_name = "SECONDS")]
    client_idle_timeout: Option<u64>,
    /// Mutual TLS between nodes: the cluster's CA certificate (PEM).
    /// With --tls-cert and --tls-key, every peer link is TLS 1.3 and a
    /// peer must show a certificate from this CA naming its node id
    /// (`kontiki cert` makes them); plaintext peers are refused. SIGHUP
    /// rereads the three files.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// This node's certificate (PEM), naming `node-<id>.kontiki`.
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// This node's private key (PEM).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Require clients to authenticate (`AUTH [user] password`) as a user
    /// of this file: one `NAME PASSWORD` per line, `default` being the
    /// user `AUTH password` names. SIGHUP rereads it.
    #[arg(long, value_name = "FILE")]
    auth_file: Option<PathBuf>,
    /// Serve clients over TLS (TLS 1.3 or 1.2; `redis-cli --tls`) with
    /// this certificate chain (PEM); plaintext clients are refused.
    /// SIGHUP rereads it.
    #[arg(long, value_name = "FILE")]
    client_tls_cert: Option<PathBuf>,
    /// The key of --client-tls-cert (PEM).
    #[arg(long, value_name = "FILE")]
    client_tls_key: Option<PathBuf>,
    /// Serve the node's measurements for Prometheus at
    /// http://ADDR/metrics (term, role, commit and applied index,
    /// elections, proposal and fsync latency, queues, refused
    /// connections...).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            // --help and --version.
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let rendered = error.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("kontiki: {first} (see kontiki --help)");
            return ExitCode::from(2);
        }
    };
    // The demo draws its own view: only warnings and errors may interrupt
    // it. A node logs its lifecycle. RUST_LOG overrides either.
    let default_filter = match cli.command {
        Command::Demo { .. } => "warn",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let outcome = match cli.command {
        Command::Demo {
            nodes,
            runtime,
            duration,
            seed,
            tls,
        } => {
            let options = DemoOptions {
                nodes,
                runtime,
                duration,
                seed,
                tls,
            };
            match demo::run(options) {
                Ok(true) => Ok(()),
                Ok(false) => return ExitCode::FAILURE,
                Err(error) => Err(error),
            }
        }
        Command::Node(args) => run_node(*args),
        Command::Member {
            node,
            action,
            login,
        } => {
            let action = match action {
                MemberAction::Add {
                    id,
                    peer_addr,
                    client_addr,
                } => admin::Action::Add {
                    id,
                    peer: peer_addr,
                    client: client_addr,
                },
                MemberAction::Promote { id } => admin::Action::Promote(id),
                MemberAction::Remove { id } => admin::Action::Remove(id),
                MemberAction::List => admin::Action::List,
            };
            login
                .access()
                .and_then(|access| admin_command(&access, &node, &action))
        }
        Command::Transfer { id, node, login } => login
            .access()
            .and_then(|access| admin_command(&access, &node, &admin::Action::Transfer(id))),
        Command::Cert {
            dir,
            nodes,
            days,
            names,
        } => {
            let options = cert::CertOptions {
                dir,
                nodes,
                days,
                names,
            };
            cert::run(&options).map(|written| {
                for line in written {
                    println!("{line}");
                }
            })
        }
        Command::Status {
            addresses,
            json,
            watch,
            interval,
            count,
            login,
        } => match login.access() {
            Ok(access) if watch => {
                status::watch(&access, &addresses, interval, count);
                Ok(())
            }
            Ok(access) if status::run(&access, &addresses, json) => Ok(()),
            Ok(_) => return ExitCode::FAILURE,
            Err(error) => Err(error),
        },
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kontiki: {error}");
            ExitCode::FAILURE
        }
    }
}

fn admin_command(
    access: &client::Access,
    node: &str,
    action: &admin::Action,
) -> Result<(), String> {
    let printed = admin::run(access, node, action)?;
    println!("{printed}");
    Ok(())
}

fn run_node(args: NodeArgs) -> Result<(), String> {
    let file = match &args.config {
        Some(path) => FileSettings::load(path)?,
        None => FileSettings::default(),
    };
    let flags = FileSettings {
        id: args.id,
        listen: args.listen,
        client: args.client,
        data_dir: args.data_dir,
        runtime: args.runtime,
        cluster_id: args.cluster_id,
        snapshot_interval: args.snapshot_interval,
        advertise: args.advertise,
        join: args.join.then_some(true),
        peer: args.peers,
        max_clients: args.max_clients,
        client_idle_timeout: args.client_idle_timeout,
        tls_ca: args.tls_ca,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        auth_file: args.auth_file,
        client_tls_cert: args.client_tls_cert,
        client_tls_key: args.client_tls_key,
        metrics: args.metrics,
    };
    node::run(NodeSettings::resolve(flags, file)?)
}

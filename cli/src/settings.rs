//! `kontiki node`'s settings: from flags, from a TOML file, or both (a
//! flag wins over the file; `--peer` flags, if any, replace the file's
//! peers), checked and resolved before anything starts.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::ValueEnum;
use kontiki::NodeId;
use serde::Deserialize;

use crate::client_limits::DEFAULT_MAX_CLIENTS;
use kontiki_driver::TlsFiles;

/// The async runtime a node runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeChoice {
    /// tokio, multi-threaded.
    Tokio,
    /// async-std (discontinued upstream, still supported).
    AsyncStd,
    /// smol.
    Smol,
}

/// One `--peer ID=PEER_ADDR[,CLIENT_ADDR]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSpec {
    /// The peer's node id.
    pub id: u64,
    /// Where it accepts peer connections (host:port).
    pub addr: String,
    /// Where it serves clients (host:port); lets this node redirect
    /// clients to it when it leads.
    pub client: Option<String>,
}

impl FromStr for PeerSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<PeerSpec, String> {
        let (id, addresses) = text
            .split_once('=')
            .ok_or_else(|| format!("expected ID=PEER_ADDR[,CLIENT_ADDR], got {text:?}"))?;
        let id = id
            .trim()
            .parse()
            .map_err(|_| format!("the peer id in {text:?} is not a positive integer"))?;
        let (addr, client) = match addresses.split_once(',') {
            Some((addr, client)) => (addr, Some(client.to_string())),
            None => (addresses, None),
        };
        Ok(PeerSpec {
            id,
            addr: addr.to_string(),
            client,
        })
    }
}

/// What a config file may hold: the same settings as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// `--id`.
    pub id: Option<u64>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--client`.
    pub client: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--runtime`.
    pub runtime: Option<RuntimeChoice>,
    /// `--cluster-id`.
    pub cluster_id: Option<String>,
    /// `--snapshot-interval`.
    pub snapshot_interval: Option<u64>,
    /// `--advertise`.
    pub advertise: Option<String>,
    /// `--join`.
    pub join: Option<bool>,
    /// `--max-clients`.
    pub max_clients: Option<usize>,
    /// `--client-idle-timeout`, in seconds (0: never).
    pub client_idle_timeout: Option<u64>,
    /// `--tls-ca`.
    pub tls_ca: Option<PathBuf>,
    /// `--tls-cert`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`.
    pub tls_key: Option<PathBuf>,
    /// `--auth-file`.
    pub auth_file: Option<PathBuf>,
    /// `--client-tls-cert`.
    pub client_tls_cert: Option<PathBuf>,
    /// `--client-tls-key`.
    pub client_tls_key: Option<PathBuf>,
    /// `--metrics`.
    pub metrics: Option<String>,
    /// `--peer`, as `[[peer]]` tables.
    #[serde(default)]
    pub peer: Vec<PeerSpec>,
}

impl FileSettings {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<FileSettings, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read the config file {}: {error}", path.display()))?;
        toml::from_str(&text).map_err(|error| {
            let problem = error.message().to_string();
            format!("the config file {} is invalid: {problem}", path.display())
        })
    }
}

/// A node's settings, complete and resolved.
#[derive(Debug)]
pub struct NodeSettings {
    /// This node.
    pub id: NodeId,
    /// Its peer address.
    pub listen: SocketAddr,
    /// Its client address.
    pub client: SocketAddr,
    /// Where its log and hard state live.
    pub data_dir: PathBuf,
    /// The runtime.
    pub runtime: RuntimeChoice,
    /// The cluster's name.
    pub cluster_id: String,
    /// Applied entries between snapshots (0: never).
    pub snapshot_interval: u64,
    /// Every peer's address.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Every node's client address known, this node's included.
    pub client_addresses: BTreeMap<NodeId, SocketAddr>,
    /// Where peers reach this node, if not at `listen`.
    pub advertise: Option<SocketAddr>,
    /// Wait to be added to a running cluster instead of founding one.
    pub join: bool,
    /// Client connections at once (before fitting under the file limit).
    pub max_clients: usize,
    /// Close a client connection that sends nothing for this long.
    pub client_idle_timeout: Option<Duration>,
    /// Mutual TLS on peer links, from these files.
    pub tls: Option<TlsFiles>,
    /// The client port's users, from this file.
    pub auth_file: Option<PathBuf>,
    /// TLS on the client port: the certificate chain and key files.
    pub client_tls: Option<(PathBuf, PathBuf)>,
    /// Where Prometheus scrapes the node's measurements.
    pub metrics: Option<SocketAddr>,
}

/// Resolves `host:port` (a name or an IP address) to one address.
pub fn resolve(what: &str, address: &str) -> Result<SocketAddr, String> {
    address
        .to_socket_addrs()
        .map_err(|error| format!("{what} {address:?} is not a usable address: {error}"))?
        .next()
        .ok_or_else(|| format!("{what} {address:?} resolves to no address"))
}

impl NodeSettings {
    /// Completes `flags` with `file` and checks the result.
    pub fn resolve(flags: FileSettings, file: FileSettings) -> Result<NodeSettings, String> {
        let missing = |flag: &str| {
            format!(
                "missing --{flag} (or `{}` in the config file)",
                flag.replace('-', "_")
            )
        };
        let id = flags.id.or(file.id).ok_or_else(|| missing("id"))?;
        if id == 0 {
            return Err("--id must be a positive integer (0 is not a node id)".into());
        }
        let id = NodeId(id);
        let listen = flags
            .listen
            .or(file.listen)
            .ok_or_else(|| missing("listen"))?;
        let listen = resolve("--listen", &listen)?;
        let client = flags
            .client
            .or(file.client)
            .ok_or_else(|| missing("client"))?;
        let client = resolve("--client", &client)?;
        if client == listen {
            return Err(format!(
                "--client and --listen are both {client}; they must differ"
            ));
        }
        let data_dir = flags
            .data_dir
            .or(file.data_dir)
            .ok_or_else(|| missing("data-dir"))?;
        let runtime = flags
            .runtime
            .or(file.runtime)
            .unwrap_or(RuntimeChoice::Tokio);
        let cluster_id = flags
            .cluster_id
            .or(file.cluster_id)
            .unwrap_or_else(|| "kontiki".to_string());
        let snapshot_interval = flags
            .snapshot_interval
            .or(file.snapshot_interval)
            .unwrap_or(10_000);
        let advertise = flags
            .advertise
            .or(file.advertise)
            .map(|address| resolve("--advertise", &address))
            .transpose()?;
        let join = flags.join.or(file.join).unwrap_or(false);
        let peer_specs = if flags.peer.is_empty() {
            file.peer
        } else {
            flags.peer
        };
        let mut peers = BTreeMap::new();
        let mut client_addresses = BTreeMap::from([(id, client)]);
        for spec in peer_specs {
            let peer = NodeId(spec.id);
            if spec.id == 0 || peer == id {
                return Err(format!(
                    "--peer {}: a peer needs a positive id other than this node's ({id})",
                    spec.id
                ));
            }
            let address = resolve(&format!("--peer {}", spec.id), &spec.addr)?;
            if peers.insert(peer, address).is_some() {
                return Err(format!("--peer {} is given twice", spec.id));
            }
            if let Some(client) = &spec.client {
                let client = resolve(&format!("the client address of peer {}", spec.id), client)?;
                client_addresses.insert(peer, client);
            }
        }
        let tls = resolve_tls(
            flags.tls_ca.or(file.tls_ca),
            flags.tls_cert.or(file.tls_cert),
            flags.tls_key.or(file.tls_key),
        )?;
        Ok(NodeSettings {
            tls,
            auth_file: flags.auth_file.or(file.auth_file),
            metrics: flags
                .metrics
                .or(file.metrics)
                .map(|address| resolve("--metrics", &address))
                .transpose()?,
            client_tls: match (
                flags.client_tls_cert.or(file.client_tls_cert),
                flags.client_tls_key.or(file.client_tls_key),
            ) {
                (Some(cert), Some(key)) => Some((cert, key)),
                (None, None) => None,
                _ => return Err("--client-tls-cert and --client-tls-key go together".into()),
            },
            id,
            listen,
            client,
            data_dir,
            runtime,
            cluster_id,
            snapshot_interval,
            peers,
            client_addresses,
            advertise,
            join,
            max_clients: flags
                .max_clients
                .or(file.max_clients)
                .unwrap_or(DEFAULT_MAX_CLIENTS),
            client_idle_timeout: flags
                .client_idle_timeout
                .or(file.client_idle_timeout)
                .filter(|seconds| *seconds > 0)
                .map(Duration::from_secs),
        })
    }
}

/// The TLS files: all three, or none (plaintext).
fn resolve_tls(
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Result<Option<TlsFiles>, String> {
    match (ca, cert, key) {
        (Some(ca), Some(cert), Some(key)) => Ok(Some(TlsFiles { ca, cert, key })),
        (None, None, None) => Ok(None),
        (ca, cert, key) => {
            let missing: Vec<&str> = [
                (ca.is_none(), "--tls-ca"),
                (cert.is_none(), "--tls-cert"),
                (key.is_none(), "--tls-key"),
            ]
            .into_iter()
            .filter_map(|(missing, flag)| missing.then_some(flag))
            .collect();
            Err(format!(
                "--tls-ca, --tls-cert and --tls-key go together: missing {}",
                missing.join(" and ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> FileSettings {
        FileSettings {
            id: Some(1),
            listen: Some("127.0.0.1:7001".into()),
            client: Some("127.0.0.1:6001".into()),
            data_dir: Some("data".into()),
            ..FileSettings::default()
        }
    }

    #[test]
    fn peers_parse_with_and_without_a_client_address() {
        assert_eq!(
            "2=127.0.0.1:7002,127.0.0.1:6002".parse(),
            Ok(PeerSpec {
                id: 2,
                addr: "127.0.0.1:7002".into(),
                client: Some("127.0.0.1:6002".into())
            })
        );
        assert_eq!("3=h:1".parse::<PeerSpec>().map(|p| p.client), Ok(None));
        assert!("x=h:1".parse::<PeerSpec>().is_err());
        assert!("127.0.0.1:7002".parse::<PeerSpec>().is_err());
    }

    #[test]
    fn flags_win_over_the_file_and_peers_replace_the_files() {
        let file: FileSettings = toml::from_str(
            r#"
            id = 9
            listen = "127.0.0.1:7009"
            client = "127.0.0.1:6009"
            data_dir = "/tmp/x"
            runtime = "async-std"
            cluster_id = "prod"
            snapshot_interval = 500
            [[peer]]
            id = 2
            addr = "127.0.0.1:7002"
            client = "127.0.0.1:6002"
            "#,
        )
        .unwrap();
        let mut flags = flags();
        flags.peer = vec!["3=127.0.0.1:7003".parse().unwrap()];
        let settings = NodeSettings::resolve(flags, file).unwrap();
        assert_eq!(settings.id, NodeId(1));
        assert_eq!(settings.runtime, RuntimeChoice::AsyncStd);
        assert_eq!(settings.cluster_id, "prod");
        assert_eq!(settings.snapshot_interval, 500);
        assert_eq!(
            settings.peers.keys().copied().collect::<Vec<_>>(),
            [NodeId(3)]
        );
        assert_eq!(settings.client_addresses.len(), 1);
    }

    #[test]
    fn bad_settings_are_named() {
        let error = |flags: FileSettings| {
            NodeSettings::resolve(flags, FileSettings::default()).unwrap_err()
        };
        let mut missing = flags();
        missing.data_dir = None;
        assert_eq!(
            error(missing),
            "missing --data-dir (or `data_dir` in the config file)"
        );
        let mut self_peer = flags();
        self_peer.peer = vec!["1=127.0.0.1:7001".parse().unwrap()];
        assert!(error(self_peer).contains("other than this node's"));
        let mut twice = flags();
        twice.peer = vec![
            "2=127.0.0.1:1".parse().unwrap(),
            "2=127.0.0.1:2".parse().unwrap(),
        ];
        assert_eq!(error(twice), "--peer 2 is given twice");
        let mut bad_address = flags();
        bad_address.listen = Some("nowhere".into());
        assert!(error(bad_address).starts_with("--listen \"nowhere\" is not a usable address"));
        let mut half_tls = flags();
        half_tls.tls_ca = Some("ca.pem".into());
        assert_eq!(
            error(half_tls),
            "--tls-ca, --tls-cert and --tls-key go together: missing --tls-cert and --tls-key"
        );
        assert!(
            toml::from_str::<FileSettings>("idd = 1").is_err(),
            "unknown keys are refused"
        );
    }
}

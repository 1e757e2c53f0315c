//! The demo's nodes: started on their runtimes, stopped and restarted on
//! their data directories, and the client that writes to them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::executor::block_on;
use kontiki::{LogIndex, NodeId, Role};
use kontiki_driver::tls::{CertificateAuthority, Validity};
use kontiki_driver::{
    ChangeError, Handle, NodeConfig, PeerTls, ProposeError, StateMachine, Status, TlsPem,
    WalStorage,
};

use super::options::{DemoOptions, DemoRuntime};

/// The state machine: remembers every command applied, in order.
#[derive(Clone, Default)]
pub struct AppliedLog {
    commands: Arc<Mutex<Vec<Bytes>>>,
}

impl StateMachine for AppliedLog {
    type Output = ();

    fn apply(&mut self, _index: LogIndex, command: &Bytes) {
        self.commands
            .lock()
            .expect("applied log")
            .push(command.clone());
    }
}

/// The handles of the running nodes, shared with the writer.
pub type Handles = Arc<Mutex<BTreeMap<NodeId, Handle<AppliedLog>>>>;

struct DemoNode {
    config: NodeConfig,
    runtime: DemoRuntime,
    data: PathBuf,
    applied: AppliedLog,
}

/// The nodes, and the runtimes they run on.
pub struct DemoCluster {
    nodes: BTreeMap<NodeId, DemoNode>,
    handles: Handles,
    tokio: Option<tokio::runtime::Runtime>,
    /// The CA that certifies every node, with `--tls`.
    ca: Option<CertificateAuthority>,
    _data: tempfile::TempDir,
}

fn free_address() -> Result<SocketAddr, String> {
    kontiki_driver::unused_loopback_address()
        .map_err(|error| format!("cannot find a free loopback port: {error}"))
}

impl DemoCluster {
    /// Starts every node.
    pub fn start(options: &DemoOptions) -> Result<DemoCluster, String> {
        let data = tempfile::tempdir()
            .map_err(|error| format!("cannot create a temporary directory: {error}"))?;
        let ids: Vec<NodeId> = (1..=options.nodes as u64).map(NodeId).collect();
        let mut addresses = BTreeMap::new();
        for &id in &ids {
            addresses.insert(id, free_address()?);
        }
        let runtime_of = |position: usize| match options.runtime {
            DemoRuntime::Mixed => {
                [DemoRuntime::Tokio, DemoRuntime::Smol, DemoRuntime::AsyncStd][position % 3]
            }
            single => single,
        };
        let needs_tokio = (0..ids.len()).any(|position| runtime_of(position) == DemoRuntime::Tokio);
        let tokio = needs_tokio
            .then(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
            })
            .transpose()
            .map_err(|error| format!("cannot start tokio: {error}"))?;
        let mut cluster = DemoCluster {
            nodes: BTreeMap::new(),
            handles: Arc::default(),
            tokio,
            ca: options
                .tls
                .then(|| CertificateAuthority::generate(Validity::days_from_now(1)))
                .transpose()
                .map_err(|error| format!("cannot make the demo's CA: {error}"))?,
            _data: data,
        };
        for (position, &id) in ids.iter().enumerate() {
            let peers = addresses
                .iter()
                .filter(|(peer, _)| **peer != id)
                .map(|(peer, address)| (*peer, *address))
                .collect();
            let mut config = NodeConfig::new(id, addresses[&id], peers);
            config.cluster_id = "kontiki-demo".into();
            config.seed = Some(options.seed);
            config.tls = cluster.peer_tls(id)?;
            let node = DemoNode {
                config,
                runtime: runtime_of(position),
                data: cluster._data.path().join(format!("node-{id}")),
                applied: AppliedLog::default(),
            };
            cluster.nodes.insert(id, node);
            cluster.restart(id)?;
        }
        Ok(cluster)
    }

    /// Node `id`'s TLS material, issued by the demo's CA; `None` without
    /// `--tls`.
    fn peer_tls(&self, id: NodeId) -> Result<Option<PeerTls>, String> {
        let Some(ca) = &self.ca else {
            return Ok(None);
        };
        let issue = || {
            let issued = ca.issue(id, Validity::days_from_now(1), &[])?;
            let pem = TlsPem {
                ca: ca.cert_pem().as_bytes(),
                cert: issued.cert_pem.as_bytes(),
                key: issued.key_pem.as_bytes(),
            };
            PeerTls::from_pem(id, pem)
        };
        issue()
            .map(Some)
            .map_err(|error| format!("cannot certify node {id}: {error}"))
    }

    /// The running nodes' handles.
    pub fn handles(&self) -> Handles {
        Arc::clone(&self.handles)
    }

    /// Node `id`'s runtime.
    pub fn runtime(&self, id: NodeId) -> DemoRuntime {
        self.nodes[&id].runtime
    }

    /// Every node's status, `None` for a stopped one.
    pub fn statuses(&self) -> Vec<(NodeId, Option<Status>)> {
        let handles = self.handles.lock().expect("handles");
        self.nodes
            .keys()
            .map(|id| (*id, handles.get(id).map(Handle::status)))
            .collect()
    }

    /// Replaces node `old`, as an operator would after its disk died: it
    /// stops for good and its data is deleted; a new node starts empty,
    /// waiting to be added; the leader adds it as a learner, promotes it
    /// once it has caught up, and removes `old`. Returns the new node's
    /// id and how long it took from its addition to its promotion.
    pub fn replace(&mut self, old: NodeId) -> Result<(NodeId, Duration), String> {
        self.stop(old);
        let gone = self.nodes.remove(&old).expect("a demo node");
        let _ = std::fs::remove_dir_all(&gone.data);
        let id = NodeId(
            self.nodes
                .keys()
                .chain([&old])
                .map(|id| id.get())
                .max()
                .unwrap_or(0)
                + 1,
        );
        let address = free_address()?;
        let mut config = NodeConfig::new(id, address, BTreeMap::new());
        config.cluster_id = gone.config.cluster_id.clone();
        config.seed = gone.config.seed;
        config.join = true;
        config.tls = self.peer_tls(id)?;
        self.nodes.insert(
            id,
            DemoNode {
                config,
                runtime: gone.runtime,
                data: self._data.path().join(format!("node-{id}")),
                applied: AppliedLog::default(),
            },
        );
        self.restart(id)?;
        self.on_leader(|leader| block_on(leader.add_learner(id, address, None)))?;
        let added = Instant::now();
        self.on_leader(|leader| block_on(leader.promote(id)))?;
        let caught_up = added.elapsed();
        self.on_leader(|leader| block_on(leader.remove(old)))?;
        Ok((id, caught_up))
    }

    /// Runs a membership change on the leader, retrying for up to 10 s
    /// while no leader is known, the leader changes, or the change must
    /// wait (another pending, a learner still catching up).
    fn on_leader(
        &self,
        change: impl Fn(&Handle<AppliedLog>) -> Result<LogIndex, ChangeError>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let leader = self
                .handles
                .lock()
                .expect("handles")
                .values()
                .find(|handle| handle.status().role == Role::Leader)
                .cloned();
            let outcome = match leader {
                Some(leader) => change(&leader),
                None => Err(ChangeError::NotLeader { leader: None }),
            };
            match outcome {
                Ok(_) => return Ok(()),
                Err(error @ ChangeError::Refused(_)) if !error.is_transient() => {
                    return Err(format!("the leader refused a membership change: {error}"))
                }
                Err(error) if Instant::now() >= deadline => {
                    return Err(format!("a membership change did not happen: {error}"))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Stops node `id` (its data directory stays).
    pub fn stop(&mut self, id: NodeId) {
        let handle = self.handles.lock().expect("handles").remove(&id);
        if let Some(handle) = handle {
            block_on(handle.shutdown());
        }
    }

    /// Starts node `id` on what its data directory holds, with a fresh
    /// state machine (it applies its log again from the start).
    pub fn restart(&mut self, id: NodeId) -> Result<(), String> {
        let node = self.nodes.get_mut(&id).expect("a demo node");
        node.applied = AppliedLog::default();
        // `stop` awaited the shutdown, which releases the store.
        let storage = WalStorage::open(&node.data)
            .map_err(|error| format!("cannot open node {id}'s store: {error}"))?;
        let (config, applied) = (node.config.clone(), node.applied.clone());
        let started = match node.runtime {
            DemoRuntime::Tokio | DemoRuntime::Mixed => {
                let tokio = self
                    .tokio
                    .as_ref()
                    .expect("tokio runs when a node needs it");
                let task = tokio.spawn(async move {
                    let runtime = kontiki_tokio::TokioRuntime::current();
                    kontiki_driver::start(runtime, config, storage, applied).await
                });
                block_on(task).map_err(|error| format!("node {id} failed to start: {error}"))?
            }
            DemoRuntime::Smol => block_on(kontiki_smol::start(config, storage, applied)),
            DemoRuntime::AsyncStd => block_on(kontiki_async_std::start(config, storage, applied)),
        };
        let handle = started.map_err(|error| format!("node {id} failed to start: {error}"))?;
        self.handles.lock().expect("handles").insert(id, handle);
        Ok(())
    }

    /// Waits until every node has applied everything the leader committed,
    /// then checks that each one applied every acknowledged write.
    pub fn check_every_node_holds(
        &self,
        acknowledged: &[Bytes],
        limit: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            let statuses: Vec<Status> = self
                .statuses()
                .into_iter()
                .filter_map(|(_, status)| status)
                .collect();
            let commit = statuses
                .iter()
                .map(|s| s.commit_index)
                .max()
                .unwrap_or_default();
            if statuses.iter().all(|status| status.applied_index >= commit) {
                break;
            }
            if Instant::now() > deadline {
                return Err("the nodes did not catch up with the leader in time".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for (id, node) in &self.nodes {
            let applied = node.applied.commands.lock().expect("applied log");
            let held: std::collections::HashSet<&Bytes> = applied.iter().collect();
            let missing = acknowledged
                .iter()
                .filter(|write| !held.contains(write))
                .count();
            if missing > 0 {
                return Err(format!(
                    "node {id} is missing {missing} acknowledged writes"
                ));
            }
        }
        Ok(())
    }

    /// Stops every node.
    pub fn shutdown(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.stop(id);
        }
    }
}

/// The client: writes `w1`, `w2`, ... one at a time to whichever node
/// leads, and remembers which writes were acknowledged.
pub struct Writer {
    thread: JoinHandle<Vec<Bytes>>,
    count: Arc<AtomicUsize>,
}

impl Writer {
    /// Starts writing until `stop`.
    pub fn spawn(handles: Handles, stop: Arc<AtomicBool>) -> Writer {
        let count = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&count);
        let thread = std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            let mut target: Option<NodeId> = None;
            let mut sequence = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let handle = {
                    let handles = handles.lock().expect("handles");
                    target
                        .and_then(|id| handles.get(&id))
                        .or_else(|| handles.values().next())
                        .cloned()
                };
                let Some(handle) = handle else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                sequence += 1;
                let write = Bytes::from(format!("w{sequence}"));
                match block_on(handle.propose(write.clone())) {
                    Ok(()) => {
                        acknowledged.push(write);
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(ProposeError::NotLeader {
                        leader: Some(leader),
                    }) => target = Some(leader),
                    Err(_) => {
                        // No leader yet, or the node stopped: ask another.
                        target = handles
                            .lock()
                            .expect("handles")
                            .keys()
                            .copied()
                            .find(|id| Some(*id) != target);
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
            acknowledged
        });
        Writer { thread, count }
    }

    /// How many writes were acknowledged so far.
    pub fn acknowledged_count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Waits for the writer to stop; every acknowledged write.
    pub fn finish(self) -> Vec<Bytes> {
        self.thread.join().unwrap_or_default()
    }
}

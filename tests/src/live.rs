//! Real nodes on a real runtime over loopback TCP: the scenarios every
//! adapter must pass, written once against the driver's `Runtime` trait.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{self, BoxFuture, Either};
use kontiki::{LogIndex, NodeId, Role};
use kontiki_driver::{
    Bytes, Handle, LocalNetwork, MemoryStorage, NodeConfig, ProposeError, Runtime, SnapshotWriter,
    StartError, StateMachine, Status, Storage,
};

/// A state machine that records every command it applies and answers
/// with the command's index. Its snapshot is the whole record, each
/// command as `index (u64), length (u32), bytes`, little-endian.
#[derive(Clone, Default)]
pub struct Recorder {
    applied: Arc<Mutex<Vec<(LogIndex, Bytes)>>>,
    restored: Arc<Mutex<Vec<LogIndex>>>,
}

impl Recorder {
    /// Every command applied so far, in order.
    #[must_use]
    pub fn applied(&self) -> Vec<(LogIndex, Bytes)> {
        self.applied.lock().expect("recorder lock").clone()
    }

    /// The index of every snapshot restored so far, in order.
    #[must_use]
    pub fn restored(&self) -> Vec<LogIndex> {
        self.restored.lock().expect("recorder lock").clone()
    }
}

impl StateMachine for Recorder {
    type Output = LogIndex;

    fn apply(&mut self, index: LogIndex, command: &Bytes) -> LogIndex {
        self.applied
            .lock()
            .expect("recorder lock")
            .push((index, command.clone()));
        index
    }

    fn snapshot(&mut self) -> Option<SnapshotWriter> {
        let mut data = Vec::new();
        for (index, command) in self.applied() {
            data.extend_from_slice(&index.get().to_le_bytes());
            data.extend_from_slice(&(command.len() as u32).to_le_bytes());
            data.extend_from_slice(&command);
        }
        Some(Box::new(move |out| out.write_all(&data)))
    }

    fn restore(&mut self, index: LogIndex, reader: &mut dyn Read) -> std::io::Result<()> {
        self.restored.lock().expect("recorder lock").push(index);
        let malformed = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad record");
        let mut data = Vec::new();
        reader.read_to_end(&mut data)?;
        let mut record = Vec::new();
        let mut rest = &data[..];
        while !rest.is_empty() {
            let header = rest.get(..12).ok_or_else(malformed)?;
            let index = u64::from_le_bytes(header[..8].try_into().expect("eight bytes"));
            let length = u32::from_le_bytes(header[8..].try_into().expect("four bytes")) as usize;
            let command = rest.get(12..12 + length).ok_or_else(malformed)?;
            record.push((LogIndex(index), Bytes::copy_from_slice(command)));
            rest = &rest[12 + length..];
        }
        *self.applied.lock().expect("recorder lock") = record;
        Ok(())
    }
}

/// The workload's state machine: it counts the commands it applies and
/// reads each one (a running sum of their bytes), keeping none of them, so
/// the figures are the replication path's rather than an application's.
/// Its snapshot is the count and the sum.
#[derive(Clone, Default)]
pub struct Tally {
    applied: Arc<AtomicU64>,
    checksum: u64,
}

impl Tally {
    /// How many commands it applied (as of its latest snapshot restored,
    /// plus those after it).
    #[must_use]
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }
}

impl StateMachine for Tally {
    type Output = LogIndex;

    fn apply(&mut self, index: LogIndex, command: &Bytes) -> LogIndex {
        self.checksum = command.iter().fold(self.checksum, |sum, &byte| {
            sum.wrapping_add(u64::from(byte))
        });
        self.applied.fetch_add(1, Ordering::Relaxed);
        index
    }

    fn snapshot(&mut self) -> Option<SnapshotWriter> {
        let mut data = self.applied.load(Ordering::Relaxed).to_le_bytes().to_vec();
        data.extend_from_slice(&self.checksum.to_le_bytes());
        Some(Box::new(move |out| out.write_all(&data)))
    }

    fn restore(&mut self, _index: LogIndex, reader: &mut dyn Read) -> std::io::Result<()> {
        let mut data = Vec::new();
        reader.read_to_end(&mut data)?;
        let word = |at: usize| {
            data.get(at..at + 8)
                .and_then(|bytes| bytes.try_into().ok())
                .map(u64::from_le_bytes)
                .ok_or_else(|| std::io::Error::other("a tally snapshot is 16 bytes"))
        };
        self.applied.store(word(0)?, Ordering::Relaxed);
        self.checksum = word(8)?;
        Ok(())
    }
}

/// `count` distinct loopback addresses that were free a moment ago, on
/// ports no outgoing connection is given (see
/// [`unused_loopback_address`](kontiki_driver::unused_loopback_address)).
#[must_use]
pub fn free_addresses(count: usize) -> Vec<SocketAddr> {
    (0..count)
        .map(|_| kontiki_driver::unused_loopback_address().expect("a free loopback port"))
        .collect()
}

/// Configurations for a cluster of nodes `1..=addresses.len()`.
#[must_use]
pub fn cluster_configs(addresses: &[SocketAddr], cluster_id: &str) -> Vec<NodeConfig> {
    let ids: Vec<NodeId> = (1..=addresses.len() as u64).map(NodeId).collect();
    ids.iter()
        .zip(addresses)
        .map(|(&id, &listen)| {
            let peers: BTreeMap<NodeId, SocketAddr> = ids
                .iter()
                .zip(addresses)
                .filter(|(&peer, _)| peer != id)
                .map(|(&peer, &address)| (peer, address))
                .collect();
            let mut config = NodeConfig::new(id, listen, peers);
            config.cluster_id = cluster_id.to_string();
            config.seed = Some(7);
            config
        })
        .collect()
}

/// `work`, or `Err` with `what` once `limit` has passed.
pub async fn within<R: Runtime, T>(
    runtime: &R,
    limit: Duration,
    what: &str,
    work: impl Future<Output = T>,
) -> Result<T, String> {
    let deadline = runtime.now() + limit;
    match future::select(Box::pin(work), Box::pin(runtime.sleep_until(deadline))).await {
        Either::Left((result, _)) => Ok(result),
        Either::Right(((), _)) => Err(format!("timed out after {limit:?}: {what}")),
    }
}

/// Polls `check` every 5 ms until it gives a value, or `Err` with `what`
/// after 10 s.
pub async fn wait_for<R: Runtime, T>(
    runtime: &R,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T, String> {
    let wait = async {
        loop {
            if let Some(value) = check() {
                return value;
            }
            let deadline = runtime.now() + Duration::from_millis(5);
            runtime.sleep_until(deadline).await;
        }
    };
    within(runtime, Duration::from_secs(10), what, wait).await
}

/// Polls `nodes` until they all follow one leader other than `not`, then
/// returns its position in `nodes`.
pub async fn agreed_leader<R: Runtime, M: StateMachine>(
    runtime: &R,
    nodes: &[Handle<M>],
    not: Option<NodeId>,
) -> Result<usize, String> {
    wait_for(runtime, "a leader every node follows", || {
        let statuses: Vec<Status> = nodes.iter().map(Handle::status).collect();
        let position = statuses
            .iter()
            .position(|status| status.role == Role::Leader && Some(status.id) != not)?;
        let id = statuses[position].id;
        statuses
            .iter()
            .all(|status| status.leader == Some(id))
            .then_some(position)
    })
    .await
}

/// Waits until every node in `nodes` applied up to `index`.
pub async fn all_applied<R: Runtime, M: StateMachine>(
    runtime: &R,
    nodes: &[Handle<M>],
    index: LogIndex,
) -> Result<(), String> {
    wait_for(runtime, "every node applies", || {
        nodes
            .iter()
            .all(|node| node.status().applied_index >= index)
            .then_some(())
    })
    .await
}

/// Proposes `commands` concurrently through `leader`; returns the index
/// each landed at.
pub async fn propose_all<M: StateMachine<Output = LogIndex>>(
    leader: &Handle<M>,
    commands: impl Iterator<Item = Vec<u8>>,
) -> Result<Vec<LogIndex>, ProposeError> {
    let proposals = commands.map(|command| leader.propose(command));
    future::join_all(proposals).await.into_iter().collect()
}

/// Proposes `count` commands named `<prefix>-<n>` through `nodes[leader]`
/// and waits until every node in `nodes` applied them; returns where each
/// landed.
async fn commit_on_all<R: Runtime>(
    runtime: &R,
    nodes: &[Handle<Recorder>],
    leader: usize,
    prefix: &str,
    count: u32,
) -> Result<Vec<LogIndex>, String> {
    let commands = (0..count).map(|n| format!("{prefix}-{n}").into_bytes());
    let what = format!("{count} {prefix} proposals commit");
    let indices = within(
        runtime,
        Duration::from_secs(20),
        &what,
        propose_all(&nodes[leader], commands),
    )
    .await?
    .map_err(|error| format!("a {prefix} proposal failed: {error}"))?;
    let last = *indices.iter().max().ok_or("no proposals")?;
    all_applied(runtime, nodes, last).await?;
    Ok(indices)
}

/// Starts one node (on whichever runtime the starter was made for).
pub type Starter = Box<
    dyn FnOnce(NodeConfig, Recorder) -> BoxFuture<'static, Result<Handle<Recorder>, StartError>>,
>;

/// A starter for nodes on `runtime`, with in-memory storage.
pub fn starter<R: Runtime>(runtime: R) -> Starter {
    Box::new(move |config, recorder| {
        Box::pin(kontiki_driver::start(
            runtime,
            config,
            MemoryStorage::new(),
            recorder,
        ))
    })
}

/// A starter for nodes on `network` (in-process channels), with timers
/// and tasks from `runtime` and in-memory storage.
pub fn local_starter<R: Runtime>(runtime: R, network: &LocalNetwork) -> Starter {
    let network = network.clone();
    Box::new(move |config, recorder| {
        Box::pin(async move {
            kontiki_driver::start_local(runtime, &network, config, MemoryStorage::new(), recorder)
                .await
        })
    })
}

/// Starts one node per config on `network`, each on the store at the same
/// position (clones, so the caller keeps a view of each), with a fresh
/// recorder.
pub async fn start_local_cluster<R: Runtime, S: Storage + Clone>(
    runtime: &R,
    network: &LocalNetwork,
    configs: &[NodeConfig],
    stores: &[S],
) -> Vec<Handle<Recorder>> {
    let mut nodes = Vec::new();
    for (config, store) in configs.iter().zip(stores) {
        let node = kontiki_driver::start_local(
            runtime.clone(),
            network,
            config.clone(),
            store.clone(),
            Recorder::default(),
        )
        .await
        .expect("node starts");
        nodes.push(node);
    }
    nodes
}

/// The adapter scenario: three nodes on loopback elect a leader and
/// replicate 1,000 proposals; the leader shuts down; the other two elect a
/// new leader and keep committing; both applied the same commands in the
/// same order, every acknowledged one included. Each node is started by
/// its own starter (so one cluster can mix runtimes); `runtime` keeps the
/// test's time.
pub async fn elect_replicate_fail_over<R: Runtime>(
    runtime: R,
    starters: Vec<Starter>,
    cluster_id: &str,
) -> Result<(), String> {
    let addresses = free_addresses(starters.len());
    let recorders: Vec<Recorder> = starters.iter().map(|_| Recorder::default()).collect();
    let mut nodes = Vec::new();
    let configs = cluster_configs(&addresses, cluster_id);
    for ((config, recorder), start) in configs.into_iter().zip(&recorders).zip(starters) {
        let node = start(config, recorder.clone())
            .await
            .map_err(|error| error.to_string())?;
        nodes.push(node);
    }
    let first = agreed_leader(&runtime, &nodes, None).await?;
    let acknowledged = commit_on_all(&runtime, &nodes, first, "first", 1000).await?;

    let old_leader = nodes[first].status().id;
    nodes[first].shutdown().await;
    let survivors: Vec<Handle<Recorder>> = nodes
        .iter()
        .enumerate()
        .filter(|&(position, _)| position != first)
        .map(|(_, node)| node.clone())
        .collect();
    let second = agreed_leader(&runtime, &survivors, Some(old_leader)).await?;
    let more = commit_on_all(&runtime, &survivors, second, "second", 100).await?;

    let histories: Vec<Vec<(LogIndex, Bytes)>> = recorders
        .iter()
        .enumerate()
        .filter(|&(position, _)| position != first)
        .map(|(_, recorder)| recorder.applied())
        .collect();
    if histories[0] != histories[1] {
        return Err(String::from(
            "the two survivors applied different histories",
        ));
    }
    for index in acknowledged.iter().chain(&more) {
        if !histories[0].iter().any(|(applied, _)| applied == index) {
            return Err(format!("acknowledged entry {index} is missing"));
        }
    }
    if histories[0].len() != 1100 {
        return Err(format!(
            "expected 1100 commands applied, found {}",
            histories[0].len()
        ));
    }
    for node in &survivors {
        node.shutdown().await;
    }
    Ok(())
}

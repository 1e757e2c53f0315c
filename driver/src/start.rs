//! Starting a node: check the configuration, load storage, bind, and
//! spawn the node's tasks.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use kontiki::{LogIndex, Node};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use tracing::{info, Instrument};

use crate::config::NodeConfig;
use crate::error::StartError;
use crate::event_loop::{Clock, EventLoop};
use crate::handle::{Handle, LeaderChange, Published, StateMachine, Status};
use crate::metrics::{self, NodeMetrics, WriteMetrics};
use crate::runtime::Runtime;
use crate::shutdown::shutdown_signal;
use crate::storage::Storage;
use crate::transport::{self, local::LocalNetwork, Network};
use crate::writer::Writer;

/// Requests waiting for the node's task before callers wait in turn.
const REQUEST_QUEUE: usize = 4096;
/// Peer messages waiting for the node's task before connections pause.
const INBOUND_QUEUE: usize = 4096;

/// Starts a node on `runtime`: loads what `storage` holds, listens for
/// peers on `config.listen`, connects to every peer, and runs until the
/// returned handle (and all its clones) is dropped or shut down.
pub async fn start<R: Runtime, S: Storage, M: StateMachine>(
    runtime: R,
    config: NodeConfig,
    storage: S,
    state_machine: M,
) -> Result<Handle<M>, StartError> {
    start_on(Network::Tcp, runtime, config, storage, state_machine).await
}

/// Starts a node like [`start`], but on `network` rather than TCP: its
/// peers are the nodes of `config.peers` started on the same network (the
/// addresses are not used and nothing listens). Messages travel through
/// in-process channels without being encoded; timers, tasks and the blocking
/// pool still come from `runtime`. A peer that has not started yet, or has
/// stopped, is unreachable, as it would be on TCP. A node may restart on the
/// network once its earlier incarnation has stopped.
pub async fn start_local<R: Runtime, S: Storage, M: StateMachine>(
    runtime: R,
    network: &LocalNetwork,
    config: NodeConfig,
    storage: S,
    state_machine: M,
) -> Result<Handle<M>, StartError> {
    start_on(
        Network::Local(network),
        runtime,
        config,
        storage,
        state_machine,
    )
    .await
}

/// Starts the node inside its span, `node{id, term}`, which its task and
/// its transport's tasks carry, so that every line they log names the
/// node and its current term (the term is recorded as it changes).
async fn start_on<R: Runtime, S: Storage, M: StateMachine>(
    network: Network<'_>,
    runtime: R,
    config: NodeConfig,
    storage: S,
    state_machine: M,
) -> Result<Handle<M>, StartError> {
    let span = tracing::info_span!("node", id = config.id.get(), term = tracing::field::Empty);
    start_in_span(network, runtime, config, storage, state_machine)
        .instrument(span)
        .await
}

async fn start_in_span<R: Runtime, S: Storage, M: StateMachine>(
    network: Network<'_>,
    runtime: R,
    config: NodeConfig,
    mut storage: S,
    state_machine: M,
) -> Result<Handle<M>, StartError> {
    if config.peers.contains_key(&config.id) {
        return Err(StartError::SelfAmongPeers(config.id));
    }
    config.transport.check().map_err(StartError::Transport)?;
    if let Some(tls) = config.tls.as_ref().filter(|tls| tls.id() != config.id) {
        return Err(StartError::TlsForAnotherNode {
            node: config.id,
            certified: tls.id(),
        });
    }
    let snapshot_store = storage.snapshots();
    let persisted = if storage.blocks() {
        let (returned, loaded) = runtime
            .run_blocking(move || {
                let loaded = storage.load();
                (storage, loaded)
            })
            .await;
        storage = returned;
        loaded
    } else {
        storage.load()
    }
    .map_err(StartError::Storage)?;
    let clock = Clock::new(runtime.now());
    // Nodes may share a seed: each mixes in its id, so their timeouts differ.
    let seed = config
        .seed
        .unwrap_or_else(seed_from_clock)
        .wrapping_add(config.id.get().wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let node = Node::with_membership(
        config.id,
        config.founding_membership()?,
        config.raft.clone(),
        ChaCha8Rng::seed_from_u64(seed),
        persisted,
        clock.to_core(runtime.now()),
    )?;
    let (trigger, shutdown) = shutdown_signal();
    let (inbound_sender, inbound) = async_channel::bounded(INBOUND_QUEUE);
    let transport::Started { links, local_addr } = transport::start(
        network,
        &runtime,
        &config,
        transport::Endpoint {
            inbound: inbound_sender,
            snapshots: Arc::clone(&snapshot_store),
        },
        shutdown,
        seed,
    )
    .await?;

    let status = Status {
        id: config.id,
        role: node.role(),
        term: node.term(),
        leader: node.leader(),
        commit_index: node.commit_index(),
        applied_index: LogIndex(0),
        last_log_index: node.last_log_index(),
        snapshot_index: node.snapshot_index(),
        last_leader_contact: None,
        members: Vec::new(),
        membership_index: node.membership_index(),
        recovering: node.is_recovering(),
    };
    tracing::Span::current().record("term", node.term().0);
    let published = Arc::new(Published {
        status: Mutex::new(status.clone()),
        applied_index: AtomicU64::new(0),
        watchers: Mutex::new(Vec::new()),
        local_addr,
        proposal_seconds: metrics::proposal_seconds(config.id),
    });
    let (request_sender, requests) = async_channel::bounded(REQUEST_QUEUE);
    info!(node = %config.id, %local_addr, peers = config.peers.len(), "node started");
    let metrics = NodeMetrics::new(config.id, node.role());
    let event_loop = EventLoop {
        runtime: runtime.clone(),
        clock,
        node,
        writer: Writer::new(storage, config.raft.asynchronous_writes)
            .measured(WriteMetrics::new(config.id)),
        metrics,
        storage_failed: None,
        drained: Vec::new(),
        state_machine,
        links,
        inbound: Box::pin(inbound),
        requests: Box::pin(requests),
        published: Arc::clone(&published),
        shutdown: Some(trigger),
        timer: None,
        waiters: Default::default(),
        readers: Default::default(),
        last_leader: LeaderChange {
            term: status.term,
            leader: status.leader,
        },
        snapshot_interval: config.snapshot_interval,
        writing_snapshot: None,
        snapshot_retry_after: LogIndex(0),
        snapshot_store,
        transfer: None,
        transfer_timeout: config.raft.election_timeout_max * 2,
        settling: Vec::new(),
        members_of: kontiki::Membership::default(),
    };
    runtime.spawn(event_loop.run().in_current_span());
    Ok(Handle {
        requests: request_sender,
        published,
    })
}

fn seed_from_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

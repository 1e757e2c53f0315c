//! The transport seam: how a node's messages reach its peers and theirs
//! reach it.
//!
//! A transport owns three things: the node's inbound side (connections
//! accepted from peers, or an inbox others push into), one link per peer,
//! and the outbound writes on those links. The node's task sees only
//! [`PeerLinks`], where it sends and flushes each round's messages, and an
//! inbound channel of [`Inbound`] messages. Two transports implement it:
//!
//! - [`tcp`]: one connection per direction per peer, framed, opened with a
//!   handshake, reconnected with backoff; a large snapshot streams in
//!   chunks ([`snapshot_stream`]);
//! - [`local`]: nodes in one process pushing messages into each other's
//!   inboxes, with no sockets or encoding.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::NodeConfig;
use crate::error::StartError;
use crate::runtime::Runtime;
use crate::shutdown::Shutdown;
use crate::snapshot_store::SnapshotStore;

mod admission;
mod frame;
mod links;
pub(crate) mod local;
mod outbound;
mod snapshot_stream;
mod stream;
mod tcp;

use links::{AddressBook, Advertised};
pub(crate) use links::{Inbound, PeerLinks};

/// Which transport a node runs on.
pub(crate) enum Network<'a> {
    /// TCP, listening on the node's configured address.
    Tcp,
    /// The in-process network of the nodes started on it.
    Local(&'a local::LocalNetwork),
}

/// The node's end of its transport: where inbound messages go, and the
/// store that snapshots are read from when sent and written to when
/// received (inside the node a snapshot's data is a reference into it).
pub(crate) struct Endpoint {
    pub(crate) inbound: async_channel::Sender<Inbound>,
    pub(crate) snapshots: Arc<dyn SnapshotStore>,
}

/// What a started transport hands the node's task.
pub(crate) struct Started {
    /// The links to every peer.
    pub(crate) links: PeerLinks,
    /// Where peers reach this node (the bound address on TCP).
    pub(crate) local_addr: SocketAddr,
}

/// Starts `network` for node `config.id` at `endpoint`; the transport's
/// tasks stop with `shutdown`; `seed` seeds whatever randomness the
/// transport needs (reconnect jitter).
pub(crate) async fn start<R: Runtime>(
    network: Network<'_>,
    runtime: &R,
    config: &NodeConfig,
    endpoint: Endpoint,
    shutdown: Shutdown,
    seed: u64,
) -> Result<Started, StartError> {
    let book = AddressBook {
        members: BTreeMap::new(),
        configured: config.peers.clone(),
        advertised: Advertised::default(),
    };
    match network {
        Network::Tcp => {
            let mut context = tcp::LinkContext {
                runtime: runtime.clone(),
                id: config.id,
                cluster_id: Arc::from(config.cluster_id.as_str()),
                advertise: config.advertise,
                advertised: Arc::clone(&book.advertised),
                limits: Arc::new(config.transport.clone()),
                shutdown,
                receiving: Arc::default(),
                store: endpoint.snapshots,
                tls: config.tls.clone(),
                span: tracing::Span::current(),
            };
            let (listener, local_addr) = context.bind(config.listen).await?;
            // Say where peers reach this node: as configured, else where it
            // listens, unless that is no one address (0.0.0.0 or [::]).
            if context.advertise.is_none() && !local_addr.ip().is_unspecified() {
                context.advertise = Some(local_addr);
            }
            context.start_inbound(listener, endpoint.inbound);
            let opener = Box::new(context.opener(seed));
            Ok(Started {
                links: PeerLinks::new(config.id, opener, book),
                local_addr,
            })
        }
        Network::Local(network) => {
            let opener = Box::new(network.start(config.id, endpoint)?);
            Ok(Started {
                links: PeerLinks::new(config.id, opener, book),
                local_addr: config.listen,
            })
        }
    }
}

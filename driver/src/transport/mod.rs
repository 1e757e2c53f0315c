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
//!   handshake, reconnected with backoff;
//! - [`local`]: nodes in one process pushing messages into each other's
//!   inboxes, with no sockets or encoding.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::NodeConfig;
use crate::error::StartError;
use crate::runtime::Runtime;
use crate::shutdown::Shutdown;

mod frame;
mod links;
pub(crate) mod local;
mod outbound;
mod tcp;

pub(crate) use links::{Inbound, PeerLinks};

/// Which transport a node runs on.
pub(crate) enum Network<'a> {
    /// TCP, listening on the node's configured address.
    Tcp,
    /// The in-process network of the nodes started on it.
    Local(&'a local::LocalNetwork),
}

/// What a started transport hands the node's task.
pub(crate) struct Started {
    /// The links to every peer.
    pub(crate) links: PeerLinks,
    /// Where peers reach this node (the bound address on TCP).
    pub(crate) local_addr: SocketAddr,
}

/// Starts `network` for node `config.id`: inbound messages go to
/// `inbound`; the transport's tasks stop with `shutdown`; `seed` seeds
/// whatever randomness the transport needs (reconnect jitter).
pub(crate) async fn start<R: Runtime>(
    network: Network<'_>,
    runtime: &R,
    config: &NodeConfig,
    inbound: async_channel::Sender<Inbound>,
    shutdown: Shutdown,
    seed: u64,
) -> Result<Started, StartError> {
    match network {
        Network::Tcp => {
            let context = tcp::LinkContext {
                runtime: runtime.clone(),
                id: config.id,
                cluster_id: Arc::from(config.cluster_id.as_str()),
                peers: Arc::new(config.peers.clone()),
                limits: Arc::new(config.transport.clone()),
                shutdown,
            };
            let local_addr = context.start_inbound(config.listen, inbound).await?;
            let links = PeerLinks::new(context.start_outbound(seed));
            Ok(Started { links, local_addr })
        }
        Network::Local(network) => {
            let links = network.start(config.id, config.peers.keys().copied(), inbound)?;
            Ok(Started {
                links: PeerLinks::new(links),
                local_addr: config.listen,
            })
        }
    }
}

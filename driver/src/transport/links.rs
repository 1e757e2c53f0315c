//! What the node's task sees of any transport: a link per peer to send
//! on, and the messages that arrive.

use std::collections::BTreeMap;

use kontiki::{Message, NodeId};
use tracing::{debug, warn};

/// A message that arrived from a peer.
pub(crate) type Inbound = (NodeId, Message);

/// The node's side of one link to one peer.
pub(crate) trait PeerLink: Send {
    /// Takes `message` for the peer, to go out at the latest at the next
    /// [`flush`](PeerLink::flush); `false` when it had to be dropped (the
    /// peer is down or its queue is full). Raft retransmits what matters.
    fn send(&mut self, message: Message) -> bool;

    /// Starts writing what was sent since the last flush, without waiting.
    fn flush(&mut self);
}

/// The sending side of every peer link.
pub(crate) struct PeerLinks {
    links: BTreeMap<NodeId, Box<dyn PeerLink>>,
    /// Messages dropped because a peer was unreachable or its queue full.
    pub(crate) dropped: u64,
}

impl PeerLinks {
    pub(crate) fn new(links: BTreeMap<NodeId, Box<dyn PeerLink>>) -> PeerLinks {
        PeerLinks { links, dropped: 0 }
    }

    /// Takes `message` for `to`, to go out at the next
    /// [`flush`](PeerLinks::flush).
    pub(crate) fn send(&mut self, to: NodeId, message: Message) {
        let Some(link) = self.links.get_mut(&to) else {
            warn!(peer = %to, "no link to a node the core wants to reach");
            return;
        };
        if !link.send(message) {
            self.dropped += 1;
            if self.dropped.is_power_of_two() {
                debug!(peer = %to, dropped = self.dropped, "peer unreachable or its queue full, message dropped");
            }
        }
    }

    /// Starts writing what was sent since the last flush to every peer.
    pub(crate) fn flush(&mut self) {
        for link in self.links.values_mut() {
            link.flush();
        }
    }
}

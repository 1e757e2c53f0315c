//! An in-process network: nodes in one process that hand each other the
//! core's messages through channels, with no sockets, framing or encoding.
//!
//! It is for tests, examples and benchmarks of a whole cluster in one
//! process, and for applications that embed several replicas in one
//! process on purpose. Nodes on TCP and nodes on a [`LocalNetwork`] cannot
//! reach each other.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use kontiki::{Message, NodeId};

use super::links::{Inbound, LinkOpener, PeerLink};
use crate::error::StartError;
use crate::sync::lock;

/// A set of nodes in this process that reach each other by id. Clones
/// share one network. Start nodes on it with
/// [`start_local`](crate::start_local).
#[derive(Clone, Default)]
pub struct LocalNetwork {
    /// Each running node's inbox: the channel its task reads messages
    /// from, the same one that TCP connections feed.
    inboxes: Arc<Mutex<BTreeMap<NodeId, async_channel::Sender<Inbound>>>>,
}

impl LocalNetwork {
    /// An empty network.
    #[must_use]
    pub fn new() -> LocalNetwork {
        LocalNetwork::default()
    }

    /// Starts node `node` on this network: `inbox` receives what its
    /// peers send it, and the opener returned links it to any node of the
    /// network by id.
    pub(crate) fn start(
        &self,
        node: NodeId,
        inbox: async_channel::Sender<Inbound>,
    ) -> Result<LocalOpener, StartError> {
        self.join(node, inbox)?;
        Ok(LocalOpener {
            network: self.clone(),
            from: node,
        })
    }

    /// Makes `inbox` the way to reach `node`. A node that stopped (its
    /// inbox closed) may be replaced by a restarted one; a running one
    /// may not.
    fn join(&self, node: NodeId, inbox: async_channel::Sender<Inbound>) -> Result<(), StartError> {
        let mut inboxes = lock(&self.inboxes);
        if inboxes
            .get(&node)
            .is_some_and(|running| !running.is_closed())
        {
            return Err(StartError::AlreadyRunning(node));
        }
        inboxes.insert(node, inbox);
        Ok(())
    }

    /// The inbox of `node`, if it has joined and has not stopped.
    fn inbox(&self, node: NodeId) -> Option<async_channel::Sender<Inbound>> {
        let inboxes = lock(&self.inboxes);
        inboxes
            .get(&node)
            .filter(|inbox| !inbox.is_closed())
            .cloned()
    }
}

/// Opens links from one node to any other of its [`LocalNetwork`], which
/// needs no addresses.
pub(crate) struct LocalOpener {
    network: LocalNetwork,
    from: NodeId,
}

impl LinkOpener for LocalOpener {
    fn open(&mut self, peer: NodeId, _: Option<SocketAddr>) -> Option<Box<dyn PeerLink>> {
        Some(Box::new(LocalLink {
            network: self.network.clone(),
            from: self.from,
            to: peer,
            inbox: None,
            lost: false,
        }))
    }
}

/// A link to one peer on a [`LocalNetwork`]: messages go straight into the
/// peer's inbox, unencoded.
struct LocalLink {
    network: LocalNetwork,
    from: NodeId,
    to: NodeId,
    /// The peer's inbox, looked up again whenever the peer (re)starts.
    inbox: Option<async_channel::Sender<Inbound>>,
    /// A message was lost because the peer was not running.
    lost: bool,
}

impl PeerLink for LocalLink {
    fn send(&mut self, message: Message) -> bool {
        if self
            .inbox
            .as_ref()
            .is_none_or(async_channel::Sender::is_closed)
        {
            self.inbox = self.network.inbox(self.to);
        }
        // A peer that has not started, or has stopped, loses the message,
        // as a peer that is down on TCP would.
        let Some(inbox) = self.inbox.as_ref() else {
            self.lost = true;
            return false;
        };
        match inbox.try_send((self.from, message)) {
            Ok(()) => true,
            Err(async_channel::TrySendError::Closed(_)) => {
                self.lost = true;
                false
            }
            // A full inbox is back-pressure, not a peer that is down.
            Err(async_channel::TrySendError::Full(_)) => false,
        }
    }

    /// Messages are delivered as they are sent.
    fn flush(&mut self) {}

    fn take_lost(&mut self) -> bool {
        std::mem::take(&mut self.lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64) -> NodeId {
        NodeId(id)
    }

    #[test]
    fn a_running_node_cannot_be_replaced_but_a_stopped_one_can() {
        let network = LocalNetwork::new();
        let (first, first_inbox) = async_channel::bounded(4);
        network.join(node(1), first).expect("joins");
        let (second, _second_inbox) = async_channel::bounded(4);
        assert!(network.join(node(1), second.clone()).is_err());
        assert!(network.inbox(node(1)).is_some());
        drop(first_inbox);
        assert!(network.inbox(node(1)).is_none(), "a stopped node is gone");
        network.join(node(1), second).expect("a restart joins");
        assert!(network.inbox(node(1)).is_some());
        assert!(network.inbox(node(2)).is_none());
    }

    #[test]
    fn a_peer_that_is_not_running_is_reported_and_a_full_inbox_is_not() {
        use kontiki::{LeadershipCheck, Term};
        let check = || {
            Message::LeadershipCheck(LeadershipCheck {
                term: Term(1),
                round: 1,
            })
        };
        let network = LocalNetwork::new();
        let mut link = LocalLink {
            network: network.clone(),
            from: node(1),
            to: node(2),
            inbox: None,
            lost: false,
        };
        assert!(!link.send(check()), "node 2 has not started");
        assert!(link.take_lost());
        assert!(!link.take_lost());
        let (inbox, _receiver) = async_channel::bounded(1);
        network.join(node(2), inbox).expect("joins");
        assert!(link.send(check()));
        assert!(!link.send(check()), "the inbox is full");
        assert!(!link.take_lost(), "back-pressure is not unreachability");
    }
}

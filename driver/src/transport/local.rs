//! An in-process network: nodes in one process that hand each other the
//! core's messages through channels, with no sockets, framing or encoding.
//!
//! It is for tests, examples and benchmarks of a whole cluster in one
//! process, and for applications that embed several replicas in one
//! process on purpose. Nodes on TCP and nodes on a [`LocalNetwork`] cannot
//! reach each other.
//!
//! A snapshot is copied from the sender's snapshot store into the
//! receiver's as it is sent (each node's snapshots carry references into
//! its own store), whole and on the sender's task: fine for the snapshots
//! of tests and examples; a large one is for TCP, which streams it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use kontiki::{Message, NodeId};
use tracing::warn;

use super::links::{LinkOpener, PeerLink};
use super::Endpoint;
use crate::error::StartError;
use crate::snapshot_store::{store_whole, CheckedReader, SnapshotRef, SnapshotStore};
use crate::sync::lock;

/// A set of nodes in this process that reach each other by id. Clones
/// share one network. Start nodes on it with
/// [`start_local`](crate::start_local).
#[derive(Clone, Default)]
pub struct LocalNetwork {
    /// Each running node's inbox (the channel its task reads messages
    /// from, the same one that TCP connections feed) and snapshot store.
    inboxes: Arc<Mutex<BTreeMap<NodeId, Endpoint>>>,
}

impl LocalNetwork {
    /// An empty network.
    #[must_use]
    pub fn new() -> LocalNetwork {
        LocalNetwork::default()
    }

    /// Starts node `node` on this network: `endpoint.inbound` receives
    /// what its peers send it, and the opener returned links it to any
    /// node of the network by id.
    pub(crate) fn start(
        &self,
        node: NodeId,
        endpoint: Endpoint,
    ) -> Result<LocalOpener, StartError> {
        let store = Arc::clone(&endpoint.snapshots);
        self.join(node, endpoint)?;
        Ok(LocalOpener {
            network: self.clone(),
            from: node,
            store,
        })
    }

    /// Makes `endpoint` the way to reach `node`. A node that stopped (its
    /// inbox closed) may be replaced by a restarted one; a running one
    /// may not.
    fn join(&self, node: NodeId, endpoint: Endpoint) -> Result<(), StartError> {
        let mut inboxes = lock(&self.inboxes);
        if inboxes
            .get(&node)
            .is_some_and(|running| !running.inbound.is_closed())
        {
            return Err(StartError::AlreadyRunning(node));
        }
        inboxes.insert(node, endpoint);
        Ok(())
    }

    /// The endpoint of `node`, if it has joined and has not stopped.
    fn endpoint(&self, node: NodeId) -> Option<Endpoint> {
        let inboxes = lock(&self.inboxes);
        inboxes
            .get(&node)
            .filter(|endpoint| !endpoint.inbound.is_closed())
            .map(|endpoint| Endpoint {
                inbound: endpoint.inbound.clone(),
                snapshots: Arc::clone(&endpoint.snapshots),
            })
    }
}

/// Opens links from one node to any other of its [`LocalNetwork`], which
/// needs no addresses.
pub(crate) struct LocalOpener {
    network: LocalNetwork,
    from: NodeId,
    /// The node's own snapshot store, which its snapshots refer into.
    store: Arc<dyn SnapshotStore>,
}

impl LinkOpener for LocalOpener {
    fn open(&mut self, peer: NodeId, _: Option<SocketAddr>) -> Option<Box<dyn PeerLink>> {
        Some(Box::new(LocalLink {
            network: self.network.clone(),
            from: self.from,
            to: peer,
            store: Arc::clone(&self.store),
            peer: None,
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
    store: Arc<dyn SnapshotStore>,
    /// The peer's endpoint, looked up again whenever the peer (re)starts.
    peer: Option<Endpoint>,
    /// A message was lost because the peer was not running.
    lost: bool,
}

impl PeerLink for LocalLink {
    fn send(&mut self, mut message: Message) -> bool {
        if self
            .peer
            .as_ref()
            .is_none_or(|peer| peer.inbound.is_closed())
        {
            self.peer = self.network.endpoint(self.to);
        }
        // A peer that has not started, or has stopped, loses the message,
        // as a peer that is down on TCP would.
        let Some(peer) = self.peer.as_ref() else {
            self.lost = true;
            return false;
        };
        if let Message::InstallSnapshot(install) = &mut message {
            let copied = SnapshotRef::of(&install.snapshot.data).and_then(|data| {
                let whole = CheckedReader::open(&*self.store, data)?.read_whole()?;
                store_whole(&*peer.snapshots, &whole)
            });
            match copied {
                Ok(copy) => install.snapshot.data = copy.encode(),
                Err(error) => {
                    // Reported as lost: the core probes again, and sends
                    // its newest snapshot once the peer answers.
                    warn!(to = %self.to, %error, "copying a snapshot to the peer failed");
                    self.lost = true;
                    return false;
                }
            }
        }
        match peer.inbound.try_send((self.from, message)) {
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
    use crate::snapshot_store::MemorySnapshots;
    use crate::transport::Inbound;

    fn node(id: u64) -> NodeId {
        NodeId(id)
    }

    fn endpoint(inbound: async_channel::Sender<Inbound>) -> Endpoint {
        Endpoint {
            inbound,
            snapshots: Arc::new(MemorySnapshots::new()),
        }
    }

    #[test]
    fn a_running_node_cannot_be_replaced_but_a_stopped_one_can() {
        let network = LocalNetwork::new();
        let (first, first_inbox) = async_channel::bounded(4);
        network.join(node(1), endpoint(first)).expect("joins");
        let (second, _second_inbox) = async_channel::bounded(4);
        assert!(network.join(node(1), endpoint(second.clone())).is_err());
        assert!(network.endpoint(node(1)).is_some());
        drop(first_inbox);
        assert!(
            network.endpoint(node(1)).is_none(),
            "a stopped node is gone"
        );
        network
            .join(node(1), endpoint(second))
            .expect("a restart joins");
        assert!(network.endpoint(node(1)).is_some());
        assert!(network.endpoint(node(2)).is_none());
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
            store: Arc::new(MemorySnapshots::new()),
            peer: None,
            lost: false,
        };
        assert!(!link.send(check()), "node 2 has not started");
        assert!(link.take_lost());
        assert!(!link.take_lost());
        let (inbox, _receiver) = async_channel::bounded(1);
        network.join(node(2), endpoint(inbox)).expect("joins");
        assert!(link.send(check()));
        assert!(!link.send(check()), "the inbox is full");
        assert!(!link.take_lost(), "back-pressure is not unreachability");
    }

    #[test]
    fn a_snapshot_is_copied_into_the_peers_store() {
        use kontiki::{InstallSnapshot, Membership, Snapshot, Term};

        use crate::snapshot_store::{store_whole, SnapshotRef};
        let network = LocalNetwork::new();
        let (inbox, receiver) = async_channel::bounded(4);
        let peer_store = MemorySnapshots::new();
        network
            .join(
                node(2),
                Endpoint {
                    inbound: inbox,
                    snapshots: Arc::new(peer_store.clone()),
                },
            )
            .expect("joins");
        let own_store = MemorySnapshots::new();
        let mut link = LocalLink {
            network: network.clone(),
            from: node(1),
            to: node(2),
            store: Arc::new(own_store.clone()),
            peer: None,
            lost: false,
        };
        let data = store_whole(&own_store, b"the state").unwrap();
        let install = |data: bytes::Bytes| {
            Message::InstallSnapshot(InstallSnapshot {
                term: Term(2),
                snapshot: Snapshot {
                    index: kontiki::LogIndex(7),
                    term: Term(1),
                    membership: Membership::default(),
                    data,
                },
            })
        };
        assert!(link.send(install(data.encode())));
        let (from, Message::InstallSnapshot(received)) = receiver.try_recv().unwrap() else {
            panic!("not a snapshot");
        };
        assert_eq!(from, node(1));
        let copy = SnapshotRef::decode(&received.snapshot.data).expect("a reference");
        let whole = CheckedReader::open(&peer_store, copy).unwrap().read_whole();
        assert_eq!(&whole.unwrap()[..], b"the state");
        // A reference to nothing in the sender's store is not sent.
        own_store
            .retain_from(&SnapshotRef {
                id: u64::MAX,
                ..data
            })
            .unwrap();
        assert!(!link.send(install(data.encode())));
        assert!(receiver.try_recv().is_err());
    }
}

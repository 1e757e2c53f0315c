//! What the node's task sees of any transport: a link per peer to send
//! on, and the messages that arrive.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use kontiki::{Membership, Message, NodeId};
use tracing::{debug, info, warn};

use crate::address::MemberAddress;
use crate::sync::lock;

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

    /// Whether messages were lost since the last call because the peer is
    /// unreachable: the connection broke (bytes written to a socket that
    /// then fails may never arrive, and what was queued is dropped with
    /// it) or the peer is not running. A full queue is not counted: that
    /// is back-pressure, which Raft's own retransmission handles, and
    /// reporting it would stop a busy follower's stream for a heartbeat.
    fn take_lost(&mut self) -> bool;
}

/// Opens links to peers, on whichever transport the node runs.
pub(crate) trait LinkOpener: Send {
    /// A link to `peer`, reached at `address` (a transport that needs
    /// none ignores it); `None` when the peer cannot be reached without
    /// an address.
    fn open(&mut self, peer: NodeId, address: Option<SocketAddr>) -> Option<Box<dyn PeerLink>>;
}

/// One open link, and the address it was opened for.
struct OpenLink {
    address: Option<SocketAddr>,
    link: Box<dyn PeerLink>,
}

/// Where each peer is, from three sources, most authoritative first: the
/// configuration in force (the address a member was added with, carried
/// by the log), the node's own configuration, and what peers said of
/// themselves when they connected (so that a node can answer a leader
/// that added it, or a candidate, before its log names them).
pub(crate) struct AddressBook {
    pub(crate) members: BTreeMap<NodeId, SocketAddr>,
    pub(crate) configured: BTreeMap<NodeId, SocketAddr>,
    pub(crate) advertised: Advertised,
}

/// The addresses peers advertised in their handshakes, shared between the
/// transport's inbound tasks (which write them) and the node's task.
pub(crate) type Advertised = Arc<Mutex<BTreeMap<NodeId, SocketAddr>>>;

impl AddressBook {
    fn address_of(&self, peer: NodeId) -> Option<SocketAddr> {
        self.members
            .get(&peer)
            .or_else(|| self.configured.get(&peer))
            .copied()
            .or_else(|| lock(&self.advertised).get(&peer).copied())
    }
}

/// The sending side of every peer link. Links open when the node first
/// sends to a peer (or when a configuration names it) and follow the
/// configuration: a member's new address replaces its link, and a node
/// that is no longer a member loses its link at the next change.
pub(crate) struct PeerLinks {
    own_id: NodeId,
    links: BTreeMap<NodeId, OpenLink>,
    opener: Box<dyn LinkOpener>,
    book: AddressBook,
    /// The configuration the links follow.
    membership: Membership,
    /// Messages dropped because a peer was unreachable or its queue full.
    pub(crate) dropped: u64,
    /// Peers that lost messages for being unreachable since the core was
    /// last told (see [`PeerLinks::take_unreachable`]).
    unreachable: BTreeSet<NodeId>,
    /// Messages dropped for want of any address for their peer.
    unaddressed: u64,
}

impl PeerLinks {
    /// Links for node `own_id`, opened through `opener`; one opens now to
    /// each peer of `book.configured`.
    pub(crate) fn new(own_id: NodeId, opener: Box<dyn LinkOpener>, book: AddressBook) -> PeerLinks {
        let mut links = PeerLinks {
            own_id,
            links: BTreeMap::new(),
            opener,
            book,
            membership: Membership::default(),
            dropped: 0,
            unreachable: BTreeSet::new(),
            unaddressed: 0,
        };
        let configured: Vec<NodeId> = links.book.configured.keys().copied().collect();
        for peer in configured {
            links.link_to(peer);
        }
        links
    }

    /// Follows `membership`, the configuration in force: learns its
    /// members' addresses, opens links to members not yet linked, reopens
    /// those whose address changed, and closes links to nodes that are not
    /// members (they open again if the core sends to one). Cheap when the
    /// configuration did not change.
    pub(crate) fn follow(&mut self, membership: &Membership) {
        if *membership == self.membership {
            return;
        }
        self.membership = membership.clone();
        self.book.members = membership
            .addresses()
            .iter()
            .filter_map(|(id, address)| {
                let parsed = MemberAddress::decode(address);
                if parsed.is_none() {
                    warn!(member = %id, "a member's address in the configuration is not PEER[,CLIENT]; ignored");
                }
                parsed.map(|parsed| (*id, parsed.peer))
            })
            .collect();
        if !membership.is_empty() {
            self.links.retain(|peer, _| membership.is_member(*peer));
        }
        for peer in membership.members() {
            if peer == self.own_id {
                continue;
            }
            let address = self.book.address_of(peer);
            let stale = self
                .links
                .get(&peer)
                .is_some_and(|open| address.is_some() && open.address != address);
            if stale {
                info!(%peer, address = ?address, "peer address changed; reconnecting");
                self.links.remove(&peer);
            }
            self.link_to(peer);
        }
    }

    /// The link to `peer`, opened now if there is none yet.
    fn link_to(&mut self, peer: NodeId) -> Option<&mut OpenLink> {
        if !self.links.contains_key(&peer) {
            let address = self.book.address_of(peer);
            let link = self.opener.open(peer, address)?;
            self.links.insert(peer, OpenLink { address, link });
        }
        self.links.get_mut(&peer)
    }

    /// The peers that lost messages since the last call, to be reported to
    /// the core as unreachable so that it resends without waiting for
    /// answers that will not come.
    pub(crate) fn take_unreachable(&mut self) -> BTreeSet<NodeId> {
        std::mem::take(&mut self.unreachable)
    }

    /// Messages dropped so far: to a node with no address, or a link that
    /// could not take them.
    pub(crate) fn dropped(&self) -> u64 {
        self.unaddressed + self.dropped
    }

    /// Takes `message` for `to`, to go out at the next
    /// [`flush`](PeerLinks::flush).
    pub(crate) fn send(&mut self, to: NodeId, message: Message) {
        let Some(open) = self.link_to(to) else {
            self.unaddressed += 1;
            if self.unaddressed.is_power_of_two() {
                warn!(peer = %to, dropped = self.unaddressed, "no address known for a node the core wants to reach; message dropped");
            }
            return;
        };
        if !open.link.send(message) {
            self.dropped += 1;
            if self.dropped.is_power_of_two() {
                debug!(peer = %to, dropped = self.dropped, "peer unreachable or its queue full, message dropped");
            }
        }
    }

    /// Starts writing what was sent since the last flush to every peer.
    pub(crate) fn flush(&mut self) {
        for (&peer, open) in &mut self.links {
            open.link.flush();
            if open.link.take_lost() {
                self.unreachable.insert(peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kontiki::{LeadershipCheck, MembershipChange, Term};

    use super::*;

    /// A link that takes `room` messages, then drops them (a full queue),
    /// and reports a broken connection when told to.
    struct Link {
        room: usize,
        broke: bool,
    }

    impl PeerLink for Link {
        fn send(&mut self, _: Message) -> bool {
            self.room = self.room.saturating_sub(1);
            self.room > 0
        }

        fn flush(&mut self) {}

        fn take_lost(&mut self) -> bool {
            std::mem::take(&mut self.broke)
        }
    }

    /// Opens a link (with room for 9 messages; node 3's connection
    /// breaks) wherever there is an address, and records each opening.
    #[derive(Clone, Default)]
    struct Opener(Arc<Mutex<Vec<(NodeId, SocketAddr)>>>);

    impl LinkOpener for Opener {
        fn open(&mut self, peer: NodeId, address: Option<SocketAddr>) -> Option<Box<dyn PeerLink>> {
            let address = address?;
            lock(&self.0).push((peer, address));
            let room = if peer == NodeId(2) { 2 } else { 9 };
            Some(Box::new(Link {
                room,
                broke: peer == NodeId(3),
            }))
        }
    }

    impl Opener {
        fn take(&self) -> Vec<(u64, u16)> {
            std::mem::take(&mut *lock(&self.0))
                .into_iter()
                .map(|(peer, address)| (peer.get(), address.port()))
                .collect()
        }
    }

    fn check() -> Message {
        Message::LeadershipCheck(LeadershipCheck {
            term: Term(1),
            round: 1,
        })
    }

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn book(configured: &[(u64, u16)]) -> AddressBook {
        AddressBook {
            members: BTreeMap::new(),
            configured: configured
                .iter()
                .map(|&(peer, port)| (NodeId(peer), at(port)))
                .collect(),
            advertised: Advertised::default(),
        }
    }

    #[test]
    fn peers_that_lost_messages_are_reported_once_and_full_queues_not() {
        let opener = Opener::default();
        let mut links = PeerLinks::new(
            NodeId(1),
            Box::new(opener.clone()),
            book(&[(2, 2), (3, 3), (4, 4)]),
        );
        assert_eq!(opener.take(), [(2, 2), (3, 3), (4, 4)], "opened at start");
        for to in [2, 2, 3, 4] {
            links.send(NodeId(to), check());
        }
        links.flush();
        // Node 2's queue overflowed, which is back-pressure; node 3's
        // connection broke.
        assert_eq!(
            links.take_unreachable().into_iter().collect::<Vec<_>>(),
            [NodeId(3)]
        );
        assert!(links.take_unreachable().is_empty());
        assert_eq!(links.dropped, 1);
    }

    #[test]
    fn links_follow_the_configuration_and_its_addresses() {
        let opener = Opener::default();
        let book = book(&[(2, 2), (3, 3)]);
        let advertised = Arc::clone(&book.advertised);
        let mut links = PeerLinks::new(NodeId(1), Box::new(opener.clone()), book);
        opener.take();
        let address = |port: u16| Bytes::from(at(port).to_string());
        let founders = Membership::with_voters(&[NodeId(1), NodeId(2), NodeId(3)]).unwrap();
        links.follow(&founders);
        assert!(opener.take().is_empty(), "the founders are linked already");

        // A learner added with its address is linked at once; the log's
        // address for a founder outranks the node's own configuration.
        let grown = founders
            .with_address(NodeId(2), address(22))
            .unwrap()
            .with_change(&MembershipChange::AddLearner {
                id: NodeId(4),
                address: address(4),
            })
            .unwrap();
        links.follow(&grown);
        assert_eq!(opener.take(), [(2, 22), (4, 4)]);
        links.follow(&grown);
        assert!(opener.take().is_empty(), "nothing changed");

        // A removed node loses its link; sending to it again reopens one.
        let shrunk = grown
            .with_change(&MembershipChange::Remove { id: NodeId(3) })
            .unwrap();
        links.follow(&shrunk);
        assert!(!links.links.contains_key(&NodeId(3)));
        links.send(NodeId(3), check());
        assert_eq!(opener.take(), [(3, 3)]);

        // A node known only from its handshake is reached there; one
        // known nowhere costs its message, not the node.
        lock(&advertised).insert(NodeId(7), at(7));
        links.send(NodeId(7), check());
        assert_eq!(opener.take(), [(7, 7)]);
        links.send(NodeId(8), check());
        assert!(opener.take().is_empty());
        assert_eq!(links.unaddressed, 1);
    }
}

//! What the node's task sees of any transport: a link per peer to send
//! on, and the messages that arrive.

use std::collections::{BTreeMap, BTreeSet};

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

    /// Whether messages were lost since the last call because the peer is
    /// unreachable: the connection broke (bytes written to a socket that
    /// then fails may never arrive, and what was queued is dropped with
    /// it) or the peer is not running. A full queue is not counted: that
    /// is back-pressure, which Raft's own retransmission handles, and
    /// reporting it would stop a busy follower's stream for a heartbeat.
    fn take_lost(&mut self) -> bool;
}

/// The sending side of every peer link.
pub(crate) struct PeerLinks {
    links: BTreeMap<NodeId, Box<dyn PeerLink>>,
    /// Messages dropped because a peer was unreachable or its queue full.
    pub(crate) dropped: u64,
    /// Peers that lost messages for being unreachable since the core was
    /// last told (see [`PeerLinks::take_unreachable`]).
    unreachable: BTreeSet<NodeId>,
}

impl PeerLinks {
    pub(crate) fn new(links: BTreeMap<NodeId, Box<dyn PeerLink>>) -> PeerLinks {
        PeerLinks {
            links,
            dropped: 0,
            unreachable: BTreeSet::new(),
        }
    }

    /// The peers that lost messages since the last call, to be reported to
    /// the core as unreachable so that it resends without waiting for
    /// answers that will not come.
    pub(crate) fn take_unreachable(&mut self) -> BTreeSet<NodeId> {
        std::mem::take(&mut self.unreachable)
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
        for (&peer, link) in &mut self.links {
            link.flush();
            if link.take_lost() {
                self.unreachable.insert(peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use kontiki::{LeadershipCheck, Term};

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

    fn check() -> Message {
        Message::LeadershipCheck(LeadershipCheck {
            term: Term(1),
            round: 1,
        })
    }

    #[test]
    fn peers_that_lost_messages_are_reported_once_and_full_queues_not() {
        let mut links: BTreeMap<NodeId, Box<dyn PeerLink>> = BTreeMap::new();
        links.insert(
            NodeId(2),
            Box::new(Link {
                room: 2,
                broke: false,
            }),
        );
        links.insert(
            NodeId(3),
            Box::new(Link {
                room: 9,
                broke: true,
            }),
        );
        links.insert(
            NodeId(4),
            Box::new(Link {
                room: 9,
                broke: false,
            }),
        );
        let mut links = PeerLinks::new(links);
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
}

//! Who gets a place among a node's inbound peer connections, so that
//! strangers can never keep a member out.
//!
//! A connection is first *pending* — it has not finished its handshake —
//! then *established* as the node it proved (with TLS) or claimed to be.
//! The two kinds have separate places:
//!
//! - Pending places are few and short-lived (the handshake timeout), and a
//!   newcomer never waits for one: when they are full it takes the place
//!   of the oldest pending connection, and when its own address already
//!   holds its share it takes that address's oldest. Idle or slow
//!   connections therefore cannot fill the door: a member's handshake,
//!   which completes in a few round trips, is displaced only by someone
//!   opening a whole pool's worth of connections within that time, and
//!   never by strangers at other addresses once their share is used.
//! - Established places hold one connection per node: a node that
//!   reconnects replaces its previous connection (which a crash or a
//!   network cut may have left half-open), so a member always gets back
//!   in. Their number is bounded as well.
//!
//! A displaced connection's task learns it through [`Admitted::displaced`]
//! and closes the connection.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use futures::channel::oneshot;
use kontiki::NodeId;

use crate::error::NoPlace;
use crate::sync::lock;

/// Limits on inbound peer connections.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdmissionLimits {
    /// Connections in their handshake, at most.
    pub(crate) pending: usize,
    /// Connections in their handshake from one IP address, at most.
    pub(crate) pending_per_address: usize,
    /// Connections past their handshake, at most (one per node).
    pub(crate) established: usize,
}

/// One connection's place.
#[derive(Debug)]
pub(crate) struct Admitted {
    /// Names the connection in [`Admission::establish`] and
    /// [`Admission::leave`].
    pub(crate) ticket: u64,
    /// Completes when another connection took this one's place.
    pub(crate) displaced: oneshot::Receiver<()>,
}

struct Pending {
    ticket: u64,
    address: IpAddr,
    /// Dropping it tells the connection's task it was displaced.
    place: oneshot::Sender<()>,
}

struct Established {
    ticket: u64,
    /// Held, never sent on: dropping it displaces the connection.
    _place: oneshot::Sender<()>,
}

#[derive(Default)]
struct Places {
    next_ticket: u64,
    /// Oldest first.
    pending: VecDeque<Pending>,
    established: BTreeMap<NodeId, Established>,
}

/// The inbound connections' places (see the module documentation).
pub(crate) struct Admission {
    limits: AdmissionLimits,
    places: Mutex<Places>,
}

impl Admission {
    pub(crate) fn new(limits: AdmissionLimits) -> Admission {
        Admission {
            limits,
            places: Mutex::default(),
        }
    }

    /// Gives a new connection from `address` a pending place, displacing
    /// another if need be; returns the place and whether one was
    /// displaced.
    pub(crate) fn arrive(&self, address: IpAddr) -> (Admitted, bool) {
        let mut places = lock(&self.places);
        let from_address = places
            .pending
            .iter()
            .filter(|pending| pending.address == address)
            .count();
        let victim = if from_address >= self.limits.pending_per_address.max(1) {
            places
                .pending
                .iter()
                .position(|pending| pending.address == address)
        } else if places.pending.len() >= self.limits.pending.max(1) {
            Some(0)
        } else {
            None
        };
        // Dropping the victim's sender is what tells its task.
        let displaced = victim.and_then(|at| places.pending.remove(at)).is_some();
        let ticket = places.next_ticket;
        places.next_ticket += 1;
        let (place, receiver) = oneshot::channel();
        places.pending.push_back(Pending {
            ticket,
            address,
            place,
        });
        let admitted = Admitted {
            ticket,
            displaced: receiver,
        };
        (admitted, displaced)
    }

    /// Moves connection `ticket`, whose handshake showed it to be `node`,
    /// to an established place, replacing `node`'s previous connection.
    /// `Err` when the established places are full (the connection keeps
    /// none; its task closes it), or when it was displaced meanwhile.
    pub(crate) fn establish(&self, ticket: u64, node: NodeId) -> Result<(), NoPlace> {
        let mut places = lock(&self.places);
        let Some(at) = places
            .pending
            .iter()
            .position(|pending| pending.ticket == ticket)
        else {
            return Err(NoPlace::Displaced);
        };
        let replacing = places.established.contains_key(&node);
        if !replacing && places.established.len() >= self.limits.established {
            places.pending.remove(at);
            return Err(NoPlace::Full {
                limit: self.limits.established,
            });
        }
        let pending = places.pending.remove(at).expect("found above");
        // The previous connection's sender drops here: its task closes it.
        places.established.insert(
            node,
            Established {
                ticket,
                _place: pending.place,
            },
        );
        Ok(())
    }

    /// Connection `ticket` ended: frees its place (unless another already
    /// took it).
    pub(crate) fn leave(&self, ticket: u64) {
        let mut places = lock(&self.places);
        places.pending.retain(|pending| pending.ticket != ticket);
        places
            .established
            .retain(|_, established| established.ticket != ticket);
    }

    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let places = lock(&self.places);
        (places.pending.len(), places.established.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: AdmissionLimits = AdmissionLimits {
        pending: 4,
        pending_per_address: 2,
        established: 2,
    };

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn is_displaced(admitted: &mut Admitted) -> bool {
        matches!(admitted.displaced.try_recv(), Err(oneshot::Canceled))
    }

    #[test]
    fn a_flood_from_one_address_displaces_only_its_own_connections() {
        let admission = Admission::new(LIMITS);
        let (mut member, _) = admission.arrive(ip(1));
        let mut flood: Vec<Admitted> = (0..10)
            .map(|_| admission.arrive(ip(9)))
            .map(|(admitted, _)| admitted)
            .collect();
        assert!(!is_displaced(&mut member), "a stranger displaced a member");
        let displaced = flood.iter_mut().map(is_displaced).filter(|&d| d).count();
        assert_eq!(displaced, 8, "the flood keeps its share of two");
        assert_eq!(admission.counts(), (3, 0));
        admission.establish(member.ticket, NodeId(1)).unwrap();
        assert_eq!(admission.counts(), (2, 1));
    }

    #[test]
    fn when_the_pool_is_full_the_oldest_pending_connection_goes() {
        let admission = Admission::new(LIMITS);
        let mut arrivals: Vec<Admitted> = (1..=4).map(|n| admission.arrive(ip(n)).0).collect();
        let (mut newcomer, displaced) = admission.arrive(ip(5));
        assert!(displaced);
        assert!(is_displaced(&mut arrivals[0]));
        assert!(!arrivals[1..].iter_mut().any(is_displaced));
        assert!(!is_displaced(&mut newcomer));
        // A displaced connection has no place to establish.
        assert_eq!(
            admission.establish(arrivals[0].ticket, NodeId(1)),
            Err(NoPlace::Displaced)
        );
    }

    #[test]
    fn a_node_that_reconnects_replaces_its_connection_and_the_rest_is_bounded() {
        let admission = Admission::new(LIMITS);
        let mut first = admission.arrive(ip(1)).0;
        admission.establish(first.ticket, NodeId(2)).unwrap();
        let mut second = admission.arrive(ip(1)).0;
        admission.establish(second.ticket, NodeId(2)).unwrap();
        assert!(is_displaced(&mut first));
        assert!(!is_displaced(&mut second));
        // The old connection's end does not free the new one's place.
        admission.leave(first.ticket);
        assert_eq!(admission.counts(), (0, 1));
        let third = admission.arrive(ip(2)).0;
        admission.establish(third.ticket, NodeId(3)).unwrap();
        let fourth = admission.arrive(ip(3)).0;
        assert_eq!(
            admission.establish(fourth.ticket, NodeId(4)),
            Err(NoPlace::Full { limit: 2 })
        );
        // A member already in reconnects even when places are full.
        let again = admission.arrive(ip(2)).0;
        admission.establish(again.ticket, NodeId(3)).unwrap();
        admission.leave(second.ticket);
        assert_eq!(admission.counts(), (0, 1));
    }
}

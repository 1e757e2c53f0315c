//! What a node needs to know to start: who it is, where its peers are,
//! and the limits that keep it safe from bad peers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use kontiki::{Membership, MembershipError, NodeId};

use crate::address::MemberAddress;
use crate::tls::PeerTls;

/// One node's configuration.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id; must not be among `peers`.
    pub id: NodeId,
    /// Where this node accepts connections from its peers.
    pub listen: SocketAddr,
    /// The address peers reach this node at, which it gives them when it
    /// connects and which a cluster starting with it records for it.
    /// `None`: `listen` once bound, unless that is a wildcard (`0.0.0.0` or
    /// `[::]`), which says nothing; then peers learn it only from the
    /// configuration (the address this node was added with).
    pub advertise: Option<SocketAddr>,
    /// Every other voter the cluster starts with, and its peer address —
    /// or, with `join`, members of the cluster to reach. Once the
    /// node's log holds a configuration, that one decides who the members
    /// are, and the addresses it carries outrank these.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Where the founding members serve the application's clients (this
    /// node's included), recorded in the configuration the cluster starts
    /// with, beside their peer addresses (see
    /// [`Member::client_address`](crate::Member::client_address)).
    pub client_addresses: BTreeMap<NodeId, SocketAddr>,
    /// Start without a configuration, waiting to be added to a running
    /// cluster (as a learner, by its leader: see
    /// [`Handle::add_learner`](crate::Handle::add_learner)) rather than
    /// founding one with `peers`. Such a node never campaigns until its
    /// log says it votes. Ignored once the node's log holds a
    /// configuration.
    pub join: bool,
    /// A name every node of the cluster shares; a peer with another name
    /// is refused at the handshake, so two clusters on one network cannot
    /// mix.
    pub cluster_id: String,
    /// The Raft core's timing and protocol options.
    pub raft: kontiki::Config,
    /// Connection and queue limits.
    pub transport: TransportConfig,
    /// Mutual TLS on every peer link, with identities bound to
    /// certificates (see [`PeerTls`]); `None`: plaintext. All members of
    /// a cluster must agree: a node with TLS refuses plaintext peers.
    pub tls: Option<PeerTls>,
    /// Applied entries between two snapshots of the state machine (and so
    /// log compactions); 0 never takes one. Only a state machine that
    /// implements [`StateMachine::snapshot`](crate::StateMachine::snapshot)
    /// is asked.
    pub snapshot_interval: u64,
    /// Seeds the node's random choices (election timeouts, reconnect
    /// jitter). `None` takes one from the clock; tests fix it. Nodes of a
    /// cluster may share one: each node mixes in its id.
    pub seed: Option<u64>,
}

impl NodeConfig {
    /// A configuration with the core's default Raft options but for
    /// asynchronous writes, which the driver turns on (its storage writes
    /// run in the background while the node goes on, and it reports each
    /// one), and default limits.
    #[must_use]
    pub fn new(id: NodeId, listen: SocketAddr, peers: BTreeMap<NodeId, SocketAddr>) -> NodeConfig {
        NodeConfig {
            id,
            listen,
            advertise: None,
            peers,
            client_addresses: BTreeMap::new(),
            join: false,
            cluster_id: String::from("kontiki"),
            raft: kontiki::Config {
                asynchronous_writes: true,
                ..kontiki::Config::default()
            },
            transport: TransportConfig::default(),
            tls: None,
            snapshot_interval: 10_000,
            seed: None,
        }
    }

    /// Every voter's id, this node's included (none with `join`).
    #[must_use]
    pub fn voters(&self) -> Vec<NodeId> {
        if self.join {
            return Vec::new();
        }
        let mut voters: Vec<NodeId> = self.peers.keys().copied().collect();
        voters.push(self.id);
        voters.sort_unstable();
        voters
    }

    /// The configuration the cluster starts with: the founding voters
    /// (see [`voters`](NodeConfig::voters)) with the addresses known for
    /// them here, so that the first change replicates them to every
    /// member. Empty with `join`.
    pub(crate) fn founding_membership(&self) -> Result<Membership, kontiki::StartError> {
        if self.join {
            return Ok(Membership::default());
        }
        let founders = Membership::with_voters(&self.voters()).map_err(|error| match error {
            MembershipError::Duplicate(id) => kontiki::StartError::DuplicateVoter(id),
            _ => kontiki::StartError::NotAVoter(self.id),
        })?;
        let own = self.advertise.or_else(|| {
            (!self.listen.ip().is_unspecified() && self.listen.port() != 0).then_some(self.listen)
        });
        let peers = self
            .peers
            .iter()
            .map(|(id, address)| (*id, *address))
            .chain(own.map(|own| (self.id, own)));
        let mut membership = founders;
        for (id, peer) in peers {
            let address = MemberAddress {
                peer,
                client: self.client_addresses.get(&id).copied(),
            };
            membership = membership
                .with_address(id, address.encode())
                .map_err(|_| kontiki::StartError::NotAVoter(id))?;
        }
        Ok(membership)
    }
}

/// Limits on peer connections.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// The largest frame accepted from a peer; a longer one closes the
    /// connection before it is read into memory.
    pub max_frame_bytes: usize,
    /// Messages waiting for one peer's connection. When the queue is full
    /// (the peer is down or slow) new messages to it are dropped: Raft
    /// retransmits what matters, and memory stays bounded.
    pub peer_queue_messages: usize,
    /// How long a connection may take to introduce itself (TLS and the
    /// hellos, either way); 3 s by default.
    pub handshake_timeout: Duration,
    /// Inbound connections past their handshake, at most, one per peer
    /// node: a peer that reconnects replaces its previous connection, and
    /// a new node beyond the limit is refused.
    pub max_inbound_connections: usize,
    /// Inbound connections still in their handshake, at most. When they
    /// are full a new connection takes the place of the oldest, so idle
    /// connections cannot keep a member out.
    pub max_pending_handshakes: usize,
    /// Inbound connections in their handshake from one IP address, at
    /// most: a new one from an address at its share takes the place of
    /// that address's oldest, so a flood from one address displaces only
    /// its own connections.
    pub max_pending_per_address: usize,
    /// The first wait before reconnecting to a peer; doubled after every
    /// failure up to `reconnect_backoff_max`, each wait jittered by ±50%.
    pub reconnect_backoff_min: Duration,
    /// The longest wait between reconnection attempts.
    pub reconnect_backoff_max: Duration,
    /// A snapshot with more data than this streams to a follower in chunks
    /// of this many bytes (1 MiB by default); a smaller one goes as one
    /// message. Heartbeats and other messages go out between chunks, so
    /// they wait for one chunk at most. Must leave room for a chunk's
    /// 37-byte header within the receiver's `max_frame_bytes`.
    pub snapshot_chunk_bytes: usize,
    /// Snapshot bytes sent to a follower and not yet acknowledged, at
    /// most (4 MiB by default): the stream's flow control, which bounds
    /// what waits in the sockets' buffers ahead of a heartbeat.
    pub snapshot_window_bytes: usize,
    /// The largest snapshot this node takes from a leader (16 GiB by
    /// default); a larger offer is refused, and the leader told why. What
    /// arrived of a snapshot is held in memory until it is whole.
    pub max_snapshot_bytes: u64,
}

/// The bytes a snapshot chunk's frame carries besides the data: the
/// frame kind, the stream's name, the offset and the checksum.
const CHUNK_HEADER_BYTES: usize = 37;

impl TransportConfig {
    /// Checks that the limits fit together: a chunk of
    /// `snapshot_chunk_bytes` (at least 1) and its header within
    /// `max_frame_bytes`, and a window of at least one byte.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if self.snapshot_chunk_bytes == 0 {
            return Err("snapshot_chunk_bytes is 0");
        }
        if self.snapshot_chunk_bytes.saturating_add(CHUNK_HEADER_BYTES) > self.max_frame_bytes {
            return Err("a snapshot chunk and its header exceed max_frame_bytes");
        }
        if self.snapshot_window_bytes == 0 {
            return Err("snapshot_window_bytes is 0");
        }
        Ok(())
    }
}

impl Default for TransportConfig {
    fn default() -> TransportConfig {
        TransportConfig {
            max_frame_bytes: kontiki::wire::MAX_MESSAGE_LEN,
            peer_queue_messages: 4096,
            handshake_timeout: Duration::from_secs(3),
            max_inbound_connections: 64,
            max_pending_handshakes: 64,
            max_pending_per_address: 16,
            reconnect_backoff_min: Duration::from_millis(20),
            reconnect_backoff_max: Duration::from_secs(2),
            snapshot_chunk_bytes: 1 << 20,
            snapshot_window_bytes: 4 << 20,
            max_snapshot_bytes: 16 << 30,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_founding_configuration_carries_every_useful_address() {
        let peer: SocketAddr = "10.0.0.2:7000".parse().unwrap();
        let wildcard: SocketAddr = "0.0.0.0:7000".parse().unwrap();
        let mut config = NodeConfig::new(NodeId(1), wildcard, [(NodeId(2), peer)].into());
        let founders = config.founding_membership().unwrap();
        assert_eq!(founders.voters(), [NodeId(1), NodeId(2)]);
        // A wildcard says nothing about where node 1 is.
        assert_eq!(founders.address(NodeId(1)), None);
        assert_eq!(
            founders.address(NodeId(2)).map(|a| &a[..]),
            Some(&b"10.0.0.2:7000"[..])
        );
        config.advertise = Some("10.0.0.1:7000".parse().unwrap());
        let founders = config.founding_membership().unwrap();
        assert_eq!(
            founders.address(NodeId(1)).map(|a| &a[..]),
            Some(&b"10.0.0.1:7000"[..])
        );
        config.join = true;
        assert!(config.founding_membership().unwrap().is_empty());
        assert!(config.voters().is_empty());
    }
}

//! What a node needs to know to start: who it is, where its peers are,
//! and the limits that keep it safe from bad peers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use kontiki::NodeId;

/// One node's configuration.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id; must not be among `peers`.
    pub id: NodeId,
    /// Where this node accepts connections from its peers.
    pub listen: SocketAddr,
    /// Every other voter of the cluster and its peer address.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// A name every node of the cluster shares; a peer with another name
    /// is refused at the handshake, so two clusters on one network cannot
    /// mix.
    pub cluster_id: String,
    /// The Raft core's timing and protocol options.
    pub raft: kontiki::Config,
    /// Connection and queue limits.
    pub transport: TransportConfig,
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
    /// A configuration with the core's default Raft options (the leader
    /// writes its log in parallel with its followers, and the driver
    /// reports every write) and default limits.
    #[must_use]
    pub fn new(id: NodeId, listen: SocketAddr, peers: BTreeMap<NodeId, SocketAddr>) -> NodeConfig {
        NodeConfig {
            id,
            listen,
            peers,
            cluster_id: String::from("kontiki"),
            raft: kontiki::Config::default(),
            transport: TransportConfig::default(),
            snapshot_interval: 10_000,
            seed: None,
        }
    }

    /// Every voter's id, this node's included.
    #[must_use]
    pub fn voters(&self) -> Vec<NodeId> {
        let mut voters: Vec<NodeId> = self.peers.keys().copied().collect();
        voters.push(self.id);
        voters.sort_unstable();
        voters
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
    /// How long an accepted connection may take to introduce itself.
    pub handshake_timeout: Duration,
    /// Inbound connections served at once; more are closed at once.
    pub max_inbound_connections: usize,
    /// The first wait before reconnecting to a peer; doubled after every
    /// failure up to `reconnect_backoff_max`, each wait jittered by ±50%.
    pub reconnect_backoff_min: Duration,
    /// The longest wait between reconnection attempts.
    pub reconnect_backoff_max: Duration,
}

impl Default for TransportConfig {
    fn default() -> TransportConfig {
        TransportConfig {
            max_frame_bytes: kontiki::wire::MAX_MESSAGE_LEN,
            peer_queue_messages: 4096,
            handshake_timeout: Duration::from_secs(5),
            max_inbound_connections: 64,
            reconnect_backoff_min: Duration::from_millis(20),
            reconnect_backoff_max: Duration::from_secs(2),
        }
    }
}

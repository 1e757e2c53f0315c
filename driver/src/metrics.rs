//! What a node measures, through the `metrics` facade: an application
//! installs any recorder (a Prometheus exporter, say) and gets them; one
//! that installs none pays for registering the handles at start and for
//! no-op updates after.
//!
//! Every series carries the label `node` (the node's id). The names:
//!
//! | name | kind | what |
//! |---|---|---|
//! | `kontiki_term` | gauge | the current term |
//! | `kontiki_is_leader` | gauge | 1 while the node leads, else 0 |
//! | `kontiki_commit_index`, `kontiki_applied_index`, `kontiki_last_log_index` | gauges | the log's positions |
//! | `kontiki_leader_changes_total` | counter | leaders (or terms) seen change |
//! | `kontiki_elections_started_total`, `kontiki_elections_won_total` | counters | campaigns (past the pre-vote) and wins |
//! | `kontiki_proposal_seconds` | histogram | from `Handle::propose` to its answer |
//! | `kontiki_storage_write_seconds` | histogram | one durable write (fsync included) |
//! | `kontiki_append_batch_entries` | histogram | entries per durable write |
//! | `kontiki_requests_queued`, `kontiki_inbound_messages_queued` | gauges | the node task's queues, sampled each round |
//! | `kontiki_snapshots_sent_total`, `kontiki_snapshots_received_total` | counters | InstallSnapshot messages |
//! | `kontiki_messages_dropped_total` | counter | messages to a peer dropped (queue full, no address) |
//! | `kontiki_peer_connections_refused_total` | counter | inbound peer connections refused, by `reason` |

use kontiki::{Message, NodeId, Role};
use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};

/// The node task's measures.
pub(crate) struct NodeMetrics {
    term: Gauge,
    is_leader: Gauge,
    commit_index: Gauge,
    applied_index: Gauge,
    last_log_index: Gauge,
    leader_changes: Counter,
    elections_started: Counter,
    elections_won: Counter,
    requests_queued: Gauge,
    inbound_queued: Gauge,
    snapshots_sent: Counter,
    snapshots_received: Counter,
    messages_dropped: Counter,
    role: Role,
}

/// A node's position, as the node task publishes it each round.
pub(crate) struct Position {
    pub(crate) term: u64,
    pub(crate) role: Role,
    pub(crate) commit_index: u64,
    pub(crate) applied_index: u64,
    pub(crate) last_log_index: u64,
    pub(crate) leader_changed: bool,
    pub(crate) requests_queued: usize,
    pub(crate) inbound_queued: usize,
    pub(crate) messages_dropped: u64,
}

fn label(id: NodeId) -> [(&'static str, String); 1] {
    [("node", id.get().to_string())]
}

impl NodeMetrics {
    pub(crate) fn new(id: NodeId, role: Role) -> NodeMetrics {
        let node = label(id);
        NodeMetrics {
            term: gauge!("kontiki_term", &node),
            is_leader: gauge!("kontiki_is_leader", &node),
            commit_index: gauge!("kontiki_commit_index", &node),
            applied_index: gauge!("kontiki_applied_index", &node),
            last_log_index: gauge!("kontiki_last_log_index", &node),
            leader_changes: counter!("kontiki_leader_changes_total", &node),
            elections_started: counter!("kontiki_elections_started_total", &node),
            elections_won: counter!("kontiki_elections_won_total", &node),
            requests_queued: gauge!("kontiki_requests_queued", &node),
            inbound_queued: gauge!("kontiki_inbound_messages_queued", &node),
            snapshots_sent: counter!("kontiki_snapshots_sent_total", &node),
            snapshots_received: counter!("kontiki_snapshots_received_total", &node),
            messages_dropped: counter!("kontiki_messages_dropped_total", &node),
            role,
        }
    }

    /// Records a round's position; a role change counts elections.
    pub(crate) fn observe(&mut self, position: &Position) {
        self.term.set(position.term as f64);
        self.is_leader
            .set(f64::from(u8::from(position.role == Role::Leader)));
        self.commit_index.set(position.commit_index as f64);
        self.applied_index.set(position.applied_index as f64);
        self.last_log_index.set(position.last_log_index as f64);
        self.requests_queued.set(position.requests_queued as f64);
        self.inbound_queued.set(position.inbound_queued as f64);
        self.messages_dropped.absolute(position.messages_dropped);
        if position.leader_changed {
            self.leader_changes.increment(1);
        }
        if position.role != self.role {
            match position.role {
                Role::Candidate => self.elections_started.increment(1),
                Role::Leader => self.elections_won.increment(1),
                // Role is non-exhaustive: roles added later count nothing.
                _ => {}
            }
            self.role = position.role;
        }
    }

    /// Counts a message sent, if it is a snapshot.
    pub(crate) fn sent(&self, message: &Message) {
        if matches!(message, Message::InstallSnapshot(_)) {
            self.snapshots_sent.increment(1);
        }
    }

    /// Counts a message received, if it is a snapshot.
    pub(crate) fn received(&self, message: &Message) {
        if matches!(message, Message::InstallSnapshot(_)) {
            self.snapshots_received.increment(1);
        }
    }
}

/// The storage writer's measures.
#[derive(Clone)]
pub(crate) struct WriteMetrics {
    pub(crate) seconds: Histogram,
    pub(crate) entries: Histogram,
}

impl WriteMetrics {
    pub(crate) fn new(id: NodeId) -> WriteMetrics {
        let node = label(id);
        WriteMetrics {
            seconds: histogram!("kontiki_storage_write_seconds", &node),
            entries: histogram!("kontiki_append_batch_entries", &node),
        }
    }
}

/// How long proposals take, from the handle's side.
pub(crate) fn proposal_seconds(id: NodeId) -> Histogram {
    histogram!("kontiki_proposal_seconds", &label(id))
}

/// Counts an inbound peer connection refused for `reason`.
pub(crate) fn peer_connection_refused(id: NodeId, reason: &'static str) {
    counter!(
        "kontiki_peer_connections_refused_total",
        "node" => id.get().to_string(),
        "reason" => reason
    )
    .increment(1);
}

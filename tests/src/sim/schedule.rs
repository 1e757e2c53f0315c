//! Runs a cluster under a schedule of bytes: every scheduling choice an
//! adversary could make, one byte each, and the clients' proposals and
//! reads. The `cluster` fuzz target and the
//! `adversarial_schedules` property test share it.

use std::time::Duration;

use kontiki::{Config, MembershipChange, NodeId};

use super::cluster::{Cluster, ClusterConfig};

/// Builds a cluster from the schedule's first two bytes (options, seed)
/// and performs the rest as operations; `None` if it is too short.
///
/// The options byte: bit 0 pre-vote, bit 1 check-quorum, bit 2 five nodes
/// instead of three, bit 3 crashes part-way through a node's outputs (5%
/// of the time), so persists must precede whatever depends on them; bit 4
/// leaders that persist in parallel with their followers (and, when the
/// seed byte is odd, every node writing asynchronously); bit 5 snapshots
/// every 3 applied entries, keeping one entry behind each; bit 6 senders
/// hear of the messages lost to them and report the peer unreachable to
/// their core; bit 7 two more nodes, waiting to be added to the cluster.
pub fn run_schedule(schedule: &[u8]) -> Option<Cluster> {
    let [options, seed, ref operations @ ..] = *schedule else {
        return None;
    };
    let node_count = if options & 4 != 0 { 5 } else { 3 };
    let config = ClusterConfig {
        node: Config {
            pre_vote: options & 1 != 0,
            check_quorum: options & 2 != 0,
            leader_stickiness: options & 2 != 0,
            leader_persists_in_parallel: options & 16 != 0,
            asynchronous_writes: options & 16 != 0 && seed & 1 == 1,
            compaction_lag: 1,
            ..Config::default()
        },
        snapshot_interval: (options & 32 != 0).then_some(3),
        crash_during_outputs_probability: if options & 8 != 0 { 0.05 } else { 0.0 },
        report_unreachable: options & 64 != 0,
        spare_nodes: if options & 128 != 0 { 2 } else { 0 },
        ..ClusterConfig::new(node_count)
    };
    let mut cluster = Cluster::new(u64::from(seed), config);
    let mut proposals = 0u32;
    for &operation in operations {
        perform(&mut cluster, operation, &mut proposals);
    }
    Some(cluster)
}

/// One operation: the low nibble picks what happens, the high nibble the
/// message (its position among those in flight) or node it happens to.
fn perform(cluster: &mut Cluster, operation: u8, proposals: &mut u32) {
    let target = usize::from(operation >> 4);
    let node_count = cluster.ids().len();
    let node = NodeId(1 + (target % node_count) as u64);
    match operation & 0x0f {
        // Deliveries are the most common choice, as on a real network.
        0..=4 => {
            cluster.deliver_any(target);
        }
        5 => {
            cluster.drop_any(target);
        }
        6 => {
            cluster.duplicate_any(target);
        }
        7 | 8 => {
            cluster.fire_timer(node);
        }
        9 => {
            let batch = (0..1 + target / node_count)
                .map(|_| {
                    *proposals += 1;
                    proposals.to_le_bytes().to_vec()
                })
                .collect();
            let _ = cluster.propose_batch(node, batch);
        }
        // The high nibble's top bit picks a linearizable read instead.
        10 if target < 8 => cluster.campaign(node),
        10 => {
            let _ = cluster.read(node);
        }
        11 => cluster.crash(node),
        12 => cluster.restart(node),
        13 => cluster.advance_clock(Duration::from_millis(10 * (target as u64 + 1))),
        // Let the cluster run in its own seeded order for a while, so
        // schedules also reach deep, healthy states.
        14 => cluster.run_for(Duration::from_millis(20 * (target as u64 + 1))),
        _ => change(cluster, target),
    }
}

/// A membership change or a leadership transfer, asked of the leader of
/// the highest term (or, with none, of a node the high nibble picks). The
/// high nibble's top two bits pick the kind — add a learner; promote one
/// or enter a joint configuration without one member; remove a member;
/// transfer the leadership or leave a joint configuration — and its low
/// two bits which node it is about. Changes that do not fit are refused,
/// which changes nothing.
fn change(cluster: &mut Cluster, target: usize) {
    let ids = cluster.ids().to_vec();
    let asked = ids
        .iter()
        .copied()
        .filter_map(|id| cluster.node(id).map(|node| (node.term(), node.role(), id)))
        .filter(|(_, role, _)| *role == kontiki::Role::Leader)
        .map(|(term, _, id)| (term, id))
        .max()
        .map_or(ids[target % ids.len()], |(_, id)| id);
    let Some(node) = cluster.node(asked) else {
        return;
    };
    let membership = node.membership().clone();
    let pick = |among: &[NodeId]| among.get((target & 3) % among.len().max(1)).copied();
    let members = membership.members();
    let outsiders: Vec<NodeId> = ids
        .iter()
        .copied()
        .filter(|id| !membership.is_member(*id))
        .collect();
    let change = match (target >> 2, target & 3) {
        (0, _) => pick(&outsiders).map(|id| MembershipChange::AddLearner {
            id,
            address: bytes::Bytes::from(format!("n{id}")),
        }),
        (1, 0 | 1) => pick(membership.learners()).map(|id| MembershipChange::Promote { id }),
        // Every voter but one, leaving the joint configuration by itself
        // or (on odd bytes) when asked.
        (1, _) => pick(&members).map(|left_out| MembershipChange::EnterJoint {
            voters: membership
                .voters()
                .iter()
                .copied()
                .filter(|id| *id != left_out)
                .collect(),
            learners: Vec::new(),
            auto_leave: target & 1 == 0,
        }),
        (2, _) => pick(&members).map(|id| MembershipChange::Remove { id }),
        (_, 3) => Some(MembershipChange::LeaveJoint),
        _ => {
            if let Some(to) = pick(membership.voters()) {
                let _ = cluster.transfer_leadership(asked, to);
            }
            None
        }
    };
    if let Some(change) = change {
        let _ = cluster.change_membership(asked, change);
    }
}

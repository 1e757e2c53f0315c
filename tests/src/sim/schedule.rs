//! Runs a cluster under a schedule of bytes: every scheduling choice an
//! adversary could make, one byte each, and the clients' proposals and
//! reads. The `cluster` fuzz target and the
//! `adversarial_schedules` property test share it.

use std::time::Duration;

use kontiki::{Config, NodeId};

use super::cluster::{Cluster, ClusterConfig};

/// Builds a cluster from the schedule's first two bytes (options, seed)
/// and performs the rest as operations; `None` if it is too short.
///
/// The options byte: bit 0 pre-vote, bit 1 check-quorum, bit 2 five nodes
/// instead of three, bit 3 crashes part-way through a node's outputs (5%
/// of the time), so persists must precede whatever depends on them; bit 4
/// leaders that persist in parallel with their followers; bit 5 snapshots
/// every 3 applied entries, keeping one entry behind each; bit 6 senders
/// hear of the messages lost to them and report the peer unreachable to
/// their core.
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
            compaction_lag: 1,
            ..Config::default()
        },
        snapshot_interval: (options & 32 != 0).then_some(3),
        crash_during_outputs_probability: if options & 8 != 0 { 0.05 } else { 0.0 },
        report_unreachable: options & 64 != 0,
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
        _ => cluster.run_for(Duration::from_millis(20 * (target as u64 + 1))),
    }
}

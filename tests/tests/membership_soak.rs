//! The randomized soak with membership changes: the faults of the main
//! soak (crashes, partitions, one-way cuts, a lossy, reordering network),
//! writes, and every kind of membership change asked of whichever node
//! believes it leads — add a learner, promote one, remove any member (the
//! leader included), enter a joint configuration of any members, leave it
//! — and leadership transfers to any node.
//! The simulator checks every invariant after every event (each node's
//! configuration is its log's latest; every commit had a majority of each
//! configuration in force; election safety, log matching, state machine
//! safety, ...). When the faults end, the cluster must settle on a leader
//! known to every member, and every acknowledged write must be kept.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use kontiki::{LogIndex, MembershipChange, NodeId, Term};
use kontiki_tests::chaos::{
    acknowledge, believed_leaders, chaos_step, check_acknowledged_kept, end_faults,
    has_stable_leader, time_to_stable_leader, Proposal,
};
use kontiki_tests::seeds::seeds;
use kontiki_tests::sim::{Cluster, ClusterConfig, NetworkConfig};
use rand_08::seq::SliceRandom;
use rand_08::Rng;

/// Steps of chaos per seed.
const STEPS: u64 = 10_000;

/// After faults end, a leader known to every member must appear within
/// this much virtual time: the main soak's bound (see `soak.rs`), with
/// room for the removed or demoted leader of a change caught mid-way.
const SETTLE_BOUND: Duration = Duration::from_secs(3);

static CHANGES_ACCEPTED: AtomicU64 = AtomicU64::new(0);
static CHANGES_COMMITTED: AtomicU64 = AtomicU64::new(0);
static ACKNOWLEDGED: AtomicU64 = AtomicU64::new(0);
static TRANSFERS_ACCEPTED: AtomicU64 = AtomicU64::new(0);

/// A random change among the nodes `1..=all`, mostly ones that fit the
/// configuration `leader` holds (the rest are refused, changing nothing).
fn random_change(cluster: &mut Cluster, leader: NodeId, all: u64) -> MembershipChange {
    let membership = cluster.node(leader).expect("running").membership().clone();
    let members = membership.members();
    let outsiders: Vec<NodeId> = (1..=all)
        .map(NodeId)
        .filter(|id| !membership.is_member(*id))
        .collect();
    let rng = cluster.rng();
    if membership.is_joint() && rng.gen_bool(0.8) {
        return MembershipChange::LeaveJoint;
    }
    match rng.gen_range(0..10) {
        0..=2 => match outsiders.choose(rng) {
            Some(&id) => MembershipChange::AddLearner {
                id,
                address: Bytes::from(format!("n{id}")),
            },
            None => MembershipChange::Remove {
                id: *members.choose(rng).expect("members"),
            },
        },
        3..=4 => match membership.learners().choose(rng) {
            Some(&id) => MembershipChange::Promote { id },
            None => MembershipChange::Remove {
                id: *members.choose(rng).expect("members"),
            },
        },
        5..=7 => MembershipChange::Remove {
            id: *members.choose(rng).expect("members"),
        },
        _ => {
            let voters: Vec<NodeId> = members
                .iter()
                .copied()
                .filter(|_| rng.gen_bool(0.6))
                .collect();
            let learners: Vec<NodeId> = members
                .iter()
                .copied()
                .filter(|id| !voters.contains(id) && rng.gen_bool(0.5))
                .collect();
            MembershipChange::EnterJoint {
                voters,
                learners,
                auto_leave: rng.gen_bool(0.5),
            }
        }
    }
}

fn soak(seed: u64) -> Duration {
    let voters = 3 + (seed % 2) as usize;
    let spares = 2;
    let all = (voters + spares) as u64;
    let config = ClusterConfig {
        node: kontiki::Config {
            leader_persists_in_parallel: seed % 2 == 1,
            // Half of the seeds: every node's log writes run in the
            // background, reported when done (asynchronous writes).
            asynchronous_writes: (seed >> 6) & 1 == 1,
            compaction_lag: (seed >> 3) % 4,
            ..kontiki::Config::default()
        },
        spare_nodes: spares,
        write_latency: (seed % 4 >= 2).then_some(Duration::from_millis(1)),
        snapshot_interval: ((seed >> 2) & 1 == 1).then_some(4 + (seed >> 3) % 12),
        network: NetworkConfig::chaotic(),
        crash_during_outputs_probability: 0.002,
        report_unreachable: (seed >> 5) & 1 == 1,
        ..ClusterConfig::new(voters)
    };
    let mut cluster = Cluster::new(seed, config);
    let mut pending: Vec<Proposal> = Vec::new();
    let mut acknowledged: Vec<Proposal> = Vec::new();
    let mut changes: Vec<(NodeId, LogIndex, Term)> = Vec::new();
    let mut proposals = 0u64;
    while cluster.steps() < STEPS {
        if cluster.rng().gen_bool(0.02) {
            let id = NodeId(cluster.rng().gen_range(1..=all));
            proposals += 1;
            let command = format!("s{seed}-p{proposals}").into_bytes();
            if let Ok((index, term)) = cluster.propose(id, command.clone()) {
                pending.push((id, index, term, command));
            }
        }
        if cluster.rng().gen_bool(0.002) {
            // A leadership transfer to any node: a voter, a learner, a
            // stranger (refused) or one that is down (abandoned).
            let leaders = believed_leaders(&cluster);
            if let Some(&leader) = leaders.choose(cluster.rng()) {
                let target = NodeId(cluster.rng().gen_range(1..=all));
                if cluster.transfer_leadership(leader, target).is_ok() {
                    TRANSFERS_ACCEPTED.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if cluster.rng().gen_bool(0.004) {
            let leaders = believed_leaders(&cluster);
            if let Some(&leader) = leaders.choose(cluster.rng()) {
                let change = random_change(&mut cluster, leader, all);
                if let Ok((index, term)) = cluster.change_membership(leader, change) {
                    CHANGES_ACCEPTED.fetch_add(1, Ordering::Relaxed);
                    changes.push((leader, index, term));
                }
            }
        }
        acknowledge(&cluster, &mut pending, &mut acknowledged);
        for applied in cluster.applied() {
            if let Some(position) = changes.iter().position(|(proposer, index, term)| {
                *proposer == applied.node
                    && *index == applied.entry.index
                    && *term == applied.entry.term
            }) {
                changes.swap_remove(position);
                CHANGES_COMMITTED.fetch_add(1, Ordering::Relaxed);
            }
        }
        cluster.clear_applied();
        chaos_step(&mut cluster);
    }
    end_faults(&mut cluster);
    let Some(took) = time_to_stable_leader(&mut cluster, SETTLE_BOUND) else {
        let nodes: Vec<String> = cluster
            .ids()
            .iter()
            .filter_map(|&id| cluster.node(id))
            .map(|node| {
                format!(
                    "n{} {} t{} last {} commit {} configuration {:?} (from {})",
                    node.id(),
                    node.role(),
                    node.term(),
                    node.last_log_index(),
                    node.commit_index(),
                    node.membership(),
                    node.membership_index()
                )
            })
            .collect();
        cluster.fail(format!(
            "no leader known to every member within {SETTLE_BOUND:?} after faults ended:\n  {}",
            nodes.join("\n  ")
        ));
    };
    let leader = has_stable_leader(&cluster).expect("settled");
    check_acknowledged_kept(&cluster, leader, &acknowledged);
    ACKNOWLEDGED.fetch_add(acknowledged.len() as u64, Ordering::Relaxed);
    took
}

#[test]
fn membership_changes_under_chaos_keep_every_invariant_and_settle() {
    let seeds = seeds(1_000);
    let mut worst = Duration::ZERO;
    for &seed in &seeds {
        worst = worst.max(soak(seed));
    }
    println!(
        "membership soak: {} seeds x {STEPS} steps, {} changes accepted, {} committed, {} leadership transfers started, {} writes acknowledged and kept, worst settle {worst:?} (bound {SETTLE_BOUND:?})",
        seeds.len(),
        CHANGES_ACCEPTED.load(Ordering::Relaxed),
        CHANGES_COMMITTED.load(Ordering::Relaxed),
        TRANSFERS_ACCEPTED.load(Ordering::Relaxed),
        ACKNOWLEDGED.load(Ordering::Relaxed),
    );
}

//! Random fault injection for soaks and the demo: crashes, restarts,
//! isolation, partitions, one-way link cuts, forced campaigns and damaged
//! disks, all drawn from the cluster's seeded RNG.

use std::time::Duration;

use kontiki::{LogIndex, NodeId, Role, Term};
use rand_08::seq::SliceRandom;
use rand_08::Rng;

use crate::sim::{Cluster, NetworkConfig};

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A running node crashes.
    Crash,
    /// A crashed node restarts.
    Restart,
    /// A node is cut off from everyone.
    Isolate,
    /// An isolated node comes back.
    Reconnect,
    /// The cluster splits into two random groups.
    Partition,
    /// One direction of one link fails.
    CutLink,
    /// All network faults are repaired.
    Heal,
    /// A random node is told to campaign.
    Campaign,
}

const FAULTS: [Fault; 8] = [
    Fault::Crash,
    Fault::Restart,
    Fault::Isolate,
    Fault::Reconnect,
    Fault::Partition,
    Fault::CutLink,
    Fault::Heal,
    Fault::Campaign,
];

/// Injects one random fault into `cluster`; returns what it did, if the
/// drawn fault applied (restarting needs a crashed node, ...).
pub fn inject_random_fault(cluster: &mut Cluster) -> Option<Fault> {
    let fault = *FAULTS.choose(cluster.rng()).expect("faults exist");
    let ids = cluster.ids().to_vec();
    let running: Vec<NodeId> = ids
        .iter()
        .copied()
        .filter(|&id| cluster.is_running(id))
        .collect();
    match fault {
        Fault::Crash => {
            let id = *running.choose(cluster.rng())?;
            cluster.note(format!("-- crash n{id}"));
            cluster.crash(id);
        }
        Fault::Restart => {
            restart_random_crashed(cluster)?;
        }
        Fault::Isolate => {
            let id = *ids.choose(cluster.rng())?;
            cluster.isolate(id);
        }
        Fault::Reconnect => {
            let id = *ids.choose(cluster.rng())?;
            cluster.reconnect(id);
        }
        Fault::Partition => {
            let mut shuffled = ids.clone();
            shuffled.shuffle(cluster.rng());
            let split = cluster.rng().gen_range(1..shuffled.len().max(2));
            let (left, right) = shuffled.split_at(split.min(shuffled.len()));
            cluster.partition(&[left.to_vec(), right.to_vec()]);
        }
        Fault::CutLink => {
            let from = *ids.choose(cluster.rng())?;
            let to = *ids.choose(cluster.rng())?;
            if from == to {
                return None;
            }
            cluster.cut_link(from, to);
        }
        Fault::Heal => cluster.heal(),
        Fault::Campaign => {
            let id = *running.choose(cluster.rng())?;
            if cluster
                .node(id)
                .is_some_and(|node| node.role() == Role::Leader)
            {
                return None;
            }
            cluster.campaign(id);
        }
    }
    Some(fault)
}

/// Damages the disk of one crashed node, chosen at random: its stored log
/// loses a random suffix, which its store notices (see
/// [`Cluster::lose_log_suffix`]). Only while no other node is recovering
/// from such a loss: a recovering node abstains from votes, and a cluster
/// with a majority abstaining waits for ever (rightly: a committed entry
/// may be on no one else). Returns the node and the first index lost.
pub fn lose_random_log_suffix(cluster: &mut Cluster) -> Option<(NodeId, LogIndex)> {
    let ids = cluster.ids().to_vec();
    let someone_recovering = ids.iter().any(|&id| {
        cluster.storage(id).hard_state.log_lost_at_term.is_some()
            || cluster.node(id).is_some_and(|node| node.is_recovering())
    });
    if someone_recovering {
        return None;
    }
    let crashed: Vec<NodeId> = ids
        .iter()
        .copied()
        .filter(|&id| !cluster.is_running(id) && !cluster.storage(id).entries.is_empty())
        .collect();
    let id = *crashed.choose(cluster.rng())?;
    let entries = &cluster.storage(id).entries;
    let (first, last) = (
        entries[0].index.get(),
        entries[entries.len() - 1].index.get(),
    );
    let from = LogIndex(cluster.rng().gen_range(first..=last));
    cluster.note(format!("-- n{id}'s disk loses its log from {from}"));
    cluster.lose_log_suffix(id, from, true);
    Some((id, from))
}

/// Restarts one crashed node, chosen at random, if any is down; returns it.
pub fn restart_random_crashed(cluster: &mut Cluster) -> Option<NodeId> {
    let crashed: Vec<NodeId> = cluster
        .ids()
        .iter()
        .copied()
        .filter(|&id| !cluster.is_running(id))
        .collect();
    let id = *crashed.choose(cluster.rng())?;
    cluster.note(format!("-- restart n{id}"));
    cluster.restart(id);
    Some(id)
}

/// One step of a chaotic run: now and then a random fault (1% of steps)
/// or a crashed node back (0.5%), then the cluster's next event; when
/// everyone crashed and nothing is in flight, one node comes back.
pub fn chaos_step(cluster: &mut Cluster) {
    if cluster.rng().gen_bool(0.01) {
        inject_random_fault(cluster);
    }
    // Crashed nodes come back after a random downtime.
    if cluster.rng().gen_bool(0.005) {
        restart_random_crashed(cluster);
    }
    if !cluster.step() {
        restart_random_crashed(cluster);
    }
}

/// The running nodes that believe they lead, in id order: during a
/// partition, a deposed leader may still be among them.
pub fn believed_leaders(cluster: &Cluster) -> Vec<NodeId> {
    cluster
        .ids()
        .iter()
        .copied()
        .filter(|&id| {
            cluster
                .node(id)
                .is_some_and(|node| node.role() == Role::Leader)
        })
        .collect()
}

/// Ends all faults: heals the network, makes it reliable, stops crashes
/// during outputs and restarts every crashed node.
pub fn end_faults(cluster: &mut Cluster) {
    cluster.heal();
    cluster.set_network(NetworkConfig::reliable());
    cluster.set_crash_during_outputs_probability(0.0);
    for id in cluster.ids().to_vec() {
        cluster.restart(id);
    }
}

/// Whether the cluster is settled: one node leads the highest term, and
/// every member of its configuration runs, is in that term and knows that
/// leader. Nodes outside the configuration (spares never added, members
/// removed) are not asked.
pub fn has_stable_leader(cluster: &Cluster) -> Option<NodeId> {
    let leader = believed_leaders(cluster)
        .into_iter()
        .max_by_key(|&id| cluster.node(id).map(|node| node.term()))?;
    let node = cluster.node(leader)?;
    let term = node.term();
    let members = node.membership().members();
    members
        .iter()
        .all(|&id| {
            cluster
                .node(id)
                .is_some_and(|member| member.term() == term && member.leader() == Some(leader))
        })
        .then_some(leader)
}

/// Runs until the cluster has a stable leader or `limit` passes; returns
/// how long it took.
pub fn time_to_stable_leader(cluster: &mut Cluster, limit: Duration) -> Option<Duration> {
    let start = cluster.now();
    cluster
        .run_until_condition(limit, |cluster| has_stable_leader(cluster).is_some())
        .then(|| cluster.now().saturating_duration_since(start))
}

/// A write a leader accepted for a client: (proposer, index, term,
/// command).
pub type Proposal = (NodeId, LogIndex, Term, Vec<u8>);

/// Moves the pending proposals that their proposer has applied (at the
/// index and term it promised), among the applies the cluster recorded, to
/// `acknowledged`, as a server would answer its client.
pub fn acknowledge(
    cluster: &Cluster,
    pending: &mut Vec<Proposal>,
    acknowledged: &mut Vec<Proposal>,
) {
    for applied in cluster.applied() {
        if let Some(position) = pending.iter().position(|(proposer, index, term, _)| {
            *proposer == applied.node
                && *index == applied.entry.index
                && *term == applied.entry.term
        }) {
            acknowledged.push(pending.swap_remove(position));
        }
    }
}

/// Fails the run unless every write in `acknowledged` is in `leader`'s
/// log, or under its snapshot (checked against the history every state
/// machine agrees on).
pub fn check_acknowledged_kept(cluster: &Cluster, leader: NodeId, acknowledged: &[Proposal]) {
    let node = cluster.node(leader).expect("the leader runs");
    let log = node.entries();
    let compacted = node.snapshot_index();
    let history = cluster.checker().applied_history();
    for (proposer, index, term, command) in acknowledged {
        let held = if *index <= compacted {
            history.get((index.get() - 1) as usize)
        } else {
            log.iter().find(|entry| entry.index == *index)
        };
        let kept = held.is_some_and(|entry| entry.term == *term && entry.data == *command);
        cluster.check(
            kept,
            format!("entry {index}@t{term} acknowledged to a client of n{proposer} is not in leader n{leader}'s log"),
        );
    }
}

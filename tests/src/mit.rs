//! The harness of MIT 6.824 (2022) Lab 2, on the simulator: its config and
//! its `checkOneLeader`, `checkTerms` and `checkNoLeader`, with the lab's
//! constants, in virtual time.
//!
//! The lab's servers are numbered from 0; ours are ids `1..=n`.

use std::collections::BTreeMap;
use std::time::Duration;

use kontiki::{Config, NodeId, Role, Term};
use rand_08::Rng;

use crate::sim::{Cluster, ClusterConfig, NetworkConfig};

/// The lab's `RaftElectionTimeout`: the unit its tests sleep in.
pub const ELECTION_TIMEOUT_UNIT: Duration = Duration::from_millis(1000);

/// The node config used for the lab's suites: the lab allows at most ten
/// heartbeats per second and wants a new leader within five seconds.
pub fn lab_node_config() -> Config {
    Config {
        election_timeout_min: Duration::from_millis(300),
        election_timeout_max: Duration::from_millis(600),
        heartbeat_interval: Duration::from_millis(100),
        ..Config::default()
    }
}

/// The lab's `make_config(t, servers, unreliable, ...)`.
pub fn lab_cluster(seed: u64, servers: usize, unreliable: bool) -> Cluster {
    lab_cluster_with(seed, servers, unreliable, lab_node_config())
}

/// [`lab_cluster`] with another node config.
pub fn lab_cluster_with(seed: u64, servers: usize, unreliable: bool, node: Config) -> Cluster {
    let config = ClusterConfig {
        node,
        network: if unreliable {
            NetworkConfig::unreliable()
        } else {
            NetworkConfig::reliable()
        },
        ..ClusterConfig::new(servers)
    };
    Cluster::new(seed, config)
}

/// Whether node `id` counts as connected in the lab's sense: running and
/// not disconnected.
pub fn is_connected(cluster: &Cluster, id: NodeId) -> bool {
    cluster.is_running(id) && !cluster.is_isolated(id)
}

/// The lab's `checkOneLeader`: up to ten polls 450–550 ms apart; fails if
/// two connected nodes lead the same term, or if no leader appears.
/// Returns the leader of the latest term that has one.
pub fn check_one_leader(cluster: &mut Cluster) -> NodeId {
    for _ in 0..10 {
        let pause = Duration::from_millis(450 + cluster.rng().gen_range(0..100));
        cluster.run_for(pause);
        let mut leaders: BTreeMap<Term, Vec<NodeId>> = BTreeMap::new();
        for &id in cluster.ids() {
            if !is_connected(cluster, id) {
                continue;
            }
            let node = cluster.node(id).expect("connected nodes run");
            if node.role() == Role::Leader {
                leaders.entry(node.term()).or_default().push(id);
            }
        }
        for (term, ids) in &leaders {
            if ids.len() > 1 {
                cluster.fail(format!(
                    "term {term} has {} (>1) leaders: {ids:?}",
                    ids.len()
                ));
            }
        }
        if let Some((_, ids)) = leaders.last_key_value() {
            return ids[0];
        }
    }
    cluster.fail("expected one leader, got none")
}

/// The lab's `checkTerms`: every connected node is in the same term.
pub fn check_terms(cluster: &Cluster) -> Term {
    let mut agreed = None;
    for &id in cluster.ids() {
        if !is_connected(cluster, id) {
            continue;
        }
        let term = cluster.node(id).expect("connected nodes run").term();
        match agreed {
            None => agreed = Some(term),
            Some(other) if other != term => cluster.fail("servers disagree on term"),
            Some(_) => {}
        }
    }
    agreed.unwrap_or_else(|| cluster.fail("no connected server to ask for its term"))
}

/// The lab's `checkNoLeader`: no connected node thinks it is leader.
pub fn check_no_leader(cluster: &Cluster) {
    for &id in cluster.ids() {
        if is_connected(cluster, id)
            && cluster
                .node(id)
                .is_some_and(|node| node.role() == Role::Leader)
        {
            cluster.fail(format!(
                "expected no leader among connected servers, but n{id} claims to be leader"
            ));
        }
    }
}

/// The lab's `nCommitted(index)`: how many nodes have applied `index`
/// (the simulator's checker already guarantees they applied the same
/// entry), and that entry's command.
pub fn n_committed(cluster: &Cluster, index: kontiki::LogIndex) -> (usize, Option<Vec<u8>>) {
    let count = cluster
        .ids()
        .iter()
        .filter(|&&id| {
            cluster
                .node(id)
                .is_some_and(|node| node.applied_index() >= index)
        })
        .count();
    let command = cluster
        .checker()
        .applied_history()
        .get((index.get().max(1) - 1) as usize)
        .filter(|_| index.get() >= 1)
        .map(|entry| entry.data.to_vec());
    (count, command)
}

/// The lab's `one(cmd, expectedServers, retry)`: submit `command` to a
/// connected leader and wait until `expected` nodes have applied it, for up
/// to ten seconds (resubmitting with `retry`). Returns its index.
pub fn one(
    cluster: &mut Cluster,
    command: Vec<u8>,
    expected: usize,
    retry: bool,
) -> kontiki::LogIndex {
    let deadline = cluster.now() + Duration::from_secs(10);
    let mut starts = 0;
    while cluster.now() < deadline {
        // Try every connected node, as the lab does, until one leads.
        let mut submitted = None;
        for id in cluster.ids().to_vec() {
            if is_connected(cluster, id) {
                if let Ok((index, _)) = cluster.propose(id, command.clone()) {
                    submitted = Some(index);
                    break;
                }
            }
        }
        if let Some(index) = submitted {
            starts += 1;
            // Somebody claimed to be the leader and to have submitted the
            // command; wait a while for agreement.
            let agreed = cluster.run_until_condition(Duration::from_secs(2), |cluster| {
                let (count, applied) = n_committed(cluster, index);
                count >= expected && applied.as_deref() == Some(&command[..])
            });
            if agreed {
                return index;
            }
            if !retry {
                cluster.fail(format!("one({command:?}) failed to reach agreement"));
            }
        } else {
            cluster.run_for(Duration::from_millis(50));
        }
    }
    cluster.fail(format!(
        "one({command:?}) failed to reach agreement after {starts} submissions"
    ))
}

/// The lab's `wait(index, n, startTerm)`: runs until `n` nodes have
/// applied `index` (up to ten seconds), and returns its command. Returns
/// `None` early if some node moved past `start_term` (the caller retries).
pub fn wait(
    cluster: &mut Cluster,
    index: kontiki::LogIndex,
    n: usize,
    start_term: Option<Term>,
) -> Option<Vec<u8>> {
    let mut term_moved = false;
    cluster.run_until_condition(Duration::from_secs(10), |cluster| {
        if n_committed(cluster, index).0 >= n {
            return true;
        }
        if let Some(start_term) = start_term {
            term_moved = cluster.ids().iter().any(|&id| {
                cluster
                    .node(id)
                    .is_some_and(|node| node.term() > start_term)
            });
        }
        term_moved
    });
    let (count, command) = n_committed(cluster, index);
    if count >= n {
        return command;
    }
    if term_moved {
        return None;
    }
    cluster.fail(format!(
        "only {count} decided for index {index}; wanted {n}"
    ))
}

/// The lab's `start1(i)` on a running or crashed node: crash it (if
/// running) and start it again from what it persisted.
pub fn start1(cluster: &mut Cluster, id: NodeId) {
    cluster.crash(id);
    cluster.restart(id);
}

/// A command as the lab writes them: an integer.
pub fn int_command(value: u64) -> Vec<u8> {
    value.to_be_bytes().to_vec()
}

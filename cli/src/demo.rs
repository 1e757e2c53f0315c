//! `kontiki demo`: a local cluster over loopback TCP in one process, with
//! durable stores in a temporary directory. A client writes the whole
//! time; every few seconds the leader is stopped and brought back a little
//! later; halfway, a follower is replaced by a new node (as after a disk
//! failure) without stopping the writes. A live view shows each node; the
//! summary gives elections, failover times, the replacement and the check
//! that every acknowledged write is in every node's final log.

mod cluster;
mod options;
mod view;

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kontiki::{NodeId, Role};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use cluster::{DemoCluster, Writer};
pub use options::{DemoOptions, DemoRuntime};
use view::View;

/// How long a stopped leader stays down.
const DOWN_FOR: Duration = Duration::from_millis(1500);
/// Stop the leader every 3–6 s (seeded).
const KILL_EVERY: (u64, u64) = (3000, 6000);
/// How often the view refreshes on a terminal.
const REFRESH: Duration = Duration::from_millis(200);

/// Runs the demo; `Ok(false)` when the final check failed.
pub fn run(options: DemoOptions) -> Result<bool, String> {
    if !(1..=9).contains(&options.nodes) {
        return Err(format!("--nodes must be 1 to 9, not {}", options.nodes));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut cluster = DemoCluster::start(&options)?;
    let live = std::io::stdout().is_terminal();
    let mut view = View::new(live, &options);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = Writer::spawn(cluster.handles(), Arc::clone(&stop));

    let started = Instant::now();
    let deadline = started + options.duration;
    let mut next_kill =
        started + Duration::from_millis(rng.random_range(KILL_EVERY.0..=KILL_EVERY.1));
    let mut down: Option<(NodeId, Instant)> = None;
    // A kill waiting for a new leader: when, and the term it happened in.
    let mut failover: Option<(Instant, kontiki::Term)> = None;
    let mut failovers = Vec::new();
    let mut terms_with_leader = BTreeSet::new();
    let mut last_refresh = started - REFRESH;
    let mut replacement = None;
    while Instant::now() < deadline {
        let statuses = cluster.statuses();
        for status in statuses.iter().filter_map(|(_, status)| status.as_ref()) {
            if status.role == Role::Leader {
                if terms_with_leader.insert(status.term) {
                    view.event(format!("node {} leads term {}", status.id, status.term));
                }
                if let Some((at, term)) = failover {
                    if status.term > term {
                        failovers.push(at.elapsed());
                        failover = None;
                    }
                }
            }
        }
        let now = Instant::now();
        let leader = statuses
            .iter()
            .filter_map(|(_, status)| status.as_ref())
            .find(|status| status.role == Role::Leader)
            .map(|status| (status.id, status.term));
        // Halfway, with every node up and a leader, a follower's disk
        // "dies" and a new node takes its place, while the writes go on.
        if replacement.is_none()
            && options.nodes >= 3
            && down.is_none()
            && now >= started + options.duration / 2
        {
            let follower = statuses
                .iter()
                .find(|(id, status)| {
                    status.is_some() && leader.is_some_and(|(leader, _)| leader != *id)
                })
                .map(|(id, _)| *id);
            if let Some(old) = follower {
                view.event(format!(
                    "node {old} lost its disk: a new node joins to replace it"
                ));
                let (new, caught_up) = cluster.replace(old)?;
                view.event(format!(
                    "node {new} added as a learner, promoted after {} ms of catching up; node {old} removed",
                    caught_up.as_millis()
                ));
                replacement = Some((old, new, caught_up));
                continue;
            }
        }
        if down.is_none() && failover.is_none() && now >= next_kill {
            // With no leader right now (an election is under way), the
            // stop waits for the next one rather than for a whole interval.
            if let Some((id, term)) = leader {
                cluster.stop(id);
                view.event(format!("stopped node {id}, the leader of term {term}"));
                failover = Some((Instant::now(), term));
                down = Some((id, Instant::now()));
                next_kill =
                    now + Duration::from_millis(rng.random_range(KILL_EVERY.0..=KILL_EVERY.1));
            }
        }
        if let Some((id, since)) = down {
            if since.elapsed() >= DOWN_FOR {
                cluster.restart(id)?;
                view.event(format!("restarted node {id}"));
                down = None;
            }
        }
        if now.duration_since(last_refresh) >= REFRESH {
            view.refresh(&statuses, &cluster, writer.acknowledged_count());
            last_refresh = now;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let acknowledged = writer.finish();
    if let Some((id, _)) = down {
        cluster.restart(id)?;
    }
    let check = cluster.check_every_node_holds(&acknowledged, Duration::from_secs(10));
    view.summary(&view::Summary {
        elapsed: started.elapsed(),
        elections: terms_with_leader.len(),
        failovers,
        acknowledged: acknowledged.len(),
        check: check.clone(),
        replacement,
    });
    cluster.shutdown();
    Ok(check.is_ok())
}

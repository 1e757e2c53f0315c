//! The randomized soak: every fault type at once (damaged disks too), for
//! many seeds, with all invariants checked after every event; then faults
//! stop and the cluster must settle on one leader within a stated bound.

use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};

use kontiki::NodeId;
use kontiki_tests::chaos::{
    acknowledge, believed_leaders, chaos_step, check_acknowledged_kept, end_faults,
    has_stable_leader, lose_random_log_suffix, time_to_stable_leader, Proposal,
};
use kontiki_tests::seeds::seeds_with_regressions;
use kontiki_tests::sim::{Cluster, ClusterConfig, NetworkConfig};
use rand_08::Rng;

/// Steps of chaos per seed.
const STEPS: u64 = 10_000;

/// After faults end, a leader known to every node must appear within this
/// much virtual time. Reasoning, with the default timeouts (150–300 ms,
/// heartbeat 50 ms): a leader left over from a partition steps down within
/// one check-quorum window (150 ms + 50 ms), followers' leases lapse after
/// 150 ms, and each election round takes at most 300 ms plus network
/// delay; two seconds leave room for several split votes in a row.
const SETTLE_BOUND: Duration = Duration::from_secs(2);

fn soak(seed: u64) -> Duration {
    // 3, 4 and 5 nodes.
    let nodes = 3 + (seed % 3) as usize;
    // Half of the seeds snapshot every 4 to 15 applied entries and keep 0
    // to 3 entries behind each snapshot, so that logs are compacted all
    // the time and nodes back from a crash or a partition often need the
    // leader's snapshot.
    let snapshots = (seed >> 2) & 1 == 1;
    let config = ClusterConfig {
        // A quarter of the seeds each: instant or 1 ms disk writes (with
        // the node handling inputs while its outputs wait behind a write),
        // and leaders that persist before sending or in parallel with
        // their followers.
        node: kontiki::Config {
            leader_persists_in_parallel: seed % 2 == 1,
            // Half of the seeds: every node's log writes run in the
            // background, reported when done (asynchronous writes).
            asynchronous_writes: (seed >> 6) & 1 == 1,
            compaction_lag: (seed >> 3) % 4,
            ..kontiki::Config::default()
        },
        write_latency: (seed % 4 >= 2).then_some(Duration::from_millis(1)),
        snapshot_interval: snapshots.then_some(4 + (seed >> 3) % 12),
        network: NetworkConfig::chaotic(),
        crash_during_outputs_probability: 0.002,
        // Half of the seeds report messages a cut link could not carry,
        // as a driver on TCP does.
        report_unreachable: (seed >> 5) & 1 == 1,
        // Half of the seeds: a crash tears the write in flight (with 1 ms
        // writes), landing a random part of it.
        tear_writes_at_crash: (seed >> 8) & 1 == 1,
        ..ClusterConfig::new(nodes)
    };
    // Half of the seeds: now and then a crashed node's disk loses a
    // random suffix of its log, which its store notices.
    let disk_faults = (seed >> 7) & 1 == 1;
    let mut cluster = Cluster::new(seed, config);
    let mut pending: Vec<Proposal> = Vec::new();
    let mut acknowledged: Vec<Proposal> = Vec::new();
    let mut proposals = 0u64;
    while cluster.steps() < STEPS {
        if cluster.rng().gen_bool(0.02) {
            // Clients write to whichever node they think leads; most land
            // on a follower or a crashed node and are refused. Sometimes
            // several writes arrive before the node's outputs are
            // performed, and travel together.
            let id = NodeId(cluster.rng().gen_range(1..=nodes as u64));
            let batch: Vec<Vec<u8>> = (0..cluster.rng().gen_range(1..=3))
                .map(|_| {
                    proposals += 1;
                    format!("s{seed}-p{proposals}").into_bytes()
                })
                .collect();
            let results = cluster.propose_batch(id, batch.clone());
            for (command, result) in batch.into_iter().zip(results) {
                if let Ok((index, term)) = result {
                    pending.push((id, index, term, command));
                }
            }
        }
        if cluster.rng().gen_bool(0.02) {
            // Linearizable reads, to a node that believes it leads: during
            // a partition that may be a deposed leader, which must not
            // serve them. The checker holds every read served to the
            // writes committed anywhere before it arrived.
            let leaders = believed_leaders(&cluster);
            if !leaders.is_empty() {
                let id = leaders[cluster.rng().gen_range(0..leaders.len())];
                let _ = cluster.read(id);
            }
        }
        if disk_faults
            && cluster.rng().gen_bool(0.002)
            && lose_random_log_suffix(&mut cluster).is_some()
        {
            LOGS_DAMAGED.fetch_add(1, Ordering::Relaxed);
        }
        acknowledge(&cluster, &mut pending, &mut acknowledged);
        cluster.clear_applied();
        chaos_step(&mut cluster);
    }
    acknowledge(&cluster, &mut pending, &mut acknowledged);
    end_faults(&mut cluster);
    let Some(took) = time_to_stable_leader(&mut cluster, SETTLE_BOUND) else {
        cluster.fail(format!(
            "no stable leader within {SETTLE_BOUND:?} after faults ended"
        ));
    };
    // Every write acknowledged as committed is in the final leader's log,
    // or under its snapshot.
    let leader = has_stable_leader(&cluster).expect("settled");
    check_acknowledged_kept(&cluster, leader, &acknowledged);
    ACKNOWLEDGED.fetch_add(acknowledged.len() as u64, Ordering::Relaxed);
    READS_SERVED.fetch_add(cluster.checker().read_outcomes().0, Ordering::Relaxed);
    SNAPSHOTS_SENT.fetch_add(cluster.total_traffic().snapshots, Ordering::Relaxed);
    took
}

/// Writes acknowledged over all seeds, for the summary line.
static ACKNOWLEDGED: AtomicU64 = AtomicU64::new(0);
/// Linearizable reads served over all seeds, for the summary line.
static READS_SERVED: AtomicU64 = AtomicU64::new(0);
/// InstallSnapshot messages sent over all seeds, for the summary line.
static SNAPSHOTS_SENT: AtomicU64 = AtomicU64::new(0);
/// Stored logs that lost a suffix over all seeds, for the summary line.
static LOGS_DAMAGED: AtomicU64 = AtomicU64::new(0);

/// Seeds beyond the default count that once failed, replayed in every
/// run: 4259 (a follower's acknowledgement arrived after its disk had
/// lost the entry; the commit was safe, the checker's count of holders
/// too strict — see `disk_faults.rs`).
const FOUND_BY_LONGER_RUNS: [u64; 1] = [4259];

#[test]
fn randomized_soak_keeps_every_invariant_and_settles_on_a_leader() {
    let mut worst = Duration::ZERO;
    let mut total = Duration::ZERO;
    let seeds = seeds_with_regressions(2_000, &FOUND_BY_LONGER_RUNS);
    for &seed in &seeds {
        let took = soak(seed);
        worst = worst.max(took);
        total += took;
    }
    println!(
        "soak: {} seeds x {STEPS} steps, {} writes acknowledged and kept, {} linearizable reads served, {} snapshots sent, {} stored logs damaged, settle time mean {:?}, worst {worst:?} (bound {SETTLE_BOUND:?})",
        seeds.len(),
        ACKNOWLEDGED.load(Ordering::Relaxed),
        READS_SERVED.load(Ordering::Relaxed),
        SNAPSHOTS_SENT.load(Ordering::Relaxed),
        LOGS_DAMAGED.load(Ordering::Relaxed),
        total / seeds.len().max(1) as u32
    );
}

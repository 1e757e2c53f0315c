//! The randomized soak: every fault type at once, for many seeds, with all
//! invariants checked after every event; then faults stop and the cluster
//! must settle on one leader within a stated bound.

use std::time::Duration;

use kontiki_tests::chaos::{
    end_faults, inject_random_fault, restart_random_crashed, time_to_stable_leader,
};
use kontiki_tests::seeds::seeds;
use kontiki_tests::sim::{Cluster, ClusterConfig, NetworkConfig};
use rand::Rng;

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
    let nodes = 3 + (seed % 3) as usize; // 3, 4 and 5 nodes
    let config = ClusterConfig {
        network: NetworkConfig::chaotic(),
        crash_during_outputs_probability: 0.002,
        ..ClusterConfig::new(nodes)
    };
    let mut cluster = Cluster::new(seed, config);
    while cluster.steps() < STEPS {
        if cluster.rng().gen_bool(0.01) {
            inject_random_fault(&mut cluster);
        }
        // Crashed nodes come back after a random downtime.
        if cluster.rng().gen_bool(0.005) {
            restart_random_crashed(&mut cluster);
        }
        if !cluster.step() {
            // Everyone crashed and nothing is in flight: bring one back.
            restart_random_crashed(&mut cluster);
        }
    }
    end_faults(&mut cluster);
    match time_to_stable_leader(&mut cluster, SETTLE_BOUND) {
        Some(took) => took,
        None => cluster.fail(format!(
            "no stable leader within {SETTLE_BOUND:?} after faults ended"
        )),
    }
}

#[test]
fn randomized_soak_keeps_every_invariant_and_settles_on_a_leader() {
    let mut worst = Duration::ZERO;
    let mut total = Duration::ZERO;
    let seeds = seeds(2_000);
    for &seed in &seeds {
        let took = soak(seed);
        worst = worst.max(took);
        total += took;
    }
    println!(
        "soak: {} seeds x {STEPS} steps, settle time mean {:?}, worst {worst:?} (bound {SETTLE_BOUND:?})",
        seeds.len(),
        total / seeds.len().max(1) as u32
    );
}

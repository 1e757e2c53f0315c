//! `demo`: a five-node kontiki cluster in the deterministic simulator,
//! with faults injected on a schedule. Prints a timeline of elections and
//! faults, then election statistics. Every invariant is checked after
//! every event; the same seed prints the same run.
//!
//! Usage: demo [--seed N] [--seconds S] [--nodes N] [--verbose]

use std::process::ExitCode;
use std::time::Duration;

use kontiki::{Instant, NodeId, Role};
use std::collections::BTreeMap;

use kontiki_tests::chaos::believed_leaders;
use kontiki_tests::sim::{Cluster, ClusterConfig, NetworkConfig};
use rand_08::seq::SliceRandom;
use rand_08::Rng;

struct Options {
    seed: u64,
    seconds: u64,
    nodes: usize,
    verbose: bool,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        seed: 42,
        seconds: 30,
        nodes: 5,
        verbose: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            let value = args.next().ok_or(format!("{name} needs a value"))?;
            value
                .parse()
                .map_err(|_| format!("{name} needs a non-negative integer, got {value:?}"))
        };
        match arg.as_str() {
            "--seed" => options.seed = number("--seed")?,
            "--seconds" => options.seconds = number("--seconds")?,
            "--nodes" => options.nodes = number("--nodes")? as usize,
            "--verbose" => options.verbose = true,
            "--help" | "-h" => {
                println!(
                    "demo [--seed N] [--seconds S] [--nodes N] [--verbose]\n\n\
                     Runs a simulated kontiki cluster (default: 5 nodes, 30 s of virtual time,\n\
                     seed 42) on a lossy network, injects faults, and prints the elections.\n\
                     --verbose also prints every message."
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if !(1..=9).contains(&options.nodes) {
        return Err("--nodes must be between 1 and 9".into());
    }
    Ok(options)
}

/// A fault the demo injects, and undoes a little later.
#[derive(Clone, Debug)]
enum Fault {
    CrashLeader(NodeId),
    IsolateLeader(NodeId),
    MinorityPartition(Vec<NodeId>, Vec<NodeId>),
    OneWayCut(NodeId, NodeId),
    CrashFollower(NodeId),
}

impl Fault {
    fn describe(&self) -> String {
        match self {
            Fault::CrashLeader(id) => format!("crash the leader n{id}"),
            Fault::IsolateLeader(id) => format!("isolate the leader n{id} from everyone"),
            Fault::MinorityPartition(minority, majority) => format!(
                "partition: leader side {} | {}",
                ids(minority),
                ids(majority)
            ),
            Fault::OneWayCut(from, to) => format!("cut the link n{from} -> n{to} (one way only)"),
            Fault::CrashFollower(id) => format!("crash follower n{id}"),
        }
    }

    /// Whether the fault takes the current leader away from the majority.
    fn removes_leader(&self) -> bool {
        matches!(
            self,
            Fault::CrashLeader(_) | Fault::IsolateLeader(_) | Fault::MinorityPartition(..)
        )
    }
}

fn ids(list: &[NodeId]) -> String {
    list.iter()
        .map(|id| format!("n{id}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn current_leader(cluster: &Cluster) -> Option<NodeId> {
    believed_leaders(cluster)
        .into_iter()
        .max_by_key(|&id| cluster.node(id).map(|node| node.term()))
}

fn choose_fault(cluster: &mut Cluster) -> Option<Fault> {
    let leader = current_leader(cluster)?;
    let followers: Vec<NodeId> = cluster
        .ids()
        .iter()
        .copied()
        .filter(|&id| id != leader)
        .collect();
    let follower = *followers.choose(cluster.rng())?;
    Some(match cluster.rng().gen_range(0..5) {
        0 => Fault::CrashLeader(leader),
        1 => Fault::IsolateLeader(leader),
        2 => {
            let mut shuffled = followers.clone();
            shuffled.shuffle(cluster.rng());
            let minority_size = cluster.ids().len().saturating_sub(1) / 2;
            let mut minority = vec![leader];
            minority.extend(shuffled.iter().take(minority_size.saturating_sub(1)));
            let majority = shuffled
                .into_iter()
                .filter(|id| !minority.contains(id))
                .collect();
            Fault::MinorityPartition(minority, majority)
        }
        3 => Fault::OneWayCut(leader, follower),
        _ => Fault::CrashFollower(follower),
    })
}

fn inject(cluster: &mut Cluster, fault: &Fault) {
    match fault {
        Fault::CrashLeader(id) | Fault::CrashFollower(id) => cluster.crash(*id),
        Fault::IsolateLeader(id) => cluster.isolate(*id),
        Fault::MinorityPartition(minority, majority) => {
            cluster.partition(&[minority.clone(), majority.clone()])
        }
        Fault::OneWayCut(from, to) => cluster.cut_link(*from, *to),
    }
}

fn repair(cluster: &mut Cluster, fault: &Fault) -> String {
    match fault {
        Fault::CrashLeader(id) | Fault::CrashFollower(id) => {
            cluster.restart(*id);
            format!("restart n{id} from its persisted state")
        }
        _ => {
            cluster.heal();
            "heal the network".to_string()
        }
    }
}

fn at(time: Instant) -> String {
    format!("[{:>8.3}s]", time.as_micros() as f64 / 1e6)
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted[rank]
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("demo: {message}");
            return ExitCode::from(2);
        }
    };
    let config = ClusterConfig {
        network: NetworkConfig {
            loss_probability: 0.02,
            duplicate_probability: 0.01,
            ..NetworkConfig::unreliable()
        },
        ..ClusterConfig::new(options.nodes)
    };
    let node_config = config.node.clone();
    println!(
        "kontiki simulator demo: {} nodes, seed {}, {} s of virtual time",
        options.nodes, options.seed, options.seconds
    );
    println!(
        "election timeout {:?}..{:?}, heartbeat {:?}, pre-vote {}, check-quorum {}; \
         network: 0-27 ms delay, 2% loss, 1% duplicates\n",
        node_config.election_timeout_min,
        node_config.election_timeout_max,
        node_config.heartbeat_interval,
        node_config.pre_vote,
        node_config.check_quorum
    );

    let mut cluster = Cluster::new(options.seed, config);
    let end = Instant::ZERO + Duration::from_secs(options.seconds);
    let mut next_fault_at = Instant::from_millis(2_000);
    let mut active_fault: Option<(Fault, Instant)> = None;
    let mut leader_lost_at: Option<Instant> = Some(Instant::ZERO);
    let mut failovers: Vec<Duration> = Vec::new();
    let mut first_election: Option<Duration> = None;
    let mut seen_role_changes = 0;
    let mut last_role: BTreeMap<NodeId, Role> = BTreeMap::new();
    let mut faults = 0;

    while cluster.now() < end {
        // Inject or repair a fault when its time comes.
        if let Some((fault, repair_at)) = active_fault.clone() {
            if cluster.now() >= repair_at {
                let what = repair(&mut cluster, &fault);
                println!("{} ~~ {what}", at(cluster.now()));
                active_fault = None;
                next_fault_at =
                    cluster.now() + Duration::from_millis(cluster.rng().gen_range(1_000..2_500));
            }
        } else if cluster.now() >= next_fault_at {
            if let Some(fault) = choose_fault(&mut cluster) {
                println!("{} !! {}", at(cluster.now()), fault.describe());
                inject(&mut cluster, &fault);
                faults += 1;
                if fault.removes_leader() {
                    leader_lost_at = Some(cluster.now());
                }
                let repair_at =
                    cluster.now() + Duration::from_millis(cluster.rng().gen_range(1_500..3_000));
                active_fault = Some((fault, repair_at));
            } else {
                next_fault_at = cluster.now() + Duration::from_millis(500);
            }
        }

        let steps_before = cluster.steps();
        cluster.run_for(Duration::from_millis(1));
        if options.verbose && cluster.steps() > steps_before {
            for (time, event) in cluster.trace().events() {
                if *time + Duration::from_millis(1) > cluster.now() {
                    println!("{}      {event}", at(*time));
                }
            }
        }

        // Report role changes as they happen.
        let changes = cluster.role_changes()[seen_role_changes..].to_vec();
        seen_role_changes = cluster.role_changes().len();
        for change in changes {
            let previous = last_role.insert(change.node, change.role);
            match change.role {
                Role::Leader => {
                    let mut line = format!(
                        "{} n{} elected leader of term {}",
                        at(change.at),
                        change.node,
                        change.term
                    );
                    if let Some(lost_at) = leader_lost_at.take() {
                        let took = change.at.saturating_duration_since(lost_at);
                        if first_election.is_none() {
                            first_election = Some(took);
                            line += &format!(" (first election: {} ms)", took.as_millis());
                        } else {
                            failovers.push(took);
                            line += &format!(" (failover: {} ms)", took.as_millis());
                        }
                    }
                    println!("{line}");
                }
                Role::Follower if previous == Some(Role::Leader) => {
                    println!(
                        "{} n{} steps down in term {} (lost contact with a majority)",
                        at(change.at),
                        change.node,
                        change.term
                    );
                }
                _ => {}
            }
        }
    }

    // Statistics.
    let stats = cluster
        .ids()
        .iter()
        .filter_map(|&id| cluster.node(id).map(|node| node.stats()))
        .fold((0, 0, 0), |(pre, real, ignored), s| {
            (
                pre + s.pre_votes_started,
                real + s.elections_started,
                ignored + s.vote_requests_ignored,
            )
        });
    let leaders = cluster.checker().leaders();
    let traffic = cluster.total_traffic();
    let mut sorted = failovers.clone();
    sorted.sort();
    let restarted_nodes_note = " (counters of running nodes; a crash resets a node's counters)";
    println!(
        "\n== summary after {} s of virtual time, {} events ==",
        options.seconds,
        cluster.steps()
    );
    println!("faults injected:            {faults}");
    println!(
        "terms with a leader:        {} (highest term {})",
        leaders.len(),
        leaders.keys().max().map_or(0, |t| t.get())
    );
    if let Some(first) = first_election {
        println!("first election:             {} ms", first.as_millis());
    }
    println!(
        "failovers:                  {} — p50 {} ms, p99 {} ms, max {} ms",
        sorted.len(),
        percentile(&sorted, 0.5).as_millis(),
        percentile(&sorted, 0.99).as_millis(),
        sorted.last().copied().unwrap_or_default().as_millis()
    );
    println!(
        "pre-vote rounds / elections: {} / {}{restarted_nodes_note}",
        stats.0, stats.1
    );
    println!(
        "vote requests ignored:      {} (leader stickiness)",
        stats.2
    );
    println!(
        "messages sent:              {} ({} requests, {} bytes on the wire)",
        traffic.messages, traffic.requests, traffic.bytes
    );
    println!(
        "invariants:                 checked after each of {} events — at most one leader per term, \
         terms never decrease, one vote per term, persist before send: all held",
        cluster.steps()
    );
    println!(
        "replay this run with: cargo run --release -p kontiki-tests --bin demo -- --seed {}",
        options.seed
    );
    ExitCode::SUCCESS
}

//! What the demo shows: on a terminal, a table redrawn in place with the
//! latest events under it; otherwise one plain line per event and a
//! progress line every few seconds. Then the summary.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use kontiki::{NodeId, Role};
use kontiki_driver::{MemberRole, Status};

use super::cluster::DemoCluster;
use super::options::{DemoOptions, DemoRuntime};

/// How many recent events the live view keeps under the table.
const EVENTS_SHOWN: usize = 8;
/// How often the plain log prints a progress line.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The demo's outcome.
pub struct Summary {
    /// How long it ran.
    pub elapsed: Duration,
    /// Terms in which a leader was seen.
    pub elections: usize,
    /// From each leader stop to a new leader.
    pub failovers: Vec<Duration>,
    /// Writes acknowledged.
    pub acknowledged: usize,
    /// Whether every node holds every acknowledged write.
    pub check: Result<(), String>,
    /// The node replaced mid-run: old id, new id, time from its addition
    /// to its promotion.
    pub replacement: Option<(NodeId, NodeId, Duration)>,
}

/// The screen (or log).
pub struct View {
    live: bool,
    started: Instant,
    events: VecDeque<String>,
    last_progress: Instant,
    title: String,
}

fn runtime_name(runtime: DemoRuntime) -> &'static str {
    match runtime {
        DemoRuntime::Tokio => "tokio",
        DemoRuntime::AsyncStd => "async-std",
        DemoRuntime::Smol => "smol",
        DemoRuntime::Mixed => "mixed",
    }
}

/// The node's role, or "learner" for a follower its configuration
/// says is one.
fn role_name(status: &Status) -> &'static str {
    let learner = status
        .members
        .iter()
        .any(|member| member.id == status.id && member.role == MemberRole::Learner);
    if learner && status.role != Role::Leader {
        return "learner";
    }
    match status.role {
        Role::Leader => "leader",
        Role::Candidate => "candidate",
        Role::PreCandidate => "pre-candidate",
        _ => "follower",
    }
}

impl View {
    /// A live view (`live`, on a terminal) or a plain log.
    pub fn new(live: bool, options: &DemoOptions) -> View {
        let title = format!(
            "kontiki demo: {} nodes on {}, loopback TCP{}, durable stores; seed {}, {:?}",
            options.nodes,
            runtime_name(options.runtime),
            if options.tls { " with mutual TLS" } else { "" },
            options.seed,
            options.duration
        );
        if !live {
            println!("{title}");
        }
        View {
            live,
            started: Instant::now(),
            events: VecDeque::new(),
            last_progress: Instant::now(),
            title,
        }
    }

    /// Something happened.
    pub fn event(&mut self, text: String) {
        let line = format!("[{:>6.2}s] {text}", self.started.elapsed().as_secs_f64());
        if self.live {
            self.events.push_back(line);
            if self.events.len() > EVENTS_SHOWN {
                self.events.pop_front();
            }
        } else {
            println!("{line}");
        }
    }

    /// Redraws the table (live) or prints progress now and then (log).
    pub fn refresh(
        &mut self,
        statuses: &[(NodeId, Option<Status>)],
        cluster: &DemoCluster,
        written: usize,
    ) {
        let elapsed = self.started.elapsed().as_secs_f64();
        if !self.live {
            if self.last_progress.elapsed() >= PROGRESS_EVERY {
                self.last_progress = Instant::now();
                let commit = statuses
                    .iter()
                    .filter_map(|(_, status)| status.as_ref())
                    .map(|s| s.commit_index.get())
                    .max()
                    .unwrap_or(0);
                println!("[{elapsed:>6.2}s] {written} writes acknowledged, commit index {commit}");
            }
            return;
        }
        let mut screen = String::new();
        // Home the cursor and clear the screen, then draw.
        screen.push_str("\x1b[H\x1b[2J");
        let _ = writeln!(screen, "{}", self.title);
        let _ = writeln!(screen, "{elapsed:.1} s, {written} writes acknowledged\n");
        let _ = writeln!(
            screen,
            "{:<5} {:<10} {:<14} {:>5} {:>7} {:>9} {:>9} {:>13}",
            "node", "runtime", "role", "term", "leader", "commit", "applied", "last contact"
        );
        for (id, status) in statuses {
            let runtime = runtime_name(cluster.runtime(*id));
            let Some(status) = status else {
                let _ = writeln!(
                    screen,
                    "{:<5} {:<10} {:<14}",
                    id.get(),
                    runtime,
                    "(stopped)"
                );
                continue;
            };
            let leader = status
                .leader
                .map_or("-".to_string(), |leader| leader.get().to_string());
            let contact = match (status.role, status.last_leader_contact) {
                (Role::Leader, _) => "-".to_string(),
                (_, Some(at)) => format!("{} ms ago", at.elapsed().as_millis()),
                (_, None) => "none".to_string(),
            };
            let _ = writeln!(
                screen,
                "{:<5} {:<10} {:<14} {:>5} {:>7} {:>9} {:>9} {:>13}",
                id.get(),
                runtime,
                role_name(status),
                status.term.get(),
                leader,
                status.commit_index.get(),
                status.applied_index.get(),
                contact
            );
        }
        screen.push('\n');
        for event in &self.events {
            let _ = writeln!(screen, "{event}");
        }
        print!("{screen}");
    }

    /// Prints the summary.
    pub fn summary(&self, summary: &Summary) {
        let mut failovers = summary.failovers.clone();
        failovers.sort_unstable();
        let percentile = |p: usize| -> String {
            if failovers.is_empty() {
                return "-".into();
            }
            let rank = (failovers.len() * p).div_ceil(100).max(1) - 1;
            format!("{} ms", failovers[rank].as_millis())
        };
        let seconds = summary.elapsed.as_secs_f64();
        println!();
        println!("summary ({seconds:.1} s)");
        println!("  elections (terms with a leader): {}", summary.elections);
        println!(
            "  leader stops: {}; failover to a new leader: p50 {}, p99 {}, max {}",
            failovers.len(),
            percentile(50),
            percentile(99),
            failovers
                .last()
                .map_or("-".into(), |max| format!("{} ms", max.as_millis()))
        );
        println!(
            "  writes acknowledged: {} ({:.0}/s, one at a time)",
            summary.acknowledged,
            summary.acknowledged as f64 / seconds
        );
        if let Some((old, new, caught_up)) = summary.replacement {
            println!(
                "  node {old} replaced by node {new}: added as a learner, caught up and promoted in {} ms, writes going on",
                caught_up.as_millis()
            );
        }
        match &summary.check {
            Ok(()) => {
                println!("  check: every acknowledged write is in every node's final log: OK")
            }
            Err(problem) => println!("  check: FAILED: {problem}"),
        }
    }
}

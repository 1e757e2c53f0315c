//! Client load for the benchmarks that disturb a running cluster (a node
//! replaced, a disk slowed): writers that follow whichever node leads,
//! and per-window throughput and latency from what they recorded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kontiki_driver::{Handle, Runtime};
use kontiki_tokio::TokioRuntime;

use crate::live::Tally;

/// When each acknowledged write finished, and how long it took.
pub type Samples = Arc<Mutex<Vec<(Instant, Duration)>>>;

/// The running nodes, among which clients look for the leader.
pub type Nodes = Arc<Mutex<Vec<Handle<Tally>>>>;

/// Writes per second and latency percentiles over a window of time.
#[derive(Clone, Copy, Debug, Default)]
pub struct Window {
    /// Writes acknowledged in the window, per second.
    pub writes_per_second: f64,
    /// Median latency of those writes.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

impl Window {
    /// The writes of `samples` acknowledged in `[from, to)`.
    #[must_use]
    pub fn of(samples: &[(Instant, Duration)], from: Instant, to: Instant) -> Window {
        let mut latencies: Vec<Duration> = samples
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, latency)| *latency)
            .collect();
        latencies.sort_unstable();
        let at = |p: usize| {
            latencies
                .get((latencies.len() * p / 100).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Window {
            writes_per_second: latencies.len() as f64 / (to - from).as_secs_f64(),
            p50: at(50),
            p99: at(99),
        }
    }

    /// The median of each figure over several runs' windows.
    #[must_use]
    pub fn median_of(windows: &[Window]) -> Window {
        let mut windows = windows.to_vec();
        Window {
            writes_per_second: median(&mut windows, |w| w.writes_per_second).writes_per_second,
            p50: median(&mut windows, |w| w.p50.as_secs_f64()).p50,
            p99: median(&mut windows, |w| w.p99.as_secs_f64()).p99,
        }
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0}/s ({:.2} / {:.2} ms)",
            self.writes_per_second,
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3
        )
    }
}

/// The median of `values` by `key` (the upper one of an even count).
///
/// # Panics
///
/// If `values` is empty.
pub fn median<T: Copy>(values: &mut [T], key: impl Fn(&T) -> f64) -> T {
    values.sort_by(|a, b| key(a).total_cmp(&key(b)));
    values[values.len() / 2]
}

/// The node that leads now, waiting for one if need be.
pub async fn leader_of(runtime: &TokioRuntime, nodes: &Nodes) -> Handle<Tally> {
    loop {
        let leader = nodes
            .lock()
            .unwrap()
            .iter()
            .find(|node| node.status().role == kontiki::Role::Leader)
            .cloned();
        if let Some(leader) = leader {
            return leader;
        }
        runtime
            .sleep_until(runtime.now() + Duration::from_millis(1))
            .await;
    }
}

/// Clients writing 16-byte commands, each awaiting its own, through
/// whichever node leads, until stopped.
pub struct Writers {
    samples: Samples,
    stop: Arc<AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Writers {
    /// Starts `count` clients on the current tokio runtime.
    #[must_use]
    pub fn start(runtime: &TokioRuntime, nodes: &Nodes, count: usize) -> Writers {
        let samples: Samples = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..count as u64)
            .map(|client| {
                let (nodes, samples, stop) = (nodes.clone(), samples.clone(), stop.clone());
                let runtime = runtime.clone();
                tokio::spawn(async move {
                    let mut sequence = 0u64;
                    let mut leader = leader_of(&runtime, &nodes).await;
                    while !stop.load(Ordering::Relaxed) {
                        sequence += 1;
                        let mut command = client.to_le_bytes().to_vec();
                        command.extend_from_slice(&sequence.to_le_bytes());
                        let sent = Instant::now();
                        if leader.propose(command).await.is_ok() {
                            let done = Instant::now();
                            samples.lock().unwrap().push((done, done - sent));
                        } else {
                            // A leader may lose its place (or stop): find
                            // the next one.
                            leader = leader_of(&runtime, &nodes).await;
                        }
                    }
                })
            })
            .collect();
        Writers {
            samples,
            stop,
            clients,
        }
    }

    /// Writes acknowledged so far.
    #[must_use]
    pub fn count(&self) -> usize {
        self.samples.lock().unwrap().len()
    }

    /// The writes acknowledged in `[from, to)`.
    #[must_use]
    pub fn window(&self, from: Instant, to: Instant) -> Window {
        Window::of(&self.samples.lock().unwrap(), from, to)
    }

    /// Stops every client once its write in flight is answered.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        futures::future::join_all(self.clients).await;
    }
}

/// The number in environment variable `name` (say `KONTIKI_BENCH_RUNS`),
/// or `default` when it is unset or not a number.
#[must_use]
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

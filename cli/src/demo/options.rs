//! The demo's settings.

use std::time::Duration;

use clap::ValueEnum;

/// Which runtime the demo's nodes run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DemoRuntime {
    /// Every node on tokio.
    Tokio,
    /// Every node on async-std.
    AsyncStd,
    /// Every node on smol.
    Smol,
    /// Node 1 on tokio, node 2 on smol, node 3 on async-std, and so on.
    Mixed,
}

/// The demo's settings.
pub struct DemoOptions {
    /// How many nodes.
    pub nodes: usize,
    /// Their runtime.
    pub runtime: DemoRuntime,
    /// How long to run.
    pub duration: Duration,
    /// Seeds the nodes' timeouts and the kill schedule.
    pub seed: u64,
    /// Peer links over mutual TLS, with certificates from a CA made for
    /// the run.
    pub tls: bool,
}

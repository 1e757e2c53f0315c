//! T2 of docs/benchmarks.md: three nodes in one process over loopback TCP (the real
//! wire format, TCP_NODELAY, length-prefixed frames), on each runtime.
//!
//! `cargo bench -p kontiki-tests --bench t2 [-- RUNTIME...]`; see
//! `common/mod.rs` for the workload and its settings.

mod common;

fn main() {
    common::run("T2: 3 nodes over loopback TCP", common::Network::Tcp);
}

//! T1 of docs/benchmarks.md: three nodes in one process on each runtime, connected
//! by in-process channels (`kontiki_driver::LocalNetwork`: the core's
//! messages are handed over without sockets or encoding).
//!
//! `cargo bench -p kontiki-tests --bench t1 [-- RUNTIME...]`; see
//! `common/mod.rs` for the workload and its settings.

mod common;

fn main() {
    common::run("T1: 3 nodes on in-process channels", common::Network::Local);
}

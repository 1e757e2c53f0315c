//! T1 of BENCH.md: three nodes in one process on each runtime, connected
//! in-process (in-memory pipes carrying the real frames and wire format,
//! so the driver's whole path runs but the kernel's network does not).
//!
//! `cargo bench -p kontiki-tests --bench t1 [-- RUNTIME...]`; see
//! `common/mod.rs` for the workload and its settings.

mod common;

fn main() {
    common::run(
        "T1: 3 nodes connected in-process",
        common::Network::InProcess,
    );
}

//! A simulated cluster of real kontiki cores whose every scheduling choice
//! is the fuzzer's (see `kontiki_tests::sim::run_schedule`): which message
//! in flight arrives next, which is lost or duplicated, whose timer fires,
//! who is asked to propose, read or campaign, who crashes (also part-way through
//! performing its outputs) and restarts, how far the clock jumps, and
//! which membership changes and leadership transfers the leader is asked
//! for. The
//! simulator checks Raft's safety invariants after every event — election
//! safety, log matching, leader completeness, state machine safety,
//! persist-before-send — and panics, which the fuzzer reports, on the
//! first violation.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|schedule: &[u8]| {
    let _ = kontiki_tests::sim::run_schedule(schedule);
});

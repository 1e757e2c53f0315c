//! Steady state allocates nothing: once a cluster has a leader, handling a
//! heartbeat on a follower, an append response on the leader, the
//! leader's heartbeat tick, and a round of linearizable reads, touch no
//! heap. Measured with a counting global
//! allocator around exactly those calls (this file is its own test binary,
//! so no other test's allocations are counted).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use kontiki::{
    Command, Handled, Input, Instant, LeadershipCheckResponse, Message, Node, NodeId, Output, Role,
};
use kontiki_tests::probe::{heartbeat, plain_config, Probe};
use rand_chacha::ChaCha8Rng;

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers every operation to the system allocator; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations_during(work: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    work();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn a_follower_handles_heartbeats_without_allocating() {
    let mut probe = Probe::new(3, plain_config());
    probe.receive(2, heartbeat(1, 0, 0)).unwrap(); // warm-up: sizes the output queue
    let node = &mut probe.node;
    let mut now = probe.now;
    let allocations = allocations_during(|| {
        for _ in 0..1_000 {
            now = now + std::time::Duration::from_millis(50);
            node.handle(
                now,
                Input::Message {
                    from: NodeId(2),
                    message: heartbeat(1, 0, 0),
                },
            )
            .unwrap();
            for output in node.drain_outputs() {
                assert!(matches!(
                    output,
                    Output::Send { .. } | Output::SetTimer { .. }
                ));
            }
        }
    });
    assert_eq!(allocations, 0);
}

#[test]
fn a_leader_handles_responses_and_heartbeat_ticks_without_allocating() {
    let mut probe = Probe::new(3, plain_config());
    probe.elect();
    let response = Message::AppendEntriesResponse(kontiki::AppendEntriesResponse {
        term: probe.node.term(),
        success: true,
        index: probe.node.last_log_index(),
        conflict_term: kontiki::Term(0),
    });
    let mut now: Instant = probe.now;
    let node = &mut probe.node;
    // Warm-up round.
    node.handle(now, Input::Timer).unwrap();
    node.drain_outputs().for_each(drop);
    let allocations = allocations_during(|| {
        for _ in 0..1_000 {
            now = now + std::time::Duration::from_millis(50);
            node.handle(now, Input::Timer).unwrap();
            node.drain_outputs().for_each(drop);
            for peer in [2, 3] {
                node.handle(
                    now,
                    Input::Message {
                        from: NodeId(peer),
                        message: response.clone(),
                    },
                )
                .unwrap();
                node.drain_outputs().for_each(drop);
            }
        }
    });
    assert_eq!(node.role(), Role::Leader);
    assert_eq!(allocations, 0);
}

/// One round of a linearizable read on leader `node`: the read, its
/// checks, and `follower`'s answer; returns how many `ReadReady` came out.
fn read_round(node: &mut Node<ChaCha8Rng>, now: Instant, follower: u64) -> usize {
    let Ok(Handled::ReadQueued { round }) = node.handle(now, Input::Command(Command::Read)) else {
        panic!("the leader queues reads");
    };
    node.drain_outputs().for_each(drop);
    let term = node.term();
    let answer = Message::LeadershipCheckResponse(LeadershipCheckResponse { term, round });
    node.handle(
        now,
        Input::Message {
            from: NodeId(follower),
            message: answer,
        },
    )
    .unwrap();
    node.drain_outputs()
        .filter(|output| matches!(output, Output::ReadReady { .. }))
        .count()
}

#[test]
fn a_leader_serves_read_rounds_without_allocating() {
    let mut probe = Probe::new(3, plain_config());
    probe.elect();
    let now = probe.now;
    let node = &mut probe.node;
    // Warm-up: the first read appends the term's no-op (this config has no
    // no-op on election), which allocates; once it commits, reads are
    // served at once.
    assert_eq!(
        read_round(node, now, 2),
        0,
        "the no-op is not committed yet"
    );
    let commit = Message::AppendEntriesResponse(kontiki::AppendEntriesResponse {
        term: node.term(),
        success: true,
        index: node.last_log_index(),
        conflict_term: kontiki::Term(0),
    });
    node.handle(
        now,
        Input::Message {
            from: NodeId(2),
            message: commit,
        },
    )
    .unwrap();
    node.drain_outputs().for_each(drop);
    assert_eq!(read_round(node, now, 3), 1);
    let allocations = allocations_during(|| {
        for round in 0..1_000 {
            assert_eq!(read_round(node, now, 2 + round % 2), 1);
        }
    });
    assert_eq!(allocations, 0);
}

#[test]
fn the_counting_allocator_sees_allocations() {
    let allocations = allocations_during(|| drop(std::hint::black_box(vec![1u8; 64])));
    assert_eq!(allocations, 1);
}

//! Node 1 of a three-node cluster fed whatever the fuzzer makes up: each
//! step is a well-typed message from any sender (built field by field, so
//! nothing is wasted on frames the decoder would refuse; terms and indexes
//! are mostly small so that they meet the node's own, sometimes extreme),
//! a timer firing, a campaign, barrier, propose, membership-change or
//! leadership-transfer command (membership entries and snapshots carry
//! configurations of nodes 1 to 5, sometimes garbage), a report that the
//! log is durable (true or not), a snapshot of the application's state at
//! any index, or a jump of the clock. The options byte turns on pre-vote,
//! check-quorum, a leader that persists in parallel with its followers,
//! compaction that keeps no entries behind a snapshot, asynchronous
//! writes (acknowledgements held until reported durable), and a start
//! recovering from a damaged log (no votes until caught up). The node must
//! never panic, its term must never go backwards, every hard-state, log
//! and snapshot change must be followed by persist outputs before the next
//! input, and entries are applied once each, in order, never beyond the
//! commit index (a restored snapshot counts as applying everything it
//! covers).

#![no_main]

use core::time::Duration;

use kontiki::{
    wire, AppendEntries, AppendEntriesResponse, Command, Config, Entry, EntryKind, Input,
    InstallSnapshot, Instant, LeadershipCheck, LeadershipCheckResponse, LogIndex, Membership,
    MembershipChange, Message, Node, NodeId, Output, PersistedState, RequestVote,
    RequestVoteResponse, Snapshot, Term, TimeoutNow,
};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

fuzz_target!(|data: &[u8]| {
    let Some((&options, rest)) = data.split_first() else {
        return;
    };
    let config = Config {
        pre_vote: options & 1 != 0,
        check_quorum: options & 2 != 0,
        leader_stickiness: options & 2 != 0,
        leader_persists_in_parallel: options & 4 != 0,
        compaction_lag: if options & 8 != 0 { 0 } else { 3 },
        asynchronous_writes: options & 16 != 0,
        ..Config::default()
    };
    let voters = [NodeId(1), NodeId(2), NodeId(3)];
    let rng = ChaCha8Rng::seed_from_u64(u64::from(options));
    // A node whose store found its log damaged starts recovering.
    let mut start = PersistedState::default();
    if options & 32 != 0 {
        start.hard_state.log_lost_at_term = Some(Term(0));
    }
    let mut node = Node::new(
        NodeId(1),
        &voters,
        config,
        rng,
        start.clone(),
        Instant::ZERO,
    )
    .expect("valid config");
    let mut durable = start;
    let mut now = Instant::ZERO;
    let mut term = node.term();
    let mut applied = 0u64;
    let mut input_bytes = Unstructured::new(rest);
    // An exhausted `Unstructured` keeps answering with defaults: stop when
    // the fuzzer's bytes run out.
    while !input_bytes.is_empty() {
        let Ok(kind) = input_bytes.int_in_range(0u8..=10) else {
            return;
        };
        let input = match kind {
            0 | 1 => match message(&mut input_bytes) {
                Ok((from, message)) => Input::Message { from, message },
                Err(_) => return,
            },
            2 => Input::Timer,
            3 => Input::Command(Command::Campaign),
            4 => match input_bytes.arbitrary() {
                Ok(true) => Input::Command(Command::Read),
                Ok(false) => Input::Command(Command::Barrier),
                Err(_) => return,
            },
            5 => Input::Command(Command::Propose(vec![kind].into())),
            6 => match (index(&mut input_bytes), self::term(&mut input_bytes)) {
                (Ok(index), Ok(term)) => Input::Persisted { index, term },
                _ => return,
            },
            7 => match index(&mut input_bytes) {
                Ok(index) => Input::SnapshotTaken {
                    index,
                    data: vec![7].into(),
                },
                Err(_) => return,
            },
            8 => match input_bytes.int_in_range(1u64..=4) {
                Ok(peer) => Input::Unreachable { peer: NodeId(peer) },
                Err(_) => return,
            },
            9 => match (input_bytes.arbitrary(), membership_change(&mut input_bytes)) {
                (Ok(true), Ok(change)) => Input::Command(Command::ChangeMembership(change)),
                (Ok(false), _) => match input_bytes.int_in_range(1u64..=5) {
                    Ok(target) => Input::Command(Command::TransferLeadership(NodeId(target))),
                    Err(_) => return,
                },
                _ => return,
            },
            _ => {
                let Ok(step) = input_bytes.int_in_range(0u64..=400) else {
                    return;
                };
                now = now + Duration::from_millis(step);
                continue;
            }
        };
        let _ = node.handle(now, input);
        let outputs: Vec<Output> = node.drain_outputs().collect();
        node.check_invariants();
        for output in outputs {
            match output {
                Output::Persist(write) => durable.apply(write).expect("persisted in order"),
                Output::RestoreSnapshot(snapshot) | Output::InstallSnapshot(snapshot) => {
                    assert!(snapshot.index.get() > applied, "restored an older state");
                    assert!(
                        snapshot.index <= durable.snapshot_index(),
                        "restored before persisting"
                    );
                    applied = snapshot.index.get();
                }
                Output::Apply(entry) => {
                    assert_eq!(entry.index.get(), applied + 1, "applied out of order");
                    applied += 1;
                }
                Output::ReadReady { index, .. } => {
                    assert!(index.get() <= applied, "served a read before applying it");
                }
                Output::Send { .. }
                | Output::SetTimer { .. }
                | Output::ReadsFailed { .. }
                | Output::RoleChanged { .. } => {}
            }
        }
        // The node may keep entries its snapshot covers (the compaction
        // lag); everything after the durable snapshot must be durable.
        let durable_snapshot = durable.snapshot_index();
        let after_snapshot: Vec<&Entry> = node
            .entries()
            .iter()
            .filter(|entry| entry.index > durable_snapshot)
            .collect();
        assert!(
            after_snapshot.iter().copied().eq(durable.entries.iter()),
            "a log change was not persisted"
        );
        assert_eq!(
            node.last_log_index(),
            durable.last_index(),
            "the log's end was not persisted"
        );
        assert!(applied <= node.commit_index().get());
        assert!(node.term() >= term, "term went backwards");
        term = node.term();
        assert_eq!(
            node.hard_state(),
            durable.hard_state,
            "a hard-state change was not persisted"
        );
    }
});

/// A message from one of the node's peers, itself, or a stranger.
fn message(input: &mut Unstructured) -> Result<(NodeId, Message)> {
    let from = NodeId(input.int_in_range(0..=4)?);
    let term = term(input)?;
    let message = match input.int_in_range(0u8..=7)? {
        0 => Message::RequestVote(RequestVote {
            term,
            last_log_index: index(input)?,
            last_log_term: self::term(input)?,
            pre_vote: input.arbitrary()?,
            transfer: input.arbitrary()?,
        }),
        1 => Message::RequestVoteResponse(RequestVoteResponse {
            term,
            granted: input.arbitrary()?,
            pre_vote: input.arbitrary()?,
        }),
        2 => {
            let prev_log_index = index(input)?;
            let mut entries = Vec::new();
            // Usually consecutive entries after prev_log_index, as a leader
            // sends them; sometimes with any index and term at all.
            let consistent: bool = input.arbitrary()?;
            for offset in 1..=input.int_in_range(0u64..=4)? {
                let index = if consistent {
                    LogIndex(prev_log_index.get().saturating_add(offset))
                } else {
                    self::index(input)?
                };
                let term = self::term(input)?;
                entries.push(match input.int_in_range(0u8..=5)? {
                    0 | 1 => Entry::noop(index, term),
                    2 => Entry {
                        index,
                        term,
                        kind: EntryKind::Membership,
                        data: membership_bytes(input)?.into(),
                    },
                    _ => Entry::command(index, term, vec![offset as u8]),
                });
            }
            Message::AppendEntries(AppendEntries {
                term,
                prev_log_index,
                prev_log_term: self::term(input)?,
                leader_commit: index(input)?,
                entries,
            })
        }
        3 => Message::InstallSnapshot(InstallSnapshot {
            term,
            snapshot: Snapshot {
                index: index(input)?,
                term: self::term(input)?,
                membership: wire::decode_membership(&membership_bytes(input)?).unwrap_or_default(),
                data: vec![9].into(),
            },
        }),
        4 => Message::LeadershipCheck(LeadershipCheck {
            term,
            round: small_or_extreme(input)?,
        }),
        5 => Message::LeadershipCheckResponse(LeadershipCheckResponse {
            term,
            round: small_or_extreme(input)?,
        }),
        6 => Message::TimeoutNow(TimeoutNow { term }),
        _ => Message::AppendEntriesResponse(AppendEntriesResponse {
            term,
            success: input.arbitrary()?,
            index: index(input)?,
            conflict_term: self::term(input)?,
        }),
    };
    Ok((from, message))
}

/// The data of a membership entry: mostly a well-formed configuration of
/// nodes 1 to 5 (the node itself included or not, joint or not), sometimes
/// any bytes at all.
fn membership_bytes(input: &mut Unstructured) -> Result<Vec<u8>> {
    if input.int_in_range(0u8..=7)? == 0 {
        return input.arbitrary();
    }
    let ids = |input: &mut Unstructured| -> Result<Vec<NodeId>> {
        let mask: u8 = input.arbitrary()?;
        Ok((1..=5u64)
            .filter(|id| mask & (1 << id) != 0)
            .map(NodeId)
            .collect())
    };
    let voters = ids(input)?;
    let mut membership = Membership::with_voters(&voters).unwrap_or_default();
    for learner in ids(input)? {
        let add = MembershipChange::AddLearner {
            id: learner,
            address: Default::default(),
        };
        if let Ok(next) = membership.with_change(&add) {
            membership = next;
        }
    }
    let mut bytes = Vec::new();
    wire::encode_membership(&membership, &mut bytes);
    Ok(bytes)
}

/// A membership change of nodes 1 to 5, valid or not.
fn membership_change(input: &mut Unstructured) -> Result<MembershipChange> {
    let id = NodeId(input.int_in_range(1u64..=5)?);
    Ok(match input.int_in_range(0u8..=4)? {
        0 => MembershipChange::AddLearner {
            id,
            address: vec![b'a'; input.int_in_range(0usize..=3)?].into(),
        },
        1 => MembershipChange::Promote { id },
        2 => MembershipChange::Remove { id },
        3 => MembershipChange::EnterJoint {
            voters: (1..=5u64)
                .filter(|_| input.arbitrary().unwrap_or(false))
                .map(NodeId)
                .collect(),
            learners: Vec::new(),
            auto_leave: input.arbitrary()?,
        },
        _ => MembershipChange::LeaveJoint,
    })
}

/// Mostly a small number, near what the node holds; sometimes huge.
fn small_or_extreme(input: &mut Unstructured) -> Result<u64> {
    Ok(match input.int_in_range(0u8..=15)? {
        0 => u64::MAX,
        1 => input.arbitrary()?,
        _ => input.int_in_range(0u64..=8)?,
    })
}

fn term(input: &mut Unstructured) -> Result<Term> {
    small_or_extreme(input).map(Term)
}

fn index(input: &mut Unstructured) -> Result<LogIndex> {
    small_or_extreme(input).map(LogIndex)
}

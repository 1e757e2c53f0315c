//! Node 1 of a three-node cluster fed whatever the fuzzer makes up: each
//! chunk is a peer id and a wire frame, a timer firing, a campaign or
//! propose command, or a jump of the clock. The node must never panic, its
//! term must never go backwards, every hard-state and log change must be
//! followed by persist outputs before the next input, and entries are
//! applied once each, in order, never beyond the commit index.

#![no_main]

use core::time::Duration;

use kontiki::{Command, Config, Input, Instant, Node, NodeId, Output, PersistedState};
use libfuzzer_sys::fuzz_target;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

fuzz_target!(|data: &[u8]| {
    let Some((&options, mut rest)) = data.split_first() else {
        return;
    };
    let config = Config {
        pre_vote: options & 1 != 0,
        check_quorum: options & 2 != 0,
        ..Config::default()
    };
    let voters = [NodeId(1), NodeId(2), NodeId(3)];
    let rng = ChaCha8Rng::seed_from_u64(u64::from(options));
    let mut node = Node::new(
        NodeId(1),
        &voters,
        config,
        rng,
        PersistedState::default(),
        Instant::ZERO,
    )
    .expect("valid config");
    let mut persisted = kontiki::HardState::default();
    let mut now = Instant::ZERO;
    let mut term = node.term();
    let mut durable_log = Vec::new();
    let mut applied = 0u64;
    while let Some((&kind, tail)) = rest.split_first() {
        rest = tail;
        let input = match kind % 5 {
            0 => {
                // A frame: sender byte, length byte, then that many bytes.
                let [from, len, tail @ ..] = rest else { return };
                let len = usize::from(*len).min(tail.len());
                let (frame, tail) = tail.split_at(len);
                rest = tail;
                match kontiki::wire::decode(frame) {
                    Ok(message) => Input::Message {
                        from: NodeId(u64::from(*from % 5)),
                        message,
                    },
                    Err(_) => continue,
                }
            }
            1 => Input::Timer,
            2 => Input::Command(Command::Campaign),
            3 if kind & 0x10 == 0 => Input::Command(Command::Barrier),
            3 => Input::Command(Command::Propose(vec![kind].into())),
            _ => {
                let Some((&step, tail)) = rest.split_first() else {
                    return;
                };
                rest = tail;
                now = now + Duration::from_millis(u64::from(step) * 4);
                continue;
            }
        };
        let _ = node.handle(now, input);
        for output in node.drain_outputs() {
            match output {
                Output::PersistHardState(hard_state) => persisted = hard_state,
                Output::PersistEntries(entries) => durable_log.extend(entries),
                Output::TruncateLog { from } => durable_log.truncate((from.get() - 1) as usize),
                Output::Apply(entry) => {
                    assert_eq!(entry.index.get(), applied + 1, "applied out of order");
                    applied += 1;
                }
                _ => {}
            }
        }
        assert_eq!(
            &durable_log[..],
            node.entries(),
            "a log change was not persisted"
        );
        assert!(applied <= node.commit_index().get());
        assert!(node.term() >= term, "term went backwards");
        term = node.term();
        assert_eq!(
            node.hard_state(),
            persisted,
            "a hard-state change was not persisted"
        );
    }
});

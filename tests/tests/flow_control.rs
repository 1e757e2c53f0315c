//! Byte-bounded flow control (`Config::max_inflight_bytes`, with
//! `max_inflight_appends`): what a leader has out to one follower stays
//! bounded however fast proposals come, and one answer covering several
//! appends reopens the window for all of them.

use bytes::Bytes;
use kontiki::{Command, Config, Input, Message, NodeId};
use kontiki_tests::probe::{append_response, plain_config, Probe};

fn limited(max_inflight_bytes: usize) -> Config {
    Config {
        max_inflight_bytes,
        max_inflight_appends: 64,
        max_uncommitted_bytes: usize::MAX,
        ..plain_config()
    }
}

/// Payload bytes of the appends the latest input sent to `peer`.
fn bytes_sent_to(probe: &Probe, peer: u64) -> Vec<usize> {
    probe
        .sent()
        .into_iter()
        .filter_map(|(to, message)| match message {
            Message::AppendEntries(append) if to == NodeId(peer) && !append.entries.is_empty() => {
                Some(append.entries.iter().map(|entry| entry.data.len()).sum())
            }
            _ => None,
        })
        .collect()
}

fn propose(probe: &mut Probe, bytes: usize) {
    probe
        .input(Input::Command(Command::Propose(Bytes::from(vec![
            7;
            bytes
        ]))))
        .unwrap();
}

#[test]
fn a_silent_follower_is_sent_no_more_than_the_byte_limit() {
    let mut probe = Probe::new(3, limited(10_000));
    probe.elect();
    for follower in [2, 3] {
        probe
            .receive(follower, append_response(1, true, 0, 0))
            .unwrap();
    }
    // Follower 3 answers everything; follower 2 answers nothing.
    let mut out_to_silent = 0;
    for _ in 0..100 {
        propose(&mut probe, 1_000);
        out_to_silent += bytes_sent_to(&probe, 2).iter().sum::<usize>();
        let last = probe.node.last_log_index().get();
        probe.receive(3, append_response(1, true, last, 0)).unwrap();
    }
    // Soft by one append: under 10,000 bytes before the last one.
    assert_eq!(
        out_to_silent, 10_000,
        "ten appends of 1,000 bytes, then none"
    );
    assert_eq!(probe.node.commit_index(), probe.node.last_log_index());

    // One answer naming the last entry sent frees all ten.
    let acknowledged = 10;
    probe
        .receive(2, append_response(1, true, acknowledged, 0))
        .unwrap();
    assert!(!bytes_sent_to(&probe, 2).is_empty(), "the stream goes on");
}

#[test]
fn an_entry_larger_than_the_limit_still_goes_alone() {
    let mut probe = Probe::new(3, limited(1_000));
    probe.elect();
    probe.receive(2, append_response(1, true, 0, 0)).unwrap();
    propose(&mut probe, 5_000);
    assert_eq!(bytes_sent_to(&probe, 2), [5_000]);
    propose(&mut probe, 10);
    assert!(bytes_sent_to(&probe, 2).is_empty(), "waits for the answer");
    probe.receive(2, append_response(1, true, 1, 0)).unwrap();
    assert_eq!(bytes_sent_to(&probe, 2), [10]);
}

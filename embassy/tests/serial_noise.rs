//! A serial link through a noisy line: whatever the noise does (bytes
//! flipped, dropped, inserted, bursts of garbage), the receiver hands on
//! only messages that were sent, in the order sent, from the node that
//! sent them; every message whose frame the noise left alone arrives; and
//! the damage shows in the link's counts.

use std::collections::VecDeque;
use std::convert::Infallible;

use futures::executor::block_on;
use kontiki::{AppendEntries, Entry, LogIndex, Message, NodeId, RequestVoteResponse, Term};
use kontiki_embassy::{LinkError, SerialLink};
use proptest::prelude::*;

/// The receiving end of a line: hands out what was put on it, in reads
/// of at most `read_size` bytes.
struct Line {
    bytes: VecDeque<u8>,
    read_size: usize,
}

impl embedded_io_async::ErrorType for Line {
    type Error = Infallible;
}

impl embedded_io_async::Read for Line {
    async fn read(&mut self, buffer: &mut [u8]) -> Result<usize, Infallible> {
        let count = buffer.len().min(self.read_size).min(self.bytes.len());
        for slot in &mut buffer[..count] {
            *slot = self.bytes.pop_front().expect("counted");
        }
        Ok(count)
    }
}

/// The sending end of a line: keeps what was written.
#[derive(Default)]
struct Wire {
    written: Vec<u8>,
}

impl embedded_io_async::ErrorType for Wire {
    type Error = Infallible;
}

impl embedded_io_async::Write for Wire {
    async fn write(&mut self, bytes: &[u8]) -> Result<usize, Infallible> {
        self.written.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

fn message(n: u64, payload: &[u8]) -> Message {
    if n.is_multiple_of(2) {
        Message::RequestVoteResponse(RequestVoteResponse {
            term: Term(n),
            granted: n.is_multiple_of(4),
            pre_vote: false,
        })
    } else {
        Message::AppendEntries(AppendEntries {
            term: Term(n),
            prev_log_index: LogIndex(n),
            prev_log_term: Term(n),
            leader_commit: LogIndex(n / 2),
            entries: vec![Entry::command(LogIndex(n + 1), Term(n), payload.to_vec())],
        })
    }
}

/// Encodes `messages` from node 7, each frame's bytes as one span.
fn sent(messages: &[Message]) -> Vec<Vec<u8>> {
    messages
        .iter()
        .map(|message| {
            let nothing = Line {
                bytes: VecDeque::new(),
                read_size: 1,
            };
            let mut link = SerialLink::new(nothing, Wire::default(), 4096);
            block_on(link.send(NodeId(7), message)).unwrap();
            let (_, wire) = link.into_parts();
            wire.written
        })
        .collect()
}

/// Every message the receiver hands on from `line`, until it runs dry.
fn received(
    line: Vec<u8>,
    read_size: usize,
) -> (Vec<(NodeId, Message)>, kontiki_embassy::LinkStats) {
    let line = Line {
        bytes: line.into(),
        read_size,
    };
    let mut link = SerialLink::new(line, Wire::default(), 4096);
    let mut messages = Vec::new();
    loop {
        match block_on(link.receive()) {
            Ok(received) => messages.push(received),
            Err(LinkError::Closed) => return (messages, link.stats()),
            Err(LinkError::Io(never)) => match never {},
        }
    }
}

#[test]
fn messages_arrive_whole_and_in_order_on_a_clean_line() {
    let messages: Vec<Message> = (0..20).map(|n| message(n, &[n as u8; 40])).collect();
    let line: Vec<u8> = sent(&messages).concat();
    for read_size in [1, 7, 64] {
        let (got, stats) = received(line.clone(), read_size);
        let expected: Vec<(NodeId, Message)> =
            messages.iter().map(|m| (NodeId(7), m.clone())).collect();
        assert_eq!(got, expected);
        assert_eq!(stats.frames, 20);
        assert_eq!(stats.corrupt + stats.oversized + stats.malformed, 0);
    }
}

/// One kind of damage at one place on the line.
#[derive(Clone, Debug)]
enum Noise {
    Flip { at: usize, mask: u8 },
    Drop { at: usize },
    Insert { at: usize, byte: u8 },
    Burst { at: usize, bytes: Vec<u8> },
}

fn noise() -> impl Strategy<Value = Noise> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Noise::Flip { at, mask }),
        any::<usize>().prop_map(|at| Noise::Drop { at }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Noise::Insert { at, byte }),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..40)
        )
            .prop_map(|(at, bytes)| Noise::Burst { at, bytes }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn noise_never_makes_a_message_and_spares_the_frames_it_misses(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..12),
        damage in proptest::collection::vec(noise(), 0..6),
        read_size in 1usize..80,
    ) {
        let messages: Vec<Message> = payloads
            .iter()
            .enumerate()
            .map(|(n, payload)| message(n as u64, payload))
            .collect();
        let frames = sent(&messages);
        // Which frame each byte belongs to, so that the frames the noise
        // touched are known.
        let mut line: Vec<(u8, Option<usize>)> = frames
            .iter()
            .enumerate()
            .flat_map(|(frame, bytes)| bytes.iter().map(move |&byte| (byte, Some(frame))))
            .collect();
        let mut touched = vec![false; frames.len()];
        for noise in &damage {
            let at = |at: usize, len: usize| if len == 0 { 0 } else { at % len };
            match noise {
                Noise::Flip { at: spot, mask } => {
                    if line.is_empty() { continue; }
                    let spot = at(*spot, line.len());
                    line[spot].0 ^= mask;
                    if let Some(frame) = line[spot].1 { touched[frame] = true; }
                }
                Noise::Drop { at: spot } => {
                    if line.is_empty() { continue; }
                    let spot = at(*spot, line.len());
                    if let Some(frame) = line.remove(spot).1 { touched[frame] = true; }
                }
                Noise::Insert { at: spot, byte } => {
                    let spot = at(*spot, line.len() + 1);
                    mark_neighbours(&line, spot, &mut touched);
                    line.insert(spot, (*byte, None));
                }
                Noise::Burst { at: spot, bytes } => {
                    let spot = at(*spot, line.len() + 1);
                    mark_neighbours(&line, spot, &mut touched);
                    for (offset, byte) in bytes.iter().enumerate() {
                        line.insert(spot + offset, (*byte, None));
                    }
                }
            }
        }
        let bytes: Vec<u8> = line.iter().map(|(byte, _)| *byte).collect();
        let (got, stats) = received(bytes, read_size);
        // Only messages that were sent, from their sender, in order.
        let mut next = 0;
        for (from, message) in &got {
            prop_assert_eq!(*from, NodeId(7));
            let position = messages[next..].iter().position(|sent| sent == message);
            prop_assert!(position.is_some(), "a message nobody sent: {:?}", message);
            next += position.unwrap() + 1;
        }
        // Every frame the noise missed arrived.
        for (frame, message) in messages.iter().enumerate() {
            if !touched[frame] {
                prop_assert!(got.iter().any(|(_, got)| got == message), "frame {} lost", frame);
            }
        }
        prop_assert_eq!(stats.frames as usize - stats.malformed as usize, got.len());
    }
}

/// Bytes inserted between two frames, or inside one, may change how the
/// frames on either side read: count both neighbours as touched.
fn mark_neighbours(line: &[(u8, Option<usize>)], spot: usize, touched: &mut [bool]) {
    for neighbour in [spot.checked_sub(1), Some(spot)].into_iter().flatten() {
        if let Some((_, Some(frame))) = line.get(neighbour) {
            touched[*frame] = true;
        }
    }
}

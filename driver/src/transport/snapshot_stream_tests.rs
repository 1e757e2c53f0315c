use std::sync::LazyLock;

use kontiki::{Membership, Snapshot};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use super::super::frame::Kind;
use super::*;
use crate::snapshot_store::{store_whole, CheckedReader, MemorySnapshots, SnapshotRef};

/// The receiving node's snapshot store (snapshots are numbered, so tests
/// may share it).
static RECEIVED: LazyLock<MemorySnapshots> = LazyLock::new(MemorySnapshots::new);

const LIMITS: StreamLimits = StreamLimits {
    chunk_bytes: 1000,
    window_bytes: 3000,
};

fn install(term: u64, index: u64, data_len: usize) -> InstallSnapshot {
    InstallSnapshot {
        term: Term(term),
        snapshot: Snapshot {
            index: LogIndex(index),
            term: Term(term),
            membership: Membership::with_voters(&[NodeId(1), NodeId(2), NodeId(3)]).unwrap(),
            data: Bytes::from(
                (0..data_len)
                    .map(|i| (i * 7 % 251) as u8)
                    .collect::<Vec<u8>>(),
            ),
        },
    }
}

/// A stream of `install`'s snapshot, its data read from a store as the
/// sending node's link would.
fn sender(install: &InstallSnapshot) -> SnapshotSend {
    let store = MemorySnapshots::new();
    let data = store_whole(&store, &install.snapshot.data).unwrap();
    SnapshotSend::new(install, data.len, store.open(&data).unwrap())
}

/// The message a completed stream hands the node, with the data read back
/// from the receiver's store.
fn delivered(completed: Completed) -> Message {
    let Completed { mut header, sink } = completed;
    let stored = sink.finish().unwrap();
    let data = CheckedReader::open(&*RECEIVED, stored).unwrap();
    header.snapshot.data = data.read_whole().unwrap();
    Message::InstallSnapshot(header)
}

/// The frames in `pending`, taken out of it: their kinds and bodies.
fn frames(pending: &mut Vec<u8>) -> Vec<(Kind, Bytes)> {
    let mut rest = &pending[..];
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let length = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let frame = Bytes::copy_from_slice(&rest[4..4 + length]);
        frames.push(Kind::split(&frame).unwrap());
        rest = &rest[4 + length..];
    }
    pending.clear();
    frames
}

/// Everything the sender may send now, as frames.
fn drain(send: &mut SnapshotSend) -> Vec<(Kind, Bytes)> {
    let mut pending = Vec::new();
    while send.write_next(LIMITS, &mut pending).unwrap() {}
    frames(&mut pending)
}

/// Delivers `frames` from node 1 to `receive`; returns the answers and
/// the completed message, if any.
fn deliver(
    receive: &mut SnapshotReceive,
    frames: Vec<(Kind, Bytes)>,
) -> (Vec<Progress>, Option<Message>) {
    let mut answers = Vec::new();
    let mut complete = None;
    for (kind, body) in frames {
        match kind {
            Kind::SnapshotOffer => {
                let offer = Offer::decode(&body).unwrap();
                answers.push(
                    receive
                        .offer(NodeId(1), &offer, u64::MAX, &*RECEIVED)
                        .unwrap(),
                );
            }
            Kind::SnapshotChunk => {
                let received = receive
                    .chunk(NodeId(1), &Chunk::decode(&body).unwrap())
                    .unwrap();
                answers.push(received.progress);
                if let Some(completed) = received.complete {
                    complete = Some(delivered(completed));
                }
            }
            other => panic!("the sender sent a {other:?}"),
        }
    }
    (answers, complete)
}

/// Runs a stream to its end; returns the message the receiver completed.
fn stream_to_end(send: &mut SnapshotSend, receive: &mut SnapshotReceive) -> Message {
    for _ in 0..10_000 {
        let frames = drain(send);
        let in_flight: usize = frames
            .iter()
            .filter(|(kind, _)| *kind == Kind::SnapshotChunk)
            .map(|(_, body)| Chunk::decode(body).unwrap().data.len())
            .sum();
        assert!(
            in_flight <= LIMITS.window_bytes,
            "{in_flight} bytes sent unacknowledged"
        );
        let (answers, complete) = deliver(receive, frames);
        for answer in &answers {
            send.on_progress(answer).unwrap();
        }
        if let Some(message) = complete {
            assert!(send.is_complete());
            return message;
        }
    }
    panic!("the stream never ended");
}

#[test]
fn a_snapshot_arrives_whole_and_equal_within_the_window() {
    let original = install(4, 90, 10_500);
    let mut send = sender(&original);
    let mut receive = SnapshotReceive::default();
    let message = stream_to_end(&mut send, &mut receive);
    assert_eq!(message, Message::InstallSnapshot(original));
    assert_eq!(receive.received(), None, "nothing is kept once delivered");
    assert!(
        drain(&mut send).is_empty(),
        "a complete stream sends nothing"
    );
}

#[test]
fn a_reconnection_resumes_where_the_receiver_stands() {
    let original = install(4, 90, 10_500);
    let mut send = sender(&original);
    let mut receive = SnapshotReceive::default();
    // The offer and the first window go out; the answers are lost with the
    // connection.
    let (first, _) = deliver(&mut receive, drain(&mut send));
    send.on_progress(&first[0]).unwrap();
    let (_lost, _) = deliver(&mut receive, drain(&mut send));
    assert_eq!(receive.received(), Some(3000));
    send.reconnected();
    let frames = drain(&mut send);
    assert_eq!(frames.len(), 1, "only the offer, until the answer");
    let (answers, _) = deliver(&mut receive, frames);
    assert_eq!(
        answers[0].status,
        ProgressStatus::Receiving { received: 3000 }
    );
    send.on_progress(&answers[0]).unwrap();
    let next = drain(&mut send);
    let first_offset = Chunk::decode(&next[0].1).unwrap().offset;
    assert_eq!(first_offset, 3000, "resumed, not restarted");
    let (answers, _) = deliver(&mut receive, next);
    for answer in &answers {
        send.on_progress(answer).unwrap();
    }
    let message = stream_to_end(&mut send, &mut receive);
    assert_eq!(message, Message::InstallSnapshot(original));
}

/// The receiver after the offer of `install(4, 90, 10_500)` and its first
/// chunk.
fn receiving_one_chunk() -> (SnapshotReceive, SnapshotSend, Vec<(Kind, Bytes)>) {
    let mut send = sender(&install(4, 90, 10_500));
    let mut receive = SnapshotReceive::default();
    let (answers, _) = deliver(&mut receive, drain(&mut send));
    send.on_progress(&answers[0]).unwrap();
    let mut chunks = drain(&mut send);
    let rest = chunks.split_off(1);
    deliver(&mut receive, chunks);
    assert_eq!(receive.received(), Some(1000));
    (receive, send, rest)
}

fn chunk_at(term: u64, offset: u64, data: &[u8]) -> Chunk {
    let mut body = Vec::new();
    let name = StreamName {
        term: Term(term),
        index: LogIndex(90),
        snapshot_term: Term(term),
    };
    Chunk::encode(name, offset, data, &mut body);
    Chunk::decode(&Bytes::from(body)).unwrap()
}

#[test]
fn bad_chunks_are_refused_and_what_arrived_stays() {
    let (mut receive, _, rest) = receiving_one_chunk();
    // Out of order: the third chunk before the second.
    let third = Chunk::decode(&rest[1].1).unwrap();
    assert_eq!(
        receive.chunk(NodeId(1), &third).unwrap_err(),
        StreamError::OutOfOrder {
            expected: 1000,
            found: 2000
        }
    );
    // A wrong checksum.
    let mut corrupt = Chunk::decode(&rest[0].1).unwrap();
    corrupt.checksum ^= 1;
    assert_eq!(
        receive.chunk(NodeId(1), &corrupt).unwrap_err(),
        StreamError::BadChecksum
    );
    // Past the announced length.
    let too_long = chunk_at(4, 1000, &[0; 9_501]);
    assert_eq!(
        receive.chunk(NodeId(1), &too_long).unwrap_err(),
        StreamError::PastTheEnd
    );
    // Another term's, another sender's, empty.
    assert_eq!(
        receive
            .chunk(NodeId(1), &chunk_at(3, 1000, &[1]))
            .unwrap_err(),
        StreamError::UnknownStream
    );
    let good = Chunk::decode(&rest[0].1).unwrap();
    assert_eq!(
        receive.chunk(NodeId(2), &good).unwrap_err(),
        StreamError::UnknownStream
    );
    assert!(matches!(
        receive.chunk(NodeId(1), &chunk_at(4, 1000, &[])),
        Err(StreamError::Malformed(_))
    ));
    // None of it touched what had arrived: the good chunk still fits.
    assert_eq!(receive.received(), Some(1000));
    let received = receive.chunk(NodeId(1), &good).unwrap();
    assert_eq!(
        received.progress.status,
        ProgressStatus::Receiving { received: 2000 }
    );
}

#[test]
fn offers_too_large_or_from_a_stale_leader_are_refused() {
    let (mut receive, _, _) = receiving_one_chunk();
    let offer_of = |install: &InstallSnapshot| {
        let mut pending = Vec::new();
        sender(install).write_next(LIMITS, &mut pending).unwrap();
        Offer::decode(&frames(&mut pending)[0].1).unwrap()
    };
    let refused = |progress: Progress| progress.status == ProgressStatus::Refused;
    assert!(refused(
        receive
            .offer(
                NodeId(1),
                &offer_of(&install(4, 95, 5000)),
                4999,
                &*RECEIVED
            )
            .unwrap()
    ));
    // A stale leader (term 3) does not displace term 4's snapshot.
    assert!(refused(
        receive
            .offer(
                NodeId(2),
                &offer_of(&install(3, 95, 5000)),
                u64::MAX,
                &*RECEIVED
            )
            .unwrap()
    ));
    assert_eq!(receive.received(), Some(1000));
    // A later term's leader does.
    let progress = receive
        .offer(
            NodeId(2),
            &offer_of(&install(5, 95, 5000)),
            u64::MAX,
            &*RECEIVED,
        )
        .unwrap();
    assert_eq!(progress.status, ProgressStatus::Receiving { received: 0 });
    assert_eq!(receive.received(), Some(0));
}

#[test]
fn offers_whose_header_is_not_a_snapshot_without_data_are_errors() {
    let mut receive = SnapshotReceive::default();
    let mut header = Vec::new();
    kontiki::wire::encode(&Message::InstallSnapshot(install(4, 90, 3)), &mut header);
    let with_data = Offer {
        data_len: 5000,
        header: Bytes::from(header),
    };
    assert!(matches!(
        receive.offer(NodeId(1), &with_data, u64::MAX, &*RECEIVED),
        Err(StreamError::BadHeader(_))
    ));
    let mut heartbeat = Vec::new();
    kontiki::wire::encode(
        &Message::TimeoutNow(kontiki::TimeoutNow { term: Term(2) }),
        &mut heartbeat,
    );
    let not_a_snapshot = Offer {
        data_len: 5000,
        header: Bytes::from(heartbeat),
    };
    assert!(matches!(
        receive.offer(NodeId(1), &not_a_snapshot, u64::MAX, &*RECEIVED),
        Err(StreamError::BadHeader(_))
    ));
    assert_eq!(receive.received(), None);
}

#[test]
fn the_sender_refuses_reports_it_could_not_have_caused() {
    let (_, mut send, _) = receiving_one_chunk();
    let name = StreamName {
        term: Term(4),
        index: LogIndex(90),
        snapshot_term: Term(4),
    };
    let report = |received| Progress {
        stream: name,
        status: ProgressStatus::Receiving { received },
    };
    // Three chunks (3000 bytes) are out.
    assert_eq!(
        send.on_progress(&report(3001)),
        Err(StreamError::BadProgress)
    );
    assert_eq!(send.on_progress(&report(2000)), Ok(Reaction::MayContinue));
    assert_eq!(send.on_progress(&report(1000)), Ok(Reaction::None), "stale");
    let other = Progress {
        stream: StreamName {
            term: Term(5),
            ..name
        },
        status: ProgressStatus::Refused,
    };
    assert_eq!(send.on_progress(&other), Ok(Reaction::None));
    let refused = Progress {
        status: ProgressStatus::Refused,
        ..other
    };
    assert_eq!(
        send.on_progress(&Progress {
            stream: name,
            ..refused
        }),
        Ok(Reaction::Refused)
    );
}

#[test]
fn stream_frames_decode_any_bytes_without_panicking() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut receive = SnapshotReceive::default();
    for _ in 0..20_000 {
        let len = (rng.next_u32() % 60) as usize;
        let mut body = vec![0u8; len];
        rng.fill_bytes(&mut body);
        let body = Bytes::from(body);
        let _ = Progress::decode(&body);
        if let Ok(offer) = Offer::decode(&body) {
            let _ = receive.offer(NodeId(1), &offer, 1 << 20, &*RECEIVED);
        }
        if let Ok(chunk) = Chunk::decode(&body) {
            let _ = receive.chunk(NodeId(1), &chunk);
        }
    }
    let progress = Progress {
        stream: StreamName {
            term: Term(1),
            index: LogIndex(2),
            snapshot_term: Term(1),
        },
        status: ProgressStatus::Receiving { received: 77 },
    };
    let mut body = Vec::new();
    progress.encode(&mut body);
    assert_eq!(body.len(), PROGRESS_BYTES);
    assert_eq!(Progress::decode(&body), Ok(progress));
    body.push(0);
    assert!(Progress::decode(&body).is_err(), "a trailing byte");
}

#[test]
fn a_snapshot_the_store_cannot_read_stops_the_stream_with_an_error() {
    let store = MemorySnapshots::new();
    let original = install(4, 90, 10_500);
    let data = store_whole(&store, &original.snapshot.data).unwrap();
    let cut_short = SnapshotRef {
        len: data.len + 5000,
        ..data
    };
    let mut send = SnapshotSend::new(&original, cut_short.len, store.open(&data).unwrap());
    let mut receive = SnapshotReceive::default();
    let mut pending = Vec::new();
    let mut result = Ok(true);
    for _ in 0..100 {
        result = send.write_next(LIMITS, &mut pending);
        if !matches!(result, Ok(true)) {
            let (answers, _) = deliver(&mut receive, frames(&mut pending));
            for answer in &answers {
                send.on_progress(answer).unwrap();
            }
        }
        if result.is_err() {
            break;
        }
    }
    let error = result.expect_err("the data ends before its announced length");
    assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
    assert_eq!(receive.received(), Some(10_000), "what was read went out");
}

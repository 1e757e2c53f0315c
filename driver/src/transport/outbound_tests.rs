use std::task::Waker;

use futures::FutureExt;
use kontiki::{LeadershipCheck, Term};

use super::super::snapshot_stream::{ProgressStatus, StreamName};
use crate::snapshot_store::{store_whole, MemorySnapshots};

use super::*;

/// A socket that takes `room` bytes, then waits until given more.
#[derive(Clone, Default)]
struct Socket {
    state: Arc<Mutex<SocketState>>,
}

#[derive(Default)]
struct SocketState {
    received: Vec<u8>,
    room: usize,
    broken: bool,
    waiting: Option<Waker>,
}

impl Socket {
    fn with_room(room: usize) -> Socket {
        let socket = Socket::default();
        socket.state.lock().unwrap().room = room;
        socket
    }

    fn give_room(&self, room: usize) {
        let mut state = self.state.lock().unwrap();
        state.room += room;
        if let Some(waker) = state.waiting.take() {
            waker.wake();
        }
    }

    /// Every frame received, in order: its kind and body.
    fn frames(&self) -> Vec<(Kind, bytes::Bytes)> {
        let state = self.state.lock().unwrap();
        let mut rest = &state.received[..];
        let mut frames = Vec::new();
        while rest.len() >= 4 {
            let length = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            let frame = bytes::Bytes::copy_from_slice(&rest[4..4 + length]);
            frames.push(Kind::split(&frame).unwrap());
            rest = &rest[4 + length..];
        }
        assert!(rest.is_empty(), "a partial frame");
        frames
    }

    /// The rounds of the leadership checks received, in order.
    fn rounds(&self) -> Vec<u64> {
        let state = self.state.lock().unwrap();
        let mut rest = &state.received[..];
        let mut rounds = Vec::new();
        while rest.len() >= 4 {
            let length = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            assert_eq!(rest[4], Kind::Message as u8);
            match kontiki::wire::decode(&rest[5..4 + length]).unwrap() {
                Message::LeadershipCheck(check) => rounds.push(check.round),
                other => panic!("unexpected {other:?}"),
            }
            rest = &rest[4 + length..];
        }
        assert!(rest.is_empty(), "a partial frame");
        rounds
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut state = self.state.lock().unwrap();
        if state.broken {
            return Poll::Ready(Err(io::Error::from(io::ErrorKind::ConnectionReset)));
        }
        if state.room == 0 {
            state.waiting = Some(context.waker().clone());
            return Poll::Pending;
        }
        let taken = bytes.len().min(state.room);
        state.room -= taken;
        state.received.extend_from_slice(&bytes[..taken]);
        Poll::Ready(Ok(taken))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

const LIMITS: StreamLimits = StreamLimits {
    chunk_bytes: 64,
    window_bytes: 128,
};

fn check(round: u64) -> Message {
    Message::LeadershipCheck(LeadershipCheck {
        term: Term::from(1),
        round,
    })
}

/// A link connected to `socket`, with its task polled once (idle).
fn connected(
    socket: &Socket,
) -> (
    NodeSide<Socket>,
    LinkSide<Socket>,
    futures::future::BoxFuture<'static, io::Result<()>>,
) {
    let (node, link) = super::link::<Socket>(8, LIMITS, Arc::new(SENDER.clone()));
    link.connected(socket.clone());
    let task_link = LinkSide {
        shared: Arc::clone(&link.shared),
        queue: link.queue.clone(),
        lost: Arc::clone(&link.lost),
        wake: link.wake.clone(),
    };
    let mut task = async move { task_link.send_until_closed().await }.boxed();
    assert!(
        task.as_mut().now_or_never().is_none(),
        "the link task waits"
    );
    (node, link, task)
}

#[test]
fn an_idle_link_is_written_by_the_node_without_queueing() {
    let socket = Socket::with_room(usize::MAX);
    let (mut node, link, _task) = connected(&socket);
    assert!(!lock(&link.shared).busy, "idle after an empty queue");
    assert!(node.send(check(1)));
    assert!(node.send(check(2)));
    assert!(socket.rounds().is_empty(), "nothing written before flush");
    node.flush();
    assert_eq!(socket.rounds(), vec![1, 2]);
    assert!(link.queue.is_empty());
    assert!(!lock(&link.shared).busy);
}

#[test]
fn a_full_socket_hands_over_to_the_link_task_and_order_is_kept() {
    let socket = Socket::with_room(5);
    let (mut node, link, mut task) = connected(&socket);
    node.send(check(1));
    node.flush();
    assert!(lock(&link.shared).busy, "the rest is the link task's");
    // Later messages queue behind the unwritten rest.
    node.send(check(2));
    node.flush();
    node.send(check(3));
    assert_eq!(link.queue.len(), 3, "a resume and two messages");
    socket.give_room(usize::MAX / 2);
    assert!(task.as_mut().now_or_never().is_none(), "idle again");
    assert_eq!(socket.rounds(), vec![1, 2, 3]);
    assert!(!lock(&link.shared).busy);
    // And the node writes directly again.
    node.send(check(4));
    node.flush();
    assert_eq!(socket.rounds(), vec![1, 2, 3, 4]);
}

#[test]
fn a_failed_write_by_the_node_ends_the_link_tasks_connection() {
    let socket = Socket::with_room(usize::MAX);
    let (mut node, link, mut task) = connected(&socket);
    socket.state.lock().unwrap().broken = true;
    node.send(check(1));
    node.flush();
    let result = task.as_mut().now_or_never().expect("the link task stops");
    assert_eq!(
        result.unwrap_err().kind(),
        io::ErrorKind::ConnectionReset,
        "the node's error is reported"
    );
    // While reconnecting, messages queue (and are dropped on failure).
    assert!(!node.take_lost(), "nothing lost while connected");
    link.disconnected();
    assert!(node.send(check(2)));
    assert_eq!(link.queue.len(), 1);
    // The broken connection is reported once, so the core can resend.
    assert!(node.take_lost());
    assert!(!node.take_lost());
}

/// The sending node's snapshot store.
static SENDER: std::sync::LazyLock<MemorySnapshots> =
    std::sync::LazyLock::new(MemorySnapshots::new);

/// A snapshot as the core sends it: its data in the store, the message
/// carrying the reference.
fn snapshot(term: u64, data_len: usize) -> Message {
    let data = store_whole(&*SENDER, &vec![9; data_len]).unwrap();
    snapshot_with(term, data.encode())
}

fn snapshot_with(term: u64, data: bytes::Bytes) -> Message {
    let membership = kontiki::Membership::with_voters(&[NodeId(1), NodeId(2)]).unwrap();
    Message::InstallSnapshot(kontiki::InstallSnapshot {
        term: Term::from(term),
        snapshot: kontiki::Snapshot {
            index: kontiki::LogIndex(40),
            term: Term::from(1),
            membership,
            data,
        },
    })
}

#[test]
fn a_small_snapshot_goes_in_its_message_with_its_data_read_from_the_store() {
    let socket = Socket::with_room(usize::MAX);
    let (mut node, _link, _task) = connected(&socket);
    assert!(node.send(snapshot(1, 64)));
    node.flush();
    let frames = socket.frames();
    assert_eq!(frames.len(), 1);
    let Message::InstallSnapshot(install) = kontiki::wire::decode(&frames[0].1).unwrap() else {
        panic!("not a snapshot");
    };
    assert_eq!(install.snapshot.data, vec![9; 64]);
    // One the store does not hold (or that is not a reference) is not sent.
    let gone = crate::snapshot_store::SnapshotRef {
        id: u64::MAX,
        len: 10,
        crc32: 0,
    };
    assert!(!node.take_lost());
    assert!(!node.send(snapshot_with(1, gone.encode())));
    // Reported lost, so that the core sends its newest snapshot once the
    // peer answers rather than this one again and again.
    assert!(node.take_lost());
    assert!(!node.send(snapshot_with(1, vec![9; 10].into())));
    assert!(node.take_lost());
    // The same for one large enough to stream.
    let gone_large = crate::snapshot_store::SnapshotRef {
        len: 1 << 20,
        ..gone
    };
    assert!(!node.send(snapshot_with(1, gone_large.encode())));
    assert!(node.take_lost());
    node.flush();
    assert_eq!(socket.frames().len(), 1, "nothing more was sent");
}

fn receiving(term: u64, received: u64) -> Progress {
    Progress {
        stream: StreamName {
            term: Term::from(term),
            index: kontiki::LogIndex(40),
            snapshot_term: Term::from(1),
        },
        status: ProgressStatus::Receiving { received },
    }
}

/// The kinds of the frames received, and the offsets of the chunks.
fn summary(socket: &Socket) -> Vec<String> {
    socket
        .frames()
        .into_iter()
        .map(|(kind, body)| match kind {
            Kind::SnapshotChunk => {
                let chunk = super::super::snapshot_stream::Chunk::decode(&body).unwrap();
                format!("chunk {}+{}", chunk.offset, chunk.data.len())
            }
            Kind::Message => match kontiki::wire::decode(&body).unwrap() {
                Message::LeadershipCheck(check) => format!("check {}", check.round),
                other => panic!("unexpected {other:?}"),
            },
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn a_large_snapshot_streams_within_the_window_between_messages() {
    let socket = Socket::with_room(usize::MAX);
    let (mut node, link, mut task) = connected(&socket);
    node.send(snapshot(1, 300));
    node.flush();
    assert!(task.as_mut().now_or_never().is_none());
    assert_eq!(
        summary(&socket),
        ["SnapshotOffer"],
        "no data before an answer"
    );
    // The core resends it: the stream carries on, no second offer.
    node.send(snapshot(1, 300));
    link.on_progress(NodeId(2), &receiving(1, 0)).unwrap();
    // A message sent now, while the link is idle, goes at once.
    node.send(check(1));
    node.flush();
    assert!(task.as_mut().now_or_never().is_none());
    assert_eq!(
        summary(&socket),
        ["SnapshotOffer", "check 1", "chunk 0+64", "chunk 64+64"],
        "a window of two chunks"
    );
    link.on_progress(NodeId(2), &receiving(1, 64)).unwrap();
    assert!(task.as_mut().now_or_never().is_none());
    assert_eq!(summary(&socket).last().unwrap(), "chunk 128+64");
    // A message of a later term ends the stream: the node no longer
    // leads the term it sent the snapshot in.
    node.send(check(2));
    let mut later = check(3);
    if let Message::LeadershipCheck(check) = &mut later {
        check.term = Term::from(2);
    }
    node.send(later);
    node.flush();
    link.on_progress(NodeId(2), &receiving(1, 192)).unwrap();
    assert!(task.as_mut().now_or_never().is_none());
    assert_eq!(summary(&socket)[5..], ["check 2", "check 3"]);
    // A report of bytes never sent costs the connection.
    node.send(snapshot(2, 300));
    assert!(task.as_mut().now_or_never().is_none());
    let error = link
        .on_progress(NodeId(2), &receiving(2, 1))
        .and_then(|()| link.on_progress(NodeId(2), &receiving(2, 200)));
    assert_eq!(error.unwrap_err().kind(), io::ErrorKind::InvalidData);
}

#[test]
fn a_stream_resumes_on_a_new_connection_from_the_peers_answer() {
    let socket = Socket::with_room(usize::MAX);
    let (mut node, link, mut task) = connected(&socket);
    node.send(snapshot(1, 300));
    node.flush();
    assert!(task.as_mut().now_or_never().is_none());
    link.on_progress(NodeId(2), &receiving(1, 0)).unwrap();
    assert!(task.as_mut().now_or_never().is_none());
    // The connection breaks; a new one offers again, and the answer
    // says where to go on.
    link.disconnected();
    let fresh = Socket::with_room(usize::MAX);
    link.connected(fresh.clone());
    let mut task = {
        let task_link = LinkSide {
            shared: Arc::clone(&link.shared),
            queue: link.queue.clone(),
            lost: Arc::clone(&link.lost),
            wake: link.wake.clone(),
        };
        async move { task_link.send_until_closed().await }.boxed()
    };
    assert!(task.as_mut().now_or_never().is_none());
    assert_eq!(summary(&fresh), ["SnapshotOffer"]);
    link.on_progress(NodeId(2), &receiving(1, 100)).unwrap();
    assert!(task.as_mut().now_or_never().is_none());
    assert_eq!(
        summary(&fresh),
        ["SnapshotOffer", "chunk 100+64", "chunk 164+64"]
    );
}

#[test]
fn dropping_the_node_side_closes_the_connection_and_ends_the_task() {
    let socket = Socket::with_room(usize::MAX);
    let (node, link, mut task) = connected(&socket);
    drop(node);
    let result = task.as_mut().now_or_never().expect("the link task stops");
    assert!(result.is_ok());
    assert!(lock(&link.shared).stream.is_none());
}

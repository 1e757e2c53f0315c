//! One peer's outbound connection, shared by the node's task and the
//! peer's link task.
//!
//! On a quiet link the node's task writes a round's messages to the socket
//! itself, in one non-blocking write: no hop through a queue to another
//! task, which costs a wake-up per message (and on a multi-threaded
//! runtime often a thread switch) on every write's critical path. Only
//! when the socket cannot take everything at once, or the link is
//! connecting, does the link task take over: it owns every wait, finishes
//! the write, then sends what queued up meanwhile.
//!
//! Order is kept by one rule, checked under the lock: the node's task
//! writes only while the link is idle (connected, nothing of the link
//! task's left unwritten, nothing queued). Otherwise a message joins the
//! bounded queue, behind everything already pending.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::poll_fn;
use futures::io::{AsyncWrite, AsyncWriteExt};
use futures::task::noop_waker_ref;
use kontiki::Message;

use super::frame;
use super::links::PeerLink;
use crate::sync::lock;

/// What the node's task hands the link task.
pub(crate) enum Outgoing {
    /// A message to send after everything before it.
    Message(Message),
    /// The node's task left bytes unwritten (or hit an error): finish.
    Resume,
}

/// The connection and its unwritten bytes.
struct Shared<S> {
    /// `None` while the link task is (re)connecting.
    stream: Option<S>,
    /// Encoded frames not yet written, from `written` on.
    pending: Vec<u8>,
    written: usize,
    /// The link task owns the connection: it is connecting, writing, or has
    /// a queue to send. While set, the node's task only queues.
    busy: bool,
    /// A write by the node's task failed; the link task reports it.
    failed: Option<io::Error>,
}

/// A batch the link task writes at once, at most (a single larger message
/// still goes out whole).
const MAX_BATCH_BYTES: usize = 1 << 20;

impl<S: AsyncWrite + Unpin> Shared<S> {
    /// Writes `pending` out and flushes; `Pending` leaves the rest for the
    /// next call.
    fn poll_write_pending(&mut self, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(error) = self.failed.take() {
            return Poll::Ready(Err(error));
        }
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Ready(Err(io::Error::from(io::ErrorKind::NotConnected)));
        };
        while self.written < self.pending.len() {
            let unwritten = &self.pending[self.written..];
            match Pin::new(&mut *stream).poll_write(context, unwritten) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero)))
                }
                Poll::Ready(Ok(written)) => self.written += written,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
        if let Err(error) = futures::ready!(Pin::new(stream).poll_flush(context)) {
            return Poll::Ready(Err(error));
        }
        self.pending.clear();
        self.written = 0;
        // One large message (a snapshot) should not pin its buffer.
        if self.pending.capacity() > MAX_BATCH_BYTES {
            self.pending.shrink_to(64 * 1024);
        }
        Poll::Ready(Ok(()))
    }
}

/// The node's side of a link: it writes directly while the link is idle
/// and queues otherwise. Dropping it closes the queue, which stops the
/// link task.
pub(crate) struct NodeSide<S> {
    shared: Arc<Mutex<Shared<S>>>,
    queue: async_channel::Sender<Outgoing>,
    /// Messages were encoded into `pending` since the last flush.
    unflushed: bool,
    /// The connection broke since the node's task last asked: what was
    /// written or queued may be lost. Outside the lock, so that asking on
    /// every flush costs a load.
    lost: Arc<AtomicBool>,
}

/// The link task's side: it connects, finishes what the node's task could
/// not write, and sends the queue.
pub(crate) struct LinkSide<S> {
    shared: Arc<Mutex<Shared<S>>>,
    queue: async_channel::Receiver<Outgoing>,
    lost: Arc<AtomicBool>,
}

/// A link with room for `capacity` queued messages, not yet connected.
pub(crate) fn link<S>(capacity: usize) -> (NodeSide<S>, LinkSide<S>) {
    let shared = Arc::new(Mutex::new(Shared {
        stream: None,
        pending: Vec::new(),
        written: 0,
        busy: true,
        failed: None,
    }));
    let lost = Arc::new(AtomicBool::new(false));
    let (sender, receiver) = async_channel::bounded(capacity.max(1));
    let node = NodeSide {
        shared: Arc::clone(&shared),
        queue: sender,
        unflushed: false,
        lost: Arc::clone(&lost),
    };
    (
        node,
        LinkSide {
            shared,
            queue: receiver,
            lost,
        },
    )
}

/// On TCP, `send` encodes the message for the next `flush` while the link
/// is idle and queues it otherwise (dropping it when the queue is full);
/// `flush` writes what the socket takes now and leaves the rest to the
/// link task.
impl<S: AsyncWrite + Unpin + Send> PeerLink for NodeSide<S> {
    fn send(&mut self, message: Message) -> bool {
        let mut shared = lock(&self.shared);
        if shared.busy {
            // Under the lock, so the link task cannot go idle in between
            // and let a later message overtake this one.
            return self.queue.try_send(Outgoing::Message(message)).is_ok();
        }
        frame::encode_message_frame(&message, &mut shared.pending);
        self.unflushed = true;
        true
    }

    fn flush(&mut self) {
        if !std::mem::take(&mut self.unflushed) {
            return;
        }
        let mut shared = lock(&self.shared);
        if shared.busy {
            // The link task cannot take over between `send` and here (it
            // waits on its queue while the link is idle); should that ever
            // change, the bytes are its to write and its waker must stay.
            return;
        }
        let mut context = Context::from_waker(noop_waker_ref());
        match shared.poll_write_pending(&mut context) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(error)) => {
                shared.failed = Some(error);
                self.hand_over(&mut shared);
            }
            // The link task polls again with its own waker, which replaces
            // the no-op one registered here.
            Poll::Pending => self.hand_over(&mut shared),
        }
    }

    fn take_lost(&mut self) -> bool {
        self.lost.load(Ordering::Relaxed) && self.lost.swap(false, Ordering::Relaxed)
    }
}

impl<S> NodeSide<S> {
    fn hand_over(&self, shared: &mut Shared<S>) {
        shared.busy = true;
        // The queue is empty while the link is idle, so this fits; and if
        // the link task is gone, there is no one left to tell.
        let _ = self.queue.try_send(Outgoing::Resume);
    }
}

impl<S: AsyncWrite + Unpin> LinkSide<S> {
    /// Whether the node dropped its side: the link is no longer wanted.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.queue.is_closed()
    }

    /// Takes `stream` as the connection; the link stays busy until
    /// [`send_until_closed`](LinkSide::send_until_closed) finds nothing to
    /// do.
    pub(crate) fn connected(&self, stream: S) {
        let mut shared = lock(&self.shared);
        shared.stream = Some(stream);
        shared.pending.clear();
        shared.written = 0;
        shared.failed = None;
        shared.busy = true;
    }

    /// Drops the connection after a failure and drops every queued message:
    /// they are stale by the time the peer is back, and Raft resends what
    /// is still needed.
    pub(crate) fn disconnected(&self) {
        let mut shared = lock(&self.shared);
        shared.stream = None;
        shared.pending.clear();
        shared.written = 0;
        shared.busy = true;
        self.lost.store(true, Ordering::Relaxed);
        while self.queue.try_recv().is_ok() {}
    }

    /// Sends until the node drops its side (`Ok`, after closing the
    /// connection) or the connection fails. Whatever is queued when a write
    /// starts goes out in one write.
    pub(crate) async fn send_until_closed(&self) -> io::Result<()> {
        loop {
            poll_fn(|context| lock(&self.shared).poll_write_pending(context)).await?;
            if self.take_queued() {
                continue;
            }
            match self.queue.recv().await {
                Ok(Outgoing::Message(message)) => {
                    let mut shared = lock(&self.shared);
                    shared.busy = true;
                    frame::encode_message_frame(&message, &mut shared.pending);
                }
                Ok(Outgoing::Resume) => {}
                Err(_) => {
                    let stream = lock(&self.shared).stream.take();
                    if let Some(mut stream) = stream {
                        stream.close().await.ok();
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Encodes queued messages into the pending bytes, up to a batch.
    /// When nothing is pending or queued, hands the link to the node's
    /// task (idle) and returns `false`.
    fn take_queued(&self) -> bool {
        let mut shared = lock(&self.shared);
        while shared.pending.len() < MAX_BATCH_BYTES {
            match self.queue.try_recv() {
                Ok(Outgoing::Message(message)) => {
                    frame::encode_message_frame(&message, &mut shared.pending)
                }
                Ok(Outgoing::Resume) => {}
                Err(_) => break,
            }
        }
        if shared.pending.is_empty() && shared.failed.is_none() {
            shared.busy = false;
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use futures::FutureExt;
    use kontiki::{LeadershipCheck, Term};

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

        /// The rounds of the leadership checks received, in order.
        fn rounds(&self) -> Vec<u64> {
            let state = self.state.lock().unwrap();
            let mut rest = &state.received[..];
            let mut rounds = Vec::new();
            while rest.len() >= 4 {
                let length = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
                match kontiki::wire::decode(&rest[4..4 + length]).unwrap() {
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
        let (node, link) = super::link::<Socket>(8);
        link.connected(socket.clone());
        let task_link = LinkSide {
            shared: Arc::clone(&link.shared),
            queue: link.queue.clone(),
            lost: Arc::clone(&link.lost),
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

    #[test]
    fn dropping_the_node_side_closes_the_connection_and_ends_the_task() {
        let socket = Socket::with_room(usize::MAX);
        let (node, link, mut task) = connected(&socket);
        drop(node);
        let result = task.as_mut().now_or_never().expect("the link task stops");
        assert!(result.is_ok());
        assert!(lock(&link.shared).stream.is_none());
    }
}

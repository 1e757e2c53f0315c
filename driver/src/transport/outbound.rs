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
//!
//! A snapshot's data is read from the node's snapshot store as it is
//! sent (inside the node, messages carry a reference to it). One no
//! larger than a chunk goes in its message; a larger one is the link
//! task's: it streams it (`snapshot_stream`) between the queued messages,
//! a chunk at a time, and reads the peer's progress reports on the same
//! connection.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::{self, poll_fn, Either};
use futures::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use futures::task::noop_waker_ref;
use kontiki::{InstallSnapshot, Message, NodeId};
use tracing::{debug, warn};

use super::frame::{self, Kind};
use super::links::PeerLink;
use super::snapshot_stream::{
    Progress, Reaction, SnapshotSend, StreamError, StreamLimits, PROGRESS_BYTES,
};
use crate::snapshot_store::{CheckedReader, SnapshotRef, SnapshotStore};
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
    /// The snapshot being streamed to the peer, if any.
    snapshot: Option<SnapshotSend>,
    limits: StreamLimits,
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
    /// The node's snapshot store, which its snapshots refer into.
    store: Arc<dyn SnapshotStore>,
    limits: StreamLimits,
}

/// The link task's side: it connects, finishes what the node's task could
/// not write, and sends the queue.
pub(crate) struct LinkSide<S> {
    shared: Arc<Mutex<Shared<S>>>,
    queue: async_channel::Receiver<Outgoing>,
    lost: Arc<AtomicBool>,
    /// Wakes the link task when a progress report opened the window.
    wake: (async_channel::Sender<()>, async_channel::Receiver<()>),
}

/// A link with room for `capacity` queued messages, streaming snapshots
/// from `store` within `limits`, not yet connected.
pub(crate) fn link<S>(
    capacity: usize,
    limits: StreamLimits,
    store: Arc<dyn SnapshotStore>,
) -> (NodeSide<S>, LinkSide<S>) {
    let shared = Arc::new(Mutex::new(Shared {
        stream: None,
        pending: Vec::new(),
        written: 0,
        busy: true,
        failed: None,
        snapshot: None,
        limits,
    }));
    let lost = Arc::new(AtomicBool::new(false));
    let (sender, receiver) = async_channel::bounded(capacity.max(1));
    let node = NodeSide {
        shared: Arc::clone(&shared),
        queue: sender,
        unflushed: false,
        lost: Arc::clone(&lost),
        store,
        limits,
    };
    (
        node,
        LinkSide {
            shared,
            queue: receiver,
            lost,
            wake: async_channel::bounded(1),
        },
    )
}

/// On TCP, `send` encodes the message for the next `flush` while the link
/// is idle and queues it otherwise (dropping it when the queue is full);
/// `flush` writes what the socket takes now and leaves the rest to the
/// link task.
impl<S: AsyncWrite + Unpin + Send> PeerLink for NodeSide<S> {
    fn send(&mut self, mut message: Message) -> bool {
        let mut streamed = None;
        if let Message::InstallSnapshot(install) = &mut message {
            match self.prepare_snapshot(install) {
                Ok(None) => {}
                Ok(Some(data)) => streamed = Some(data),
                Err(error) => {
                    warn!(%error, "reading a snapshot to send failed");
                    self.snapshot_lost();
                    return false;
                }
            }
        }
        let mut shared = lock(&self.shared);
        if shared
            .snapshot
            .as_ref()
            .is_some_and(|stream| message.term() > stream.term())
        {
            // The node left the term its snapshot was sent in: it no
            // longer leads there, and the follower would refuse it.
            shared.snapshot = None;
        }
        if let (Some(data), Message::InstallSnapshot(install)) = (streamed, &message) {
            // The core sends a snapshot again while the follower has not
            // answered; the stream under way carries on instead.
            if !shared
                .snapshot
                .as_ref()
                .is_some_and(|stream| stream.carries(install, data.len))
            {
                let reader = match self.store.open(&data) {
                    Ok(reader) => reader,
                    Err(error) => {
                        warn!(%error, "opening a snapshot to stream failed");
                        self.snapshot_lost();
                        return false;
                    }
                };
                shared.snapshot = Some(SnapshotSend::new(install, data.len, reader));
                if !shared.busy {
                    self.hand_over(&mut shared);
                }
            }
            return true;
        }
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
    /// Makes `install` ready to go: a snapshot small enough for one frame
    /// gets its data read from the store into the message; a larger one
    /// is to be streamed, and its reference is returned.
    fn prepare_snapshot(
        &self,
        install: &mut InstallSnapshot,
    ) -> std::io::Result<Option<SnapshotRef>> {
        let data = SnapshotRef::of(&install.snapshot.data)?;
        if self.limits.streams(data.len) {
            return Ok(Some(data));
        }
        install.snapshot.data = CheckedReader::open(&*self.store, data)?.read_whole()?;
        Ok(None)
    }

    /// A snapshot could not be read to go out: the core hears that the
    /// peer lost a message, so that it probes again and sends a snapshot
    /// once the peer answers — its newest, should the one it sent be gone
    /// from the store (replaced by a newer one since).
    fn snapshot_lost(&self) {
        self.lost.store(true, Ordering::Relaxed);
    }

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
        if let Some(snapshot) = shared.snapshot.as_mut() {
            snapshot.reconnected();
        }
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
        // A snapshot the peer received whole is forgotten: should the
        // core send it again, the peer may have lost it (say, restarted).
        if shared
            .snapshot
            .as_ref()
            .is_some_and(SnapshotSend::is_complete)
        {
            shared.snapshot = None;
        }
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
            let queued = std::pin::pin!(self.queue.recv());
            let woken = std::pin::pin!(self.wake.1.recv());
            let next = future::select(queued, woken).await;
            let Either::Left((next, _)) = next else {
                continue; // the window opened: take_queued sends more
            };
            match next {
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

    /// Encodes queued messages into the pending bytes, up to a batch, and
    /// then the snapshot stream's next frame if it may go. When nothing is
    /// pending or queued, hands the link to the node's task (idle) and
    /// returns `false`.
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
        let Shared {
            snapshot,
            pending,
            limits,
            ..
        } = &mut *shared;
        if let Some(stream) = snapshot {
            if pending.len() < MAX_BATCH_BYTES {
                if let Err(error) = stream.write_next(*limits, pending) {
                    // The core sends its snapshot again later, and it is
                    // streamed anew.
                    warn!(%error, "reading a snapshot to stream failed; dropped it");
                    *snapshot = None;
                }
            }
        }
        if shared.pending.is_empty() && shared.failed.is_none() {
            shared.busy = false;
            return false;
        }
        shared.busy = true;
        true
    }

    /// Reads `peer`'s progress reports on the snapshot stream until the
    /// connection fails or the peer closes it (an error either way: the
    /// link reconnects). Anything but a well-formed report costs the
    /// connection.
    pub(crate) async fn receive_progress(
        &self,
        peer: NodeId,
        reader: &mut (impl AsyncRead + Unpin),
    ) -> io::Result<()> {
        loop {
            let Some(frame) = frame::read_frame(reader, 1 + PROGRESS_BYTES).await? else {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the peer closed the connection",
                ));
            };
            let progress = match Kind::split(&frame) {
                Some((Kind::SnapshotProgress, body)) => Progress::decode(&body),
                _ => Err(StreamError::Malformed("not a progress report")),
            }
            .map_err(invalid_data)?;
            self.on_progress(peer, &progress)?;
        }
    }

    /// Takes one progress report from `peer`, and wakes the link task if
    /// more of the snapshot may go.
    fn on_progress(&self, peer: NodeId, progress: &Progress) -> io::Result<()> {
        let mut shared = lock(&self.shared);
        let Some(snapshot) = shared.snapshot.as_mut() else {
            return Ok(());
        };
        match snapshot.on_progress(progress).map_err(invalid_data)? {
            Reaction::None => {}
            Reaction::Complete => {
                debug!(%peer, index = %progress.stream.index, "snapshot streamed");
            }
            Reaction::Refused => {
                warn!(%peer, index = %progress.stream.index, "the peer refused the snapshot (too large for it, or a stale term)");
                shared.snapshot = None;
            }
            Reaction::MayContinue => {
                drop(shared);
                // Full when a wake-up is already pending: one is enough.
                let _ = self.wake.0.try_send(());
            }
        }
        Ok(())
    }
}

fn invalid_data(error: StreamError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error.to_string())
}

#[cfg(test)]
#[path = "outbound_tests.rs"]
mod tests;

//! The node's task: it owns the core, feeds it events and performs its
//! outputs — persisting before sending or applying what follows.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant as StdInstant;

use async_channel::TryRecvError;
use bytes::Bytes;
use futures::{future, FutureExt, Stream};
use kontiki::{
    Command, Entry, EntryKind, HandleError, Handled, Input, LogIndex, Node, Output, Snapshot, Term,
};
use rand_chacha::ChaCha8Rng;
use tracing::{debug, error, info};

use crate::error::{annotate, ChangeError, ProposeError, ReadError, TransferError};
use crate::handle::{LeaderChange, Published, Request, StateMachine};
use crate::metrics::{NodeMetrics, Position};
use crate::round::{Step, ToApply};
use crate::runtime::Runtime;
use crate::shutdown::ShutdownTrigger;
use crate::snapshot_store::{CheckedReader, SnapshotRef, SnapshotStore};
use crate::storage::Storage;
use crate::sync::lock;
use crate::transport::{Inbound, PeerLinks};
use crate::waiters::{ChangeReply, EntryReply, PendingTransfer, ReadWaiters, Waiter, Waiters};
use crate::writer::{Completed, Deferred, Writer};

/// Inputs handled before the outputs are performed: the batch that makes
/// one durable write and one message per peer out of many proposals.
const MAX_INPUTS_PER_BATCH: usize = 512;

/// Maps the runtime's clock to the core's.
#[derive(Clone, Copy)]
pub(crate) struct Clock {
    start: StdInstant,
}

impl Clock {
    pub(crate) fn new(start: StdInstant) -> Clock {
        Clock { start }
    }

    pub(crate) fn to_core(self, now: StdInstant) -> kontiki::Instant {
        let micros = now.saturating_duration_since(self.start).as_micros();
        kontiki::Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    fn to_runtime(self, deadline: kontiki::Instant) -> StdInstant {
        self.start + std::time::Duration::from_micros(deadline.as_micros())
    }
}

type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

enum Event<M: StateMachine> {
    Request(Option<Request<M>>),
    Message(Inbound),
    Timer,
    /// A snapshot written in the background, of the state at `index`
    /// (or why writing it failed).
    SnapshotWritten {
        index: LogIndex,
        data: io::Result<Bytes>,
    },
    /// The storage write in flight completed (or failed).
    Written(io::Result<Completed>),
}

/// A snapshot being written on a blocking thread, of the state at its
/// index.
type WritingSnapshot = Pin<Box<dyn Future<Output = (LogIndex, io::Result<Bytes>)> + Send>>;

/// Everything the node's task owns.
pub(crate) struct EventLoop<R: Runtime, S: Storage, M: StateMachine> {
    pub(crate) runtime: R,
    pub(crate) clock: Clock,
    pub(crate) node: Node<ChaCha8Rng>,
    /// The store, behind the writer that performs the core's writes.
    pub(crate) writer: Writer<S>,
    /// Why the store failed, once it has: the node then stops.
    pub(crate) storage_failed: Option<io::Error>,
    /// The outputs of the round being performed (kept for its memory).
    pub(crate) drained: Vec<Output>,
    pub(crate) state_machine: M,
    pub(crate) links: PeerLinks,
    // Boxed because a waiting receiver must stay pinned.
    pub(crate) inbound: Pin<Box<async_channel::Receiver<Inbound>>>,
    pub(crate) requests: Pin<Box<async_channel::Receiver<Request<M>>>>,
    pub(crate) published: Arc<Published>,
    pub(crate) shutdown: Option<ShutdownTrigger>,
    pub(crate) timer: Option<(StdInstant, Sleep)>,
    pub(crate) waiters: Waiters<M::Output>,
    pub(crate) readers: ReadWaiters,
    pub(crate) last_leader: LeaderChange,
    /// Applied entries between snapshots; 0 once the state machine said
    /// it takes none.
    pub(crate) snapshot_interval: u64,
    /// The snapshot being written in the background, if any.
    pub(crate) writing_snapshot: Option<WritingSnapshot>,
    /// The applied index of the last snapshot that failed to be written:
    /// the next is asked for an interval after it.
    pub(crate) snapshot_retry_after: LogIndex,
    /// Where snapshots' data lives; the core's snapshots carry references
    /// into it.
    pub(crate) snapshot_store: Arc<dyn SnapshotStore>,
    /// The leadership transfer asked for, until its outcome is known.
    pub(crate) transfer: Option<PendingTransfer>,
    /// How long a transfer may leave this node without a known leader
    /// before it counts as failed.
    pub(crate) transfer_timeout: std::time::Duration,
    /// Requesters of joint changes applied, waiting for the joint
    /// configuration to be left.
    pub(crate) settling: Vec<ChangeReply>,
    /// The configuration the published members list shows.
    pub(crate) members_of: kontiki::Membership,
    /// What the node measures (see the `metrics` module).
    pub(crate) metrics: NodeMetrics,
}

impl<R: Runtime, S: Storage, M: StateMachine> EventLoop<R, S, M> {
    /// Runs until shutdown, the last handle is dropped, or storage fails.
    pub(crate) async fn run(mut self) {
        let mut stopped_by: Option<oneshot::Sender<()>> = None;
        let mut failed = false;
        if let Err(error) = self.perform_outputs() {
            error!(%error, "stopping the node");
            failed = true;
        } else {
            'running: loop {
                let event = self.next_event().await;
                // One clock reading serves the events of a round that are
                // ready at once.
                let mut now = self.runtime.now();
                let mut stop = self.handle_event(now, event);
                // Take whatever else is already waiting, so that it shares
                // this round's durable write and messages.
                let mut yielded = false;
                for _ in 0..MAX_INPUTS_PER_BATCH {
                    if stop.is_some() {
                        break;
                    }
                    let Some(event) = self.ready_event() else {
                        break;
                    };
                    if !yielded {
                        // A second input already waiting means the node is
                        // busy: let the tasks that are ready (proposers,
                        // peers) run first, so that what they are about to
                        // send joins this round rather than starting a
                        // round of its own. On two worker threads this
                        // turns rounds of a few inputs into rounds of tens
                        // to hundreds; an idle node (one input per round)
                        // never pays for it.
                        yielded = true;
                        yield_once().await;
                        now = self.runtime.now();
                    }
                    stop = self.handle_event(now, event);
                }
                if let Err(error) = self.perform_outputs() {
                    error!(%error, "stopping the node");
                    failed = true;
                    break 'running;
                }
                if let Some(stop) = stop {
                    stopped_by = stop;
                    break 'running;
                }
            }
        }
        self.stop(stopped_by, failed).await;
    }

    /// Stops every task of the node and fails whoever still waits; the
    /// writes queued are finished first unless the node `failed`.
    async fn stop(mut self, stopped_by: Option<oneshot::Sender<()>>, failed: bool) {
        info!(node = %self.node.id(), "node stopping");
        drop(self.shutdown.take());
        self.waiters.fail_all(ProposeError::Stopped);
        self.fail_membership_waiters();
        self.readers.fail_all(ReadError::Stopped);
        // Closed before saying the node stopped: a `LocalNetwork` lets a
        // node with this id start again only once its inbox is closed.
        self.inbound.close();
        self.requests.close();
        while let Ok(request) = self.requests.try_recv() {
            refuse_stopped(request);
        }
        // Finish the writes (unless the store failed) and close the store
        // before saying the node stopped, so that whoever awaited
        // `shutdown()` can open it again at once.
        let storage = if !failed {
            self.writer.finish(&self.runtime).await
        } else {
            self.writer.close()
        };
        drop(storage);
        if let Some(stopped_by) = stopped_by {
            let _ = stopped_by.send(());
        }
    }

    /// Waits for the next request, message or timer.
    async fn next_event(&mut self) -> Event<M> {
        future::poll_fn(|cx| {
            // First: a completed write releases acknowledgements.
            if let Poll::Ready(result) = self.writer.poll_completed(cx) {
                return Poll::Ready(Event::Written(result));
            }
            if let Poll::Ready(request) = self.requests.as_mut().poll_next(cx) {
                return Poll::Ready(Event::Request(request));
            }
            if let Poll::Ready(Some(message)) = self.inbound.as_mut().poll_next(cx) {
                return Poll::Ready(Event::Message(message));
            }
            if let Some((_, sleep)) = &mut self.timer {
                if sleep.poll_unpin(cx).is_ready() {
                    return Poll::Ready(Event::Timer);
                }
            }
            if let Some(writing) = &mut self.writing_snapshot {
                if let Poll::Ready((index, data)) = writing.poll_unpin(cx) {
                    self.writing_snapshot = None;
                    return Poll::Ready(Event::SnapshotWritten { index, data });
                }
            }
            Poll::Pending
        })
        .await
    }

    /// An event that is ready now, if any.
    fn ready_event(&mut self) -> Option<Event<M>> {
        match self.requests.try_recv() {
            Ok(request) => return Some(Event::Request(Some(request))),
            Err(TryRecvError::Closed) => return Some(Event::Request(None)),
            Err(TryRecvError::Empty) => {}
        }
        self.inbound.try_recv().ok().map(Event::Message)
    }

    /// Hands one event to the core; `Some` when the node must stop
    /// (carrying whom to tell once it has).
    fn handle_event(
        &mut self,
        runtime_now: StdInstant,
        event: Event<M>,
    ) -> Option<Option<oneshot::Sender<()>>> {
        let now = self.clock.to_core(runtime_now);
        match event {
            Event::Request(None) => return Some(None),
            Event::Request(Some(Request::Shutdown(reply))) => return Some(Some(reply)),
            Event::Request(Some(Request::Propose(command, reply))) => {
                let result = self
                    .node
                    .handle(now, Input::Command(Command::Propose(command)));
                match result {
                    Ok(Handled::Proposed { index, term }) => {
                        self.waiters.add(
                            index,
                            Waiter {
                                term,
                                reply: EntryReply::Command(reply),
                            },
                        );
                    }
                    Ok(other) => unexpected(other, reply, ProposeError::NotLeader { leader: None }),
                    Err(refused) => drop(reply.send(Err(proposal_refused(refused)))),
                }
            }
            Event::Request(Some(Request::Change {
                change,
                settled,
                reply,
            })) => self.request_change(now, change, settled, reply),
            Event::Request(Some(Request::Transfer(target, reply))) => {
                self.request_transfer(now, runtime_now, target, reply);
            }
            Event::Request(Some(Request::Read(reply))) => {
                let result = self.node.handle(now, Input::Command(Command::Read));
                match result {
                    Ok(Handled::ReadQueued { round }) => self.readers.add(round, reply),
                    Ok(other) => unexpected(other, reply, ReadError::NotLeader { leader: None }),
                    Err(refused) => drop(reply.send(Err(read_refused(refused)))),
                }
            }
            Event::Message((from, message)) => {
                self.metrics.received(&message);
                if let Err(refused) = self.node.handle(now, Input::Message { from, message }) {
                    debug!(%from, %refused, "message refused");
                }
            }
            Event::SnapshotWritten { index, data } => self.take_written_snapshot(now, index, data),
            Event::Written(result) => {
                let result = result.and_then(|completed| self.complete_write(completed));
                if let Err(error) = result {
                    self.storage_failed = Some(error);
                }
            }
            Event::Timer => {
                let deadline = self.timer.as_ref().map(|(deadline, _)| *deadline);
                self.timer = None;
                // A timer may fire early (or the runtime's budget may have
                // delayed it): the clock decides, not the timer.
                match deadline {
                    Some(deadline) if runtime_now < deadline => self.arm_timer(deadline),
                    _ => {
                        let _ = self.node.handle(now, Input::Timer);
                    }
                }
            }
        }
        None
    }

    /// Hands the core the snapshot written in the background, of the
    /// state at `index`.
    fn take_written_snapshot(
        &mut self,
        now: kontiki::Instant,
        index: LogIndex,
        data: io::Result<Bytes>,
    ) {
        let data = match data {
            Ok(data) => data,
            Err(error) => {
                // The previous snapshot stays; another is asked for an
                // interval later.
                error!(%index, %error, "writing a snapshot failed");
                self.snapshot_retry_after = index;
                return;
            }
        };
        // Refused only when a snapshot from the leader overtook it.
        if let Err(refused) = self.node.handle(now, Input::SnapshotTaken { index, data }) {
            debug!(%index, %refused, "snapshot written in the background not taken");
        }
    }

    fn arm_timer(&mut self, deadline: StdInstant) {
        let sleep = self.runtime.sleep_until(deadline);
        self.timer = Some((deadline, Box::pin(sleep)));
    }

    /// Performs the core's outputs (see [`Step`]), until the core has
    /// nothing more to say: a completed write or a snapshot taken may
    /// produce more outputs. Never waits for a write: a write in flight
    /// completes as an event of its own.
    fn perform_outputs(&mut self) -> io::Result<()> {
        loop {
            if let Some(error) = self.storage_failed.take() {
                return Err(annotate(error, "storage failed"));
            }
            // Before sending: a member added this round is sent to now.
            self.links.follow(self.node.membership());
            let mut drained = std::mem::take(&mut self.drained);
            drained.extend(self.node.drain_outputs());
            let mut applies = Vec::new();
            let mut sent = false;
            for output in drained.drain(..) {
                let deferred = match Step::of(output) {
                    Step::Write(write) => {
                        self.writer.queue(write);
                        continue;
                    }
                    Step::Send(to, message) => Deferred::Send(to, message),
                    Step::Apply(item) => Deferred::Apply(item),
                    Step::Timer(deadline) => {
                        self.arm_timer(self.clock.to_runtime(deadline));
                        continue;
                    }
                    Step::None => continue,
                };
                match self.writer.pass(deferred) {
                    Some(Deferred::Send(to, message)) => {
                        self.metrics.sent(&message);
                        self.links.send(to, message);
                        sent = true;
                    }
                    Some(Deferred::Apply(item)) => applies.push(item),
                    None => {}
                }
            }
            self.drained = drained;
            self.writer.start(&self.runtime);
            if sent {
                self.links.flush();
            }
            self.report_unreachable();
            // The status first, so that a proposer who hears back finds its
            // entry committed there; its applied index moves with each
            // entry below, never ahead of the state machine.
            self.publish_status();
            self.apply(applies)?;
            self.start_snapshot_if_due();
            let Some(completed) = self.writer.take_completed() else {
                return Ok(());
            };
            let completed = completed.map_err(|error| annotate(error, "storage failed"))?;
            self.complete_write(completed)?;
        }
    }

    /// A write completed: performs what waited for it, in the order
    /// drained, tells the core, and starts the writes queued meanwhile.
    fn complete_write(&mut self, completed: Completed) -> io::Result<()> {
        let mut applies = Vec::new();
        let mut sent = false;
        for item in completed.released {
            match item {
                Deferred::Send(to, message) => {
                    self.metrics.sent(&message);
                    self.links.send(to, message);
                    sent = true;
                }
                Deferred::Apply(item) => applies.push(item),
            }
        }
        if sent {
            self.links.flush();
        }
        if !applies.is_empty() {
            // As in a round: the status before the proposers hear back.
            self.publish_status();
            self.apply(applies)?;
        }
        if let Some((index, term)) = completed.report {
            self.report_persisted(index, term);
        }
        self.writer.start(&self.runtime);
        Ok(())
    }

    /// Applies entries and snapshots and answers readers, in the
    /// core's order.
    fn apply(&mut self, applies: Vec<ToApply>) -> io::Result<()> {
        for item in applies {
            match item {
                ToApply::Entry(entry) => self.apply_entry(entry),
                ToApply::Snapshot(snapshot) => self.restore(&snapshot)?,
                ToApply::ReadsReady(round) => self.readers.answer_through(round, Ok(())),
                ToApply::ReadsFailed(round) => {
                    let leader = self.node.leader();
                    self.readers
                        .answer_through(round, Err(ReadError::NotLeader { leader }));
                }
            }
        }
        Ok(())
    }

    /// Tells the core which peers lost messages for being unreachable, so
    /// that a leader probes them again from its next heartbeat (and sends a
    /// snapshot one needs once it answers) rather than waiting for answers
    /// to what was lost.
    fn report_unreachable(&mut self) {
        let unreachable = self.links.take_unreachable();
        if unreachable.is_empty() {
            return;
        }
        let now = self.clock.to_core(self.runtime.now());
        for peer in unreachable {
            let _ = self.node.handle(now, Input::Unreachable { peer });
        }
    }

    /// Tells the core its log is durable through `index`.
    fn report_persisted(&mut self, index: LogIndex, term: Term) {
        let now = self.clock.to_core(self.runtime.now());
        let _ = self.node.handle(now, Input::Persisted { index, term });
    }

    /// Replaces the state machine's state with a snapshot's. Proposers of
    /// entries it covers cannot learn whether theirs committed.
    fn restore(&mut self, snapshot: &Snapshot) -> io::Result<()> {
        self.waiters.fail_through(snapshot.index);
        // Read here, on the node's task, which owns the state machine: a
        // restore stops the node for as long as it takes, as it must (the
        // state is not there until it is done).
        let started = StdInstant::now();
        let restored = SnapshotRef::of(&snapshot.data).and_then(|data| {
            let bytes = data.len;
            let mut reader = CheckedReader::open(&*self.snapshot_store, data)?;
            self.state_machine.restore(snapshot.index, &mut reader)?;
            reader.finish()?;
            Ok(bytes)
        });
        let bytes = restored.map_err(|error| annotate(error, "restoring a snapshot failed"))?;
        self.published.set_applied(snapshot.index);
        // Rare and costly (the node's task stops for it): worth a line.
        info!(
            index = %snapshot.index,
            term = %snapshot.term,
            bytes,
            took_ms = started.elapsed().as_millis() as u64,
            "restored a snapshot"
        );
        Ok(())
    }

    /// Starts writing a snapshot of the state machine on a blocking
    /// thread once `snapshot_interval` entries were applied since the last
    /// one (or since a failed attempt); the core hears of it when it is
    /// written.
    fn start_snapshot_if_due(&mut self) {
        if self.snapshot_interval == 0 || self.writing_snapshot.is_some() {
            return;
        }
        let applied = self.node.applied_index();
        let since = self.node.snapshot_index().max(self.snapshot_retry_after);
        if applied.get() < since.get().saturating_add(self.snapshot_interval) {
            return;
        }
        let Some(write) = self.state_machine.snapshot() else {
            // This state machine takes no snapshots: stop asking.
            self.snapshot_interval = 0;
            return;
        };
        let store = Arc::clone(&self.snapshot_store);
        let written = self.runtime.run_blocking(move || {
            let mut sink = store.create()?;
            write(&mut sink)?;
            sink.finish().map(|written| written.encode())
        });
        self.writing_snapshot = Some(Box::pin(written.map(move |data| (applied, data))));
    }

    /// Applies a committed entry and answers whoever proposed it here.
    fn apply_entry(&mut self, entry: Entry) {
        let output = match entry.kind {
            EntryKind::Command => Some(self.state_machine.apply(entry.index, &entry.data)),
            _ => None,
        };
        // Before the proposer hears back, so that it sees its entry applied.
        self.published.set_applied(entry.index);
        let Some(waiter) = self.waiters.take(entry.index) else {
            return;
        };
        if waiter.term != entry.term {
            waiter.fail(ProposeError::Superseded);
            return;
        }
        match (waiter.reply, output) {
            (EntryReply::Command(reply), Some(output)) => drop(reply.send(Ok(output))),
            (EntryReply::Change { reply, settled }, None)
                if entry.kind == EntryKind::Membership =>
            {
                self.change_applied(entry.index, reply, settled);
            }
            // An entry of another kind than proposed, in the same term, is
            // not this proposer's: the core never writes one there.
            (reply, _) => Waiter {
                term: waiter.term,
                reply,
            }
            .fail(ProposeError::Superseded),
        }
    }

    fn publish_status(&mut self) {
        let change = LeaderChange {
            term: self.node.term(),
            leader: self.node.leader(),
        };
        {
            let published = Arc::clone(&self.published);
            let mut status = lock(&published.status);
            status.id = self.node.id();
            status.role = self.node.role();
            status.term = change.term;
            status.leader = change.leader;
            status.commit_index = self.node.commit_index();
            status.applied_index = self.node.applied_index();
            status.last_log_index = self.node.last_log_index();
            status.snapshot_index = self.node.snapshot_index();
            status.last_leader_contact = self
                .node
                .leader_contact_at()
                .map(|at| self.clock.to_runtime(at));
            self.refresh_members(&mut status.members);
            status.membership_index = self.node.membership_index();
            status.recovering = self.node.is_recovering();
        }
        let leader_changed = change != self.last_leader;
        self.metrics.observe(&Position {
            term: change.term.0,
            role: self.node.role(),
            commit_index: self.node.commit_index().0,
            applied_index: self.node.applied_index().0,
            last_log_index: self.node.last_log_index().0,
            leader_changed,
            requests_queued: self.requests.len(),
            inbound_queued: self.inbound.len(),
            messages_dropped: self.links.dropped(),
        });
        if leader_changed {
            if change.term != self.last_leader.term {
                tracing::Span::current().record("term", change.term.0);
            }
            self.last_leader = change;
            if let Some(leader) = change.leader {
                info!(term = %change.term, %leader, "leader known");
            }
            self.published.announce(change);
        }
        self.check_transfer(self.runtime.now());
        self.answer_settled();
    }
}

/// Lets every other task that is ready run before this one goes on: wakes
/// itself and is pending once, which every executor treats as a yield.
fn yield_once() -> impl Future<Output = ()> {
    let mut yielded = false;
    future::poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

/// Why the core refused a proposal, as its proposer hears it.
fn proposal_refused(refused: HandleError) -> ProposeError {
    match refused {
        HandleError::NotLeader { leader_hint } => ProposeError::NotLeader {
            leader: leader_hint,
        },
        HandleError::TooManyUncommittedBytes => ProposeError::Busy,
        // The leadership moves to `target` within a round trip or two.
        HandleError::TransferInProgress { target } => ProposeError::NotLeader {
            leader: Some(target),
        },
        other => {
            // The core has no other refusal of a proposal today; should one
            // appear, the caller hears "not leader" rather than nothing.
            debug_assert!(false, "unexpected refusal: {other:?}");
            ProposeError::NotLeader { leader: None }
        }
    }
}

/// Why the core refused a read, as its reader hears it.
fn read_refused(refused: HandleError) -> ReadError {
    match refused {
        HandleError::NotLeader { leader_hint } => ReadError::NotLeader {
            leader: leader_hint,
        },
        other => {
            debug_assert!(false, "unexpected refusal: {other:?}");
            ReadError::NotLeader { leader: None }
        }
    }
}

/// A request the core accepted in a way it never answers that request
/// with: the caller hears `error` rather than waiting forever.
fn unexpected<T, E>(handled: Handled, reply: oneshot::Sender<Result<T, E>>, error: E) {
    debug_assert!(false, "unexpected answer to a request: {handled:?}");
    drop(reply.send(Err(error)));
}

/// Answers a request that arrived after the node began to stop.
fn refuse_stopped<M: StateMachine>(request: Request<M>) {
    match request {
        Request::Propose(_, reply) => drop(reply.send(Err(ProposeError::Stopped))),
        Request::Read(reply) => drop(reply.send(Err(ReadError::Stopped))),
        Request::Change { reply, .. } => drop(reply.send(Err(ChangeError::Stopped))),
        Request::Transfer(_, reply) => drop(reply.send(Err(TransferError::Stopped))),
        Request::Shutdown(reply) => drop(reply.send(())),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Context;

    use futures::task::{waker, ArcWake};

    use super::*;

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl ArcWake for CountingWaker {
        fn wake_by_ref(arc_self: &Arc<Self>) {
            arc_self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn yield_once_is_pending_once_and_asks_to_be_polled_again() {
        let wakes = Arc::new(CountingWaker::default());
        let waker = waker(Arc::clone(&wakes));
        let mut context = Context::from_waker(&waker);
        let mut yielding = Box::pin(yield_once());
        assert!(yielding.as_mut().poll(&mut context).is_pending());
        assert_eq!(wakes.0.load(Ordering::Relaxed), 1, "woke itself");
        assert!(yielding.as_mut().poll(&mut context).is_ready());
        assert_eq!(wakes.0.load(Ordering::Relaxed), 1);
    }
}

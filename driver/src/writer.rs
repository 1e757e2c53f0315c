//! The node's storage writer: writes run in the background, one after
//! another, while the node's task goes on handling messages and timers.
//!
//! The core's ordering rule says which outputs drained after a write must
//! wait until it is durable; the writer holds exactly those back and hands
//! them out again, in the order drained, when the write they wait for
//! completes:
//!
//! - with the core's `asynchronous_writes` (the driver's default), only
//!   sends drained after a hard-state write (a vote or a term) not yet
//!   durable wait, and the sends after those (each peer's messages stay in
//!   order); applies, read answers and every other send go at once;
//! - without it, every send and apply drained after any write waits for
//!   that write.
//!
//! Writes queued while one is in flight are performed together as the
//! next one: one `Storage::write`, one fsync (group commit).

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::FutureExt;
use kontiki::{LogIndex, Message, NodeId, Persist, Term};

use crate::metrics::WriteMetrics;
use crate::round::ToApply;
use crate::runtime::Runtime;
use crate::storage::Storage;

/// An output that waited for a write.
pub(crate) enum Deferred {
    Send(NodeId, Message),
    Apply(ToApply),
}

/// A write that completed: what to report to the core, and what waited
/// for it, in the order drained.
pub(crate) struct Completed {
    /// The last entry (or snapshot) the write made durable.
    pub(crate) report: Option<(LogIndex, Term)>,
    pub(crate) released: Vec<Deferred>,
}

type Writing<S> = Pin<Box<dyn Future<Output = (S, io::Result<()>)> + Send>>;
type BlockingWrite<S> = Box<dyn FnOnce() -> (S, io::Result<()>) + Send>;

/// The write in flight.
struct InFlight<S> {
    number: u64,
    report: Option<(LogIndex, Term)>,
    /// `None` for a store that does not block: it already wrote, and the
    /// result waits here to be taken.
    writing: Option<Writing<S>>,
    written: Option<io::Result<()>>,
}

pub(crate) struct Writer<S> {
    /// `None` while a blocking write has it.
    storage: Option<S>,
    /// Whether the core runs with `asynchronous_writes`.
    asynchronous: bool,
    in_flight: Option<InFlight<S>>,
    /// Writes drained since the one in flight started: the next write.
    queued: Vec<Persist>,
    queued_report: Option<(LogIndex, Term)>,
    /// The number the queued writes will carry; writes are numbered from
    /// 1 in the order they start.
    next_number: u64,
    /// The number of the latest write holding a hard state, until it is
    /// durable.
    hard_state_until: Option<u64>,
    /// Outputs waiting, each with the number of the write it waits for.
    /// Invariant: numbers never decrease from front to back.
    held: VecDeque<(u64, Deferred)>,
    /// How long writes take and how many entries they carry, if measured.
    metrics: Option<WriteMetrics>,
}

/// `storage.write(writes)`, its time and entries recorded in `metrics`.
fn timed_write<S: Storage>(
    storage: &mut S,
    writes: &[Persist],
    metrics: Option<&WriteMetrics>,
) -> io::Result<()> {
    let Some(metrics) = metrics else {
        return storage.write(writes);
    };
    let started = std::time::Instant::now();
    let result = storage.write(writes);
    metrics.seconds.record(started.elapsed().as_secs_f64());
    let entries: usize = writes
        .iter()
        .map(|write| match write {
            Persist::Entries(entries) => entries.len(),
            _ => 0,
        })
        .sum();
    if entries > 0 {
        metrics.entries.record(entries as f64);
    }
    result
}

impl<S: Storage> Writer<S> {
    pub(crate) fn new(storage: S, asynchronous: bool) -> Writer<S> {
        Writer {
            storage: Some(storage),
            asynchronous,
            in_flight: None,
            queued: Vec::new(),
            queued_report: None,
            next_number: 1,
            hard_state_until: None,
            held: VecDeque::new(),
            metrics: None,
        }
    }

    /// The writer, recording each write's time and entries in `metrics`.
    pub(crate) fn measured(mut self, metrics: WriteMetrics) -> Writer<S> {
        self.metrics = Some(metrics);
        self
    }

    /// Queues a write, after every write drained before it.
    pub(crate) fn queue(&mut self, write: Persist) {
        match &write {
            Persist::HardState(_) => self.hard_state_until = Some(self.next_number),
            Persist::Entries(entries) => {
                if let Some(last) = entries.last() {
                    self.queued_report = Some((last.index, last.term));
                }
            }
            // A snapshot the node took of its own log (compaction) lies
            // below entries queued before it, which it leaves in place:
            // the write still makes them durable, and reporting the
            // snapshot's lower index instead would leave them unreported
            // (the core ignores a report below what it knows durable) and
            // a follower's acknowledgement of them waiting for good.
            Persist::Snapshot(snapshot) => {
                if self
                    .queued_report
                    .is_none_or(|(index, _)| snapshot.index > index)
                {
                    self.queued_report = Some((snapshot.index, snapshot.term));
                }
            }
            Persist::TruncateLog { .. } => {}
        }
        self.queued.push(write);
    }

    /// Performs `output` now (`Some` back) or holds it until the write it
    /// must follow is durable (`None`).
    pub(crate) fn pass(&mut self, output: Deferred) -> Option<Deferred> {
        let waits_for = if self.asynchronous {
            match output {
                Deferred::Send(..) => self.hard_state_until.max(self.last_held()),
                Deferred::Apply(_) => None,
            }
        } else {
            self.last_pending()
        };
        match waits_for {
            Some(number) => {
                self.held.push_back((number, output));
                None
            }
            None => Some(output),
        }
    }

    fn last_held(&self) -> Option<u64> {
        self.held.back().map(|(number, _)| *number)
    }

    /// The number of the latest write not yet durable, if any.
    fn last_pending(&self) -> Option<u64> {
        if !self.queued.is_empty() {
            Some(self.next_number)
        } else {
            self.in_flight.as_ref().map(|write| write.number)
        }
    }

    /// Starts the queued writes as one, unless one is in flight: on the
    /// runtime's blocking pool for a store that blocks, else at once (its
    /// result is then ready for [`poll_completed`](Writer::poll_completed)).
    pub(crate) fn start<R: Runtime>(&mut self, runtime: &R) {
        self.start_with(|write| Box::pin(runtime.run_blocking(write)));
    }

    /// [`start`](Writer::start), with `run_blocking` to run a blocking
    /// store's write off the node's task.
    fn start_with(&mut self, run_blocking: impl FnOnce(BlockingWrite<S>) -> Writing<S>) {
        if self.in_flight.is_some() || self.queued.is_empty() {
            return;
        }
        let writes = mem::take(&mut self.queued);
        let mut storage = self
            .storage
            .take()
            .expect("the store is home between writes");
        let metrics = self.metrics.clone();
        let (writing, written) = if storage.blocks() {
            let writing = run_blocking(Box::new(move || {
                let result = timed_write(&mut storage, &writes, metrics.as_ref());
                (storage, result)
            }));
            (Some(writing), None)
        } else {
            let result = timed_write(&mut storage, &writes, metrics.as_ref());
            self.storage = Some(storage);
            (None, Some(result))
        };
        self.in_flight = Some(InFlight {
            number: self.next_number,
            report: self.queued_report.take(),
            writing,
            written,
        });
        self.next_number += 1;
    }

    /// Completes the write in flight once it is done. An error means the
    /// store failed and the node must stop.
    pub(crate) fn poll_completed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Completed>> {
        let Some(write) = &mut self.in_flight else {
            return Poll::Pending;
        };
        if let Some(writing) = &mut write.writing {
            let (storage, result) = futures::ready!(writing.poll_unpin(cx));
            self.storage = Some(storage);
            write.writing = None;
            write.written = Some(result);
        }
        let write = self.in_flight.take().expect("a write in flight");
        let result = write.written.expect("written once the store is home");
        if let Err(error) = result {
            return Poll::Ready(Err(error));
        }
        if self
            .hard_state_until
            .is_some_and(|until| until <= write.number)
        {
            self.hard_state_until = None;
        }
        let mut released = Vec::new();
        while self
            .held
            .front()
            .is_some_and(|(number, _)| *number <= write.number)
        {
            released.push(self.held.pop_front().expect("a front").1);
        }
        Poll::Ready(Ok(Completed {
            report: write.report,
            released,
        }))
    }

    /// The completed write of a store that does not block, if any.
    pub(crate) fn take_completed(&mut self) -> Option<io::Result<Completed>> {
        let ready = self
            .in_flight
            .as_ref()
            .is_some_and(|write| write.writing.is_none());
        if !ready {
            return None;
        }
        let waker = futures::task::noop_waker();
        match self.poll_completed(&mut Context::from_waker(&waker)) {
            Poll::Ready(result) => Some(result),
            Poll::Pending => None,
        }
    }

    /// Finishes the write in flight and performs the queued ones, for a
    /// node that stops; hands the store back (to be closed). What waited
    /// for them is dropped, as a crash would.
    pub(crate) async fn finish<R: Runtime>(&mut self, runtime: &R) -> Option<S> {
        loop {
            self.start(runtime);
            if self.in_flight.is_none() {
                return self.storage.take();
            }
            if futures::future::poll_fn(|cx| self.poll_completed(cx))
                .await
                .is_err()
            {
                return self.storage.take();
            }
        }
    }

    /// Hands the store back without writing more, for a node whose store
    /// failed (`None` while a blocking write still has it).
    pub(crate) fn close(&mut self) -> Option<S> {
        self.queued.clear();
        self.storage.take()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use kontiki::{AppendEntriesResponse, Entry, HardState};

    use super::*;
    use crate::storage::MemoryStorage;

    /// A memory store that says it blocks, so that its writes go through
    /// `run_blocking`, which the tests control.
    #[derive(Clone, Default)]
    struct Blocking(MemoryStorage);

    impl Storage for Blocking {
        fn load(&mut self) -> io::Result<kontiki::PersistedState> {
            self.0.load()
        }
        fn write(&mut self, writes: &[Persist]) -> io::Result<()> {
            self.0.write(writes)
        }
        fn snapshots(&self) -> Arc<dyn crate::SnapshotStore> {
            self.0.snapshots()
        }
    }

    /// Runs blocking writes when the test says so.
    #[derive(Clone, Default)]
    struct Pool(Arc<Mutex<Vec<futures::channel::oneshot::Sender<()>>>>);

    impl Pool {
        fn run(&self) -> impl FnOnce(BlockingWrite<Blocking>) -> Writing<Blocking> + '_ {
            |write| {
                let (go, wait) = futures::channel::oneshot::channel();
                self.0.lock().unwrap().push(go);
                Box::pin(async move {
                    let _ = wait.await;
                    write()
                })
            }
        }

        fn finish_all(&self) {
            for go in self.0.lock().unwrap().drain(..) {
                let _ = go.send(());
            }
        }
    }

    fn entries(from: u64, to: u64) -> Persist {
        Persist::Entries(
            (from..=to)
                .map(|index| Entry::command(LogIndex(index), Term(1), vec![]))
                .collect(),
        )
    }

    fn send(index: u64) -> Deferred {
        Deferred::Send(
            NodeId(2),
            Message::AppendEntriesResponse(AppendEntriesResponse {
                term: Term(1),
                success: true,
                index: LogIndex(index),
                conflict_term: Term(0),
            }),
        )
    }

    fn apply() -> Deferred {
        Deferred::Apply(ToApply::ReadsReady(1))
    }

    fn completed(writer: &mut Writer<Blocking>) -> Poll<io::Result<Completed>> {
        let waker = futures::task::noop_waker();
        writer.poll_completed(&mut Context::from_waker(&waker))
    }

    fn sent_indexes(released: &[Deferred]) -> Vec<u64> {
        released
            .iter()
            .filter_map(|item| match item {
                Deferred::Send(_, Message::AppendEntriesResponse(response)) => {
                    Some(response.index.get())
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn asynchronously_only_sends_after_a_hard_state_wait() {
        let pool = Pool::default();
        let store = Blocking::default();
        let mut writer = Writer::new(store.clone(), true);
        writer.queue(entries(1, 2));
        writer.start_with(pool.run());
        assert!(writer.pass(send(1)).is_some(), "a log write holds no send");
        assert!(writer.pass(apply()).is_some(), "nor an apply");
        writer.queue(Persist::HardState(HardState {
            term: Term(2),
            voted_for: Some(NodeId(2)),
            log_lost_at_term: None,
        }));
        assert!(writer.pass(send(2)).is_none(), "a vote waits");
        assert!(writer.pass(apply()).is_some());
        writer.queue(entries(3, 3));
        assert!(writer.pass(send(3)).is_none(), "in order behind the vote");
        assert!(completed(&mut writer).is_pending());

        pool.finish_all();
        let first =
            futures::executor::block_on(futures::future::poll_fn(|cx| writer.poll_completed(cx)))
                .unwrap();
        assert_eq!(first.report, Some((LogIndex(2), Term(1))));
        assert!(first.released.is_empty(), "the vote is in the next write");
        writer.start_with(pool.run());
        pool.finish_all();
        let second =
            futures::executor::block_on(futures::future::poll_fn(|cx| writer.poll_completed(cx)))
                .unwrap();
        assert_eq!(
            second.report,
            Some((LogIndex(3), Term(1))),
            "one write for both"
        );
        assert_eq!(sent_indexes(&second.released), [2, 3]);
        assert_eq!(store.0.contents().last_index(), LogIndex(3));
        assert_eq!(store.0.contents().hard_state.term, Term(2));
        assert!(writer.pass(send(4)).is_some(), "nothing pending any more");
    }

    #[test]
    fn in_order_everything_after_a_write_waits_for_it() {
        let pool = Pool::default();
        let mut writer = Writer::new(Blocking::default(), false);
        assert!(writer.pass(send(0)).is_some(), "nothing written yet");
        writer.queue(entries(1, 1));
        assert!(writer.pass(send(1)).is_none());
        writer.start_with(pool.run());
        assert!(writer.pass(apply()).is_none(), "the write is in flight");
        writer.queue(entries(2, 2));
        assert!(writer.pass(send(2)).is_none());
        pool.finish_all();
        let first =
            futures::executor::block_on(futures::future::poll_fn(|cx| writer.poll_completed(cx)))
                .unwrap();
        assert_eq!(sent_indexes(&first.released), [1]);
        assert_eq!(first.released.len(), 2, "the send and the apply");
        writer.start_with(pool.run());
        pool.finish_all();
        let second =
            futures::executor::block_on(futures::future::poll_fn(|cx| writer.poll_completed(cx)))
                .unwrap();
        assert_eq!(sent_indexes(&second.released), [2]);
    }

    /// A follower took a snapshot of its log while entries after it were
    /// queued: the write reports the entries, not the snapshot below them
    /// (else the follower never acknowledged them). A snapshot past the
    /// log (one from the leader) is what a write reports.
    #[test]
    fn a_write_reports_the_end_of_the_log_it_leaves() {
        let snapshot = |index: u64| {
            Persist::Snapshot(kontiki::Snapshot {
                index: LogIndex(index),
                term: Term(1),
                membership: kontiki::Membership::default(),
                data: bytes::Bytes::from_static(b"state"),
            })
        };
        let store = MemoryStorage::new();
        let mut writer = Writer::new(store.clone(), true);
        writer.queue(entries(1, 5));
        writer.queue(snapshot(3));
        writer.start_with(|_| unreachable!("the store does not block"));
        let done = writer.take_completed().expect("done").unwrap();
        assert_eq!(done.report, Some((LogIndex(5), Term(1))));
        assert_eq!(store.contents().last_index(), LogIndex(5));

        writer.queue(snapshot(4));
        writer.start_with(|_| unreachable!("the store does not block"));
        let alone = writer.take_completed().expect("done").unwrap();
        assert_eq!(
            alone.report,
            Some((LogIndex(4), Term(1))),
            "below what is durable: ignored"
        );

        writer.queue(entries(6, 6));
        writer.queue(snapshot(9));
        writer.queue(entries(10, 10));
        writer.start_with(|_| unreachable!("the store does not block"));
        let installed = writer.take_completed().expect("done").unwrap();
        assert_eq!(installed.report, Some((LogIndex(10), Term(1))));
    }

    #[test]
    fn a_store_that_does_not_block_completes_at_once() {
        let store = MemoryStorage::new();
        let mut writer = Writer::new(store.clone(), false);
        writer.queue(entries(1, 1));
        assert!(writer.pass(send(1)).is_none());
        writer.start_with(|_| unreachable!("the store does not block"));
        let done = writer.take_completed().expect("done").unwrap();
        assert_eq!(sent_indexes(&done.released), [1]);
        assert_eq!(store.contents().last_index(), LogIndex(1));
        assert!(writer.take_completed().is_none());
    }
}

//! A kontiki node on a board: the core, its serial links to its peers,
//! its flash and the application's state machine, run as one future on
//! embassy's executor and clock.
//!
//! [`run`] drives everything: one future per link receives frames, one
//! per link writes them out, and the node's loop waits for whichever comes
//! first of a message, its timer and a proposal, hands it to the core, and
//! performs the core's outputs in order — writes to flash first, awaited,
//! so nothing the node says vouches for state that a reset could lose.
//! Messages to a peer wait in a short queue per link; when it is full the
//! message is dropped (and counted), as a lossy network would, so a slow
//! line never stalls the node. Apart from the core's own log, memory is
//! reserved at start and reused: the queues are fixed, the links' buffers
//! are sized once, and outputs are drained into one reused list.

mod mailbox;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::Cell;
use core::convert::Infallible;
use core::pin::Pin;

use bytes::Bytes;
use embassy_futures::select::{select, select3, select_slice, Either, Either3};
use embassy_sync::blocking_mutex::raw::{NoopRawMutex, RawMutex};
use embassy_sync::channel::Channel;
use embassy_time::Timer;
use embedded_io_async::{Read, Write};
use embedded_storage_async::nor_flash::MultiwriteNorFlash;
use kontiki::{
    Command, Config, Entry, EntryKind, HandleError, Handled, Input, Instant, LogIndex, Message,
    Node, NodeId, Output, Snapshot, StartError, Term,
};
use rand_core::Rng;

use crate::flash::{FlashError, FlashStorage};
use crate::serial::{LinkError, LinkReceiver, LinkSender, SerialLink};

pub use mailbox::{Mailbox, ProposeError, Status, STATUS_WATCHERS};

use mailbox::Reply;

/// Messages waiting for one link.
const OUTBOX: usize = 4;
/// Messages received and not yet handled.
const INBOX: usize = 4;
/// An append's own fields, encoded, at most: version, type, term, leader,
/// previous index and term, commit index, entry count (varints of at most
/// ten bytes).
const APPEND_FIELDS: usize = 2 + 7 * 10;

/// The application's replicated state.
pub trait StateMachine {
    /// Applies a committed command (entry `index` of the log).
    fn apply(&mut self, index: LogIndex, command: &[u8]);

    /// The state as of the last command applied, in the application's
    /// encoding: the node keeps it as its snapshot, in flash, and sends it
    /// to a peer that needs entries the log no longer holds.
    fn snapshot(&self) -> Bytes;

    /// Replaces the state with a snapshot's (taken by this node before a
    /// reset, or received from the leader).
    fn restore(&mut self, data: &[u8]);
}

/// A node's place in the cluster, and how it runs.
#[derive(Clone, Debug)]
pub struct BoardConfig {
    /// This node.
    pub id: NodeId,
    /// The voters the cluster starts with (this node among them).
    pub voters: Vec<NodeId>,
    /// The core's settings. The board performs every write before going
    /// on, so it turns off `leader_persists_in_parallel` and
    /// `asynchronous_writes`, which need writes reported; and it keeps
    /// `max_append_bytes` within `max_message`, less room for the
    /// message's own fields, so that every append fits a frame.
    pub core: Config,
    /// Take a snapshot every this many applied entries, so that the log,
    /// and with it the flash the node needs, stays bounded.
    pub snapshot_every: u64,
    /// The longest message the links take, encoded. The application's
    /// snapshot travels in one message, so it must fit too.
    pub max_message: usize,
}

impl BoardConfig {
    /// Settings for node `id` of a cluster of `voters` on
    /// microcontrollers: messages of at most 4 KiB, a snapshot every 64
    /// applied entries, and the core's limits scaled to a board's memory —
    /// 16 entries kept behind a snapshot, appends of at most 3 KiB, four
    /// in flight and 12 KiB at most per follower, 16 KiB uncommitted.
    /// (The core's defaults are a server's: a thousand entries behind a
    /// snapshot, megabytes in flight.)
    #[must_use]
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> BoardConfig {
        BoardConfig {
            id,
            voters,
            core: Config {
                compaction_lag: 16,
                max_append_bytes: 3 * 1024,
                max_inflight_appends: 4,
                max_inflight_bytes: 12 * 1024,
                max_uncommitted_bytes: 16 * 1024,
                ..Config::default()
            },
            snapshot_every: 64,
            max_message: 4096,
        }
    }
}

/// A link to one peer.
pub struct Peer<R, W> {
    /// The node at the other end. Frames that claim another sender are
    /// dropped: a serial line has one node at each end.
    pub id: NodeId,
    /// The line.
    pub link: SerialLink<R, W>,
}

/// Why a node stopped.
#[derive(Debug)]
pub enum RunError<E> {
    /// The core refused to start on what the flash holds.
    Start(StartError),
    /// A write to flash failed: the node cannot go on without it.
    Storage(FlashError<E>),
}

/// Runs node `config.id` until its storage fails: never returns
/// otherwise. `rng` draws its election timeouts (seed it differently on
/// each board); `storage` is its flash, opened; `peers` its links;
/// `machine` its state machine; `mailbox` where the board's tasks
/// propose commands and watch its status.
///
/// # Errors
///
/// See [`RunError`].
pub async fn run<M, R, W, S, G, A>(
    config: BoardConfig,
    rng: G,
    storage: FlashStorage<S>,
    peers: Vec<Peer<R, W>>,
    machine: &mut A,
    mailbox: &Mailbox<M>,
) -> Result<Infallible, RunError<S::Error>>
where
    M: RawMutex,
    R: Read,
    W: Write,
    S: MultiwriteNorFlash,
    G: Rng,
    A: StateMachine,
{
    let lines = Lines {
        inbox: Channel::new(),
        outboxes: peers.iter().map(|peer| (peer.id, Channel::new())).collect(),
        bad_frames: Cell::new(0),
    };
    let mut receivers = Vec::with_capacity(peers.len());
    let mut senders = Vec::with_capacity(peers.len());
    for (peer, (_, outbox)) in peers.into_iter().zip(&lines.outboxes) {
        let (receiver, sender) = peer.link.split();
        receivers.push(receive_from(peer.id, receiver, &lines));
        senders.push(send_to(config.id, sender, outbox));
    }
    let mut receivers: Pin<Box<[_]>> = receivers.into_boxed_slice().into();
    let mut senders: Pin<Box<[_]>> = senders.into_boxed_slice().into();
    let links = select(
        select_slice(receivers.as_mut()),
        select_slice(senders.as_mut()),
    );
    let node = drive(config, rng, storage, machine, mailbox, &lines);
    // The link futures loop for ever; only the node's loop ends.
    match select(node, links).await {
        Either::First(stopped) => stopped,
        Either::Second(Either::First((never, _)) | Either::Second((never, _))) => match never {},
    }
}

/// What the node's loop and the futures of its lines share.
struct Lines {
    /// Messages received from any line.
    inbox: Channel<NoopRawMutex, (NodeId, Message), INBOX>,
    /// Messages for each peer's line.
    outboxes: Vec<(NodeId, Channel<NoopRawMutex, Message, OUTBOX>)>,
    /// Frames the lines dropped.
    bad_frames: Cell<u64>,
}

/// Receives from one link for ever, passing on what its peer sent.
async fn receive_from<R: Read>(
    peer: NodeId,
    mut receiver: LinkReceiver<R>,
    lines: &Lines,
) -> Infallible {
    let dropped = |stats: crate::LinkStats| stats.corrupt + stats.oversized + stats.malformed;
    loop {
        let before = dropped(receiver.stats());
        let received = receiver.receive().await;
        let mut bad = dropped(receiver.stats()) - before;
        match received {
            Ok((from, message)) if from == peer => lines.inbox.send((from, message)).await,
            // Another sender on a point-to-point line.
            Ok(_) => bad += 1,
            // Noise the UART reported: the frame it hit fails its
            // checksum, the line goes on.
            Err(LinkError::Io(_)) => {}
            // A line that ended carries nothing more.
            Err(LinkError::Closed) => return core::future::pending().await,
        }
        lines.bad_frames.set(lines.bad_frames.get() + bad);
    }
}

/// Writes what the node queued for one link, for ever.
async fn send_to<W: Write>(
    me: NodeId,
    mut sender: LinkSender<W>,
    outbox: &Channel<NoopRawMutex, Message, OUTBOX>,
) -> Infallible {
    loop {
        let message = outbox.receive().await;
        // A failed write loses the message, as a noisy line would.
        let _ = sender.send(me, &message).await;
    }
}

/// What the node's loop has counted.
#[derive(Default)]
struct Counters {
    received: u64,
    sent: u64,
    dropped: u64,
}

/// The proposal waiting to be committed: its number, index and term.
struct Pending {
    number: u32,
    index: LogIndex,
    term: Term,
}

/// The node's loop.
async fn drive<M, S, G, A>(
    config: BoardConfig,
    rng: G,
    mut storage: FlashStorage<S>,
    machine: &mut A,
    mailbox: &Mailbox<M>,
    lines: &Lines,
) -> Result<Infallible, RunError<S::Error>>
where
    M: RawMutex,
    S: MultiwriteNorFlash,
    G: Rng,
    A: StateMachine,
{
    let core = Config {
        leader_persists_in_parallel: false,
        asynchronous_writes: false,
        max_append_bytes: config
            .core
            .max_append_bytes
            .min(config.max_message.saturating_sub(APPEND_FIELDS)),
        ..config.core
    };
    let mut node = Node::new(
        config.id,
        &config.voters,
        core,
        rng,
        storage.state().clone(),
        now(),
    )
    .map_err(RunError::Start)?;
    let mut outputs: Vec<Output> = Vec::new();
    let mut deadline: Option<Instant> = None;
    let mut pending: Option<Pending> = None;
    let mut counters = Counters::default();
    let status = mailbox.status.sender();
    loop {
        outputs.extend(node.drain_outputs());
        for output in outputs.drain(..) {
            match output {
                Output::Persist(write) => {
                    storage.persist(write).await.map_err(RunError::Storage)?;
                }
                Output::Send { to, message } => {
                    let outbox = lines.outboxes.iter().find(|(id, _)| *id == to);
                    match outbox.map(|(_, outbox)| outbox.try_send(message)) {
                        Some(Ok(())) => counters.sent += 1,
                        // A full queue, or a peer this board has no line to.
                        _ => counters.dropped += 1,
                    }
                }
                Output::SetTimer { deadline: next } => deadline = Some(next),
                Output::Apply(entry) => applied(&entry, machine, &mut pending, mailbox),
                Output::RestoreSnapshot(snapshot) | Output::InstallSnapshot(snapshot) => {
                    restored(&snapshot, machine, &mut pending, mailbox);
                }
                // The board serves no reads; leadership shows in the status.
                Output::ReadReady { .. }
                | Output::ReadsFailed { .. }
                | Output::RoleChanged { .. } => {}
            }
        }
        let applied = node.applied_index();
        if applied.get() >= node.snapshot_index().get() + config.snapshot_every.max(1) {
            let data = machine.snapshot();
            // Refused only for an index past what is applied, which this
            // is not; the outputs are drained on the next turn.
            let _ = node.handle(
                now(),
                Input::SnapshotTaken {
                    index: applied,
                    data,
                },
            );
            continue;
        }
        status.send_if_modified(|current| {
            let next = Some(Status {
                id: config.id,
                role: node.role(),
                term: node.term(),
                leader: node.leader(),
                commit: node.commit_index(),
                applied,
                received: counters.received,
                sent: counters.sent,
                dropped: counters.dropped,
                bad_frames: lines.bad_frames.get(),
            });
            let changed = *current != next;
            *current = next;
            changed
        });
        let timer = async {
            match deadline {
                Some(at) => Timer::at(embassy_time::Instant::from_micros(at.as_micros())).await,
                None => core::future::pending().await,
            }
        };
        match select3(lines.inbox.receive(), timer, mailbox.requests.receive()).await {
            Either3::First((from, message)) => {
                counters.received += 1;
                // A message the core refuses (malformed, stale) changes
                // nothing; the core never panics on one.
                let _ = node.handle(now(), Input::Message { from, message });
            }
            Either3::Second(()) => {
                deadline = None;
                let _ = node.handle(now(), Input::Timer);
            }
            Either3::Third(request) => {
                let proposed =
                    node.handle(now(), Input::Command(Command::Propose(request.command)));
                let outcome = match proposed {
                    Ok(Handled::Proposed { index, term }) => {
                        pending = Some(Pending {
                            number: request.number,
                            index,
                            term,
                        });
                        continue;
                    }
                    Err(HandleError::NotLeader { .. }) => Err(ProposeError::NotLeader {
                        leader: node.leader(),
                    }),
                    _ => Err(ProposeError::Busy),
                };
                reply(mailbox, request.number, outcome);
            }
        }
    }
}

/// The board's clock, as the core counts time.
fn now() -> Instant {
    Instant::from_micros(embassy_time::Instant::now().as_micros())
}

/// Applies a committed entry, and answers the proposal it settles.
fn applied<M: RawMutex, A: StateMachine>(
    entry: &Entry,
    machine: &mut A,
    pending: &mut Option<Pending>,
    mailbox: &Mailbox<M>,
) {
    if entry.kind == EntryKind::Command {
        machine.apply(entry.index, &entry.data);
    }
    if let Some(waiting) = pending.take_if(|waiting| waiting.index <= entry.index) {
        let outcome = if waiting.index == entry.index && waiting.term == entry.term {
            Ok(entry.index)
        } else {
            Err(ProposeError::Lost)
        };
        reply(mailbox, waiting.number, outcome);
    }
}

/// Restores a snapshot. A proposal whose entry it covers may or may not
/// have been committed: the node cannot tell.
fn restored<M: RawMutex, A: StateMachine>(
    snapshot: &Snapshot,
    machine: &mut A,
    pending: &mut Option<Pending>,
    mailbox: &Mailbox<M>,
) {
    machine.restore(&snapshot.data);
    if let Some(waiting) = pending.take_if(|waiting| waiting.index <= snapshot.index) {
        reply(mailbox, waiting.number, Err(ProposeError::Unknown));
    }
}

fn reply<M: RawMutex>(mailbox: &Mailbox<M>, number: u32, outcome: Result<LogIndex, ProposeError>) {
    // A reply nobody took (its proposer gave up) makes way for this one.
    mailbox.replies.clear();
    let _ = mailbox.replies.try_send(Reply { number, outcome });
}

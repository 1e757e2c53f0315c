//! How the application's tasks talk to the node: proposals in, and the
//! node's status out.

use bytes::Bytes;
use embassy_sync::blocking_mutex::raw::RawMutex;
use embassy_sync::channel::Channel;
use embassy_sync::mutex::Mutex;
use embassy_sync::watch::{Receiver, Watch};
use kontiki::{LogIndex, NodeId, Role, Term};

/// The most tasks that can watch a node's status at once.
pub const STATUS_WATCHERS: usize = 4;

/// What a node is doing, as its board's tasks see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// The node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// The leader it knows of, if any.
    pub leader: Option<NodeId>,
    /// The highest index it knows to be committed.
    pub commit: LogIndex,
    /// The highest index its state machine has applied.
    pub applied: LogIndex,
    /// Messages received intact from its links, and handed to the core.
    pub received: u64,
    /// Messages sent to its links.
    pub sent: u64,
    /// Messages dropped because a link's outgoing queue was full (Raft
    /// sends again what matters).
    pub dropped: u64,
    /// Frames its links dropped: damaged, oversized, malformed, or from a
    /// node other than the link's peer.
    pub bad_frames: u64,
}

/// Why a proposal was not committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposeError {
    /// This node does not lead; `leader` is the one it knows of.
    NotLeader {
        /// The leader, if the node knows one.
        leader: Option<NodeId>,
    },
    /// The leader refused it for now (its uncommitted backlog is full, a
    /// leadership transfer is under way, the command is too large): try
    /// again later.
    Busy,
    /// The entry was appended, but a new leader overwrote it: it was not
    /// committed, and may be proposed again.
    Lost,
    /// The node lost track of the entry (it installed a leader's snapshot
    /// that covers its index): it may or may not have been committed.
    Unknown,
}

/// A proposal on its way to the node: its number and its command.
pub(crate) struct Request {
    pub(crate) number: u32,
    pub(crate) command: Bytes,
}

/// The node's answer to proposal `number`.
pub(crate) struct Reply {
    pub(crate) number: u32,
    pub(crate) outcome: Result<LogIndex, ProposeError>,
}

/// Where a board's tasks and its node meet. Make one (a `static`, say),
/// hand it to [`run`](super::run), and call [`propose`](Mailbox::propose)
/// and [`status`](Mailbox::status) from any task.
pub struct Mailbox<M: RawMutex> {
    /// Held by the proposer whose proposal is in flight; holds the next
    /// proposal's number.
    turn: Mutex<M, u32>,
    pub(crate) requests: Channel<M, Request, 1>,
    pub(crate) replies: Channel<M, Reply, 1>,
    pub(crate) status: Watch<M, Status, STATUS_WATCHERS>,
}

impl<M: RawMutex> Default for Mailbox<M> {
    fn default() -> Self {
        Mailbox::new()
    }
}

impl<M: RawMutex> Mailbox<M> {
    /// An empty mailbox.
    #[must_use]
    pub const fn new() -> Mailbox<M> {
        Mailbox {
            turn: Mutex::new(0),
            requests: Channel::new(),
            replies: Channel::new(),
            status: Watch::new(),
        }
    }

    /// Proposes `command` and waits until it is committed (and applied by
    /// this node's state machine): its log index. One proposal is in
    /// flight at a time; other tasks' proposals wait their turn.
    ///
    /// # Errors
    ///
    /// See [`ProposeError`].
    pub async fn propose(&self, command: Bytes) -> Result<LogIndex, ProposeError> {
        let mut turn = self.turn.lock().await;
        let number = *turn;
        *turn = number.wrapping_add(1);
        self.requests.send(Request { number, command }).await;
        loop {
            // A reply to an earlier proposal whose proposer gave up
            // waiting is not this one's.
            let reply = self.replies.receive().await;
            if reply.number == number {
                return reply.outcome;
            }
        }
    }

    /// The node's latest status, once it has started.
    pub fn status(&self) -> Option<Status> {
        self.status.try_get()
    }

    /// A receiver of the node's status as it changes, if fewer than
    /// [`STATUS_WATCHERS`] are taken.
    pub fn watch(&self) -> Option<Receiver<'_, M, Status, STATUS_WATCHERS>> {
        self.status.receiver()
    }
}

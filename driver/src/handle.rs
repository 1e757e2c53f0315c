//! What the application holds: a handle to propose, read, watch and stop
//! a running node.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::channel::mpsc;
use futures::Stream;
use kontiki::{LogIndex, MembershipChange, NodeId, Role, Term};

use crate::address::MemberAddress;
use crate::error::{ChangeError, ProposeError, ReadError, TransferError};
use crate::sync::lock;
use crate::waiters::ChangeReply;

/// The application's replicated state machine. The driver applies every
/// committed command to it, in log order, exactly once per start of the
/// node: a restarted node restores its latest snapshot, if it has one, and
/// applies its log again from there (or from index 1), so build the state
/// machine empty at every start.
pub trait StateMachine: Send + 'static {
    /// What applying a command answers to its proposer.
    type Output: Send + 'static;

    /// Applies the committed command at `index`.
    fn apply(&mut self, index: LogIndex, command: &Bytes) -> Self::Output;

    /// A snapshot of the state after every command applied so far, as
    /// work that writes it out, or `None` if this state machine does not
    /// take snapshots (the default): then the node keeps its whole log.
    /// Asked every
    /// [`NodeConfig::snapshot_interval`](crate::NodeConfig::snapshot_interval)
    /// applied entries; the log entries it covers are then dropped.
    ///
    /// The driver runs the returned work on the runtime's blocking threads
    /// while the node goes on (heartbeats, replication, applying), one
    /// snapshot at a time, so take a cheap point-in-time view here (clone
    /// an `Arc` of a persistent map, or copy a small state): the work must
    /// write the state exactly as of this call, whatever is applied after
    /// it. It writes to a stream — straight into the storage's snapshot
    /// store ([`Storage::snapshots`](crate::Storage::snapshots); a file
    /// for `DiskStorage`), never into memory — in whatever encoding
    /// [`restore`](StateMachine::restore) reads. An error leaves the previous snapshot
    /// in place (and is logged); the next is asked for after another
    /// interval.
    fn snapshot(&mut self) -> Option<SnapshotWriter> {
        None
    }

    /// Replaces the state with the snapshot `reader` yields, written by a
    /// [`SnapshotWriter`] (on this node or another), as of applied index
    /// `index`. Called when a node starts on a store holding a snapshot,
    /// and when a follower takes its leader's. The reader streams from the
    /// snapshot store and is buffered; once `restore` returns, the driver
    /// checks the snapshot's length and checksum (reading whatever was
    /// left unread), so damaged data stops the node rather than leaving
    /// it on a state it did not agree to. An error stops the node. The default refuses: a state machine without
    /// snapshots never receives one from a kontiki peer.
    fn restore(&mut self, index: LogIndex, reader: &mut dyn io::Read) -> io::Result<()> {
        let _ = reader;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("this state machine cannot restore a snapshot (at index {index})"),
        ))
    }
}

/// Writes a snapshot of a state machine, as of the moment
/// [`StateMachine::snapshot`] made it, to the stream it is given; run off
/// the node's task.
pub type SnapshotWriter = Box<dyn FnOnce(&mut dyn io::Write) -> io::Result<()> + Send>;

/// A node's view of itself, as of its latest event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The node's id.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// The leader it knows for `term`, if any.
    pub leader: Option<NodeId>,
    /// The highest index it knows committed.
    pub commit_index: LogIndex,
    /// The highest index applied to the state machine: the state machine
    /// already holds every entry up to it, and an answered proposer finds
    /// its entry's index here.
    pub applied_index: LogIndex,
    /// The last index of its log.
    pub last_log_index: LogIndex,
    /// The last index its latest snapshot covers (0 without one).
    pub snapshot_index: LogIndex,
    /// When this node, as a follower, last heard from its leader; `None`
    /// while it knows no leader, and on the leader itself.
    pub last_leader_contact: Option<std::time::Instant>,
    /// The members of the configuration in force (the latest in this
    /// node's log, committed or not), by id; empty on a node waiting to be
    /// added.
    pub members: Vec<Member>,
    /// The index of the configuration in force (0 for the one the cluster
    /// started with): it is committed once `commit_index` reaches it.
    pub membership_index: LogIndex,
    /// The node's store lost part of its log, and the node neither votes
    /// nor campaigns until it has caught up with a leader elected without
    /// it (see `kontiki::HardState::log_lost_at_term`).
    pub recovering: bool,
}

/// One member of the configuration, as a node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its id.
    pub id: NodeId,
    /// What it does in the configuration.
    pub role: MemberRole,
    /// The peer address the configuration records for it, if any.
    pub address: Option<SocketAddr>,
    /// Where it serves the application's clients, if the configuration
    /// records it.
    pub client_address: Option<SocketAddr>,
    /// On the leader, the highest log index known stored on the member
    /// (the leader's own durable log for itself); `None` on other nodes.
    pub match_index: Option<LogIndex>,
}

/// What a member does in the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberRole {
    /// It votes, and its log counts toward commitment.
    Voter,
    /// It receives the log but neither votes nor counts.
    Learner,
    /// While a joint change is under way, it votes in the outgoing
    /// configuration only: it leaves (or becomes a learner) once the
    /// change is done.
    Leaving,
}

/// A change of the known leader (or of the term).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderChange {
    /// The term.
    pub term: Term,
    /// Its leader, once known.
    pub leader: Option<NodeId>,
}

/// A request to the node's task.
pub(crate) enum Request<M: StateMachine> {
    Propose(Bytes, oneshot::Sender<Result<M::Output, ProposeError>>),
    Read(oneshot::Sender<Result<(), ReadError>>),
    /// A membership change; answered once applied, or with `settled` once
    /// the joint configuration it enters is left.
    Change {
        change: MembershipChange,
        settled: bool,
        reply: ChangeReply,
    },
    Transfer(NodeId, oneshot::Sender<Result<(), TransferError>>),
    Shutdown(oneshot::Sender<()>),
}

/// State the node's task publishes for its handles.
pub(crate) struct Published {
    /// Published once per round, before that round's entries are applied.
    /// Its `applied_index` is not read: `applied_index` below replaces it.
    pub(crate) status: Mutex<Status>,
    /// The last index the state machine applied, stored after each entry
    /// and before its proposer hears back: one atomic store per entry,
    /// where a status that moved in step would take the lock each time.
    pub(crate) applied_index: AtomicU64,
    pub(crate) watchers: Mutex<Vec<mpsc::UnboundedSender<LeaderChange>>>,
    pub(crate) local_addr: SocketAddr,
    /// How long proposals take (see the `metrics` module).
    pub(crate) proposal_seconds: metrics::Histogram,
}

impl Published {
    /// Records that the state machine applied everything up to `index`.
    pub(crate) fn set_applied(&self, index: LogIndex) {
        // Release: whoever reads `index` also sees what the state
        // machine did to apply it.
        self.applied_index.store(index.get(), Ordering::Release);
    }

    /// The status as of the latest round, with the state machine's
    /// applied index: never more than it holds, nor than the commit index.
    fn status(&self) -> Status {
        // The applied index before the rest: a status published later
        // has a commit index at least as high as what was applied.
        let applied = LogIndex(self.applied_index.load(Ordering::Acquire));
        let mut status = lock(&self.status).clone();
        status.applied_index = applied;
        status
    }

    /// Tells every watcher about `change`, forgetting those gone.
    pub(crate) fn announce(&self, change: LeaderChange) {
        let mut watchers = lock(&self.watchers);
        watchers.retain(|watcher| watcher.unbounded_send(change).is_ok());
    }
}

/// A running node. Clones are cheap and talk to the same node. The node
/// runs until [`shutdown`](Handle::shutdown) or until every handle is
/// dropped.
pub struct Handle<M: StateMachine> {
    pub(crate) requests: async_channel::Sender<Request<M>>,
    pub(crate) published: Arc<Published>,
}

impl<M: StateMachine> Clone for Handle<M> {
    fn clone(&self) -> Self {
        Handle {
            requests: self.requests.clone(),
            published: Arc::clone(&self.published),
        }
    }
}

impl<M: StateMachine> Handle<M> {
    /// Replicates `command`; completes with the state machine's answer
    /// once the command is committed and applied on this node.
    pub async fn propose(&self, command: impl Into<Bytes>) -> Result<M::Output, ProposeError> {
        let started = std::time::Instant::now();
        let (reply, answer) = oneshot::channel();
        if !self.request(Request::Propose(command.into(), reply)).await {
            return Err(ProposeError::Stopped);
        }
        let answer = answer.await.unwrap_or(Err(ProposeError::Stopped));
        self.published
            .proposal_seconds
            .record(started.elapsed().as_secs_f64());
        answer
    }

    /// A linearizable read point: completes once this node, as leader,
    /// has applied every entry committed before the call. A read of the
    /// state machine afterwards sees every write acknowledged before the
    /// call.
    ///
    /// Nothing is written to the log: the leader confirms it still leads
    /// with one exchange of leadership checks with a majority, shared by
    /// every read that arrives in the same round (the ReadIndex protocol,
    /// see [`kontiki::Command::Read`]). Fails with
    /// [`ReadError::NotLeader`] on a follower, or when the node stops
    /// leading before the read is served.
    pub async fn read_barrier(&self) -> Result<(), ReadError> {
        let (reply, answer) = oneshot::channel();
        if !self.request(Request::Read(reply)).await {
            return Err(ReadError::Stopped);
        }
        answer.await.unwrap_or(Err(ReadError::Stopped))
    }

    /// Adds node `id`, reachable by its peers at `address`, as a learner
    /// (leader only): it receives the log and snapshots but does not vote
    /// or count, so the cluster's majorities are unchanged while it
    /// catches up. `client_address`, if given, is recorded too (see
    /// [`Member::client_address`]), so that any node can send clients to
    /// it when it leads. Completes once the change is applied on this
    /// node, with the index of the configuration it made. Start the new
    /// node with [`NodeConfig::join`](crate::NodeConfig::join) first (or
    /// just after): the leader reaches it at `address`.
    pub async fn add_learner(
        &self,
        id: NodeId,
        address: SocketAddr,
        client_address: Option<SocketAddr>,
    ) -> Result<LogIndex, ChangeError> {
        let address = MemberAddress {
            peer: address,
            client: client_address,
        }
        .encode();
        self.change_membership(MembershipChange::AddLearner { id, address })
            .await
    }

    /// Makes learner `id` a voter (leader only), once it has caught up:
    /// a learner more than
    /// [`max_learner_lag_entries`](kontiki::Config::max_learner_lag_entries)
    /// behind, or not heard from lately, is refused
    /// ([`MembershipError::LearnerBehind`](kontiki::MembershipError::LearnerBehind));
    /// retry once it has caught up.
    pub async fn promote(&self, id: NodeId) -> Result<LogIndex, ChangeError> {
        self.change_membership(MembershipChange::Promote { id })
            .await
    }

    /// Removes member `id`, voter or learner (leader only). The leader
    /// may remove itself: it hands its leadership to an up-to-date voter
    /// once the change commits.
    pub async fn remove(&self, id: NodeId) -> Result<LogIndex, ChangeError> {
        self.change_membership(MembershipChange::Remove { id })
            .await
    }

    /// Changes the configuration to `voters` and `learners` in one step,
    /// whatever the difference (leader only): the cluster goes through a
    /// joint configuration, in which every election and commit needs a
    /// majority of the old voters and one of the new, and leaves it by
    /// itself. Every node named must already be a member (add new ones as
    /// learners first). Completes once the joint configuration has been
    /// left, with the index of the final configuration.
    pub async fn change_voters(
        &self,
        voters: &[NodeId],
        learners: &[NodeId],
    ) -> Result<LogIndex, ChangeError> {
        let change = MembershipChange::EnterJoint {
            voters: voters.to_vec(),
            learners: learners.to_vec(),
            auto_leave: true,
        };
        self.request_change(change, true).await
    }

    /// Makes any [`MembershipChange`] (leader only), answered once its
    /// entry is applied on this node, with the entry's index. A joint
    /// change without `auto_leave` stays joint until a
    /// [`MembershipChange::LeaveJoint`].
    pub async fn change_membership(
        &self,
        change: MembershipChange,
    ) -> Result<LogIndex, ChangeError> {
        self.request_change(change, false).await
    }

    async fn request_change(
        &self,
        change: MembershipChange,
        settled: bool,
    ) -> Result<LogIndex, ChangeError> {
        let (reply, answer) = oneshot::channel();
        if !self
            .request(Request::Change {
                change,
                settled,
                reply,
            })
            .await
        {
            return Err(ChangeError::Stopped);
        }
        answer.await.unwrap_or(Err(ChangeError::Stopped))
    }

    /// Hands the leadership to voter `target` (leader only): this node
    /// stops taking proposals, brings the target up to date and has it
    /// campaign at once. Completes once this node knows the target leads,
    /// typically within a few round trips; fails if another node is
    /// elected, or if none is within an election timeout (this node then
    /// takes proposals again). Asking the leader to hand the leadership
    /// to itself succeeds at once.
    pub async fn transfer_leadership(&self, target: NodeId) -> Result<(), TransferError> {
        let (reply, answer) = oneshot::channel();
        if !self.request(Request::Transfer(target, reply)).await {
            return Err(TransferError::Stopped);
        }
        answer.await.unwrap_or(Err(TransferError::Stopped))
    }

    /// The node's state as of its latest event.
    #[must_use]
    pub fn status(&self) -> Status {
        self.published.status()
    }

    /// The address the node accepts peer connections on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.published.local_addr
    }

    /// Every later change of term or leader, starting with the current one.
    pub fn leader_changes(&self) -> impl Stream<Item = LeaderChange> + Send + Unpin + 'static {
        let (sender, receiver) = mpsc::unbounded();
        let status = self.status();
        let _ = sender.unbounded_send(LeaderChange {
            term: status.term,
            leader: status.leader,
        });
        lock(&self.published.watchers).push(sender);
        receiver
    }

    /// Stops the node: pending proposals fail with
    /// [`ProposeError::Stopped`], connections close. Everything the node
    /// acknowledged is already durable. Completes when the node stopped.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self.request(Request::Shutdown(reply)).await {
            let _ = done.await;
        }
    }

    /// Hands `request` to the node's task; false when the node stopped.
    async fn request(&self, request: Request<M>) -> bool {
        self.requests.send(request).await.is_ok()
    }
}

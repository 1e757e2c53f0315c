//! What a node tells about itself: its role, term, log, configuration
//! and counters, and a leader's view of its followers. Read-only; the
//! state changes only through [`Node::handle`].

use crate::entry::{Entry, Snapshot};
use crate::membership::Membership;
use crate::node::{Node, NodeStats};
use crate::persist::HardState;
use crate::role::{Role, RoleState};
use crate::time::Instant;
use crate::types::{LogIndex, NodeId, Term};

impl<R> Node<R> {
    /// This node's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The current term.
    #[must_use]
    pub fn term(&self) -> Term {
        self.term
    }

    /// The current role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role.role()
    }

    /// When this node, as a follower, last heard from the leader of the
    /// current term; `None` while it knows no leader, and on the leader.
    #[must_use]
    pub fn leader_contact_at(&self) -> Option<Instant> {
        // Every role change keeps the field so: `None` but on a follower
        // that knows its leader.
        self.leader_contact_at
    }

    /// The leader of the current term, if known (this node, when leading).
    #[must_use]
    pub fn leader(&self) -> Option<NodeId> {
        match &self.role {
            RoleState::Leader { .. } => Some(self.id),
            RoleState::Follower { leader } => *leader,
            RoleState::PreCandidate { .. } | RoleState::Candidate => None,
        }
    }

    /// The term and vote as the node holds them (persisted, or about to be
    /// by a pending output).
    #[must_use]
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            voted_for: self.voted_for,
            log_lost_at_term: self.recovering_from_term,
        }
    }

    /// Whether this node lost part of its log and abstains from votes and
    /// elections until it has caught up with a leader elected after the
    /// loss (see [`HardState::log_lost_at_term`]).
    #[must_use]
    pub fn is_recovering(&self) -> bool {
        self.recovering_from_term.is_some()
    }

    /// Every voter of the configuration in force (of both halves, while
    /// joint), sorted.
    #[must_use]
    pub fn voters(&self) -> &[NodeId] {
        self.voters.all_voters()
    }

    /// The configuration in force: the latest in the log, committed or
    /// not (empty on a node waiting to be added to a cluster).
    #[must_use]
    pub fn membership(&self) -> &Membership {
        self.memberships.current()
    }

    /// The index of the membership entry in force — or of the snapshot
    /// that holds it, once the entry is compacted away (0 for the voters
    /// the node was started with). A change is done once the commit index
    /// reaches it.
    #[must_use]
    pub fn membership_index(&self) -> LogIndex {
        self.memberships.current_index()
    }

    /// The log's entries in order: from index 1, or from just after the
    /// last index compacted into a snapshot.
    #[must_use]
    pub fn entries(&self) -> &[Entry] {
        self.log.entries()
    }

    /// The latest snapshot (taken here or received from a leader), if any.
    #[must_use]
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// The last index the latest snapshot covers (0 without one).
    #[must_use]
    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot.as_ref().map_or(LogIndex(0), |s| s.index)
    }

    /// The highest log index known to be committed.
    #[must_use]
    pub fn commit_index(&self) -> LogIndex {
        self.commit_index
    }

    /// The highest index handed out as [`Output::Apply`](crate::Output::Apply).
    #[must_use]
    pub fn applied_index(&self) -> LogIndex {
        self.applied_index
    }

    /// Index of the last log entry (0 when empty).
    #[must_use]
    pub fn last_log_index(&self) -> LogIndex {
        self.log.last_index()
    }

    /// When the node next needs [`Input::Timer`](crate::Input::Timer): a leader's next
    /// heartbeat (or, sooner, a check on a snapshot it sent or commit news
    /// that waited for its interval), or another role's election timeout. A driver may arm its
    /// timer from this after every input instead of remembering the latest
    /// [`Output::SetTimer`](crate::Output::SetTimer); a timer armed earlier (as a `SetTimer` may
    /// leave it, when the deadline only moved later) fires harmlessly.
    #[must_use]
    pub fn next_deadline(&self) -> Instant {
        match self.role {
            RoleState::Leader { .. } => self
                .leader_wakeup
                .map_or(self.heartbeat_deadline, |wakeup| {
                    wakeup.min(self.heartbeat_deadline)
                }),
            _ => self.election_deadline,
        }
    }

    /// The node's counters.
    #[must_use]
    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    /// On a leader, the highest index known to be stored on member `id`:
    /// a follower's acknowledged index, or for the leader itself what
    /// counts toward commitment (its durable log). `None` on any other
    /// role, and for a node the leader does not replicate to.
    #[must_use]
    pub fn match_index(&self, id: NodeId) -> Option<LogIndex> {
        let RoleState::Leader { progress } = &self.role else {
            return None;
        };
        if id == self.id {
            return Some(self.own_match_index());
        }
        progress.get(id).map(|follower| follower.match_index())
    }

    /// The voter this leader is handing its leadership to, while a
    /// transfer is under way (see
    /// [`Command::TransferLeadership`](crate::Command::TransferLeadership)).
    #[must_use]
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer.map(|transfer| transfer.target)
    }

    /// How far a leader's log is settled: committed, and written on its
    /// own disk. What lies above it is what a leader's memory holds for
    /// its proposals, counted in `uncommitted_bytes` and bounded by
    /// `Config::max_uncommitted_bytes` — so a leader whose disk stalls
    /// while its followers commit stops taking proposals rather than
    /// queuing writes without end.
    pub(crate) fn settled_index(&self) -> LogIndex {
        self.commit_index.min(self.own_match_index())
    }

    /// How far the leader's own replica counts toward commitment: what is
    /// durable, when it persists in parallel with its followers; else its
    /// whole log, which it persisted before sending any of it.
    pub(crate) fn own_match_index(&self) -> LogIndex {
        if self.config.leader_writes_in_parallel() {
            self.durable_index.min(self.log.last_index())
        } else {
            self.log.last_index()
        }
    }
}

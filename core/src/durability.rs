//! What a node vouches for only once it is durable: with
//! [`Config::asynchronous_writes`](crate::Config::asynchronous_writes),
//! log writes are still in flight while the node goes on, and the caller
//! reports each with [`Input::Persisted`](crate::Input::Persisted).
//!
//! A follower's success answer to an append (or to a snapshot) tells the
//! leader that the entries up to its index survive a crash: the leader
//! counts them toward a majority, and a majority that may forget an entry
//! could let it be overwritten after it was committed. So the answer
//! waits here until the write is reported, and then names only what the
//! reports cover.
//!
//! An append that brings nothing new (a heartbeat, or entries sent
//! again) is still answered at once, naming only what is durable: the
//! leader's check-quorum counts answers, and a follower whose disk is slow
//! is alive all the same. Without it, a leader whose followers all wait on
//! slow disks (every node writing a large snapshot at once, or the one
//! follower left of three) hears nothing for the length of a sync and
//! steps down.

use rand_core::Rng;

use crate::ack::PendingAck;
use crate::message::{AppendEntriesResponse, Message};
use crate::node::Node;
use crate::role::RoleState;
use crate::types::{LogIndex, NodeId, Term};

impl<R: Rng> Node<R> {
    /// Tells `leader` that this log matches its own through `index` — at
    /// once when that much is durable (or when writes are performed before
    /// any later send), else once the caller reports it durable.
    pub(crate) fn acknowledge(&mut self, leader: NodeId, index: LogIndex) {
        if !self.acknowledgement_waits(index) {
            self.send_success(leader, index);
            return;
        }
        // Only the latest matters: the log matches this leader's through
        // the highest index it acknowledged in this term.
        let term = self.term;
        let index = match self.pending_ack {
            Some(ack) if ack.leader == leader && ack.term == term => ack.index.max(index),
            _ => index,
        };
        self.pending_ack = Some(PendingAck {
            leader,
            term,
            index,
        });
    }

    /// Answers an append from `leader` (committed through `leader_commit`)
    /// that brought nothing new, after which this log matches the
    /// leader's through `index`: as
    /// [`Node::acknowledge`] does, and, while that waits for a write, at
    /// once with the durable part — which matches the leader's too (a
    /// truncation lowers it) — provided it reaches the leader's commit
    /// index. Then the answer can only tell the leader what it knows or
    /// less: a leader probing this follower streams on from there, from
    /// entries it still holds (it compacts only committed ones), never a
    /// snapshot; and a snapshot from the leader being written (the durable
    /// log ends below it) is never answered as if lost.
    pub(crate) fn acknowledge_nothing_new(
        &mut self,
        leader: NodeId,
        index: LogIndex,
        leader_commit: LogIndex,
    ) {
        if self.acknowledgement_waits(index)
            && self.durable_index >= leader_commit
            && self.durable_index >= self.log.base_index()
        {
            self.send_success(leader, self.durable_index);
        }
        self.acknowledge(leader, index);
    }

    /// Notes that the log is durable up to `index` (if the entry there is
    /// still the one written), commits what that completes, and sends the
    /// acknowledgement it allows.
    pub(crate) fn handle_persisted(&mut self, index: LogIndex, term: Term) {
        if index > self.durable_index && self.log.term_at(index) == Some(term) {
            let settled_before = self.settled_index();
            self.durable_index = index;
            if let RoleState::Leader { .. } = self.role {
                self.release_settled(settled_before);
            }
            self.maybe_commit();
            self.send_pending_ack();
        }
    }

    /// Takes the entries settled since `settled_before` off a leader's
    /// count of unsettled bytes.
    pub(crate) fn release_settled(&mut self, settled_before: LogIndex) {
        let settled = self.settled_index();
        if settled > settled_before {
            let released = self.log.payload_bytes(settled_before.next(), settled);
            self.uncommitted_bytes = self.uncommitted_bytes.saturating_sub(released);
        }
    }

    /// Sends what the pending acknowledgement allows now: all of it, or as
    /// far as the log is durable. Dropped once the node no longer follows
    /// that leader in that term.
    fn send_pending_ack(&mut self) {
        let Some(ack) = self.pending_ack else {
            return;
        };
        let still_following = ack.term == self.term
            && matches!(self.role, RoleState::Follower { leader: Some(leader) } if leader == ack.leader);
        if !still_following {
            self.pending_ack = None;
            return;
        }
        if ack.index <= self.durable_index {
            self.pending_ack = None;
        }
        let index = ack.index.min(self.durable_index);
        self.send_success(ack.leader, index);
    }

    /// Whether an acknowledgement through `index` must wait for a write
    /// still in flight.
    fn acknowledgement_waits(&self, index: LogIndex) -> bool {
        self.config.asynchronous_writes
            && index > self.durable_index
            && !self.acknowledges_before_durable()
    }

    /// Whether this build carries the deliberate flaw of acknowledging
    /// unfinished writes (see `Config::flaw_acknowledge_before_durable`);
    /// never in a real build.
    fn acknowledges_before_durable(&self) -> bool {
        #[cfg(feature = "flawed-variants")]
        return self.config.flaw_acknowledge_before_durable;
        #[cfg(not(feature = "flawed-variants"))]
        false
    }

    fn send_success(&mut self, leader: NodeId, index: LogIndex) {
        let response = AppendEntriesResponse {
            term: self.term,
            success: true,
            index,
            conflict_term: Term(0),
        };
        self.send(leader, Message::AppendEntriesResponse(response));
    }
}

//! Leadership transfer (Raft dissertation §3.10): a leader hands its
//! place to a chosen voter — to take a server down for maintenance, or to
//! move the leadership where it serves best.
//!
//! The leader stops taking proposals, so that the target can catch up;
//! once the target holds the leader's whole log it is sent `TimeoutNow`,
//! and starts an election at once, without a pre-vote, with a flag that
//! lets voters answer although they hear from the leader. Its log is as
//! up to date as any, so it wins unless something fails; if no election
//! ends the leader's term within an election timeout, the leader gives up
//! and takes proposals again.

use rand_core::Rng;

use crate::error::{HandleError, TransferError};
use crate::message::{Message, TimeoutNow};
use crate::node::Node;
use crate::role::{LeadershipTransfer, RoleState};
use crate::time::Instant;
use crate::types::NodeId;

impl<R: Rng> Node<R> {
    /// Starts handing the leadership to `target`.
    pub(crate) fn handle_transfer_leadership(
        &mut self,
        now: Instant,
        target: NodeId,
    ) -> Result<(), HandleError> {
        self.check_leader_free()?;
        if target == self.id {
            return Err(HandleError::TransferRefused(TransferError::ToSelf));
        }
        if !self.voters.contains(target) {
            return Err(HandleError::TransferRefused(TransferError::NotAVoter(
                target,
            )));
        }
        self.transfer = Some(LeadershipTransfer {
            target,
            deadline: now + self.config.election_timeout_max,
            timeout_sent: false,
        });
        // Already caught up, or else brought up to date by what follows.
        self.maybe_send_timeout_now(target);
        self.send_append(target, false);
        Ok(())
    }

    /// Sends the transfer's target `TimeoutNow` once it holds the whole
    /// log (`peer` just answered).
    pub(crate) fn maybe_send_timeout_now(&mut self, peer: NodeId) {
        let Some(transfer) = self.transfer else {
            return;
        };
        if transfer.target != peer || transfer.timeout_sent || !self.holds_whole_log(peer) {
            return;
        }
        self.transfer = Some(LeadershipTransfer {
            timeout_sent: true,
            ..transfer
        });
        let term = self.term;
        self.send(peer, Message::TimeoutNow(TimeoutNow { term }));
    }

    /// Whether follower `peer` is known to hold the leader's whole log.
    fn holds_whole_log(&self, peer: NodeId) -> bool {
        let RoleState::Leader { progress } = &self.role else {
            return false;
        };
        progress
            .get(peer)
            .is_some_and(|follower| follower.match_index() == self.log.last_index())
    }

    /// On the leader's timer: a transfer that has not ended the term by
    /// its deadline is abandoned, and proposals are taken again.
    pub(crate) fn check_transfer_deadline(&mut self, now: Instant) {
        if self
            .transfer
            .is_some_and(|transfer| now >= transfer.deadline)
        {
            self.transfer = None;
        }
    }

    /// A leader that must step down (removed from the configuration) hands
    /// its place to the voter that holds its whole log, if one does, so
    /// the cluster elects a leader at once rather than after a timeout.
    pub(crate) fn hand_off_leadership(&mut self) {
        let RoleState::Leader { progress } = &self.role else {
            return;
        };
        let last_index = self.log.last_index();
        let successor = (0..progress.len())
            .map(|position| progress.at(position))
            .find(|(id, follower)| {
                self.voters.contains(*id) && follower.match_index() == last_index
            })
            .map(|(id, _)| id);
        if let Some(successor) = successor {
            let term = self.term;
            self.send(successor, Message::TimeoutNow(TimeoutNow { term }));
        }
    }

    /// The leader this node follows hands it the leadership: it campaigns
    /// at once, if it may (a learner ignores it).
    pub(crate) fn handle_timeout_now(
        &mut self,
        now: Instant,
        from: NodeId,
    ) -> Result<(), HandleError> {
        self.check_sender_may_lead(from)?;
        if !self.may_start_election() {
            return Ok(());
        }
        self.become_candidate(now, true);
        Ok(())
    }
}

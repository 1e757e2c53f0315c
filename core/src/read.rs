//! Linearizable reads without log writes: the ReadIndex protocol of the
//! Raft dissertation (§6.4).
//!
//! A read arriving at the leader takes the commit index as its read index
//! (or the leader's first entry of its own term, if that is not committed
//! yet: until then the leader cannot know what earlier leaders committed).
//! The leader then sends one leadership check to every follower. Once a
//! majority (itself included) has answered a check sent after the read
//! arrived, no other leader can have committed anything the read could
//! miss; the read is served once the read index is applied.
//!
//! Checks are numbered by round, counted up over the node's life, and every
//! read handled between two drains shares a round, so a burst of reads
//! costs one exchange with the followers.

use alloc::collections::VecDeque;

use bytes::Bytes;
use rand_core::RngCore;

use crate::log::EntryKind;
use crate::message::{LeadershipCheck, LeadershipCheckResponse, Message};
use crate::node::{DropReason, HandleError, Handled, Node};
use crate::output::Output;
use crate::quorum::majority;
use crate::role::{progress_of, RoleState};
use crate::time::Instant;
use crate::types::{LogIndex, NodeId};

/// A leader's reads waiting for their round to be confirmed and their
/// read index applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct ReadQueue {
    /// The last round opened; 0 before the first.
    round: u64,
    /// The last round opened has not had its checks sent yet, so reads
    /// may still join it.
    unsent: bool,
    /// Each waiting round with its read index, oldest first. Both increase
    /// along the queue.
    waiting: VecDeque<(u64, LogIndex)>,
}

impl ReadQueue {
    /// Adds a read with `index` to the open round, opening one if the last
    /// was already sent; returns the read's round.
    fn join(&mut self, index: LogIndex) -> u64 {
        match self.waiting.back_mut() {
            Some((round, round_index)) if self.unsent && *round == self.round => {
                // A later read of the same round may carry a higher index;
                // serving the earlier ones at it is still linearizable.
                *round_index = (*round_index).max(index);
            }
            _ => {
                self.round += 1;
                self.unsent = true;
                self.waiting.push_back((self.round, index));
            }
        }
        self.round
    }
}

impl<R: RngCore> Node<R> {
    /// Queues a read on the leader (see [`Command::Read`](crate::Command::Read)).
    pub(crate) fn handle_read(&mut self) -> Result<Handled, HandleError> {
        if !matches!(self.role, RoleState::Leader { .. }) {
            return Err(HandleError::NotLeader {
                leader_hint: self.leader(),
            });
        }
        let index = self.read_index();
        let round = self.reads.join(index);
        Ok(Handled::ReadQueued { round })
    }

    /// The index a read arriving now must see applied: at least every
    /// entry committed anywhere so far.
    fn read_index(&mut self) -> LogIndex {
        if self.log.term_at(self.commit_index) == Some(self.term) {
            return self.commit_index;
        }
        // Nothing of this term is committed yet, so entries earlier leaders
        // committed may lie above the commit index. They all lie below the
        // leader's first entry of its own term (Leader Completeness), which
        // commits only after them.
        if self.log.last_term() == self.term {
            return self.log.first_index_of_term_run(self.log.last_index());
        }
        // No entry of this term yet (`Config::noop_on_election` is off):
        // append the no-op a new leader would have.
        self.append_new_entry(EntryKind::Noop, Bytes::new())
    }

    /// Sends the open round's leadership check to every follower; called
    /// when the outputs are drained.
    pub(crate) fn send_leadership_checks(&mut self) {
        if !core::mem::take(&mut self.reads.unsent) {
            return;
        }
        let check = Message::LeadershipCheck(LeadershipCheck {
            term: self.term,
            round: self.reads.round,
        });
        self.broadcast(&check);
    }

    /// A follower answers its leader's check; it also counts as hearing
    /// from the leader.
    pub(crate) fn handle_leadership_check(
        &mut self,
        now: Instant,
        from: NodeId,
        check: LeadershipCheck,
    ) -> Result<(), HandleError> {
        self.check_sender_may_lead(from)?;
        self.become_follower(now, self.term, Some(from));
        let response = LeadershipCheckResponse {
            term: self.term,
            round: check.round,
        };
        self.send(from, Message::LeadershipCheckResponse(response));
        Ok(())
    }

    /// The leader notes a follower's answer of its own term; reads are
    /// served in [`Node::settle_reads`].
    pub(crate) fn handle_leadership_check_response(
        &mut self,
        now: Instant,
        from: NodeId,
        response: LeadershipCheckResponse,
    ) -> Result<(), HandleError> {
        let RoleState::Leader { followers } = &mut self.role else {
            return Ok(());
        };
        if response.round > self.reads.round {
            return Err(HandleError::Dropped(DropReason::UnsentReadRound));
        }
        let Some(progress) = progress_of(followers, from) else {
            return Ok(());
        };
        progress.last_contact_at = now;
        progress.read_round_seen = progress.read_round_seen.max(response.round);
        Ok(())
    }

    /// At the end of every input: a leader serves the rounds a majority
    /// confirmed whose read index is applied, in one `ReadReady`; a node
    /// that no longer leads fails every round still waiting.
    pub(crate) fn settle_reads(&mut self) {
        let RoleState::Leader { followers } = &self.role else {
            self.reads.unsent = false;
            if let Some(&(round, _)) = self.reads.waiting.back() {
                self.reads.waiting.clear();
                self.outputs.push(Output::ReadsFailed { round });
            }
            return;
        };
        let needed = majority(self.voters.len());
        let mut served = None;
        while let Some(&(round, index)) = self.reads.waiting.front() {
            let confirmed = 1 + followers
                .iter()
                .filter(|(_, progress)| progress.read_round_seen >= round)
                .count();
            if confirmed < needed || index > self.applied_index {
                break;
            }
            self.reads.waiting.pop_front();
            served = Some((round, index));
        }
        if let Some((round, index)) = served {
            self.outputs.push(Output::ReadReady { round, index });
        }
    }
}

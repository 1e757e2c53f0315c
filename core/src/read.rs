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

use bytes::Bytes;
use rand_core::Rng;

use crate::entry::EntryKind;
use crate::error::{DropReason, HandleError};
use crate::input::Handled;
use crate::message::{LeadershipCheck, LeadershipCheckResponse, Message};
use crate::node::Node;
use crate::output::Output;
use crate::role::RoleState;
use crate::time::Instant;
use crate::types::{LogIndex, NodeId};

impl<R: Rng> Node<R> {
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
        let Some(round) = self.reads.take_unsent_round() else {
            return;
        };
        let check = Message::LeadershipCheck(LeadershipCheck {
            term: self.term,
            round,
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
        let RoleState::Leader { progress } = &mut self.role else {
            return Ok(());
        };
        if response.round > self.reads.last_round_opened() {
            return Err(HandleError::Dropped(DropReason::UnsentReadRound));
        }
        if let Some(follower) = progress.get_mut(from) {
            follower.record_read_round(now, response.round);
        }
        Ok(())
    }

    /// At the end of every input: a leader serves the rounds a majority
    /// confirmed whose read index is applied, in one `ReadReady`; a node
    /// that no longer leads fails every round still waiting.
    pub(crate) fn settle_reads(&mut self) {
        let RoleState::Leader { progress } = &self.role else {
            if let Some(round) = self.reads.fail_all() {
                self.outputs.push(Output::ReadsFailed { round });
            }
            return;
        };
        let served = self.reads.serve(self.applied_index, |round| {
            progress.has_quorum(&self.voters, self.id, |follower| {
                follower.has_seen_read_round(round)
            })
        });
        if let Some((round, index)) = served {
            self.outputs.push(Output::ReadReady { round, index });
        }
    }
}

//! A leader's side of the heartbeat exchange, check-quorum, and a
//! follower's answer to AppendEntries.

use rand_core::RngCore;

use crate::message::{AppendEntries, AppendEntriesResponse, Message};
use crate::node::{DropReason, HandleError, Node};
use crate::quorum::majority;
use crate::role::{progress_of, RoleState};
use crate::time::Instant;
use crate::types::NodeId;

impl<R: RngCore> Node<R> {
    /// The leader's periodic work: step down if a majority has gone quiet
    /// (check-quorum), otherwise send the next round of heartbeats.
    pub(crate) fn handle_heartbeat_tick(&mut self, now: Instant) {
        if self.config.check_quorum && !self.has_recent_quorum_contact(now) {
            // Cut off from a majority: another leader may already exist, so
            // stop acting as one. The term stays; a new election decides.
            self.become_follower(now, self.term, None);
            return;
        }
        self.broadcast_heartbeat(now);
    }

    pub(crate) fn broadcast_heartbeat(&mut self, now: Instant) {
        self.heartbeat_deadline = now + self.config.heartbeat_interval;
        self.broadcast(&Message::AppendEntries(AppendEntries {
            term: self.term,
            prev_log_index: self.log.last_index(),
            prev_log_term: self.log.last_term(),
        }));
    }

    /// Whether the leader itself plus the followers heard from within the
    /// minimum election timeout form a majority.
    fn has_recent_quorum_contact(&self, now: Instant) -> bool {
        let RoleState::Leader { followers } = &self.role else {
            return false;
        };
        let window = self.config.election_timeout_min;
        let recent = followers
            .iter()
            .filter(|(_, progress)| now < progress.last_contact_at + window)
            .count();
        recent + 1 >= majority(self.voter_count())
    }

    /// Handles an AppendEntries of our current term (a higher one was
    /// adopted before this is called).
    pub(crate) fn handle_append_entries(
        &mut self,
        now: Instant,
        from: NodeId,
        append: AppendEntries,
    ) -> Result<(), HandleError> {
        match self.role {
            RoleState::Leader { .. } => {
                return Err(HandleError::Dropped(DropReason::ConflictingLeader));
            }
            RoleState::Follower {
                leader: Some(leader),
            } if leader != from => {
                return Err(HandleError::Dropped(DropReason::ConflictingLeader));
            }
            RoleState::Follower { .. }
            | RoleState::PreCandidate { .. }
            | RoleState::Candidate { .. } => {
                // A (pre-)candidate that hears from this term's leader has lost.
                self.become_follower(now, self.term, Some(from));
            }
        }
        let success = self
            .log
            .matches(append.prev_log_index, append.prev_log_term);
        self.send(
            from,
            Message::AppendEntriesResponse(AppendEntriesResponse {
                term: self.term,
                success,
            }),
        );
        Ok(())
    }

    /// Notes that a follower answered in the leader's term.
    pub(crate) fn handle_append_entries_response(
        &mut self,
        now: Instant,
        from: NodeId,
        _response: AppendEntriesResponse,
    ) {
        if let RoleState::Leader { followers } = &mut self.role {
            if let Some(progress) = progress_of(followers, from) {
                progress.last_contact_at = now;
            }
        }
    }
}

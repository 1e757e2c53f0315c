//! Leader election (§5.2, §5.4.1) with pre-vote (dissertation §9.6) and
//! leader stickiness (§4.2.3).

use rand_core::Rng;

use crate::entry::Entry;
use crate::message::{Message, RequestVote, RequestVoteResponse};
use crate::node::Node;
use crate::quorum::VoteOutcome;
use crate::role::{RoleState, VoteTally};
use crate::time::Instant;
use crate::tracker::ProgressTracker;
use crate::types::{NodeId, Term};

impl<R: Rng> Node<R> {
    /// Starts an election: a pre-vote round when pre-vote is on, otherwise
    /// a real election in the next term.
    pub(crate) fn start_election(&mut self, now: Instant) {
        // A learner, or a node removed or not yet added, follows whoever
        // leads and never campaigns (unless its vote may still be needed:
        // see `MembershipLog::may_campaign`). Nor does a node one term
        // short of `Term::MAX`, which no node may reach (its peers would
        // refuse every message of that term).
        if !self.may_start_election() {
            self.reset_election_deadline(now);
            return;
        }
        if self.config.pre_vote {
            self.become_pre_candidate(now);
        } else {
            self.become_candidate(now, false);
        }
    }

    /// Asks every voter whether it would vote for us in the next term,
    /// without raising our own term: a node that cannot win leaves the
    /// cluster's term untouched.
    fn become_pre_candidate(&mut self, now: Instant) {
        self.stats.pre_votes_started += 1;
        self.role = RoleState::PreCandidate {
            votes: VoteTally::default(),
        };
        self.leader_contact_at = None;
        self.reset_election_deadline(now);
        self.broadcast(&Message::RequestVote(RequestVote {
            term: self.term.next(),
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            pre_vote: true,
            transfer: false,
        }));
        self.record_own_vote(now);
    }

    /// Raises the term, votes for itself and asks every voter for a vote;
    /// with `transfer`, because the leader handed it the leadership.
    pub(crate) fn become_candidate(&mut self, now: Instant, transfer: bool) {
        self.stats.elections_started += 1;
        let previous_term = self.term;
        self.term = self.term.next();
        assert!(self.term > previous_term, "the term is exhausted");
        self.voted_for = Some(self.id);
        self.mark_hard_state_dirty();
        self.role = RoleState::Candidate;
        self.election_votes = Some(VoteTally::default());
        self.leader_contact_at = None;
        self.reset_election_deadline(now);
        // `broadcast` persists the new term and self-vote before the first request.
        self.broadcast(&Message::RequestVote(RequestVote {
            term: self.term,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            pre_vote: false,
            transfer,
        }));
        self.record_own_vote(now);
    }

    pub(crate) fn become_leader(&mut self, now: Instant) {
        // Only this node's own election in this term makes it leader.
        assert_eq!(self.voted_for, Some(self.id), "a leader voted for itself");
        assert!(
            !matches!(self.role, RoleState::Leader { .. }),
            "elected twice in term {}",
            self.term
        );
        // The election is decided: should this node step down within the
        // term (check-quorum), late or duplicated answers to it must not
        // make it leader again.
        self.election_votes = None;
        // A fresh leader has just heard from a majority (its votes): count
        // every follower as in contact now, so check-quorum measures from
        // here. Probing starts just past the leader's log as it was before
        // this term.
        let next_index = self.log.last_index().next();
        let progress = ProgressTracker::new(self.id, self.memberships.current(), now, next_index);
        self.role = RoleState::Leader { progress };
        self.leader_wakeup = None;
        self.transfer = None;
        self.leader_contact_at = None;
        self.uncommitted_bytes = self
            .log
            .payload_bytes(self.settled_index().next(), self.log.last_index());
        if self.config.noop_on_election {
            let noop = Entry::noop(self.log.last_index().next(), self.term);
            self.append_to_own_log(noop);
        }
        self.broadcast_heartbeat(now);
        self.maybe_commit();
    }

    fn record_own_vote(&mut self, now: Instant) {
        let id = self.id;
        match self.role {
            RoleState::PreCandidate { .. } => self.record_pre_vote(now, id, true),
            _ => self.record_election_vote(now, id, true),
        }
    }

    /// Counts one answer of the current pre-vote round and acts on it.
    fn record_pre_vote(&mut self, now: Instant, voter: NodeId, granted: bool) {
        let RoleState::PreCandidate { votes } = &mut self.role else {
            return;
        };
        if !self.voters.contains(voter) {
            return;
        }
        match votes.record(voter, granted, &self.voters) {
            VoteOutcome::Won => self.become_candidate(now, false),
            VoteOutcome::Lost => self.become_follower(now, self.term, None),
            VoteOutcome::Pending => {}
        }
    }

    /// Counts one vote of this node's election in the current term. Votes
    /// belong to the term, not to the candidate role: a candidate whose
    /// timer ran out went back to pre-voting in the same term, and a
    /// majority for that term still makes it leader of it (votes held back
    /// by a slow network are not wasted).
    fn record_election_vote(&mut self, now: Instant, voter: NodeId, granted: bool) {
        let Some(votes) = &mut self.election_votes else {
            return;
        };
        if !self.voters.contains(voter) {
            return;
        }
        match votes.record(voter, granted, &self.voters) {
            VoteOutcome::Won => self.become_leader(now),
            VoteOutcome::Lost if self.role == RoleState::Candidate => {
                self.become_follower(now, self.term, None)
            }
            VoteOutcome::Lost | VoteOutcome::Pending => {}
        }
    }

    /// Whether this node's vote may be needed to elect a leader (see
    /// `MembershipLog::may_campaign`).
    pub(crate) fn may_campaign(&self) -> bool {
        self.memberships.may_campaign(self.id, self.commit_index)
    }

    /// Whether this node may start an election now: its vote may be
    /// needed, and it has a term left to raise to.
    pub(crate) fn may_start_election(&self) -> bool {
        self.may_campaign() && self.term.next() != Term::MAX && !self.is_recovering()
    }

    /// Whether a live leader was heard from within the minimum election
    /// timeout (always true on a leader), with leader stickiness on. Vote
    /// requests are ignored meanwhile.
    pub(crate) fn is_in_leader_lease(&self, now: Instant) -> bool {
        if !self.config.leader_stickiness {
            return false;
        }
        match self.role {
            RoleState::Leader { .. } => true,
            RoleState::Follower { leader: Some(_) } => self
                .leader_contact_at
                .is_some_and(|contact| now < contact + self.config.election_timeout_min),
            _ => false,
        }
    }

    /// Ends the abstention of a node that lost part of its log once its
    /// log holds an entry of a term after the loss: only a leader elected
    /// without this node's vote made it, and log matching brings along
    /// everything that leader held when elected — every entry this node's
    /// lost acknowledgements could have helped commit.
    pub(crate) fn maybe_end_recovery(&mut self) {
        if self
            .recovering_from_term
            .is_some_and(|lost_at| self.log.last_term() > lost_at)
        {
            self.recovering_from_term = None;
            self.mark_hard_state_dirty();
        }
    }

    /// Whether this node may give its vote in the current term to
    /// `candidate`: it has not voted for anyone else, and does not know of a
    /// leader of this term (who must have had a majority already).
    fn can_vote_for(&self, candidate: NodeId) -> bool {
        match self.voted_for {
            Some(vote) => vote == candidate,
            None => self.leader().is_none(),
        }
    }

    /// Answers a vote request whose term is at least ours (for a real vote,
    /// exactly ours: a higher one was adopted before).
    pub(crate) fn handle_request_vote(&mut self, now: Instant, from: NodeId, request: RequestVote) {
        // A node that lost part of its log may have acknowledged entries
        // the candidate lacks: it grants nothing until it has caught up.
        let log_is_current = !self.is_recovering()
            && self
                .log
                .is_up_to_date(request.last_log_term, request.last_log_index);
        let response = if request.pre_vote {
            // A pre-vote for a later term is granted on the log alone: it
            // promises nothing and changes nothing here.
            let granted = log_is_current && (request.term > self.term || self.can_vote_for(from));
            RequestVoteResponse {
                term: if granted { request.term } else { self.term },
                granted,
                pre_vote: true,
            }
        } else {
            let granted = log_is_current && self.can_vote_for(from);
            if granted {
                if self.voted_for != Some(from) {
                    self.voted_for = Some(from);
                    self.mark_hard_state_dirty();
                }
                // Granting a vote resets the election timer (Figure 2), so
                // that this node does not compete with the candidate.
                self.reset_election_deadline(now);
            }
            RequestVoteResponse {
                term: self.term,
                granted,
                pre_vote: false,
            }
        };
        // `send` persists a new vote before the response leaves.
        self.send(from, Message::RequestVoteResponse(response));
    }

    /// Counts a vote response whose term is at least ours.
    pub(crate) fn handle_request_vote_response(
        &mut self,
        now: Instant,
        from: NodeId,
        response: RequestVoteResponse,
    ) {
        if response.pre_vote {
            // A granted pre-vote names the term we would campaign in; any
            // other term answers a request we did not send.
            let counts = matches!(self.role, RoleState::PreCandidate { .. })
                && (!response.granted || response.term == self.term.next());
            if counts {
                self.record_pre_vote(now, from, response.granted);
            }
        } else {
            // Our own election in this term: we voted for ourselves in it
            // and have not since lost it to a leader or a newer term.
            let counts = response.term == self.term
                && self.voted_for == Some(self.id)
                && matches!(
                    self.role,
                    RoleState::Candidate | RoleState::PreCandidate { .. }
                );
            if counts {
                self.record_election_vote(now, from, response.granted);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};

    use crate::{
        AppendEntries, Config, Input, Instant, LogIndex, Message, Node, NodeId, Output,
        PersistedState, Term,
    };

    #[test]
    fn the_next_deadline_follows_the_election_timer() {
        let config = Config::default();
        let ids = [NodeId(1), NodeId(2), NodeId(3)];
        let rng = ChaCha8Rng::seed_from_u64(7);
        let mut node = Node::new(
            ids[0],
            &ids,
            config.clone(),
            rng,
            PersistedState::default(),
            Instant::ZERO,
        )
        .expect("valid");
        let armed = node.drain_outputs().find_map(|output| match output {
            Output::SetTimer { deadline } => Some(deadline),
            _ => None,
        });
        assert_eq!(armed, Some(node.next_deadline()));

        // A heartbeat pushes the election timeout out from when it came.
        let at = Instant::ZERO + Duration::from_millis(10);
        let heartbeat = Message::AppendEntries(AppendEntries {
            term: Term(1),
            prev_log_index: LogIndex(0),
            prev_log_term: Term(0),
            leader_commit: LogIndex(0),
            entries: alloc::vec::Vec::new(),
        });
        node.handle(
            at,
            Input::Message {
                from: ids[1],
                message: heartbeat,
            },
        )
        .expect("accepted");
        let _ = node.drain_outputs();
        let deadline = node.next_deadline();
        assert!(deadline >= at + config.election_timeout_min);
        assert!(deadline < at + config.election_timeout_max);
    }
}

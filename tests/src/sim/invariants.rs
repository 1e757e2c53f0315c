//! Raft's election-time safety properties, checked by the cluster after
//! every event. Each check returns a description of the violation, which
//! the cluster turns into a failure report with the seed and the trace.

use std::collections::BTreeMap;

use kontiki::{HardState, Message, NodeId, Role, Term};

/// What the checker remembers of the whole run, across crashes.
#[derive(Default)]
pub struct Checker {
    /// The leader of each term that had one (election safety).
    leaders: BTreeMap<Term, NodeId>,
    /// Each vote ever given or persisted: (voter, term) -> candidate.
    votes: BTreeMap<(NodeId, Term), NodeId>,
    /// The highest term each node was seen at, across restarts.
    highest_term: BTreeMap<NodeId, Term>,
}

impl Checker {
    /// Leaders seen per term over the whole run.
    pub fn leaders(&self) -> &BTreeMap<Term, NodeId> {
        &self.leaders
    }

    /// A node is leader in `term`: no other node may ever lead that term.
    pub(crate) fn check_leader(&mut self, node: NodeId, term: Term) -> Result<(), String> {
        match self.leaders.insert(term, node) {
            Some(other) if other != node => Err(format!(
                "election safety: n{other} and n{node} are both leaders of term {term}"
            )),
            _ => Ok(()),
        }
    }

    /// A node (at the end of a step) is in `term` with role `role`.
    pub(crate) fn check_node(
        &mut self,
        node: NodeId,
        term: Term,
        role: Role,
    ) -> Result<(), String> {
        let highest = self.highest_term.entry(node).or_default();
        if term < *highest {
            return Err(format!(
                "term went backwards on n{node}: from {highest} to {term}"
            ));
        }
        *highest = term;
        if role == Role::Leader {
            self.check_leader(node, term)?;
        }
        Ok(())
    }

    /// A node persists `new` over `old`.
    pub(crate) fn check_persist(
        &mut self,
        node: NodeId,
        old: HardState,
        new: HardState,
    ) -> Result<(), String> {
        if new.term < old.term {
            return Err(format!(
                "persisted term went backwards on n{node}: from {} to {}",
                old.term, new.term
            ));
        }
        if new.term == old.term && old.voted_for.is_some() && new.voted_for != old.voted_for {
            return Err(format!(
                "n{node} overwrote its vote in term {}: {:?} -> {:?}",
                new.term, old.voted_for, new.voted_for
            ));
        }
        if let Some(candidate) = new.voted_for {
            self.record_vote(node, new.term, candidate)?;
        }
        Ok(())
    }

    fn record_vote(&mut self, voter: NodeId, term: Term, candidate: NodeId) -> Result<(), String> {
        match self.votes.insert((voter, term), candidate) {
            Some(previous) if previous != candidate => Err(format!(
                "n{voter} voted twice in term {term}: for n{previous} and for n{candidate}"
            )),
            _ => Ok(()),
        }
    }

    /// A node sends `message` to `to` while its storage holds `durable`:
    /// whatever the message vouches for must already be durable.
    pub(crate) fn check_send(
        &mut self,
        from: NodeId,
        to: NodeId,
        message: &Message,
        durable: HardState,
    ) -> Result<(), String> {
        let unpersisted = |what: &str| {
            Err(format!(
                "n{from} sent {what} to n{to} before persisting it (durable: term {}, vote {:?})",
                durable.term, durable.voted_for
            ))
        };
        match message {
            Message::RequestVote(request) if request.pre_vote => {
                // A pre-vote asks about the next term without adopting it.
                if request.term.get() > durable.term.get() + 1 {
                    return unpersisted("a pre-vote beyond its next term");
                }
            }
            Message::RequestVote(request) => {
                if durable.term != request.term || durable.voted_for != Some(from) {
                    return unpersisted("a vote request");
                }
            }
            Message::RequestVoteResponse(response) if response.granted && !response.pre_vote => {
                if durable.term != response.term || durable.voted_for != Some(to) {
                    return unpersisted("a granted vote");
                }
                self.record_vote(from, response.term, to)?;
            }
            Message::RequestVoteResponse(response) if response.granted => {
                // A granted pre-vote carries the requester's proposed term.
            }
            other => {
                if other.term() > durable.term {
                    return unpersisted("a message of a newer term");
                }
            }
        }
        Ok(())
    }
}

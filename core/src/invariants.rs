//! The node's invariants, checked where they live: after every input in
//! debug builds, and on demand (the simulator, the fuzz targets and the
//! model checks call [`Node::check_invariants`] in every build).
//!
//! A broken invariant is a bug in the core, never the fault of a peer or
//! the caller, so it panics with a description of what broke.

use crate::node::Node;
use crate::role::RoleState;
use crate::types::{LogIndex, NodeId};

impl<R> Node<R> {
    /// Checks every internal invariant of the node, panicking with a
    /// description of the first one broken.
    ///
    /// [`Node::handle`] and [`Node::drain_outputs`] run this in debug
    /// builds; tests and fuzzers call it to check release builds too. It
    /// costs time proportional to the uncommitted part of the log.
    ///
    /// # Panics
    ///
    /// If an invariant does not hold, which is a bug in kontiki.
    pub fn check_invariants(&self) {
        self.check_membership();
        self.check_log_positions();
        self.check_role();
    }

    /// The configuration in force is the latest membership entry of the
    /// log (or the base's), and the voters counted are its voters.
    fn check_membership(&self) {
        let index = self.memberships.current_index();
        assert!(
            index <= self.log.last_index(),
            "node {}: configuration from index {index}, beyond its log",
            self.id
        );
        // At or below the snapshot, the configuration is the snapshot's.
        let snapshot_index = self.snapshot.as_ref().map_or(LogIndex(0), |s| s.index);
        if index > snapshot_index {
            let entry = self.log.entry(index);
            assert!(
                entry.is_some_and(|entry| entry.kind == crate::EntryKind::Membership),
                "node {}: configuration from index {index}, which is no membership entry",
                self.id
            );
        }
        // Entries up to the commit index were checked as they came; the
        // scan stays proportional to the uncommitted part.
        let later = self
            .log
            .slice(index.max(self.commit_index).next(), self.log.last_index())
            .iter()
            .any(|entry| entry.kind == crate::EntryKind::Membership);
        assert!(
            !later,
            "node {}: a membership entry after the one in force ({index})",
            self.id
        );
        assert!(
            self.memberships.current().is_counted_by(&self.voters),
            "node {}: counts voters other than its configuration's",
            self.id
        );
        if self.recovering_from_term.is_some() {
            assert!(
                matches!(self.role, RoleState::Follower { .. }),
                "node {}: campaigns or leads while recovering a lost log",
                self.id
            );
        }
        if matches!(
            self.role,
            RoleState::Candidate | RoleState::PreCandidate { .. }
        ) {
            assert!(
                self.memberships.may_campaign(self.id, self.commit_index),
                "node {}: campaigns without a vote",
                self.id
            );
        }
    }

    /// applied <= commit <= last index, the snapshot between the log's
    /// base and the applied index, durable no further than the log.
    fn check_log_positions(&self) {
        self.log.check_invariants();
        let last_index = self.log.last_index();
        assert!(
            self.applied_index <= self.commit_index && self.commit_index <= last_index,
            "node {}: applied {} <= commit {} <= last index {last_index} broken",
            self.id,
            self.applied_index,
            self.commit_index
        );
        assert!(
            self.durable_index <= last_index,
            "node {}: durable through {} beyond its log ({last_index})",
            self.id,
            self.durable_index
        );
        if let Some(ack) = self.pending_ack {
            assert!(
                self.config.asynchronous_writes && ack.index > self.durable_index,
                "node {}: owes an acknowledgement through {} with its log durable through {}",
                self.id,
                ack.index,
                self.durable_index
            );
        }
        assert!(
            self.log.last_term() <= self.term,
            "node {}: log holds term {} above the current term {}",
            self.id,
            self.log.last_term(),
            self.term
        );
        match &self.snapshot {
            None => assert_eq!(
                self.log.base_index(),
                LogIndex(0),
                "node {}: a compacted log without a snapshot",
                self.id
            ),
            Some(snapshot) => {
                assert!(
                    self.log.base_index() <= snapshot.index && snapshot.index <= self.applied_index,
                    "node {}: snapshot through {} outside base {} ..= applied {}",
                    self.id,
                    snapshot.index,
                    self.log.base_index(),
                    self.applied_index
                );
                assert_eq!(
                    self.log.term_at(snapshot.index),
                    Some(snapshot.term),
                    "node {}: the log disagrees with its snapshot",
                    self.id
                );
            }
        }
    }

    fn check_role(&self) {
        let now = self.now;
        let has_leader_contact = matches!(self.role, RoleState::Follower { leader: Some(_) });
        assert_eq!(
            self.leader_contact_at.is_some(),
            has_leader_contact,
            "node {}: leader contact time kept outside a follower that knows its leader",
            self.id
        );
        if let Some(contact) = self.leader_contact_at {
            assert!(
                contact <= now,
                "node {}: leader contact in the future",
                self.id
            );
        }
        if !matches!(self.role, RoleState::Leader { .. }) {
            assert!(
                self.reads.is_empty(),
                "node {}: reads wait on a node that does not lead",
                self.id
            );
            assert!(
                self.unpersisted_from.is_none(),
                "node {}: own entries unpersisted on a node that does not lead",
                self.id
            );
            assert!(
                self.leader_wakeup.is_none() && self.transfer.is_none(),
                "node {}: a leader's wake-up or transfer on a node that does not lead",
                self.id
            );
            assert!(
                self.election_deadline <= now + self.config.election_timeout_max,
                "node {}: election deadline further than the longest timeout",
                self.id
            );
        }
        match &self.role {
            RoleState::Follower { leader } => {
                if let Some(leader) = *leader {
                    self.check_known_leader(leader);
                }
            }
            RoleState::PreCandidate { .. } => {}
            RoleState::Candidate => {
                assert_eq!(
                    self.voted_for,
                    Some(self.id),
                    "node {}: a candidate that did not vote for itself",
                    self.id
                );
                assert!(
                    self.election_votes.is_some(),
                    "node {}: a candidate without a tally",
                    self.id
                );
            }
            RoleState::Leader { progress } => {
                assert_eq!(
                    self.voted_for,
                    Some(self.id),
                    "node {}: a leader that did not vote for itself",
                    self.id
                );
                assert!(
                    self.election_votes.is_none(),
                    "node {}: a leader whose election is still open",
                    self.id
                );
                assert!(
                    self.heartbeat_deadline <= now + self.config.heartbeat_interval,
                    "node {}: heartbeat deadline further than one interval",
                    self.id
                );
                let last_index = self.log.last_index();
                if let Some(from) = self.unpersisted_from {
                    assert!(
                        from > self.log.base_index() && from <= last_index,
                        "node {}: unpersisted entries from {from} outside its log",
                        self.id
                    );
                }
                progress.check_invariants(
                    self.id,
                    self.memberships.current(),
                    now,
                    last_index,
                    (
                        self.config.max_inflight_appends,
                        self.config.max_inflight_bytes,
                    ),
                );
                self.reads.check_invariants(last_index);
                let uncommitted = self
                    .log
                    .payload_bytes(self.settled_index().next(), last_index);
                assert_eq!(
                    self.uncommitted_bytes, uncommitted,
                    "node {}: uncommitted byte count is off",
                    self.id
                );
            }
        }
    }

    fn check_known_leader(&self, leader: NodeId) {
        assert!(leader != self.id, "node {}: follows itself", self.id);
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::String;

    use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};

    use crate::{
        Config, Input, Instant, LogIndex, Node, NodeId, Output, Persist, PersistedState, Term,
    };

    fn single_node_leader() -> Node<ChaCha8Rng> {
        let mut node = Node::new(
            NodeId(1),
            &[NodeId(1)],
            Config::default(),
            ChaCha8Rng::seed_from_u64(1),
            PersistedState::default(),
            Instant::ZERO,
        )
        .expect("valid");
        // It elected itself and appended its no-op; say the write is done,
        // as a driver does, so that it commits.
        let written = node
            .drain_outputs()
            .filter_map(|output| match output {
                Output::Persist(Persist::Entries(entries)) => {
                    entries.last().map(|entry| (entry.index, entry.term))
                }
                _ => None,
            })
            .last();
        let (index, term) = written.expect("the no-op was written");
        node.handle(Instant::ZERO, Input::Persisted { index, term })
            .expect("accepted");
        let _ = node.drain_outputs();
        assert_eq!(node.commit_index(), index);
        node
    }

    #[test]
    fn a_healthy_node_passes() {
        single_node_leader().check_invariants();
    }

    /// Breaks one thing in a healthy node and checks that the check names
    /// it.
    fn assert_caught(expected: &str, corrupt: impl FnOnce(&mut Node<ChaCha8Rng>)) {
        let mut node = single_node_leader();
        corrupt(&mut node);
        let caught =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| node.check_invariants()));
        let panic = caught.expect_err("the broken invariant is caught");
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        assert!(message.contains(expected), "{message:?} names {expected:?}");
    }

    #[test]
    fn each_broken_invariant_is_caught_and_named() {
        assert_caught("applied 1 <= commit 7 <= last index 1 broken", |node| {
            node.commit_index = LogIndex(7);
        });
        assert_caught("counts voters other than its configuration's", |node| {
            node.voters = crate::Membership::with_voters(&[NodeId(1), NodeId(9)])
                .expect("valid")
                .quorum();
        });
        assert_caught("log holds term 1 above the current term 0", |node| {
            node.term = Term(0);
        });
        assert_caught("uncommitted byte count is off", |node| {
            node.uncommitted_bytes = 3;
        });
    }
}

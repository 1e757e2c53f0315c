//! A leader's periodic work: heartbeats, retransmission to followers that
//! stopped making progress, and check-quorum.

use rand_core::RngCore;

use crate::node::Node;
use crate::quorum::majority;
use crate::role::{ReplicationState, RoleState};
use crate::time::Instant;

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
        self.restart_stalled_replication(now);
        self.broadcast_heartbeat(now);
    }

    /// Sends every follower an append: new entries where there are any to
    /// send, otherwise an empty heartbeat carrying the commit index.
    pub(crate) fn broadcast_heartbeat(&mut self, now: Instant) {
        self.heartbeat_deadline = now + self.config.heartbeat_interval;
        self.send_appends_to_followers(true);
    }

    /// A follower in the streaming state whose match index has not moved for
    /// a heartbeat interval while appends were outstanding lost some of
    /// them: probe it again from just past what it is known to hold.
    fn restart_stalled_replication(&mut self, now: Instant) {
        let last_index = self.log.last_index();
        let interval = self.config.heartbeat_interval;
        let RoleState::Leader { followers } = &mut self.role else {
            return;
        };
        for (_, progress) in followers.iter_mut() {
            let stalled =
                progress.match_index < last_index && now >= progress.last_progress_at + interval;
            match progress.state {
                ReplicationState::Replicate { .. } if stalled => {
                    progress.state = ReplicationState::Probe { paused: false };
                    progress.next_index = progress.match_index.next();
                }
                // A probe whose answer was lost is sent again.
                ReplicationState::Probe { .. } => {
                    progress.state = ReplicationState::Probe { paused: false };
                }
                ReplicationState::Replicate { .. } => {}
                // An unanswered snapshot may be lost, or merely large: it is
                // sent again only after an election timeout.
                ReplicationState::Snapshot { sent_at, .. }
                    if now >= sent_at + self.config.election_timeout_max =>
                {
                    progress.state = ReplicationState::Probe { paused: false };
                    progress.next_index = progress.match_index.next();
                }
                ReplicationState::Snapshot { .. } => {}
            }
        }
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
}

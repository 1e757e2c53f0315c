//! A leader's periodic work: heartbeats, retransmission to followers that
//! stopped making progress, and check-quorum.

use rand_core::Rng;

use crate::node::Node;
use crate::role::RoleState;
use crate::time::Instant;

impl<R: Rng> Node<R> {
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

    /// Restarts replication that stalled: a stream that lost appends, a
    /// probe whose answer was lost, and (after an election timeout, since
    /// it may be merely large) an unanswered snapshot.
    fn restart_stalled_replication(&mut self, now: Instant) {
        let last_index = self.log.last_index();
        let interval = self.config.heartbeat_interval;
        let snapshot_timeout = self.config.election_timeout_max;
        let RoleState::Leader { progress } = &mut self.role else {
            return;
        };
        for follower in progress.iter_mut() {
            follower.on_heartbeat_tick(now, last_index, interval, snapshot_timeout);
        }
    }

    /// Whether the leader itself plus the followers heard from within the
    /// minimum election timeout form a quorum.
    fn has_recent_quorum_contact(&self, now: Instant) -> bool {
        let RoleState::Leader { progress } = &self.role else {
            return false;
        };
        let window = self.config.election_timeout_min;
        progress.has_quorum(&self.voters, self.id, |follower| {
            follower.is_recently_active(now, window)
        })
    }
}

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

    /// Recomputes when the leader must next act for one follower besides
    /// its heartbeat (see `Node::leader_wakeup`): after sending a snapshot,
    /// deciding on commit news, or acting on the timer.
    pub(crate) fn refresh_leader_wakeup(&mut self) {
        self.leader_wakeup = match &self.role {
            RoleState::Leader { progress } => {
                progress
                    .commit_news_plan(
                        self.commit_index,
                        self.now,
                        self.config.heartbeat_interval,
                        self.config.commit_news_interval,
                    )
                    .1
            }
            _ => None,
        };
    }

    /// Sends a heartbeat to every follower whose snapshot has been out for
    /// a retransmission interval (a heartbeat interval) without one: its
    /// answer tells whether the snapshot arrived, so a lost one is sent
    /// again a round trip later rather than up to a heartbeat after that.
    pub(crate) fn send_due_snapshot_probes(&mut self, now: Instant) {
        let interval = self.config.heartbeat_interval;
        let mut position = 0;
        while let RoleState::Leader { progress } = &self.role {
            if position == progress.len() {
                return;
            }
            let (peer, follower) = progress.at(position);
            position += 1;
            if follower
                .snapshot_probe_at(interval)
                .is_some_and(|probe_at| probe_at <= now)
            {
                self.send_append(peer, true);
            }
        }
    }

    /// Restarts replication that stalled: a stream that lost appends and
    /// a probe whose answer was lost. (A snapshot is sent again on an
    /// answer showing it lost, not on a timer: it may be merely large.)
    fn restart_stalled_replication(&mut self, now: Instant) {
        let last_index = self.log.last_index();
        let interval = self.config.heartbeat_interval;
        let RoleState::Leader { progress } = &mut self.role else {
            return;
        };
        progress.on_heartbeat_tick(now, last_index, interval);
    }

    /// Whether the leader itself plus the followers heard from within the
    /// check-quorum window form a quorum.
    ///
    /// The window is a minimum election timeout plus a maximum one: a full
    /// minimum timeout of silence, as followers allow their leader, plus
    /// room for answers that take long to come back. A round trip can be a
    /// large part of a short timeout (with 12–24 ms timeouts and 6–9 ms
    /// each way, a new leader's first answers arrive 12–18 ms after it
    /// wins), and answers can be held back behind others; a leader that
    /// judged over the minimum timeout alone stepped down before they
    /// could arrive, over and over. The price: a leader cut off from a
    /// majority stops acting as one after this longer window, 450 ms with
    /// the default timeouts, while the majority elects a new leader in the
    /// meantime as before.
    fn has_recent_quorum_contact(&self, now: Instant) -> bool {
        let RoleState::Leader { progress } = &self.role else {
            return false;
        };
        let window = self.config.election_timeout_min + self.config.election_timeout_max;
        progress.has_quorum(&self.voters, self.id, |follower| {
            follower.is_recently_active(now, window)
        })
    }
}

//! Snapshots: the state machine's state as of a committed log index, which
//! lets a node drop the log entries it covers (§7).

use bytes::Bytes;

use crate::entry::Snapshot;
use rand_core::Rng;

use crate::error::HandleError;
use crate::message::{InstallSnapshot, Message};
use crate::node::Node;
use crate::output::Output;
use crate::persist::Persist;
use crate::role::RoleState;
use crate::time::Instant;
use crate::types::{LogIndex, NodeId};

impl<R: Rng> Node<R> {
    /// Adopts the application's snapshot through applied entry `index`,
    /// asks for it to be persisted, and drops the log entries it covers
    /// but the last [`Config::compaction_lag`](crate::Config::compaction_lag).
    pub(crate) fn take_snapshot(
        &mut self,
        index: LogIndex,
        data: Bytes,
    ) -> Result<(), HandleError> {
        if index > self.applied_index {
            return Err(HandleError::SnapshotBeyondApplied {
                applied_index: self.applied_index,
            });
        }
        let snapshot_index = self.snapshot_index();
        if index <= snapshot_index || index == LogIndex(0) {
            return Err(HandleError::SnapshotNotNewer { snapshot_index });
        }
        let term = self
            .log
            .term_at(index)
            .expect("invariant: entries above the snapshot are in the log");
        let membership = self.memberships.at(index).clone();
        let snapshot = Snapshot {
            index,
            term,
            membership: membership.clone(),
            data,
        };
        self.memberships.rebase(index, membership);
        self.outputs
            .push(Output::Persist(Persist::Snapshot(snapshot.clone())));
        let previous = self.snapshot.replace(snapshot);
        // Never past what this node's own disk holds: entries still being
        // written stay in memory (and in a leader's unsettled count) until
        // they are.
        let mut through = LogIndex(index.get().saturating_sub(self.config.compaction_lag))
            .min(self.own_match_index());
        let now = self.now;
        let window = self.config.election_timeout_min + self.config.election_timeout_max;
        if let RoleState::Leader { progress } = &mut self.role {
            // A follower catching up, or being sent the previous snapshot,
            // goes on from the log rather than needing this one too: the
            // leader keeps what it needs, but nothing the previous
            // snapshot covered, so that the log never holds more than two
            // snapshots' worth of entries for a follower that stays behind.
            if let Some(hold) = progress.compaction_hold(now, window) {
                through = through.min(hold.max(snapshot_index));
            }
            self.log.compact_through(through);
            progress.keep_resumable_snapshot(previous, self.log.base_index());
        } else {
            self.log.compact_through(through);
        }
        Ok(())
    }

    /// Sends `peer` the snapshot, because it needs entries the log no
    /// longer holds, and waits for its answer.
    pub(crate) fn send_snapshot(&mut self, peer: NodeId) {
        let now = self.now;
        let RoleState::Leader { progress } = &mut self.role else {
            return;
        };
        let Some(snapshot) = progress
            .resumable_snapshot_for(peer, self.log.base_index())
            .or(self.snapshot.as_ref())
            .cloned()
        else {
            return;
        };
        let Some(follower) = progress.get_mut(peer) else {
            return;
        };
        follower.become_snapshot(now, snapshot.index);
        let message = Message::InstallSnapshot(InstallSnapshot {
            term: self.term,
            snapshot,
        });
        self.send(peer, message);
        // The leader checks on it a retransmission interval from now.
        self.refresh_leader_wakeup();
    }

    /// Handles the leader's snapshot (of our current term, from the leader
    /// this node follows or may follow): replaces the state machine and the
    /// log it covers, unless the node already committed that far.
    pub(crate) fn handle_install_snapshot(
        &mut self,
        now: Instant,
        from: NodeId,
        install: InstallSnapshot,
    ) -> Result<(), HandleError> {
        self.check_sender_may_lead(from)?;
        self.become_follower(now, self.term, Some(from));
        let snapshot = install.snapshot;
        let index = snapshot.index;
        if index > self.commit_index {
            match self.log.term_at(index) {
                // The log agrees with the snapshot: what follows it stays.
                Some(term) if term == snapshot.term => {}
                // Our entry there was never committed (the leader's was),
                // nor anything after it.
                Some(_) => {
                    self.log.truncate_from(index);
                    self.follow_truncated_memberships(index);
                    self.durable_index = self.durable_index.min(LogIndex(index.get() - 1));
                    self.outputs
                        .push(Output::Persist(Persist::TruncateLog { from: index }));
                }
                None => {}
            }
            self.flush_hard_state();
            self.log.reset_to_snapshot(index, snapshot.term);
            self.follow_snapshot_membership(index, snapshot.membership.clone());
            self.commit_index = index;
            self.applied_index = index;
            if !self.config.asynchronous_writes {
                // Persisted before anything later is sent, so durable by
                // the time it counts.
                self.durable_index = self.durable_index.max(index);
            }
            self.outputs
                .push(Output::Persist(Persist::Snapshot(snapshot.clone())));
            self.outputs.push(Output::InstallSnapshot(snapshot.clone()));
            self.snapshot = Some(snapshot);
            self.maybe_end_recovery();
        }
        // Either way the node holds every entry through `index` (durably
        // once its writes are reported, with asynchronous writes).
        self.acknowledge(from, index);
        Ok(())
    }
}

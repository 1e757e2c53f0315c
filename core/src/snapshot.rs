//! Snapshots: the state machine's state as of a committed log index, which
//! lets a node drop the log entries it covers (§7).

use bytes::Bytes;
use rand_core::RngCore;

use crate::message::{AppendEntriesResponse, InstallSnapshot, Message};
use crate::node::{HandleError, Node};
use crate::output::Output;
use crate::role::{progress_of, ReplicationState, RoleState};
use crate::time::Instant;
use crate::types::{LogIndex, NodeId, Term};

/// The application's state as of the committed entry at `index`, whose term
/// is `term`, in whatever encoding the application chose.
///
/// The core never looks inside `data`: it stores the latest snapshot (a
/// shared buffer, so holding it costs no copy), sends it to followers that
/// need entries it has dropped, and hands it back through
/// [`Output::PersistSnapshot`](crate::Output::PersistSnapshot) and
/// [`Output::RestoreSnapshot`](crate::Output::RestoreSnapshot).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// The last log index the snapshot covers.
    pub index: LogIndex,
    /// The term of the entry at `index`.
    pub term: Term,
    /// The state machine's state after applying entries `1..=index`.
    pub data: Bytes,
}

impl<R: RngCore> Node<R> {
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
        let snapshot = Snapshot { index, term, data };
        self.outputs.push(Output::PersistSnapshot(snapshot.clone()));
        self.snapshot = Some(snapshot);
        let through = LogIndex(index.get().saturating_sub(self.config.compaction_lag));
        self.log.compact_through(through);
        Ok(())
    }

    /// Sends `peer` the snapshot, because it needs entries the log no
    /// longer holds, and waits for its answer.
    pub(crate) fn send_snapshot(&mut self, peer: NodeId) {
        let now = self.now;
        let Some(snapshot) = self.snapshot.clone() else {
            return;
        };
        let RoleState::Leader { followers } = &mut self.role else {
            return;
        };
        let Some(progress) = progress_of(followers, peer) else {
            return;
        };
        progress.state = ReplicationState::Snapshot {
            index: snapshot.index,
            sent_at: now,
        };
        let message = Message::InstallSnapshot(InstallSnapshot {
            term: self.term,
            snapshot,
        });
        self.send(peer, message);
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
                    self.durable_index = self.durable_index.min(LogIndex(index.get() - 1));
                    self.outputs.push(Output::TruncateLog { from: index });
                }
                None => {}
            }
            self.flush_hard_state();
            self.log.reset_to_snapshot(index, snapshot.term);
            self.commit_index = index;
            self.applied_index = index;
            // Persisted before anything later is sent, so durable by the
            // time it counts.
            self.durable_index = self.durable_index.max(index);
            self.outputs.push(Output::PersistSnapshot(snapshot.clone()));
            self.outputs.push(Output::RestoreSnapshot(snapshot.clone()));
            self.snapshot = Some(snapshot);
        }
        // Either way the node holds every entry through `index`.
        let response = AppendEntriesResponse {
            term: self.term,
            success: true,
            index,
            conflict_term: Term(0),
        };
        self.send(from, Message::AppendEntriesResponse(response));
        Ok(())
    }
}

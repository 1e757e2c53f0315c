//! An in-memory log and the counting state machine of kontiki's T1 bench,
//! for openraft's storage traits.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StoredMembership, Vote,
};

use crate::{NodeId, TypeConfig};

#[derive(Default)]
struct Log {
    vote: Option<Vote<NodeId>>,
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    last_purged: Option<LogId<NodeId>>,
}

/// The log and vote in memory; clones share them (openraft reads the log
/// through a clone).
#[derive(Clone, Default)]
pub struct LogStore {
    log: Arc<Mutex<Log>>,
}

impl LogStore {
    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().expect("log lock")
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        Ok(self
            .log()
            .entries
            .range(range)
            .map(|(_, entry)| entry.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let log = self.log();
        let last = log
            .entries
            .values()
            .next_back()
            .map(|entry| entry.log_id)
            .or(log.last_purged);
        Ok(LogState {
            last_purged_log_id: log.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.log().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.log().vote)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        {
            let mut log = self.log();
            for entry in entries {
                log.entries.insert(entry.log_id.index, entry);
            }
        }
        // In memory, an append is "durable" at once.
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, from: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.log().entries.split_off(&from.index);
        Ok(())
    }

    async fn purge(&mut self, through: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut log = self.log();
        log.entries = log.entries.split_off(&(through.index + 1));
        log.last_purged = Some(through);
        Ok(())
    }
}

#[derive(Default)]
struct TallyState {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, ()>,
    applied: u64,
    checksum: u64,
    snapshot: Option<(SnapshotMeta<NodeId, ()>, Vec<u8>)>,
}

/// kontiki's bench state machine: counts the commands it applies and reads
/// each one (a running sum of their bytes), keeping none of them. Its
/// snapshot is the count and the sum. Clones share it, so the bench can
/// read the count.
#[derive(Clone, Default)]
pub struct Tally {
    state: Arc<Mutex<TallyState>>,
}

impl Tally {
    fn state(&self) -> MutexGuard<'_, TallyState> {
        self.state.lock().expect("state machine lock")
    }

    /// Commands applied so far.
    pub fn applied(&self) -> u64 {
        self.state().applied
    }
}

impl RaftSnapshotBuilder<TypeConfig> for Tally {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let mut state = self.state();
        let mut data = state.applied.to_le_bytes().to_vec();
        data.extend_from_slice(&state.checksum.to_le_bytes());
        let meta = SnapshotMeta {
            last_log_id: state.last_applied,
            last_membership: state.membership.clone(),
            snapshot_id: format!("{:?}", state.last_applied),
        };
        state.snapshot = Some((meta.clone(), data.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for Tally {
    type SnapshotBuilder = Tally;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, ()>), StorageError<NodeId>> {
        let state = self.state();
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<u64>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut state = self.state();
        let mut answers = Vec::new();
        for entry in entries {
            state.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Normal(command) => {
                    state.checksum = command.iter().fold(state.checksum, |sum, &byte| {
                        sum.wrapping_add(u64::from(byte))
                    });
                    state.applied += 1;
                }
                EntryPayload::Membership(membership) => {
                    state.membership = StoredMembership::new(Some(entry.log_id), membership);
                }
                EntryPayload::Blank => {}
            }
            answers.push(entry.log_id.index);
        }
        Ok(answers)
    }

    async fn get_snapshot_builder(&mut self) -> Tally {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, ()>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let word = |at: usize| {
            data.get(at..at + 8)
                .and_then(|bytes| bytes.try_into().ok())
                .map(u64::from_le_bytes)
                .unwrap_or_default()
        };
        let mut state = self.state();
        state.applied = word(0);
        state.checksum = word(8);
        state.last_applied = meta.last_log_id;
        state.membership = meta.last_membership.clone();
        state.snapshot = Some((meta.clone(), data));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        Ok(self.state().snapshot.as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(data.clone())),
        }))
    }
}

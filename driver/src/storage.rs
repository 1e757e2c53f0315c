//! Where a node keeps its hard state and log, and the in-memory store.

use std::io;
use std::sync::{Arc, Mutex};

use kontiki::{Persist, PersistedState};

use crate::snapshot_store::{MemorySnapshots, SnapshotRef, SnapshotStore};
use crate::sync::lock;

/// Durable storage for one node.
///
/// The driver hands over the writes the core asked for ([`Persist`]), in
/// order, one call at a time: the writes drained while the previous call
/// ran make the next, so one call is one durable group commit, however
/// many proposals it covers. Meanwhile the node goes on; whatever the
/// core's ordering rule says depends on a write (an acknowledgement, a
/// vote) waits until [`write`](Storage::write) returned. What each write
/// means is [`PersistedState::apply`]: a store must leave behind what
/// that leaves.
///
/// A snapshot's data lives in the store's [`SnapshotStore`]; the
/// [`Persist::Snapshot`] records carry a [`SnapshotRef`] to it. Once a
/// store has recorded a snapshot, it tells its snapshot store
/// ([`SnapshotStore::retain_from`]) so that older ones go.
pub trait Storage: Send + 'static {
    /// Everything persisted so far (the default state when empty).
    fn load(&mut self) -> io::Result<PersistedState>;

    /// Performs `writes` in order and makes them durable before returning.
    /// An error stops the node: it can no longer keep its promises.
    fn write(&mut self, writes: &[Persist]) -> io::Result<()>;

    /// Whether [`write`](Storage::write) blocks the thread (disk IO). A
    /// blocking store runs on the runtime's blocking pool.
    fn blocks(&self) -> bool {
        true
    }

    /// Where this store keeps its snapshots' data. Called once, before the
    /// node starts; the node writes, reads and receives snapshots there.
    fn snapshots(&self) -> Arc<dyn SnapshotStore>;
}

/// A store chosen at run time (say, memory or disk by a flag).
impl<S: Storage + ?Sized> Storage for Box<S> {
    fn load(&mut self) -> io::Result<PersistedState> {
        (**self).load()
    }

    fn write(&mut self, writes: &[Persist]) -> io::Result<()> {
        (**self).write(writes)
    }

    fn blocks(&self) -> bool {
        (**self).blocks()
    }

    fn snapshots(&self) -> Arc<dyn SnapshotStore> {
        (**self).snapshots()
    }
}

/// A store in memory, for tests and examples: "durable" for as long as the
/// process lives. Clones share the same state, so a test can drop a node
/// and start it again on what it had persisted.
#[derive(Clone, Debug, Default)]
pub struct MemoryStorage {
    state: Arc<Mutex<PersistedState>>,
    snapshots: MemorySnapshots,
}

impl MemoryStorage {
    /// An empty store.
    #[must_use]
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    /// A copy of what is stored.
    #[must_use]
    pub fn contents(&self) -> PersistedState {
        lock(&self.state).clone()
    }
}

impl Storage for MemoryStorage {
    fn load(&mut self) -> io::Result<PersistedState> {
        Ok(self.contents())
    }

    fn write(&mut self, writes: &[Persist]) -> io::Result<()> {
        let mut state = lock(&self.state);
        for write in writes {
            state
                .apply(write.clone())
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
            if let Persist::Snapshot(snapshot) = write {
                if let Some(current) = SnapshotRef::decode(&snapshot.data) {
                    self.snapshots.retain_from(&current)?;
                }
            }
        }
        Ok(())
    }

    fn blocks(&self) -> bool {
        false
    }

    fn snapshots(&self) -> Arc<dyn SnapshotStore> {
        Arc::new(self.snapshots.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kontiki::{Entry, HardState, LogIndex, NodeId, Term};

    #[test]
    fn clones_share_what_was_written() {
        let mut store = MemoryStorage::new();
        let other = store.clone();
        let hard_state = HardState {
            term: Term(3),
            voted_for: Some(NodeId(2)),
            log_lost_at_term: None,
        };
        store
            .write(&[
                Persist::HardState(hard_state),
                Persist::Entries(vec![
                    Entry::command(LogIndex(1), Term(1), vec![1]),
                    Entry::command(LogIndex(2), Term(3), vec![2]),
                ]),
                Persist::TruncateLog { from: LogIndex(2) },
            ])
            .unwrap();
        let loaded = other.clone().load().unwrap();
        assert_eq!(loaded.hard_state, hard_state);
        assert_eq!(loaded.entries.len(), 1);
    }

    #[test]
    fn an_append_with_a_gap_is_refused() {
        let mut store = MemoryStorage::new();
        let error = store
            .write(&[Persist::Entries(vec![Entry::command(
                LogIndex(2),
                Term(1),
                vec![],
            )])])
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}

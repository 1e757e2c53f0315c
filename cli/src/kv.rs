//! The replicated key-value store: the state machine every `kontiki node`
//! runs. Its data is [`crate::data`]'s, its writes [`crate::write`]'s
//! (encoded in log entries as [`crate::entry`] says); reads never enter
//! the log: they wait for a read barrier and then look at the store
//! directly. Its snapshot's layout is [`crate::snapshot_format`]'s.

use std::io::{self, Read};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use kontiki::LogIndex;
use kontiki_driver::{SnapshotWriter, StateMachine};

pub use crate::data::Data;
use crate::entry::Entry;
use crate::snapshot_format;
pub use crate::write::{Applied, Write};

/// The store's data, shared between the state machine (writes) and the
/// client connections (reads after a barrier).
#[derive(Clone, Default)]
pub struct Store {
    data: Arc<Mutex<Data>>,
}

impl Store {
    /// The data, locked.
    pub fn lock(&self) -> MutexGuard<'_, Data> {
        // A panic while holding the lock would be a bug in this module; the
        // data itself is never left half-updated, so keep serving.
        self.data
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The state machine: applies committed writes to a [`Store`].
pub struct KvStateMachine {
    store: Store,
}

impl KvStateMachine {
    /// A state machine writing into `store`, which must start empty: the
    /// node restores its snapshot and applies its log again at every start.
    pub fn new(store: Store) -> KvStateMachine {
        KvStateMachine { store }
    }

    /// The store as it is now, as a view that later writes leave alone:
    /// O(1), whatever the store's size.
    pub fn view(&self) -> Data {
        self.store.lock().clone()
    }
}

/// The snapshot of a store holding `data`, in memory.
pub fn encode_snapshot(data: &Data) -> Bytes {
    let mut out = Vec::new();
    snapshot_format::write(data, &mut out).expect("writing to memory cannot fail");
    Bytes::from(out)
}

impl StateMachine for KvStateMachine {
    type Output = Applied;

    fn snapshot(&mut self) -> Option<SnapshotWriter> {
        // The node's task only takes the view (O(1)); writing the pairs,
        // which grow with the store, happens on a blocking thread while
        // the node goes on.
        let view = self.view();
        Some(Box::new(move |out| snapshot_format::write(&view, out)))
    }

    fn restore(&mut self, index: LogIndex, snapshot: &mut dyn Read) -> io::Result<()> {
        let restored = snapshot_format::read(snapshot, index.0).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("the key-value snapshot at index {index} is malformed: {error}"),
            )
        })?;
        *self.store.lock() = restored;
        Ok(())
    }

    fn apply(&mut self, index: LogIndex, command: &Bytes) -> Applied {
        let entry = Entry::decode(command);
        let mut data = self.store.lock();
        // An entry this build does not understand still moves nothing but
        // the index: every node skips it alike.
        data.begin(index.0, entry.as_ref().and_then(|entry| entry.stamp));
        match entry {
            Some(entry) => entry.write.apply(&mut data),
            None => Applied::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::{ExpireAt, ExpireIf};

    #[test]
    fn a_snapshot_restores_the_same_store_as_of_when_it_was_asked_for() {
        let mut machine = KvStateMachine::new(Store::default());
        for (key, value) in [("b", "2"), ("a", ""), ("", "empty key")] {
            let (key, value) = (Bytes::from(key), Bytes::from(value));
            apply(&mut machine, 1, Write::Set { key, value });
        }
        let snapshot = written(&mut machine);
        let restored_store = Store::default();
        let mut restored = KvStateMachine::new(restored_store.clone());
        restored.restore(LogIndex(3), &mut &snapshot[..]).unwrap();
        assert_eq!(*restored_store.lock(), *machine.store.lock());
        assert_eq!(written(&mut restored), snapshot, "deterministic");
        let write = machine.snapshot().expect("the store takes snapshots");
        apply(&mut machine, 2, Write::Del(vec![Bytes::from("b")]));
        let mut later = Vec::new();
        write(&mut later).unwrap();
        assert_eq!(later, snapshot, "as of when it was asked for");
        let truncated = &snapshot[..snapshot.len() - 1];
        let error = restored
            .restore(LogIndex(3), &mut &truncated[..])
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("index 3"), "{error}");
    }

    #[test]
    fn keys_expire_by_the_stamps_of_applied_entries_alone() {
        let mut machine = KvStateMachine::new(Store::default());
        let key = Bytes::from("k");
        apply(
            &mut machine,
            1_000,
            Write::Set {
                key: key.clone(),
                value: Bytes::from("v"),
            },
        );
        let expire = Write::Expire {
            key: key.clone(),
            at: ExpireAt::After(500),
            condition: ExpireIf::Always,
        };
        assert_eq!(apply(&mut machine, 1_000, expire), Applied::Integer(1));
        // An entry of an older build (no stamp), or one this build does not
        // know, moves no clock.
        let unstamped = Write::Tick.encode();
        assert_eq!(machine.apply(LogIndex(3), &unstamped), Applied::Ok);
        assert_eq!(
            machine.apply(LogIndex(4), &Bytes::from_static(&[200])),
            Applied::Unknown
        );
        assert!(machine.store.lock().get(&key).is_some());
        // A restored node holds the same expiry, and expires alike.
        let snapshot = written(&mut machine);
        let mut restored = KvStateMachine::new(Store::default());
        restored.restore(LogIndex(4), &mut &snapshot[..]).unwrap();
        for machine in [&mut machine, &mut restored] {
            apply(machine, 1_499, Write::Tick);
            assert!(machine.store.lock().get(&key).is_some());
            apply(machine, 1_500, Write::Tick);
            assert!(machine.store.lock().get(&key).is_none(), "gone at its time");
            assert_eq!(machine.store.lock().clock(), 1_500);
        }
    }

    fn written(machine: &mut KvStateMachine) -> Vec<u8> {
        let write = machine.snapshot().expect("the store takes snapshots");
        let mut out = Vec::new();
        write(&mut out).unwrap();
        out
    }

    /// Applies `write` stamped `at`.
    fn apply(machine: &mut KvStateMachine, at: u64, write: Write) -> Applied {
        machine.apply(LogIndex(1), &Entry::encode(&write, at))
    }
}

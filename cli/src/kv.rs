//! The replicated key-value store: the state machine every `kontiki node`
//! runs. Its writes, and how each is encoded in a log entry, are
//! [`crate::write`]'s; reads never enter the log: they wait for a read
//! barrier and then look at the store directly.
//!
//! A snapshot of the store is every pair in key order, each as `key
//! length (u32, big-endian), key, value length (u32, big-endian), value`.

use std::io::{self, BufReader, BufWriter, Read, Write as _};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use kontiki::LogIndex;
use kontiki_driver::{SnapshotWriter, StateMachine};

pub use crate::write::{Applied, Write};

pub use crate::data::Map;

/// The store's data, shared between the state machine (writes) and the
/// client connections (reads after a barrier).
#[derive(Clone, Default)]
pub struct Store {
    data: Arc<Mutex<Map>>,
}

impl Store {
    /// The data, locked.
    pub fn lock(&self) -> MutexGuard<'_, Map> {
        // A panic while holding the lock would be a bug in this module; the
        // map itself is never left half-updated, so keep serving.
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
}

impl KvStateMachine {
    /// The store as it is now, as a view that later writes leave alone:
    /// O(1), whatever the store's size.
    pub fn view(&self) -> Map {
        self.store.lock().clone()
    }
}

/// Writes the snapshot of a store holding `map` to `out`: its pairs in
/// key order.
pub fn write_snapshot(map: &Map, out: &mut dyn io::Write) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    for (key, value) in map {
        // Keys and values are bounded by the client port's request limit,
        // far below 4 GiB.
        for bytes in [key, value] {
            out.write_all(&(bytes.len() as u32).to_be_bytes())?;
            out.write_all(bytes)?;
        }
    }
    out.flush()
}

/// The snapshot of a store holding `map`, in memory.
pub fn encode_snapshot(map: &Map) -> Bytes {
    let mut out = Vec::new();
    write_snapshot(map, &mut out).expect("writing to memory cannot fail");
    Bytes::from(out)
}

/// Reads a snapshot written by [`write_snapshot`] from `input`.
pub fn read_snapshot(input: &mut dyn Read) -> io::Result<Map> {
    let mut input = BufReader::with_capacity(64 * 1024, input);
    let mut map = Map::new();
    while let Some(key) = read_field(&mut input, true)? {
        let value = read_field(&mut input, false)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a key without a value"))?;
        map.insert(key, value);
    }
    Ok(map)
}

/// Reads one length-prefixed field; `None` at the end of the input, where
/// `may_end` allows it.
fn read_field(input: &mut impl Read, may_end: bool) -> io::Result<Option<Bytes>> {
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "the snapshot is cut short");
    let mut length = [0u8; 4];
    let mut filled = 0;
    while filled < length.len() {
        match input.read(&mut length[filled..])? {
            0 if filled == 0 && may_end => return Ok(None),
            0 => return Err(malformed()),
            read => filled += read,
        }
    }
    let length = u64::from(u32::from_be_bytes(length));
    // Grown as bytes arrive, not reserved from the length: a damaged
    // length costs an error, not memory.
    let mut field = Vec::new();
    input.take(length).read_to_end(&mut field)?;
    if field.len() as u64 != length {
        return Err(malformed());
    }
    Ok(Some(Bytes::from(field)))
}

impl StateMachine for KvStateMachine {
    type Output = Applied;

    fn snapshot(&mut self) -> Option<SnapshotWriter> {
        // The node's task only takes the view (O(1)); writing the pairs,
        // which grow with the store, happens on a blocking thread while
        // the node goes on.
        let view = self.view();
        Some(Box::new(move |out| write_snapshot(&view, out)))
    }

    fn restore(&mut self, index: LogIndex, snapshot: &mut dyn Read) -> io::Result<()> {
        let restored = read_snapshot(snapshot).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("the key-value snapshot at index {index} is malformed: {error}"),
            )
        })?;
        *self.store.lock() = restored;
        Ok(())
    }

    fn apply(&mut self, _index: LogIndex, command: &Bytes) -> Applied {
        match Write::decode(command) {
            Some(write) => write.apply(&mut self.store.lock()),
            None => Applied::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_restores_the_same_store_and_bad_bytes_are_refused() {
        let mut machine = KvStateMachine::new(Store::default());
        for (key, value) in [("b", "2"), ("a", ""), ("", "empty key")] {
            let (key, value) = (Bytes::from(key), Bytes::from(value));
            apply(&mut machine, Write::Set { key, value });
        }
        let snapshot = written(&mut machine);
        let restored_store = Store::default();
        let mut restored = KvStateMachine::new(restored_store.clone());
        restored.restore(LogIndex(3), &mut &snapshot[..]).unwrap();
        assert_eq!(*restored_store.lock(), *machine.store.lock());
        assert_eq!(written(&mut restored), snapshot, "deterministic");
        let write = machine.snapshot().expect("the store takes snapshots");
        apply(&mut machine, Write::Del(vec![Bytes::from("b")]));
        let mut later = Vec::new();
        write(&mut later).unwrap();
        assert_eq!(later, snapshot, "as of when it was asked for");
        for cut in [1, 2, 5] {
            let truncated = &snapshot[..snapshot.len() - cut];
            let error = restored
                .restore(LogIndex(3), &mut &truncated[..])
                .unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "cut by {cut}");
        }
        // A length far beyond the bytes that follow reserves nothing.
        let huge = [0xff, 0xff, 0xff, 0xf0, 1, 2, 3];
        let error = restored.restore(LogIndex(3), &mut &huge[..]).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    fn written(machine: &mut KvStateMachine) -> Vec<u8> {
        let write = machine.snapshot().expect("the store takes snapshots");
        let mut out = Vec::new();
        write(&mut out).unwrap();
        out
    }

    fn apply(machine: &mut KvStateMachine, write: Write) -> Applied {
        machine.apply(LogIndex(1), &write.encode())
    }
}

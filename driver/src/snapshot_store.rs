//! Where a node keeps its snapshots' data: outside the node's memory.
//!
//! A snapshot may be larger than the memory a node can spare for it, so
//! the driver never holds one whole. The state machine writes its
//! snapshot into a [`SnapshotStore`]; the core, the log and the storage's
//! records carry only a small [`SnapshotRef`] naming it (the bytes of
//! `kontiki::Snapshot::data` inside a node); a restore reads it back as a
//! stream; a peer link reads it in chunks and a receiving node writes the
//! chunks into its own store. Only on the wire between nodes does a
//! snapshot carry its real data.
//!
//! Each [`Storage`](crate::Storage) names its snapshot store: `DiskStorage`
//! keeps snapshots as files beside its database, [`MemoryStorage`](crate::MemoryStorage)
//! in memory.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::sync::lock;

/// The data of snapshots, written once and read many times, each named by
/// the [`SnapshotRef`] its writer returned.
///
/// Snapshots are numbered in the order they are created. A store removes
/// a snapshot only when told that a later one is current
/// ([`retain_from`](SnapshotStore::retain_from)); snapshots created after
/// the current one stay (one may be on its way to becoming current).
pub trait SnapshotStore: Send + Sync + 'static {
    /// Starts a new snapshot: its data is what is written to the sink
    /// returned, and it exists once the sink is finished.
    fn create(&self) -> io::Result<Box<dyn SnapshotSink>>;

    /// Opens the data of a finished snapshot, from its start.
    fn open(&self, snapshot: &SnapshotRef) -> io::Result<Box<dyn SnapshotReader>>;

    /// Whether `snapshot` is stored, whole (its length as recorded).
    fn contains(&self, snapshot: &SnapshotRef) -> bool;

    /// `current` is the snapshot the node's storage now records: removes
    /// every snapshot created before it.
    fn retain_from(&self, current: &SnapshotRef) -> io::Result<()>;
}

/// A snapshot being written.
pub trait SnapshotSink: io::Write + Send {
    /// Makes the data written durable (as the store understands it) and
    /// returns its name. A sink dropped unfinished leaves nothing behind.
    fn finish(self: Box<Self>) -> io::Result<SnapshotRef>;
}

/// A snapshot's data being read; seekable so that a stream to a peer can
/// resume in the middle.
pub trait SnapshotReader: io::Read + io::Seek + Send {}

impl<T: io::Read + io::Seek + Send> SnapshotReader for T {}

/// Names a finished snapshot in its store: what `kontiki::Snapshot::data`
/// holds inside a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotRef {
    /// Its number in the store, in order of creation.
    pub id: u64,
    /// Its data's length in bytes.
    pub len: u64,
    /// The CRC-32 (IEEE) of its data, checked whenever it is read whole.
    pub crc32: u32,
}

/// What an encoded reference starts with, so that data of any other kind
/// is never taken for one.
const REF_MAGIC: &[u8; 8] = b"kontiki\x01";
/// The length of an encoded reference.
pub(crate) const REF_BYTES: usize = REF_MAGIC.len() + 8 + 8 + 4;

impl SnapshotRef {
    /// The reference as `kontiki::Snapshot::data` carries it.
    #[must_use]
    pub fn encode(&self) -> Bytes {
        let mut bytes = Vec::with_capacity(REF_BYTES);
        bytes.extend_from_slice(REF_MAGIC);
        bytes.extend_from_slice(&self.id.to_be_bytes());
        bytes.extend_from_slice(&self.len.to_be_bytes());
        bytes.extend_from_slice(&self.crc32.to_be_bytes());
        Bytes::from(bytes)
    }

    /// Reads a reference [`encode`](SnapshotRef::encode) made; `None` for
    /// anything else.
    #[must_use]
    pub fn decode(bytes: &[u8]) -> Option<SnapshotRef> {
        let rest = bytes.strip_prefix(REF_MAGIC)?;
        if rest.len() != 20 {
            return None;
        }
        let (id, rest) = rest.split_at(8);
        let (len, crc32) = rest.split_at(8);
        Some(SnapshotRef {
            id: u64::from_be_bytes(id.try_into().ok()?),
            len: u64::from_be_bytes(len.try_into().ok()?),
            crc32: u32::from_be_bytes(crc32.try_into().ok()?),
        })
    }

    /// Reads the reference in a snapshot's data, or says why it is none.
    pub(crate) fn of(data: &[u8]) -> io::Result<SnapshotRef> {
        SnapshotRef::decode(data).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "the snapshot's data does not name a snapshot in the store",
            )
        })
    }
}

/// Reads a snapshot's data and checks, once all of it was read, its
/// length and checksum against its reference.
pub(crate) struct CheckedReader {
    inner: Box<dyn SnapshotReader>,
    expected: SnapshotRef,
    read: u64,
    hasher: crc32fast::Hasher,
}

impl CheckedReader {
    /// Opens `snapshot` in `store`, to be read from its start.
    pub(crate) fn open(
        store: &dyn SnapshotStore,
        snapshot: SnapshotRef,
    ) -> io::Result<CheckedReader> {
        Ok(CheckedReader {
            inner: store.open(&snapshot)?,
            expected: snapshot,
            read: 0,
            hasher: crc32fast::Hasher::new(),
        })
    }

    /// Reads what the consumer left and checks the whole: an error when
    /// the data is not what was stored.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        io::copy(&mut self, &mut io::sink())?;
        let crc32 = self.hasher.clone().finalize();
        if self.read != self.expected.len || crc32 != self.expected.crc32 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "snapshot {} is damaged: {} bytes with checksum {crc32:08x}, expected {} with {:08x}",
                    self.expected.id, self.read, self.expected.len, self.expected.crc32
                ),
            ));
        }
        Ok(())
    }

    /// Reads the whole snapshot into memory, checked: for a snapshot small
    /// enough to travel in one message.
    pub(crate) fn read_whole(mut self) -> io::Result<Bytes> {
        let mut data = Vec::with_capacity(usize::try_from(self.expected.len).unwrap_or(0));
        self.read_to_end(&mut data)?;
        self.finish()?;
        Ok(Bytes::from(data))
    }
}

impl io::Read for CheckedReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..read]);
        self.read += read as u64;
        Ok(read)
    }
}

/// Writes `data` into `store` as a new snapshot.
pub(crate) fn store_whole(store: &dyn SnapshotStore, data: &[u8]) -> io::Result<SnapshotRef> {
    let mut sink = store.create()?;
    sink.write_all(data)?;
    sink.finish()
}

/// Snapshots in memory, for [`MemoryStorage`](crate::MemoryStorage). Clones
/// share the same snapshots.
#[derive(Clone, Debug, Default)]
pub struct MemorySnapshots {
    inner: Arc<Mutex<MemoryInner>>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    next_id: u64,
    finished: BTreeMap<u64, Bytes>,
}

impl MemorySnapshots {
    /// An empty store.
    #[must_use]
    pub fn new() -> MemorySnapshots {
        MemorySnapshots::default()
    }

    /// How many snapshots it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        lock(&self.inner).finished.len()
    }

    /// Whether it holds none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SnapshotStore for MemorySnapshots {
    fn create(&self) -> io::Result<Box<dyn SnapshotSink>> {
        let id = {
            let mut inner = lock(&self.inner);
            inner.next_id += 1;
            inner.next_id
        };
        Ok(Box::new(MemorySink {
            store: self.clone(),
            id,
            data: Vec::new(),
        }))
    }

    fn open(&self, snapshot: &SnapshotRef) -> io::Result<Box<dyn SnapshotReader>> {
        let data = lock(&self.inner)
            .finished
            .get(&snapshot.id)
            .cloned()
            .ok_or_else(|| missing(snapshot))?;
        Ok(Box::new(io::Cursor::new(data)))
    }

    fn contains(&self, snapshot: &SnapshotRef) -> bool {
        lock(&self.inner)
            .finished
            .get(&snapshot.id)
            .is_some_and(|data| data.len() as u64 == snapshot.len)
    }

    fn retain_from(&self, current: &SnapshotRef) -> io::Result<()> {
        lock(&self.inner).finished.retain(|&id, _| id >= current.id);
        Ok(())
    }
}

struct MemorySink {
    store: MemorySnapshots,
    id: u64,
    data: Vec<u8>,
}

impl io::Write for MemorySink {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        self.data.extend_from_slice(buffer);
        Ok(buffer.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SnapshotSink for MemorySink {
    fn finish(self: Box<Self>) -> io::Result<SnapshotRef> {
        let snapshot = SnapshotRef {
            id: self.id,
            len: self.data.len() as u64,
            crc32: crc32fast::hash(&self.data),
        };
        lock(&self.store.inner)
            .finished
            .insert(self.id, Bytes::from(self.data));
        Ok(snapshot)
    }
}

/// The error for a snapshot that is not in its store.
pub(crate) fn missing(snapshot: &SnapshotRef) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("snapshot {} is not in the store", snapshot.id),
    )
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_reference_round_trips_and_nothing_else_passes_for_one() {
        let snapshot = SnapshotRef {
            id: 7,
            len: 1 << 33,
            crc32: 0xdead_beef,
        };
        let encoded = snapshot.encode();
        assert_eq!(encoded.len(), REF_BYTES);
        assert_eq!(SnapshotRef::decode(&encoded), Some(snapshot));
        assert_eq!(SnapshotRef::decode(&encoded[..REF_BYTES - 1]), None);
        assert_eq!(SnapshotRef::decode(b"application data"), None);
        let mut longer = encoded.to_vec();
        longer.push(0);
        assert_eq!(SnapshotRef::decode(&longer), None);
    }

    #[test]
    fn memory_snapshots_are_written_read_and_retired_in_order() {
        let store = MemorySnapshots::new();
        let first = store_whole(&store, b"first").unwrap();
        let mut sink = store.create().unwrap();
        sink.write_all(b"sec").unwrap();
        sink.write_all(b"ond").unwrap();
        let second = sink.finish().unwrap();
        assert!(second.id > first.id);
        let unfinished = store.create().unwrap();
        drop(unfinished);
        assert_eq!(store.len(), 2);

        let read = CheckedReader::open(&store, second).unwrap().read_whole();
        assert_eq!(&read.unwrap()[..], b"second");
        store.retain_from(&second).unwrap();
        assert!(!store.contains(&first));
        assert!(store.contains(&second));
        assert_eq!(
            store.open(&first).err().unwrap().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn a_reader_reports_data_that_is_not_what_was_stored() {
        let store = MemorySnapshots::new();
        let stored = store_whole(&store, b"payload").unwrap();
        let wrong_checksum = SnapshotRef {
            crc32: stored.crc32 ^ 1,
            ..stored
        };
        let error = CheckedReader::open(&store, wrong_checksum)
            .unwrap()
            .read_whole()
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        let wrong_length = SnapshotRef {
            len: stored.len + 1,
            ..stored
        };
        assert!(!store.contains(&wrong_length));
        // A consumer that stops early still has the rest checked.
        let mut reader = CheckedReader::open(&store, stored).unwrap();
        let mut first = [0; 3];
        reader.read_exact(&mut first).unwrap();
        reader.finish().unwrap();
    }
}

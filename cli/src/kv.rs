//! The replicated key-value store: the state machine every `kontiki node`
//! runs, and the encoding of its commands in log entries.
//!
//! A log entry holds one command: a tag byte, then its arguments. `SET`
//! is `1, key length (u32, big-endian), key, value`; `DEL` is `2`, then
//! each key as `length (u32, big-endian), key`; `INCR` is `3, key`, and
//! `INCRBY`, `DECR` and `DECRBY` are `4, amount (i64, big-endian), key`
//! (a node built before tag 4 applies it as an unknown entry, a no-op:
//! upgrade every node before using them).
//! Reads never enter the log: they wait for a read barrier and then look
//! at the store directly.
//!
//! A snapshot of the store is every pair in key order, each as `key
//! length (u32, big-endian), key, value length (u32, big-endian), value`.

use std::io::{self, BufReader, BufWriter, Read, Write as _};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{BufMut, Bytes, BytesMut};
use kontiki::LogIndex;
use kontiki_driver::{SnapshotWriter, StateMachine};

const SET: u8 = 1;
const DEL: u8 = 2;
const INCR: u8 = 3;
const INCR_BY: u8 = 4;

/// A write, as proposed to the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Sets `key` to `value`.
    Set {
        /// The key.
        key: Bytes,
        /// Its new value.
        value: Bytes,
    },
    /// Removes each key.
    Del(Vec<Bytes>),
    /// Adds `by` to the integer stored at `key` (missing counts as 0).
    IncrBy {
        /// The key.
        key: Bytes,
        /// What to add (negative to subtract).
        by: i64,
    },
}

impl Write {
    /// The log entry for this write.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self {
            Write::Set { key, value } => {
                out.put_u8(SET);
                put_key(&mut out, key);
                out.extend_from_slice(value);
            }
            Write::Del(keys) => {
                out.put_u8(DEL);
                for key in keys {
                    put_key(&mut out, key);
                }
            }
            // One is INCR's own encoding, which every build reads.
            Write::IncrBy { key, by: 1 } => {
                out.put_u8(INCR);
                out.extend_from_slice(key);
            }
            Write::IncrBy { key, by } => {
                out.put_u8(INCR_BY);
                out.put_i64(*by);
                out.extend_from_slice(key);
            }
        }
        out.freeze()
    }

    /// Reads a log entry back; `None` if it is not a command of this store.
    pub fn decode(entry: &Bytes) -> Option<Write> {
        let (&tag, _) = entry.split_first()?;
        let mut rest = entry.slice(1..);
        match tag {
            SET => {
                let key = take_key(&mut rest)?;
                Some(Write::Set { key, value: rest })
            }
            DEL => {
                let mut keys = Vec::new();
                while !rest.is_empty() {
                    keys.push(take_key(&mut rest)?);
                }
                Some(Write::Del(keys))
            }
            INCR => Some(Write::IncrBy { key: rest, by: 1 }),
            INCR_BY => {
                let by = i64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
                Some(Write::IncrBy {
                    key: rest.slice(8..),
                    by,
                })
            }
            _ => None,
        }
    }
}

fn put_key(out: &mut BytesMut, key: &Bytes) {
    // Keys are bounded by the client port's request limit, far below 4 GiB.
    out.put_u32(key.len() as u32);
    out.extend_from_slice(key);
}

fn take_key(rest: &mut Bytes) -> Option<Bytes> {
    let length = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let key = rest.get(4..4 + length).map(|_| rest.slice(4..4 + length))?;
    *rest = rest.slice(4 + length..);
    Some(key)
}

/// What applying a write answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// `SET` done.
    Ok,
    /// `DEL`: how many of the keys existed.
    Removed(i64),
    /// `INCR` and the like: the new value.
    Value(i64),
    /// `INCR` and the like on a value that is not a 64-bit integer.
    NotAnInteger,
    /// `INCR` and the like past the range of a 64-bit integer.
    Overflow,
    /// An entry this store does not understand (never proposed by a
    /// kontiki node; applied as a no-op so that every node stays equal).
    Unknown,
}

/// The keys and their values: a persistent (copy-on-write) B-tree map,
/// whose clone shares everything and costs O(1) — the point-in-time view
/// a snapshot encodes while writes go on — and whose order makes equal
/// stores encode to equal snapshots.
pub type Map = imbl::OrdMap<Bytes, Bytes>;

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
        let Some(write) = Write::decode(command) else {
            return Applied::Unknown;
        };
        let mut data = self.store.lock();
        match write {
            Write::Set { key, value } => {
                data.insert(key, value);
                Applied::Ok
            }
            Write::Del(keys) => {
                let removed = keys
                    .iter()
                    .filter(|key| data.remove(*key).is_some())
                    .count();
                Applied::Removed(removed as i64)
            }
            Write::IncrBy { key, by } => {
                let current = match data.get(&key) {
                    None => Some(0),
                    Some(value) => std::str::from_utf8(value)
                        .ok()
                        .and_then(|text| text.parse::<i64>().ok()),
                };
                let Some(current) = current else {
                    return Applied::NotAnInteger;
                };
                match current.checked_add(by) {
                    Some(next) => {
                        data.insert(key, Bytes::from(next.to_string()));
                        Applied::Value(next)
                    }
                    None => Applied::Overflow,
                }
            }
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

    #[test]
    fn writes_survive_their_encoding() {
        for write in [
            Write::Set {
                key: Bytes::from_static(b"k"),
                value: Bytes::from_static(b"v\r\n\0"),
            },
            Write::Set {
                key: Bytes::new(),
                value: Bytes::new(),
            },
            Write::Del(vec![Bytes::from_static(b"a"), Bytes::from_static(b"")]),
            Write::IncrBy {
                key: Bytes::from_static(b"counter"),
                by: 1,
            },
            Write::IncrBy {
                key: Bytes::from_static(b""),
                by: i64::MIN,
            },
        ] {
            assert_eq!(Write::decode(&write.encode()), Some(write));
        }
        // INCR keeps the encoding every earlier build reads.
        let incr = Write::IncrBy {
            key: Bytes::from_static(b"k"),
            by: 1,
        };
        assert_eq!(&incr.encode()[..], &[INCR, b'k']);
    }

    #[test]
    fn foreign_or_damaged_entries_decode_to_nothing() {
        assert_eq!(Write::decode(&Bytes::new()), None);
        assert_eq!(Write::decode(&Bytes::from_static(&[9, 1])), None);
        assert_eq!(
            Write::decode(&Bytes::from_static(&[SET, 0, 0, 0, 5, b'k'])),
            None
        );
        assert_eq!(Write::decode(&Bytes::from_static(&[DEL, 0, 0])), None);
        assert_eq!(Write::decode(&Bytes::from_static(&[INCR_BY, 0, 0])), None);
    }

    #[test]
    fn set_del_and_incr_behave_like_redis() {
        let store = Store::default();
        let mut machine = KvStateMachine::new(store.clone());
        let key = Bytes::from_static(b"n");
        let incr = |by| Write::IncrBy {
            key: key.clone(),
            by,
        };
        assert_eq!(apply(&mut machine, incr(5)), Applied::Value(5));
        assert_eq!(apply(&mut machine, incr(-3)), Applied::Value(2));
        let set = Write::Set {
            key: key.clone(),
            value: Bytes::from_static(b"x"),
        };
        assert_eq!(apply(&mut machine, set), Applied::Ok);
        assert_eq!(apply(&mut machine, incr(1)), Applied::NotAnInteger);
        let max = Write::Set {
            key: key.clone(),
            value: Bytes::from(i64::MAX.to_string()),
        };
        apply(&mut machine, max);
        assert_eq!(apply(&mut machine, incr(1)), Applied::Overflow);
        assert_eq!(apply(&mut machine, incr(-1)), Applied::Value(i64::MAX - 1));
        let del = Write::Del(vec![key.clone(), Bytes::from_static(b"missing")]);
        assert_eq!(apply(&mut machine, del), Applied::Removed(1));
        assert!(store.lock().is_empty());
        assert_eq!(
            machine.apply(LogIndex(9), &Bytes::from_static(b"\x07")),
            Applied::Unknown
        );
    }
}

//! The store's data, as every other module of the store sees it: keys
//! holding strings, hashes, lists, sets, sorted sets or streams, each with
//! an optional expiry and a version, and the replicated clock that
//! expires them.
//!
//! Everything here changes only through the log, so every replica holds
//! the same data at the same index:
//! - **The clock** is the largest time any applied entry was stamped with
//!   (milliseconds since the Unix epoch, stamped by the leader that
//!   proposed it). It never goes back, whatever the leaders' clocks do.
//! - **Expiry**: before each entry is applied, every key whose time has
//!   come by the clock is removed. A read sees the store as the log left
//!   it, so a key seen gone stays gone on every node, after any failover.
//! - **Versions**: each key remembers the log index that last wrote it,
//!   which is what `WATCH` compares.
//!
//! Every collection is persistent (copy-on-write), so a clone shares
//! everything and costs O(1): the point-in-time view a snapshot encodes
//! while writes go on.

use std::cmp::Ordering;

use bytes::Bytes;
use imbl::{OrdMap, OrdSet, Vector};

/// A hash's fields and values.
pub type Fields = OrdMap<Bytes, Bytes>;

/// A set's members, ordered by a hash of each (as keys are), so that
/// `SPOP` can start from a point the entry's index picks and find a
/// member in O(log n).
pub type Members = OrdSet<Key>;

/// A sorted set's score: a float ordered totally (`-inf` lowest); never
/// NaN, which the parser refuses.
#[derive(Clone, Copy, Debug)]
pub struct Score(pub f64);

impl PartialEq for Score {
    fn eq(&self, other: &Score) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Score) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Score) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A sorted set: each member's score, and the members by score.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sorted {
    /// Each member's score.
    pub scores: OrdMap<Bytes, Score>,
    /// The members in order: by score, then by member.
    pub order: OrdSet<(Score, Bytes)>,
}

impl Sorted {
    /// Adds `member` with `score`, or moves it there; whether it is new.
    pub fn insert(&mut self, member: Bytes, score: Score) -> bool {
        let old = self.scores.insert(member.clone(), score);
        if let Some(old) = old {
            self.order.remove(&(old, member.clone()));
        }
        self.order.insert((score, member));
        old.is_none()
    }

    /// Removes `member`; whether it was there.
    pub fn remove(&mut self, member: &Bytes) -> bool {
        match self.scores.remove(member) {
            Some(score) => {
                self.order.remove(&(score, member.clone()));
                true
            }
            None => false,
        }
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// Whether it has no members.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }
}

/// A stream entry's id: milliseconds and a sequence number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds since the Unix epoch (by the replicated clock, for an
    /// id the store picks).
    pub millis: u64,
    /// The entry's number within its millisecond.
    pub sequence: u64,
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.millis, self.sequence)
    }
}

/// A stream: its entries by id, and the last id it gave (which later
/// entries must exceed, even once that entry is gone).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    /// Each entry's fields and values, in the order given.
    pub entries: OrdMap<StreamId, Vector<(Bytes, Bytes)>>,
    /// The last id added.
    pub last: StreamId,
}

/// A key as the store orders it: by a hash of its name first, so that
/// `SCAN`'s cursor (the hash to go on from) stays valid whatever keys are
/// added or removed between calls.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    hash: u64,
    name: Bytes,
}

impl Key {
    /// The key named `name`.
    pub fn new(name: Bytes) -> Key {
        Key {
            hash: cursor_hash(&name),
            name,
        }
    }

    /// The place just before every key of hash `hash` (a bound for
    /// ranges, not a key).
    pub fn at_hash(hash: u64) -> Key {
        Key {
            hash,
            name: Bytes::new(),
        }
    }

    /// Its name.
    pub fn name(&self) -> &Bytes {
        &self.name
    }

    /// Its place in `SCAN`'s order.
    pub fn hash(&self) -> u64 {
        self.hash
    }
}

/// The hash that orders keys: fixed (XXH3, no seed), so every node and
/// every build orders alike and a cursor from one node is valid on
/// another.
pub fn cursor_hash(name: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(name)
}

/// What a key holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A string (`SET`, `INCR`, ...).
    String(Bytes),
    /// A hash (`HSET`, ...); never empty in the store.
    Hash(Fields),
    /// A list (`LPUSH`, ...); never empty in the store. (The larger
    /// collections are boxed: every key's entry is as large as the largest
    /// variant, and most keys hold strings.)
    List(Box<Vector<Bytes>>),
    /// A set (`SADD`, ...); never empty in the store.
    Set(Members),
    /// A sorted set (`ZADD`, ...); never empty in the store.
    Sorted(Box<Sorted>),
    /// A stream (`XADD`, ...); it may be empty.
    Stream(Box<Stream>),
}

impl Value {
    /// Its type's name, as `TYPE` answers.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Sorted(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }
}

/// A key's value, expiry and version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// What it holds.
    pub value: Value,
    /// When it expires (milliseconds since the Unix epoch, by the
    /// replicated clock), if it does.
    pub expires_at: Option<u64>,
    /// The log index of the entry that last wrote it.
    pub version: u64,
}

/// The answer to a command that expects another type than the key holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrongType;

/// The store's data.
#[derive(Clone, Debug, Default)]
pub struct Data {
    keys: OrdMap<Key, Entry>,
    /// Every key with an expiry, by when.
    expiries: OrdSet<(u64, Key)>,
    clock: u64,
    /// The log index being applied: the version of whatever it writes.
    index: u64,
}

/// Equal data: the same keys, entries and clock (the index being applied
/// is not data).
impl PartialEq for Data {
    fn eq(&self, other: &Data) -> bool {
        self.clock == other.clock && self.keys == other.keys && self.expiries == other.expiries
    }
}

impl Eq for Data {}

impl Data {
    /// An empty store whose clock reads `clock`.
    pub fn with_clock(clock: u64) -> Data {
        Data {
            clock,
            ..Data::default()
        }
    }

    /// Starts applying the entry at `index`, stamped `stamp` (an entry of
    /// an older build has none): the clock moves to the stamp if it is
    /// later, and every key whose time has come goes.
    pub fn begin(&mut self, index: u64, stamp: Option<u64>) {
        self.index = index;
        self.clock = self.clock.max(stamp.unwrap_or(0));
        while let Some((at, key)) = self.expiries.get_min().cloned() {
            if at > self.clock {
                break;
            }
            self.keys.remove(&key);
            self.expiries.remove(&(at, key));
        }
    }

    /// The replicated clock.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// The earliest time a key expires, if any does.
    pub fn next_expiry(&self) -> Option<u64> {
        self.expiries.get_min().map(|(at, _)| *at)
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The entry of `name`.
    pub fn get(&self, name: &Bytes) -> Option<&Entry> {
        self.keys.get(&Key::new(name.clone()))
    }

    /// The string at `name`; `Err` if it holds another type.
    pub fn string(&self, name: &Bytes) -> Result<Option<&Bytes>, WrongType> {
        match self.get(name).map(|entry| &entry.value) {
            None => Ok(None),
            Some(Value::String(value)) => Ok(Some(value)),
            Some(_) => Err(WrongType),
        }
    }

    /// The hash at `name`; `Err` if it holds another type.
    pub fn hash(&self, name: &Bytes) -> Result<Option<&Fields>, WrongType> {
        match self.get(name).map(|entry| &entry.value) {
            None => Ok(None),
            Some(Value::Hash(fields)) => Ok(Some(fields)),
            Some(_) => Err(WrongType),
        }
    }

    /// The value at `name` as the type `pick` takes (`None` from `pick`:
    /// another type, `Err`).
    pub fn typed<'a, T>(
        &'a self,
        name: &Bytes,
        pick: impl FnOnce(&'a Value) -> Option<&'a T>,
    ) -> Result<Option<&'a T>, WrongType> {
        match self.get(name) {
            None => Ok(None),
            Some(entry) => pick(&entry.value).map(Some).ok_or(WrongType),
        }
    }

    /// The index of the entry being applied (what a write that needs a
    /// choice the same on every node, as `SPOP`'s, draws from).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The version of `name`: the index that last wrote it, 0 if missing.
    pub fn version(&self, name: &Bytes) -> u64 {
        self.get(name).map_or(0, |entry| entry.version)
    }

    /// Every key with its entry, in `SCAN`'s order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Entry)> {
        self.keys.iter()
    }

    /// The keys from the first whose hash is at least `hash`, in order.
    pub fn iter_from(&self, hash: u64) -> impl Iterator<Item = (&Key, &Entry)> {
        self.keys.range(Key::at_hash(hash)..)
    }

    /// Sets `name` to `value`, keeping its expiry if `keep_expiry` (else
    /// it has none).
    pub fn put(&mut self, name: Bytes, value: Value, keep_expiry: bool) {
        // One lookup for the common case (a key without expiry): insert,
        // then mend the expiry from the entry replaced, if it had one.
        let key = Key::new(name);
        let entry = Entry {
            value,
            expires_at: None,
            version: self.index,
        };
        let Some(old_at) = self
            .keys
            .insert(key.clone(), entry)
            .and_then(|old| old.expires_at)
        else {
            return;
        };
        if keep_expiry {
            if let Some(entry) = self.keys.get_mut(&key) {
                entry.expires_at = Some(old_at);
            }
        } else {
            self.expiries.remove(&(old_at, key));
        }
    }

    /// Removes `name`; its entry, if it had one.
    pub fn remove(&mut self, name: &Bytes) -> Option<Entry> {
        let key = Key::new(name.clone());
        let entry = self.keys.remove(&key)?;
        if let Some(at) = entry.expires_at {
            self.expiries.remove(&(at, key));
        }
        Some(entry)
    }

    /// Gives `name` an expiry at `at` (`None`: none). A time the clock
    /// has already reached removes the key. Whether the key existed.
    pub fn set_expiry(&mut self, name: &Bytes, at: Option<u64>) -> bool {
        let key = Key::new(name.clone());
        let Some(entry) = self.keys.get_mut(&key) else {
            return false;
        };
        if let Some(old) = entry.expires_at {
            self.expiries.remove(&(old, key.clone()));
        }
        entry.expires_at = at;
        entry.version = self.index;
        match at {
            Some(at) if at <= self.clock => {
                self.keys.remove(&key);
            }
            Some(at) => {
                self.expiries.insert((at, key));
            }
            None => {}
        }
        true
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.expiries.clear();
    }

    /// Inserts a whole entry, as a snapshot holds it.
    pub fn restore(&mut self, name: Bytes, entry: Entry) {
        let key = Key::new(name);
        if let Some(old) = self.keys.get(&key).and_then(|old| old.expires_at) {
            self.expiries.remove(&(old, key.clone()));
        }
        if let Some(at) = entry.expires_at {
            self.expiries.insert((at, key.clone()));
        }
        self.keys.insert(key, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    #[test]
    fn keys_expire_when_the_replicated_clock_reaches_their_time() {
        let mut data = Data::with_clock(1_000);
        data.begin(1, Some(1_000));
        data.put(b("a"), Value::String(b("1")), false);
        data.put(b("b"), Value::String(b("2")), false);
        assert!(data.set_expiry(&b("a"), Some(1_500)));
        assert!(!data.set_expiry(&b("missing"), Some(1_500)));
        assert_eq!(data.next_expiry(), Some(1_500));
        // An entry stamped earlier (a leader whose clock is behind) moves
        // nothing.
        data.begin(2, Some(900));
        assert_eq!(data.clock(), 1_000);
        assert!(data.get(&b("a")).is_some());
        data.begin(3, Some(1_500));
        assert!(data.get(&b("a")).is_none(), "gone at its time");
        assert_eq!(data.next_expiry(), None);
        // A set without KEEPTTL drops the expiry; with it, keeps it.
        data.set_expiry(&b("b"), Some(2_000));
        data.put(b("b"), Value::String(b("3")), true);
        assert_eq!(data.get(&b("b")).unwrap().expires_at, Some(2_000));
        data.put(b("b"), Value::String(b("4")), false);
        assert_eq!(data.next_expiry(), None);
        // A time already past removes the key at once.
        assert!(data.set_expiry(&b("b"), Some(1_200)));
        assert!(data.is_empty());
    }

    #[test]
    fn versions_follow_the_index_that_wrote_and_types_are_checked() {
        let mut data = Data::default();
        data.begin(7, None);
        data.put(b("s"), Value::String(b("v")), false);
        assert_eq!(data.version(&b("s")), 7);
        assert_eq!(data.version(&b("missing")), 0);
        data.begin(9, None);
        data.put(b("h"), Value::Hash(Fields::unit(b("f"), b("v"))), false);
        assert_eq!(data.string(&b("h")), Err(WrongType));
        assert_eq!(data.hash(&b("s")), Err(WrongType));
        assert_eq!(data.string(&b("s")), Ok(Some(&b("v"))));
        assert_eq!(data.hash(&b("none")), Ok(None));
        assert_eq!(data.version(&b("h")), 9);
    }
}

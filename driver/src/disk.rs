//! A durable store on disk, in one redb database file.
//!
//! redb gives atomic, crash-safe commits: a commit that a crash tore is
//! found by its checksum at the next open and discarded, so the database
//! reopens at the last complete commit. Every [`Storage::write`] is one
//! redb write transaction committed with immediate durability (fsync), so
//! a batch of any size costs one commit. On top, each record carries its
//! own CRC-32 (of its index and contents), so bytes damaged at rest are
//! reported when the node loads, not handed to Raft.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use kontiki::{
    wire, Entry, EntryKind, HardState, LogIndex, Membership, NodeId, Persist, PersistedState,
    Snapshot, Term,
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tracing::warn;

use crate::error::annotate;
use crate::storage::Storage;

/// The log: index → `[crc32][term][kind][data]`.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Small values by name: the hard state and the snapshot.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const HARD_STATE_KEY: &str = "hard_state";
/// `[crc32][index][term][membership length: u32][membership][data]`, the
/// latest snapshot (the membership in the wire format's encoding).
const SNAPSHOT_KEY: &str = "snapshot.v2";
/// `[crc32][index][term][data]`: a snapshot stored before membership
/// changes existed, read (with an empty membership: the node uses the
/// voters it is started with) and replaced by the next snapshot.
const SNAPSHOT_V1_KEY: &str = "snapshot";
/// What a snapshot's checksum covers besides its bytes, so that it cannot
/// pass for a hard state (whose checksum mixes in 0).
const SNAPSHOT_SALT: u64 = u64::MAX;
/// The database file inside the data directory.
const FILE_NAME: &str = "kontiki.redb";

const KIND_COMMAND: u8 = 0;
const KIND_NOOP: u8 = 1;
const KIND_MEMBERSHIP: u8 = 2;

/// What a damaged store lost.
#[derive(Clone, Copy, Debug)]
enum Damage {
    /// The log from this index on (a record damaged or missing there).
    LogFrom(LogIndex),
    /// The snapshot, and with it the log that continues it.
    Snapshot,
}

/// Hard state and log in `<dir>/kontiki.redb`.
pub struct DiskStorage {
    database: Database,
    path: PathBuf,
}

impl std::fmt::Debug for DiskStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStorage")
            .field("path", &self.path)
            .finish()
    }
}

impl DiskStorage {
    /// Reads everything stored, up to the first damage: what was read, and
    /// what was lost.
    fn read(&self) -> io::Result<(PersistedState, Option<Damage>)> {
        let transaction = self.database.begin_read().map_err(redb_error)?;
        let meta = transaction.open_table(META).map_err(redb_error)?;
        let hard_state = match meta.get(HARD_STATE_KEY).map_err(redb_error)? {
            Some(value) => decode_hard_state(value.value())?,
            None => HardState::default(),
        };
        let snapshot = match meta.get(SNAPSHOT_KEY).map_err(redb_error)? {
            Some(value) => decode_snapshot(value.value()).map(Some),
            None => match meta.get(SNAPSHOT_V1_KEY).map_err(redb_error)? {
                Some(value) => decode_snapshot_v1(value.value()).map(Some),
                None => Ok(None),
            },
        };
        let Ok(snapshot) = snapshot else {
            // The state the log continues is gone: so is the log.
            let state = PersistedState {
                hard_state,
                ..PersistedState::default()
            };
            return Ok((state, Some(Damage::Snapshot)));
        };
        let log = transaction.open_table(LOG).map_err(redb_error)?;
        // The log continues the snapshot, or starts at 1.
        let first = snapshot
            .as_ref()
            .map_or(LogIndex(1), |snapshot| snapshot.index.next());
        let mut entries: Vec<Entry> = Vec::new();
        let mut lost_from = None;
        for record in log.iter().map_err(redb_error)? {
            let (index, value) = record.map_err(redb_error)?;
            let index = LogIndex(index.value());
            let continues = entries
                .last()
                .map_or(index <= first, |last| last.index.next() == index);
            match decode_entry(index, value.value()) {
                Ok(entry) if continues => entries.push(entry),
                // A record missing before this one, or this one damaged.
                _ => {
                    let from = entries.last().map_or(first, |last| last.index.next());
                    lost_from = Some(Damage::LogFrom(from));
                    break;
                }
            }
        }
        let state = PersistedState {
            hard_state,
            snapshot,
            entries,
        };
        Ok((state, lost_from))
    }

    /// Removes what `damage` lost, and stores `hard_state`, in one
    /// transaction.
    fn drop_damaged(&mut self, damage: Damage, hard_state: HardState) -> io::Result<()> {
        let transaction = self.database.begin_write().map_err(redb_error)?;
        {
            let mut log = transaction.open_table(LOG).map_err(redb_error)?;
            let mut meta = transaction.open_table(META).map_err(redb_error)?;
            match damage {
                Damage::LogFrom(from) => {
                    log.retain_in(from.get().., |_, _| false)
                        .map_err(redb_error)?;
                }
                Damage::Snapshot => {
                    log.retain_in(0u64.., |_, _| false).map_err(redb_error)?;
                    meta.remove(SNAPSHOT_KEY).map_err(redb_error)?;
                    meta.remove(SNAPSHOT_V1_KEY).map_err(redb_error)?;
                }
            }
            meta.insert(HARD_STATE_KEY, encode_hard_state(hard_state).as_slice())
                .map_err(redb_error)?;
        }
        transaction.commit().map_err(redb_error)
    }

    /// Opens (or creates) the store in directory `dir`, creating the
    /// directory if needed.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<DiskStorage> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).map_err(|error| {
            annotate(error, format!("creating data directory {}", dir.display()))
        })?;
        let path = dir.join(FILE_NAME);
        let database = Database::create(&path)
            .map_err(|error| io::Error::other(format!("opening {}: {error}", path.display())))?;
        // Create both tables up front, so that reading a fresh store works.
        let transaction = database.begin_write().map_err(redb_error)?;
        transaction.open_table(LOG).map_err(redb_error)?;
        transaction.open_table(META).map_err(redb_error)?;
        transaction.commit().map_err(redb_error)?;
        Ok(DiskStorage { database, path })
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Storage for DiskStorage {
    /// Loads what is stored. A damaged log record (or a missing one) loses
    /// the log from there on, and a damaged snapshot everything but the
    /// hard state: the store drops what it lost, marks the hard state
    /// (`HardState::log_lost_at_term`) so that the node abstains from
    /// votes until it has caught up, and loads the rest. A damaged hard
    /// state is an error: without it the node cannot know which votes it
    /// gave.
    fn load(&mut self) -> io::Result<PersistedState> {
        let (mut state, damage) = self.read()?;
        if let Some(damage) = damage {
            let lost_at = state
                .hard_state
                .log_lost_at_term
                .map_or(state.hard_state.term, |earlier| {
                    earlier.max(state.hard_state.term)
                });
            state.hard_state.log_lost_at_term = Some(lost_at);
            warn!(
                path = %self.path.display(),
                ?damage,
                "the store is damaged; dropped what was lost, and the node will not vote \
                 until it has caught up with its leader"
            );
            self.drop_damaged(damage, state.hard_state)?;
        }
        Ok(state)
    }

    fn write(&mut self, writes: &[Persist]) -> io::Result<()> {
        let transaction = self.database.begin_write().map_err(redb_error)?;
        {
            let mut log = transaction.open_table(LOG).map_err(redb_error)?;
            let mut meta = transaction.open_table(META).map_err(redb_error)?;
            let mut record = Vec::new();
            for write in writes {
                match write {
                    Persist::HardState(hard_state) => {
                        meta.insert(HARD_STATE_KEY, encode_hard_state(*hard_state).as_slice())
                            .map_err(redb_error)?;
                    }
                    Persist::Entries(entries) => {
                        for entry in entries {
                            encode_entry(entry, &mut record);
                            log.insert(entry.index.get(), record.as_slice())
                                .map_err(redb_error)?;
                        }
                    }
                    Persist::TruncateLog { from } => {
                        log.retain_in(from.get().., |_, _| false)
                            .map_err(redb_error)?;
                    }
                    Persist::Snapshot(snapshot) => {
                        meta.insert(SNAPSHOT_KEY, encode_snapshot(snapshot).as_slice())
                            .map_err(redb_error)?;
                        meta.remove(SNAPSHOT_V1_KEY).map_err(redb_error)?;
                        // In the same transaction: the entries go only
                        // once the snapshot covering them is in.
                        log.retain_in(..=snapshot.index.get(), |_, _| false)
                            .map_err(redb_error)?;
                    }
                }
            }
        }
        // Immediate durability is redb's default: fsync before returning.
        transaction.commit().map_err(redb_error)
    }
}

fn encode_entry(entry: &Entry, record: &mut Vec<u8>) {
    record.clear();
    record.extend_from_slice(&[0; 4]);
    record.extend_from_slice(&entry.term.get().to_le_bytes());
    record.push(match entry.kind {
        EntryKind::Noop => KIND_NOOP,
        EntryKind::Membership => KIND_MEMBERSHIP,
        _ => KIND_COMMAND,
    });
    record.extend_from_slice(&entry.data);
    let crc = checksum(entry.index.get(), &record[4..]);
    record[..4].copy_from_slice(&crc.to_le_bytes());
}

fn decode_entry(index: LogIndex, record: &[u8]) -> io::Result<Entry> {
    let corrupt = |why: &str| corrupt(format!("log entry {index} is corrupt: {why}"));
    if record.len() < 13 {
        return Err(corrupt("record too short"));
    }
    let (crc, body) = record.split_at(4);
    if u32::from_le_bytes(crc.try_into().expect("four bytes")) != checksum(index.get(), body) {
        return Err(corrupt("checksum mismatch"));
    }
    let term = Term(u64::from_le_bytes(
        body[..8].try_into().expect("eight bytes"),
    ));
    let kind = match body[8] {
        KIND_COMMAND => EntryKind::Command,
        KIND_NOOP => EntryKind::Noop,
        KIND_MEMBERSHIP => EntryKind::Membership,
        _ => return Err(corrupt("unknown entry kind")),
    };
    Ok(Entry {
        index,
        term,
        kind,
        data: Bytes::copy_from_slice(&body[9..]),
    })
}

/// `[crc32][term][1 if voted][vote][1 if the log was lost][term lost at]`
/// (a record written before the last two fields existed is 21 bytes).
fn encode_hard_state(hard_state: HardState) -> Vec<u8> {
    let mut record = vec![0; 4];
    record.extend_from_slice(&hard_state.term.get().to_le_bytes());
    record.push(u8::from(hard_state.voted_for.is_some()));
    record.extend_from_slice(&hard_state.voted_for.map_or(0, NodeId::get).to_le_bytes());
    record.push(u8::from(hard_state.log_lost_at_term.is_some()));
    record.extend_from_slice(
        &hard_state
            .log_lost_at_term
            .map_or(0, Term::get)
            .to_le_bytes(),
    );
    let crc = checksum(0, &record[4..]);
    record[..4].copy_from_slice(&crc.to_le_bytes());
    record
}

fn decode_hard_state(record: &[u8]) -> io::Result<HardState> {
    let valid = (record.len() == 21 || record.len() == 30)
        && record[..4] == checksum(0, &record[4..]).to_le_bytes();
    if !valid {
        return Err(corrupt(String::from("the hard state is corrupt")));
    }
    let word = |at: usize| u64::from_le_bytes(record[at..at + 8].try_into().expect("eight bytes"));
    let lost = record.len() == 30 && record[21] == 1;
    Ok(HardState {
        term: Term(word(4)),
        voted_for: (record[12] == 1).then_some(NodeId(word(13))),
        log_lost_at_term: lost.then(|| Term(word(22))),
    })
}

/// `[crc32][index][term][membership length][membership][data]`, the
/// checksum over all the rest.
fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let membership_len = wire::membership_encoded_len(&snapshot.membership);
    let mut record = Vec::with_capacity(24 + membership_len + snapshot.data.len());
    record.extend_from_slice(&[0; 4]);
    record.extend_from_slice(&snapshot.index.get().to_le_bytes());
    record.extend_from_slice(&snapshot.term.get().to_le_bytes());
    let membership_len = u32::try_from(membership_len).expect("a membership under 4 GiB");
    record.extend_from_slice(&membership_len.to_le_bytes());
    wire::encode_membership(&snapshot.membership, &mut record);
    record.extend_from_slice(&snapshot.data);
    let crc = checksum(SNAPSHOT_SALT, &record[4..]);
    record[..4].copy_from_slice(&crc.to_le_bytes());
    record
}

fn decode_snapshot(record: &[u8]) -> io::Result<Snapshot> {
    let corrupt = || corrupt(String::from("the snapshot is corrupt"));
    if record.len() < 24 || record[..4] != checksum(SNAPSHOT_SALT, &record[4..]).to_le_bytes() {
        return Err(corrupt());
    }
    let word = |at: usize| u64::from_le_bytes(record[at..at + 8].try_into().expect("eight bytes"));
    let membership_len =
        u32::from_le_bytes(record[20..24].try_into().expect("four bytes")) as usize;
    let membership_end = 24usize
        .checked_add(membership_len)
        .filter(|&end| end <= record.len())
        .ok_or_else(corrupt)?;
    let membership = wire::decode_membership(&record[24..membership_end]).map_err(|_| corrupt())?;
    Ok(Snapshot {
        index: LogIndex(word(4)),
        term: Term(word(12)),
        membership,
        data: Bytes::copy_from_slice(&record[membership_end..]),
    })
}

/// A snapshot record of the first layout, `[crc32][index][term][data]`.
fn decode_snapshot_v1(record: &[u8]) -> io::Result<Snapshot> {
    if record.len() < 20 || record[..4] != checksum(SNAPSHOT_SALT, &record[4..]).to_le_bytes() {
        return Err(corrupt(String::from("the snapshot is corrupt")));
    }
    let word = |at: usize| u64::from_le_bytes(record[at..at + 8].try_into().expect("eight bytes"));
    Ok(Snapshot {
        index: LogIndex(word(4)),
        term: Term(word(12)),
        membership: Membership::default(),
        data: Bytes::copy_from_slice(&record[20..]),
    })
}

/// CRC-32 of a record's index and body: a record copied to the wrong key
/// fails too.
fn checksum(index: u64, body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&index.to_le_bytes());
    hasher.update(body);
    hasher.finalize()
}

fn corrupt(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn redb_error(error: impl Into<redb::Error>) -> io::Error {
    io::Error::other(error.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
        Entry::command(LogIndex(index), Term(term), data.to_vec())
    }

    fn three_voters() -> Membership {
        Membership::with_voters(&[NodeId(1), NodeId(2), NodeId(3)]).unwrap()
    }

    #[test]
    fn what_was_written_is_loaded_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let hard_state = HardState {
            term: Term(4),
            voted_for: Some(NodeId(2)),
            log_lost_at_term: None,
        };
        {
            let mut store = DiskStorage::open(dir.path()).unwrap();
            assert_eq!(store.load().unwrap(), PersistedState::default());
            store
                .write(&[
                    Persist::HardState(hard_state),
                    Persist::Entries(vec![
                        entry(1, 1, b"a"),
                        entry(2, 1, b"b"),
                        entry(3, 2, b"c"),
                    ]),
                ])
                .unwrap();
            store
                .write(&[
                    Persist::TruncateLog { from: LogIndex(2) },
                    Persist::Entries(vec![entry(2, 4, b"d"), Entry::noop(LogIndex(3), Term(4))]),
                ])
                .unwrap();
        }
        let loaded = DiskStorage::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(loaded.hard_state, hard_state);
        assert_eq!(
            loaded.entries,
            vec![
                entry(1, 1, b"a"),
                entry(2, 4, b"d"),
                Entry::noop(LogIndex(3), Term(4))
            ]
        );
    }

    #[test]
    fn damaged_records_are_reported_not_loaded() {
        let good = {
            let mut record = Vec::new();
            encode_entry(&entry(7, 3, b"payload"), &mut record);
            record
        };
        assert!(decode_entry(LogIndex(7), &good).is_ok());
        assert!(
            decode_entry(LogIndex(8), &good).is_err(),
            "a record under another index"
        );
        for position in 0..good.len() {
            let mut damaged = good.clone();
            damaged[position] ^= 0x20;
            let error = decode_entry(LogIndex(7), &damaged).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
            assert!(error.to_string().contains("log entry 7"));
        }
        assert!(decode_entry(LogIndex(7), &good[..5]).is_err());
        let hard_state = encode_hard_state(HardState {
            term: Term(9),
            voted_for: None,
            log_lost_at_term: None,
        });
        let mut damaged = hard_state.clone();
        damaged[10] ^= 1;
        assert!(decode_hard_state(&damaged).is_err());
        assert_eq!(decode_hard_state(&hard_state).unwrap().term, Term(9));
        let snapshot = encode_snapshot(&Snapshot {
            index: LogIndex(5),
            term: Term(2),
            membership: three_voters(),
            data: Bytes::from_static(b"s"),
        });
        assert_eq!(decode_snapshot(&snapshot).unwrap().index, LogIndex(5));
        assert!(
            decode_hard_state(&snapshot).is_err(),
            "a snapshot is no hard state"
        );
        for position in 0..snapshot.len() {
            let mut damaged = snapshot.clone();
            damaged[position] ^= 0x04;
            assert!(decode_snapshot(&damaged).is_err());
        }
    }

    /// A store written before snapshots carried the configuration loads
    /// its snapshot with an empty membership (the node then uses the
    /// voters it is started with), and the next snapshot replaces it.
    #[test]
    fn a_snapshot_of_the_first_layout_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = vec![0; 4];
        record.extend_from_slice(&7u64.to_le_bytes());
        record.extend_from_slice(&2u64.to_le_bytes());
        record.extend_from_slice(b"old");
        let crc = checksum(SNAPSHOT_SALT, &record[4..]);
        record[..4].copy_from_slice(&crc.to_le_bytes());
        {
            let store = DiskStorage::open(dir.path()).unwrap();
            let transaction = store.database.begin_write().unwrap();
            transaction
                .open_table(META)
                .unwrap()
                .insert(SNAPSHOT_V1_KEY, record.as_slice())
                .unwrap();
            transaction.commit().unwrap();
        }
        let mut store = DiskStorage::open(dir.path()).unwrap();
        let loaded = store.load().unwrap().snapshot.expect("a snapshot");
        assert_eq!((loaded.index, loaded.term), (LogIndex(7), Term(2)));
        assert!(loaded.membership.is_empty());
        assert_eq!(&loaded.data[..], b"old");
        let newer = Snapshot {
            index: LogIndex(9),
            term: Term(2),
            membership: three_voters(),
            data: Bytes::from_static(b"new"),
        };
        store.write(&[Persist::Snapshot(newer.clone())]).unwrap();
        assert_eq!(store.load().unwrap().snapshot, Some(newer));
    }

    /// Writes `record` under log index `index` as it is, bypassing the
    /// encoding: damage a test plants.
    fn plant_log_record(dir: &Path, index: u64, record: &[u8]) {
        let store = DiskStorage::open(dir).unwrap();
        let transaction = store.database.begin_write().unwrap();
        transaction
            .open_table(LOG)
            .unwrap()
            .insert(index, record)
            .unwrap();
        transaction.commit().unwrap();
    }

    #[test]
    fn a_damaged_log_record_loses_the_log_from_there_and_marks_the_hard_state() {
        let dir = tempfile::tempdir().unwrap();
        let hard_state = HardState {
            term: Term(3),
            voted_for: Some(NodeId(2)),
            log_lost_at_term: None,
        };
        {
            let mut store = DiskStorage::open(dir.path()).unwrap();
            store
                .write(&[
                    Persist::HardState(hard_state),
                    Persist::Entries((1..=5).map(|i| entry(i, 2, b"x")).collect()),
                ])
                .unwrap();
        }
        let mut damaged = Vec::new();
        encode_entry(&entry(3, 2, b"x"), &mut damaged);
        damaged[12] ^= 0x01;
        plant_log_record(dir.path(), 3, &damaged);

        let loaded = DiskStorage::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(loaded.entries, vec![entry(1, 2, b"x"), entry(2, 2, b"x")]);
        assert_eq!(loaded.hard_state.term, Term(3));
        assert_eq!(loaded.hard_state.voted_for, Some(NodeId(2)));
        assert_eq!(loaded.hard_state.log_lost_at_term, Some(Term(3)));
        // The repair is durable: the next load finds the same, marked.
        let again = DiskStorage::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(again, loaded);
    }

    #[test]
    fn a_missing_log_record_loses_the_log_from_the_gap() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = DiskStorage::open(dir.path()).unwrap();
            store
                .write(&[Persist::Entries(vec![entry(1, 1, b"a"), entry(2, 1, b"b")])])
                .unwrap();
        }
        let mut record = Vec::new();
        encode_entry(&entry(4, 1, b"d"), &mut record);
        plant_log_record(dir.path(), 4, &record);
        let loaded = DiskStorage::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(loaded.entries.len(), 2);
        assert_eq!(loaded.hard_state.log_lost_at_term, Some(Term(0)));
    }

    #[test]
    fn a_damaged_snapshot_loses_everything_but_the_hard_state() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = DiskStorage::open(dir.path()).unwrap();
            store
                .write(&[
                    Persist::HardState(HardState {
                        term: Term(5),
                        voted_for: None,
                        log_lost_at_term: None,
                    }),
                    Persist::Snapshot(Snapshot {
                        index: LogIndex(4),
                        term: Term(2),
                        membership: three_voters(),
                        data: Bytes::from_static(b"state"),
                    }),
                    Persist::Entries(vec![entry(5, 2, b"e")]),
                ])
                .unwrap();
            let transaction = store.database.begin_write().unwrap();
            transaction
                .open_table(META)
                .unwrap()
                .insert(SNAPSHOT_KEY, &b"garbage that fails its checksum"[..])
                .unwrap();
            transaction.commit().unwrap();
        }
        let loaded = DiskStorage::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(loaded.snapshot, None);
        assert!(loaded.entries.is_empty());
        assert_eq!(loaded.hard_state.term, Term(5));
        assert_eq!(loaded.hard_state.log_lost_at_term, Some(Term(5)));
    }

    #[test]
    fn a_hard_state_of_the_first_layout_still_loads() {
        let mut record = vec![0; 4];
        record.extend_from_slice(&7u64.to_le_bytes());
        record.push(1);
        record.extend_from_slice(&3u64.to_le_bytes());
        let crc = checksum(0, &record[4..]);
        record[..4].copy_from_slice(&crc.to_le_bytes());
        let decoded = decode_hard_state(&record).unwrap();
        assert_eq!(
            decoded,
            HardState {
                term: Term(7),
                voted_for: Some(NodeId(3)),
                log_lost_at_term: None,
            }
        );
        let marked = HardState {
            log_lost_at_term: Some(Term(6)),
            ..decoded
        };
        assert_eq!(
            decode_hard_state(&encode_hard_state(marked)).unwrap(),
            marked
        );
    }

    #[test]
    fn a_snapshot_replaces_the_entries_it_covers() {
        let dir = tempfile::tempdir().unwrap();
        let snapshot = Snapshot {
            index: LogIndex(2),
            term: Term(1),
            membership: three_voters(),
            data: Bytes::from_static(b"state"),
        };
        {
            let mut store = DiskStorage::open(dir.path()).unwrap();
            store
                .write(&[Persist::Entries(vec![
                    entry(1, 1, b"a"),
                    entry(2, 1, b"b"),
                    entry(3, 1, b"c"),
                ])])
                .unwrap();
            store.write(&[Persist::Snapshot(snapshot.clone())]).unwrap();
        }
        let loaded = DiskStorage::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(loaded.snapshot, Some(snapshot));
        assert_eq!(loaded.entries, vec![entry(3, 1, b"c")]);
    }

    #[test]
    fn the_store_loads_what_applying_the_same_writes_gives() {
        let dir = tempfile::tempdir().unwrap();
        let snapshot = |index: u64, term: u64| Snapshot {
            index: LogIndex(index),
            term: Term(term),
            membership: three_voters(),
            data: Bytes::from(vec![index as u8; 3]),
        };
        let vote = |term: u64, node: u64| {
            Persist::HardState(HardState {
                term: Term(term),
                voted_for: Some(NodeId(node)),
                log_lost_at_term: None,
            })
        };
        let rounds = vec![
            vec![
                vote(1, 1),
                Persist::Entries(vec![entry(1, 1, b"a"), entry(2, 1, b"b")]),
            ],
            vec![Persist::Entries(vec![entry(3, 1, b"c"), entry(4, 1, b"d")])],
            vec![Persist::Snapshot(snapshot(2, 1))],
            vec![
                vote(3, 2),
                Persist::TruncateLog { from: LogIndex(4) },
                Persist::Entries(vec![entry(4, 3, b"e"), entry(5, 3, b"f")]),
            ],
            vec![
                Persist::Snapshot(snapshot(5, 3)),
                Persist::Entries(vec![entry(6, 3, b"g")]),
            ],
            // A leader's snapshot past everything held.
            vec![
                Persist::TruncateLog { from: LogIndex(6) },
                Persist::Snapshot(snapshot(9, 4)),
            ],
            vec![vote(5, 3), Persist::Entries(vec![entry(10, 5, b"h")])],
        ];
        let mut expected = PersistedState::default();
        for round in rounds {
            for write in &round {
                expected.apply(write.clone()).unwrap();
            }
            DiskStorage::open(dir.path())
                .unwrap()
                .write(&round)
                .unwrap();
            let loaded = DiskStorage::open(dir.path()).unwrap().load().unwrap();
            assert_eq!(loaded, expected);
        }
    }
}

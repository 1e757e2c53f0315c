//! A durable store on disk, in one redb database file.
//!
//! redb gives atomic, crash-safe commits: a commit that a crash tore is
//! found by its checksum at the next open and discarded, so the database
//! reopens at the last complete commit. Every [`Storage::write`] is one
//! redb write transaction committed with immediate durability (fsync), so
//! a batch of any size costs one commit. On top, each record carries its
//! own CRC-32 (of its index and contents), so bytes damaged at rest are
//! reported when the node loads, not handed to Raft.
//!
//! Snapshots' data lives beside the database, as files in
//! `<dir>/snapshots` ([`FileSnapshots`]); the database records which one
//! is current.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use kontiki::{
    wire, Entry, EntryKind, HardState, LogIndex, Membership, NodeId, Persist, PersistedState,
    Snapshot, Term,
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tracing::warn;

use crate::error::annotate;
use crate::snapshot_files::FileSnapshots;
use crate::snapshot_store::{store_whole, SnapshotRef, SnapshotStore};
use crate::storage::Storage;

/// The log: index → `[crc32][term][kind][data]`.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Small values by name: the hard state and the snapshot.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const HARD_STATE_KEY: &str = "hard_state";
/// `[crc32][index][term][membership length: u32][membership][reference]`,
/// the latest snapshot (the membership in the wire format's encoding, the
/// reference a [`SnapshotRef`] to its data in the snapshot files).
const SNAPSHOT_KEY: &str = "snapshot.v3";
/// The layout of [`SNAPSHOT_KEY`] with the data itself in place of the
/// reference: a snapshot stored before snapshots became files, moved to
/// a file when the store is loaded.
const SNAPSHOT_V2_KEY: &str = "snapshot.v2";
/// `[crc32][index][term][data]`: a snapshot stored before membership
/// changes existed, read (with an empty membership: the node uses the
/// voters it is started with) and replaced by the next snapshot.
const SNAPSHOT_V1_KEY: &str = "snapshot";
/// What a snapshot's checksum covers besides its bytes, so that it cannot
/// pass for a hard state (whose checksum mixes in 0).
const SNAPSHOT_SALT: u64 = u64::MAX;
/// The database file inside the data directory.
const FILE_NAME: &str = "kontiki.redb";
/// The snapshot files' directory inside the data directory.
const SNAPSHOTS_DIR: &str = "snapshots";

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

/// Hard state and log in `<dir>/kontiki.redb`, snapshots in
/// `<dir>/snapshots`.
pub struct DiskStorage {
    database: Database,
    path: PathBuf,
    snapshots: Arc<FileSnapshots>,
}

impl std::fmt::Debug for DiskStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStorage")
            .field("path", &self.path)
            .finish()
    }
}

impl DiskStorage {
    /// Reads everything stored, up to the first damage: what was read,
    /// what was lost, and whether the snapshot's data is still in the
    /// database (an older layout) rather than in a file.
    fn read(&self) -> io::Result<(PersistedState, Option<Damage>, bool)> {
        let transaction = self.database.begin_read().map_err(redb_error)?;
        let meta = transaction.open_table(META).map_err(redb_error)?;
        let hard_state = match meta.get(HARD_STATE_KEY).map_err(redb_error)? {
            Some(value) => decode_hard_state(value.value())?,
            None => HardState::default(),
        };
        // `Some(None)`: no snapshot; `None`: one that is damaged. `inline`:
        // of an older layout, its data still in the record.
        let (snapshot, inline) = if let Some(value) = meta.get(SNAPSHOT_KEY).map_err(redb_error)? {
            let snapshot = decode_snapshot(value.value()).ok().filter(|snapshot| {
                SnapshotRef::decode(&snapshot.data)
                    .is_some_and(|data| self.snapshots.contains(&data))
            });
            (snapshot.map(Some), false)
        } else if let Some(value) = meta.get(SNAPSHOT_V2_KEY).map_err(redb_error)? {
            (decode_snapshot(value.value()).ok().map(Some), true)
        } else if let Some(value) = meta.get(SNAPSHOT_V1_KEY).map_err(redb_error)? {
            (decode_snapshot_v1(value.value()).ok().map(Some), true)
        } else {
            (Some(None), false)
        };
        let Some(snapshot) = snapshot else {
            // The state the log continues is gone (its record damaged, or
            // its file missing or cut short): so is the log.
            let state = PersistedState {
                hard_state,
                ..PersistedState::default()
            };
            return Ok((state, Some(Damage::Snapshot), false));
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
        Ok((state, lost_from, inline))
    }

    /// Moves a snapshot stored in an older layout, its data in the
    /// database, to a file; `snapshot` then carries its reference.
    fn move_snapshot_to_file(&mut self, snapshot: &mut Snapshot) -> io::Result<()> {
        let stored = store_whole(&*self.snapshots, &snapshot.data)?;
        snapshot.data = stored.encode();
        let transaction = self.database.begin_write().map_err(redb_error)?;
        {
            let mut meta = transaction.open_table(META).map_err(redb_error)?;
            meta.insert(SNAPSHOT_KEY, encode_snapshot(snapshot).as_slice())
                .map_err(redb_error)?;
            meta.remove(SNAPSHOT_V2_KEY).map_err(redb_error)?;
            meta.remove(SNAPSHOT_V1_KEY).map_err(redb_error)?;
        }
        transaction.commit().map_err(redb_error)
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
                    meta.remove(SNAPSHOT_V2_KEY).map_err(redb_error)?;
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
        let snapshots_dir = dir.join(SNAPSHOTS_DIR);
        let snapshots = FileSnapshots::open(&snapshots_dir)
            .map_err(|error| annotate(error, format!("opening {}", snapshots_dir.display())))?;
        Ok(DiskStorage {
            database,
            path,
            snapshots: Arc::new(snapshots),
        })
    }

    /// Whether directory `dir` holds a store of this kind.
    #[must_use]
    pub fn is_in(dir: impl AsRef<Path>) -> bool {
        dir.as_ref().join(FILE_NAME).exists()
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
        let (mut state, damage, inline) = self.read()?;
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
        if let Some(snapshot) = state.snapshot.as_mut().filter(|_| inline) {
            self.move_snapshot_to_file(snapshot)?;
        }
        // Nothing can be on its way to becoming current yet: whatever
        // file is not the current snapshot's is left over.
        let current = state
            .snapshot
            .as_ref()
            .and_then(|snapshot| SnapshotRef::decode(&snapshot.data));
        self.snapshots.remove_all_but(current.as_ref())?;
        Ok(state)
    }

    /// A snapshot's data must be a [`SnapshotRef`] to a file of this
    /// store's ([`Storage::snapshots`]); older snapshot files go once the
    /// write is durable.
    fn write(&mut self, writes: &[Persist]) -> io::Result<()> {
        let mut current = None;
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
                        let data = SnapshotRef::of(&snapshot.data)?;
                        if !self.snapshots.contains(&data) {
                            return Err(crate::snapshot_store::missing(&data));
                        }
                        current = Some(data);
                        meta.insert(SNAPSHOT_KEY, encode_snapshot(snapshot).as_slice())
                            .map_err(redb_error)?;
                        meta.remove(SNAPSHOT_V2_KEY).map_err(redb_error)?;
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
        transaction.commit().map_err(redb_error)?;
        match current {
            Some(current) => self.snapshots.retain_from(&current),
            None => Ok(()),
        }
    }

    fn snapshots(&self) -> Arc<dyn SnapshotStore> {
        Arc::clone(&self.snapshots) as Arc<dyn SnapshotStore>
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
#[path = "disk_tests.rs"]
mod tests;

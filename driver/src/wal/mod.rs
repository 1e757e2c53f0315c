//! A durable store of our own: the log as an append-only file.
//!
//! Every [`Storage::write`] is one frame (or a few, for a batch over 16
//! MiB) appended to the current log file and made durable with one
//! `fdatasync`. The file is allocated ahead of the writes in large steps,
//! so the sync of a small append flushes data only, not the file's size —
//! about as fast as the disk syncs anything. Frames carry their own
//! CRC-32 and sequence number, and each carries the hard state, so no
//! second file has to be synced when a vote or a term is written. The
//! layout is in `frame.rs`.
//!
//! The log files live in `<dir>/wal`, named by generation. A snapshot
//! does not shrink a file: the next write after a snapshot, once the file
//! holds more than [`WalOptions::rotate_bytes`], writes the state as it
//! stands (hard state, snapshot reference, the entries after it) as the
//! next generation's file, synced and renamed into place, and removes the
//! old one. The store keeps that state in memory as it writes (the
//! entries' payloads are shared with the node's own log, not copied), so
//! a rotation writes only what the new file holds and never rereads the
//! old one, which may have grown far past `rotate_bytes` between two
//! snapshots.
//!
//! **Crashes and damage.** A crash can cut short only the write in
//! flight, never reported done: a frame that is not whole with no whole
//! frame after it is that write, and is dropped. A frame that is not whole
//! while a later one is has been damaged at rest: the log from there on is
//! lost. The store drops it, marks the hard state
//! (`HardState::log_lost_at_term`) so that the node abstains from votes
//! until it has caught up, takes the term and vote from the newest frame
//! that survives, and rewrites itself clean. A damaged last frame cannot
//! be told from one cut short by a crash, so it is treated as cut short —
//! the same holds of any store's last commit (redb's included).
//!
//! Snapshots' data lives beside the log, as files in `<dir>/snapshots`
//! ([`FileSnapshots`]), as with `DiskStorage`.

mod frame;
mod replay;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kontiki::{LogIndex, Persist, PersistedState};
use tracing::warn;

use crate::error::annotate;
use crate::numbered_files::{self, remove, sync_dir};
use crate::snapshot_files::FileSnapshots;
use crate::snapshot_store::{missing, SnapshotRef, SnapshotStore};
use crate::storage::Storage;
use frame::{file_header, read_file_header, FrameEncoder, FILE_HEADER_LEN};
use replay::{replay, Ending, Replay};

const LOG_DIR: &str = "wal";
const SNAPSHOTS_DIR: &str = "snapshots";
const FINISHED: &str = "log";
const PARTIAL: &str = "partial";
/// The file a store holds locked while open, so that two nodes (or two
/// processes) never write one directory.
const LOCK: &str = "lock";

/// How a [`WalStorage`] sizes its files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// A file larger than this is replaced by a compact one after the
    /// next snapshot. Default 64 MiB.
    pub rotate_bytes: u64,
    /// How far ahead of the writes the file is allocated. Default 16 MiB.
    pub preallocate_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> WalOptions {
        WalOptions {
            rotate_bytes: 64 * 1024 * 1024,
            preallocate_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Hard state and log in append-only files in `<dir>/wal`, snapshots in
/// `<dir>/snapshots`.
pub struct WalStorage {
    dir: PathBuf,
    options: WalOptions,
    file: File,
    generation: u64,
    /// Where the next frame goes.
    end: u64,
    /// The file's length, allocated ahead of `end`.
    allocated: u64,
    next_sequence: u64,
    /// What the file holds, as a restart would load it.
    state: PersistedState,
    /// What [`WalStorage::open`] found, until [`Storage::load`] takes it.
    loaded: Option<PersistedState>,
    /// Set by a write that failed: the file may hold part of it, so
    /// nothing more is written until the store is opened again.
    failed: bool,
    /// Frames being encoded; kept to reuse its allocation.
    buffer: Vec<u8>,
    snapshots: Arc<FileSnapshots>,
    /// Held locked for as long as the store is open.
    _lock: File,
}

impl std::fmt::Debug for WalStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalStorage")
            .field("dir", &self.dir)
            .field("generation", &self.generation)
            .field("end", &self.end)
            .finish()
    }
}

/// The stored log's extent, to refuse an append that does not continue
/// it before anything is written.
#[derive(Clone, Copy, Debug, Default)]
struct Bounds {
    snapshot_index: LogIndex,
    last_index: LogIndex,
}

impl Bounds {
    fn of(state: &PersistedState) -> Bounds {
        Bounds {
            snapshot_index: state.snapshot_index(),
            last_index: state.last_index(),
        }
    }

    /// Performs `write` on the extent, or says why it does not continue
    /// the log (as `PersistedState::apply` would).
    fn apply(&mut self, write: &Persist) -> io::Result<()> {
        match write {
            Persist::HardState(_) => {}
            Persist::Entries(entries) => {
                let mut expected = self.last_index.next();
                for entry in entries {
                    if entry.index != expected {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!(
                                "an append at index {} does not continue a log ending at {}",
                                entry.index,
                                LogIndex(expected.get() - 1)
                            ),
                        ));
                    }
                    expected = expected.next();
                }
                self.last_index = LogIndex(expected.get() - 1);
            }
            Persist::TruncateLog { from } => {
                let kept = LogIndex(from.get().saturating_sub(1));
                self.last_index = self.last_index.min(kept).max(self.snapshot_index);
            }
            Persist::Snapshot(snapshot) => {
                self.snapshot_index = snapshot.index;
                self.last_index = self.last_index.max(snapshot.index);
            }
        }
        Ok(())
    }
}

impl WalStorage {
    /// Opens (or creates) the store in directory `dir`, creating the
    /// directory if needed, with the default [`WalOptions`].
    pub fn open(dir: impl AsRef<Path>) -> io::Result<WalStorage> {
        WalStorage::open_with(dir, WalOptions::default())
    }

    /// Opens (or creates) the store in directory `dir` with `options`.
    /// What was stored is read now (and a damaged store repaired, see the
    /// module's documentation); [`Storage::load`] returns it.
    pub fn open_with(dir: impl AsRef<Path>, options: WalOptions) -> io::Result<WalStorage> {
        let root = dir.as_ref();
        let dir = root.join(LOG_DIR);
        fs::create_dir_all(&dir)
            .map_err(|error| annotate(error, format!("creating {}", dir.display())))?;
        let lock = lock(&dir)?;
        let snapshots_dir = root.join(SNAPSHOTS_DIR);
        let snapshots = FileSnapshots::open(&snapshots_dir)
            .map_err(|error| annotate(error, format!("opening {}", snapshots_dir.display())))?;
        let generation = match newest_file(&dir)? {
            Some(generation) => generation,
            None => {
                // A new store: its first file holds the empty state.
                write_generation(&dir, 1, 0, &PersistedState::default(), options)?;
                1
            }
        };
        let path = file_path(&dir, generation, FINISHED);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|error| annotate(error, format!("opening {}", path.display())))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let header_whole = read_file_header(&bytes) == Some(generation);
        let Replay {
            mut state,
            end,
            next_sequence,
            ending,
        } = replay(&bytes, generation);
        drop(bytes);
        let mut damaged = !header_whole || ending == Ending::Damaged;
        match ending {
            Ending::Unreadable => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: no frame is whole, so the node's term and vote are lost",
                        path.display()
                    ),
                ))
            }
            Ending::Torn { dirty_until } => {
                // Zeros over what the interrupted write left, so that the
                // space after the last frame is clean again.
                let zeros = vec![0; dirty_until - end];
                file.seek(SeekFrom::Start(end as u64))?;
                file.write_all(&zeros)?;
                file.sync_data()?;
            }
            Ending::Clean | Ending::Damaged => {}
        }
        let snapshot_missing = state.snapshot.as_ref().is_some_and(|snapshot| {
            SnapshotRef::decode(&snapshot.data).is_none_or(|data| !snapshots.contains(&data))
        });
        if snapshot_missing {
            // The state the log continues is gone, and so is the log.
            state = PersistedState {
                hard_state: state.hard_state,
                ..PersistedState::default()
            };
            damaged = true;
        }
        let mut store = WalStorage {
            allocated: file.metadata()?.len(),
            file,
            dir,
            options,
            generation,
            end: end as u64,
            next_sequence,
            state,
            loaded: None,
            failed: false,
            buffer: Vec::new(),
            snapshots: Arc::new(snapshots),
            _lock: lock,
        };
        if damaged {
            let hard_state = &mut store.state.hard_state;
            let lost_at = hard_state
                .log_lost_at_term
                .map_or(hard_state.term, |earlier| earlier.max(hard_state.term));
            hard_state.log_lost_at_term = Some(lost_at);
            warn!(
                path = %path.display(),
                "the log is damaged; dropped what was lost, and the node will not vote \
                 until it has caught up with its leader"
            );
            store.checkpoint()?;
        }
        let current = store
            .state
            .snapshot
            .as_ref()
            .and_then(|snapshot| SnapshotRef::decode(&snapshot.data));
        store.snapshots.remove_all_but(current.as_ref())?;
        store.loaded = Some(store.state.clone());
        Ok(store)
    }

    /// The directory of the log files.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current log file.
    #[must_use]
    pub fn path(&self) -> PathBuf {
        file_path(&self.dir, self.generation, FINISHED)
    }

    /// Replaces the current file with a new generation holding the state
    /// as it stands: written from memory, so the old file is never reread
    /// (and damage it took at rest since it was read does not carry over).
    fn checkpoint(&mut self) -> io::Result<()> {
        let generation = self.generation + 1;
        let (file, written) = write_generation(
            &self.dir,
            generation,
            self.next_sequence,
            &self.state,
            self.options,
        )?;
        let old = self.path();
        self.allocated = file.metadata()?.len();
        self.file = file;
        self.generation = generation;
        self.end = written.len;
        self.next_sequence = written.next_sequence;
        remove(&old)?;
        sync_dir(&self.dir)
    }

    /// Replays what the current file holds up to its end.
    fn replay_written(&mut self) -> io::Result<Replay> {
        let mut bytes = vec![0; usize::try_from(self.end).expect("a file that fits memory")];
        self.file.seek(SeekFrom::Start(0))?;
        self.file.read_exact(&mut bytes)?;
        Ok(replay(&bytes, self.generation))
    }

    /// Appends `frames` at the end and syncs them.
    fn append(&mut self, frames: &[u8]) -> io::Result<()> {
        let end = self.end + frames.len() as u64;
        if end > self.allocated {
            let allocated = end + self.options.preallocate_bytes;
            preallocate(&self.file, allocated)?;
            self.allocated = allocated;
        }
        self.file.seek(SeekFrom::Start(self.end))?;
        self.file.write_all(frames)?;
        self.file.sync_data()?;
        self.end = end;
        Ok(())
    }
}

impl Storage for WalStorage {
    /// What the store held when opened (after any repair), or, on a later
    /// call, what its file holds now.
    fn load(&mut self) -> io::Result<PersistedState> {
        if let Some(state) = self.loaded.take() {
            return Ok(state);
        }
        Ok(self.replay_written()?.state)
    }

    /// A snapshot's data must be a [`SnapshotRef`] to a file of this
    /// store's ([`Storage::snapshots`]); older snapshot files go once the
    /// write is durable.
    fn write(&mut self, writes: &[Persist]) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other(
                "an earlier write failed; the store must be opened again",
            ));
        }
        let mut bounds = Bounds::of(&self.state);
        let mut current = None;
        for write in writes {
            bounds.apply(write)?;
            if let Persist::Snapshot(snapshot) = write {
                let data = SnapshotRef::of(&snapshot.data)?;
                if !self.snapshots.contains(&data) {
                    return Err(missing(&data));
                }
                current = Some(data);
            }
        }
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        let mut encoder = FrameEncoder::new(
            &mut buffer,
            self.generation,
            self.next_sequence,
            self.state.hard_state,
        );
        for write in writes {
            encoder.push(write);
        }
        let next_sequence = encoder.finish();
        if buffer.is_empty() {
            self.buffer = buffer;
            return Ok(());
        }
        let appended = self.append(&buffer);
        self.buffer = buffer;
        if let Err(error) = appended {
            self.failed = true;
            return Err(error);
        }
        self.next_sequence = next_sequence;
        for write in writes {
            self.state
                .apply(write.clone())
                .expect("invariant: the bounds checked every append continues the log");
        }
        if let Some(current) = current {
            self.snapshots.retain_from(&current)?;
            if self.end > self.options.rotate_bytes {
                self.checkpoint().inspect_err(|_| self.failed = true)?;
            }
        }
        Ok(())
    }

    fn snapshots(&self) -> Arc<dyn SnapshotStore> {
        Arc::clone(&self.snapshots) as Arc<dyn SnapshotStore>
    }
}

/// What writing a generation's file left.
struct Written {
    len: u64,
    next_sequence: u64,
}

/// Writes `state` as file `generation` in `dir`: to a partial file,
/// synced, then renamed into place and the directory synced. Returns the
/// file, open for appending.
fn write_generation(
    dir: &Path,
    generation: u64,
    first_sequence: u64,
    state: &PersistedState,
    options: WalOptions,
) -> io::Result<(File, Written)> {
    let mut bytes = file_header(generation).to_vec();
    let mut encoder = FrameEncoder::new(&mut bytes, generation, first_sequence, state.hard_state);
    // The hard state opens the first frame: a file always holds one.
    encoder.push(&Persist::HardState(state.hard_state));
    if let Some(snapshot) = &state.snapshot {
        encoder.push(&Persist::Snapshot(snapshot.clone()));
    }
    encoder.push_entries(&state.entries);
    let next_sequence = encoder.finish();
    let partial = file_path(dir, generation, PARTIAL);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&partial)
        .map_err(|error| annotate(error, format!("creating {}", partial.display())))?;
    preallocate(&file, bytes.len() as u64 + options.preallocate_bytes)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    fs::rename(&partial, file_path(dir, generation, FINISHED))?;
    sync_dir(dir)?;
    let written = Written {
        len: bytes.len() as u64,
        next_sequence,
    };
    debug_assert!(written.len >= FILE_HEADER_LEN as u64);
    Ok((file, written))
}

/// The newest finished file's generation in `dir`, after removing
/// partial files and older generations (what a crash during a rotation
/// leaves).
fn newest_file(dir: &Path) -> io::Result<Option<u64>> {
    let mut finished = Vec::new();
    for (generation, path, extension) in numbered_files::list(dir, &[FINISHED, PARTIAL])? {
        if extension == FINISHED {
            finished.push(generation);
        } else {
            remove(&path)?;
        }
    }
    let newest = finished.iter().copied().max();
    for &generation in &finished {
        if Some(generation) != newest {
            remove(&file_path(dir, generation, FINISHED))?;
        }
    }
    Ok(newest)
}

/// Locks the store in `dir` for this process, or says who holds it.
fn lock(dir: &Path) -> io::Result<File> {
    let path = dir.join(LOCK);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|error| annotate(error, format!("opening {}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "{} is in use: another node (or process) has this store open",
                dir.display()
            ),
        )),
        Err(fs::TryLockError::Error(error)) => {
            Err(annotate(error, format!("locking {}", path.display())))
        }
    }
}

fn file_path(dir: &Path, generation: u64, extension: &str) -> PathBuf {
    dir.join(format!("{generation:020}.{extension}"))
}

/// Allocates `file` through `len` bytes (never shrinking it), so that
/// later writes there change no metadata that a sync must flush.
#[cfg(target_os = "linux")]
fn preallocate(file: &File, len: u64) -> io::Result<()> {
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        // A filesystem that cannot allocate ahead gets a longer file.
        Err(rustix::io::Errno::OPNOTSUPP) => extend(file, len),
        Err(error) => Err(error.into()),
    }
}

/// Extends `file` to `len` bytes (never shrinking it): where the system
/// has no way to allocate ahead, the file at least does not grow on every
/// write.
#[cfg(not(target_os = "linux"))]
fn preallocate(file: &File, len: u64) -> io::Result<()> {
    extend(file, len)
}

fn extend(file: &File, len: u64) -> io::Result<()> {
    if file.metadata()?.len() < len {
        file.set_len(len)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

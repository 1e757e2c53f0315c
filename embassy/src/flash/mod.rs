//! A node's stable storage on NOR flash: its hard state, log and snapshot,
//! kept through any `embedded-storage` NOR flash driver.
//!
//! # Layout
//!
//! The flash range is split into two halves, each a
//! [`sequential-storage`](sequential_storage) queue: items appended in
//! order, page after page, each with its own checksum. One half is
//! active. It starts with a *checkpoint* — a record opening it (with a
//! generation number), the whole state as records, and a record closing
//! it — and goes on with one record per write the node asks for
//! ([`Persist`]). A record that does not fit one item is carried by
//! several, the first of which gives its length.
//!
//! When the active half is full, the state is written as a checkpoint of
//! the next generation into the other half (erased first), and once that
//! checkpoint is closed, the old half is erased. Both halves are thus
//! erased equally often, and within a half the queue uses its pages in
//! turn: the wear is spread over the whole range.
//!
//! # Power cuts
//!
//! A write is acknowledged (its future completes) only when all its items
//! are in flash. At start, the storage reads both halves and takes the
//! newest whole checkpoint and every whole record after it: a record cut
//! short by a reset, or a checkpoint never closed, was never acknowledged
//! and is ignored. Each item carries a sequence number, so an item lost
//! from the middle of a half (which a reset cannot cause, but damage can)
//! is noticed and reported rather than skipped.

mod model;
mod record;

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use bytes::Bytes;
use embedded_storage_async::nor_flash::{MultiwriteNorFlash, NorFlash};
use kontiki::{Persist, PersistError, PersistedState};
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::queue::{QueueConfig, QueueStorage};

pub use model::{MemoryFlash, MemoryFlashError};

use record::Record;

/// The most payload bytes one item carries: a quarter of a page, so that
/// the space an item cannot use at the end of a page stays small.
const MAX_ITEM_PAYLOAD: usize = 1024;
/// An item's header: its sequence number and whether it starts a record.
const ITEM_HEADER: usize = 5;
/// The first item of a record also gives the record's length.
const LENGTH_BYTES: usize = 4;
/// A checkpoint writes the log in records of at most about this size.
const CHECKPOINT_RECORD_BYTES: usize = 4096;

/// Item markers, after the sequence number.
mod marker {
    pub(super) const FIRST: u8 = 1;
    pub(super) const CONTINUED: u8 = 2;
}

/// Why the flash storage could not open, or could not perform a write.
#[derive(Debug, PartialEq, Eq)]
pub enum FlashError<E> {
    /// The flash driver failed.
    Flash(E),
    /// The range is not usable: not whole pages, or too few of them (each
    /// half needs at least two).
    BadRange,
    /// The state does not fit half the range. Take snapshots more often
    /// (they shorten the log), or give the storage more flash.
    Full,
    /// What the flash holds is damaged: an item missing from the middle
    /// of a half, a record that does not decode, or writes that do not
    /// follow each other. The node cannot know what it acknowledged; erase
    /// the range and have the node rejoin the cluster as a new member.
    Damaged(&'static str),
    /// A write the node asked for does not continue the stored log (and
    /// was not written): the writes were reordered or one was lost.
    OutOfOrder(PersistError),
    /// An earlier write failed, so the flash may no longer hold what the
    /// node was told: open the storage again (after a reset) to go on.
    Failed,
}

impl<E: fmt::Debug> fmt::Display for FlashError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlashError::Flash(error) => write!(f, "the flash failed: {error:?}"),
            FlashError::BadRange => {
                f.write_str("the flash range must be whole pages, at least four")
            }
            FlashError::Full => f.write_str("the node's state does not fit half the flash range"),
            FlashError::Damaged(what) => write!(f, "the stored state is damaged: {what}"),
            FlashError::OutOfOrder(error) => write!(f, "a write out of order: {error}"),
            FlashError::Failed => f.write_str("an earlier write failed; reopen the storage"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for FlashError<E> {}

/// What the storage has done since it opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlashStats {
    /// The active half's checkpoint generation (a fresh range starts at 1).
    pub generation: u32,
    /// Records written (each write asked for is one; a checkpoint's
    /// records are not counted).
    pub records: u64,
    /// Items written, checkpoints included.
    pub items: u64,
    /// Bytes of items written, checkpoints included.
    pub bytes: u64,
    /// Checkpoints written because a half was full.
    pub checkpoints: u64,
}

/// A node's stable storage on NOR flash. See the [module](self) for how
/// it lays out its records and survives resets.
pub struct FlashStorage<S> {
    flash: S,
    halves: [Range<u32>; 2],
    active: usize,
    /// The sequence number of the next item in the active half.
    next_sequence: u32,
    /// What the flash holds, decoded: the state a checkpoint writes.
    state: PersistedState,
    /// The record being written, and the item being written.
    record: Vec<u8>,
    item: Vec<u8>,
    failed: bool,
    stats: FlashStats,
}

impl<S: MultiwriteNorFlash> FlashStorage<S> {
    /// Opens the storage kept in `range` of `flash`: reads what it holds
    /// (see [`state`](FlashStorage::state)), or, if it holds no state,
    /// starts an empty one there.
    ///
    /// # Errors
    ///
    /// [`FlashError::BadRange`] for a range that is not at least four
    /// whole pages; [`FlashError::Damaged`] if what the range holds is
    /// damaged; [`FlashError::Flash`] if the driver fails.
    pub async fn open(
        flash: S,
        range: Range<u32>,
    ) -> Result<FlashStorage<S>, FlashError<S::Error>> {
        let page = S::ERASE_SIZE as u32;
        let pages = range.end.saturating_sub(range.start) / page;
        if !range.start.is_multiple_of(page) || !range.end.is_multiple_of(page) || pages < 4 {
            return Err(FlashError::BadRange);
        }
        let middle = range.start + pages / 2 * page;
        let halves = [range.start..middle, middle..middle + pages / 2 * page];
        let mut storage = FlashStorage {
            flash,
            halves,
            active: 0,
            next_sequence: 0,
            state: PersistedState::default(),
            record: Vec::new(),
            item: Vec::with_capacity(item_payload::<S>() + ITEM_HEADER),
            failed: false,
            stats: FlashStats::default(),
        };
        let mut buffer = vec![0; S::ERASE_SIZE];
        let mut found = [Half::Empty, Half::Empty];
        for (half, found) in found.iter_mut().enumerate() {
            *found = storage.scan(half, &mut buffer).await?;
        }
        // A checkpoint past the first one that never closed, with no whole
        // one beside it: the state it was copying is lost.
        let lost = found
            .iter()
            .any(|half| matches!(half, Half::Incomplete { generation } if *generation > 1));
        let newest = found
            .into_iter()
            .enumerate()
            .filter_map(|(half, found)| match found {
                Half::Whole {
                    generation,
                    state,
                    next_sequence,
                } => Some((generation, half, state, next_sequence)),
                _ => None,
            })
            .max_by_key(|(generation, ..)| *generation);
        match newest {
            Some((generation, half, state, next_sequence)) => {
                storage.active = half;
                storage.state = state;
                storage.next_sequence = next_sequence;
                storage.stats.generation = generation;
            }
            None if lost => return Err(FlashError::Damaged("no whole checkpoint remains")),
            None => storage.initialize().await?,
        }
        Ok(storage)
    }

    /// The state the flash holds: what a node restarted on this storage
    /// starts from.
    pub fn state(&self) -> &PersistedState {
        &self.state
    }

    /// What the storage has done since it opened.
    pub fn stats(&self) -> FlashStats {
        self.stats
    }

    /// The flash driver back.
    pub fn into_flash(self) -> S {
        self.flash
    }

    /// Performs one write the node asked for; when the future completes,
    /// the write is in flash and survives a reset.
    ///
    /// # Errors
    ///
    /// [`FlashError::OutOfOrder`] for an append that does not continue the
    /// stored log (nothing is written); [`FlashError::Full`] if the state
    /// no longer fits half the range; [`FlashError::Flash`] if the driver
    /// fails. After any error but the first, the storage refuses further
    /// writes ([`FlashError::Failed`]) until it is opened again.
    pub async fn persist(&mut self, write: Persist) -> Result<(), FlashError<S::Error>> {
        if self.failed {
            return Err(FlashError::Failed);
        }
        self.record.clear();
        record::encode_write(&write, &mut self.record);
        self.state.apply(write).map_err(FlashError::OutOfOrder)?;
        self.failed = true;
        match self.push_record().await {
            Ok(()) => {}
            // The checkpoint holds the state with this write in it.
            Err(FlashError::Full) => self.switch_halves().await?,
            Err(error) => return Err(error),
        }
        self.failed = false;
        self.stats.records += 1;
        Ok(())
    }

    /// Starts an empty state in a range that holds none: the first
    /// checkpoint goes into the first half, and the second is erased after
    /// it, as at any switch.
    async fn initialize(&mut self) -> Result<(), FlashError<S::Error>> {
        self.active = 1;
        self.stats.generation = 0;
        self.switch_halves().await
    }

    /// Writes the state as a checkpoint of the next generation into the
    /// other half, then erases the half that was active.
    async fn switch_halves(&mut self) -> Result<(), FlashError<S::Error>> {
        let old = self.active;
        let new = 1 - old;
        queue(&mut self.flash, self.halves[new].clone())
            .erase_all()
            .await
            .map_err(storage_error)?;
        self.active = new;
        self.next_sequence = 0;
        self.stats.generation += 1;
        self.record.clear();
        record::encode_checkpoint_begin(self.stats.generation, &mut self.record);
        self.push_record().await?;
        self.record.clear();
        record::encode_hard_state(self.state.hard_state, &mut self.record);
        self.push_record().await?;
        if let Some(snapshot) = &self.state.snapshot {
            self.record.clear();
            record::encode_snapshot(snapshot, &mut self.record);
            self.push_record().await?;
        }
        let entries = self.state.entries.len();
        let mut start = 0;
        while start < entries {
            // As many entries as fit the record size, one at least.
            let mut end = start + 1;
            let mut bytes = record::entries_len(&self.state.entries[start..end]);
            while end < entries {
                bytes += record::entry_len(&self.state.entries[end]);
                if bytes > CHECKPOINT_RECORD_BYTES {
                    break;
                }
                end += 1;
            }
            self.record.clear();
            record::encode_entries(&self.state.entries[start..end], &mut self.record);
            self.push_record().await?;
            start = end;
        }
        self.record.clear();
        record::encode_checkpoint_end(&mut self.record);
        self.push_record().await?;
        queue(&mut self.flash, self.halves[old].clone())
            .erase_all()
            .await
            .map_err(storage_error)?;
        self.stats.checkpoints += 1;
        Ok(())
    }

    /// Appends the record in `self.record` to the active half, in as many
    /// items as it takes.
    async fn push_record(&mut self) -> Result<(), FlashError<S::Error>> {
        let payload = item_payload::<S>();
        let total = self.record.len();
        let range = self.halves[self.active].clone();
        let mut at = 0;
        let mut first = true;
        while first || at < total {
            self.item.clear();
            self.item
                .extend_from_slice(&self.next_sequence.to_le_bytes());
            let room = if first {
                self.item.push(marker::FIRST);
                let total = u32::try_from(total).map_err(|_| FlashError::Full)?;
                self.item.extend_from_slice(&total.to_le_bytes());
                payload - LENGTH_BYTES
            } else {
                self.item.push(marker::CONTINUED);
                payload
            };
            let end = total.min(at + room);
            self.item.extend_from_slice(&self.record[at..end]);
            queue(&mut self.flash, range.clone())
                .push(&self.item, false)
                .await
                .map_err(storage_error)?;
            self.next_sequence = self.next_sequence.wrapping_add(1);
            self.stats.items += 1;
            self.stats.bytes += self.item.len() as u64;
            at = end;
            first = false;
        }
        Ok(())
    }

    /// Reads one half: whether it holds a whole checkpoint, and the state
    /// it holds if so.
    async fn scan(&mut self, half: usize, buffer: &mut [u8]) -> Result<Half, FlashError<S::Error>> {
        let range = self.halves[half].clone();
        let mut queue = queue(&mut self.flash, range);
        let Ok(mut items) = queue.iter().await else {
            return Ok(Half::Unreadable);
        };
        let mut reader = HalfReader::default();
        loop {
            let item = match items.next(buffer).await {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(_) => {
                    reader.damage("an item cannot be read");
                    break;
                }
            };
            reader.item(&item[..]);
            if reader.damaged.is_some() {
                break;
            }
        }
        reader.finish()
    }
}

/// The queue over `range` of `flash`, made for each operation (uncached:
/// no cache state to keep right between halves).
fn queue<S: NorFlash>(
    flash: &mut S,
    range: Range<u32>,
) -> QueueStorage<&mut S, Cache<Uncached, Uncached, Uncached>> {
    QueueStorage::new(flash, QueueConfig::new(range), Cache::new_uncached())
}

/// The payload one item carries on this flash.
fn item_payload<S: NorFlash>() -> usize {
    MAX_ITEM_PAYLOAD.min(S::ERASE_SIZE / 4) - ITEM_HEADER
}

fn storage_error<E>(error: sequential_storage::Error<E>) -> FlashError<E> {
    match error {
        sequential_storage::Error::Storage { value, .. } => FlashError::Flash(value),
        sequential_storage::Error::FullStorage => FlashError::Full,
        _ => FlashError::Damaged("the queue in flash is corrupted"),
    }
}

/// What one half holds.
enum Half {
    /// Nothing.
    Empty,
    /// Something the queue cannot read (a half being erased when the
    /// power failed).
    Unreadable,
    /// A checkpoint that was never closed.
    Incomplete { generation: u32 },
    /// A whole checkpoint and the writes after it.
    Whole {
        generation: u32,
        state: PersistedState,
        next_sequence: u32,
    },
}

/// Rebuilds the state of a half from its items, in order.
#[derive(Default)]
struct HalfReader {
    next_sequence: u32,
    items: u32,
    /// The record being put together from its items: its length and the
    /// bytes so far.
    record: Option<(usize, Vec<u8>)>,
    generation: Option<u32>,
    closed: bool,
    state: PersistedState,
    damaged: Option<&'static str>,
}

impl HalfReader {
    fn damage(&mut self, what: &'static str) {
        self.damaged.get_or_insert(what);
    }

    fn item(&mut self, item: &[u8]) {
        let Some((header, payload)) = item.split_at_checked(ITEM_HEADER) else {
            return self.damage("an item without a header");
        };
        let sequence = u32::from_le_bytes(header[..4].try_into().expect("four bytes"));
        if sequence != self.next_sequence {
            return self.damage("an item is missing");
        }
        self.next_sequence = sequence.wrapping_add(1);
        self.items += 1;
        match header[4] {
            marker::FIRST => {
                // A record still unfinished here was cut short by a reset
                // and never acknowledged: it is dropped.
                let Some((length, part)) = payload.split_at_checked(LENGTH_BYTES) else {
                    return self.damage("a record without a length");
                };
                let length = u32::from_le_bytes(length.try_into().expect("four bytes")) as usize;
                self.record = Some((length, Vec::from(part)));
            }
            marker::CONTINUED => match &mut self.record {
                Some((_, bytes)) => bytes.extend_from_slice(payload),
                None => return self.damage("a record's continuation without its start"),
            },
            _ => return self.damage("an unknown item marker"),
        }
        let Some((length, bytes)) = self
            .record
            .take_if(|(length, bytes)| bytes.len() >= *length)
        else {
            return;
        };
        if bytes.len() != length {
            return self.damage("a record longer than its length");
        }
        match record::decode(&Bytes::from(bytes)) {
            Some(record) => self.record(record),
            None => self.damage("a record does not decode"),
        }
    }

    fn record(&mut self, record: Record) {
        match (record, self.generation, self.closed) {
            (Record::CheckpointBegin { generation }, None, _) => {
                self.generation = Some(generation);
            }
            (Record::CheckpointEnd, Some(_), false) => self.closed = true,
            (Record::Write(write), Some(_), _) => {
                if self.state.apply(write).is_err() {
                    self.damage("writes that do not follow each other");
                }
            }
            _ => self.damage("a record out of place"),
        }
    }

    fn finish<E>(self) -> Result<Half, FlashError<E>> {
        match (self.generation, self.closed, self.damaged) {
            (Some(_), true, Some(what)) => Err(FlashError::Damaged(what)),
            (Some(generation), true, None) => Ok(Half::Whole {
                generation,
                state: self.state,
                next_sequence: self.next_sequence,
            }),
            (Some(generation), false, _) => Ok(Half::Incomplete { generation }),
            (None, _, _) if self.items == 0 && self.damaged.is_none() => Ok(Half::Empty),
            (None, _, _) => Ok(Half::Unreadable),
        }
    }
}

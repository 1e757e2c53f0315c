//! The layout of a log file: a file header, then frames.
//!
//! ```text
//! file header (32 bytes):
//!   magic "kontiki-wal\0" | version: u32 | generation: u64 | crc32: u32 | 0: u32
//! frame (48-byte header, then its body, padded with zeros to 8 bytes):
//!   body length: u32 | crc32: u32 | sequence: u64 | term: u64 | vote: u64
//!   | lost-at term: u64 | flags: u8 (1 voted, 2 log lost) | 0: 7 bytes | body
//! body: records, each a tag byte and its fields
//!   1 entries:  count: u32 | first index: u64 | per entry: term: u64
//!               | kind: u8 | data length: u32 | data
//!   2 truncate: from: u64
//!   3 snapshot: index: u64 | term: u64 | membership length: u32
//!               | membership (the wire format's encoding) | data length: u32
//!               | data (a snapshot reference)
//! ```
//!
//! Integers are little-endian. A frame's CRC-32 covers the file's
//! generation and everything in the frame after the CRC, so a frame of
//! another file, or bytes left from an earlier one, never pass. Each frame
//! carries the hard state as it stands after the frame's records: the
//! newest frame found anywhere in a file gives the node's term and vote,
//! even when an older frame is damaged. Where a frame header would be
//! all zeros, the written part of the file ends (the space after the last
//! frame is zeros).

use bytes::Bytes;
use kontiki::{wire, Entry, EntryKind, HardState, LogIndex, NodeId, Persist, Snapshot, Term};

/// The length of the file header.
pub(super) const FILE_HEADER_LEN: usize = 32;
/// The length of a frame's header.
pub(super) const FRAME_HEADER_LEN: usize = 48;
const MAGIC: &[u8; 12] = b"kontiki-wal\0";
const VERSION: u32 = 1;
/// A frame's body is cut at about this many bytes: a batch larger than
/// that becomes several frames (written in order in one write).
pub(super) const FRAME_BODY_TARGET: usize = 16 * 1024 * 1024;

const TAG_ENTRIES: u8 = 1;
const TAG_TRUNCATE: u8 = 2;
const TAG_SNAPSHOT: u8 = 3;

const KIND_COMMAND: u8 = 0;
const KIND_NOOP: u8 = 1;
const KIND_MEMBERSHIP: u8 = 2;

const FLAG_VOTED: u8 = 1;
const FLAG_LOST: u8 = 2;

/// The file header of generation `generation`.
pub(super) fn file_header(generation: u64) -> [u8; FILE_HEADER_LEN] {
    let mut header = [0; FILE_HEADER_LEN];
    header[..12].copy_from_slice(MAGIC);
    header[12..16].copy_from_slice(&VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&generation.to_le_bytes());
    let crc = crc32fast::hash(&header[..24]);
    header[24..28].copy_from_slice(&crc.to_le_bytes());
    header
}

/// The generation a file header names, if it is one of ours, whole.
pub(super) fn read_file_header(bytes: &[u8]) -> Option<u64> {
    let header = bytes.get(..FILE_HEADER_LEN)?;
    let valid = &header[..12] == MAGIC
        && u32_at(header, 12) == VERSION
        && u32_at(header, 24) == crc32fast::hash(&header[..24]);
    valid.then(|| u64_at(header, 16))
}

/// Frames being built from writes, into one buffer.
pub(super) struct FrameEncoder<'a> {
    buffer: &'a mut Vec<u8>,
    generation: u64,
    /// Where the open frame starts in `buffer`, if one is open.
    open: Option<usize>,
    /// The next frame's sequence number.
    pub(super) next_sequence: u64,
    /// The hard state as of the records encoded so far.
    hard_state: HardState,
}

impl<'a> FrameEncoder<'a> {
    /// An encoder appending to `buffer` frames of file `generation`,
    /// numbered from `next_sequence`, starting from `hard_state`.
    pub(super) fn new(
        buffer: &'a mut Vec<u8>,
        generation: u64,
        next_sequence: u64,
        hard_state: HardState,
    ) -> FrameEncoder<'a> {
        FrameEncoder {
            buffer,
            generation,
            open: None,
            next_sequence,
            hard_state,
        }
    }

    /// Adds one write.
    pub(super) fn push(&mut self, write: &Persist) {
        match write {
            Persist::HardState(hard_state) => {
                self.open_frame();
                self.hard_state = *hard_state;
            }
            Persist::Entries(entries) => self.push_entries(entries),
            Persist::TruncateLog { from } => {
                self.open_frame();
                self.buffer.push(TAG_TRUNCATE);
                self.buffer.extend_from_slice(&from.get().to_le_bytes());
            }
            Persist::Snapshot(snapshot) => {
                self.open_frame();
                self.snapshot(snapshot);
            }
        }
    }

    /// Adds an append of `entries`, cut into groups that fit a frame's
    /// body.
    pub(super) fn push_entries(&mut self, entries: &[Entry]) {
        let mut rest = entries;
        while !rest.is_empty() {
            let start = self.open_frame();
            let room = FRAME_BODY_TARGET.saturating_sub(self.buffer.len() - start);
            let mut size = 0;
            let count = rest
                .iter()
                .take_while(|entry| {
                    size += 13 + entry.data.len();
                    size <= room
                })
                .count()
                .max(1);
            let (group, after) = rest.split_at(count);
            self.entries(group);
            rest = after;
            if !rest.is_empty() {
                self.close_frame();
            }
        }
    }

    fn entries(&mut self, entries: &[Entry]) {
        let count = u32::try_from(entries.len()).expect("a group fits a frame");
        self.buffer.push(TAG_ENTRIES);
        self.buffer.extend_from_slice(&count.to_le_bytes());
        self.buffer
            .extend_from_slice(&entries[0].index.get().to_le_bytes());
        for entry in entries {
            self.buffer
                .extend_from_slice(&entry.term.get().to_le_bytes());
            self.buffer.push(match entry.kind {
                EntryKind::Noop => KIND_NOOP,
                EntryKind::Membership => KIND_MEMBERSHIP,
                _ => KIND_COMMAND,
            });
            push_len(self.buffer, entry.data.len());
            self.buffer.extend_from_slice(&entry.data);
        }
    }

    fn snapshot(&mut self, snapshot: &Snapshot) {
        self.buffer.push(TAG_SNAPSHOT);
        self.buffer
            .extend_from_slice(&snapshot.index.get().to_le_bytes());
        self.buffer
            .extend_from_slice(&snapshot.term.get().to_le_bytes());
        push_len(
            self.buffer,
            wire::membership_encoded_len(&snapshot.membership),
        );
        wire::encode_membership(&snapshot.membership, self.buffer);
        push_len(self.buffer, snapshot.data.len());
        self.buffer.extend_from_slice(&snapshot.data);
    }

    /// The open frame's start, opening one (a header to fill in later) if
    /// none is.
    fn open_frame(&mut self) -> usize {
        *self.open.get_or_insert_with(|| {
            let start = self.buffer.len();
            self.buffer.resize(start + FRAME_HEADER_LEN, 0);
            start
        })
    }

    /// Closes the open frame: fills in its header and pads it.
    fn close_frame(&mut self) {
        let Some(start) = self.open.take() else {
            return;
        };
        let body_len = self.buffer.len() - start - FRAME_HEADER_LEN;
        let padded = (self.buffer.len() + 7) & !7;
        self.buffer.resize(padded, 0);
        let hard_state = self.hard_state;
        let header = &mut self.buffer[start..start + FRAME_HEADER_LEN];
        let body_len = u32::try_from(body_len).expect("a frame body under 4 GiB");
        header[..4].copy_from_slice(&body_len.to_le_bytes());
        header[8..16].copy_from_slice(&self.next_sequence.to_le_bytes());
        header[16..24].copy_from_slice(&hard_state.term.get().to_le_bytes());
        header[24..32].copy_from_slice(&hard_state.voted_for.map_or(0, NodeId::get).to_le_bytes());
        header[32..40].copy_from_slice(
            &hard_state
                .log_lost_at_term
                .map_or(0, Term::get)
                .to_le_bytes(),
        );
        let mut flags = 0;
        if hard_state.voted_for.is_some() {
            flags |= FLAG_VOTED;
        }
        if hard_state.log_lost_at_term.is_some() {
            flags |= FLAG_LOST;
        }
        header[40] = flags;
        let crc = frame_crc(
            self.generation,
            &self.buffer[start + 8..start + FRAME_HEADER_LEN + body_len as usize],
        );
        self.buffer[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        self.next_sequence += 1;
    }

    /// Closes the last frame; the buffer then holds whole frames.
    pub(super) fn finish(mut self) -> u64 {
        self.close_frame();
        self.next_sequence
    }
}

fn push_len(buffer: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).expect("a record field under 4 GiB");
    buffer.extend_from_slice(&len.to_le_bytes());
}

fn frame_crc(generation: u64, covered: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&generation.to_le_bytes());
    hasher.update(covered);
    hasher.finalize()
}

/// One frame found whole in a file.
pub(super) struct Frame<'a> {
    pub(super) sequence: u64,
    pub(super) hard_state: HardState,
    pub(super) body: &'a [u8],
    /// Where the next frame starts.
    pub(super) end: usize,
}

/// What lies at `at` in `file` (a whole file's bytes, of `generation`).
pub(super) enum FrameAt<'a> {
    /// A whole frame.
    Frame(Frame<'a>),
    /// Zeros: the written part of the file ends here.
    End,
    /// Anything else: a frame cut short, or damaged.
    Bad,
}

/// Reads the frame at `at`.
pub(super) fn frame_at(file: &[u8], at: usize, generation: u64) -> FrameAt<'_> {
    let Some(header) = file.get(at..).and_then(|rest| rest.get(..FRAME_HEADER_LEN)) else {
        // Too little room for a header: the end if all zeros.
        return if file.get(at..).unwrap_or(&[]).iter().all(|&byte| byte == 0) {
            FrameAt::End
        } else {
            FrameAt::Bad
        };
    };
    if header.iter().all(|&byte| byte == 0) {
        return FrameAt::End;
    }
    let body_len = u32_at(header, 0) as usize;
    let Some(end) = body_len
        .checked_add(FRAME_HEADER_LEN)
        .and_then(|len| at.checked_add(len))
        .filter(|&end| end <= file.len())
    else {
        return FrameAt::Bad;
    };
    if u32_at(header, 4) != frame_crc(generation, &file[at + 8..end]) {
        return FrameAt::Bad;
    }
    let flags = header[40];
    let hard_state = HardState {
        term: Term(u64_at(header, 16)),
        voted_for: (flags & FLAG_VOTED != 0).then(|| NodeId(u64_at(header, 24))),
        log_lost_at_term: (flags & FLAG_LOST != 0).then(|| Term(u64_at(header, 32))),
    };
    FrameAt::Frame(Frame {
        sequence: u64_at(header, 8),
        hard_state,
        body: &file[at + FRAME_HEADER_LEN..end],
        end: (end + 7) & !7,
    })
}

/// The writes a frame's body holds, in order; `None` if the body does
/// not parse (only a bug could write such a frame: its checksum passed).
pub(super) fn decode_body(mut body: &[u8]) -> Option<Vec<Persist>> {
    let mut writes = Vec::new();
    while let Some((&tag, rest)) = body.split_first() {
        body = rest;
        let write = match tag {
            TAG_ENTRIES => {
                let count = take_u32(&mut body)?;
                let mut index = LogIndex(take_u64(&mut body)?);
                // Each entry takes at least 13 bytes: a count the body
                // cannot hold is refused before anything is reserved.
                if count as usize > body.len() / 13 {
                    return None;
                }
                let mut entries = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    let term = Term(take_u64(&mut body)?);
                    let kind = match take(&mut body, 1)?[0] {
                        KIND_COMMAND => EntryKind::Command,
                        KIND_NOOP => EntryKind::Noop,
                        KIND_MEMBERSHIP => EntryKind::Membership,
                        _ => return None,
                    };
                    let len = take_u32(&mut body)? as usize;
                    let data = Bytes::copy_from_slice(take(&mut body, len)?);
                    entries.push(Entry {
                        index,
                        term,
                        kind,
                        data,
                    });
                    index = index.next();
                }
                Persist::Entries(entries)
            }
            TAG_TRUNCATE => Persist::TruncateLog {
                from: LogIndex(take_u64(&mut body)?),
            },
            TAG_SNAPSHOT => {
                let index = LogIndex(take_u64(&mut body)?);
                let term = Term(take_u64(&mut body)?);
                let len = take_u32(&mut body)? as usize;
                let membership = wire::decode_membership(take(&mut body, len)?).ok()?;
                let len = take_u32(&mut body)? as usize;
                let data = Bytes::copy_from_slice(take(&mut body, len)?);
                Persist::Snapshot(Snapshot {
                    index,
                    term,
                    membership,
                    data,
                })
            }
            _ => return None,
        };
        writes.push(write);
    }
    Some(writes)
}

fn take<'a>(body: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    if body.len() < len {
        return None;
    }
    let (taken, rest) = body.split_at(len);
    *body = rest;
    Some(taken)
}

fn take_u32(body: &mut &[u8]) -> Option<u32> {
    Some(u32_at(take(body, 4)?, 0))
}

fn take_u64(body: &mut &[u8]) -> Option<u64> {
    Some(u64_at(take(body, 8)?, 0))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
}

//! The records a [`FlashStorage`](super::FlashStorage) keeps, as bytes.
//!
//! A record is one write the node asked for, or one of the two marks
//! that open and close a checkpoint. Its first byte says which; integers
//! are little-endian and of fixed width (simple to check, and the flash
//! has room). Entry payloads decoded from a record share the record's
//! buffer rather than being copied out of it.

use alloc::vec::Vec;

use bytes::Bytes;
use kontiki::{wire, Entry, EntryKind, HardState, LogIndex, NodeId, Persist, Snapshot, Term};

/// Record kinds, the first byte. Never reuse a retired one.
mod kind {
    pub(super) const CHECKPOINT_BEGIN: u8 = 1;
    pub(super) const CHECKPOINT_END: u8 = 2;
    pub(super) const HARD_STATE: u8 = 3;
    pub(super) const ENTRIES: u8 = 4;
    pub(super) const TRUNCATE: u8 = 5;
    pub(super) const SNAPSHOT: u8 = 6;
}

/// Entry kinds inside an entries record.
mod entry_kind {
    pub(super) const COMMAND: u8 = 0;
    pub(super) const NOOP: u8 = 1;
    pub(super) const MEMBERSHIP: u8 = 2;
}

/// One record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// The first record of a half: a checkpoint of this generation
    /// follows.
    CheckpointBegin { generation: u32 },
    /// The checkpoint is whole; the records after it are writes.
    CheckpointEnd,
    /// A write the node asked for (in a checkpoint: a piece of the state).
    Write(Persist),
}

/// Appends the bytes of `record` to `out`.
#[cfg(test)]
fn encode(record: &Record, out: &mut Vec<u8>) {
    match record {
        Record::CheckpointBegin { generation } => encode_checkpoint_begin(*generation, out),
        Record::CheckpointEnd => encode_checkpoint_end(out),
        Record::Write(write) => encode_write(write, out),
    }
}

/// Appends the mark that opens a checkpoint of `generation`.
pub(crate) fn encode_checkpoint_begin(generation: u32, out: &mut Vec<u8>) {
    out.push(kind::CHECKPOINT_BEGIN);
    out.extend_from_slice(&generation.to_le_bytes());
}

/// Appends the mark that closes a checkpoint.
pub(crate) fn encode_checkpoint_end(out: &mut Vec<u8>) {
    out.push(kind::CHECKPOINT_END);
}

/// Appends the bytes of one write.
pub(crate) fn encode_write(write: &Persist, out: &mut Vec<u8>) {
    match write {
        Persist::HardState(hard_state) => encode_hard_state(*hard_state, out),
        Persist::Entries(entries) => encode_entries(entries, out),
        Persist::TruncateLog { from } => {
            out.push(kind::TRUNCATE);
            put_u64(out, from.get());
        }
        Persist::Snapshot(snapshot) => encode_snapshot(snapshot, out),
    }
}

/// Appends a hard state record.
pub(crate) fn encode_hard_state(hard_state: HardState, out: &mut Vec<u8>) {
    out.push(kind::HARD_STATE);
    put_u64(out, hard_state.term.get());
    put_optional(out, hard_state.voted_for.map(NodeId::get));
    put_optional(out, hard_state.log_lost_at_term.map(Term::get));
}

/// Appends a record of `entries`, which continue the log in order.
pub(crate) fn encode_entries(entries: &[Entry], out: &mut Vec<u8>) {
    out.push(kind::ENTRIES);
    put_len(out, entries.len());
    for entry in entries {
        put_u64(out, entry.index.get());
        put_u64(out, entry.term.get());
        out.push(match entry.kind {
            EntryKind::Noop => entry_kind::NOOP,
            EntryKind::Membership => entry_kind::MEMBERSHIP,
            _ => entry_kind::COMMAND,
        });
        put_len(out, entry.data.len());
        out.extend_from_slice(&entry.data);
    }
}

/// Appends a snapshot record.
pub(crate) fn encode_snapshot(snapshot: &Snapshot, out: &mut Vec<u8>) {
    out.push(kind::SNAPSHOT);
    put_u64(out, snapshot.index.get());
    put_u64(out, snapshot.term.get());
    put_len(out, wire::membership_encoded_len(&snapshot.membership));
    wire::encode_membership(&snapshot.membership, out);
    put_len(out, snapshot.data.len());
    out.extend_from_slice(&snapshot.data);
}

/// The bytes an entries record of these entries takes.
pub(crate) fn entries_len(entries: &[Entry]) -> usize {
    5 + entries.iter().map(entry_len).sum::<usize>()
}

/// The bytes one entry adds to an entries record.
pub(crate) fn entry_len(entry: &Entry) -> usize {
    ENTRY_HEADER_BYTES + entry.data.len()
}

/// An entry's fixed fields: index, term, kind and payload length.
const ENTRY_HEADER_BYTES: usize = 8 + 8 + 1 + 4;

/// The record in `bytes`, or `None` if they are not one (an unknown kind,
/// a field cut short, bytes left over).
pub(crate) fn decode(bytes: &Bytes) -> Option<Record> {
    let mut reader = Reader { bytes, at: 0 };
    let record = match reader.u8()? {
        kind::CHECKPOINT_BEGIN => Record::CheckpointBegin {
            generation: reader.u32()?,
        },
        kind::CHECKPOINT_END => Record::CheckpointEnd,
        kind::HARD_STATE => Record::Write(Persist::HardState(HardState {
            term: Term(reader.u64()?),
            voted_for: reader.optional()?.map(NodeId),
            log_lost_at_term: reader.optional()?.map(Term),
        })),
        kind::ENTRIES => {
            let count = reader.u32()? as usize;
            // Each entry takes at least its header: a count the bytes
            // cannot hold is refused before anything is reserved for it.
            if count > reader.remaining() / ENTRY_HEADER_BYTES {
                return None;
            }
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                entries.push(reader.entry()?);
            }
            Record::Write(Persist::Entries(entries))
        }
        kind::TRUNCATE => Record::Write(Persist::TruncateLog {
            from: LogIndex(reader.u64()?),
        }),
        kind::SNAPSHOT => {
            let index = LogIndex(reader.u64()?);
            let term = Term(reader.u64()?);
            let membership_len = reader.u32()? as usize;
            let membership = wire::decode_membership(reader.take(membership_len)?).ok()?;
            let len = reader.u32()? as usize;
            let data = reader.shared(len)?;
            Record::Write(Persist::Snapshot(Snapshot {
                index,
                term,
                membership,
                data,
            }))
        }
        _ => return None,
    };
    (reader.remaining() == 0).then_some(record)
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// A length as four bytes. Nothing a node on a microcontroller persists
/// comes near 4 GiB; a length past that is cut, and the record then fails
/// to decode rather than decoding as something else.
fn put_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
}

/// `[0]`, or `[1][value]`.
fn put_optional(out: &mut Vec<u8>, value: Option<u64>) {
    out.push(u8::from(value.is_some()));
    put_u64(out, value.unwrap_or(0));
}

/// Reads fields off a record, refusing to read past its end.
struct Reader<'a> {
    bytes: &'a Bytes,
    at: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, len: usize) -> Option<&[u8]> {
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Some(taken)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn optional(&mut self) -> Option<Option<u64>> {
        let present = self.u8()?;
        let value = self.u64()?;
        match present {
            0 => Some(None),
            1 => Some(Some(value)),
            _ => None,
        }
    }

    fn entry(&mut self) -> Option<Entry> {
        let index = LogIndex(self.u64()?);
        let term = Term(self.u64()?);
        let kind = match self.u8()? {
            entry_kind::COMMAND => EntryKind::Command,
            entry_kind::NOOP => EntryKind::Noop,
            entry_kind::MEMBERSHIP => EntryKind::Membership,
            _ => return None,
        };
        let len = self.u32()? as usize;
        Some(Entry {
            index,
            term,
            kind,
            data: self.shared(len)?,
        })
    }

    /// The next `len` bytes, sharing the record's buffer.
    fn shared(&mut self, len: usize) -> Option<Bytes> {
        let start = self.at;
        self.take(len)?;
        Some(self.bytes.slice(start..start + len))
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use kontiki::Membership;

    use super::*;

    fn round_trip(record: Record) {
        let mut bytes = Vec::new();
        encode(&record, &mut bytes);
        let bytes = Bytes::from(bytes);
        assert_eq!(decode(&bytes), Some(record));
        // Every shorter prefix, and the record with a byte more, is refused.
        for len in 0..bytes.len() {
            assert_eq!(decode(&bytes.slice(..len)), None, "a prefix of {len} bytes");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(decode(&Bytes::from(longer)), None);
    }

    #[test]
    fn every_record_reads_back_as_written() {
        round_trip(Record::CheckpointBegin { generation: 7 });
        round_trip(Record::CheckpointEnd);
        round_trip(Record::Write(Persist::HardState(HardState {
            term: Term(9),
            voted_for: Some(NodeId(3)),
            log_lost_at_term: Some(Term(4)),
        })));
        round_trip(Record::Write(Persist::HardState(HardState::default())));
        let entries = vec![
            Entry::command(LogIndex(5), Term(2), vec![1, 2, 3]),
            Entry {
                index: LogIndex(6),
                term: Term(2),
                kind: EntryKind::Noop,
                data: Bytes::new(),
            },
        ];
        let mut bytes = Vec::new();
        encode(
            &Record::Write(Persist::Entries(entries.clone())),
            &mut bytes,
        );
        assert_eq!(bytes.len(), entries_len(&entries));
        round_trip(Record::Write(Persist::Entries(entries)));
        round_trip(Record::Write(Persist::TruncateLog { from: LogIndex(4) }));
        round_trip(Record::Write(Persist::Snapshot(Snapshot {
            index: LogIndex(40),
            term: Term(3),
            membership: Membership::default(),
            data: Bytes::from_static(b"the state machine"),
        })));
    }

    #[test]
    fn a_count_the_bytes_cannot_hold_is_refused() {
        let mut bytes = vec![kind::ENTRIES];
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&Bytes::from(bytes)), None);
    }
}

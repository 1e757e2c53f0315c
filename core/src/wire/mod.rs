//! The wire format: how a [`Message`] becomes bytes and back.
//!
//! Hand-written rather than derived (see `WIRE.md` at the repository root
//! for the layout and the reasons): every message starts with a format
//! version and a type tag, integers are LEB128 varints, and the decoder is
//! strict — it accepts exactly the bytes the encoder produces, takes any
//! byte slice without panicking, and allocates nothing but the entry list
//! of an append and the member lists of a snapshot's membership, each
//! bounded by the bytes that justify it.
//!
//! Framing (where one message ends on a stream) is the transport's job; a
//! transport hands [`decode`] one whole frame, or [`decode_shared`] a frame
//! it holds as [`Bytes`], whose entries then share the frame's memory
//! instead of being copied out of it.

use alloc::vec::Vec;

use bytes::Bytes;

use crate::entry::{Entry, EntryKind, Snapshot};
use crate::message::{
    AppendEntries, AppendEntriesResponse, InstallSnapshot, LeadershipCheck,
    LeadershipCheckResponse, Message, RequestVote, RequestVoteResponse, TimeoutNow,
};
use crate::types::{LogIndex, Term};

mod codec;
mod membership;

use codec::{put_varint, varint_len, Reader};
pub use codec::{DecodeError, MAX_MESSAGE_LEN, WIRE_VERSION};

pub(crate) use membership::entry_membership;
pub use membership::{decode_membership, encode_membership, membership_encoded_len};

/// Type tags, one per message type. Never reuse a retired tag.
mod tag {
    pub(super) const REQUEST_VOTE: u8 = 1;
    pub(super) const REQUEST_VOTE_RESPONSE: u8 = 2;
    pub(super) const APPEND_ENTRIES: u8 = 3;
    pub(super) const APPEND_ENTRIES_RESPONSE: u8 = 4;
    pub(super) const INSTALL_SNAPSHOT: u8 = 5;
    pub(super) const LEADERSHIP_CHECK: u8 = 6;
    pub(super) const LEADERSHIP_CHECK_RESPONSE: u8 = 7;
    pub(super) const TIMEOUT_NOW: u8 = 8;
}

/// Entry kinds.
mod kind {
    pub(super) const COMMAND: u8 = 0;
    pub(super) const NOOP: u8 = 1;
    pub(super) const MEMBERSHIP: u8 = 2;
}

/// The fewest bytes one encoded entry takes (term, kind, data length).
const MIN_ENTRY_LEN: usize = 3;

/// Flag bits. Unknown bits are refused, so a later version can give them
/// meaning without old readers misreading them.
mod flag {
    pub(super) const PRE_VOTE: u8 = 0b01;
    pub(super) const TRANSFER: u8 = 0b100;
    pub(super) const GRANTED: u8 = 0b10;
    pub(super) const SUCCESS: u8 = 0b01;
}

/// Appends the encoding of `message` to `buffer`.
pub fn encode(message: &Message, buffer: &mut Vec<u8>) {
    buffer.push(WIRE_VERSION);
    match message {
        Message::RequestVote(m) => {
            buffer.push(tag::REQUEST_VOTE);
            put_varint(buffer, m.term.get());
            put_varint(buffer, m.last_log_index.get());
            put_varint(buffer, m.last_log_term.get());
            let mut flags = 0;
            if m.pre_vote {
                flags |= flag::PRE_VOTE;
            }
            if m.transfer {
                flags |= flag::TRANSFER;
            }
            buffer.push(flags);
        }
        Message::RequestVoteResponse(m) => {
            buffer.push(tag::REQUEST_VOTE_RESPONSE);
            put_varint(buffer, m.term.get());
            let mut flags = 0;
            if m.pre_vote {
                flags |= flag::PRE_VOTE;
            }
            if m.granted {
                flags |= flag::GRANTED;
            }
            buffer.push(flags);
        }
        Message::AppendEntries(m) => {
            buffer.push(tag::APPEND_ENTRIES);
            put_varint(buffer, m.term.get());
            put_varint(buffer, m.prev_log_index.get());
            put_varint(buffer, m.prev_log_term.get());
            put_varint(buffer, m.leader_commit.get());
            put_varint(buffer, m.entries.len() as u64);
            for entry in &m.entries {
                // The index is implied: prev_log_index + 1 + position.
                put_varint(buffer, entry.term.get());
                buffer.push(match entry.kind {
                    EntryKind::Command => kind::COMMAND,
                    EntryKind::Noop => kind::NOOP,
                    EntryKind::Membership => kind::MEMBERSHIP,
                });
                put_varint(buffer, entry.data.len() as u64);
                buffer.extend_from_slice(&entry.data);
            }
        }
        Message::AppendEntriesResponse(m) => {
            buffer.push(tag::APPEND_ENTRIES_RESPONSE);
            put_varint(buffer, m.term.get());
            buffer.push(if m.success { flag::SUCCESS } else { 0 });
            put_varint(buffer, m.index.get());
            put_varint(buffer, m.conflict_term.get());
        }
        Message::InstallSnapshot(m) => {
            buffer.push(tag::INSTALL_SNAPSHOT);
            put_varint(buffer, m.term.get());
            put_varint(buffer, m.snapshot.index.get());
            put_varint(buffer, m.snapshot.term.get());
            encode_membership(&m.snapshot.membership, buffer);
            put_varint(buffer, m.snapshot.data.len() as u64);
            buffer.extend_from_slice(&m.snapshot.data);
        }
        Message::LeadershipCheck(m) => {
            buffer.push(tag::LEADERSHIP_CHECK);
            put_varint(buffer, m.term.get());
            put_varint(buffer, m.round);
        }
        Message::LeadershipCheckResponse(m) => {
            buffer.push(tag::LEADERSHIP_CHECK_RESPONSE);
            put_varint(buffer, m.term.get());
            put_varint(buffer, m.round);
        }
        Message::TimeoutNow(m) => {
            buffer.push(tag::TIMEOUT_NOW);
            put_varint(buffer, m.term.get());
        }
    }
}

/// The number of bytes [`encode`] writes for `message`.
#[must_use]
pub fn encoded_len(message: &Message) -> usize {
    // Version and tag, then the fields.
    2 + match message {
        Message::RequestVote(m) => {
            varint_len(m.term.get())
                + varint_len(m.last_log_index.get())
                + varint_len(m.last_log_term.get())
                + 1
        }
        Message::RequestVoteResponse(m) => varint_len(m.term.get()) + 1,
        Message::TimeoutNow(m) => varint_len(m.term.get()),
        Message::AppendEntries(m) => {
            varint_len(m.term.get())
                + varint_len(m.prev_log_index.get())
                + varint_len(m.prev_log_term.get())
                + varint_len(m.leader_commit.get())
                + varint_len(m.entries.len() as u64)
                + m.entries.iter().map(entry_encoded_len).sum::<usize>()
        }
        Message::AppendEntriesResponse(m) => {
            varint_len(m.term.get())
                + 1
                + varint_len(m.index.get())
                + varint_len(m.conflict_term.get())
        }
        Message::InstallSnapshot(m) => {
            varint_len(m.term.get())
                + varint_len(m.snapshot.index.get())
                + varint_len(m.snapshot.term.get())
                + membership_encoded_len(&m.snapshot.membership)
                + varint_len(m.snapshot.data.len() as u64)
                + m.snapshot.data.len()
        }
        Message::LeadershipCheck(LeadershipCheck { term, round })
        | Message::LeadershipCheckResponse(LeadershipCheckResponse { term, round }) => {
            varint_len(term.get()) + varint_len(*round)
        }
    }
}

/// The bytes one entry takes inside an AppendEntries (its index is
/// implied). Also a fair measure of an entry's persisted size.
#[must_use]
pub fn entry_encoded_len(entry: &Entry) -> usize {
    varint_len(entry.term.get()) + 1 + varint_len(entry.data.len() as u64) + entry.data.len()
}

/// Decodes one message from exactly `bytes`.
///
/// Accepts any input: malformed bytes give an error, never a panic. The
/// result is only well-formed; whether its fields make sense is checked by
/// [`Node::handle`](crate::Node::handle) (see [`Message::validate`]).
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    decode_from(Reader { bytes, frame: None })
}

/// Decodes one message from exactly `frame`, as [`decode`] does, but
/// without copying entry payloads: each entry's data is a slice of `frame`
/// (which stays allocated while any entry refers to it).
pub fn decode_shared(frame: &Bytes) -> Result<Message, DecodeError> {
    decode_from(Reader {
        bytes: frame,
        frame: Some(frame),
    })
}

fn decode_from(mut reader: Reader<'_>) -> Result<Message, DecodeError> {
    if reader.bytes.len() > MAX_MESSAGE_LEN {
        return Err(DecodeError::TooLong);
    }
    let version = reader.byte()?;
    if version != WIRE_VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let message = match reader.byte()? {
        tag::REQUEST_VOTE => {
            let term = Term(reader.varint()?);
            let last_log_index = LogIndex(reader.varint()?);
            let last_log_term = Term(reader.varint()?);
            let flags = reader.flags(flag::PRE_VOTE | flag::TRANSFER)?;
            Message::RequestVote(RequestVote {
                term,
                last_log_index,
                last_log_term,
                pre_vote: flags & flag::PRE_VOTE != 0,
                transfer: flags & flag::TRANSFER != 0,
            })
        }
        tag::REQUEST_VOTE_RESPONSE => {
            let term = Term(reader.varint()?);
            let flags = reader.flags(flag::PRE_VOTE | flag::GRANTED)?;
            Message::RequestVoteResponse(RequestVoteResponse {
                term,
                granted: flags & flag::GRANTED != 0,
                pre_vote: flags & flag::PRE_VOTE != 0,
            })
        }
        tag::APPEND_ENTRIES => {
            let term = Term(reader.varint()?);
            let prev_log_index = LogIndex(reader.varint()?);
            let prev_log_term = Term(reader.varint()?);
            let leader_commit = LogIndex(reader.varint()?);
            let entries = reader.entries(prev_log_index)?;
            Message::AppendEntries(AppendEntries {
                term,
                prev_log_index,
                prev_log_term,
                leader_commit,
                entries,
            })
        }
        tag::APPEND_ENTRIES_RESPONSE => {
            let term = Term(reader.varint()?);
            let flags = reader.flags(flag::SUCCESS)?;
            Message::AppendEntriesResponse(AppendEntriesResponse {
                term,
                success: flags & flag::SUCCESS != 0,
                index: LogIndex(reader.varint()?),
                conflict_term: Term(reader.varint()?),
            })
        }
        tag::INSTALL_SNAPSHOT => {
            let term = Term(reader.varint()?);
            let index = LogIndex(reader.varint()?);
            let snapshot_term = Term(reader.varint()?);
            let membership = reader.membership()?;
            let data = reader.payload()?;
            Message::InstallSnapshot(InstallSnapshot {
                term,
                snapshot: Snapshot {
                    index,
                    term: snapshot_term,
                    membership,
                    data,
                },
            })
        }
        tag::LEADERSHIP_CHECK => Message::LeadershipCheck(LeadershipCheck {
            term: Term(reader.varint()?),
            round: reader.varint()?,
        }),
        tag::LEADERSHIP_CHECK_RESPONSE => {
            Message::LeadershipCheckResponse(LeadershipCheckResponse {
                term: Term(reader.varint()?),
                round: reader.varint()?,
            })
        }
        tag::TIMEOUT_NOW => Message::TimeoutNow(TimeoutNow {
            term: Term(reader.varint()?),
        }),
        unknown => return Err(DecodeError::UnknownMessageType(unknown)),
    };
    if !reader.bytes.is_empty() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(message)
}

impl Reader<'_> {
    /// A count of entries and the entries, indexed from `prev + 1`. Every
    /// length is checked against the bytes left before memory is reserved.
    fn entries(&mut self, prev: LogIndex) -> Result<Vec<Entry>, DecodeError> {
        let count = self.varint()?;
        if count > (self.bytes.len() / MIN_ENTRY_LEN) as u64 {
            return Err(DecodeError::Truncated);
        }
        let mut entries = Vec::with_capacity(count as usize);
        let mut index = prev;
        for _ in 0..count {
            index = LogIndex(
                index
                    .get()
                    .checked_add(1)
                    .ok_or(DecodeError::IndexOverflow)?,
            );
            let term = Term(self.varint()?);
            let kind = match self.byte()? {
                kind::COMMAND => EntryKind::Command,
                kind::NOOP => EntryKind::Noop,
                kind::MEMBERSHIP => EntryKind::Membership,
                unknown => return Err(DecodeError::UnknownEntryKind(unknown)),
            };
            let data = self.payload()?;
            entries.push(Entry {
                index,
                term,
                kind,
                data,
            });
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    use crate::membership::Membership;
    use crate::types::NodeId;

    fn three_voters() -> Membership {
        Membership::with_voters(&[NodeId(1), NodeId(2), NodeId(3)]).expect("valid")
    }

    fn round_trip(message: Message) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode(&message, &mut bytes);
        assert_eq!(bytes.len(), encoded_len(&message), "{message:?}");
        assert_eq!(decode(&bytes), Ok(message.clone()));
        assert_eq!(decode_shared(&Bytes::from(bytes.clone())), Ok(message));
        bytes
    }

    #[test]
    fn shared_decoding_points_entries_into_the_frame() {
        let message = Message::AppendEntries(AppendEntries {
            term: Term(2),
            prev_log_index: LogIndex(0),
            prev_log_term: Term(0),
            leader_commit: LogIndex(0),
            entries: vec![
                Entry::command(LogIndex(1), Term(2), vec![7; 100]),
                Entry::noop(LogIndex(2), Term(2)),
            ],
        });
        let frame = Bytes::from(round_trip(message));
        let Ok(Message::AppendEntries(append)) = decode_shared(&frame) else {
            panic!("the frame decodes to an append");
        };
        let frame_range = frame.as_ptr_range();
        assert!(frame_range.contains(&append.entries[0].data.as_ptr()));
        assert!(append.entries[1].data.is_empty());
    }

    #[test]
    fn every_message_type_round_trips() {
        for term in [1, 127, 128, 300, u64::MAX] {
            for index in [0, 1, 1 << 35, u64::MAX] {
                for flag in [false, true] {
                    round_trip(Message::RequestVote(RequestVote {
                        term: Term(term),
                        last_log_index: LogIndex(index),
                        last_log_term: Term(term / 2),
                        pre_vote: flag,
                        transfer: !flag,
                    }));
                    round_trip(Message::TimeoutNow(TimeoutNow { term: Term(term) }));
                    round_trip(Message::RequestVoteResponse(RequestVoteResponse {
                        term: Term(term),
                        granted: flag,
                        pre_vote: !flag,
                    }));
                    let entries = if flag && index < u64::MAX - 2 {
                        vec![
                            Entry::noop(LogIndex(index + 1), Term(term)),
                            Entry::command(LogIndex(index + 2), Term(term), vec![7; 200]),
                        ]
                    } else {
                        Vec::new()
                    };
                    round_trip(Message::AppendEntries(AppendEntries {
                        term: Term(term),
                        prev_log_index: LogIndex(index),
                        prev_log_term: Term(term),
                        leader_commit: LogIndex(index / 3),
                        entries,
                    }));
                    round_trip(Message::AppendEntriesResponse(AppendEntriesResponse {
                        term: Term(term),
                        success: flag,
                        index: LogIndex(index),
                        conflict_term: Term(term / 2),
                    }));
                    round_trip(Message::InstallSnapshot(InstallSnapshot {
                        term: Term(term),
                        snapshot: Snapshot {
                            index: LogIndex(index),
                            term: Term(term / 3),
                            membership: three_voters(),
                            data: if flag {
                                vec![9; 300].into()
                            } else {
                                Bytes::new()
                            },
                        },
                    }));
                }
            }
        }
    }

    #[test]
    fn leadership_checks_carry_term_and_round() {
        for term in [1, 300, u64::MAX] {
            for round in [1, 128, u64::MAX] {
                round_trip(Message::LeadershipCheck(LeadershipCheck {
                    term: Term(term),
                    round,
                }));
                round_trip(Message::LeadershipCheckResponse(LeadershipCheckResponse {
                    term: Term(term),
                    round,
                }));
            }
        }
        let check = round_trip(Message::LeadershipCheck(LeadershipCheck {
            term: Term(3),
            round: 300,
        }));
        assert_eq!(check, vec![2, 6, 3, 0xac, 0x02]);
        let answer = round_trip(Message::LeadershipCheckResponse(LeadershipCheckResponse {
            term: Term(3),
            round: 1,
        }));
        assert_eq!(answer, vec![2, 7, 3, 1]);
    }

    #[test]
    fn a_heartbeat_is_seven_bytes_in_a_young_cluster() {
        let bytes = round_trip(Message::AppendEntries(AppendEntries {
            term: Term(3),
            prev_log_index: LogIndex(0),
            prev_log_term: Term(0),
            leader_commit: LogIndex(0),
            entries: Vec::new(),
        }));
        assert_eq!(
            bytes,
            vec![WIRE_VERSION, tag::APPEND_ENTRIES, 3, 0, 0, 0, 0]
        );
    }

    #[test]
    fn entries_carry_term_kind_and_data_with_implied_indices() {
        let bytes = round_trip(Message::AppendEntries(AppendEntries {
            term: Term(2),
            prev_log_index: LogIndex(5),
            prev_log_term: Term(1),
            leader_commit: LogIndex(4),
            entries: vec![
                Entry::noop(LogIndex(6), Term(2)),
                Entry::command(LogIndex(7), Term(2), vec![0xaa, 0xbb]),
            ],
        }));
        assert_eq!(
            bytes,
            vec![2, 3, 2, 5, 1, 4, 2, 2, 1, 0, 2, 0, 2, 0xaa, 0xbb]
        );
    }

    #[test]
    fn an_entry_count_beyond_the_input_is_refused_before_allocating() {
        // Claims 2^63 entries in a few bytes.
        let mut bytes = vec![2, 3, 2, 0, 0, 0];
        bytes.extend([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
        assert_eq!(decode(&bytes), Err(DecodeError::Truncated));
        // A data length beyond the input.
        assert_eq!(
            decode(&[2, 3, 2, 0, 0, 0, 1, 2, 0, 50, 1]),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            decode(&[2, 3, 2, 0, 0, 0, 1, 2, 9, 0]),
            Err(DecodeError::UnknownEntryKind(9))
        );
    }

    #[test]
    fn varints_are_leb128() {
        let bytes = round_trip(Message::AppendEntriesResponse(AppendEntriesResponse {
            term: Term(300),
            success: true,
            index: LogIndex(1),
            conflict_term: Term(0),
        }));
        assert_eq!(bytes, vec![2, 4, 0xac, 0x02, 1, 1, 0]);
    }

    #[test]
    fn every_truncation_is_refused() {
        let messages = [
            Message::RequestVote(RequestVote {
                term: Term(1 << 40),
                last_log_index: LogIndex(99),
                last_log_term: Term(7),
                pre_vote: true,
                transfer: false,
            }),
            Message::InstallSnapshot(InstallSnapshot {
                term: Term(4),
                snapshot: Snapshot {
                    index: LogIndex(1000),
                    term: Term(3),
                    membership: three_voters(),
                    data: Bytes::from_static(b"state"),
                },
            }),
        ];
        for message in messages {
            let mut bytes = Vec::new();
            encode(&message, &mut bytes);
            for end in 0..bytes.len() {
                assert_eq!(
                    decode(&bytes[..end]),
                    Err(DecodeError::Truncated),
                    "cut {message:?} at {end}"
                );
            }
        }
    }

    #[test]
    fn a_snapshot_is_laid_out_as_documented() {
        let bytes = round_trip(Message::InstallSnapshot(InstallSnapshot {
            term: Term(4),
            snapshot: Snapshot {
                index: LogIndex(300),
                term: Term(3),
                membership: three_voters(),
                data: Bytes::from_static(b"ab"),
            },
        }));
        assert_eq!(
            bytes,
            vec![2, 5, 4, 0xac, 0x02, 3, 0, 3, 1, 2, 3, 0, 0, 0, 2, b'a', b'b']
        );
    }

    #[test]
    fn malformed_input_is_refused_with_a_reason() {
        assert_eq!(
            decode(&[1, 4, 1, 0]),
            Err(DecodeError::UnsupportedVersion(1))
        );
        assert_eq!(
            decode(&[2, 9, 1, 0]),
            Err(DecodeError::UnknownMessageType(9))
        );
        assert_eq!(
            decode(&[2, 4, 1, 0b10, 0, 0]),
            Err(DecodeError::UnknownFlags(0b10))
        );
        assert_eq!(
            decode(&[2, 4, 1, 0, 0, 0, 0]),
            Err(DecodeError::TrailingBytes)
        );
        // Padded varint (1 written in two bytes).
        assert_eq!(
            decode(&[2, 4, 0x81, 0x00, 0, 0, 0]),
            Err(DecodeError::BadVarint)
        );
        // Eleven-byte varint.
        let mut long = vec![2, 4];
        long.extend([0xff; 10]);
        long.push(0x01);
        assert_eq!(decode(&long), Err(DecodeError::BadVarint));
        // Ten bytes whose last overflows a u64.
        let mut overflow = vec![2, 4];
        overflow.extend([0xff; 9]);
        overflow.push(0x02);
        overflow.push(0);
        assert_eq!(decode(&overflow), Err(DecodeError::BadVarint));
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let huge = vec![0u8; MAX_MESSAGE_LEN + 1];
        assert_eq!(decode(&huge), Err(DecodeError::TooLong));
    }
}

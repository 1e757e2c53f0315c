//! The primitives of the encoding: varints, a strict reader over a byte
//! slice, and the error every decoder reports.

use alloc::vec::Vec;
use core::fmt;

use bytes::Bytes;

/// The format version this build writes, and the only one it reads.
/// Version 2 added membership entries and the membership in an
/// InstallSnapshot.
pub const WIRE_VERSION: u8 = 2;

/// The longest encoding [`decode`](super::decode) accepts. Transports should refuse
/// frames above this before reading them into memory.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;

/// Why bytes could not be decoded into a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a message.
    Truncated,
    /// The input is longer than [`MAX_MESSAGE_LEN`].
    TooLong,
    /// The format version is not one this build reads.
    UnsupportedVersion(u8),
    /// The type tag names no known message.
    UnknownMessageType(u8),
    /// A varint is longer than ten bytes, overflows a `u64`, or is not in
    /// its shortest form.
    BadVarint,
    /// A flags byte has bits set that this version does not define.
    UnknownFlags(u8),
    /// Bytes remain after the message.
    TrailingBytes,
    /// An entry kind this version does not define.
    UnknownEntryKind(u8),
    /// Entry indices would pass `u64::MAX`.
    IndexOverflow,
    /// A membership breaks one of its rules (see
    /// [`Membership`](crate::Membership)): ids out of order or repeated, a
    /// learner that votes, an address of a non-member, ...
    InvalidMembership,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("message is truncated"),
            DecodeError::TooLong => write!(f, "message is longer than {MAX_MESSAGE_LEN} bytes"),
            DecodeError::UnsupportedVersion(version) => {
                write!(f, "wire format version {version} is not supported (this build reads {WIRE_VERSION})")
            }
            DecodeError::UnknownMessageType(tag) => write!(f, "unknown message type {tag}"),
            DecodeError::BadVarint => f.write_str("malformed varint"),
            DecodeError::UnknownFlags(flags) => write!(f, "unknown flag bits {flags:#04x}"),
            DecodeError::TrailingBytes => f.write_str("bytes remain after the message"),
            DecodeError::UnknownEntryKind(kind) => write!(f, "unknown entry kind {kind}"),
            DecodeError::IndexOverflow => f.write_str("entry indices overflow"),
            DecodeError::InvalidMembership => f.write_str("the membership is not well-formed"),
        }
    }
}

impl core::error::Error for DecodeError {}
pub(super) fn put_varint(buffer: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buffer.push((value as u8) | 0x80);
        value >>= 7;
    }
    buffer.push(value as u8);
}

pub(super) fn varint_len(value: u64) -> usize {
    // One byte per started group of seven significant bits.
    let significant_bits = 64 - (value | 1).leading_zeros() as usize;
    significant_bits.div_ceil(7)
}

pub(super) struct Reader<'a> {
    /// What is left to read.
    pub(super) bytes: &'a [u8],
    /// The whole input, when payloads may be slices of it.
    pub(super) frame: Option<&'a Bytes>,
}

impl Reader<'_> {
    pub(super) fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&first, rest) = self.bytes.split_first().ok_or(DecodeError::Truncated)?;
        self.bytes = rest;
        Ok(first)
    }

    pub(super) fn flags(&mut self, known: u8) -> Result<u8, DecodeError> {
        let flags = self.byte()?;
        if flags & !known != 0 {
            return Err(DecodeError::UnknownFlags(flags));
        }
        Ok(flags)
    }

    /// A length and that many bytes: a slice of the frame when there is
    /// one, else a copy.
    pub(super) fn payload(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.varint()?;
        if len > self.bytes.len() as u64 {
            return Err(DecodeError::Truncated);
        }
        let (data, rest) = self.bytes.split_at(len as usize);
        self.bytes = rest;
        Ok(match self.frame {
            Some(frame) => frame.slice_ref(data),
            None => Bytes::copy_from_slice(data),
        })
    }

    /// A LEB128 `u64` in its shortest form.
    pub(super) fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for position in 0..10 {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            // The tenth byte may only carry the top bit of a u64.
            if position == 9 && bits > 1 {
                return Err(DecodeError::BadVarint);
            }
            value |= bits << (7 * position);
            if byte & 0x80 == 0 {
                // A zero final byte after others is a padded, non-shortest form.
                if byte == 0 && position > 0 {
                    return Err(DecodeError::BadVarint);
                }
                return Ok(value);
            }
        }
        Err(DecodeError::BadVarint)
    }
}

//! Frames on a raw byte stream (a UART): where one ends, and whether it
//! arrived intact.
//!
//! On the line a frame is `0x00`, then its body and the body's CRC-32
//! (IEEE, 4 bytes big-endian) COBS-encoded — so they contain no `0x00` —
//! then `0x00`. The zero bytes delimit frames: after any noise (a byte
//! lost, flipped or inserted) the receiver is back in step at the next
//! zero, and the leading zero ends whatever garbage came before the frame.
//! A frame that fails to decode, fails its checksum, or grows past the
//! receiver's limit is dropped and counted, never handed on. (A CRC-32
//! lets through one random corruption in about four billion; the message
//! format's own checks stand behind it.)

use alloc::vec::Vec;

/// What a receiver has seen, frame by frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames received whole and intact.
    pub frames: u64,
    /// Frames dropped: not valid COBS, shorter than a checksum, or a
    /// checksum that does not match (line noise, or a frame cut short).
    pub corrupt: u64,
    /// Frames dropped for growing past the receiver's limit.
    pub oversized: u64,
    /// Intact frames whose contents did not decode (an unknown format,
    /// or a malformed message).
    pub malformed: u64,
}

/// The bytes of a checksum.
const CRC_BYTES: usize = 4;

/// CRC-32 (IEEE), with one 1 KiB table: a microcontroller's flash has no
/// room for the 16 KiB of tables a faster one uses.
const CRC: crc::Crc<u32, crc::Table<1>> =
    crc::Crc::<u32, crc::Table<1>>::new(&crc::CRC_32_ISO_HDLC);

/// Appends the frame carrying `body` to `out`, as it goes on the line.
pub fn encode(body: &[u8], out: &mut Vec<u8>) {
    let crc = CRC.checksum(body).to_be_bytes();
    let room = cobs::max_encoding_length(body.len() + CRC_BYTES);
    out.push(0);
    let start = out.len();
    out.resize(start + room, 0);
    let mut encoder = cobs::CobsEncoder::new(&mut out[start..]);
    // The room is COBS's bound for these bytes: neither push can run out.
    let pushed = encoder.push(body).and_then(|()| encoder.push(&crc));
    debug_assert!(pushed.is_ok());
    let encoded = encoder.finalize();
    out.truncate(start + encoded);
    out.push(0);
    debug_assert!(out[start..start + encoded].iter().all(|&byte| byte != 0));
}

/// Finds frames in the bytes of a line, one byte at a time.
#[derive(Debug)]
pub struct Decoder {
    /// The current frame's bytes, still encoded.
    buffer: Vec<u8>,
    /// The most encoded bytes a frame may take.
    max_encoded: usize,
    /// The current frame passed the limit: skip to the next zero.
    overflowed: bool,
    /// The buffer holds the frame last returned: clear it first.
    returned: bool,
    stats: LinkStats,
}

impl Decoder {
    /// A decoder for frames whose bodies take at most `max_body` bytes.
    /// Its buffer is reserved up front and never grows past that.
    #[must_use]
    pub fn new(max_body: usize) -> Decoder {
        let max_encoded = cobs::max_encoding_length(max_body + CRC_BYTES);
        Decoder {
            buffer: Vec::with_capacity(max_encoded),
            max_encoded,
            overflowed: false,
            returned: false,
            stats: LinkStats::default(),
        }
    }

    /// What it has seen so far.
    #[must_use]
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Counts an intact frame whose contents were of no use.
    pub fn count_malformed(&mut self) {
        self.stats.malformed += 1;
    }

    /// Takes the next byte of the line; the body of a frame when `byte`
    /// ends one that arrived intact.
    pub fn push(&mut self, byte: u8) -> Option<&[u8]> {
        if core::mem::take(&mut self.returned) {
            self.buffer.clear();
        }
        if byte != 0 {
            if self.overflowed {
                return None;
            }
            if self.buffer.len() == self.max_encoded {
                self.overflowed = true;
                self.buffer.clear();
                return None;
            }
            self.buffer.push(byte);
            return None;
        }
        if core::mem::take(&mut self.overflowed) {
            self.stats.oversized += 1;
            return None;
        }
        if self.buffer.is_empty() {
            // Two zeros in a row: the gap between frames.
            return None;
        }
        let intact = cobs::decode_in_place(&mut self.buffer)
            .ok()
            .filter(|&length| length >= CRC_BYTES)
            .map(|length| length - CRC_BYTES)
            .filter(|&length| {
                let (body, crc) = self.buffer[..length + CRC_BYTES].split_at(length);
                CRC.checksum(body).to_be_bytes() == crc
            });
        self.returned = true;
        match intact {
            Some(length) => {
                self.stats.frames += 1;
                Some(&self.buffer[..length])
            }
            None => {
                self.stats.corrupt += 1;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::*;

    fn frames_in(decoder: &mut Decoder, line: &[u8]) -> Vec<Vec<u8>> {
        let mut found = Vec::new();
        for &byte in line {
            if let Some(body) = decoder.push(byte) {
                found.push(body.to_vec());
            }
        }
        found
    }

    #[test]
    fn frames_round_trip_whatever_their_bytes() {
        let bodies: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0, 0, 0],
            (0..=255).collect(),
            vec![7; 600],
        ];
        let mut line = Vec::new();
        for body in &bodies {
            encode(body, &mut line);
        }
        let mut decoder = Decoder::new(1024);
        assert_eq!(frames_in(&mut decoder, &line), bodies);
        assert_eq!(decoder.stats().frames, 5);
    }

    #[test]
    fn a_damaged_or_oversized_frame_is_dropped_and_the_next_one_read() {
        let mut line = Vec::new();
        encode(b"first", &mut line);
        let damaged_at = line.len() + 3;
        encode(b"second", &mut line);
        encode(&[9; 100], &mut line);
        encode(b"third", &mut line);
        line[damaged_at] ^= 0x10;
        let mut decoder = Decoder::new(50);
        let found = frames_in(&mut decoder, &line);
        assert_eq!(found, vec![b"first".to_vec(), b"third".to_vec()]);
        let stats = decoder.stats();
        assert_eq!((stats.frames, stats.corrupt, stats.oversized), (2, 1, 1));
        // Garbage without zeros, then a frame: the frame's leading zero
        // ends the garbage, which counts as one corrupt frame.
        let mut noisy = vec![0x55; 30];
        encode(b"after noise", &mut noisy);
        assert_eq!(
            frames_in(&mut decoder, &noisy),
            vec![b"after noise".to_vec()]
        );
        assert_eq!(decoder.stats().corrupt, 2);
    }
}

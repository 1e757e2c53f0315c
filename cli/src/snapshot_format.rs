//! The key-value store's snapshot: how [`Data`] is written to a stream
//! and read back.
//!
//! Integers are big-endian; a field is `length (u32), bytes`.
//!
//! ```text
//! ff ff ff ff  02            marker and layout version
//! clock (u64)                the replicated clock, ms since the Unix epoch
//! then per key, in the store's order:
//!   key (field)
//!   kind (u8)                0 string, 1 hash
//!   expires at (u64)         0: never
//!   version (u64)            the log index that last wrote it
//!   value                    string: one field; hash: count (u32), then
//!                            each field name and value (fields)
//! ```
//!
//! The first layout (before expiry and hashes) was only `key (field),
//! value (field)` per key; it is still read. No key of it can start with
//! `ff ff ff ff`, a length beyond any request the client port takes.

use std::io::{self, BufReader, BufWriter, Read, Write};

use bytes::Bytes;

use crate::data::{Data, Entry, Fields, Value};

const MARKER: [u8; 4] = [0xff; 4];
const LAYOUT: u8 = 2;
const STRING: u8 = 0;
const HASH: u8 = 1;

/// Writes the snapshot of `data` to `out`.
pub fn write(data: &Data, out: &mut dyn Write) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    out.write_all(&MARKER)?;
    out.write_all(&[LAYOUT])?;
    out.write_all(&data.clock().to_be_bytes())?;
    for (key, entry) in data.iter() {
        put_field(&mut out, key.name())?;
        let kind = match entry.value {
            Value::String(_) => STRING,
            Value::Hash(_) => HASH,
        };
        out.write_all(&[kind])?;
        out.write_all(&entry.expires_at.unwrap_or(0).to_be_bytes())?;
        out.write_all(&entry.version.to_be_bytes())?;
        match &entry.value {
            Value::String(value) => put_field(&mut out, value)?,
            Value::Hash(fields) => {
                out.write_all(&(fields.len() as u32).to_be_bytes())?;
                for (field, value) in fields {
                    put_field(&mut out, field)?;
                    put_field(&mut out, value)?;
                }
            }
        }
    }
    out.flush()
}

fn put_field(out: &mut impl Write, field: &Bytes) -> io::Result<()> {
    // Keys, fields and values are bounded by the client port's request
    // limit, far below 4 GiB.
    out.write_all(&(field.len() as u32).to_be_bytes())?;
    out.write_all(field)
}

/// Reads a snapshot written by [`write()`] (or of the first layout) from
/// `input`; `index` is the snapshot's log index, the version of every key
/// of the first layout (which kept none).
pub fn read(input: &mut dyn Read, index: u64) -> io::Result<Data> {
    let mut input = BufReader::with_capacity(64 * 1024, input);
    let Some(first) = read_length(&mut input, true)? else {
        return Ok(Data::default());
    };
    if first.to_be_bytes() != MARKER {
        return read_first_layout(&mut input, first, index);
    }
    let layout = read_array::<1>(&mut input)?[0];
    if layout != LAYOUT {
        return Err(malformed(&format!("unknown snapshot layout {layout}")));
    }
    let mut data = Data::with_clock(read_u64(&mut input)?);
    while let Some(length) = read_length(&mut input, true)? {
        let key = read_bytes(&mut input, length)?;
        let kind = read_array::<1>(&mut input)?[0];
        let expires_at = Some(read_u64(&mut input)?).filter(|at| *at != 0);
        let version = read_u64(&mut input)?;
        let value = match kind {
            STRING => Value::String(read_field(&mut input)?),
            HASH => {
                let count = read_length(&mut input, false)?.unwrap_or(0);
                let mut fields = Fields::new();
                for _ in 0..count {
                    let field = read_field(&mut input)?;
                    fields.insert(field, read_field(&mut input)?);
                }
                Value::Hash(fields)
            }
            _ => return Err(malformed(&format!("unknown value kind {kind}"))),
        };
        let entry = Entry {
            value,
            expires_at,
            version,
        };
        data.restore(key, entry);
    }
    Ok(data)
}

fn read_first_layout(input: &mut impl Read, first: u32, index: u64) -> io::Result<Data> {
    let mut data = Data::default();
    let mut length = Some(first);
    while let Some(key_length) = length {
        let key = read_bytes(input, key_length)?;
        let value = read_field(input)?;
        let entry = Entry {
            value: Value::String(value),
            expires_at: None,
            version: index,
        };
        data.restore(key, entry);
        length = read_length(input, true)?;
    }
    Ok(data)
}

fn malformed(problem: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, problem.to_owned())
}

fn cut_short() -> io::Error {
    malformed("the snapshot is cut short")
}

/// Fills `N` bytes; `None` if the input ends before the first and
/// `may_end` allows it.
fn read_exact_or_end<const N: usize>(
    input: &mut impl Read,
    may_end: bool,
) -> io::Result<Option<[u8; N]>> {
    let mut buffer = [0u8; N];
    let mut filled = 0;
    while filled < N {
        match input.read(&mut buffer[filled..])? {
            0 if filled == 0 && may_end => return Ok(None),
            0 => return Err(cut_short()),
            read => filled += read,
        }
    }
    Ok(Some(buffer))
}

fn read_array<const N: usize>(input: &mut impl Read) -> io::Result<[u8; N]> {
    read_exact_or_end(input, false)?.ok_or_else(cut_short)
}

fn read_u64(input: &mut impl Read) -> io::Result<u64> {
    Ok(u64::from_be_bytes(read_array(input)?))
}

fn read_length(input: &mut impl Read, may_end: bool) -> io::Result<Option<u32>> {
    Ok(read_exact_or_end::<4>(input, may_end)?.map(u32::from_be_bytes))
}

fn read_field(input: &mut impl Read) -> io::Result<Bytes> {
    let length = read_length(input, false)?.unwrap_or(0);
    read_bytes(input, length)
}

fn read_bytes(input: &mut impl Read, length: u32) -> io::Result<Bytes> {
    // Grown as bytes arrive, not reserved from the length: a damaged
    // length costs an error, not memory.
    let mut field = Vec::new();
    input.take(u64::from(length)).read_to_end(&mut field)?;
    if field.len() as u64 != u64::from(length) {
        return Err(cut_short());
    }
    Ok(Bytes::from(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    fn sample() -> Data {
        let mut data = Data::with_clock(5_000);
        data.begin(3, Some(6_000));
        data.put(b("s"), Value::String(b("v")), false);
        data.put(b(""), Value::String(Bytes::new()), false);
        let mut fields = Fields::new();
        fields.insert(b("f"), b("1"));
        fields.insert(b("g"), Bytes::new());
        data.begin(4, None);
        data.put(b("h"), Value::Hash(fields), false);
        data.set_expiry(&b("s"), Some(9_000));
        data
    }

    fn written(data: &Data) -> Vec<u8> {
        let mut out = Vec::new();
        write(data, &mut out).unwrap();
        out
    }

    #[test]
    fn a_snapshot_restores_the_same_data() {
        let data = sample();
        let bytes = written(&data);
        let restored = read(&mut &bytes[..], 4).unwrap();
        assert_eq!(restored, data);
        assert_eq!(restored.clock(), 6_000);
        assert_eq!(restored.next_expiry(), Some(9_000));
        assert_eq!(written(&restored), bytes, "deterministic");
        assert_eq!(read(&mut &[][..], 1).unwrap(), Data::default());
    }

    #[test]
    fn the_first_layout_is_still_read() {
        let mut old = Vec::new();
        for (key, value) in [("a", "1"), ("b", "")] {
            for field in [key, value] {
                old.extend_from_slice(&(field.len() as u32).to_be_bytes());
                old.extend_from_slice(field.as_bytes());
            }
        }
        let data = read(&mut &old[..], 42).unwrap();
        assert_eq!(data.string(&b("a")), Ok(Some(&b("1"))));
        assert_eq!(data.string(&b("b")), Ok(Some(&Bytes::new())));
        assert_eq!(data.version(&b("a")), 42);
        assert_eq!(data.len(), 2);
    }

    #[test]
    fn damaged_snapshots_are_refused_without_reserving_memory() {
        let bytes = written(&sample());
        for cut in [1, 2, 9, bytes.len() - 6] {
            let truncated = &bytes[..bytes.len() - cut];
            let error = read(&mut &truncated[..], 1).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "cut by {cut}");
        }
        let mut wrong_layout = bytes.clone();
        wrong_layout[4] = 9;
        assert!(read(&mut &wrong_layout[..], 1).is_err());
        let huge = [0xff, 0xff, 0xff, 0xf0, 1, 2, 3];
        let error = read(&mut &huge[..], 1).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}

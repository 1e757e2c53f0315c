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
//!   kind (u8)                0 string, 1 hash, 2 list, 3 set,
//!                            4 sorted set, 5 stream
//!   expires at (u64)         0: never
//!   version (u64)            the log index that last wrote it
//!   value, by kind:
//!     string                 one field
//!     hash                   count (u32), then each name and value (fields)
//!     list, set              count (u32), then each item (field)
//!     sorted set             count (u32), then each member (field) and
//!                            its score (u64, the float's bits)
//!     stream                 last id (u64 ms, u64 sequence), count (u32),
//!                            then each entry: id (u64, u64), pair count
//!                            (u32), each name and value (fields)
//! ```
//!
//! The first layout (before expiry and hashes) was only `key (field),
//! value (field)` per key; it is still read. No key of it can start with
//! `ff ff ff ff`, a length beyond any request the client port takes.

use std::io::{self, BufReader, BufWriter, Read, Write};

use bytes::Bytes;

use crate::data::{Data, Entry, Key, Score, Sorted, Stream, StreamId, Value};

const MARKER: [u8; 4] = [0xff; 4];
const LAYOUT: u8 = 2;
const STRING: u8 = 0;
const HASH: u8 = 1;
const LIST: u8 = 2;
const SET: u8 = 3;
const SORTED: u8 = 4;
const STREAM: u8 = 5;

/// Writes the snapshot of `data` to `out`.
pub fn write(data: &Data, out: &mut dyn Write) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    out.write_all(&MARKER)?;
    out.write_all(&[LAYOUT])?;
    out.write_all(&data.clock().to_be_bytes())?;
    for (key, entry) in data.iter() {
        put_field(&mut out, key.name())?;
        out.write_all(&[kind(&entry.value)])?;
        out.write_all(&entry.expires_at.unwrap_or(0).to_be_bytes())?;
        out.write_all(&entry.version.to_be_bytes())?;
        put_value(&mut out, &entry.value)?;
    }
    out.flush()
}

fn kind(value: &Value) -> u8 {
    match value {
        Value::String(_) => STRING,
        Value::Hash(_) => HASH,
        Value::List(_) => LIST,
        Value::Set(_) => SET,
        Value::Sorted(_) => SORTED,
        Value::Stream(_) => STREAM,
    }
}

fn put_count(out: &mut impl Write, count: usize) -> io::Result<()> {
    // Collections are bounded by memory far below 4 G items.
    out.write_all(&(count as u32).to_be_bytes())
}

fn put_pairs<'a>(
    out: &mut impl Write,
    count: usize,
    pairs: impl Iterator<Item = (&'a Bytes, &'a Bytes)>,
) -> io::Result<()> {
    put_count(out, count)?;
    for (name, value) in pairs {
        put_field(out, name)?;
        put_field(out, value)?;
    }
    Ok(())
}

fn put_value(out: &mut impl Write, value: &Value) -> io::Result<()> {
    match value {
        Value::String(value) => put_field(out, value),
        Value::Hash(fields) => put_pairs(out, fields.len(), fields.iter()),
        Value::List(items) => {
            put_count(out, items.len())?;
            items.iter().try_for_each(|item| put_field(out, item))
        }
        Value::Set(members) => {
            put_count(out, members.len())?;
            members
                .iter()
                .try_for_each(|member| put_field(out, member.name()))
        }
        Value::Sorted(sorted) => {
            put_count(out, sorted.len())?;
            for (member, score) in &sorted.scores {
                put_field(out, member)?;
                out.write_all(&score.0.to_bits().to_be_bytes())?;
            }
            Ok(())
        }
        Value::Stream(stream) => {
            out.write_all(&stream.last.millis.to_be_bytes())?;
            out.write_all(&stream.last.sequence.to_be_bytes())?;
            put_count(out, stream.entries.len())?;
            for (id, pairs) in &stream.entries {
                out.write_all(&id.millis.to_be_bytes())?;
                out.write_all(&id.sequence.to_be_bytes())?;
                put_pairs(out, pairs.len(), pairs.iter().map(|(n, v)| (n, v)))?;
            }
            Ok(())
        }
    }
}

fn read_value(input: &mut impl Read, kind: u8) -> io::Result<Value> {
    let value = match kind {
        STRING => Value::String(read_field(input)?),
        HASH => Value::Hash(read_pairs(input)?.into_iter().collect()),
        LIST => Value::List(Box::new(read_items(input)?.into_iter().collect())),
        SET => Value::Set(read_items(input)?.into_iter().map(Key::new).collect()),
        SORTED => {
            let mut sorted = Sorted::default();
            for _ in 0..read_count(input)? {
                let member = read_field(input)?;
                let score = f64::from_bits(read_u64(input)?);
                if score.is_nan() {
                    return Err(malformed("a sorted set's score is not a number"));
                }
                sorted.insert(member, Score(score));
            }
            Value::Sorted(Box::new(sorted))
        }
        STREAM => {
            let mut stream = Stream {
                last: read_stream_id(input)?,
                ..Stream::default()
            };
            for _ in 0..read_count(input)? {
                let id = read_stream_id(input)?;
                stream
                    .entries
                    .insert(id, read_pairs(input)?.into_iter().collect());
            }
            Value::Stream(Box::new(stream))
        }
        _ => return Err(malformed(&format!("unknown value kind {kind}"))),
    };
    Ok(value)
}

fn read_count(input: &mut impl Read) -> io::Result<u32> {
    Ok(read_length(input, false)?.unwrap_or(0))
}

fn read_items(input: &mut impl Read) -> io::Result<Vec<Bytes>> {
    // Grown as items arrive, not reserved from the count.
    let mut items = Vec::new();
    for _ in 0..read_count(input)? {
        items.push(read_field(input)?);
    }
    Ok(items)
}

fn read_pairs(input: &mut impl Read) -> io::Result<Vec<(Bytes, Bytes)>> {
    let mut pairs = Vec::new();
    for _ in 0..read_count(input)? {
        let name = read_field(input)?;
        pairs.push((name, read_field(input)?));
    }
    Ok(pairs)
}

fn read_stream_id(input: &mut impl Read) -> io::Result<StreamId> {
    Ok(StreamId {
        millis: read_u64(input)?,
        sequence: read_u64(input)?,
    })
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
        let value = read_value(&mut input, kind)?;
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
    use crate::data::Fields;

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
        let list = [b("x"), Bytes::new(), b("x")].into_iter().collect();
        data.put(b("l"), Value::List(Box::new(list)), false);
        let members = [b("m"), b("n")].into_iter().map(Key::new).collect();
        data.put(b("set"), Value::Set(members), false);
        let mut sorted = Sorted::default();
        for (member, score) in [("a", 1.5), ("b", f64::NEG_INFINITY), ("c", -0.0)] {
            sorted.insert(b(member), Score(score));
        }
        data.put(b("z"), Value::Sorted(Box::new(sorted)), false);
        let mut stream = Stream::default();
        let id = StreamId {
            millis: 7,
            sequence: 2,
        };
        stream
            .entries
            .insert(id, [(b("f"), b("v"))].into_iter().collect());
        stream.last = StreamId {
            millis: 9,
            sequence: 0,
        };
        data.put(b("x"), Value::Stream(Box::new(stream)), false);
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

//! How the store's writes are encoded in log entries.
//!
//! An entry is a tag byte, then its arguments; a key or value that is not
//! the last field is `length (u32, big-endian), bytes` (see
//! [`crate::fields`]); integers are big-endian.
//!
//! | tag | write | arguments |
//! |---|---|---|
//! | 1 | `SET` | key (prefixed), value |
//! | 2 | `DEL`, `UNLINK` | each key (prefixed) |
//! | 3 | `INCR` | key |
//! | 4 | `INCRBY`, `DECR`, `DECRBY` | amount (i64), key |
//! | 5 | `MSET` | each key and value (prefixed) |
//! | 6 | `APPEND` | key (prefixed), value |
//! | 7 | `GETDEL` | key |
//! | 8 | `SET` with options, `SETNX`, `GETSET` | flags (u8), [time (u64) if an expiry flag is set], key (prefixed), value |
//! | 9 | `FLUSHALL`, `FLUSHDB` | — |
//! | 10 | `MULTI` … `EXEC` | each command (prefixed): a write's entry, or a read's (tags from 64, see [`crate::read`]) |
//! | 11 | a stamped write | the leader's time (u64, ms since the Unix epoch), then the write's entry |
//! | 12 | `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT` | absolute (u8, 0 or 1), condition (u8, 0–5: none, NX, XX, GT, LT, XX and LT), milliseconds (i64), key |
//! | 13 | `PERSIST` | key |
//! | 14 | `HSET`, `HMSET`, `HSETNX` | mode (u8, 0–2), key (prefixed), each field and value (prefixed) |
//! | 15 | `HDEL` | key (prefixed), each field (prefixed) |
//! | 16 | `HINCRBY` | amount (i64), key (prefixed), field |
//! | 17 | a tick (the clock moves, keys due expire) | — |
//! | 18 | `WATCH` … `EXEC` | count (u32), each watched key (prefixed) and version (u64), then as tag 10 |
//! | 19 | a list, set, sorted set or stream write | as [`crate::collections`] says |
//!
//! `SET`'s flags (tag 8): 1 `NX`, 2 `XX`, 4 `GET`, 8 answer as `SETNX`,
//! 16 `KEEPTTL`, 32 expires the time after the entry's (`EX`, `PX`), 64
//! expires at the time (`EXAT`, `PXAT`).
//!
//! Every write this build proposes is stamped (tag 11); an entry without
//! a stamp (from an older build) leaves the clock where it is. A node
//! applies a tag it does not know as a no-op, so every node stays equal;
//! but a write a node skips is lost on it, so a cluster is upgraded
//! wholly before clients use the writes of tags 4 and above.

use bytes::{BufMut, Bytes, BytesMut};

use crate::collections::CollectionWrite;
use crate::fields;
use crate::read::{self, Read};
use crate::write::{ExpireAt, ExpireIf, HashSet, Op, SetExpiry, SetOptions, When, Write};

const SET: u8 = 1;
const DEL: u8 = 2;
const INCR: u8 = 3;
const INCR_BY: u8 = 4;
const MSET: u8 = 5;
const APPEND: u8 = 6;
const GET_DEL: u8 = 7;
const SET_IF: u8 = 8;
const FLUSH: u8 = 9;
const TRANSACTION: u8 = 10;
const STAMPED: u8 = 11;
const EXPIRE: u8 = 12;
const PERSIST: u8 = 13;
const HSET: u8 = 14;
const HDEL: u8 = 15;
const HINCR_BY: u8 = 16;
const TICK: u8 = 17;
const WATCHED: u8 = 18;
const COLLECTION: u8 = 19;

/// Flag bits of a conditional set.
const ONLY_IF_MISSING: u8 = 1;
const ONLY_IF_PRESENT: u8 = 2;
const RETURN_OLD: u8 = 4;
const ANSWER_AS_SETNX: u8 = 8;
const KEEP_EXPIRY: u8 = 16;
const EXPIRES_AFTER: u8 = 32;
const EXPIRES_AT: u8 = 64;

const CONDITIONS: [ExpireIf; 6] = [
    ExpireIf::Always,
    ExpireIf::NoExpiry,
    ExpireIf::HasExpiry,
    ExpireIf::Later,
    ExpireIf::Earlier,
    ExpireIf::EarlierWithExpiry,
];
const HASH_SETS: [HashSet; 3] = [HashSet::Count, HashSet::Ok, HashSet::IfMissing];

/// A log entry of the store: a write, and the time the leader stamped it
/// with (none in an older build's entries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The leader's clock when it proposed the write, in milliseconds
    /// since the Unix epoch.
    pub stamp: Option<u64>,
    /// The write.
    pub write: Write,
}

impl Entry {
    /// The log entry for `write`, stamped `now`.
    pub fn encode(write: &Write, now: u64) -> Bytes {
        let mut out = BytesMut::new();
        out.put_u8(STAMPED);
        out.put_u64(now);
        encode_into(write, &mut out);
        out.freeze()
    }

    /// Reads a log entry back; `None` if it is not one of this store.
    pub fn decode(entry: &Bytes) -> Option<Entry> {
        if entry.first() == Some(&STAMPED) {
            let stamp = u64::from_be_bytes(entry.get(1..9)?.try_into().ok()?);
            let write = entry.slice(9..);
            // One stamp per entry.
            if write.first() == Some(&STAMPED) {
                return None;
            }
            return Some(Entry {
                stamp: Some(stamp),
                write: Write::decode(&write)?,
            });
        }
        Some(Entry {
            stamp: None,
            write: Write::decode(entry)?,
        })
    }
}

impl Write {
    /// The write's own encoding, without a stamp.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        encode_into(self, &mut out);
        out.freeze()
    }

    /// Reads a write's own encoding back; `None` if it is not one.
    pub fn decode(entry: &Bytes) -> Option<Write> {
        decode(entry)
    }
}

fn encode_into(write: &Write, out: &mut BytesMut) {
    match write {
        Write::Set { key, value } => {
            out.put_u8(SET);
            fields::put(out, key);
            out.extend_from_slice(value);
        }
        Write::Del(keys) => {
            out.put_u8(DEL);
            keys.iter().for_each(|key| fields::put(out, key));
        }
        // One is INCR's own encoding, which every build reads.
        Write::IncrBy { key, by: 1 } => {
            out.put_u8(INCR);
            out.extend_from_slice(key);
        }
        Write::IncrBy { key, by } => {
            out.put_u8(INCR_BY);
            out.put_i64(*by);
            out.extend_from_slice(key);
        }
        Write::MSet(pairs) => {
            out.put_u8(MSET);
            put_pairs(out, pairs);
        }
        Write::Append { key, value } => {
            out.put_u8(APPEND);
            fields::put(out, key);
            out.extend_from_slice(value);
        }
        Write::GetDel(key) => {
            out.put_u8(GET_DEL);
            out.extend_from_slice(key);
        }
        Write::SetIf {
            key,
            value,
            options:
                SetOptions {
                    when,
                    get,
                    setnx,
                    expiry,
                },
        } => {
            let mut flags = match when {
                When::Always => 0,
                When::Missing => ONLY_IF_MISSING,
                When::Present => ONLY_IF_PRESENT,
            };
            flags |= if *get { RETURN_OLD } else { 0 };
            flags |= if *setnx { ANSWER_AS_SETNX } else { 0 };
            let (expiry_flag, time) = match expiry {
                SetExpiry::Clear => (0, None),
                SetExpiry::Keep => (KEEP_EXPIRY, None),
                SetExpiry::After(ms) => (EXPIRES_AFTER, Some(*ms)),
                SetExpiry::At(at) => (EXPIRES_AT, Some(*at)),
            };
            out.put_u8(SET_IF);
            out.put_u8(flags | expiry_flag);
            if let Some(time) = time {
                out.put_u64(time);
            }
            fields::put(out, key);
            out.extend_from_slice(value);
        }
        Write::FlushAll => out.put_u8(FLUSH),
        Write::Transaction { watched, ops } => {
            if !watched.is_empty() {
                out.put_u8(WATCHED);
                out.put_u32(watched.len() as u32);
                for (key, version) in watched {
                    fields::put(out, key);
                    out.put_u64(*version);
                }
            }
            out.put_u8(TRANSACTION);
            let mut op_bytes = BytesMut::new();
            for op in ops {
                match op {
                    Op::Write(write) => encode_into(write, &mut op_bytes),
                    Op::Read(read) => read.encode(&mut op_bytes),
                }
                fields::put(out, &op_bytes.split().freeze());
            }
        }
        Write::Expire { key, at, condition } => {
            let (absolute, ms) = match at {
                ExpireAt::After(ms) => (0, *ms),
                ExpireAt::At(at) => (1, *at),
            };
            out.put_u8(EXPIRE);
            out.put_u8(absolute);
            let condition = CONDITIONS.iter().position(|c| c == condition);
            out.put_u8(condition.unwrap_or_default() as u8);
            out.put_i64(ms);
            out.extend_from_slice(key);
        }
        Write::Persist(key) => {
            out.put_u8(PERSIST);
            out.extend_from_slice(key);
        }
        Write::HSet { key, pairs, mode } => {
            out.put_u8(HSET);
            let mode = HASH_SETS.iter().position(|m| m == mode);
            out.put_u8(mode.unwrap_or_default() as u8);
            fields::put(out, key);
            put_pairs(out, pairs);
        }
        Write::HDel { key, fields: names } => {
            out.put_u8(HDEL);
            fields::put(out, key);
            names.iter().for_each(|name| fields::put(out, name));
        }
        Write::HIncrBy { key, field, by } => {
            out.put_u8(HINCR_BY);
            out.put_i64(*by);
            fields::put(out, key);
            out.extend_from_slice(field);
        }
        Write::Tick => out.put_u8(TICK),
        Write::Collection(write) => {
            out.put_u8(COLLECTION);
            write.encode(out);
        }
    }
}

fn put_pairs(out: &mut BytesMut, pairs: &[(Bytes, Bytes)]) {
    for (key, value) in pairs {
        fields::put(out, key);
        fields::put(out, value);
    }
}

fn take_pairs(rest: &mut Bytes) -> Option<Vec<(Bytes, Bytes)>> {
    let fields = fields::take_all(rest)?;
    if !fields.len().is_multiple_of(2) {
        return None;
    }
    let mut fields = fields.into_iter();
    let mut pairs = Vec::with_capacity(fields.len() / 2);
    while let (Some(key), Some(value)) = (fields.next(), fields.next()) {
        pairs.push((key, value));
    }
    Some(pairs)
}

fn take_u64(rest: &mut Bytes) -> Option<u64> {
    let value = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    *rest = rest.slice(8..);
    Some(value)
}

fn take_u8(rest: &mut Bytes) -> Option<u8> {
    let value = *rest.first()?;
    *rest = rest.slice(1..);
    Some(value)
}

fn decode(entry: &Bytes) -> Option<Write> {
    let (&tag, _) = entry.split_first()?;
    let mut rest = entry.slice(1..);
    let write = match tag {
        SET => {
            let key = fields::take(&mut rest)?;
            Write::Set { key, value: rest }
        }
        DEL => Write::Del(fields::take_all(&mut rest)?),
        INCR => Write::IncrBy { key: rest, by: 1 },
        INCR_BY => {
            let by = take_u64(&mut rest)? as i64;
            Write::IncrBy { key: rest, by }
        }
        MSET => Write::MSet(take_pairs(&mut rest)?),
        APPEND => {
            let key = fields::take(&mut rest)?;
            Write::Append { key, value: rest }
        }
        GET_DEL => Write::GetDel(rest),
        SET_IF => {
            let flags = take_u8(&mut rest)?;
            let when = match flags & (ONLY_IF_MISSING | ONLY_IF_PRESENT) {
                0 => When::Always,
                ONLY_IF_MISSING => When::Missing,
                ONLY_IF_PRESENT => When::Present,
                _ => return None,
            };
            let expiry = match flags & (KEEP_EXPIRY | EXPIRES_AFTER | EXPIRES_AT) {
                0 => SetExpiry::Clear,
                KEEP_EXPIRY => SetExpiry::Keep,
                EXPIRES_AFTER => SetExpiry::After(take_u64(&mut rest)?),
                EXPIRES_AT => SetExpiry::At(take_u64(&mut rest)?),
                _ => return None,
            };
            if flags & 128 != 0 {
                return None;
            }
            let key = fields::take(&mut rest)?;
            Write::SetIf {
                key,
                value: rest,
                options: SetOptions {
                    when,
                    get: flags & RETURN_OLD != 0,
                    setnx: flags & ANSWER_AS_SETNX != 0,
                    expiry,
                },
            }
        }
        FLUSH if rest.is_empty() => Write::FlushAll,
        TRANSACTION => Write::Transaction {
            watched: Vec::new(),
            ops: take_ops(&mut rest)?,
        },
        WATCHED => {
            let count = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
            rest = rest.slice(4..);
            // Grown as watches decode, not reserved from the count.
            let mut watched = Vec::new();
            for _ in 0..count {
                let key = fields::take(&mut rest)?;
                watched.push((key, take_u64(&mut rest)?));
            }
            if take_u8(&mut rest)? != TRANSACTION {
                return None;
            }
            Write::Transaction {
                watched,
                ops: take_ops(&mut rest)?,
            }
        }
        EXPIRE => {
            let absolute = take_u8(&mut rest)?;
            let condition = *CONDITIONS.get(usize::from(take_u8(&mut rest)?))?;
            let ms = take_u64(&mut rest)? as i64;
            let at = match absolute {
                0 => ExpireAt::After(ms),
                1 => ExpireAt::At(ms),
                _ => return None,
            };
            Write::Expire {
                key: rest,
                at,
                condition,
            }
        }
        PERSIST => Write::Persist(rest),
        HSET => {
            let mode = *HASH_SETS.get(usize::from(take_u8(&mut rest)?))?;
            let key = fields::take(&mut rest)?;
            Write::HSet {
                key,
                pairs: take_pairs(&mut rest)?,
                mode,
            }
        }
        HDEL => {
            let key = fields::take(&mut rest)?;
            Write::HDel {
                key,
                fields: fields::take_all(&mut rest)?,
            }
        }
        HINCR_BY => {
            let by = take_u64(&mut rest)? as i64;
            let key = fields::take(&mut rest)?;
            Write::HIncrBy {
                key,
                field: rest,
                by,
            }
        }
        TICK if rest.is_empty() => Write::Tick,
        COLLECTION => Write::Collection(CollectionWrite::decode(&rest)?),
        _ => return None,
    };
    Some(write)
}

fn take_ops(rest: &mut Bytes) -> Option<Vec<Op>> {
    fields::take_all(rest)?
        .iter()
        .map(|op| match op.first()? {
            tag if *tag >= read::FIRST_TAG => Read::decode(op).map(Op::Read),
            // A transaction holds no transaction, and no stamp: the
            // entry's stamp is its commands' time.
            &TRANSACTION | &WATCHED | &STAMPED => None,
            _ => decode(op).map(Op::Write),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    fn every_kind_of_write() -> Vec<Write> {
        let set_if = |when, get, setnx, expiry| Write::SetIf {
            key: b("k"),
            value: b("v"),
            options: SetOptions {
                when,
                get,
                setnx,
                expiry,
            },
        };
        let ops = vec![
            Op::Write(Write::Del(vec![b("a")])),
            Op::Read(Read::MGet(vec![b("a"), b("b")])),
            Op::Write(Write::IncrBy {
                key: b("n"),
                by: -2,
            }),
            Op::Read(Read::DbSize),
            Op::Read(Read::HGet(b("h"), b("f"))),
        ];
        let mut writes = vec![
            Write::Set {
                key: b("k"),
                value: b("v\r\n\0"),
            },
            Write::Set {
                key: Bytes::new(),
                value: Bytes::new(),
            },
            Write::Del(vec![b("a"), Bytes::new()]),
            Write::IncrBy { key: b("c"), by: 1 },
            Write::IncrBy {
                key: Bytes::new(),
                by: i64::MIN,
            },
            Write::MSet(vec![(b("a"), b("1")), (Bytes::new(), Bytes::new())]),
            Write::Append {
                key: b("k"),
                value: b("tail"),
            },
            Write::GetDel(b("k")),
            set_if(When::Always, true, false, SetExpiry::Clear),
            set_if(When::Missing, false, true, SetExpiry::Keep),
            set_if(When::Present, true, false, SetExpiry::After(10)),
            set_if(When::Always, false, false, SetExpiry::At(u64::MAX)),
            Write::FlushAll,
            Write::Transaction {
                watched: Vec::new(),
                ops: ops.clone(),
            },
            Write::Transaction {
                watched: vec![(b("w"), 7), (Bytes::new(), 0)],
                ops,
            },
            Write::Transaction {
                watched: Vec::new(),
                ops: Vec::new(),
            },
            Write::Persist(b("k")),
            Write::HSet {
                key: b("h"),
                pairs: vec![(b("f"), b("v")), (Bytes::new(), Bytes::new())],
                mode: HashSet::IfMissing,
            },
            Write::HDel {
                key: b("h"),
                fields: vec![b("f")],
            },
            Write::HIncrBy {
                key: b("h"),
                field: b("f"),
                by: -9,
            },
            Write::Tick,
        ];
        for (at, condition) in [ExpireAt::After(-5), ExpireAt::At(i64::MAX)]
            .into_iter()
            .zip(CONDITIONS)
        {
            writes.push(Write::Expire {
                key: b("k"),
                at,
                condition,
            });
        }
        writes.extend(CONDITIONS.map(|condition| Write::Expire {
            key: b("k"),
            at: ExpireAt::After(1),
            condition,
        }));
        writes
    }

    #[test]
    fn writes_survive_their_encoding_stamped_or_not() {
        for write in every_kind_of_write() {
            assert_eq!(Write::decode(&write.encode()), Some(write.clone()));
            let entry = Entry::encode(&write, 1_700_000_000_123);
            assert_eq!(
                Entry::decode(&entry),
                Some(Entry {
                    stamp: Some(1_700_000_000_123),
                    write: write.clone(),
                })
            );
            assert_eq!(
                Entry::decode(&write.encode()),
                Some(Entry { stamp: None, write })
            );
        }
        // INCR keeps the encoding every earlier build reads.
        let incr = Write::IncrBy { key: b("k"), by: 1 };
        assert_eq!(&incr.encode()[..], &[INCR, b'k']);
    }

    #[test]
    fn foreign_or_damaged_entries_decode_to_nothing() {
        for entry in [
            &[][..],
            &[99, 1],
            &[SET, 0, 0, 0, 5, b'k'],
            &[DEL, 0, 0],
            &[INCR_BY, 0, 0],
            &[MSET, 0, 0, 0, 1, b'k'],
            &[SET_IF, ONLY_IF_MISSING | ONLY_IF_PRESENT, 0, 0, 0, 0],
            &[SET_IF, KEEP_EXPIRY | EXPIRES_AT, 0, 0, 0, 0],
            &[SET_IF, EXPIRES_AFTER, 0, 0],
            &[SET_IF, 128, 0, 0, 0, 0],
            &[SET_IF],
            &[FLUSH, 0],
            &[TRANSACTION, 0, 0, 0, 1, 99],
            &[TRANSACTION, 0, 0, 0, 1, TRANSACTION],
            &[TRANSACTION, 0, 0, 0, 1, STAMPED],
            &[TRANSACTION, 0, 0, 0, 3, 1],
            &[WATCHED, 0, 0, 0, 9, 0, 0, 0, 0],
            &[WATCHED, 0, 0, 0, 0, SET],
            &[STAMPED, 0, 0, 0],
            &[
                STAMPED, 0, 0, 0, 0, 0, 0, 0, 0, STAMPED, 0, 0, 0, 0, 0, 0, 0, 0, TICK,
            ],
            &[STAMPED, 0, 0, 0, 0, 0, 0, 0, 0],
            &[EXPIRE, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[EXPIRE, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0],
            &[EXPIRE, 0, 0, 0],
            &[HSET, 3, 0, 0, 0, 0],
            &[HSET, 0, 0, 0, 0, 0, 0, 0, 0, 1, b'f'],
            &[HDEL, 0, 0, 0, 2],
            &[HINCR_BY, 0, 0, 0, 0, 0, 0, 0, 0],
            &[TICK, 0],
        ] {
            let entry = Bytes::copy_from_slice(entry);
            assert_eq!(Entry::decode(&entry), None, "{entry:?}");
        }
    }
}

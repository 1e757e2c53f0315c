//! The store's writes: how each is encoded in a log entry, and what
//! applying it does to the map and answers.
//!
//! A log entry holds one write: a tag byte, then its arguments; a key or
//! value that is not the last field is `length (u32, big-endian), bytes`.
//!
//! | tag | write | arguments |
//! |---|---|---|
//! | 1 | `SET` | key (prefixed), value |
//! | 2 | `DEL`, `UNLINK` | each key (prefixed) |
//! | 3 | `INCR` | key |
//! | 4 | `INCRBY`, `DECR`, `DECRBY` | amount (i64, big-endian), key |
//! | 5 | `MSET` | each key and value (prefixed) |
//! | 6 | `APPEND` | key (prefixed), value |
//! | 7 | `GETDEL` | key |
//! | 8 | `SET` with `NX`/`XX`/`GET`, `SETNX`, `GETSET` | flags, key (prefixed), value |
//! | 9 | `FLUSHALL`, `FLUSHDB` | — |
//! | 10 | `MULTI` … `EXEC` | each command (prefixed): a write's entry, or a read's (tags from 64, see [`crate::read`]) |
//!
//! A node applies a tag it does not know as a no-op, so every node stays
//! equal; but a write a node skips is lost on it, so a cluster is
//! upgraded wholly before clients use the writes of tags 4 to 10.

use bytes::{BufMut, Bytes, BytesMut};

use crate::data::Map;
use crate::fields;
use crate::read::{self, Read};
use crate::reply::Reply;

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

/// Flag bits of a conditional set.
const ONLY_IF_MISSING: u8 = 1;
const ONLY_IF_PRESENT: u8 = 2;
const RETURN_OLD: u8 = 4;
const ANSWER_AS_SETNX: u8 = 8;

/// When a conditional set writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Always (`SET ... GET`, `GETSET`).
    Always,
    /// Only if the key is missing (`NX`, `SETNX`).
    Missing,
    /// Only if the key exists (`XX`).
    Present,
}

/// A write, as proposed to the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Sets `key` to `value`.
    Set {
        /// The key.
        key: Bytes,
        /// Its new value.
        value: Bytes,
    },
    /// Removes each key.
    Del(Vec<Bytes>),
    /// Adds `by` to the integer stored at `key` (missing counts as 0).
    IncrBy {
        /// The key.
        key: Bytes,
        /// What to add (negative to subtract).
        by: i64,
    },
    /// Sets every pair, in order.
    MSet(Vec<(Bytes, Bytes)>),
    /// Appends `value` to the value at `key` (missing counts as empty).
    Append {
        /// The key.
        key: Bytes,
        /// What to append.
        value: Bytes,
    },
    /// Removes `key`, answering its value.
    GetDel(Bytes),
    /// Sets `key` to `value` when `when` allows.
    SetIf {
        /// The key.
        key: Bytes,
        /// Its new value.
        value: Bytes,
        /// When to write.
        when: When,
        /// Answer the old value (`GET`).
        get: bool,
        /// Answer 1 or 0, as `SETNX` does (else OK or nil).
        setnx: bool,
    },
    /// Removes every key.
    FlushAll,
    /// A transaction (`MULTI` … `EXEC`): its commands applied one after
    /// the other, and nothing else between them, on every node.
    Transaction(Vec<Op>),
}

/// One command of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A write.
    Write(Write),
    /// A read, of the store as the commands before it left it.
    Read(Read),
}

/// What applying a write answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// `+OK`.
    Ok,
    /// An integer: keys removed, a new count or length.
    Integer(i64),
    /// A value, or nil.
    Value(Option<Bytes>),
    /// A conditional set that did not write, answered nil.
    NotSet,
    /// `INCR` and the like on a value that is not a 64-bit integer.
    NotAnInteger,
    /// `INCR` and the like past the range of a 64-bit integer.
    Overflow,
    /// An entry this store does not understand (never proposed by this
    /// build; applied as a no-op so that every node stays equal).
    Unknown,
    /// A transaction: each command's reply, in order.
    Transaction(Vec<Reply>),
}

impl Applied {
    /// The reply a client gets.
    pub fn into_reply(self) -> Reply {
        match self {
            Applied::Ok => Reply::Status("OK"),
            Applied::Integer(value) => Reply::Integer(value),
            Applied::Value(value) => Reply::Bulk(value),
            Applied::NotSet => Reply::Bulk(None),
            Applied::NotAnInteger => Reply::Error("ERR value is not an integer or out of range"),
            Applied::Overflow => Reply::Error("ERR increment or decrement would overflow"),
            Applied::Unknown => Reply::Error("ERR the store did not understand the command"),
            Applied::Transaction(replies) => Reply::Array(replies),
        }
    }
}

impl Write {
    /// The log entry for this write.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self {
            Write::Set { key, value } => {
                out.put_u8(SET);
                fields::put(&mut out, key);
                out.extend_from_slice(value);
            }
            Write::Del(keys) => {
                out.put_u8(DEL);
                keys.iter().for_each(|key| fields::put(&mut out, key));
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
                for (key, value) in pairs {
                    fields::put(&mut out, key);
                    fields::put(&mut out, value);
                }
            }
            Write::Append { key, value } => {
                out.put_u8(APPEND);
                fields::put(&mut out, key);
                out.extend_from_slice(value);
            }
            Write::GetDel(key) => {
                out.put_u8(GET_DEL);
                out.extend_from_slice(key);
            }
            Write::SetIf {
                key,
                value,
                when,
                get,
                setnx,
            } => {
                let mut flags = match when {
                    When::Always => 0,
                    When::Missing => ONLY_IF_MISSING,
                    When::Present => ONLY_IF_PRESENT,
                };
                flags |= if *get { RETURN_OLD } else { 0 };
                flags |= if *setnx { ANSWER_AS_SETNX } else { 0 };
                out.put_u8(SET_IF);
                out.put_u8(flags);
                fields::put(&mut out, key);
                out.extend_from_slice(value);
            }
            Write::FlushAll => out.put_u8(FLUSH),
            Write::Transaction(ops) => {
                out.put_u8(TRANSACTION);
                let mut op_bytes = BytesMut::new();
                for op in ops {
                    match op {
                        Op::Write(write) => op_bytes.extend_from_slice(&write.encode()),
                        Op::Read(read) => read.encode(&mut op_bytes),
                    }
                    fields::put(&mut out, &op_bytes.split().freeze());
                }
            }
        }
        out.freeze()
    }

    /// Reads a log entry back; `None` if it is not a write of this store.
    pub fn decode(entry: &Bytes) -> Option<Write> {
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
                let by = i64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
                Write::IncrBy {
                    key: rest.slice(8..),
                    by,
                }
            }
            MSET => {
                let fields = fields::take_all(&mut rest)?;
                if !fields.len().is_multiple_of(2) {
                    return None;
                }
                let mut fields = fields.into_iter();
                let mut pairs = Vec::new();
                while let (Some(key), Some(value)) = (fields.next(), fields.next()) {
                    pairs.push((key, value));
                }
                Write::MSet(pairs)
            }
            APPEND => {
                let key = fields::take(&mut rest)?;
                Write::Append { key, value: rest }
            }
            GET_DEL => Write::GetDel(rest),
            SET_IF => {
                let flags = *rest.first()?;
                rest = rest.slice(1..);
                let when = match flags & (ONLY_IF_MISSING | ONLY_IF_PRESENT) {
                    0 => When::Always,
                    ONLY_IF_MISSING => When::Missing,
                    ONLY_IF_PRESENT => When::Present,
                    _ => return None,
                };
                let key = fields::take(&mut rest)?;
                Write::SetIf {
                    key,
                    value: rest,
                    when,
                    get: flags & RETURN_OLD != 0,
                    setnx: flags & ANSWER_AS_SETNX != 0,
                }
            }
            FLUSH if rest.is_empty() => Write::FlushAll,
            TRANSACTION => {
                let ops = fields::take_all(&mut rest)?
                    .iter()
                    .map(|op| match op.first()? {
                        tag if *tag >= read::FIRST_TAG => Read::decode(op).map(Op::Read),
                        // A transaction holds no transaction.
                        &TRANSACTION => None,
                        _ => Write::decode(op).map(Op::Write),
                    })
                    .collect::<Option<Vec<Op>>>()?;
                Write::Transaction(ops)
            }
            _ => return None,
        };
        Some(write)
    }

    /// Applies the write to `data`; what it answers.
    pub fn apply(self, data: &mut Map) -> Applied {
        match self {
            Write::Set { key, value } => {
                data.insert(key, value);
                Applied::Ok
            }
            Write::Del(keys) => {
                let removed = keys
                    .iter()
                    .filter(|key| data.remove(*key).is_some())
                    .count();
                Applied::Integer(removed as i64)
            }
            Write::IncrBy { key, by } => {
                let current = match data.get(&key) {
                    None => Some(0),
                    Some(value) => std::str::from_utf8(value)
                        .ok()
                        .and_then(|text| text.parse::<i64>().ok()),
                };
                let Some(current) = current else {
                    return Applied::NotAnInteger;
                };
                match current.checked_add(by) {
                    Some(next) => {
                        data.insert(key, Bytes::from(next.to_string()));
                        Applied::Integer(next)
                    }
                    None => Applied::Overflow,
                }
            }
            Write::MSet(pairs) => {
                for (key, value) in pairs {
                    data.insert(key, value);
                }
                Applied::Ok
            }
            Write::Append { key, value } => {
                let mut joined = data.get(&key).map(|old| old.to_vec()).unwrap_or_default();
                joined.extend_from_slice(&value);
                let length = joined.len() as i64;
                data.insert(key, Bytes::from(joined));
                Applied::Integer(length)
            }
            Write::GetDel(key) => Applied::Value(data.remove(&key)),
            Write::SetIf {
                key,
                value,
                when,
                get,
                setnx,
            } => {
                let old = data.get(&key).cloned();
                let writes = match when {
                    When::Always => true,
                    When::Missing => old.is_none(),
                    When::Present => old.is_some(),
                };
                if writes {
                    data.insert(key, value);
                }
                match (get, setnx) {
                    (true, _) => Applied::Value(old),
                    (false, true) => Applied::Integer(i64::from(writes)),
                    (false, false) if writes => Applied::Ok,
                    (false, false) => Applied::NotSet,
                }
            }
            Write::FlushAll => {
                data.clear();
                Applied::Ok
            }
            Write::Transaction(ops) => Applied::Transaction(
                ops.into_iter()
                    .map(|op| match op {
                        Op::Write(write) => write.apply(data).into_reply(),
                        Op::Read(read) => read.evaluate(data),
                    })
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    #[test]
    fn writes_survive_their_encoding() {
        let set_if = |when, get, setnx| Write::SetIf {
            key: bytes("k"),
            value: bytes("v"),
            when,
            get,
            setnx,
        };
        for write in [
            Write::Set {
                key: bytes("k"),
                value: bytes("v\r\n\0"),
            },
            Write::Set {
                key: Bytes::new(),
                value: Bytes::new(),
            },
            Write::Del(vec![bytes("a"), Bytes::new()]),
            Write::IncrBy {
                key: bytes("counter"),
                by: 1,
            },
            Write::IncrBy {
                key: Bytes::new(),
                by: i64::MIN,
            },
            Write::MSet(vec![(bytes("a"), bytes("1")), (Bytes::new(), Bytes::new())]),
            Write::Append {
                key: bytes("k"),
                value: bytes("tail"),
            },
            Write::GetDel(bytes("k")),
            set_if(When::Always, true, false),
            set_if(When::Missing, false, true),
            set_if(When::Present, true, false),
            Write::FlushAll,
            Write::Transaction(vec![
                Op::Write(Write::Del(vec![bytes("a")])),
                Op::Read(Read::MGet(vec![bytes("a"), bytes("b")])),
                Op::Write(Write::IncrBy {
                    key: bytes("n"),
                    by: -2,
                }),
                Op::Read(Read::DbSize),
            ]),
            Write::Transaction(Vec::new()),
        ] {
            assert_eq!(Write::decode(&write.encode()), Some(write));
        }
        // INCR keeps the encoding every earlier build reads.
        let incr = Write::IncrBy {
            key: bytes("k"),
            by: 1,
        };
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
            &[SET_IF],
            &[FLUSH, 0],
            &[TRANSACTION, 0, 0, 0, 1, 99],
            &[TRANSACTION, 0, 0, 0, 1, TRANSACTION],
            &[TRANSACTION, 0, 0, 0, 3, 1],
        ] {
            assert_eq!(
                Write::decode(&Bytes::copy_from_slice(entry)),
                None,
                "{entry:?}"
            );
        }
    }

    #[test]
    fn writes_apply_as_in_redis() {
        let mut data = Map::new();
        let incr = |by| Write::IncrBy {
            key: bytes("n"),
            by,
        };
        assert_eq!(incr(5).apply(&mut data), Applied::Integer(5));
        assert_eq!(incr(-3).apply(&mut data), Applied::Integer(2));
        Write::Set {
            key: bytes("n"),
            value: bytes("x"),
        }
        .apply(&mut data);
        assert_eq!(incr(1).apply(&mut data), Applied::NotAnInteger);
        Write::Set {
            key: bytes("n"),
            value: Bytes::from(i64::MAX.to_string()),
        }
        .apply(&mut data);
        assert_eq!(incr(1).apply(&mut data), Applied::Overflow);
        assert_eq!(incr(-1).apply(&mut data), Applied::Integer(i64::MAX - 1));

        let append = |value| Write::Append {
            key: bytes("s"),
            value: bytes(value),
        };
        assert_eq!(append("ab").apply(&mut data), Applied::Integer(2));
        assert_eq!(append("cd").apply(&mut data), Applied::Integer(4));
        let mset = Write::MSet(vec![(bytes("a"), bytes("1")), (bytes("a"), bytes("2"))]);
        assert_eq!(mset.apply(&mut data), Applied::Ok);
        assert_eq!(
            data.get(&bytes("a")),
            Some(&bytes("2")),
            "the last pair wins"
        );
        assert_eq!(
            Write::GetDel(bytes("s")).apply(&mut data),
            Applied::Value(Some(bytes("abcd")))
        );
        assert_eq!(
            Write::GetDel(bytes("s")).apply(&mut data),
            Applied::Value(None)
        );

        let set_if = |when, get, setnx, value| Write::SetIf {
            key: bytes("c"),
            value: bytes(value),
            when,
            get,
            setnx,
        };
        assert_eq!(
            set_if(When::Present, false, false, "1").apply(&mut data),
            Applied::NotSet
        );
        assert_eq!(
            set_if(When::Missing, false, true, "1").apply(&mut data),
            Applied::Integer(1)
        );
        assert_eq!(
            set_if(When::Missing, false, true, "2").apply(&mut data),
            Applied::Integer(0)
        );
        assert_eq!(
            set_if(When::Missing, false, false, "2").apply(&mut data),
            Applied::NotSet
        );
        assert_eq!(
            set_if(When::Always, true, false, "3").apply(&mut data),
            Applied::Value(Some(bytes("1")))
        );
        assert_eq!(
            set_if(When::Present, false, false, "4").apply(&mut data),
            Applied::Ok
        );
        assert_eq!(data.get(&bytes("c")), Some(&bytes("4")));

        let del = Write::Del(vec![bytes("c"), bytes("missing")]);
        assert_eq!(del.apply(&mut data), Applied::Integer(1));
        assert_eq!(Write::FlushAll.apply(&mut data), Applied::Ok);
        assert!(data.is_empty());
    }

    #[test]
    fn a_transaction_applies_its_commands_in_order_and_answers_each() {
        let mut data = Map::new();
        let transaction = Write::Transaction(vec![
            Op::Write(Write::Set {
                key: bytes("n"),
                value: bytes("x"),
            }),
            Op::Read(Read::Get(bytes("n"))),
            // An error in one command does not stop the others, as in
            // Redis.
            Op::Write(Write::IncrBy {
                key: bytes("n"),
                by: 1,
            }),
            Op::Write(Write::Set {
                key: bytes("n"),
                value: bytes("5"),
            }),
            Op::Write(Write::IncrBy {
                key: bytes("n"),
                by: 1,
            }),
            Op::Read(Read::DbSize),
        ]);
        assert_eq!(
            transaction.apply(&mut data).into_reply(),
            Reply::Array(vec![
                Reply::Status("OK"),
                Reply::Bulk(Some(bytes("x"))),
                Reply::Error("ERR value is not an integer or out of range"),
                Reply::Status("OK"),
                Reply::Integer(6),
                Reply::Integer(1),
            ])
        );
        assert_eq!(data.get(&bytes("n")), Some(&bytes("6")));
    }
}

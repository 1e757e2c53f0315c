//! The store's reads: what each finds, and (for a read inside a
//! transaction, which runs through the log with the transaction's writes)
//! how it is encoded in a log entry: a tag from 64 on, then its key, or
//! its keys each as `length (u32, big-endian), key`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::data::Map;
use crate::fields;
use crate::glob;
use crate::reply::Reply;

const GET: u8 = 64;
const MGET: u8 = 65;
const EXISTS: u8 = 66;
const DBSIZE: u8 = 67;
const STRLEN: u8 = 68;
const TYPE: u8 = 69;
const KEYS: u8 = 70;

/// The first tag of a read; writes' tags are below it.
pub const FIRST_TAG: u8 = GET;

/// A read of the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read {
    /// `GET key`.
    Get(Bytes),
    /// `EXISTS key...`.
    Exists(Vec<Bytes>),
    /// `DBSIZE`.
    DbSize,
    /// `MGET key...`.
    MGet(Vec<Bytes>),
    /// `STRLEN key`.
    StrLen(Bytes),
    /// `TYPE key`.
    Type(Bytes),
    /// `KEYS pattern`.
    Keys(Bytes),
}

impl Read {
    /// What the read finds in `data`.
    pub fn evaluate(&self, data: &Map) -> Reply {
        let value = |key: &Bytes| Reply::Bulk(data.get(key).cloned());
        match self {
            Read::Get(key) => value(key),
            Read::MGet(keys) => Reply::Array(keys.iter().map(value).collect()),
            Read::Exists(keys) => {
                Reply::Integer(keys.iter().filter(|key| data.contains_key(*key)).count() as i64)
            }
            Read::DbSize => Reply::Integer(data.len() as i64),
            Read::StrLen(key) => Reply::Integer(data.get(key).map_or(0, Bytes::len) as i64),
            Read::Type(key) => Reply::Status(if data.contains_key(key) {
                "string"
            } else {
                "none"
            }),
            Read::Keys(pattern) => Reply::Array(
                data.keys()
                    .filter(|key| glob::matches(pattern, key))
                    .map(|key| Reply::Bulk(Some(key.clone())))
                    .collect(),
            ),
        }
    }

    /// Appends the read's encoding to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        let (tag, single, many): (u8, Option<&Bytes>, &[Bytes]) = match self {
            Read::Get(key) => (GET, Some(key), &[]),
            Read::MGet(keys) => (MGET, None, keys),
            Read::Exists(keys) => (EXISTS, None, keys),
            Read::DbSize => (DBSIZE, None, &[]),
            Read::StrLen(key) => (STRLEN, Some(key), &[]),
            Read::Type(key) => (TYPE, Some(key), &[]),
            Read::Keys(pattern) => (KEYS, Some(pattern), &[]),
        };
        out.put_u8(tag);
        if let Some(key) = single {
            out.extend_from_slice(key);
        }
        many.iter().for_each(|key| fields::put(out, key));
    }

    /// Reads an encoding back; `None` if it is not a read.
    pub fn decode(encoded: &Bytes) -> Option<Read> {
        let (&tag, _) = encoded.split_first()?;
        let mut rest = encoded.slice(1..);
        let read = match tag {
            GET => Read::Get(rest),
            MGET => Read::MGet(fields::take_all(&mut rest)?),
            EXISTS => Read::Exists(fields::take_all(&mut rest)?),
            DBSIZE if rest.is_empty() => Read::DbSize,
            STRLEN => Read::StrLen(rest),
            TYPE => Read::Type(rest),
            KEYS => Read::Keys(rest),
            _ => return None,
        };
        Some(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    #[test]
    fn reads_survive_their_encoding_and_nothing_else_decodes() {
        for read in [
            Read::Get(bytes("k")),
            Read::MGet(vec![bytes("a"), Bytes::new()]),
            Read::Exists(vec![bytes("a")]),
            Read::DbSize,
            Read::StrLen(bytes("k")),
            Read::Type(Bytes::new()),
            Read::Keys(bytes("user:*")),
        ] {
            let mut out = BytesMut::new();
            read.encode(&mut out);
            assert!(out[0] >= FIRST_TAG);
            assert_eq!(Read::decode(&out.freeze()), Some(read));
        }
        for entry in [&[][..], &[1, 2], &[MGET, 0, 0, 0, 9], &[DBSIZE, 0]] {
            assert_eq!(Read::decode(&Bytes::copy_from_slice(entry)), None);
        }
    }

    #[test]
    fn reads_find_what_redis_would() {
        let mut data = Map::new();
        data.insert(bytes("a"), bytes("12"));
        data.insert(bytes("b"), bytes("x"));
        assert_eq!(
            Read::Get(bytes("a")).evaluate(&data),
            Reply::Bulk(Some(bytes("12")))
        );
        assert_eq!(
            Read::MGet(vec![bytes("a"), bytes("z")]).evaluate(&data),
            Reply::Array(vec![Reply::Bulk(Some(bytes("12"))), Reply::Bulk(None)])
        );
        assert_eq!(
            Read::Exists(vec![bytes("a"), bytes("a"), bytes("z")]).evaluate(&data),
            Reply::Integer(2)
        );
        assert_eq!(Read::DbSize.evaluate(&data), Reply::Integer(2));
        assert_eq!(Read::StrLen(bytes("a")).evaluate(&data), Reply::Integer(2));
        assert_eq!(Read::StrLen(bytes("z")).evaluate(&data), Reply::Integer(0));
        assert_eq!(
            Read::Type(bytes("b")).evaluate(&data),
            Reply::Status("string")
        );
        assert_eq!(
            Read::Type(bytes("z")).evaluate(&data),
            Reply::Status("none")
        );
        assert_eq!(
            Read::Keys(bytes("[a-a]*")).evaluate(&data),
            Reply::Array(vec![Reply::Bulk(Some(bytes("a")))])
        );
    }
}

//! The store's reads: what each finds, and (for a read inside a
//! transaction, which runs through the log with the transaction's writes)
//! how it is encoded in a log entry: a tag from 64 on, then its key (tags
//! 64, 68, 69, 70), its keys each as `length (u32, big-endian), key` (65,
//! 66), nothing (67), or every argument so prefixed (from 71; `SCAN`'s
//! cursor and count are decimal text, its type and pattern empty when not
//! given).

use bytes::{BufMut, Bytes, BytesMut};

use crate::collections::CollectionRead;
use crate::data::{Data, Entry, Fields};
use crate::fields;
use crate::glob;
use crate::reply::{Reply, WRONG_TYPE};

const GET: u8 = 64;
const MGET: u8 = 65;
const EXISTS: u8 = 66;
const DBSIZE: u8 = 67;
const STRLEN: u8 = 68;
const TYPE: u8 = 69;
const KEYS: u8 = 70;
const TTL: u8 = 71;
const HGET: u8 = 72;
const HMGET: u8 = 73;
const HGETALL: u8 = 74;
const HLEN: u8 = 75;
const HEXISTS: u8 = 76;
const HKEYS: u8 = 77;
const HVALS: u8 = 78;
const HSTRLEN: u8 = 79;
const SCAN: u8 = 80;
const COLLECTION: u8 = 81;

/// The first tag of a read; writes' tags are below it.
pub const FIRST_TAG: u8 = GET;

/// What `TTL` and its kin answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtlKind {
    /// `TTL`: seconds left.
    Seconds,
    /// `PTTL`: milliseconds left.
    Millis,
    /// `EXPIRETIME`: the Unix time in seconds.
    AtSeconds,
    /// `PEXPIRETIME`: the Unix time in milliseconds.
    AtMillis,
}

const TTL_KINDS: [TtlKind; 4] = [
    TtlKind::Seconds,
    TtlKind::Millis,
    TtlKind::AtSeconds,
    TtlKind::AtMillis,
];

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
    /// `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME`.
    Ttl(Bytes, TtlKind),
    /// `HGET key field`.
    HGet(Bytes, Bytes),
    /// `HMGET key field...`.
    HMGet(Bytes, Vec<Bytes>),
    /// `HGETALL key`.
    HGetAll(Bytes),
    /// `HLEN key`.
    HLen(Bytes),
    /// `HEXISTS key field`.
    HExists(Bytes, Bytes),
    /// `HKEYS key`.
    HKeys(Bytes),
    /// `HVALS key`.
    HVals(Bytes),
    /// `HSTRLEN key field`.
    HStrLen(Bytes, Bytes),
    /// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
    Scan(Scan),
    /// A read of a list, set, sorted set or stream.
    Collection(CollectionRead),
}

/// A `SCAN` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    /// Where to go on from (0: the start): the order hash of the next key
    /// to look at.
    pub cursor: u64,
    /// Only keys matching this pattern.
    pub pattern: Option<Bytes>,
    /// About how many keys to look at.
    pub count: usize,
    /// Only keys of this type.
    pub type_name: Option<Bytes>,
}

fn bulk(value: Option<&Bytes>) -> Reply {
    Reply::Bulk(value.cloned())
}

impl Read {
    /// What the read finds in `data`; `now` (milliseconds since the Unix
    /// epoch, no earlier than the store's clock) is what `TTL` counts
    /// from.
    pub fn evaluate(&self, data: &Data, now: u64) -> Reply {
        self.evaluate_checked(data, now)
            .unwrap_or(Reply::Error(WRONG_TYPE))
    }

    fn evaluate_checked(&self, data: &Data, now: u64) -> Option<Reply> {
        let reply = match self {
            Read::Get(key) => bulk(data.string(key).ok()?),
            // MGET answers nil for a key of another type, as Redis does.
            Read::MGet(keys) => Reply::Array(
                keys.iter()
                    .map(|key| bulk(data.string(key).ok().flatten()))
                    .collect(),
            ),
            Read::Exists(keys) => {
                Reply::Integer(keys.iter().filter(|key| data.get(key).is_some()).count() as i64)
            }
            Read::DbSize => Reply::Integer(data.len() as i64),
            Read::StrLen(key) => {
                Reply::Integer(data.string(key).ok()?.map_or(0, Bytes::len) as i64)
            }
            Read::Type(key) => Reply::Status(
                data.get(key)
                    .map_or("none", |entry| entry.value.type_name()),
            ),
            Read::Keys(pattern) => Reply::Array(
                data.iter()
                    .filter(|(key, _)| glob::matches(pattern, key.name()))
                    .map(|(key, _)| bulk(Some(key.name())))
                    .collect(),
            ),
            Read::Ttl(key, kind) => Reply::Integer(ttl(data.get(key), *kind, now)),
            Read::HGet(key, field) => bulk(hash(data, key)?.get(field)),
            Read::HMGet(key, names) => {
                let fields = hash(data, key)?;
                Reply::Array(names.iter().map(|name| bulk(fields.get(name))).collect())
            }
            Read::HGetAll(key) => Reply::Map(
                hash(data, key)?
                    .iter()
                    .map(|(field, value)| (bulk(Some(field)), bulk(Some(value))))
                    .collect(),
            ),
            Read::HLen(key) => Reply::Integer(hash(data, key)?.len() as i64),
            Read::HExists(key, field) => {
                Reply::Integer(i64::from(hash(data, key)?.contains_key(field)))
            }
            Read::HKeys(key) => {
                Reply::Array(hash(data, key)?.keys().map(|f| bulk(Some(f))).collect())
            }
            Read::HVals(key) => {
                Reply::Array(hash(data, key)?.values().map(|v| bulk(Some(v))).collect())
            }
            Read::HStrLen(key, field) => {
                Reply::Integer(hash(data, key)?.get(field).map_or(0, Bytes::len) as i64)
            }
            Read::Scan(scan) => scan.evaluate(data),
            Read::Collection(read) => read.evaluate(data),
        };
        Some(reply)
    }

    /// Whether the read would find a key whose time has come by `now` but
    /// that the log has not yet expired: a key it names, or for a read of
    /// the whole store (`DBSIZE`, `KEYS`, `SCAN`) any key.
    pub fn finds_due_key(&self, data: &Data, now: u64) -> bool {
        // Most of the time no key at all is due: no lookup per key then.
        if data.next_expiry().is_none_or(|at| at > now) {
            return false;
        }
        let single;
        let keys: &[Bytes] = match self {
            Read::DbSize | Read::Keys(_) | Read::Scan(_) => {
                return data.next_expiry().is_some_and(|at| at <= now)
            }
            Read::MGet(keys) | Read::Exists(keys) => keys,
            Read::Get(key)
            | Read::StrLen(key)
            | Read::Type(key)
            | Read::Ttl(key, _)
            | Read::HGet(key, _)
            | Read::HMGet(key, _)
            | Read::HGetAll(key)
            | Read::HLen(key)
            | Read::HExists(key, _)
            | Read::HKeys(key)
            | Read::HVals(key)
            | Read::HStrLen(key, _) => {
                single = [key.clone()];
                &single
            }
            Read::Collection(read) => {
                single = [read.key().clone()];
                &single
            }
        };
        keys_due(data, keys, now)
    }

    /// Appends the read's encoding to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        let number = |value: u64| Bytes::from(value.to_string());
        let (tag, single, many): (u8, Option<&Bytes>, Vec<Bytes>) = match self {
            Read::Get(key) => (GET, Some(key), Vec::new()),
            Read::MGet(keys) => (MGET, None, keys.clone()),
            Read::Exists(keys) => (EXISTS, None, keys.clone()),
            Read::DbSize => (DBSIZE, None, Vec::new()),
            Read::StrLen(key) => (STRLEN, Some(key), Vec::new()),
            Read::Type(key) => (TYPE, Some(key), Vec::new()),
            Read::Keys(pattern) => (KEYS, Some(pattern), Vec::new()),
            Read::Ttl(key, kind) => {
                let kind = TTL_KINDS.iter().position(|k| k == kind).unwrap_or_default();
                (TTL, None, vec![key.clone(), number(kind as u64)])
            }
            Read::HGet(key, field) => (HGET, None, vec![key.clone(), field.clone()]),
            Read::HMGet(key, names) => {
                let mut all = vec![key.clone()];
                all.extend(names.iter().cloned());
                (HMGET, None, all)
            }
            Read::HGetAll(key) => (HGETALL, None, vec![key.clone()]),
            Read::HLen(key) => (HLEN, None, vec![key.clone()]),
            Read::HExists(key, field) => (HEXISTS, None, vec![key.clone(), field.clone()]),
            Read::HKeys(key) => (HKEYS, None, vec![key.clone()]),
            Read::HVals(key) => (HVALS, None, vec![key.clone()]),
            Read::HStrLen(key, field) => (HSTRLEN, None, vec![key.clone(), field.clone()]),
            Read::Collection(read) => {
                out.put_u8(COLLECTION);
                read.encode(out);
                return;
            }
            Read::Scan(scan) => (
                SCAN,
                None,
                vec![
                    number(scan.cursor),
                    number(scan.count as u64),
                    scan.pattern.clone().unwrap_or_default(),
                    scan.type_name.clone().unwrap_or_default(),
                ],
            ),
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
            COLLECTION => Read::Collection(CollectionRead::decode(&rest)?),
            _ => {
                let all = fields::take_all(&mut rest)?;
                let number = |text: &Bytes| std::str::from_utf8(text).ok()?.parse::<u64>().ok();
                let optional = |text: &Bytes| Some(text.clone()).filter(|text| !text.is_empty());
                match (tag, all.as_slice()) {
                    (TTL, [key, kind]) => {
                        let kind = *TTL_KINDS.get(usize::try_from(number(kind)?).ok()?)?;
                        Read::Ttl(key.clone(), kind)
                    }
                    (HGET, [key, field]) => Read::HGet(key.clone(), field.clone()),
                    (HMGET, [key, names @ ..]) => Read::HMGet(key.clone(), names.to_vec()),
                    (HGETALL, [key]) => Read::HGetAll(key.clone()),
                    (HLEN, [key]) => Read::HLen(key.clone()),
                    (HEXISTS, [key, field]) => Read::HExists(key.clone(), field.clone()),
                    (HKEYS, [key]) => Read::HKeys(key.clone()),
                    (HVALS, [key]) => Read::HVals(key.clone()),
                    (HSTRLEN, [key, field]) => Read::HStrLen(key.clone(), field.clone()),
                    (SCAN, [cursor, count, pattern, type_name]) => Read::Scan(Scan {
                        cursor: number(cursor)?,
                        count: usize::try_from(number(count)?).ok()?,
                        pattern: optional(pattern),
                        type_name: optional(type_name),
                    }),
                    _ => return None,
                }
            }
        };
        Some(read)
    }
}

/// Whether one of `keys` has an expiry that `now` has reached.
pub fn keys_due(data: &Data, keys: &[Bytes], now: u64) -> bool {
    keys.iter().any(|key| {
        data.get(key)
            .and_then(|entry| entry.expires_at)
            .is_some_and(|at| at <= now)
    })
}

/// The hash at `key` (empty if missing); `None` if it holds another type.
fn hash(data: &Data, key: &Bytes) -> Option<Fields> {
    data.hash(key)
        .ok()
        .map(Option::<&Fields>::cloned)
        .map(Option::unwrap_or_default)
}

/// `TTL` and its kin for `entry`: -2 missing, -1 no expiry.
fn ttl(entry: Option<&Entry>, kind: TtlKind, now: u64) -> i64 {
    let Some(entry) = entry else {
        return -2;
    };
    let Some(at) = entry.expires_at else {
        return -1;
    };
    let left = at.saturating_sub(now);
    let value = match kind {
        // Rounded to the nearest second, as Redis does.
        TtlKind::Seconds => left.saturating_add(500) / 1000,
        TtlKind::Millis => left,
        TtlKind::AtSeconds => at / 1000,
        TtlKind::AtMillis => at,
    };
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Scan {
    /// The next cursor and the keys found: `count` keys looked at (more
    /// when several share the last one's hash, so that the next call,
    /// which starts at the next hash, misses none), filtered.
    fn evaluate(&self, data: &Data) -> Reply {
        let mut found = Vec::new();
        let mut next = 0;
        let mut last_hash = None;
        for (looked, (key, entry)) in data.iter_from(self.cursor).enumerate() {
            if looked >= self.count.max(1) && last_hash != Some(key.hash()) {
                // Never 0 (which ends the scan): it is above the last
                // hash looked at.
                next = key.hash();
                break;
            }
            last_hash = Some(key.hash());
            let pattern_matches = self
                .pattern
                .as_ref()
                .is_none_or(|pattern| glob::matches(pattern, key.name()));
            let type_matches = self
                .type_name
                .as_ref()
                .is_none_or(|name| name.eq_ignore_ascii_case(entry.value.type_name().as_bytes()));
            if pattern_matches && type_matches {
                found.push(bulk(Some(key.name())));
            }
        }
        Reply::Array(vec![
            Reply::Bulk(Some(Bytes::from(next.to_string()))),
            Reply::Array(found),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Value;

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    fn bulk_of(text: &str) -> Reply {
        Reply::Bulk(Some(b(text)))
    }

    fn sample() -> Data {
        let mut data = Data::default();
        data.begin(1, Some(10_000));
        data.put(b("a"), Value::String(b("12")), false);
        data.put(b("b"), Value::String(b("x")), false);
        let mut fields = Fields::new();
        fields.insert(b("f"), b("1"));
        fields.insert(b("g"), b("long"));
        data.put(b("h"), Value::Hash(fields), false);
        data.set_expiry(&b("b"), Some(12_345));
        data
    }

    #[test]
    fn reads_survive_their_encoding_and_nothing_else_decodes() {
        for read in [
            Read::Get(b("k")),
            Read::MGet(vec![b("a"), Bytes::new()]),
            Read::Exists(vec![b("a")]),
            Read::DbSize,
            Read::StrLen(b("k")),
            Read::Type(Bytes::new()),
            Read::Keys(b("user:*")),
            Read::Ttl(b("k"), TtlKind::AtMillis),
            Read::HGet(b("h"), Bytes::new()),
            Read::HMGet(b("h"), vec![b("a"), b("b")]),
            Read::HGetAll(b("h")),
            Read::HLen(b("h")),
            Read::HExists(b("h"), b("f")),
            Read::HKeys(b("h")),
            Read::HVals(b("h")),
            Read::HStrLen(b("h"), b("f")),
            Read::Scan(Scan {
                cursor: u64::MAX,
                pattern: Some(b("*")),
                count: 7,
                type_name: None,
            }),
        ] {
            let mut out = BytesMut::new();
            read.encode(&mut out);
            assert!(out[0] >= FIRST_TAG);
            assert_eq!(Read::decode(&out.freeze()), Some(read));
        }
        for entry in [
            &[][..],
            &[1, 2],
            &[MGET, 0, 0, 0, 9],
            &[DBSIZE, 0],
            &[HGET, 0, 0, 0, 1, b'h'],
            &[TTL, 0, 0, 0, 1, b'k', 0, 0, 0, 1, b'9'],
            &[SCAN, 0, 0, 0, 1, b'x', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[99],
        ] {
            assert_eq!(Read::decode(&Bytes::copy_from_slice(entry)), None);
        }
    }

    #[test]
    fn reads_find_what_redis_would() {
        let data = sample();
        let now = 11_000;
        let read = |read: Read| read.evaluate(&data, now);
        assert_eq!(read(Read::Get(b("a"))), bulk_of("12"));
        assert_eq!(read(Read::Get(b("h"))), Reply::Error(WRONG_TYPE));
        assert_eq!(
            read(Read::MGet(vec![b("a"), b("z"), b("h")])),
            Reply::Array(vec![bulk_of("12"), Reply::Bulk(None), Reply::Bulk(None)])
        );
        assert_eq!(
            read(Read::Exists(vec![b("a"), b("a"), b("z"), b("h")])),
            Reply::Integer(3)
        );
        assert_eq!(read(Read::DbSize), Reply::Integer(3));
        assert_eq!(read(Read::StrLen(b("a"))), Reply::Integer(2));
        assert_eq!(read(Read::StrLen(b("z"))), Reply::Integer(0));
        assert_eq!(read(Read::Type(b("b"))), Reply::Status("string"));
        assert_eq!(read(Read::Type(b("h"))), Reply::Status("hash"));
        assert_eq!(read(Read::Type(b("z"))), Reply::Status("none"));
        assert_eq!(
            read(Read::Keys(b("[a-a]*"))),
            Reply::Array(vec![bulk_of("a")])
        );
        // TTLs count from `now`; seconds are rounded as Redis rounds.
        let ttl = |key: &str, kind| read(Read::Ttl(b(key), kind));
        assert_eq!(ttl("b", TtlKind::Millis), Reply::Integer(1_345));
        assert_eq!(ttl("b", TtlKind::Seconds), Reply::Integer(1));
        assert_eq!(ttl("b", TtlKind::AtMillis), Reply::Integer(12_345));
        assert_eq!(ttl("b", TtlKind::AtSeconds), Reply::Integer(12));
        assert_eq!(ttl("a", TtlKind::Seconds), Reply::Integer(-1));
        assert_eq!(ttl("z", TtlKind::Millis), Reply::Integer(-2));
        assert_eq!(
            Read::Ttl(b("b"), TtlKind::Millis).evaluate(&data, 20_000),
            Reply::Integer(0),
            "due, not yet expired by the log"
        );
    }

    #[test]
    fn a_read_knows_when_it_would_find_a_key_past_its_time() {
        // b expires at 12 345; nothing else does.
        let data = sample();
        // A read of the whole store finds any key, even one that does not
        // match (it counts in DBSIZE, and KEYS must not list it).
        for read in [
            Read::Get(b("b")),
            Read::MGet(vec![b("a"), b("b")]),
            Read::Ttl(b("b"), TtlKind::Seconds),
            Read::DbSize,
            Read::Keys(b("x*")),
        ] {
            assert!(!read.finds_due_key(&data, 12_344), "{read:?}");
            assert!(read.finds_due_key(&data, 12_345), "{read:?}");
        }
        assert!(!Read::Get(b("a")).finds_due_key(&data, u64::MAX));
        assert!(!Read::HGetAll(b("h")).finds_due_key(&data, u64::MAX));
    }

    #[test]
    fn hash_reads_find_what_redis_would() {
        let data = sample();
        let read = |read: Read| read.evaluate(&data, 0);
        assert_eq!(read(Read::HGet(b("h"), b("g"))), bulk_of("long"));
        assert_eq!(read(Read::HGet(b("h"), b("z"))), Reply::Bulk(None));
        assert_eq!(read(Read::HGet(b("z"), b("g"))), Reply::Bulk(None));
        assert_eq!(read(Read::HGet(b("a"), b("g"))), Reply::Error(WRONG_TYPE));
        assert_eq!(
            read(Read::HMGet(b("h"), vec![b("f"), b("z")])),
            Reply::Array(vec![bulk_of("1"), Reply::Bulk(None)])
        );
        assert_eq!(
            read(Read::HGetAll(b("h"))),
            Reply::Map(vec![
                (bulk_of("f"), bulk_of("1")),
                (bulk_of("g"), bulk_of("long"))
            ])
        );
        assert_eq!(read(Read::HGetAll(b("z"))), Reply::Map(Vec::new()));
        assert_eq!(read(Read::HLen(b("h"))), Reply::Integer(2));
        assert_eq!(read(Read::HLen(b("z"))), Reply::Integer(0));
        assert_eq!(read(Read::HExists(b("h"), b("f"))), Reply::Integer(1));
        assert_eq!(read(Read::HStrLen(b("h"), b("g"))), Reply::Integer(4));
        assert_eq!(
            read(Read::HKeys(b("h"))),
            Reply::Array(vec![bulk_of("f"), bulk_of("g")])
        );
        assert_eq!(
            read(Read::HVals(b("h"))),
            Reply::Array(vec![bulk_of("1"), bulk_of("long")])
        );
        assert_eq!(read(Read::HLen(b("a"))), Reply::Error(WRONG_TYPE));
    }

    /// Runs a whole `SCAN`, calling `between` before each call after the
    /// first; the keys found.
    fn scan_all(
        data: &mut Data,
        scan: Scan,
        mut between: impl FnMut(&mut Data, usize),
    ) -> Vec<Bytes> {
        let mut found = Vec::new();
        let mut scan = scan;
        for call in 0.. {
            if call > 0 {
                between(data, call);
            }
            let Reply::Array(reply) = Read::Scan(scan.clone()).evaluate(data, 0) else {
                panic!("SCAN answers an array");
            };
            let [Reply::Bulk(Some(cursor)), Reply::Array(keys)] = &reply[..] else {
                panic!("SCAN answers a cursor and keys: {reply:?}");
            };
            found.extend(keys.iter().map(|key| match key {
                Reply::Bulk(Some(key)) => key.clone(),
                other => panic!("a key: {other:?}"),
            }));
            scan.cursor = std::str::from_utf8(cursor).unwrap().parse().unwrap();
            if scan.cursor == 0 {
                break;
            }
        }
        found
    }

    #[test]
    fn scan_finds_every_key_that_stays_whatever_changes_between_calls() {
        let mut data = Data::default();
        data.begin(1, None);
        for i in 0..500 {
            data.put(
                Bytes::from(format!("stay:{i}")),
                Value::String(b("v")),
                false,
            );
            data.put(Bytes::from(format!("go:{i}")), Value::String(b("v")), false);
        }
        let scan = Scan {
            cursor: 0,
            pattern: Some(b("stay:*")),
            count: 7,
            type_name: Some(b("STRING")),
        };
        let found = scan_all(&mut data, scan, |data, call| {
            // Between calls, keys come and go around the ones that stay.
            for i in call * 5..call * 5 + 5 {
                data.remove(&Bytes::from(format!("go:{i}")));
                data.put(
                    Bytes::from(format!("new:{i}")),
                    Value::String(b("v")),
                    false,
                );
            }
        });
        let mut distinct = found.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 500, "every key that stayed, once");
        assert_eq!(found.len(), 500, "none twice");
        assert!(found.iter().all(|key| key.starts_with(b"stay:")));
        let hashes = Scan {
            cursor: 0,
            pattern: None,
            count: 1000,
            type_name: Some(b("hash")),
        };
        assert!(scan_all(&mut data, hashes, |_, _| {}).is_empty());
    }
}

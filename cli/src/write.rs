//! The store's writes: what each is, and what applying it does to the
//! data and answers. How each is encoded in a log entry is
//! [`crate::entry`]'s.

use bytes::Bytes;

use crate::collections::CollectionWrite;
use crate::data::{Data, Value, WrongType};
use crate::read::Read;
use crate::reply::{Reply, WRONG_TYPE};

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

/// What a set does to the key's expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetExpiry {
    /// The key has none afterwards (a plain `SET`).
    Clear,
    /// The key keeps the one it had (`KEEPTTL`).
    Keep,
    /// It expires this many milliseconds after the entry's time (`EX`,
    /// `PX`).
    After(u64),
    /// It expires at this time, in milliseconds since the Unix epoch
    /// (`EXAT`, `PXAT`).
    At(u64),
}

/// When `EXPIRE` and the like set a key's expiry to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpireAt {
    /// This many milliseconds after the entry's time (`EXPIRE`,
    /// `PEXPIRE`); zero or less removes the key.
    After(i64),
    /// This time, in milliseconds since the Unix epoch (`EXPIREAT`,
    /// `PEXPIREAT`); a time past removes the key.
    At(i64),
}

/// `EXPIRE`'s condition (Redis 7's `NX`, `XX`, `GT`, `LT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpireIf {
    /// Always.
    Always,
    /// Only if the key has no expiry.
    NoExpiry,
    /// Only if the key has one.
    HasExpiry,
    /// Only if the new time is later (no expiry counts as never).
    Later,
    /// Only if the new time is earlier (no expiry counts as never).
    Earlier,
    /// Only if the key has an expiry and the new time is earlier (`XX
    /// LT`).
    EarlierWithExpiry,
}

/// How `HSET` and its kin write and answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashSet {
    /// `HSET`: every pair; answers the number of new fields.
    Count,
    /// `HMSET`: every pair; answers OK.
    Ok,
    /// `HSETNX`: the one pair, if the field is missing; answers 1 or 0.
    IfMissing,
}

/// The options of a conditional set (`SET` with options, `SETNX`,
/// `GETSET`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetOptions {
    /// When to write.
    pub when: When,
    /// Answer the old value (`GET`).
    pub get: bool,
    /// Answer 1 or 0, as `SETNX` does (else OK or nil).
    pub setnx: bool,
    /// What becomes of the key's expiry.
    pub expiry: SetExpiry,
}

/// A write, as proposed to the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Sets `key` to `value`, with no expiry.
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
    /// Sets `key` to `value` when `when` allows, with options.
    SetIf {
        /// The key.
        key: Bytes,
        /// Its new value.
        value: Bytes,
        /// How it sets.
        options: SetOptions,
    },
    /// Removes every key.
    FlushAll,
    /// A transaction (`MULTI` … `EXEC`): its commands applied one after
    /// the other, and nothing else between them, on every node — unless a
    /// watched key's version is no longer the one recorded, and then none.
    Transaction {
        /// Each watched key with its version when `WATCH` looked (0:
        /// missing).
        watched: Vec<(Bytes, u64)>,
        /// The commands.
        ops: Vec<Op>,
    },
    /// Sets, changes or (at a time past) ends `key`'s life.
    Expire {
        /// The key.
        key: Bytes,
        /// When it expires.
        at: ExpireAt,
        /// Only if this holds.
        condition: ExpireIf,
    },
    /// Removes `key`'s expiry.
    Persist(Bytes),
    /// Sets fields of the hash at `key`.
    HSet {
        /// The key.
        key: Bytes,
        /// Each field and its value.
        pairs: Vec<(Bytes, Bytes)>,
        /// How it writes and answers.
        mode: HashSet,
    },
    /// Removes fields of the hash at `key` (and the key, once empty).
    HDel {
        /// The key.
        key: Bytes,
        /// The fields.
        fields: Vec<Bytes>,
    },
    /// Adds `by` to the integer in `field` of the hash at `key`.
    HIncrBy {
        /// The key.
        key: Bytes,
        /// The field.
        field: Bytes,
        /// What to add.
        by: i64,
    },
    /// Nothing but its time: moves the replicated clock, so keys whose
    /// time has come expire (the leader proposes one when a key is due).
    Tick,
    /// A write to a list, set, sorted set or stream.
    Collection(CollectionWrite),
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
    /// `HINCRBY` on a field that is not a 64-bit integer.
    HashNotAnInteger,
    /// `INCR` and the like past the range of a 64-bit integer.
    Overflow,
    /// A command on a key that holds another type.
    WrongType,
    /// An entry this store does not understand (never proposed by this
    /// build; applied as a no-op so that every node stays equal).
    Unknown,
    /// A transaction: each command's reply, in order.
    Transaction(Vec<Reply>),
    /// A transaction not applied, as a watched key changed: nil.
    Aborted,
    /// Any other reply, as the write computed it.
    Reply(Reply),
}

impl From<WrongType> for Applied {
    fn from(_: WrongType) -> Applied {
        Applied::WrongType
    }
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
            Applied::HashNotAnInteger => Reply::Error("ERR hash value is not an integer"),
            Applied::Overflow => Reply::Error("ERR increment or decrement would overflow"),
            Applied::WrongType => Reply::Error(WRONG_TYPE),
            Applied::Unknown => Reply::Error("ERR the store did not understand the command"),
            Applied::Transaction(replies) => Reply::Array(replies),
            Applied::Aborted => Reply::NullArray,
            Applied::Reply(reply) => reply,
        }
    }
}

/// `text` as a 64-bit integer, if it is exactly one.
pub fn integer(text: &[u8]) -> Option<i64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// `current` plus `by`, written as Redis writes integers.
fn add(current: i64, by: i64) -> Result<(i64, Bytes), Applied> {
    let next = current.checked_add(by).ok_or(Applied::Overflow)?;
    Ok((next, Bytes::from(next.to_string())))
}

impl Write {
    /// Applies the write to `data`; what it answers. `data.begin` has
    /// set the clock and index of the entry it came in.
    pub fn apply(self, data: &mut Data) -> Applied {
        self.apply_checked(data).unwrap_or_else(|refused| refused)
    }

    fn apply_checked(self, data: &mut Data) -> Result<Applied, Applied> {
        let applied = match self {
            Write::Set { key, value } => {
                data.put(key, Value::String(value), false);
                Applied::Ok
            }
            Write::Del(keys) => {
                let removed = keys.iter().filter(|key| data.remove(key).is_some()).count();
                Applied::Integer(removed as i64)
            }
            Write::IncrBy { key, by } => {
                let current = match data.string(&key)? {
                    None => 0,
                    Some(value) => integer(value).ok_or(Applied::NotAnInteger)?,
                };
                let (next, text) = add(current, by)?;
                data.put(key, Value::String(text), true);
                Applied::Integer(next)
            }
            Write::MSet(pairs) => {
                for (key, value) in pairs {
                    data.put(key, Value::String(value), false);
                }
                Applied::Ok
            }
            Write::Append { key, value } => {
                let mut joined = data
                    .string(&key)?
                    .map(|old| old.to_vec())
                    .unwrap_or_default();
                joined.extend_from_slice(&value);
                let length = joined.len() as i64;
                data.put(key, Value::String(Bytes::from(joined)), true);
                Applied::Integer(length)
            }
            Write::GetDel(key) => {
                let value = data.string(&key)?.cloned();
                data.remove(&key);
                Applied::Value(value)
            }
            Write::SetIf {
                key,
                value,
                options,
            } => set_if(data, key, value, options)?,
            Write::FlushAll => {
                data.clear();
                Applied::Ok
            }
            Write::Transaction { watched, ops } => {
                if watched
                    .iter()
                    .any(|(key, version)| data.version(key) != *version)
                {
                    return Ok(Applied::Aborted);
                }
                let clock = data.clock();
                Applied::Transaction(
                    ops.into_iter()
                        .map(|op| match op {
                            Op::Write(write) => write.apply(data).into_reply(),
                            Op::Read(read) => read.evaluate(data, clock),
                        })
                        .collect(),
                )
            }
            Write::Expire { key, at, condition } => {
                Applied::Integer(i64::from(expire(data, &key, at, condition)))
            }
            Write::Persist(key) => {
                let had = data
                    .get(&key)
                    .is_some_and(|entry| entry.expires_at.is_some());
                if had {
                    data.set_expiry(&key, None);
                }
                Applied::Integer(i64::from(had))
            }
            Write::HSet { key, pairs, mode } => {
                let mut fields = data.hash(&key)?.cloned().unwrap_or_default();
                let mut added = 0;
                for (field, value) in pairs {
                    if mode == HashSet::IfMissing && fields.contains_key(&field) {
                        continue;
                    }
                    added += i64::from(fields.insert(field, value).is_none());
                }
                if added > 0 || mode != HashSet::IfMissing {
                    data.put(key, Value::Hash(fields), true);
                }
                match mode {
                    HashSet::Ok => Applied::Ok,
                    HashSet::Count | HashSet::IfMissing => Applied::Integer(added),
                }
            }
            Write::HDel { key, fields: names } => {
                let Some(mut fields) = data.hash(&key)?.cloned() else {
                    return Ok(Applied::Integer(0));
                };
                let removed = names
                    .iter()
                    .filter(|name| fields.remove(*name).is_some())
                    .count();
                if fields.is_empty() {
                    data.remove(&key);
                } else if removed > 0 {
                    data.put(key, Value::Hash(fields), true);
                }
                Applied::Integer(removed as i64)
            }
            Write::HIncrBy { key, field, by } => {
                let mut fields = data.hash(&key)?.cloned().unwrap_or_default();
                let current = match fields.get(&field) {
                    None => 0,
                    Some(value) => integer(value).ok_or(Applied::HashNotAnInteger)?,
                };
                let (next, text) = add(current, by)?;
                fields.insert(field, text);
                data.put(key, Value::Hash(fields), true);
                Applied::Integer(next)
            }
            Write::Tick => Applied::Ok,
            Write::Collection(write) => Applied::Reply(write.apply(data)),
        };
        Ok(applied)
    }
}

/// `SET` with its options.
fn set_if(
    data: &mut Data,
    key: Bytes,
    value: Bytes,
    options: SetOptions,
) -> Result<Applied, Applied> {
    let SetOptions {
        when,
        get,
        setnx,
        expiry,
    } = options;
    let exists = data.get(&key).is_some();
    // GET answers the old string, so it refuses a key of another type
    // before writing anything; a plain SET overwrites any type.
    let old = if get {
        data.string(&key)?.cloned()
    } else {
        None
    };
    let writes = match when {
        When::Always => true,
        When::Missing => !exists,
        When::Present => exists,
    };
    if writes {
        data.put(key.clone(), Value::String(value), expiry == SetExpiry::Keep);
        let at = match expiry {
            SetExpiry::Clear | SetExpiry::Keep => None,
            SetExpiry::After(ms) => Some(data.clock().saturating_add(ms)),
            SetExpiry::At(at) => Some(at),
        };
        if at.is_some() {
            data.set_expiry(&key, at);
        }
    }
    Ok(match (get, setnx) {
        (true, _) => Applied::Value(old),
        (false, true) => Applied::Integer(i64::from(writes)),
        (false, false) if writes => Applied::Ok,
        (false, false) => Applied::NotSet,
    })
}

/// `EXPIRE` and its kin: whether the expiry was set (or the key removed).
fn expire(data: &mut Data, key: &Bytes, at: ExpireAt, condition: ExpireIf) -> bool {
    let Some(entry) = data.get(key) else {
        return false;
    };
    let clock = i64::try_from(data.clock()).unwrap_or(i64::MAX);
    let at = match at {
        ExpireAt::After(ms) => clock.saturating_add(ms),
        ExpireAt::At(at) => at,
    };
    // A time before the epoch is as past as the epoch.
    let at = u64::try_from(at).unwrap_or(0);
    let allowed = match (condition, entry.expires_at) {
        (ExpireIf::Always, _) => true,
        (ExpireIf::NoExpiry, current) => current.is_none(),
        (ExpireIf::HasExpiry, current) => current.is_some(),
        (ExpireIf::Later, current) => current.is_some_and(|current| at > current),
        (ExpireIf::Earlier, current) => current.is_none_or(|current| at < current),
        (ExpireIf::EarlierWithExpiry, current) => current.is_some_and(|current| at < current),
    };
    allowed && data.set_expiry(key, Some(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::TtlKind;

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    /// Applies `write` as the entry at `index` stamped `at` would.
    fn apply_at(data: &mut Data, index: u64, at: u64, write: Write) -> Applied {
        data.begin(index, Some(at));
        write.apply(data)
    }

    fn set(key: &str, value: &str) -> Write {
        Write::Set {
            key: b(key),
            value: b(value),
        }
    }

    fn set_if(when: When, get: bool, setnx: bool, value: &str, expiry: SetExpiry) -> Write {
        Write::SetIf {
            key: b("c"),
            value: b(value),
            options: SetOptions {
                when,
                get,
                setnx,
                expiry,
            },
        }
    }

    #[test]
    fn string_writes_apply_as_in_redis() {
        let mut data = Data::default();
        let incr = |by| Write::IncrBy { key: b("n"), by };
        assert_eq!(incr(5).apply(&mut data), Applied::Integer(5));
        assert_eq!(incr(-3).apply(&mut data), Applied::Integer(2));
        set("n", "x").apply(&mut data);
        assert_eq!(incr(1).apply(&mut data), Applied::NotAnInteger);
        Write::Set {
            key: b("n"),
            value: Bytes::from(i64::MAX.to_string()),
        }
        .apply(&mut data);
        assert_eq!(incr(1).apply(&mut data), Applied::Overflow);
        assert_eq!(incr(-1).apply(&mut data), Applied::Integer(i64::MAX - 1));

        let append = |value| Write::Append {
            key: b("s"),
            value: b(value),
        };
        assert_eq!(append("ab").apply(&mut data), Applied::Integer(2));
        assert_eq!(append("cd").apply(&mut data), Applied::Integer(4));
        let mset = Write::MSet(vec![(b("a"), b("1")), (b("a"), b("2"))]);
        assert_eq!(mset.apply(&mut data), Applied::Ok);
        assert_eq!(
            data.string(&b("a")),
            Ok(Some(&b("2"))),
            "the last pair wins"
        );
        let get_del = || Write::GetDel(b("s"));
        assert_eq!(get_del().apply(&mut data), Applied::Value(Some(b("abcd"))));
        assert_eq!(get_del().apply(&mut data), Applied::Value(None));

        let clear = SetExpiry::Clear;
        assert_eq!(
            set_if(When::Present, false, false, "1", clear).apply(&mut data),
            Applied::NotSet
        );
        assert_eq!(
            set_if(When::Missing, false, true, "1", clear).apply(&mut data),
            Applied::Integer(1)
        );
        assert_eq!(
            set_if(When::Missing, false, true, "2", clear).apply(&mut data),
            Applied::Integer(0)
        );
        assert_eq!(
            set_if(When::Missing, false, false, "2", clear).apply(&mut data),
            Applied::NotSet
        );
        assert_eq!(
            set_if(When::Always, true, false, "3", clear).apply(&mut data),
            Applied::Value(Some(b("1")))
        );
        assert_eq!(
            set_if(When::Present, false, false, "4", clear).apply(&mut data),
            Applied::Ok
        );
        assert_eq!(data.string(&b("c")), Ok(Some(&b("4"))));

        let del = Write::Del(vec![b("c"), b("missing")]);
        assert_eq!(del.apply(&mut data), Applied::Integer(1));
        assert_eq!(Write::FlushAll.apply(&mut data), Applied::Ok);
        assert!(data.is_empty());
    }

    #[test]
    fn expiry_follows_the_stamps_of_the_entries() {
        let mut data = Data::default();
        let ttl = |data: &Data, key: &str| {
            crate::read::Read::Ttl(b(key), TtlKind::Millis).evaluate(data, data.clock())
        };
        // SET EX counts from the entry's time.
        let set_ex = set_if(When::Always, false, false, "v", SetExpiry::After(10_000));
        assert_eq!(apply_at(&mut data, 1, 1_000, set_ex), Applied::Ok);
        assert_eq!(ttl(&data, "c"), Reply::Integer(10_000));
        // INCR and APPEND keep the expiry, SET drops it, KEEPTTL keeps it.
        apply_at(&mut data, 2, 2_000, set("n", "1"));
        let expire = |key: &str, at, condition| Write::Expire {
            key: b(key),
            at,
            condition,
        };
        let in_5s = ExpireAt::After(5_000);
        assert_eq!(
            apply_at(&mut data, 3, 2_000, expire("n", in_5s, ExpireIf::Always)),
            Applied::Integer(1)
        );
        apply_at(&mut data, 4, 3_000, Write::IncrBy { key: b("n"), by: 1 });
        assert_eq!(ttl(&data, "n"), Reply::Integer(4_000));
        let keep = set_if(When::Always, false, false, "k", SetExpiry::Keep);
        apply_at(&mut data, 5, 3_000, keep);
        assert_eq!(ttl(&data, "c"), Reply::Integer(8_000));
        apply_at(&mut data, 6, 3_000, set("c", "plain"));
        assert_eq!(ttl(&data, "c"), Reply::Integer(-1));
        assert_eq!(ttl(&data, "missing"), Reply::Integer(-2));

        // The conditions of Redis 7.
        let cases = [
            (ExpireIf::NoExpiry, "n", 4_500, 0),
            (ExpireIf::NoExpiry, "c", 4_500, 1),
            (ExpireIf::HasExpiry, "n", 4_500, 1),
            (ExpireIf::Later, "n", 4_000, 0),
            (ExpireIf::Earlier, "n", 4_000, 1),
            (ExpireIf::EarlierWithExpiry, "missing", 1, 0),
        ];
        for (index, (condition, key, at, answer)) in (7..).zip(cases) {
            let write = expire(key, ExpireAt::At(at), condition);
            assert_eq!(
                apply_at(&mut data, index, 3_000, write),
                Applied::Integer(answer),
                "{condition:?} on {key}"
            );
        }
        assert_eq!(
            apply_at(&mut data, 20, 3_000, Write::Persist(b("c"))),
            Applied::Integer(1)
        );
        assert_eq!(
            apply_at(&mut data, 21, 3_000, Write::Persist(b("c"))),
            Applied::Integer(0)
        );
        // n expires at 4 000 (c no longer expires): an entry stamped then
        // removes it.
        assert!(data.get(&b("n")).is_some());
        apply_at(&mut data, 22, 3_999, Write::Tick);
        assert!(data.get(&b("n")).is_some());
        apply_at(&mut data, 23, 4_000, Write::Tick);
        assert!(data.get(&b("n")).is_none(), "expired by the tick");
        // A time already past removes the key at once, and says so.
        let past = expire("c", ExpireAt::After(-1), ExpireIf::Always);
        assert_eq!(apply_at(&mut data, 24, 5_000, past), Applied::Integer(1));
        assert!(data.is_empty());
        // INCR after a key's time starts again from nothing.
        let short = set_if(When::Always, false, false, "41", SetExpiry::After(10));
        apply_at(&mut data, 25, 6_000, short);
        assert_eq!(
            apply_at(&mut data, 26, 6_010, Write::IncrBy { key: b("c"), by: 1 }),
            Applied::Integer(1)
        );
    }

    #[test]
    fn hashes_apply_as_in_redis_and_types_are_kept_apart() {
        let mut data = Data::default();
        let hset = |pairs: &[(&str, &str)], mode| Write::HSet {
            key: b("h"),
            pairs: pairs.iter().map(|(f, v)| (b(f), b(v))).collect(),
            mode,
        };
        assert_eq!(
            hset(&[("a", "1"), ("b", "2")], HashSet::Count).apply(&mut data),
            Applied::Integer(2)
        );
        assert_eq!(
            hset(&[("a", "3"), ("c", "4")], HashSet::Count).apply(&mut data),
            Applied::Integer(1)
        );
        assert_eq!(
            hset(&[("a", "9")], HashSet::IfMissing).apply(&mut data),
            Applied::Integer(0)
        );
        assert_eq!(
            hset(&[("d", "5")], HashSet::Ok).apply(&mut data),
            Applied::Ok
        );
        let incr = |field: &str, by| Write::HIncrBy {
            key: b("h"),
            field: b(field),
            by,
        };
        assert_eq!(incr("a", 4).apply(&mut data), Applied::Integer(7));
        assert_eq!(incr("new", -2).apply(&mut data), Applied::Integer(-2));
        hset(&[("x", "text")], HashSet::Count).apply(&mut data);
        assert_eq!(incr("x", 1).apply(&mut data), Applied::HashNotAnInteger);
        let fields = data.hash(&b("h")).unwrap().unwrap();
        assert_eq!(fields.get(&b("a")), Some(&b("7")));
        assert_eq!(fields.len(), 6);

        // A string command on a hash, and a hash command on a string.
        set("s", "v").apply(&mut data);
        assert_eq!(
            Write::IncrBy { key: b("h"), by: 1 }.apply(&mut data),
            Applied::WrongType
        );
        assert_eq!(Write::GetDel(b("h")).apply(&mut data), Applied::WrongType);
        let set_get = Write::SetIf {
            key: b("h"),
            value: b("v"),
            options: SetOptions {
                when: When::Always,
                get: true,
                setnx: false,
                expiry: SetExpiry::Clear,
            },
        };
        assert_eq!(set_get.apply(&mut data), Applied::WrongType);
        assert!(data.hash(&b("h")).unwrap().is_some(), "left as it was");
        let on_string = Write::HSet {
            key: b("s"),
            pairs: vec![(b("f"), b("v"))],
            mode: HashSet::Count,
        };
        assert_eq!(on_string.apply(&mut data), Applied::WrongType);

        // Deleting the last field deletes the key.
        let hdel = |names: &[&str]| Write::HDel {
            key: b("h"),
            fields: names.iter().map(|name| b(name)).collect(),
        };
        assert_eq!(
            hdel(&["a", "b", "missing"]).apply(&mut data),
            Applied::Integer(2)
        );
        assert_eq!(
            hdel(&["c", "d", "new", "x"]).apply(&mut data),
            Applied::Integer(4)
        );
        assert!(data.get(&b("h")).is_none());
        assert_eq!(hdel(&["a"]).apply(&mut data), Applied::Integer(0));
        // SET overwrites a key of any type.
        hset(&[("a", "1")], HashSet::Count).apply(&mut data);
        set("h", "now a string").apply(&mut data);
        assert_eq!(data.string(&b("h")), Ok(Some(&b("now a string"))));
    }

    #[test]
    fn a_transaction_applies_its_commands_in_order_and_answers_each() {
        let mut data = Data::default();
        let transaction = Write::Transaction {
            watched: Vec::new(),
            ops: vec![
                Op::Write(set("n", "x")),
                Op::Read(Read::Get(b("n"))),
                // An error in one command does not stop the others, as in
                // Redis.
                Op::Write(Write::IncrBy { key: b("n"), by: 1 }),
                Op::Write(set("n", "5")),
                Op::Write(Write::IncrBy { key: b("n"), by: 1 }),
                Op::Read(Read::DbSize),
            ],
        };
        assert_eq!(
            transaction.apply(&mut data).into_reply(),
            Reply::Array(vec![
                Reply::Status("OK"),
                Reply::Bulk(Some(b("x"))),
                Reply::Error("ERR value is not an integer or out of range"),
                Reply::Status("OK"),
                Reply::Integer(6),
                Reply::Integer(1),
            ])
        );
        assert_eq!(data.string(&b("n")), Ok(Some(&b("6"))));
    }

    #[test]
    fn a_watched_key_written_since_stops_the_whole_transaction() {
        let mut data = Data::default();
        apply_at(&mut data, 1, 1_000, set("w", "1"));
        let version = data.version(&b("w"));
        let missing = data.version(&b("later"));
        let transaction = |watched: Vec<(Bytes, u64)>| Write::Transaction {
            watched,
            ops: vec![Op::Write(set("out", "done"))],
        };
        let watched = vec![(b("w"), version), (b("later"), missing)];
        // Unchanged: applied.
        let applied = apply_at(&mut data, 2, 1_000, transaction(watched.clone()));
        assert_eq!(applied, Applied::Transaction(vec![Reply::Status("OK")]));
        // Written since (even to the same value): nothing applied.
        apply_at(&mut data, 3, 1_000, set("w", "1"));
        apply_at(&mut data, 4, 1_000, Write::Del(vec![b("out")]));
        let applied = apply_at(&mut data, 5, 1_000, transaction(watched.clone()));
        assert_eq!(applied.into_reply(), Reply::NullArray);
        assert!(data.get(&b("out")).is_none());
        // A watched key that appeared, or expired, counts as written.
        let watched = vec![(b("w"), data.version(&b("w"))), (b("later"), 0)];
        apply_at(&mut data, 6, 1_000, set("later", "x"));
        let applied = apply_at(&mut data, 7, 1_000, transaction(watched));
        assert_eq!(applied, Applied::Aborted);
        let expire = Write::Expire {
            key: b("w"),
            at: ExpireAt::At(2_000),
            condition: ExpireIf::Always,
        };
        apply_at(&mut data, 8, 1_000, expire);
        let watched = vec![(b("w"), data.version(&b("w")))];
        let applied = apply_at(&mut data, 9, 2_000, transaction(watched));
        assert_eq!(applied, Applied::Aborted);
    }
}

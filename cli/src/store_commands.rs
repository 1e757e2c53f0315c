//! Parsing the store's commands on expiry, hashes and iteration: `EXPIRE`
//! and its kin, `TTL` and its kin, `PERSIST`, the `H*` commands and
//! `SCAN`; and `SET`'s options.

use bytes::Bytes;

use crate::read::{Read, Scan, TtlKind};
use crate::write::{integer, ExpireAt, ExpireIf, HashSet, Op, SetExpiry, SetOptions, When, Write};

/// The largest time to live or Unix time, in milliseconds, that a command
/// may name: far beyond any real one, and far from overflowing when added
/// to a clock.
const MAX_MILLIS: i64 = i64::MAX / 4;

/// Parses the command named `name` (lower case) with arguments `rest`, if
/// it is one of this module's; the error is the reply, without `-`.
pub fn parse(name: &str, rest: Vec<Bytes>) -> Option<Result<Op, String>> {
    let parsed = match name {
        "expire" | "pexpire" | "expireat" | "pexpireat" => parse_expire(name, rest),
        "ttl" | "pttl" | "expiretime" | "pexpiretime" => {
            let kind = match name {
                "ttl" => TtlKind::Seconds,
                "pttl" => TtlKind::Millis,
                "expiretime" => TtlKind::AtSeconds,
                _ => TtlKind::AtMillis,
            };
            one_key(name, rest).map(|key| Op::Read(Read::Ttl(key, kind)))
        }
        "persist" => one_key(name, rest).map(|key| Op::Write(Write::Persist(key))),
        "hset" | "hmset" => parse_hset(name, rest),
        "hsetnx" => match <[Bytes; 3]>::try_from(rest) {
            Ok([key, field, value]) => Ok(Op::Write(Write::HSet {
                key,
                pairs: vec![(field, value)],
                mode: HashSet::IfMissing,
            })),
            Err(_) => Err(wrong_arity(name)),
        },
        "hdel" => match rest.split_first() {
            Some((key, fields)) if !fields.is_empty() => Ok(Op::Write(Write::HDel {
                key: key.clone(),
                fields: fields.to_vec(),
            })),
            _ => Err(wrong_arity(name)),
        },
        "hincrby" => match <[Bytes; 3]>::try_from(rest) {
            Ok([key, field, by]) => integer(&by)
                .ok_or_else(|| "ERR value is not an integer or out of range".to_string())
                .map(|by| Op::Write(Write::HIncrBy { key, field, by })),
            Err(_) => Err(wrong_arity(name)),
        },
        "hget" | "hexists" | "hstrlen" => match <[Bytes; 2]>::try_from(rest) {
            Ok([key, field]) => Ok(Op::Read(match name {
                "hget" => Read::HGet(key, field),
                "hexists" => Read::HExists(key, field),
                _ => Read::HStrLen(key, field),
            })),
            Err(_) => Err(wrong_arity(name)),
        },
        "hmget" => match rest.split_first() {
            Some((key, fields)) if !fields.is_empty() => {
                Ok(Op::Read(Read::HMGet(key.clone(), fields.to_vec())))
            }
            _ => Err(wrong_arity(name)),
        },
        "hgetall" | "hlen" | "hkeys" | "hvals" => one_key(name, rest).map(|key| {
            Op::Read(match name {
                "hgetall" => Read::HGetAll(key),
                "hlen" => Read::HLen(key),
                "hkeys" => Read::HKeys(key),
                _ => Read::HVals(key),
            })
        }),
        "scan" => parse_scan(rest),
        _ => return None,
    };
    Some(parsed)
}

fn wrong_arity(name: &str) -> String {
    format!("ERR wrong number of arguments for '{name}' command")
}

fn one_key(name: &str, rest: Vec<Bytes>) -> Result<Bytes, String> {
    match <[Bytes; 1]>::try_from(rest) {
        Ok([key]) => Ok(key),
        Err(_) => Err(wrong_arity(name)),
    }
}

fn not_an_integer() -> String {
    "ERR value is not an integer or out of range".into()
}

/// `EXPIRE key seconds [NX | XX | GT | LT]` and its kin.
fn parse_expire(name: &str, rest: Vec<Bytes>) -> Result<Op, String> {
    let mut rest = rest.into_iter();
    let (Some(key), Some(time)) = (rest.next(), rest.next()) else {
        return Err(wrong_arity(name));
    };
    let time = integer(&time).ok_or_else(not_an_integer)?;
    let millis = if name.starts_with('p') {
        Some(time)
    } else {
        time.checked_mul(1000)
    };
    let millis = millis
        .filter(|millis| millis.abs() <= MAX_MILLIS)
        .ok_or_else(|| format!("ERR invalid expire time in '{name}' command"))?;
    let at = if name.ends_with("at") {
        ExpireAt::At(millis)
    } else {
        ExpireAt::After(millis)
    };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in rest {
        match option.to_ascii_lowercase().as_slice() {
            b"nx" => nx = true,
            b"xx" => xx = true,
            b"gt" => gt = true,
            b"lt" => lt = true,
            _ => {
                let shown = String::from_utf8_lossy(&option).into_owned();
                return Err(format!("ERR Unsupported option {shown}"));
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err("ERR NX and XX, GT or LT options at the same time are not compatible".into());
    }
    if gt && lt {
        return Err("ERR GT and LT options at the same time are not compatible".into());
    }
    // GT already needs an expiry (none counts as never, which nothing is
    // later than), so XX adds nothing to it; it does to LT.
    let condition = match (nx, xx, gt, lt) {
        (true, ..) => ExpireIf::NoExpiry,
        (_, _, true, _) => ExpireIf::Later,
        (_, true, _, true) => ExpireIf::EarlierWithExpiry,
        (_, _, _, true) => ExpireIf::Earlier,
        (_, true, ..) => ExpireIf::HasExpiry,
        _ => ExpireIf::Always,
    };
    Ok(Op::Write(Write::Expire { key, at, condition }))
}

/// `HSET key field value [field value ...]`, `HMSET` alike.
fn parse_hset(name: &str, rest: Vec<Bytes>) -> Result<Op, String> {
    if rest.len() < 3 || rest.len().is_multiple_of(2) {
        return Err(wrong_arity(name));
    }
    let mut rest = rest.into_iter();
    let key = rest.next().unwrap_or_default();
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    while let (Some(field), Some(value)) = (rest.next(), rest.next()) {
        pairs.push((field, value));
    }
    let mode = if name == "hset" {
        HashSet::Count
    } else {
        HashSet::Ok
    };
    Ok(Op::Write(Write::HSet { key, pairs, mode }))
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
fn parse_scan(rest: Vec<Bytes>) -> Result<Op, String> {
    let mut rest = rest.into_iter();
    let Some(cursor) = rest.next() else {
        return Err(wrong_arity("scan"));
    };
    let cursor = std::str::from_utf8(&cursor)
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or("ERR invalid cursor")?;
    let mut scan = Scan {
        cursor,
        pattern: None,
        count: 10,
        type_name: None,
    };
    while let Some(option) = rest.next() {
        let value = rest.next().ok_or("ERR syntax error")?;
        match option.to_ascii_lowercase().as_slice() {
            b"match" => scan.pattern = Some(value),
            b"count" => {
                scan.count = integer(&value)
                    .filter(|count| *count >= 1)
                    .and_then(|count| usize::try_from(count).ok())
                    .ok_or("ERR syntax error")?
            }
            b"type" => scan.type_name = Some(value),
            _ => return Err("ERR syntax error".into()),
        }
    }
    Ok(Op::Read(Read::Scan(scan)))
}

/// `SET key value [NX | XX] [GET] [EX s | PX ms | EXAT t | PXAT t |
/// KEEPTTL]`: a plain set, or one with options.
pub fn parse_set(
    key: Bytes,
    value: Bytes,
    options: impl Iterator<Item = Bytes>,
) -> Result<Write, String> {
    let (mut when, mut get, mut expiry) = (When::Always, false, SetExpiry::Clear);
    let mut options = options.peekable();
    while let Some(option) = options.next() {
        let option = option.to_ascii_lowercase();
        match option.as_slice() {
            b"nx" if when == When::Always => when = When::Missing,
            b"xx" if when == When::Always => when = When::Present,
            b"get" => get = true,
            b"keepttl" if expiry == SetExpiry::Clear => expiry = SetExpiry::Keep,
            b"ex" | b"px" | b"exat" | b"pxat" if expiry == SetExpiry::Clear => {
                let time = options.next().ok_or("ERR syntax error")?;
                let time = integer(&time).ok_or_else(not_an_integer)?;
                let millis = if option.starts_with(b"p") {
                    Some(time)
                } else {
                    time.checked_mul(1000)
                };
                let millis = millis
                    .filter(|millis| (1..=MAX_MILLIS).contains(millis))
                    .ok_or("ERR invalid expire time in 'set' command")?
                    as u64;
                expiry = if option.ends_with(b"at") {
                    SetExpiry::At(millis)
                } else {
                    SetExpiry::After(millis)
                };
            }
            _ => return Err("ERR syntax error".into()),
        }
    }
    if when == When::Always && !get && expiry == SetExpiry::Clear {
        return Ok(Write::Set { key, value });
    }
    Ok(Write::SetIf {
        key,
        value,
        options: SetOptions {
            when,
            get,
            setnx: false,
            expiry,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::{parse_words as parse, Command};

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    fn write(write: Write) -> Result<Command, String> {
        Ok(Command::Write(write))
    }

    #[test]
    fn set_takes_redis_expiry_options() {
        let set = |when, get, expiry| {
            write(Write::SetIf {
                key: b("k"),
                value: b("v"),
                options: SetOptions {
                    when,
                    get,
                    setnx: false,
                    expiry,
                },
            })
        };
        assert_eq!(
            parse("SET k v EX 10"),
            set(When::Always, false, SetExpiry::After(10_000))
        );
        assert_eq!(
            parse("set k v px 250 nx"),
            set(When::Missing, false, SetExpiry::After(250))
        );
        assert_eq!(
            parse("SET k v EXAT 1700000000 GET"),
            set(When::Always, true, SetExpiry::At(1_700_000_000_000))
        );
        assert_eq!(
            parse("SET k v PXAT 5 XX"),
            set(When::Present, false, SetExpiry::At(5))
        );
        assert_eq!(
            parse("SET k v KEEPTTL"),
            set(When::Always, false, SetExpiry::Keep)
        );
        for bad in [
            "SET k v EX 0",
            "SET k v PX -1",
            "SET k v EX 9223372036854775807",
        ] {
            assert_eq!(
                parse(bad),
                Err("ERR invalid expire time in 'set' command".into()),
                "{bad}"
            );
        }
        for bad in ["SET k v EX", "SET k v EX 1 PX 1", "SET k v KEEPTTL EX 1"] {
            assert_eq!(parse(bad), Err("ERR syntax error".into()), "{bad}");
        }
        assert_eq!(
            parse("SET k v EX ten"),
            Err("ERR value is not an integer or out of range".into())
        );
    }

    #[test]
    fn expiry_commands_parse_with_redis_7_conditions() {
        let expire = |at, condition| {
            write(Write::Expire {
                key: b("k"),
                at,
                condition,
            })
        };
        assert_eq!(
            parse("EXPIRE k 10"),
            expire(ExpireAt::After(10_000), ExpireIf::Always)
        );
        assert_eq!(
            parse("pexpire k -5 nx"),
            expire(ExpireAt::After(-5), ExpireIf::NoExpiry)
        );
        assert_eq!(
            parse("EXPIREAT k 100 XX"),
            expire(ExpireAt::At(100_000), ExpireIf::HasExpiry)
        );
        assert_eq!(
            parse("PEXPIREAT k 100 gt xx"),
            expire(ExpireAt::At(100), ExpireIf::Later)
        );
        assert_eq!(
            parse("EXPIRE k 1 XX LT"),
            expire(ExpireAt::After(1_000), ExpireIf::EarlierWithExpiry)
        );
        assert!(parse("EXPIRE k 1 NX XX").unwrap_err().contains("NX and XX"));
        assert!(parse("EXPIRE k 1 GT LT").unwrap_err().contains("GT and LT"));
        assert_eq!(
            parse("EXPIRE k 1 SOON"),
            Err("ERR Unsupported option SOON".into())
        );
        assert_eq!(
            parse("EXPIRE k 9223372036854775807"),
            Err("ERR invalid expire time in 'expire' command".into())
        );
        assert!(parse("EXPIRE k").unwrap_err().contains("wrong number"));
        assert_eq!(
            parse("PTTL k"),
            Ok(Command::Read(Read::Ttl(b("k"), TtlKind::Millis)))
        );
        assert_eq!(
            parse("expiretime k"),
            Ok(Command::Read(Read::Ttl(b("k"), TtlKind::AtSeconds)))
        );
        assert_eq!(parse("PERSIST k"), write(Write::Persist(b("k"))));
        assert!(parse("TTL a b").unwrap_err().contains("wrong number"));
    }

    #[test]
    fn hash_commands_and_scan_parse() {
        assert_eq!(
            parse("HSET h a 1 b 2"),
            write(Write::HSet {
                key: b("h"),
                pairs: vec![(b("a"), b("1")), (b("b"), b("2"))],
                mode: HashSet::Count,
            })
        );
        assert!(parse("HSET h a").unwrap_err().contains("wrong number"));
        assert!(parse("HMSET h a 1 b").unwrap_err().contains("wrong number"));
        assert_eq!(
            parse("HINCRBY h f -3"),
            write(Write::HIncrBy {
                key: b("h"),
                field: b("f"),
                by: -3
            })
        );
        assert_eq!(
            parse("HDEL h a b"),
            write(Write::HDel {
                key: b("h"),
                fields: vec![b("a"), b("b")]
            })
        );
        assert_eq!(
            parse("HMGET h a b"),
            Ok(Command::Read(Read::HMGet(b("h"), vec![b("a"), b("b")])))
        );
        assert_eq!(parse("hgetall h"), Ok(Command::Read(Read::HGetAll(b("h")))));
        assert_eq!(
            parse("SCAN 0"),
            Ok(Command::Read(Read::Scan(Scan {
                cursor: 0,
                pattern: None,
                count: 10,
                type_name: None
            })))
        );
        assert_eq!(
            parse("scan 42 MATCH user:* COUNT 100 TYPE hash"),
            Ok(Command::Read(Read::Scan(Scan {
                cursor: 42,
                pattern: Some(b("user:*")),
                count: 100,
                type_name: Some(b("hash"))
            })))
        );
        assert_eq!(parse("SCAN x"), Err("ERR invalid cursor".into()));
        assert_eq!(parse("SCAN 0 COUNT 0"), Err("ERR syntax error".into()));
        assert_eq!(parse("SCAN 0 MATCH"), Err("ERR syntax error".into()));
    }
}

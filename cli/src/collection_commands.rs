//! Parsing the commands on lists, sets, sorted sets and streams.

use bytes::Bytes;

use crate::collections::{parse_stream_id, CollectionRead, CollectionWrite};
use crate::data::StreamId;
use crate::read::Read;
use crate::write::{integer, Op, Write};

/// Parses the command named `name` (lower case) with arguments `rest`, if
/// it is one of this module's; the error is the reply, without `-`.
pub fn parse(name: &str, rest: &[Bytes]) -> Option<Result<Op, String>> {
    let write = |write| Ok(Op::Write(Write::Collection(write)));
    let read = |read| Ok(Op::Read(Read::Collection(read)));
    let arity = || {
        Err(format!(
            "ERR wrong number of arguments for '{name}' command"
        ))
    };
    let parsed = match (name, rest) {
        ("lpush" | "rpush", [key, values @ ..]) if !values.is_empty() => {
            write(CollectionWrite::Push {
                key: key.clone(),
                values: values.to_vec(),
                front: name == "lpush",
            })
        }
        ("lpop" | "rpop", [key, count @ ..]) if count.len() <= 1 => match optional_count(count) {
            Ok(count) => write(CollectionWrite::Pop {
                key: key.clone(),
                count,
                front: name == "lpop",
            }),
            Err(error) => Err(error),
        },
        ("lrange", [key, start, stop]) => match (integer(start), integer(stop)) {
            (Some(start), Some(stop)) => read(CollectionRead::Range(key.clone(), start, stop)),
            _ => Err(not_an_integer()),
        },
        ("llen", [key]) => read(CollectionRead::Length(key.clone())),
        ("lindex", [key, index]) => match integer(index) {
            Some(index) => read(CollectionRead::Index(key.clone(), index)),
            None => Err(not_an_integer()),
        },
        ("sadd" | "srem", [key, members @ ..]) if !members.is_empty() => {
            let (key, members) = (key.clone(), members.to_vec());
            write(if name == "sadd" {
                CollectionWrite::SetAdd { key, members }
            } else {
                CollectionWrite::SetRemove { key, members }
            })
        }
        ("spop", [key, count @ ..]) if count.len() <= 1 => match optional_count(count) {
            Ok(count) => write(CollectionWrite::SetPop {
                key: key.clone(),
                count,
            }),
            Err(error) => Err(error),
        },
        ("smembers", [key]) => read(CollectionRead::Members(key.clone())),
        ("sismember", [key, member]) => read(CollectionRead::IsMember(key.clone(), member.clone())),
        ("scard", [key]) => read(CollectionRead::SetSize(key.clone())),
        ("zadd", [key, flat @ ..]) if flat.len() >= 2 => parse_zadd(key, flat),
        ("zrem", [key, members @ ..]) if !members.is_empty() => {
            write(CollectionWrite::SortedRemove {
                key: key.clone(),
                members: members.to_vec(),
            })
        }
        ("zpopmin" | "zpopmax", [key, count @ ..]) if count.len() <= 1 => {
            match optional_count(count) {
                Ok(count) => write(CollectionWrite::SortedPop {
                    key: key.clone(),
                    count,
                    lowest: name == "zpopmin",
                }),
                Err(error) => Err(error),
            }
        }
        ("zrange", [key, start, stop, options @ ..]) => parse_zrange(key, start, stop, options),
        ("zcard", [key]) => read(CollectionRead::SortedSize(key.clone())),
        ("zscore", [key, member]) => read(CollectionRead::Score(key.clone(), member.clone())),
        ("xadd", [key, id, flat @ ..]) => parse_xadd(key, id, flat),
        ("xlen", [key]) => read(CollectionRead::StreamLength(key.clone())),
        ("xrange", [key, start, end, options @ ..]) => parse_xrange(key, start, end, options),
        (
            "lpush" | "rpush" | "lpop" | "rpop" | "lrange" | "llen" | "lindex" | "sadd" | "srem"
            | "spop" | "smembers" | "sismember" | "scard" | "zadd" | "zrem" | "zpopmin" | "zpopmax"
            | "zrange" | "zcard" | "zscore" | "xadd" | "xlen" | "xrange",
            _,
        ) => arity(),
        _ => return None,
    };
    Some(parsed)
}

fn not_an_integer() -> String {
    "ERR value is not an integer or out of range".into()
}

/// An optional non-negative count, as `LPOP`'s.
fn optional_count(count: &[Bytes]) -> Result<Option<u64>, String> {
    match count.first() {
        None => Ok(None),
        Some(count) => integer(count)
            .and_then(|count| u64::try_from(count).ok())
            .map(Some)
            .ok_or_else(|| "ERR value is out of range, must be positive".into()),
    }
}

/// `ZADD key score member [score member ...]`; its options are refused.
fn parse_zadd(key: &Bytes, flat: &[Bytes]) -> Result<Op, String> {
    let first = flat[0].to_ascii_lowercase();
    if matches!(
        first.as_slice(),
        b"nx" | b"xx" | b"gt" | b"lt" | b"ch" | b"incr"
    ) {
        return Err("ERR ZADD's options (NX, XX, GT, LT, CH, INCR) are not supported yet".into());
    }
    if !flat.len().is_multiple_of(2) {
        return Err("ERR syntax error".into());
    }
    let pairs = flat
        .chunks(2)
        .map(|pair| {
            let score = std::str::from_utf8(&pair[0])
                .ok()
                .and_then(|text| text.parse::<f64>().ok())
                .filter(|score| !score.is_nan())
                .ok_or_else(|| "ERR value is not a valid float".to_string())?;
            Ok((score, pair[1].clone()))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Op::Write(Write::Collection(CollectionWrite::SortedAdd {
        key: key.clone(),
        pairs,
    })))
}

/// `ZRANGE key start stop [WITHSCORES]`, by rank; its other forms are
/// refused.
fn parse_zrange(key: &Bytes, start: &Bytes, stop: &Bytes, options: &[Bytes]) -> Result<Op, String> {
    let with_scores = match options {
        [] => false,
        [option] if option.eq_ignore_ascii_case(b"withscores") => true,
        _ => {
            return Err("ERR only ZRANGE key start stop [WITHSCORES] (by rank) is supported".into())
        }
    };
    match (integer(start), integer(stop)) {
        (Some(start), Some(stop)) => Ok(Op::Read(Read::Collection(CollectionRead::SortedRange(
            key.clone(),
            start,
            stop,
            with_scores,
        )))),
        _ => Err(not_an_integer()),
    }
}

/// A stream id as a command names it: `ms-seq`, or `ms` (its sequence
/// then `default_sequence`).
fn stream_id(field: &[u8], default_sequence: u64) -> Result<StreamId, String> {
    let invalid = || "ERR Invalid stream ID specified as stream command argument".to_string();
    if field.contains(&b'-') {
        return parse_stream_id(field).ok_or_else(invalid);
    }
    let millis = std::str::from_utf8(field)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(invalid)?;
    Ok(StreamId {
        millis,
        sequence: default_sequence,
    })
}

/// `XADD key <* | id> field value [field value ...]`; its options
/// (`NOMKSTREAM`, `MAXLEN`, `MINID`) are refused.
fn parse_xadd(key: &Bytes, id: &Bytes, flat: &[Bytes]) -> Result<Op, String> {
    let lower = id.to_ascii_lowercase();
    if matches!(lower.as_slice(), b"nomkstream" | b"maxlen" | b"minid") {
        return Err("ERR XADD's options (NOMKSTREAM, MAXLEN, MINID) are not supported yet".into());
    }
    if flat.is_empty() || !flat.len().is_multiple_of(2) {
        return Err("ERR wrong number of arguments for 'xadd' command".into());
    }
    let id = match &id[..] {
        b"*" => None,
        explicit => Some(stream_id(explicit, 0)?),
    };
    let pairs = flat
        .chunks(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect();
    Ok(Op::Write(Write::Collection(CollectionWrite::StreamAdd {
        key: key.clone(),
        id,
        pairs,
    })))
}

/// `XRANGE key start end [COUNT n]`, with `-` and `+` for the ends.
fn parse_xrange(key: &Bytes, start: &Bytes, end: &Bytes, options: &[Bytes]) -> Result<Op, String> {
    let start = match &start[..] {
        b"-" => StreamId::default(),
        start => stream_id(start, 0)?,
    };
    let end = match &end[..] {
        b"+" => StreamId {
            millis: u64::MAX,
            sequence: u64::MAX,
        },
        end => stream_id(end, u64::MAX)?,
    };
    let count = match options {
        [] => None,
        [word, count] if word.eq_ignore_ascii_case(b"count") => Some(
            integer(count)
                .and_then(|count| u64::try_from(count).ok())
                .ok_or_else(not_an_integer)?,
        ),
        _ => return Err("ERR syntax error".into()),
    };
    Ok(Op::Read(Read::Collection(CollectionRead::StreamRange(
        key.clone(),
        start,
        end,
        count,
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::{parse_words as parse, Command};

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    #[test]
    fn collection_commands_parse_as_redis_names_them() {
        let write = |write| Ok(Command::Write(Write::Collection(write)));
        let read = |read| Ok(Command::Read(Read::Collection(read)));
        assert_eq!(
            parse("LPUSH l a b"),
            write(CollectionWrite::Push {
                key: b("l"),
                values: vec![b("a"), b("b")],
                front: true
            })
        );
        assert_eq!(
            parse("rpop l 2"),
            write(CollectionWrite::Pop {
                key: b("l"),
                count: Some(2),
                front: false
            })
        );
        assert_eq!(
            parse("LPOP l -1"),
            Err("ERR value is out of range, must be positive".into())
        );
        assert_eq!(
            parse("LRANGE l 0 -1"),
            read(CollectionRead::Range(b("l"), 0, -1))
        );
        assert_eq!(
            parse("SPOP s"),
            write(CollectionWrite::SetPop {
                key: b("s"),
                count: None
            })
        );
        assert_eq!(
            parse("ZADD z 1.5 a -inf b"),
            write(CollectionWrite::SortedAdd {
                key: b("z"),
                pairs: vec![(1.5, b("a")), (f64::NEG_INFINITY, b("b"))]
            })
        );
        assert_eq!(
            parse("ZADD z nan a"),
            Err("ERR value is not a valid float".into())
        );
        assert!(parse("ZADD z NX 1 a")
            .unwrap_err()
            .contains("not supported"));
        assert_eq!(parse("ZADD z 1 a 2"), Err("ERR syntax error".into()));
        assert_eq!(
            parse("ZPOPMIN z"),
            write(CollectionWrite::SortedPop {
                key: b("z"),
                count: None,
                lowest: true
            })
        );
        assert_eq!(
            parse("zrange z 0 -1 WITHSCORES"),
            read(CollectionRead::SortedRange(b("z"), 0, -1, true))
        );
        assert!(parse("ZRANGE z 0 1 BYSCORE")
            .unwrap_err()
            .contains("by rank"));
        assert_eq!(
            parse("XADD x * f v"),
            write(CollectionWrite::StreamAdd {
                key: b("x"),
                id: None,
                pairs: vec![(b("f"), b("v"))]
            })
        );
        assert_eq!(
            parse("XADD x 5 f v"),
            write(CollectionWrite::StreamAdd {
                key: b("x"),
                id: Some(StreamId {
                    millis: 5,
                    sequence: 0
                }),
                pairs: vec![(b("f"), b("v"))]
            })
        );
        assert!(parse("XADD x MAXLEN 5 * f v")
            .unwrap_err()
            .contains("not supported"));
        assert!(parse("XADD x * f").unwrap_err().contains("wrong number"));
        assert!(parse("XADD x 1-x f v")
            .unwrap_err()
            .contains("Invalid stream ID"));
        assert_eq!(
            parse("XRANGE x - + COUNT 2"),
            read(CollectionRead::StreamRange(
                b("x"),
                StreamId::default(),
                StreamId {
                    millis: u64::MAX,
                    sequence: u64::MAX
                },
                Some(2)
            ))
        );
        assert_eq!(
            parse("XRANGE x 5 7"),
            read(CollectionRead::StreamRange(
                b("x"),
                StreamId {
                    millis: 5,
                    sequence: 0
                },
                StreamId {
                    millis: 7,
                    sequence: u64::MAX
                },
                None
            ))
        );
        for short in [
            "LPUSH l",
            "SADD s",
            "ZREM z",
            "LLEN",
            "XLEN x y",
            "LPOP l 1 2",
        ] {
            assert!(
                parse(short).unwrap_err().contains("wrong number"),
                "{short}"
            );
        }
    }
}

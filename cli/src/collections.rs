//! Lists, sets, sorted sets and streams: their writes (each a log entry)
//! and reads, what each does, and how each is encoded inside a log entry
//! (after the entry's tag, see [`crate::entry`] and [`crate::read`]): a
//! sub-tag, then every argument as a field (`length (u32, big-endian),
//! bytes`), numbers as decimal text.
//!
//! Choices every node must make alike come from the log: `SPOP` picks
//! members from a point given by the entry's index, and `XADD *` numbers
//! an entry by the replicated clock.

use bytes::{BufMut, Bytes, BytesMut};
use imbl::Vector;

use crate::data::{cursor_hash, Data, Key, Members, Score, Sorted, Stream, StreamId, Value};
use crate::fields;
use crate::reply::{Reply, WRONG_TYPE};

/// A write to a list, set, sorted set or stream.
#[derive(Clone, Debug, PartialEq)]
pub enum CollectionWrite {
    /// `LPUSH` (`front`) or `RPUSH`: each value, in order.
    Push {
        /// The key.
        key: Bytes,
        /// The values.
        values: Vec<Bytes>,
        /// At the head (else the tail).
        front: bool,
    },
    /// `LPOP` (`front`) or `RPOP`, of one value or `count`.
    Pop {
        /// The key.
        key: Bytes,
        /// How many (`None`: one, answered alone).
        count: Option<u64>,
        /// From the head (else the tail).
        front: bool,
    },
    /// `SADD`.
    SetAdd {
        /// The key.
        key: Bytes,
        /// The members.
        members: Vec<Bytes>,
    },
    /// `SREM`.
    SetRemove {
        /// The key.
        key: Bytes,
        /// The members.
        members: Vec<Bytes>,
    },
    /// `SPOP`, of one member or `count`.
    SetPop {
        /// The key.
        key: Bytes,
        /// How many (`None`: one, answered alone).
        count: Option<u64>,
    },
    /// `ZADD`: each member with its score.
    SortedAdd {
        /// The key.
        key: Bytes,
        /// Each score and member.
        pairs: Vec<(f64, Bytes)>,
    },
    /// `ZREM`.
    SortedRemove {
        /// The key.
        key: Bytes,
        /// The members.
        members: Vec<Bytes>,
    },
    /// `ZPOPMIN` (`lowest`) or `ZPOPMAX`.
    SortedPop {
        /// The key.
        key: Bytes,
        /// How many (`None`: one, answered as a flat pair).
        count: Option<u64>,
        /// The lowest scores (else the highest).
        lowest: bool,
    },
    /// `XADD`.
    StreamAdd {
        /// The key.
        key: Bytes,
        /// The id asked for (`None`: `*`, the store picks).
        id: Option<StreamId>,
        /// The entry's fields and values.
        pairs: Vec<(Bytes, Bytes)>,
    },
}

// Scores are never NaN: the parser and the decoder refuse it.
impl Eq for CollectionWrite {}

/// A read of a list, set, sorted set or stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CollectionRead {
    /// `LRANGE key start stop`.
    Range(Bytes, i64, i64),
    /// `LLEN key`.
    Length(Bytes),
    /// `LINDEX key index`.
    Index(Bytes, i64),
    /// `SMEMBERS key`.
    Members(Bytes),
    /// `SISMEMBER key member`.
    IsMember(Bytes, Bytes),
    /// `SCARD key`.
    SetSize(Bytes),
    /// `ZRANGE key start stop [WITHSCORES]`, by rank.
    SortedRange(Bytes, i64, i64, bool),
    /// `ZCARD key`.
    SortedSize(Bytes),
    /// `ZSCORE key member`.
    Score(Bytes, Bytes),
    /// `XLEN key`.
    StreamLength(Bytes),
    /// `XRANGE key start end [COUNT n]`.
    StreamRange(Bytes, StreamId, StreamId, Option<u64>),
}

/// A score as Redis writes it: the shortest text that reads back the same
/// (`1`, `1.5`, `inf`, `-inf`).
pub fn format_score(score: f64) -> Bytes {
    Bytes::from(score.to_string())
}

fn bulk(value: &Bytes) -> Reply {
    Reply::Bulk(Some(value.clone()))
}

fn wrong_type() -> Reply {
    Reply::Error(WRONG_TYPE)
}

/// The positions `start..=stop` (negative: from the end) of a sequence of
/// `length`, clamped; `None` if empty.
fn span(start: i64, stop: i64, length: usize) -> Option<(usize, usize)> {
    let length = i64::try_from(length).unwrap_or(i64::MAX);
    let from_end = |index: i64| if index < 0 { length + index } else { index };
    let start = from_end(start).max(0);
    let stop = from_end(stop).min(length - 1);
    (start <= stop && start < length).then_some((start as usize, stop as usize))
}

impl CollectionWrite {
    /// Applies the write to `data`; its reply.
    pub fn apply(self, data: &mut Data) -> Reply {
        self.apply_checked(data).unwrap_or_else(|refused| refused)
    }

    fn apply_checked(self, data: &mut Data) -> Result<Reply, Reply> {
        let reply = match self {
            CollectionWrite::Push { key, values, front } => {
                let mut items = owned(data, &key, as_list)?.unwrap_or_default();
                for value in values {
                    if front {
                        items.push_front(value);
                    } else {
                        items.push_back(value);
                    }
                }
                let length = items.len();
                data.put(key, Value::List(Box::new(items)), true);
                Reply::Integer(length as i64)
            }
            CollectionWrite::Pop { key, count, front } => {
                let Some(mut items) = owned(data, &key, as_list)? else {
                    return Ok(if count.is_some() {
                        Reply::NullArray
                    } else {
                        Reply::Bulk(None)
                    });
                };
                let wanted = count.unwrap_or(1).min(items.len() as u64) as usize;
                let popped: Vec<Bytes> = (0..wanted)
                    .filter_map(|_| {
                        if front {
                            items.pop_front()
                        } else {
                            items.pop_back()
                        }
                    })
                    .collect();
                store_or_remove(data, key, items.is_empty(), Value::List(Box::new(items)));
                match count {
                    None => Reply::Bulk(popped.into_iter().next()),
                    Some(_) => Reply::Array(popped.iter().map(bulk).collect()),
                }
            }
            CollectionWrite::SetAdd { key, members } => {
                let mut set = owned(data, &key, as_set)?.unwrap_or_default();
                let added = members
                    .into_iter()
                    .filter(|member| set.insert(Key::new(member.clone())).is_none())
                    .count();
                data.put(key, Value::Set(set), true);
                Reply::Integer(added as i64)
            }
            CollectionWrite::SetRemove { key, members } => {
                let Some(mut set) = owned(data, &key, as_set)? else {
                    return Ok(Reply::Integer(0));
                };
                let removed = members
                    .into_iter()
                    .filter(|member| set.remove(&Key::new(member.clone())).is_some())
                    .count();
                if removed > 0 {
                    store_or_remove(data, key, set.is_empty(), Value::Set(set));
                }
                Reply::Integer(removed as i64)
            }
            CollectionWrite::SetPop { key, count } => {
                let Some(mut set) = owned(data, &key, as_set)? else {
                    return Ok(if count.is_some() {
                        Reply::Array(Vec::new())
                    } else {
                        Reply::Bulk(None)
                    });
                };
                let wanted = count.unwrap_or(1).min(set.len() as u64);
                let mut popped = Vec::new();
                for draw in 0..wanted {
                    let member = pick_member(&set, data.index(), draw);
                    set.remove(&member);
                    popped.push(member.name().clone());
                }
                store_or_remove(data, key, set.is_empty(), Value::Set(set));
                match count {
                    None => Reply::Bulk(popped.into_iter().next()),
                    Some(_) => Reply::Array(popped.iter().map(bulk).collect()),
                }
            }
            CollectionWrite::SortedAdd { key, pairs } => {
                let mut sorted = owned(data, &key, as_sorted)?.unwrap_or_default();
                let added = pairs
                    .into_iter()
                    .filter(|(score, member)| sorted.insert(member.clone(), Score(*score)))
                    .count();
                data.put(key, Value::Sorted(Box::new(sorted)), true);
                Reply::Integer(added as i64)
            }
            CollectionWrite::SortedRemove { key, members } => {
                let Some(mut sorted) = owned(data, &key, as_sorted)? else {
                    return Ok(Reply::Integer(0));
                };
                let removed = members
                    .iter()
                    .filter(|member| sorted.remove(member))
                    .count();
                if removed > 0 {
                    store_or_remove(
                        data,
                        key,
                        sorted.is_empty(),
                        Value::Sorted(Box::new(sorted)),
                    );
                }
                Reply::Integer(removed as i64)
            }
            CollectionWrite::SortedPop { key, count, lowest } => {
                let Some(mut sorted) = owned(data, &key, as_sorted)? else {
                    return Ok(Reply::Array(Vec::new()));
                };
                let mut popped = Vec::new();
                for _ in 0..count.unwrap_or(1).min(sorted.len() as u64) {
                    let next = if lowest {
                        sorted.order.get_min()
                    } else {
                        sorted.order.get_max()
                    };
                    let Some((score, member)) = next.cloned() else {
                        break;
                    };
                    sorted.remove(&member);
                    popped.push((bulk(&member), Reply::Double(format_score(score.0))));
                }
                store_or_remove(
                    data,
                    key,
                    sorted.is_empty(),
                    Value::Sorted(Box::new(sorted)),
                );
                match count {
                    // One pair, flat, as Redis answers without a count.
                    None => Reply::Array(popped.into_iter().flat_map(|(m, s)| [m, s]).collect()),
                    Some(_) => Reply::Pairs(popped),
                }
            }
            CollectionWrite::StreamAdd { key, id, pairs } => {
                let mut stream = owned(data, &key, as_stream)?.unwrap_or_default();
                let id = match id {
                    Some(StreamId { millis: 0, sequence: 0 }) => {
                        return Err(Reply::Error("ERR The ID specified in XADD must be greater than 0-0"))
                    }
                    Some(id) if id <= stream.last => {
                        return Err(Reply::Error("ERR The ID specified in XADD is equal or smaller than the target stream top item"))
                    }
                    Some(id) => id,
                    None => next_stream_id(&stream, data.clock()).ok_or(Reply::Error("ERR The stream has exhausted the last possible ID, unable to add more items"))?,
                };
                stream
                    .entries
                    .insert(id, pairs.into_iter().collect::<Vector<_>>());
                stream.last = id;
                data.put(key, Value::Stream(Box::new(stream)), true);
                Reply::Bulk(Some(Bytes::from(id.to_string())))
            }
        };
        Ok(reply)
    }
}

/// A copy (O(1): the collections are persistent) of the collection at
/// `key` as `pick` takes it; the reply `WRONGTYPE` if it holds another
/// type.
fn owned<T: Clone>(
    data: &Data,
    key: &Bytes,
    pick: impl FnOnce(&Value) -> Option<&T>,
) -> Result<Option<T>, Reply> {
    data.typed(key, pick)
        .map(|found| found.cloned())
        .map_err(|_| wrong_type())
}

fn as_list(value: &Value) -> Option<&Vector<Bytes>> {
    match value {
        Value::List(items) => Some(items.as_ref()),
        _ => None,
    }
}

fn as_set(value: &Value) -> Option<&Members> {
    match value {
        Value::Set(members) => Some(members),
        _ => None,
    }
}

fn as_sorted(value: &Value) -> Option<&Sorted> {
    match value {
        Value::Sorted(sorted) => Some(sorted.as_ref()),
        _ => None,
    }
}

fn as_stream(value: &Value) -> Option<&Stream> {
    match value {
        Value::Stream(stream) => Some(stream.as_ref()),
        _ => None,
    }
}

/// Puts `value` at `key`, or removes the key if the collection is empty
/// (Redis keeps no empty list, set or sorted set).
fn store_or_remove(data: &mut Data, key: Bytes, empty: bool, value: Value) {
    if empty {
        data.remove(&key);
    } else {
        data.put(key, value, true);
    }
}

/// The member `SPOP` takes as its `draw`th pick in the entry at `index`:
/// the first from a point that a hash of both gives, in the set's hash
/// order (wrapping); the same on every node. `set` must not be empty.
fn pick_member(set: &Members, index: u64, draw: u64) -> Key {
    let mut seed = [0u8; 16];
    seed[..8].copy_from_slice(&index.to_be_bytes());
    seed[8..].copy_from_slice(&draw.to_be_bytes());
    let start = Key::at_hash(cursor_hash(&seed));
    set.range(start..)
        .next()
        .or_else(|| set.get_min())
        .cloned()
        .unwrap_or_else(|| Key::new(Bytes::new()))
}

/// The id `XADD *` gives: the replicated clock's millisecond, or the last
/// id's if that is later, numbered after the last id.
fn next_stream_id(stream: &Stream, clock: u64) -> Option<StreamId> {
    if clock > stream.last.millis {
        return Some(StreamId {
            millis: clock,
            sequence: 0,
        });
    }
    match stream.last.sequence.checked_add(1) {
        Some(sequence) => Some(StreamId {
            millis: stream.last.millis,
            sequence,
        }),
        None => Some(StreamId {
            millis: stream.last.millis.checked_add(1)?,
            sequence: 0,
        }),
    }
}

impl CollectionRead {
    /// What the read finds in `data`.
    pub fn evaluate(&self, data: &Data) -> Reply {
        let list = |key| data.typed(key, as_list);
        let set = |key| data.typed(key, as_set);
        let sorted = |key| data.typed(key, as_sorted);
        let stream = |key| data.typed(key, as_stream);
        let found = match self {
            CollectionRead::Range(key, start, stop) => list(key).map(|items| {
                let items = items.cloned().unwrap_or_default();
                Reply::Array(match span(*start, *stop, items.len()) {
                    Some((from, to)) => items
                        .iter()
                        .skip(from)
                        .take(to - from + 1)
                        .map(bulk)
                        .collect(),
                    None => Vec::new(),
                })
            }),
            CollectionRead::Length(key) => {
                list(key).map(|items| Reply::Integer(items.map_or(0, Vector::len) as i64))
            }
            CollectionRead::Index(key, index) => list(key).map(|items| {
                let items = items.cloned().unwrap_or_default();
                let at = span(*index, *index, items.len()).map(|(at, _)| at);
                Reply::Bulk(at.and_then(|at| items.get(at).cloned()))
            }),
            CollectionRead::Members(key) => set(key).map(|members| {
                Reply::Array(
                    members
                        .into_iter()
                        .flatten()
                        .map(|member| bulk(member.name()))
                        .collect(),
                )
            }),
            CollectionRead::IsMember(key, member) => set(key).map(|members| {
                Reply::Integer(i64::from(
                    members.is_some_and(|members| members.contains(&Key::new(member.clone()))),
                ))
            }),
            CollectionRead::SetSize(key) => {
                set(key).map(|members| Reply::Integer(members.map_or(0, |m| m.len()) as i64))
            }
            CollectionRead::SortedRange(key, start, stop, with_scores) => {
                sorted(key).map(|sorted| {
                    let sorted: Sorted = sorted.cloned().unwrap_or_default();
                    let in_range: Vec<&(Score, Bytes)> = match span(*start, *stop, sorted.len()) {
                        Some((from, to)) => {
                            sorted.order.iter().skip(from).take(to - from + 1).collect()
                        }
                        None => Vec::new(),
                    };
                    if *with_scores {
                        Reply::Pairs(
                            in_range
                                .into_iter()
                                .map(|(score, member)| {
                                    (bulk(member), Reply::Double(format_score(score.0)))
                                })
                                .collect(),
                        )
                    } else {
                        Reply::Array(
                            in_range
                                .into_iter()
                                .map(|(_, member)| bulk(member))
                                .collect(),
                        )
                    }
                })
            }
            CollectionRead::SortedSize(key) => {
                sorted(key).map(|sorted| Reply::Integer(sorted.map_or(0, Sorted::len) as i64))
            }
            CollectionRead::Score(key, member) => sorted(key).map(|sorted| {
                match sorted.and_then(|sorted| sorted.scores.get(member)) {
                    Some(score) => Reply::Double(format_score(score.0)),
                    None => Reply::Bulk(None),
                }
            }),
            CollectionRead::StreamLength(key) => stream(key)
                .map(|stream| Reply::Integer(stream.map_or(0, |s| s.entries.len()) as i64)),
            CollectionRead::StreamRange(key, start, end, count) => stream(key).map(|stream| {
                let entries = stream
                    .map(|stream| stream.entries.clone())
                    .unwrap_or_default();
                let limit = count.map_or(usize::MAX, |count| {
                    usize::try_from(count).unwrap_or(usize::MAX)
                });
                let found = if start <= end {
                    entries.range(*start..=*end).take(limit).collect()
                } else {
                    Vec::new()
                };
                Reply::Array(
                    found
                        .into_iter()
                        .map(|(id, pairs)| {
                            let flat = pairs
                                .iter()
                                .flat_map(|(name, value)| [bulk(name), bulk(value)])
                                .collect();
                            Reply::Array(vec![
                                Reply::Bulk(Some(Bytes::from(id.to_string()))),
                                Reply::Array(flat),
                            ])
                        })
                        .collect(),
                )
            }),
        };
        found.unwrap_or_else(|_| wrong_type())
    }

    /// The key it reads.
    pub fn key(&self) -> &Bytes {
        match self {
            CollectionRead::Range(key, ..)
            | CollectionRead::Length(key)
            | CollectionRead::Index(key, _)
            | CollectionRead::Members(key)
            | CollectionRead::IsMember(key, _)
            | CollectionRead::SetSize(key)
            | CollectionRead::SortedRange(key, ..)
            | CollectionRead::SortedSize(key)
            | CollectionRead::Score(key, _)
            | CollectionRead::StreamLength(key)
            | CollectionRead::StreamRange(key, ..) => key,
        }
    }
}

/// Sub-tags of the writes.
const PUSH: u8 = 1;
const POP: u8 = 2;
const SET_ADD: u8 = 3;
const SET_REMOVE: u8 = 4;
const SET_POP: u8 = 5;
const SORTED_ADD: u8 = 6;
const SORTED_REMOVE: u8 = 7;
const SORTED_POP: u8 = 8;
const STREAM_ADD: u8 = 9;

/// Sub-tags of the reads.
const RANGE: u8 = 1;
const LENGTH: u8 = 2;
const INDEX: u8 = 3;
const MEMBERS: u8 = 4;
const IS_MEMBER: u8 = 5;
const SET_SIZE: u8 = 6;
const SORTED_RANGE: u8 = 7;
const SORTED_SIZE: u8 = 8;
const SCORE: u8 = 9;
const STREAM_LENGTH: u8 = 10;
const STREAM_RANGE: u8 = 11;

fn text(value: impl ToString) -> Bytes {
    Bytes::from(value.to_string())
}

fn optional_text(value: Option<u64>) -> Bytes {
    value.map(text).unwrap_or_default()
}

fn number<T: std::str::FromStr>(field: &Bytes) -> Option<T> {
    std::str::from_utf8(field).ok()?.parse().ok()
}

fn optional_number(field: &Bytes) -> Option<Option<u64>> {
    if field.is_empty() {
        Some(None)
    } else {
        number(field).map(Some)
    }
}

fn flag(field: &Bytes) -> Option<bool> {
    match &field[..] {
        b"0" => Some(false),
        b"1" => Some(true),
        _ => None,
    }
}

/// Reads `ms-seq`, the form [`StreamId`]'s `Display` writes.
pub fn parse_stream_id(field: &[u8]) -> Option<StreamId> {
    let text = std::str::from_utf8(field).ok()?;
    let (millis, sequence) = text.split_once('-')?;
    Some(StreamId {
        millis: millis.parse().ok()?,
        sequence: sequence.parse().ok()?,
    })
}

fn put_all(out: &mut BytesMut, sub: u8, arguments: Vec<Bytes>) {
    out.put_u8(sub);
    arguments
        .iter()
        .for_each(|argument| fields::put(out, argument));
}

fn take_all(encoded: &Bytes) -> Option<(u8, Vec<Bytes>)> {
    let (&sub, _) = encoded.split_first()?;
    let mut rest = encoded.slice(1..);
    Some((sub, fields::take_all(&mut rest)?))
}

fn pairs_of(flat: &[Bytes]) -> Option<Vec<(Bytes, Bytes)>> {
    if !flat.len().is_multiple_of(2) {
        return None;
    }
    Some(
        flat.chunks(2)
            .map(|pair| (pair[0].clone(), pair[1].clone()))
            .collect(),
    )
}

impl CollectionWrite {
    /// Appends the write's encoding (sub-tag and fields) to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        let with_key = |key: &Bytes, rest: &[Bytes]| {
            let mut all = vec![key.clone()];
            all.extend_from_slice(rest);
            all
        };
        let (sub, arguments) = match self {
            CollectionWrite::Push { key, values, front } => (
                PUSH,
                with_key(key, &[&[text(u8::from(*front))][..], values].concat()),
            ),
            CollectionWrite::Pop { key, count, front } => (
                POP,
                vec![key.clone(), text(u8::from(*front)), optional_text(*count)],
            ),
            CollectionWrite::SetAdd { key, members } => (SET_ADD, with_key(key, members)),
            CollectionWrite::SetRemove { key, members } => (SET_REMOVE, with_key(key, members)),
            CollectionWrite::SetPop { key, count } => {
                (SET_POP, vec![key.clone(), optional_text(*count)])
            }
            CollectionWrite::SortedAdd { key, pairs } => {
                let flat: Vec<Bytes> = pairs
                    .iter()
                    .flat_map(|(score, member)| [text(score.to_bits()), member.clone()])
                    .collect();
                (SORTED_ADD, with_key(key, &flat))
            }
            CollectionWrite::SortedRemove { key, members } => {
                (SORTED_REMOVE, with_key(key, members))
            }
            CollectionWrite::SortedPop { key, count, lowest } => (
                SORTED_POP,
                vec![key.clone(), optional_text(*count), text(u8::from(*lowest))],
            ),
            CollectionWrite::StreamAdd { key, id, pairs } => {
                let mut all = vec![key.clone(), id.map(text).unwrap_or_default()];
                all.extend(
                    pairs
                        .iter()
                        .flat_map(|(name, value)| [name.clone(), value.clone()]),
                );
                (STREAM_ADD, all)
            }
        };
        put_all(out, sub, arguments);
    }

    /// Reads an encoding back; `None` if it is not one.
    pub fn decode(encoded: &Bytes) -> Option<CollectionWrite> {
        let (sub, arguments) = take_all(encoded)?;
        let write = match (sub, arguments.as_slice()) {
            (PUSH, [key, front, values @ ..]) if !values.is_empty() => CollectionWrite::Push {
                key: key.clone(),
                values: values.to_vec(),
                front: flag(front)?,
            },
            (POP, [key, front, count]) => CollectionWrite::Pop {
                key: key.clone(),
                count: optional_number(count)?,
                front: flag(front)?,
            },
            (SET_ADD, [key, members @ ..]) => CollectionWrite::SetAdd {
                key: key.clone(),
                members: members.to_vec(),
            },
            (SET_REMOVE, [key, members @ ..]) => CollectionWrite::SetRemove {
                key: key.clone(),
                members: members.to_vec(),
            },
            (SET_POP, [key, count]) => CollectionWrite::SetPop {
                key: key.clone(),
                count: optional_number(count)?,
            },
            (SORTED_ADD, [key, flat @ ..]) => CollectionWrite::SortedAdd {
                key: key.clone(),
                pairs: pairs_of(flat)?
                    .into_iter()
                    .map(|(bits, member)| {
                        let score = f64::from_bits(number(&bits)?);
                        (!score.is_nan()).then_some((score, member))
                    })
                    .collect::<Option<_>>()?,
            },
            (SORTED_REMOVE, [key, members @ ..]) => CollectionWrite::SortedRemove {
                key: key.clone(),
                members: members.to_vec(),
            },
            (SORTED_POP, [key, count, lowest]) => CollectionWrite::SortedPop {
                key: key.clone(),
                count: optional_number(count)?,
                lowest: flag(lowest)?,
            },
            (STREAM_ADD, [key, id, flat @ ..]) if !flat.is_empty() => CollectionWrite::StreamAdd {
                key: key.clone(),
                id: if id.is_empty() {
                    None
                } else {
                    Some(parse_stream_id(id)?)
                },
                pairs: pairs_of(flat)?,
            },
            _ => return None,
        };
        Some(write)
    }
}

impl CollectionRead {
    /// Appends the read's encoding (sub-tag and fields) to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        let (sub, arguments) = match self {
            CollectionRead::Range(key, start, stop) => {
                (RANGE, vec![key.clone(), text(start), text(stop)])
            }
            CollectionRead::Length(key) => (LENGTH, vec![key.clone()]),
            CollectionRead::Index(key, index) => (INDEX, vec![key.clone(), text(index)]),
            CollectionRead::Members(key) => (MEMBERS, vec![key.clone()]),
            CollectionRead::IsMember(key, member) => (IS_MEMBER, vec![key.clone(), member.clone()]),
            CollectionRead::SetSize(key) => (SET_SIZE, vec![key.clone()]),
            CollectionRead::SortedRange(key, start, stop, with_scores) => (
                SORTED_RANGE,
                vec![
                    key.clone(),
                    text(start),
                    text(stop),
                    text(u8::from(*with_scores)),
                ],
            ),
            CollectionRead::SortedSize(key) => (SORTED_SIZE, vec![key.clone()]),
            CollectionRead::Score(key, member) => (SCORE, vec![key.clone(), member.clone()]),
            CollectionRead::StreamLength(key) => (STREAM_LENGTH, vec![key.clone()]),
            CollectionRead::StreamRange(key, start, end, count) => (
                STREAM_RANGE,
                vec![key.clone(), text(start), text(end), optional_text(*count)],
            ),
        };
        put_all(out, sub, arguments);
    }

    /// Reads an encoding back; `None` if it is not one.
    pub fn decode(encoded: &Bytes) -> Option<CollectionRead> {
        let (sub, arguments) = take_all(encoded)?;
        let read = match (sub, arguments.as_slice()) {
            (RANGE, [key, start, stop]) => {
                CollectionRead::Range(key.clone(), number(start)?, number(stop)?)
            }
            (LENGTH, [key]) => CollectionRead::Length(key.clone()),
            (INDEX, [key, index]) => CollectionRead::Index(key.clone(), number(index)?),
            (MEMBERS, [key]) => CollectionRead::Members(key.clone()),
            (IS_MEMBER, [key, member]) => CollectionRead::IsMember(key.clone(), member.clone()),
            (SET_SIZE, [key]) => CollectionRead::SetSize(key.clone()),
            (SORTED_RANGE, [key, start, stop, with_scores]) => CollectionRead::SortedRange(
                key.clone(),
                number(start)?,
                number(stop)?,
                flag(with_scores)?,
            ),
            (SORTED_SIZE, [key]) => CollectionRead::SortedSize(key.clone()),
            (SCORE, [key, member]) => CollectionRead::Score(key.clone(), member.clone()),
            (STREAM_LENGTH, [key]) => CollectionRead::StreamLength(key.clone()),
            (STREAM_RANGE, [key, start, end, count]) => CollectionRead::StreamRange(
                key.clone(),
                parse_stream_id(start)?,
                parse_stream_id(end)?,
                optional_number(count)?,
            ),
            _ => return None,
        };
        Some(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    fn bulks(texts: &[&str]) -> Reply {
        Reply::Array(texts.iter().map(|text| bulk(&b(text))).collect())
    }

    fn apply(data: &mut Data, index: u64, write: CollectionWrite) -> Reply {
        data.begin(index, Some(1_000 + index));
        write.apply(data)
    }

    #[test]
    fn lists_push_pop_and_range_as_in_redis() {
        let mut data = Data::default();
        let push = |values: &[&str], front| CollectionWrite::Push {
            key: b("l"),
            values: values.iter().map(|v| b(v)).collect(),
            front,
        };
        assert_eq!(
            apply(&mut data, 1, push(&["a", "b"], true)),
            Reply::Integer(2)
        );
        assert_eq!(apply(&mut data, 2, push(&["c"], false)), Reply::Integer(3));
        let range = |start, stop| CollectionRead::Range(b("l"), start, stop).evaluate(&data);
        assert_eq!(range(0, -1), bulks(&["b", "a", "c"]));
        assert_eq!(range(-2, 10), bulks(&["a", "c"]));
        assert_eq!(range(2, 1), bulks(&[]));
        assert_eq!(range(5, 9), bulks(&[]));
        assert_eq!(
            CollectionRead::Index(b("l"), -1).evaluate(&data),
            bulk(&b("c"))
        );
        assert_eq!(
            CollectionRead::Index(b("l"), 3).evaluate(&data),
            Reply::Bulk(None)
        );
        let pop = |count, front| CollectionWrite::Pop {
            key: b("l"),
            count,
            front,
        };
        assert_eq!(apply(&mut data, 3, pop(None, true)), bulk(&b("b")));
        assert_eq!(apply(&mut data, 4, pop(Some(5), false)), bulks(&["c", "a"]));
        assert!(data.get(&b("l")).is_none(), "an emptied list is gone");
        assert_eq!(apply(&mut data, 5, pop(None, true)), Reply::Bulk(None));
        assert_eq!(apply(&mut data, 6, pop(Some(1), true)), Reply::NullArray);
        assert_eq!(
            CollectionRead::Length(b("l")).evaluate(&data),
            Reply::Integer(0)
        );
    }

    #[test]
    fn sets_pop_the_same_members_on_every_node() {
        let members: Vec<Bytes> = (0..50).map(|i| Bytes::from(format!("m{i}"))).collect();
        let run = || {
            let mut data = Data::default();
            let add = CollectionWrite::SetAdd {
                key: b("s"),
                members: members.clone(),
            };
            assert_eq!(apply(&mut data, 1, add.clone()), Reply::Integer(50));
            assert_eq!(apply(&mut data, 2, add), Reply::Integer(0));
            let pop = |count| CollectionWrite::SetPop { key: b("s"), count };
            let one = apply(&mut data, 3, pop(None));
            let more = apply(&mut data, 4, pop(Some(3)));
            (data, one, more)
        };
        let (mut data, one, more) = run();
        assert_eq!(run().1, one, "deterministic");
        assert_eq!(run().2, more);
        assert_eq!(
            CollectionRead::SetSize(b("s")).evaluate(&data),
            Reply::Integer(46)
        );
        let Reply::Array(popped) = more else {
            panic!("SPOP with a count answers an array");
        };
        assert_eq!(popped.len(), 3);
        assert!(!popped.contains(&one), "a member is popped once");
        let had_m0 = CollectionRead::IsMember(b("s"), b("m0")).evaluate(&data);
        let remove = CollectionWrite::SetRemove {
            key: b("s"),
            members: vec![b("m0"), b("m0"), b("nope")],
        };
        assert_eq!(apply(&mut data, 5, remove), had_m0, "removed once if there");
        let is_member = CollectionRead::IsMember(b("s"), b("m0")).evaluate(&data);
        assert_eq!(is_member, Reply::Integer(0));
        let Reply::Integer(left) = CollectionRead::SetSize(b("s")).evaluate(&data) else {
            panic!("SCARD answers an integer");
        };
        let pop_all = CollectionWrite::SetPop {
            key: b("s"),
            count: Some(100),
        };
        let Reply::Array(rest) = apply(&mut data, 6, pop_all) else {
            panic!("an array");
        };
        assert_eq!(rest.len() as i64, left);
        assert!(data.get(&b("s")).is_none());
    }

    #[test]
    fn sorted_sets_order_by_score_then_member() {
        let mut data = Data::default();
        let add = CollectionWrite::SortedAdd {
            key: b("z"),
            pairs: vec![
                (2.5, b("b")),
                (1.0, b("a")),
                (f64::INFINITY, b("top")),
                (1.0, b("a2")),
            ],
        };
        assert_eq!(apply(&mut data, 1, add), Reply::Integer(4));
        let moved = CollectionWrite::SortedAdd {
            key: b("z"),
            pairs: vec![(-1.0, b("b"))],
        };
        assert_eq!(apply(&mut data, 2, moved), Reply::Integer(0));
        let range = CollectionRead::SortedRange(b("z"), 0, -1, true).evaluate(&data);
        let scored = |pairs: &[(&str, &str)]| {
            Reply::Pairs(
                pairs
                    .iter()
                    .map(|(m, s)| (bulk(&b(m)), Reply::Double(b(s))))
                    .collect(),
            )
        };
        assert_eq!(
            range,
            scored(&[("b", "-1"), ("a", "1"), ("a2", "1"), ("top", "inf")])
        );
        let members = CollectionRead::SortedRange(b("z"), 1, 2, false).evaluate(&data);
        assert_eq!(members, bulks(&["a", "a2"]));
        let score = CollectionRead::Score(b("z"), b("b")).evaluate(&data);
        assert_eq!(score, Reply::Double(b("-1")));
        let pop = |count, lowest| CollectionWrite::SortedPop {
            key: b("z"),
            count,
            lowest,
        };
        let flat = Reply::Array(vec![bulk(&b("b")), Reply::Double(b("-1"))]);
        assert_eq!(apply(&mut data, 3, pop(None, true)), flat);
        assert_eq!(
            apply(&mut data, 4, pop(Some(1), false)),
            scored(&[("top", "inf")])
        );
        let remove = CollectionWrite::SortedRemove {
            key: b("z"),
            members: vec![b("a"), b("a2")],
        };
        assert_eq!(apply(&mut data, 5, remove), Reply::Integer(2));
        assert!(data.get(&b("z")).is_none());
        assert_eq!(
            apply(&mut data, 6, pop(Some(1), true)),
            Reply::Array(Vec::new())
        );
    }

    #[test]
    fn streams_number_entries_by_the_replicated_clock() {
        let mut data = Data::default();
        let add = |id| CollectionWrite::StreamAdd {
            key: b("x"),
            id,
            pairs: vec![(b("f"), b("v"))],
        };
        // Entry 1 is stamped 1 001: its id, then the next in the same ms.
        assert_eq!(apply(&mut data, 1, add(None)), bulk(&b("1001-0")));
        data.begin(2, Some(900));
        assert_eq!(add(None).apply(&mut data), bulk(&b("1001-1")));
        let explicit = StreamId {
            millis: 5_000,
            sequence: 7,
        };
        assert_eq!(apply(&mut data, 3, add(Some(explicit))), bulk(&b("5000-7")));
        let Reply::Error(error) = apply(&mut data, 4, add(Some(explicit))) else {
            panic!("an id not above the last is refused");
        };
        assert!(error.contains("equal or smaller"));
        let Reply::Error(error) = apply(&mut data, 5, add(Some(StreamId::default()))) else {
            panic!("0-0 is refused");
        };
        assert!(error.contains("greater than 0-0"));
        assert_eq!(
            CollectionRead::StreamLength(b("x")).evaluate(&data),
            Reply::Integer(3)
        );
        let all = StreamId {
            millis: u64::MAX,
            sequence: u64::MAX,
        };
        let range = CollectionRead::StreamRange(b("x"), StreamId::default(), all, Some(1));
        let entry = Reply::Array(vec![bulk(&b("1001-0")), bulks(&["f", "v"])]);
        assert_eq!(range.evaluate(&data), Reply::Array(vec![entry]));
    }

    #[test]
    fn a_command_on_another_type_is_refused_and_changes_nothing() {
        let mut data = Data::default();
        data.begin(1, None);
        data.put(b("k"), Value::String(b("v")), false);
        for write in [
            CollectionWrite::Push {
                key: b("k"),
                values: vec![b("a")],
                front: true,
            },
            CollectionWrite::SetAdd {
                key: b("k"),
                members: vec![b("a")],
            },
            CollectionWrite::SortedPop {
                key: b("k"),
                count: None,
                lowest: true,
            },
            CollectionWrite::StreamAdd {
                key: b("k"),
                id: None,
                pairs: vec![(b("f"), b("v"))],
            },
        ] {
            assert_eq!(write.apply(&mut data), wrong_type());
        }
        assert_eq!(
            CollectionRead::Members(b("k")).evaluate(&data),
            wrong_type()
        );
        assert_eq!(data.string(&b("k")), Ok(Some(&b("v"))));
    }

    #[test]
    fn writes_and_reads_survive_their_encoding() {
        let id = StreamId {
            millis: 1,
            sequence: 2,
        };
        for write in [
            CollectionWrite::Push {
                key: b("l"),
                values: vec![b("a"), Bytes::new()],
                front: false,
            },
            CollectionWrite::Pop {
                key: b("l"),
                count: Some(0),
                front: true,
            },
            CollectionWrite::Pop {
                key: Bytes::new(),
                count: None,
                front: false,
            },
            CollectionWrite::SetAdd {
                key: b("s"),
                members: vec![b("m")],
            },
            CollectionWrite::SetRemove {
                key: b("s"),
                members: vec![b("m")],
            },
            CollectionWrite::SetPop {
                key: b("s"),
                count: None,
            },
            CollectionWrite::SortedAdd {
                key: b("z"),
                pairs: vec![(f64::NEG_INFINITY, b("m")), (0.1, b("n"))],
            },
            CollectionWrite::SortedRemove {
                key: b("z"),
                members: vec![b("m")],
            },
            CollectionWrite::SortedPop {
                key: b("z"),
                count: Some(3),
                lowest: false,
            },
            CollectionWrite::StreamAdd {
                key: b("x"),
                id: Some(id),
                pairs: vec![(b("f"), b("v"))],
            },
            CollectionWrite::StreamAdd {
                key: b("x"),
                id: None,
                pairs: vec![(b("f"), b("v"))],
            },
        ] {
            let mut out = BytesMut::new();
            write.encode(&mut out);
            assert_eq!(CollectionWrite::decode(&out.freeze()), Some(write));
        }
        for read in [
            CollectionRead::Range(b("l"), -3, i64::MAX),
            CollectionRead::Length(b("l")),
            CollectionRead::Index(b("l"), -1),
            CollectionRead::Members(b("s")),
            CollectionRead::IsMember(b("s"), b("m")),
            CollectionRead::SetSize(b("s")),
            CollectionRead::SortedRange(b("z"), 0, -1, true),
            CollectionRead::SortedSize(b("z")),
            CollectionRead::Score(b("z"), b("m")),
            CollectionRead::StreamLength(b("x")),
            CollectionRead::StreamRange(b("x"), StreamId::default(), id, Some(4)),
        ] {
            let mut out = BytesMut::new();
            read.encode(&mut out);
            assert_eq!(CollectionRead::decode(&out.freeze()), Some(read));
        }
        for damaged in [
            &[][..],
            &[PUSH],
            &[99, 0, 0, 0, 0],
            &[SET_POP, 0, 0, 0, 1, b's'],
        ] {
            let damaged = Bytes::copy_from_slice(damaged);
            assert_eq!(CollectionWrite::decode(&damaged), None);
            assert_eq!(CollectionRead::decode(&damaged), None);
        }
        // A NaN score never decodes.
        let nan = CollectionWrite::SortedAdd {
            key: b("z"),
            pairs: vec![(f64::NAN, b("m"))],
        };
        let mut out = BytesMut::new();
        nan.encode(&mut out);
        assert_eq!(CollectionWrite::decode(&out.freeze()), None);
    }
}

//! A reply as a value, before it is written in a connection's protocol:
//! what a read finds, and what each command of a transaction answers
//! (the state machine computes those, and the connection that asked
//! writes them in RESP2 or RESP3).

use bytes::Bytes;

use crate::resp::Replies;

/// The error a command on a key of another type answers.
pub const WRONG_TYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// One reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+` and a word (`OK`, `string`, ...).
    Status(&'static str),
    /// `:n`.
    Integer(i64),
    /// A value, or nil.
    Bulk(Option<Bytes>),
    /// An array of replies.
    Array(Vec<Reply>),
    /// Pairs: a map in RESP3, a flat array in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// Pairs that RESP3 nests (an array of two-element arrays) and RESP2
    /// flattens, as `ZRANGE ... WITHSCORES` answers.
    Pairs(Vec<(Reply, Reply)>),
    /// A float, as its shortest text: RESP3's double, a bulk string in
    /// RESP2.
    Double(Bytes),
    /// No array (`EXEC` of a transaction a watched key stopped): `*-1` in
    /// RESP2, `_` in RESP3.
    NullArray,
    /// `-` and the error.
    Error(&'static str),
}

impl Reply {
    /// Writes the reply into `replies`, in their protocol.
    pub fn write(&self, replies: &mut Replies) {
        match self {
            Reply::Status(word) => replies.simple(word),
            Reply::Integer(value) => replies.integer(*value),
            Reply::Bulk(Some(value)) => replies.bulk(value),
            Reply::Bulk(None) => replies.null(),
            Reply::Array(items) => {
                replies.array(items.len());
                items.iter().for_each(|item| item.write(replies));
            }
            Reply::Map(pairs) => {
                replies.map(pairs.len());
                for (key, value) in pairs {
                    key.write(replies);
                    value.write(replies);
                }
            }
            Reply::Pairs(pairs) => {
                let nested = replies.protocol() >= 3;
                replies.array(if nested { pairs.len() } else { pairs.len() * 2 });
                for (first, second) in pairs {
                    if nested {
                        replies.array(2);
                    }
                    first.write(replies);
                    second.write(replies);
                }
            }
            Reply::Double(text) => replies.double(text),
            Reply::NullArray => replies.null_array(),
            Reply::Error(error) => replies.error(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_written_in_the_connections_protocol() {
        let reply = Reply::Array(vec![
            Reply::Status("OK"),
            Reply::Integer(3),
            Reply::Bulk(Some(Bytes::from_static(b"v"))),
            Reply::Bulk(None),
            Reply::Error("ERR no"),
        ]);
        let mut replies = Replies::new();
        reply.write(&mut replies);
        assert_eq!(
            &replies.take()[..],
            b"*5\r\n+OK\r\n:3\r\n$1\r\nv\r\n$-1\r\n-ERR no\r\n"
        );
        let pairs = Reply::Map(vec![(Reply::Integer(1), Reply::Integer(2))]);
        pairs.write(&mut replies);
        Reply::NullArray.write(&mut replies);
        assert_eq!(&replies.take()[..], b"*2\r\n:1\r\n:2\r\n*-1\r\n");
        let scores = Reply::Pairs(vec![(
            Reply::Bulk(Some(Bytes::from_static(b"m"))),
            Reply::Double(Bytes::from_static(b"1.5")),
        )]);
        scores.write(&mut replies);
        assert_eq!(&replies.take()[..], b"*2\r\n$1\r\nm\r\n$3\r\n1.5\r\n");
        replies.set_protocol(3);
        Reply::Bulk(None).write(&mut replies);
        pairs.write(&mut replies);
        Reply::NullArray.write(&mut replies);
        assert_eq!(&replies.take()[..], b"_\r\n%1\r\n:1\r\n:2\r\n_\r\n");
        scores.write(&mut replies);
        assert_eq!(&replies.take()[..], b"*1\r\n*2\r\n$1\r\nm\r\n,1.5\r\n");
    }
}

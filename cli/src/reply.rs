//! A reply as a value, before it is written in a connection's protocol:
//! what a read finds, and what each command of a transaction answers
//! (the state machine computes those, and the connection that asked
//! writes them in RESP2 or RESP3).

use bytes::Bytes;

use crate::resp::Replies;

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
        replies.set_protocol(3);
        Reply::Bulk(None).write(&mut replies);
        assert_eq!(&replies.take()[..], b"_\r\n");
    }
}

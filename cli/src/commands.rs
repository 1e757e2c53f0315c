//! The Redis commands a node understands, parsed from a request's
//! arguments, and how each is classed: a write goes through the log, a
//! read waits for a read barrier, the rest are answered locally.

use bytes::Bytes;

use crate::kv::Write;

/// A request, understood.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// A write: replicated, answered once committed and applied.
    Write(Write),
    /// A linearizable read.
    Read(Read),
    /// `PING [message]`.
    Ping(Option<Bytes>),
    /// `ECHO message`.
    Echo(Bytes),
    /// `INFO [section]`.
    Info(Option<Bytes>),
    /// `ROLE`.
    Role,
    /// `CONFIG GET pattern`: this server has no Redis configuration, so
    /// the answer is empty (redis-benchmark asks at start).
    ConfigGet,
    /// `READONLY`: as on a Redis Cluster replica, this connection's reads
    /// are then served from this node's own state without a barrier —
    /// possibly stale, but possible on a follower.
    ReadOnly,
    /// `READWRITE`: back to linearizable reads.
    ReadWrite,
    /// `QUIT`: answer, then close.
    Quit,
}

/// A read of the store.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// `GET key`.
    Get(Bytes),
    /// `EXISTS key...`.
    Exists(Vec<Bytes>),
    /// `DBSIZE`.
    DbSize,
}

/// Parses a request; the error is the reply (without the leading `-`).
pub fn parse(arguments: Vec<Bytes>) -> Result<Command, String> {
    let mut arguments = arguments.into_iter();
    let Some(name) = arguments.next() else {
        return Err("ERR empty command".into());
    };
    let lower = String::from_utf8_lossy(&name).to_ascii_lowercase();
    let arity = |valid: bool| -> Result<(), String> {
        if valid {
            Ok(())
        } else {
            Err(format!(
                "ERR wrong number of arguments for '{lower}' command"
            ))
        }
    };
    let mut rest = arguments;
    let count = rest.len();
    let command = match lower.as_str() {
        "set" => {
            // Options (EX, NX, ...) are not supported: refuse rather than
            // ignore them.
            if count > 2 {
                return Err("ERR syntax error: SET takes only a key and a value here".into());
            }
            arity(count == 2)?;
            let key = rest.next().unwrap_or_default();
            let value = rest.next().unwrap_or_default();
            Command::Write(Write::Set { key, value })
        }
        "del" => {
            arity(count >= 1)?;
            Command::Write(Write::Del(rest.collect()))
        }
        "incr" => {
            arity(count == 1)?;
            Command::Write(Write::Incr(rest.next().unwrap_or_default()))
        }
        "get" => {
            arity(count == 1)?;
            Command::Read(Read::Get(rest.next().unwrap_or_default()))
        }
        "exists" => {
            arity(count >= 1)?;
            Command::Read(Read::Exists(rest.collect()))
        }
        "dbsize" => {
            arity(count == 0)?;
            Command::Read(Read::DbSize)
        }
        "ping" => {
            arity(count <= 1)?;
            Command::Ping(rest.next())
        }
        "echo" => {
            arity(count == 1)?;
            Command::Echo(rest.next().unwrap_or_default())
        }
        "info" => {
            arity(count <= 1)?;
            Command::Info(rest.next())
        }
        "role" => {
            arity(count == 0)?;
            Command::Role
        }
        "config" => {
            let sub = rest.next().map(|sub| sub.to_ascii_lowercase());
            if sub.as_deref() != Some(b"get".as_slice()) {
                return Err("ERR only CONFIG GET is supported".into());
            }
            arity(count == 2)?;
            Command::ConfigGet
        }
        "readonly" => {
            arity(count == 0)?;
            Command::ReadOnly
        }
        "readwrite" => {
            arity(count == 0)?;
            Command::ReadWrite
        }
        "quit" => Command::Quit,
        _ => {
            let shown: String = String::from_utf8_lossy(&name).chars().take(64).collect();
            return Err(format!("ERR unknown command '{shown}'"));
        }
    };
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Bytes> {
        text.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn commands_are_case_insensitive_and_classed() {
        let key = Bytes::from_static(b"k");
        assert_eq!(
            parse(words("get k")),
            Ok(Command::Read(Read::Get(key.clone())))
        );
        assert_eq!(
            parse(words("SeT k v")),
            Ok(Command::Write(Write::Set {
                key: key.clone(),
                value: Bytes::from_static(b"v")
            }))
        );
        assert_eq!(parse(words("DBSIZE")), Ok(Command::Read(Read::DbSize)));
        assert_eq!(parse(words("ping")), Ok(Command::Ping(None)));
        assert_eq!(parse(words("config get save")), Ok(Command::ConfigGet));
    }

    #[test]
    fn wrong_arity_and_unknown_commands_are_errors() {
        assert_eq!(
            parse(words("GET")),
            Err("ERR wrong number of arguments for 'get' command".into())
        );
        assert_eq!(
            parse(words("DEL")),
            Err("ERR wrong number of arguments for 'del' command".into())
        );
        assert!(parse(words("SET k v EX 10"))
            .unwrap_err()
            .starts_with("ERR syntax error"));
        assert_eq!(
            parse(words("FLUSHALL")),
            Err("ERR unknown command 'FLUSHALL'".into())
        );
        assert_eq!(parse(Vec::new()), Err("ERR empty command".into()));
    }
}

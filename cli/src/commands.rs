//! The Redis commands a node understands, parsed from a request's
//! arguments, and how each is classed: a write goes through the log, a
//! read waits for a read barrier, the rest are answered locally.

use std::net::SocketAddr;

use bytes::Bytes;
use kontiki::NodeId;

use crate::cluster::{self, ClusterQuery};
use crate::collection_commands;
pub use crate::read::Read;
use crate::session::{self, Session};
use crate::store_commands;
use crate::write::{Op, SetExpiry, SetOptions, When, Write};

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
    /// `CONFIG GET pattern`: the few Redis parameters that describe this
    /// server (redis-benchmark asks at start), matching the pattern.
    ConfigGet(Bytes),
    /// `READONLY`: as on a Redis Cluster replica, this connection's reads
    /// are then served from this node's own state without a barrier —
    /// possibly stale, but possible on a follower.
    ReadOnly,
    /// `READWRITE`: back to linearizable reads.
    ReadWrite,
    /// `QUIT`: answer, then close.
    Quit,
    /// `AUTH [username] password`.
    Auth {
        /// The user named, if any (else the default user).
        user: Option<Bytes>,
        /// The password.
        password: Bytes,
    },
    /// A change to the cluster (`RAFT.NODE ...`, `RAFT.TRANSFER_LEADER`),
    /// done by the leader.
    Admin(Admin),
    /// `RAFT.NODE LIST`: the members of the configuration in force.
    Members,
    /// About the connection or the server's commands (`HELLO`, `CLIENT`,
    /// `SELECT`, `COMMAND`, `TIME`), answered by the connection.
    Session(Session),
    /// `MULTI`: queue what follows, until `EXEC` or `DISCARD`.
    Multi,
    /// `EXEC`: the queued commands, as one log entry.
    Exec,
    /// `DISCARD`: drop the queued commands.
    Discard,
    /// `WATCH key...`: `EXEC` applies nothing if one of these keys is
    /// written before it.
    Watch(Vec<Bytes>),
    /// `UNWATCH`: forget the watched keys.
    Unwatch,
    /// `CLUSTER SLOTS`, `SHARDS`, `NODES`, `INFO` or `MYID`.
    Cluster(ClusterQuery),
}

/// A change to the cluster, asked of the leader.
#[derive(Debug, PartialEq, Eq)]
pub enum Admin {
    /// `RAFT.NODE ADD id peer_addr [client_addr]`: a new learner.
    AddLearner {
        /// Its node id.
        id: NodeId,
        /// Where its peers reach it.
        peer: SocketAddr,
        /// Where it serves clients.
        client: Option<SocketAddr>,
    },
    /// `RAFT.NODE PROMOTE id`: a learner becomes a voter.
    Promote(NodeId),
    /// `RAFT.NODE REMOVE id`: a member leaves.
    Remove(NodeId),
    /// `RAFT.TRANSFER_LEADER id`: the leadership goes to voter `id`.
    TransferLeader(NodeId),
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
            arity(count >= 2)?;
            let key = rest.next().unwrap_or_default();
            let value = rest.next().unwrap_or_default();
            Command::Write(store_commands::parse_set(key, value, rest)?)
        }
        "setnx" | "getset" => {
            arity(count == 2)?;
            let key = rest.next().unwrap_or_default();
            let value = rest.next().unwrap_or_default();
            let setnx = lower == "setnx";
            Command::Write(Write::SetIf {
                key,
                value,
                options: SetOptions {
                    when: if setnx { When::Missing } else { When::Always },
                    get: !setnx,
                    setnx,
                    expiry: SetExpiry::Clear,
                },
            })
        }
        "mset" => {
            arity(count >= 2 && count.is_multiple_of(2))?;
            let mut pairs = Vec::with_capacity(count / 2);
            while let (Some(key), Some(value)) = (rest.next(), rest.next()) {
                pairs.push((key, value));
            }
            Command::Write(Write::MSet(pairs))
        }
        "append" => {
            arity(count == 2)?;
            let key = rest.next().unwrap_or_default();
            let value = rest.next().unwrap_or_default();
            Command::Write(Write::Append { key, value })
        }
        "getdel" => {
            arity(count == 1)?;
            Command::Write(Write::GetDel(rest.next().unwrap_or_default()))
        }
        "del" | "unlink" => {
            arity(count >= 1)?;
            Command::Write(Write::Del(rest.collect()))
        }
        "flushall" | "flushdb" => {
            // ASYNC and SYNC mean the same here: the store is cleared by
            // one log entry either way.
            let mode = rest.next().map(|mode| mode.to_ascii_lowercase());
            if count > 1 || !matches!(mode.as_deref(), None | Some(b"async" | b"sync")) {
                return Err("ERR syntax error".into());
            }
            Command::Write(Write::FlushAll)
        }
        "mget" => {
            arity(count >= 1)?;
            Command::Read(Read::MGet(rest.collect()))
        }
        "strlen" => {
            arity(count == 1)?;
            Command::Read(Read::StrLen(rest.next().unwrap_or_default()))
        }
        "type" => {
            arity(count == 1)?;
            Command::Read(Read::Type(rest.next().unwrap_or_default()))
        }
        "keys" => {
            arity(count == 1)?;
            Command::Read(Read::Keys(rest.next().unwrap_or_default()))
        }
        "incr" | "decr" => {
            arity(count == 1)?;
            let key = rest.next().unwrap_or_default();
            let by = if lower == "incr" { 1 } else { -1 };
            Command::Write(Write::IncrBy { key, by })
        }
        "incrby" | "decrby" => {
            arity(count == 2)?;
            let key = rest.next().unwrap_or_default();
            let amount = rest.next().unwrap_or_default();
            let amount = std::str::from_utf8(&amount)
                .ok()
                .and_then(|text| text.parse::<i64>().ok())
                .ok_or("ERR value is not an integer or out of range")?;
            let by = if lower == "incrby" {
                amount
            } else {
                amount.checked_neg().ok_or("ERR decrement would overflow")?
            };
            Command::Write(Write::IncrBy { key, by })
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
            Command::ConfigGet(rest.next().unwrap_or_default())
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
        "auth" => {
            arity(count == 1 || count == 2)?;
            let first = rest.next().unwrap_or_default();
            match rest.next() {
                Some(password) => Command::Auth {
                    user: Some(first),
                    password,
                },
                None => Command::Auth {
                    user: None,
                    password: first,
                },
            }
        }
        "cluster" => Command::Cluster(cluster::parse(&rest.collect::<Vec<_>>())?),
        "multi" | "exec" | "discard" | "unwatch" => {
            arity(count == 0)?;
            match lower.as_str() {
                "multi" => Command::Multi,
                "exec" => Command::Exec,
                "discard" => Command::Discard,
                _ => Command::Unwatch,
            }
        }
        "watch" => {
            arity(count >= 1)?;
            Command::Watch(rest.collect())
        }
        "hello" | "client" | "select" | "command" | "time" => {
            // The names above are session::parse's own; should the two
            // lists ever differ, the request is unknown, never a panic.
            return session::parse(&lower, rest.collect())
                .unwrap_or_else(|| Err(format!("ERR unknown command '{lower}'")))
                .map(Command::Session);
        }
        "raft.node" => parse_raft_node(rest)?,
        "raft.transfer_leader" => {
            arity(count == 1)?;
            Command::Admin(Admin::TransferLeader(node_id(rest.next())?))
        }
        _ => {
            let rest: Vec<Bytes> = rest.collect();
            let parsed = match collection_commands::parse(&lower, &rest) {
                Some(parsed) => Some(parsed),
                None => store_commands::parse(&lower, rest),
            };
            if let Some(parsed) = parsed {
                return parsed.map(|op| match op {
                    Op::Write(write) => Command::Write(write),
                    Op::Read(read) => Command::Read(read),
                });
            }
            let shown: String = String::from_utf8_lossy(&name).chars().take(64).collect();
            return Err(format!("ERR unknown command '{shown}'"));
        }
    };
    Ok(command)
}

/// Parses a request typed as words separated by single spaces (for
/// tests).
#[cfg(test)]
pub(crate) fn parse_words(text: &str) -> Result<Command, String> {
    parse(
        text.split(' ')
            .map(|word| Bytes::copy_from_slice(word.as_bytes()))
            .collect(),
    )
}

/// `RAFT.NODE <subcommand> ...`.
fn parse_raft_node(mut rest: impl ExactSizeIterator<Item = Bytes>) -> Result<Command, String> {
    let sub = rest
        .next()
        .map(|sub| String::from_utf8_lossy(&sub).to_ascii_lowercase())
        .unwrap_or_default();
    let count = rest.len();
    let arity = |valid: bool| -> Result<(), String> {
        if valid {
            Ok(())
        } else {
            Err(format!(
                "ERR wrong number of arguments for 'raft.node {sub}' command"
            ))
        }
    };
    let command = match sub.as_str() {
        "add" => {
            arity(count == 2 || count == 3)?;
            let id = node_id(rest.next())?;
            let peer = socket_address(rest.next())?;
            let client = rest
                .next()
                .map(|client| socket_address(Some(client)))
                .transpose()?;
            Command::Admin(Admin::AddLearner { id, peer, client })
        }
        "promote" => {
            arity(count == 1)?;
            Command::Admin(Admin::Promote(node_id(rest.next())?))
        }
        "remove" => {
            arity(count == 1)?;
            Command::Admin(Admin::Remove(node_id(rest.next())?))
        }
        "list" => {
            arity(count == 0)?;
            Command::Members
        }
        _ => return Err("ERR unknown RAFT.NODE subcommand (ADD, PROMOTE, REMOVE or LIST)".into()),
    };
    Ok(command)
}

fn node_id(argument: Option<Bytes>) -> Result<NodeId, String> {
    let text = String::from_utf8_lossy(&argument.unwrap_or_default()).into_owned();
    match text.parse::<u64>() {
        Ok(id) if id > 0 => Ok(NodeId(id)),
        _ => Err(format!("ERR invalid node id '{text}': a positive integer")),
    }
}

fn socket_address(argument: Option<Bytes>) -> Result<SocketAddr, String> {
    let text = String::from_utf8_lossy(&argument.unwrap_or_default()).into_owned();
    text.parse().map_err(|_| {
        format!("ERR invalid address '{text}': an IP address and port, such as 10.0.0.4:7000")
    })
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
        assert_eq!(
            parse(words("config get save")),
            Ok(Command::ConfigGet(Bytes::from_static(b"save")))
        );
    }

    #[test]
    fn string_writes_and_reads_parse() {
        let b = |text: &str| Bytes::copy_from_slice(text.as_bytes());
        let set_if = |when, get, setnx| {
            Ok(Command::Write(Write::SetIf {
                key: b("k"),
                value: b("v"),
                options: SetOptions {
                    when,
                    get,
                    setnx,
                    expiry: SetExpiry::Clear,
                },
            }))
        };
        assert_eq!(
            parse(words("SET k v nx")),
            set_if(When::Missing, false, false)
        );
        assert_eq!(
            parse(words("SET k v XX GET")),
            set_if(When::Present, true, false)
        );
        assert_eq!(
            parse(words("SET k v GET")),
            set_if(When::Always, true, false)
        );
        assert_eq!(
            parse(words("SETNX k v")),
            set_if(When::Missing, false, true)
        );
        assert_eq!(
            parse(words("GETSET k v")),
            set_if(When::Always, true, false)
        );
        assert_eq!(
            parse(words("MSET a 1 b 2")),
            Ok(Command::Write(Write::MSet(vec![
                (b("a"), b("1")),
                (b("b"), b("2"))
            ])))
        );
        assert_eq!(
            parse(words("unlink a b")),
            Ok(Command::Write(Write::Del(vec![b("a"), b("b")])))
        );
        assert_eq!(
            parse(words("FLUSHDB ASYNC")),
            Ok(Command::Write(Write::FlushAll))
        );
        assert_eq!(
            parse(words("flushall")),
            Ok(Command::Write(Write::FlushAll))
        );
        assert_eq!(
            parse(words("MGET a b")),
            Ok(Command::Read(Read::MGet(vec![b("a"), b("b")])))
        );
        assert_eq!(
            parse(words("KEYS user:*")),
            Ok(Command::Read(Read::Keys(b("user:*"))))
        );
        assert_eq!(
            parse(words("TYPE k")),
            Ok(Command::Read(Read::Type(b("k"))))
        );
        assert_eq!(
            parse(words("STRLEN k")),
            Ok(Command::Read(Read::StrLen(b("k"))))
        );
    }

    #[test]
    fn increments_and_decrements_are_one_write() {
        let key = Bytes::from_static(b"n");
        let by = |by| {
            Ok(Command::Write(Write::IncrBy {
                key: key.clone(),
                by,
            }))
        };
        assert_eq!(parse(words("INCR n")), by(1));
        assert_eq!(parse(words("decr n")), by(-1));
        assert_eq!(parse(words("IncrBy n -7")), by(-7));
        assert_eq!(parse(words("DECRBY n 9223372036854775807")), by(-i64::MAX));
        assert_eq!(
            parse(words("DECRBY n -9223372036854775808")),
            Err("ERR decrement would overflow".into())
        );
        assert_eq!(
            parse(words("INCRBY n 1.5")),
            Err("ERR value is not an integer or out of range".into())
        );
        assert!(parse(words("INCRBY n"))
            .unwrap_err()
            .contains("wrong number"));
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
        assert_eq!(
            parse(words("SET k v NX XX")),
            Err("ERR syntax error".into())
        );
        assert_eq!(parse(words("SET k v SOON")), Err("ERR syntax error".into()));
        assert_eq!(
            parse(words("MSET a 1 b")).unwrap_err(),
            "ERR wrong number of arguments for 'mset' command"
        );
        assert_eq!(parse(words("FLUSHALL NOW")), Err("ERR syntax error".into()));
        assert_eq!(
            parse(words("SUBSCRIBE news")),
            Err("ERR unknown command 'SUBSCRIBE'".into())
        );
        assert_eq!(parse(Vec::new()), Err("ERR empty command".into()));
    }

    #[test]
    fn cluster_changes_parse_and_bad_ones_are_named() {
        assert_eq!(
            parse(words("RAFT.NODE ADD 4 127.0.0.1:7004 127.0.0.1:6004")),
            Ok(Command::Admin(Admin::AddLearner {
                id: NodeId(4),
                peer: "127.0.0.1:7004".parse().unwrap(),
                client: Some("127.0.0.1:6004".parse().unwrap()),
            }))
        );
        assert_eq!(
            parse(words("raft.node add 4 [::1]:7004")),
            Ok(Command::Admin(Admin::AddLearner {
                id: NodeId(4),
                peer: "[::1]:7004".parse().unwrap(),
                client: None,
            }))
        );
        assert_eq!(
            parse(words("raft.node promote 4")),
            Ok(Command::Admin(Admin::Promote(NodeId(4))))
        );
        assert_eq!(
            parse(words("RAFT.NODE REMOVE 2")),
            Ok(Command::Admin(Admin::Remove(NodeId(2))))
        );
        assert_eq!(parse(words("raft.node list")), Ok(Command::Members));
        assert_eq!(
            parse(words("RAFT.TRANSFER_LEADER 3")),
            Ok(Command::Admin(Admin::TransferLeader(NodeId(3))))
        );
        assert!(parse(words("raft.node add 0 127.0.0.1:1"))
            .unwrap_err()
            .contains("invalid node id '0'"));
        assert!(parse(words("raft.node add 4 localhost"))
            .unwrap_err()
            .contains("invalid address"));
        assert!(parse(words("raft.node remove"))
            .unwrap_err()
            .contains("wrong number of arguments"));
        assert!(parse(words("raft.node frobnicate"))
            .unwrap_err()
            .contains("unknown RAFT.NODE subcommand"));
        assert!(parse(words("raft.node")).is_err());
    }
}

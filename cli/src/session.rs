//! What a connection says about itself and asks of the server without
//! touching the store: `HELLO` (RESP2 or RESP3), `CLIENT`, `SELECT`,
//! `COMMAND` and `TIME`, the commands client libraries send when they
//! connect.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::command_table::{self, COMMANDS};
use crate::resp::Replies;
use crate::write::Op;

/// A connection-level command, understood.
#[derive(Debug, PartialEq, Eq)]
pub enum Session {
    /// `HELLO [protover [AUTH username password] [SETNAME name]]`.
    Hello {
        /// The protocol asked for (2 or 3), if any.
        protocol: Option<u8>,
        /// The connection's new name, if given.
        name: Option<Bytes>,
        /// The user and password to authenticate with first, if given.
        auth: Option<(Bytes, Bytes)>,
    },
    /// `CLIENT SETNAME name`.
    SetName(Bytes),
    /// `CLIENT GETNAME`.
    GetName,
    /// `CLIENT ID`.
    Id,
    /// `CLIENT INFO`.
    Info,
    /// `CLIENT SETINFO LIB-NAME|LIB-VER value`.
    SetInfo {
        /// Whether it is the library's version (else its name).
        version: bool,
        /// The value.
        value: Bytes,
    },
    /// `SELECT 0`: the only database.
    Select,
    /// `COMMAND` or `COMMAND INFO name...` (every command when none is
    /// named).
    CommandInfo(Vec<Bytes>),
    /// `COMMAND COUNT`.
    CommandCount,
    /// `COMMAND LIST`.
    CommandList,
    /// `COMMAND DOCS [name...]`.
    CommandDocs(Vec<Bytes>),
    /// `TIME`.
    Time,
}

/// Parses a connection-level command named `name` (lower case) with
/// arguments `rest`; `None` when `name` is none of them. The error is the
/// reply, without the leading `-`.
pub fn parse(name: &str, rest: Vec<Bytes>) -> Option<Result<Session, String>> {
    let parsed = match name {
        "hello" => parse_hello(rest),
        "client" => parse_client(rest),
        "select" => match rest.as_slice() {
            [index] => match std::str::from_utf8(index)
                .ok()
                .and_then(|i| i.parse::<i64>().ok())
            {
                Some(0) => Ok(Session::Select),
                Some(_) => Err("ERR DB index is out of range".into()),
                None => Err("ERR value is not an integer or out of range".into()),
            },
            _ => Err(wrong_arity("select")),
        },
        "command" => parse_command(rest),
        "time" if rest.is_empty() => Ok(Session::Time),
        "time" => Err(wrong_arity("time")),
        _ => return None,
    };
    Some(parsed)
}

fn wrong_arity(name: &str) -> String {
    format!("ERR wrong number of arguments for '{name}' command")
}

fn lower(word: &[u8]) -> String {
    String::from_utf8_lossy(word).to_ascii_lowercase()
}

fn parse_hello(rest: Vec<Bytes>) -> Result<Session, String> {
    let mut rest = rest.into_iter();
    let Some(version) = rest.next() else {
        return Ok(Session::Hello {
            protocol: None,
            name: None,
            auth: None,
        });
    };
    let protocol = match std::str::from_utf8(&version)
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
    {
        Some(version @ (2 | 3)) => version as u8,
        Some(_) => return Err("NOPROTO unsupported protocol version".into()),
        None => return Err("ERR Protocol version is not an integer or out of range".into()),
    };
    let mut name = None;
    let mut auth = None;
    while let Some(option) = rest.next() {
        match lower(&option).as_str() {
            "setname" => {
                let value = rest.next().ok_or_else(|| syntax_error(&option))?;
                name = Some(checked_name(value)?);
            }
            "auth" => {
                let user = rest.next().ok_or_else(|| syntax_error(&option))?;
                let password = rest.next().ok_or_else(|| syntax_error(&option))?;
                auth = Some((user, password));
            }
            _ => return Err(syntax_error(&option)),
        }
    }
    Ok(Session::Hello {
        protocol: Some(protocol),
        name,
        auth,
    })
}

fn syntax_error(option: &[u8]) -> String {
    format!(
        "ERR Syntax error in HELLO option '{}'",
        String::from_utf8_lossy(option)
    )
}

/// A client name or library attribute: Redis refuses spaces, newlines
/// and other characters outside `!`..=`~`.
fn checked_name(value: Bytes) -> Result<Bytes, String> {
    if value.iter().all(|byte| (b'!'..=b'~').contains(byte)) {
        Ok(value)
    } else {
        Err("ERR Client names cannot contain spaces, newlines or special characters.".into())
    }
}

fn parse_client(rest: Vec<Bytes>) -> Result<Session, String> {
    let mut rest = rest.into_iter();
    let sub = rest.next().map(|sub| lower(&sub)).unwrap_or_default();
    let arguments: Vec<Bytes> = rest.collect();
    let arity = |valid: bool| {
        if valid {
            Ok(())
        } else {
            Err(format!(
                "ERR wrong number of arguments for 'client|{sub}' command"
            ))
        }
    };
    match sub.as_str() {
        "setname" => {
            arity(arguments.len() == 1)?;
            Ok(Session::SetName(checked_name(arguments[0].clone())?))
        }
        "getname" => arity(arguments.is_empty()).map(|()| Session::GetName),
        "id" => arity(arguments.is_empty()).map(|()| Session::Id),
        "info" => arity(arguments.is_empty()).map(|()| Session::Info),
        "setinfo" => {
            arity(arguments.len() == 2)?;
            let version = match lower(&arguments[0]).as_str() {
                "lib-name" => false,
                "lib-ver" => true,
                _ => {
                    return Err(format!(
                        "ERR Unrecognized option '{}'",
                        String::from_utf8_lossy(&arguments[0])
                    ))
                }
            };
            let value = checked_name(arguments[1].clone())?;
            Ok(Session::SetInfo { version, value })
        }
        "" => Err(wrong_arity("client")),
        _ => Err(format!(
            "ERR unknown subcommand '{sub}'. This server knows CLIENT SETNAME, GETNAME, ID, INFO and SETINFO."
        )),
    }
}

fn parse_command(rest: Vec<Bytes>) -> Result<Session, String> {
    let mut rest = rest.into_iter();
    let Some(sub) = rest.next() else {
        return Ok(Session::CommandInfo(Vec::new()));
    };
    let names: Vec<Bytes> = rest.collect();
    let sub = lower(&sub);
    match sub.as_str() {
        "count" if names.is_empty() => Ok(Session::CommandCount),
        "list" if names.is_empty() => Ok(Session::CommandList),
        "count" | "list" => Err(format!(
            "ERR wrong number of arguments for 'command|{sub}' command"
        )),
        "info" => Ok(Session::CommandInfo(names)),
        "docs" => Ok(Session::CommandDocs(names)),
        _ => Err(format!(
            "ERR unknown subcommand '{sub}'. This server knows COMMAND COUNT, LIST, INFO and DOCS."
        )),
    }
}

/// The ids of connections, in order of arrival.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What one connection has asked for, and what it said of itself.
pub struct Connection {
    /// After `READONLY`: reads skip the barrier.
    pub stale_reads: bool,
    /// Its id (`CLIENT ID`), unique in this process.
    pub id: u64,
    /// Where the client is.
    pub remote: Option<SocketAddr>,
    /// Its name (`CLIENT SETNAME`, `HELLO ... SETNAME`).
    pub name: Option<Bytes>,
    /// Its library's name and version (`CLIENT SETINFO`).
    pub library: (Option<Bytes>, Option<Bytes>),
    /// After `MULTI`, until `EXEC` or `DISCARD`: the commands queued.
    pub transaction: Option<Transaction>,
    /// The keys `WATCH` looked at, each with its version then, until
    /// `EXEC`, `DISCARD` or `UNWATCH`.
    pub watched: Vec<(Bytes, u64)>,
    /// Whether it may run commands: authenticated, or on a node that asks
    /// no authentication of it.
    pub authenticated: bool,
    /// Whether a refusal of its credentials or commands was logged (once
    /// per connection, so that a client cannot flood the log).
    pub refusal_logged: bool,
}

/// A transaction being queued.
#[derive(Debug, Default)]
pub struct Transaction {
    /// The commands, in order.
    pub ops: Vec<Op>,
    /// A command could not be queued: `EXEC` will refuse the whole.
    pub aborted: bool,
}

impl Connection {
    /// A new connection from `remote`, with the next id.
    pub fn new(remote: Option<SocketAddr>) -> Connection {
        Connection {
            stale_reads: false,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            remote,
            name: None,
            library: (None, None),
            transaction: None,
            watched: Vec::new(),
            authenticated: true,
            refusal_logged: false,
        }
    }

    /// Answers `command`; `leads` says whether this node leads (for
    /// `HELLO`'s role).
    pub fn answer(&mut self, command: Session, leads: bool, replies: &mut Replies) {
        match command {
            Session::Hello { protocol, name, .. } => {
                if let Some(protocol) = protocol {
                    replies.set_protocol(protocol);
                }
                if name.is_some() {
                    self.name = name;
                }
                self.hello(leads, replies);
            }
            Session::SetName(name) => {
                // An empty name clears it, as in Redis.
                self.name = Some(name).filter(|name| !name.is_empty());
                replies.simple("OK");
            }
            Session::GetName => match &self.name {
                Some(name) => replies.bulk(name),
                None => replies.null(),
            },
            Session::Id => replies.integer(self.id as i64),
            Session::Info => replies.bulk(self.describe(replies.protocol()).as_bytes()),
            Session::SetInfo { version, value } => {
                if version {
                    self.library.1 = Some(value);
                } else {
                    self.library.0 = Some(value);
                }
                replies.simple("OK");
            }
            Session::Select => replies.simple("OK"),
            Session::CommandInfo(names) if names.is_empty() => {
                replies.array(COMMANDS.len());
                for spec in COMMANDS {
                    command_table::write_info(spec, replies);
                }
            }
            Session::CommandInfo(names) => {
                replies.array(names.len());
                for name in names {
                    match command_table::find(&name) {
                        Some(spec) => command_table::write_info(spec, replies),
                        None => replies.null(),
                    }
                }
            }
            Session::CommandCount => replies.integer(COMMANDS.len() as i64),
            Session::CommandList => {
                replies.array(COMMANDS.len());
                for spec in COMMANDS {
                    replies.bulk(spec.name.as_bytes());
                }
            }
            Session::CommandDocs(names) => {
                let specs: Vec<_> = if names.is_empty() {
                    COMMANDS.iter().collect()
                } else {
                    names
                        .iter()
                        .filter_map(|name| command_table::find(name))
                        .collect()
                };
                replies.map(specs.len());
                for spec in specs {
                    replies.bulk(spec.name.as_bytes());
                    command_table::write_docs(spec, replies);
                }
            }
            Session::Time => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                replies.array(2);
                replies.bulk(now.as_secs().to_string().as_bytes());
                replies.bulk(now.subsec_micros().to_string().as_bytes());
            }
        }
    }

    /// `HELLO`'s answer, in the protocol now in force: a map describing
    /// the server. The version is that of the Redis protocol spoken (7.0),
    /// which clients may check; `kontiki_version` is kontiki's own.
    fn hello(&self, leads: bool, replies: &mut Replies) {
        replies.map(8);
        replies.bulk(b"server");
        replies.bulk(b"kontiki");
        replies.bulk(b"version");
        replies.bulk(b"7.0.0");
        replies.bulk(b"kontiki_version");
        replies.bulk(env!("CARGO_PKG_VERSION").as_bytes());
        replies.bulk(b"proto");
        replies.integer(i64::from(replies.protocol()));
        replies.bulk(b"id");
        replies.integer(self.id as i64);
        replies.bulk(b"mode");
        replies.bulk(b"cluster");
        replies.bulk(b"role");
        replies.bulk(if leads { b"master" } else { b"replica" });
        replies.bulk(b"modules");
        replies.array(0);
    }

    /// `CLIENT INFO`'s line, in Redis's `key=value` form.
    fn describe(&self, protocol: u8) -> String {
        let text = |value: &Option<Bytes>| {
            value
                .as_ref()
                .map(|value| String::from_utf8_lossy(value).into_owned())
                .unwrap_or_default()
        };
        let address = self.remote.map(|a| a.to_string()).unwrap_or_default();
        format!(
            "id={} addr={address} name={} db=0 resp={protocol} lib-name={} lib-ver={}\n",
            self.id,
            text(&self.name),
            text(&self.library.0),
            text(&self.library.1),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Bytes> {
        text.split(' ')
            .filter(|word| !word.is_empty())
            .map(|word| Bytes::copy_from_slice(word.as_bytes()))
            .collect()
    }

    fn parsed(text: &str) -> Result<Session, String> {
        let mut words = words(text);
        let name = lower(&words.remove(0));
        parse(&name, words).expect("a session command")
    }

    fn answered(connection: &mut Connection, replies: &mut Replies, text: &str) -> String {
        let command = parsed(text).unwrap();
        connection.answer(command, true, replies);
        String::from_utf8(replies.take().to_vec()).unwrap()
    }

    #[test]
    fn hello_switches_the_protocol_and_describes_the_server() {
        let mut connection = Connection::new(None);
        let mut replies = Replies::new();
        let resp2 = answered(&mut connection, &mut replies, "HELLO");
        assert!(
            resp2.starts_with("*16\r\n$6\r\nserver\r\n$7\r\nkontiki\r\n"),
            "{resp2}"
        );
        assert!(resp2.contains("$5\r\nproto\r\n:2\r\n"), "{resp2}");
        let resp3 = answered(&mut connection, &mut replies, "hello 3 setname app");
        assert!(resp3.starts_with("%8\r\n"), "{resp3}");
        assert!(resp3.contains("$5\r\nproto\r\n:3\r\n"), "{resp3}");
        assert!(resp3.contains("$4\r\nrole\r\n$6\r\nmaster\r\n"), "{resp3}");
        assert_eq!(replies.protocol(), 3);
        assert_eq!(connection.name.as_deref(), Some(&b"app"[..]));
        assert_eq!(answered(&mut connection, &mut replies, "HELLO 2"), resp2);
        assert_eq!(replies.protocol(), 2);
    }

    #[test]
    fn bad_hellos_are_refused_as_redis_refuses_them() {
        assert_eq!(
            parsed("HELLO 4"),
            Err("NOPROTO unsupported protocol version".into())
        );
        assert!(parsed("HELLO three")
            .unwrap_err()
            .contains("not an integer"));
        assert!(parsed("HELLO 3 SETNAME")
            .unwrap_err()
            .contains("Syntax error"));
        assert!(parsed("HELLO 3 FROB x")
            .unwrap_err()
            .contains("Syntax error"));
        assert!(parsed("HELLO 3 AUTH u")
            .unwrap_err()
            .contains("Syntax error"));
        assert_eq!(
            parsed("HELLO 3 AUTH u p SETNAME n"),
            Ok(Session::Hello {
                protocol: Some(3),
                name: Some(Bytes::from_static(b"n")),
                auth: Some((Bytes::from_static(b"u"), Bytes::from_static(b"p")))
            })
        );
    }

    #[test]
    fn client_names_ids_and_library_attributes() {
        let mut connection = Connection::new(Some("127.0.0.1:5000".parse().unwrap()));
        let other = Connection::new(None);
        assert!(other.id > connection.id, "ids rise");
        let mut replies = Replies::new();
        assert_eq!(
            answered(&mut connection, &mut replies, "CLIENT GETNAME"),
            "$-1\r\n"
        );
        assert_eq!(
            answered(&mut connection, &mut replies, "client setname worker-1"),
            "+OK\r\n"
        );
        assert_eq!(
            answered(&mut connection, &mut replies, "CLIENT GETNAME"),
            "$8\r\nworker-1\r\n"
        );
        answered(
            &mut connection,
            &mut replies,
            "CLIENT SETINFO LIB-NAME redis-py",
        );
        answered(
            &mut connection,
            &mut replies,
            "CLIENT SETINFO lib-ver 8.0.0",
        );
        let info = answered(&mut connection, &mut replies, "CLIENT INFO");
        assert!(
            info.contains(
                "addr=127.0.0.1:5000 name=worker-1 db=0 resp=2 lib-name=redis-py lib-ver=8.0.0"
            ),
            "{info}"
        );
        assert_eq!(
            answered(&mut connection, &mut replies, "CLIENT ID"),
            format!(":{}\r\n", connection.id)
        );
        assert!(parsed("CLIENT SETNAME a\nb")
            .unwrap_err()
            .contains("cannot contain"));
        assert!(parsed("CLIENT SETINFO LIB-COLOR red")
            .unwrap_err()
            .contains("Unrecognized"));
        assert!(parsed("CLIENT KILL x")
            .unwrap_err()
            .contains("unknown subcommand"));
        assert!(parsed("CLIENT").unwrap_err().contains("wrong number"));
    }

    #[test]
    fn select_takes_database_zero_only() {
        assert_eq!(parsed("SELECT 0"), Ok(Session::Select));
        assert_eq!(
            parsed("SELECT 1"),
            Err("ERR DB index is out of range".into())
        );
        assert!(parsed("SELECT x").unwrap_err().contains("not an integer"));
        assert!(parsed("SELECT").unwrap_err().contains("wrong number"));
    }

    #[test]
    fn command_describes_the_table() {
        let mut connection = Connection::new(None);
        let mut replies = Replies::new();
        assert_eq!(
            answered(&mut connection, &mut replies, "COMMAND COUNT"),
            format!(":{}\r\n", COMMANDS.len())
        );
        let all = answered(&mut connection, &mut replies, "COMMAND");
        assert!(
            all.starts_with(&format!("*{}\r\n*10\r\n", COMMANDS.len())),
            "{all}"
        );
        assert_eq!(
            answered(&mut connection, &mut replies, "COMMAND INFO get nosuch"),
            {
                let mut expected = Replies::new();
                expected.array(2);
                command_table::write_info(command_table::find(b"get").unwrap(), &mut expected);
                expected.null();
                String::from_utf8(expected.take().to_vec()).unwrap()
            }
        );
        let docs = answered(&mut connection, &mut replies, "COMMAND DOCS set nosuch");
        assert!(docs.starts_with("*2\r\n$3\r\nset\r\n*8\r\n"), "{docs}");
        let list = answered(&mut connection, &mut replies, "COMMAND LIST");
        assert!(list.contains("$5\r\nhello\r\n"), "{list}");
        assert!(parsed("COMMAND GETKEYS get k")
            .unwrap_err()
            .contains("unknown subcommand"));
    }

    #[test]
    fn time_is_seconds_and_microseconds() {
        let mut connection = Connection::new(None);
        let mut replies = Replies::new();
        let time = answered(&mut connection, &mut replies, "TIME");
        let parts: Vec<&str> = time.split("\r\n").collect();
        assert_eq!(parts[0], "*2");
        let seconds: u64 = parts[2].parse().unwrap();
        let micros: u64 = parts[4].parse().unwrap();
        assert!(seconds > 1_700_000_000 && micros < 1_000_000, "{time}");
        assert!(parsed("TIME now").is_err());
    }
}

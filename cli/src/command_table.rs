//! What the server says of its commands: `COMMAND`, `COMMAND INFO`,
//! `COMMAND COUNT`, `COMMAND LIST` and `COMMAND DOCS` (which redis-cli
//! reads for its hints, and cluster-aware clients for where the keys are).
//! One table serves them all, and a test checks that it names every
//! command the parser takes.

use crate::resp::Replies;

/// One command, as `COMMAND` describes it.
pub struct Spec {
    /// Its name, lower case.
    pub name: &'static str,
    /// Redis's arity: the number of words with the name, or at least
    /// that many when negative.
    pub arity: i64,
    /// Redis's command flags (`readonly`, `write`, `fast`, ...).
    pub flags: &'static [&'static str],
    /// The positions of the first and last key and the step between keys
    /// (0, 0, 0: no keys; a last of -1: up to the last argument).
    pub keys: (i64, i64, i64),
    /// Its group (`string`, `generic`, `connection`, `server`, ...).
    pub group: &'static str,
    /// One line saying what it does.
    pub summary: &'static str,
    /// Its arguments, for `COMMAND DOCS`.
    pub arguments: &'static [Argument],
}

/// One argument of a command.
pub struct Argument {
    /// Its name.
    pub name: &'static str,
    /// Its type, as Redis names them: `key`, `string`, `integer`,
    /// `double`, `pattern`, `unix-time`, `pure-token`, `oneof` or `block` (the
    /// last two group arguments, which `COMMAND DOCS` lists without
    /// their members here).
    pub kind: &'static str,
    /// The word that introduces it, if any.
    pub token: Option<&'static str>,
    /// Whether it may be left out.
    pub optional: bool,
    /// Whether it may repeat.
    pub multiple: bool,
    /// The arguments it groups (a `oneof` or `block`); empty otherwise.
    pub members: &'static [Argument],
}

const fn argument(name: &'static str, kind: &'static str) -> Argument {
    Argument {
        name,
        kind,
        token: None,
        optional: false,
        multiple: false,
        members: &[],
    }
}

const fn token(word: &'static str) -> Argument {
    Argument {
        token: Some(word),
        ..argument(word, "pure-token")
    }
}

const fn optional(name: &'static str, kind: &'static str) -> Argument {
    Argument {
        optional: true,
        ..argument(name, kind)
    }
}

const fn keys(name: &'static str) -> Argument {
    Argument {
        multiple: true,
        ..argument(name, "key")
    }
}

/// `EXPIRE`'s condition.
const CONDITION: Argument = Argument {
    optional: true,
    members: &[token("NX"), token("XX"), token("GT"), token("LT")],
    ..argument("condition", "oneof")
};

/// `SET`'s expiry options.
const EXPIRATION: Argument = Argument {
    optional: true,
    members: &[
        Argument {
            token: Some("EX"),
            ..argument("seconds", "integer")
        },
        Argument {
            token: Some("PX"),
            ..argument("milliseconds", "integer")
        },
        Argument {
            token: Some("EXAT"),
            ..argument("unix-time-seconds", "unix-time")
        },
        Argument {
            token: Some("PXAT"),
            ..argument("unix-time-milliseconds", "unix-time")
        },
        token("KEEPTTL"),
    ],
    ..argument("expiration", "oneof")
};

/// `ZADD`'s scores and members.
const SCORES_AND_MEMBERS: Argument = Argument {
    multiple: true,
    members: &[argument("score", "double"), argument("member", "string")],
    ..argument("data", "block")
};

/// `HSET`'s pairs.
const FIELDS_AND_VALUES: Argument = Argument {
    multiple: true,
    members: &[argument("field", "string"), argument("value", "string")],
    ..argument("data", "block")
};

const NO_KEYS: (i64, i64, i64) = (0, 0, 0);
const ONE_KEY: (i64, i64, i64) = (1, 1, 1);
const ALL_KEYS: (i64, i64, i64) = (1, -1, 1);

/// Every command the server understands, in alphabetical order.
pub const COMMANDS: &[Spec] = &[
    Spec {
        name: "append",
        arity: 3,
        flags: &["write", "denyoom"],
        keys: ONE_KEY,
        group: "string",
        summary: "Appends a value to the value of a key, through the log; returns the new length.",
        arguments: &[argument("key", "key"), argument("value", "string")],
    },
    Spec {
        name: "auth",
        arity: -2,
        flags: &["noscript", "loading", "stale", "fast", "no-auth", "allow-busy"],
        keys: NO_KEYS,
        group: "connection",
        summary: "Authenticates the connection as a user of the node's auth file.",
        arguments: &[optional("username", "string"), argument("password", "string")],
    },
    Spec {
        name: "client",
        arity: -2,
        flags: &["noscript", "loading", "stale"],
        keys: NO_KEYS,
        group: "connection",
        summary: "Names and describes this connection: CLIENT SETNAME, GETNAME, ID, INFO, SETINFO.",
        arguments: &[argument("subcommand", "string"), Argument {
            optional: true,
            multiple: true,
            ..argument("arguments", "string")
        }],
    },
    Spec {
        name: "cluster",
        arity: -2,
        flags: &["loading", "stale"],
        keys: NO_KEYS,
        group: "cluster",
        summary: "Describes the cluster as one shard that owns every slot, led by the Raft leader: CLUSTER SLOTS, SHARDS, NODES, INFO, MYID.",
        arguments: &[argument("subcommand", "string")],
    },
    Spec {
        name: "command",
        arity: -1,
        flags: &["loading", "stale"],
        keys: NO_KEYS,
        group: "server",
        summary: "Describes the commands this server understands: COMMAND [COUNT | LIST | INFO | DOCS].",
        arguments: &[optional("subcommand", "string")],
    },
    Spec {
        name: "config",
        arity: -3,
        flags: &["admin", "noscript", "loading", "stale"],
        keys: NO_KEYS,
        group: "server",
        summary: "CONFIG GET: the Redis parameters that describe this server (appendonly, appendfsync, databases, save).",
        arguments: &[
            Argument {
                token: Some("GET"),
                ..argument("get", "pure-token")
            },
            argument("parameter", "string"),
        ],
    },
    Spec {
        name: "dbsize",
        arity: 1,
        flags: &["readonly", "fast"],
        keys: NO_KEYS,
        group: "server",
        summary: "Returns the number of keys (a linearizable read).",
        arguments: &[],
    },
    Spec {
        name: "decr",
        arity: 2,
        flags: &["write", "denyoom", "fast"],
        keys: ONE_KEY,
        group: "string",
        summary: "Subtracts one from the integer value of a key, through the log.",
        arguments: &[argument("key", "key")],
    },
    Spec {
        name: "decrby",
        arity: 3,
        flags: &["write", "denyoom", "fast"],
        keys: ONE_KEY,
        group: "string",
        summary: "Subtracts a number from the integer value of a key, through the log.",
        arguments: &[argument("key", "key"), argument("decrement", "integer")],
    },
    Spec {
        name: "del",
        arity: -2,
        flags: &["write"],
        keys: ALL_KEYS,
        group: "generic",
        summary: "Deletes keys, through the log; returns how many existed.",
        arguments: &[keys("key")],
    },
    Spec {
        name: "discard",
        arity: 1,
        flags: &["noscript", "loading", "stale", "fast"],
        keys: NO_KEYS,
        group: "transactions",
        summary: "Drops the commands queued since MULTI.",
        arguments: &[],
    },
    Spec {
        name: "echo",
        arity: 2,
        flags: &["fast"],
        keys: NO_KEYS,
        group: "connection",
        summary: "Returns the message.",
        arguments: &[argument("message", "string")],
    },
    Spec {
        name: "exec",
        arity: 1,
        flags: &["noscript", "loading", "stale"],
        keys: NO_KEYS,
        group: "transactions",
        summary: "Commits the commands queued since MULTI as one log entry and returns each one's reply.",
        arguments: &[],
    },
    Spec {
        name: "exists",
        arity: -2,
        flags: &["readonly", "fast"],
        keys: ALL_KEYS,
        group: "generic",
        summary: "Returns how many of the keys exist (a linearizable read).",
        arguments: &[keys("key")],
    },
    Spec {
        name: "expire",
        arity: -3,
        flags: &["write", "fast"],
        keys: ONE_KEY,
        group: "generic",
        summary: "Sets a key's time to live in seconds, through the log (NX, XX, GT, LT as in Redis 7).",
        arguments: &[argument("key", "key"), argument("seconds", "integer"), CONDITION],
    },
    Spec {
        name: "expireat",
        arity: -3,
        flags: &["write", "fast"],
        keys: ONE_KEY,
        group: "generic",
        summary: "Sets the Unix time in seconds at which a key expires, through the log.",
        arguments: &[argument("key", "key"), argument("unix-time-seconds", "unix-time"), CONDITION],
    },
    Spec {
        name: "expiretime",
        arity: 2,
        flags: &["readonly", "fast"],
        keys: ONE_KEY,
        group: "generic",
        summary: "Returns the Unix time in seconds at which a key expires: -1 never, -2 no such key.",
        arguments: &[argument("key", "key")],
    },
    Spec {
        name: "flushall",
        arity: -1,
        flags: &["write"],
        keys: NO_KEYS,
        group: "server",
        summary: "Removes every key, through the log (ASYNC and SYNC alike).",
        arguments: &[optional("flush-type", "string")],
    },
    Spec {
        name: "flushdb",
        arity: -1,
        flags: &["write"],
        keys: NO_KEYS,
        group: "server",
        summary: "Removes every key of database 0, the only one: FLUSHALL.",
        arguments: &[optional("flush-type", "string")],
    },
    Spec {
        name: "get",
        arity: 2,
        flags: &["readonly", "fast"],
        keys: ONE_KEY,
        group: "string",
        summary: "Returns the value of a key (a linearizable read).",
        arguments: &[argument("key", "key")],
    },
    Spec {
        name: "getdel",
        arity: 2,
        flags: &["write", "fast"],
        keys: ONE_KEY,
        group: "string",
        summary: "Removes a key through the log and returns its value.",
        arguments: &[argument("key", "key")],
    },
    Spec {
        name: "getset",
        arity: 3,
        flags: &["write", "denyoom"],
        keys: ONE_KEY,
        group: "string",
        summary: "Sets a key through the log and returns its old value.",
        arguments: &[argument("key", "key"), argument("value", "string")],
    },
    Spec {
        name: "hdel",
        arity: -3,
        flags: &["write", "fast"],
        keys: ONE_KEY,
        group: "hash",
        summary: "Deletes fields of a hash, through the log; returns how many were there.",
        arguments: &[argument("key", "key"), Argument { multiple: true, ..argument("field", "string") }],
    },
    Spec {
        name: "hello",
        arity: -1,
        flags: &["noscript", "loading", "stale", "fast"],
        keys: NO_KEYS,
        group: "connection",
        summary: "Chooses the protocol (RESP2 or RESP3) and describes the server.",
        arguments: &[
            optional("protover", "integer"),
            Argument {
                token: Some("AUTH"),
                optional: true,
                members: &[argument("username", "string"), argument("password", "string")],
                ..argument("auth", "block")
            },
            Argument {
                token: Some("SETNAME"),
                optional: true,
                ..argument("clientname", "string")
            },
        ],
    },
    Spec {
        name: "hexists",
        arity: 3,
        flags: &["readonly", "fast"],
        keys: ONE_KEY,
        group: "hash",
        summary: "Returns 1 if a hash has the field.",
        arguments: &[argument("key", "key"), argument("field", "string")],
    },
    Spec {
        name: "hget",
        arity: 3,
        flags: &["readonly", "fast"],
        keys: ONE_KEY,
        group: "hash",
        summary: "Returns the value of a field of a hash.",
        arguments: &[argument("key", "key"), argument("field", "string")],
    },
    Spec {
        name: "hgetall",
        arity: 2,
        flags: &["readonly"],
        keys: ONE_KEY,
        group: "hash",
        summary: "Returns every field and value of a hash.",
        arguments: &[argument("key", "key")],
    },
    Spec {
        name: "hincrby",
        arity: 4,
        flags: &["write", "denyoom", "fast"],
        keys: ONE_KEY,
        group: "hash",
        summary: "Adds to the integer in a field of a hash, through the log.",
        arguments: &[argument("key", "key"), argument("field", "string"), argument("increment", "integer")],
    },
    Spec {
        name: "hkeys",
        arity: 2,
        flags: &["readonly"],
        keys: ONE_KEY,
        group: "hash",
        summary: "Returns the fields of a hash.",
        arguments: &[argument("key", "key")],
    },
    Spec {
        name: "hlen",
        arity: 2,
        flags: &["readonly", "fast"],
        keys: ONE_KEY,
        group: "hash",
        summary: "Returns the number of fields of a hash.",
        arguments: &[argument("key", "key")],
    },
    Spec {
        name: "hmget",
        arity: -3,
        flags: &["readonly", "fast"],
        keys: ONE_KEY,
        group: "hash",
        summary: "Returns the values of fields of a hash.",
        arguments: &[argument("key", "key"), Argument { multiple: true, ..argument("field", "string") }],
    },
    Spec {
        name: "hmset",
        arity: -4,
        flags: &["write", "denyoom", "fast"],
        keys: ONE_KEY,
        group: "hash",
        summary: "Sets fields of a hash, through the log; returns OK.",
        arguments: &[argument("key", "key"), FIELDS_AND_VALUES],
    },
    Spec {
        name: "hset",
        arity: -4,
        flags: &["write", "denyoom", "fast"],
        keys: ONE_KEY,
        group: "hash",
        summary: "Sets fields of a hash, through the log; returns how many were new.",
        arguments: &[argument("key", "key"), FIELDS_AND_VALUES],
    },
    Spec {
        name: "hsetnx",
        arity: 4,
        flags: &["write", "denyoom", "fast"],
        keys: ONE_KEY,
        group: "hash",
        summary: "Sets a field of a hash that does not have it, through the log.",
        arguments: &[argument("key", "key"), argument("field", "string"), argument("value", "string")],
    },
    Spec {
        name: "hstrlen",
        arity: 3,
        flags: &["readonly", "fast"],
        keys: ONE_KEY,
        group: "hash",
        summary: "Returns the length of a field's value in a hash.",
        arguments: &[argument("key", "key"), argument("field", "string")],
    },
    Spec {
        name: "hvals",
        arity: 2,
        flags: &["readonly"],
        keys: ONE_KEY,
        group: "hash",
        summary: "Returns the values of a hash.",
        arguments: &[argument("key", "key")],
    },
    Spec {
        name: "incr",
        arity: 2,
        flags: &["write", "denyoom", "fast"],
        keys: ONE_KEY,
        group: "string",
        summary: "Adds one to the integer value of a key, through the log.",
        arguments: &[argument("key", "key")],
    },
    Spec {
        name: "incrby",
        arity: 3,
        flags: &["write", "denyoom", "fast"],
        keys: ONE_KEY,
        group: "string",
        summary: "Adds a number to the integer value of a key, through the log.",
        arguments: &[argument("key", "key"), argument("increment", "integer")],
    },
    Spec {
        name: "info",
        arity: -1,
        flags: &["loading", "stale"],
        keys: NO_KEYS,
        group: "server",
        summary: "Describes the server and its Raft state (sections server, raft).",
        arguments: &[optional("section", "string")],
    },
    Spec {
        name: "keys",
        arity: 2,
        flags: &["readonly"],
        keys: NO_KEYS,
        group: "generic",
        summary: "Returns the keys that match a glob pattern (a linearizable read).",
        arguments: &[argument("pattern", "string")],
    },
    Spec {
        name: "lindex",
        arity: 3,
        flags: &["readonly"],
        keys: ONE_KEY,
        group: "list",
        summary: "Returns a list's value at an index.",
        arguments: &[argument("key", "key"), argument("index", "integer")],
    },
    Spec {
        name: "llen",
        arity: 2,
        flags: &["readonly", "fast"],
        keys: ONE_KEY,
        group: "list",
        summary: "Returns the length of a list.",
        arguments: &[argument("key", "key")],
    },
    Spec {
        name: "lpop",
        arity: -2,
        flags: &["write", "fast"],
        keys: ONE_KEY,
        group: "list",
        summary: "Removes and returns the first values of a list, through the log.",
        arguments: &[argument("key", "key"), optional("count", "integer")],
    },
    Spec {
        name: "lpush",
        arity: -3,
        flags: &["write", "denyoom", "fast"],
        keys: ONE_KEY,
        group: "list",
        summary: "Prepends values to a list, through the log; returns its length.",
        arguments: &[argument("key", "key"), Argument { multiple: true, ..argument("element", "string") }],
    },
    Spec {
        name: "lrange",
        arity: 4,
        flags: &["readonly"],
        keys: ONE_KEY,
        group: "list",
        summary: "Returns a range of a list's values.",
        arguments: &[argument("key", "key"), argument("start", "integer"), argument("stop", "integer")],
    },
    Spec {
        name: "mget",
        arity: -2,
        flags: &["readonly", "fast"],
        keys: ALL_KEYS,
        group: "string",
        summary: "Returns the values of keys (a linearizable read).",
        arguments: &[keys("key")],
    },
    Spec {
        name: "mset",
        arity: -3,
        flags: &["write", "denyoom"],
        keys: (1, -1, 2),
        group: "string",
        summary: "Sets several keys at once, through one log entry.",
        arguments: &[Argument {
            multiple: true,
            ..argument("key value", "string")
        }],
    },
    Spec {
        name: "multi",
        arity: 1,
        flags: &["noscript", "loading", "stale", "fast"],
        keys: NO_KEYS,
        group: "transactions",
        summary: "Starts a transaction: the store's reads and writes that follow are queued until EXEC.",
        arguments: &[],
    },
    Spec {
        name: "persist",
        arity: 2,
        flags: &["write", "fast"],
        keys: ONE_KEY,
        group: "generic",
        summary: "Removes a key's expiry, through the log.",
        arguments: &[argument("key", "key")],
    },
    Spec {
        name: "pexpire",
        arity: -3,
        flags: &["write", "fast"],
        keys: ONE_KEY,
        group: "generic",
        summary: "Sets a key's time to live in milliseconds, through the log.",
        arguments: &[argument("key", "key"), argument("milliseconds", "integer"), CONDITION],
    },
    Spec {
        name: "pexpireat",
        arity: -3,
        flags: &["write", "fast"],
        keys: ONE_KEY,
        group: "generic",
        summary: "Sets the Unix time in milliseconds at which a key expires, through the log.",
        arguments: &[argument("key", "key"), argument("unix-time-milliseconds", "unix-time"), CONDITION],
    },
    Spec {
        name: "pexpiretime",
        arity: 2,
        flags: &["readonly", "fast"],
        keys: ONE_KEY,
        group: "generic",
        summary: "Returns the Unix time in milliseconds at which a key expires: -1 never, -2 no such key.",
        arguments: &[argument("key", "key")],
    },
    Spec {
        name: "ping",
        arity: -1,
        flags: &["fast"],
        keys: NO_KEYS,
        group: "connection",
        summary: "Returns PONG, or the message.",
        arguments: &[optional("message", "string")],
    },
    Spec {
        name: "pttl",
        arity: 2,
        flags: &["readonly", "fast"],
        keys: ONE_KEY,
        group: "generic",
        summary: "Returns a key's time to live in milliseconds: -1 never, -2 no such key.",
        arguments: &[argument("key", "key")],
    },
    Spec {
        name: "quit",
        arity: -1,
        flags: &["noscript", "loading", "stale", "fast"],
        keys: NO_KEYS,
        group: "connection",
        summary: "Closes the connection.",
        arguments: &[],
    },
    Spec {
        name: "raft.node",
        arity: -2,
        flags: &["admin"],
        keys: NO_KEYS,
        group: "cluster",
        summary: "Changes or lists the members: RAFT.NODE ADD id peer [client] | PROMOTE id | REMOVE id | LIST.",
        arguments: &[argument("subcommand", "string"), Argument {
            optional: true,
            multiple: true,
            ..argument("arguments", "string")
        }],
    },
    Spec {
        name: "raft.transfer_leader",
        arity: 2,
        flags: &["admin"],
        keys: NO_KEYS,
        group: "cluster",
        summary: "Hands the leadership to another voter.",
        arguments: &[argument("node-id", "integer")],
    },
    Spec {
        name: "readonly",
        arity: 1,
        flags: &["loading", "stale", "fast"],
        keys: NO_KEYS,
        group: "cluster",
        summary: "Serves this connection's reads from this node's own state, without a barrier.",
        arguments: &[],
    },
    Spec {
        name: "readwrite",
        arity: 1,
        flags: &["loading", "stale", "fast"],
        keys: NO_KEYS,
        group: "cluster",
        summary: "Back to linearizable reads after READONLY.",
        arguments: &[],
    },
    Spec {
        name: "role",
        arity: 1,
        flags: &["noscript", "loading", "stale", "fast"],
        keys: NO_KEYS,
        group: "server",
        summary: "Says whether this node leads (master) or follows (slave).",
        arguments: &[],
    },
    Spec {
        name: "rpop",
        arity: -2,
        flags: &["write", "fast"],
        keys: ONE_KEY,
        group: "list",
        summary: "Removes and returns the last values of a list, through the log.",
        arguments: &[argument("key", "key"), optional("count", "integer")],
    },
    Spec {
        name: "rpush",
        arity: -3,
        flags: &["write", "denyoom", "fast"],
        keys: ONE_KEY,
        group: "list",
        summary: "Appends values to a list, through the log; returns its length.",
        arguments: &[argument("key", "key"), Argument { multiple: true, ..argument("element", "string") }],
    },
    Spec {
        name: "sadd",
        arity: -3,
        flags: &["write", "denyoom", "fast"],
        keys: ONE_KEY,
        group: "set",
        summary: "Adds members to a set, through the log; returns how many were new.",
        arguments: &[argument("key", "key"), Argument { multiple: true, ..argument("member", "string") }],
    },
    Spec {
        name: "scan",
        arity: -2,
        flags: &["readonly"],
        keys: NO_KEYS,
        group: "generic",
        summary: "Iterates over the keys; the cursor stays valid across writes and failovers.",
        arguments: &[argument("cursor", "integer"), Argument { token: Some("MATCH"), ..optional("pattern", "pattern") }, Argument { token: Some("COUNT"), ..optional("count", "integer") }, Argument { token: Some("TYPE"), ..optional("type", "string") }],
    },
    Spec {
        name: "scard",
        arity: 2,
        flags: &["readonly", "fast"],
        keys: ONE_KEY,
        group: "set",
        summary: "Returns the number of members of a set.",
        arguments: &[argument("key", "key")],
    },
    Spec {
        name: "select",
        arity: 2,
        flags: &["loading", "stale", "fast"],
        keys: NO_KEYS,
        group: "connection",
        summary: "Selects database 0, the only one.",
        arguments: &[argument("index", "integer")],
    },
    Spec {
        name: "set",
        arity: -3,
        flags: &["write", "denyoom"],
        keys: ONE_KEY,
        group: "string",
        summary: "Sets the value of a key, through the log: NX or XX only if it is missing or there, GET to return the old value, EX, PX, EXAT, PXAT or KEEPTTL for its expiry.",
        arguments: &[
            argument("key", "key"),
            argument("value", "string"),
            Argument {
                token: Some("NX"),
                optional: true,
                ..argument("nx", "pure-token")
            },
            Argument {
                token: Some("XX"),
                optional: true,
                ..argument("xx", "pure-token")
            },
            Argument {
                token: Some("GET"),
                optional: true,
                ..argument("get", "pure-token")
            },
            EXPIRATION,
        ],
    },
    Spec {
        name: "setnx",
        arity: 3,
        flags: &["write", "denyoom"],
        keys: ONE_KEY,
        group: "string",
        summary: "Sets a key that does not exist, through the log; returns 1 if it was set.",
        arguments: &[argument("key", "key"), argument("value", "string")],
    },
    Spec {
        name: "sismember",
        arity: 3,
        flags: &["readonly", "fast"],
        keys: ONE_KEY,
        group: "set",
        summary: "Returns 1 if a set has the member.",
        arguments: &[argument("key", "key"), argument("member", "string")],
    },
    Spec {
        name: "smembers",
        arity: 2,
        flags: &["readonly"],
        keys: ONE_KEY,
        group: "set",
        summary: "Returns the members of a set.",
        arguments: &[argument("key", "key")],
    },
    Spec {
        name: "spop",
        arity: -2,
        flags: &["write", "fast"],
        keys: ONE_KEY,
        group: "set",
        summary: "Removes and returns members of a set, through the log, picked by the entry's index alike on every node.",
        arguments: &[argument("key", "key"), optional("count", "integer")],
    },
    Spec {
        name: "srem",
        arity: -3,
        flags: &["write", "fast"],
        keys: ONE_KEY,
        group: "set",
        summary: "Removes members from a set, through the log.",
        arguments: &[argument("key", "key"), Argument { multiple: true, ..argument("member", "string") }],
    },
    Spec {
        name: "strlen",
        arity: 2,
        flags: &["readonly", "fast"],
        keys: ONE_KEY,
        group: "string",
        summary: "Returns the length of a value (a linearizable read).",
        arguments: &[argument("key", "key")],
    },
    Spec {
        name: "time",
        arity: 1,
        flags: &["loading", "stale", "fast"],
        keys: NO_KEYS,
        group: "server",
        summary: "Returns this node's clock: seconds and microseconds since the Unix epoch.",
        arguments: &[],
    },
    Spec {
        name: "ttl",
        arity: 2,
        flags: &["readonly", "fast"],
        keys: ONE_KEY,
        group: "generic",
        summary: "Returns a key's time to live in seconds: -1 never, -2 no such key.",
        arguments: &[argument("key", "key")],
    },
    Spec {
        name: "type",
        arity: 2,
        flags: &["readonly", "fast"],
        keys: ONE_KEY,
        group: "generic",
        summary: "Returns the type of a key's value: string, hash, list, set, zset, stream, or none (a linearizable read).",
        arguments: &[argument("key", "key")],
    },
    Spec {
        name: "unlink",
        arity: -2,
        flags: &["write", "fast"],
        keys: ALL_KEYS,
        group: "generic",
        summary: "Deletes keys through the log, as DEL does.",
        arguments: &[keys("key")],
    },
    Spec {
        name: "unwatch",
        arity: 1,
        flags: &["noscript", "loading", "stale", "fast"],
        keys: NO_KEYS,
        group: "transactions",
        summary: "Forgets the keys this connection watches.",
        arguments: &[],
    },
    Spec {
        name: "watch",
        arity: -2,
        flags: &["noscript", "loading", "stale", "fast", "allow_busy"],
        keys: ALL_KEYS,
        group: "transactions",
        summary: "Watches keys: EXEC applies nothing if one is written first (checked when the transaction's entry is applied).",
        arguments: &[keys("key")],
    },
    Spec {
        name: "xadd",
        arity: -5,
        flags: &["write", "denyoom", "fast"],
        keys: ONE_KEY,
        group: "stream",
        summary: "Appends an entry to a stream, through the log; * numbers it by the replicated clock.",
        arguments: &[argument("key", "key"), argument("id", "string"), FIELDS_AND_VALUES],
    },
    Spec {
        name: "xlen",
        arity: 2,
        flags: &["readonly", "fast"],
        keys: ONE_KEY,
        group: "stream",
        summary: "Returns the number of entries of a stream.",
        arguments: &[argument("key", "key")],
    },
    Spec {
        name: "xrange",
        arity: -4,
        flags: &["readonly"],
        keys: ONE_KEY,
        group: "stream",
        summary: "Returns a stream's entries between two ids (- and + for its ends).",
        arguments: &[argument("key", "key"), argument("start", "string"), argument("end", "string"), Argument { token: Some("COUNT"), ..optional("count", "integer") }],
    },
    Spec {
        name: "zadd",
        arity: -4,
        flags: &["write", "denyoom", "fast"],
        keys: ONE_KEY,
        group: "sorted-set",
        summary: "Adds members with scores to a sorted set, or moves them, through the log; returns how many were new.",
        arguments: &[argument("key", "key"), SCORES_AND_MEMBERS],
    },
    Spec {
        name: "zcard",
        arity: 2,
        flags: &["readonly", "fast"],
        keys: ONE_KEY,
        group: "sorted-set",
        summary: "Returns the number of members of a sorted set.",
        arguments: &[argument("key", "key")],
    },
    Spec {
        name: "zpopmax",
        arity: -2,
        flags: &["write", "fast"],
        keys: ONE_KEY,
        group: "sorted-set",
        summary: "Removes and returns the members with the highest scores, through the log.",
        arguments: &[argument("key", "key"), optional("count", "integer")],
    },
    Spec {
        name: "zpopmin",
        arity: -2,
        flags: &["write", "fast"],
        keys: ONE_KEY,
        group: "sorted-set",
        summary: "Removes and returns the members with the lowest scores, through the log.",
        arguments: &[argument("key", "key"), optional("count", "integer")],
    },
    Spec {
        name: "zrange",
        arity: -4,
        flags: &["readonly"],
        keys: ONE_KEY,
        group: "sorted-set",
        summary: "Returns members of a sorted set by rank, with their scores if asked.",
        arguments: &[argument("key", "key"), argument("start", "integer"), argument("stop", "integer"), Argument { token: Some("WITHSCORES"), optional: true, ..argument("withscores", "pure-token") }],
    },
    Spec {
        name: "zrem",
        arity: -3,
        flags: &["write", "fast"],
        keys: ONE_KEY,
        group: "sorted-set",
        summary: "Removes members from a sorted set, through the log.",
        arguments: &[argument("key", "key"), Argument { multiple: true, ..argument("member", "string") }],
    },
    Spec {
        name: "zscore",
        arity: 3,
        flags: &["readonly", "fast"],
        keys: ONE_KEY,
        group: "sorted-set",
        summary: "Returns a member's score.",
        arguments: &[argument("key", "key"), argument("member", "string")],
    },
];

/// The command named `name` (any case).
pub fn find(name: &[u8]) -> Option<&'static Spec> {
    COMMANDS
        .iter()
        .find(|spec| spec.name.as_bytes().eq_ignore_ascii_case(name))
}

/// Writes `spec` as `COMMAND INFO` gives it: name, arity, flags, first,
/// last and step of the keys, ACL categories, tips, key specifications
/// and subcommands (the last three empty).
pub fn write_info(spec: &Spec, replies: &mut Replies) {
    replies.array(10);
    replies.bulk(spec.name.as_bytes());
    replies.integer(spec.arity);
    replies.array(spec.flags.len());
    for flag in spec.flags {
        replies.simple(flag);
    }
    let (first, last, step) = spec.keys;
    replies.integer(first);
    replies.integer(last);
    replies.integer(step);
    let categories = categories(spec);
    replies.array(categories.len());
    for category in categories {
        replies.simple(&category);
    }
    for _ in 0..3 {
        replies.array(0);
    }
}

/// Its ACL categories, as Redis would name them.
fn categories(spec: &Spec) -> Vec<String> {
    let mut categories = Vec::new();
    for (flag, category) in [
        ("write", "@write"),
        ("readonly", "@read"),
        ("admin", "@admin"),
    ] {
        if spec.flags.contains(&flag) {
            categories.push(category.to_string());
        }
    }
    categories.push(format!("@{}", spec.group));
    let speed = if spec.flags.contains(&"fast") {
        "@fast"
    } else {
        "@slow"
    };
    categories.push(speed.to_string());
    categories
}

/// Writes `spec`'s documentation as `COMMAND DOCS` gives it: a map of
/// summary, since, group and arguments.
pub fn write_docs(spec: &Spec, replies: &mut Replies) {
    let with_arguments = !spec.arguments.is_empty();
    replies.map(3 + usize::from(with_arguments));
    replies.bulk(b"summary");
    replies.bulk(spec.summary.as_bytes());
    replies.bulk(b"since");
    replies.bulk(env!("CARGO_PKG_VERSION").as_bytes());
    replies.bulk(b"group");
    replies.bulk(spec.group.as_bytes());
    if with_arguments {
        replies.bulk(b"arguments");
        replies.array(spec.arguments.len());
        for argument in spec.arguments {
            write_argument(argument, replies);
        }
    }
}

fn write_argument(argument: &Argument, replies: &mut Replies) {
    let flags: Vec<&str> = [
        (argument.optional, "optional"),
        (argument.multiple, "multiple"),
    ]
    .into_iter()
    .filter_map(|(set, flag)| set.then_some(flag))
    .collect();
    let with_members = !argument.members.is_empty();
    replies.map(
        2 + usize::from(argument.token.is_some())
            + usize::from(!flags.is_empty())
            + usize::from(with_members),
    );
    replies.bulk(b"name");
    replies.bulk(argument.name.as_bytes());
    replies.bulk(b"type");
    replies.bulk(argument.kind.as_bytes());
    if let Some(token) = argument.token {
        replies.bulk(b"token");
        replies.bulk(token.as_bytes());
    }
    if !flags.is_empty() {
        replies.bulk(b"flags");
        replies.array(flags.len());
        for flag in flags {
            replies.simple(flag);
        }
    }
    if with_members {
        // redis-cli's hints read a group's members, and fail without them.
        replies.bulk(b"arguments");
        replies.array(argument.members.len());
        for member in argument.members {
            write_argument(member, replies);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_every_command_in_it_parses() {
        let names: Vec<&str> = COMMANDS.iter().map(|spec| spec.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        for spec in COMMANDS {
            // With as many words as its arity asks for: never "unknown".
            let words = 1 + spec.arity.unsigned_abs() as usize;
            let arguments: Vec<bytes::Bytes> = std::iter::once(spec.name.into())
                .chain((1..words.saturating_sub(1)).map(|_| "0".into()))
                .collect();
            if let Err(error) = crate::commands::parse(arguments) {
                assert!(!error.contains("unknown command"), "{}: {error}", spec.name);
            }
        }
        for unknown in ["subscribe", "eval", "blpop"] {
            assert!(find(unknown.as_bytes()).is_none());
            let error = crate::commands::parse(vec![unknown.into()]).unwrap_err();
            assert!(error.contains("unknown command"), "{unknown}: {error}");
        }
        assert_eq!(find(b"GeT").map(|spec| spec.keys), Some(ONE_KEY));
    }

    #[test]
    fn info_and_docs_have_redis_shapes() {
        let mut replies = Replies::new();
        write_info(find(b"del").unwrap(), &mut replies);
        let info = replies.take();
        assert!(info.starts_with(b"*10\r\n$3\r\ndel\r\n:-2\r\n*1\r\n+write\r\n:1\r\n:-1\r\n:1\r\n"));
        write_docs(find(b"get").unwrap(), &mut replies);
        let docs = String::from_utf8(replies.take().to_vec()).unwrap();
        assert!(docs.starts_with("*8\r\n$7\r\nsummary\r\n"), "{docs}");
        assert!(docs.contains("$9\r\narguments\r\n*1\r\n*4\r\n$4\r\nname\r\n$3\r\nkey\r\n"));
        let mut resp3 = Replies::new();
        resp3.set_protocol(3);
        write_docs(find(b"ping").unwrap(), &mut resp3);
        let docs = String::from_utf8(resp3.take().to_vec()).unwrap();
        assert!(docs.starts_with("%4\r\n"), "{docs}");
        assert!(
            docs.contains("$5\r\nflags\r\n*1\r\n+optional\r\n"),
            "{docs}"
        );
    }
}

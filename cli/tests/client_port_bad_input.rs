//! Bad input on the client port: unknown commands and wrong arity get an
//! error reply and the connection keeps working; malformed RESP and
//! oversized requests are answered with the error and close their own
//! connection, with nothing after the error executed.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{Client, ProcessCluster, Reply};

fn is_error(reply: &Reply, starting: &str) -> bool {
    matches!(reply, Reply::Error(text) if text.starts_with(starting))
}

#[test]
fn bad_requests_cost_only_themselves() {
    // One node is a whole cluster: it elects itself.
    let cluster = ProcessCluster::start(&["tokio"]);
    cluster.wait_for_leader(None, Duration::from_secs(20));
    let address = cluster.client_addresses()[0];
    let mut client = Client::connect(address).unwrap();

    for (request, error) in [
        ("SUBSCRIBE news", "ERR unknown command 'SUBSCRIBE'"),
        ("ZADD z 1", "ERR wrong number of arguments"),
        (
            "XADD x 0-0 f v",
            "ERR The ID specified in XADD must be greater than 0-0",
        ),
        ("GET", "ERR wrong number of arguments for 'get'"),
        ("SET k", "ERR wrong number of arguments"),
        ("SET k v SOON", "ERR syntax error"),
        ("SET k v EX 0", "ERR invalid expire time in 'set' command"),
        ("EXPIRE k 1 NX GT", "ERR NX and XX, GT or LT"),
        ("SCAN nope", "ERR invalid cursor"),
        ("WATCH", "ERR wrong number of arguments"),
        ("HELLO 4", "NOPROTO"),
    ] {
        let reply = client.command(request).unwrap();
        assert!(is_error(&reply, error), "{request}: {reply:?}");
    }
    assert_eq!(
        client.command("PING").unwrap(),
        Reply::Simple("PONG".into())
    );
    // WATCH inside MULTI is refused and spoils nothing queued.
    assert_eq!(client.command("MULTI").unwrap(), Reply::Simple("OK".into()));
    let watch = client.command("WATCH k").unwrap();
    assert!(
        is_error(&watch, "ERR WATCH inside MULTI is not allowed"),
        "{watch:?}"
    );
    assert_eq!(
        client.command("SET in-multi 1").unwrap(),
        Reply::Simple("QUEUED".into())
    );
    assert_eq!(
        client.command("EXEC").unwrap(),
        Reply::Array(vec![Reply::Simple("OK".into())])
    );
    assert_eq!(client.command("DEL in-multi").unwrap(), Reply::Integer(1));
    // A command on a key of another type is refused, and changes nothing.
    assert_eq!(client.command("HSET h f v").unwrap(), Reply::Integer(1));
    for request in [
        "GET h",
        "INCR h",
        "APPEND h x",
        "SET h v GET",
        "LPUSH h x",
        "SADD h x",
    ] {
        let reply = client.command(request).unwrap();
        assert!(is_error(&reply, "WRONGTYPE"), "{request}: {reply:?}");
    }
    assert_eq!(
        client.command("HGET h f").unwrap(),
        Reply::Bulk(Some(b"v".to_vec()))
    );

    // A protocol error is answered and closes the connection: once the
    // framing is lost, what follows cannot be trusted to be what the client
    // meant. Requests before it in the same write still run.
    for (bytes, error) in [
        (
            &b"*1\r\n$x\r\n"[..],
            "ERR Protocol error: invalid bulk length",
        ),
        (b"*1\r\n$2\r\nabcd\r\n", "ERR Protocol error: bulk string"),
        (b"*x\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*1\r\n:3\r\n", "ERR Protocol error: expected '$'"),
    ] {
        let mut broken = Client::connect(address).unwrap();
        broken.send_raw(b"SET before-error 1\r\n").unwrap();
        broken.send_raw(bytes).unwrap();
        assert_eq!(broken.read_reply().unwrap(), Reply::Simple("OK".into()));
        let reply = broken.read_reply().unwrap();
        assert!(is_error(&reply, error), "{reply:?}");
        assert!(broken.command("PING").is_err(), "closed after {error}");
    }
    // A bad length followed by a line of its own: the line is not run.
    let mut smuggler = Client::connect(address).unwrap();
    smuggler
        .send_raw(
            b"*3\r\n$3\r\nSET\r\n$6\r\nvictim\r\n$99999999999999999999\r\nSET smuggled yes\r\n",
        )
        .unwrap();
    assert!(is_error(
        &smuggler.read_reply().unwrap(),
        "ERR Protocol error: invalid bulk length"
    ));
    assert!(smuggler.command("PING").is_err(), "closed");
    assert_eq!(
        client.command("EXISTS smuggled victim").unwrap(),
        Reply::Integer(0)
    );
    // Inline commands, as typed into telnet.
    client
        .send_raw(b"SET typed by-hand\r\nGET typed\r\n")
        .unwrap();
    assert_eq!(client.read_reply().unwrap(), Reply::Simple("OK".into()));
    assert_eq!(
        client.read_reply().unwrap(),
        Reply::Bulk(Some(b"by-hand".to_vec()))
    );

    // An oversized request closes its connection, and only that one.
    let mut bystander = Client::connect(address).unwrap();
    let mut greedy = Client::connect(address).unwrap();
    greedy
        .send_raw(b"*2\r\n$3\r\nGET\r\n$999999999\r\n")
        .unwrap();
    assert!(is_error(
        &greedy.read_reply().unwrap(),
        "ERR Protocol error: request larger"
    ));
    let mut rest = Vec::new();
    let mut raw = std::net::TcpStream::connect(address).unwrap();
    // The server may close before reading it all: only the answer matters.
    let _ = raw.write_all(b"*9999999999\r\n");
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = raw.read_to_end(&mut rest);
    assert!(String::from_utf8_lossy(&rest).starts_with("-ERR Protocol error: request larger"));
    assert!(
        greedy.command("PING").is_err(),
        "the oversized request's connection is closed"
    );
    assert_eq!(
        bystander.command("GET typed").unwrap(),
        Reply::Bulk(Some(b"by-hand".to_vec()))
    );
    // `h`, `typed` and `before-error`.
    assert_eq!(client.command("DBSIZE").unwrap(), Reply::Integer(3));
}

//! A small blocking Redis-protocol client for the commands that ask a
//! node about itself or change the cluster (`kontiki status`, `kontiki
//! member`, `kontiki transfer`): one request at a time, following the
//! leader's redirects.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::time::{Duration, Instant};

use crate::settings::resolve;

/// How long to wait to connect, and for each answer.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Redirects followed before giving up (the leader changed under us
/// that many times).
const MAX_REDIRECTS: usize = 5;
/// How long to retry a node that says to try again (no leader yet, or one
/// handing over).
const RETRY_FOR: Duration = Duration::from_secs(15);

/// A reply, as far as these commands need to read one.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+text`.
    Simple(String),
    /// `-text`.
    Error(String),
    /// `:number`.
    Integer(i64),
    /// `$text`, or null.
    Bulk(Option<String>),
    /// `*` of replies.
    Array(Vec<Reply>),
}

/// How the commands reach a node's client port.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// The credentials to authenticate with (`AUTH`) before each command,
    /// for a node started with `--auth-file`.
    pub login: Option<Login>,
    /// TLS, for a node started with `--client-tls-cert`.
    pub tls: Option<ClientTls>,
}

/// How to open TLS to a client port.
#[derive(Clone, Debug)]
pub struct ClientTls {
    config: Arc<rustls::ClientConfig>,
    /// The name the node's certificate must carry; `None`: the IP
    /// address dialed.
    server_name: Option<ServerName<'static>>,
}

impl ClientTls {
    /// Trusts the CA certificates in the PEM file at `ca`; checks the
    /// node's certificate against `server_name`, or against the IP
    /// address dialed if none.
    pub fn load(ca: &Path, server_name: Option<&str>) -> Result<ClientTls, String> {
        let pem = std::fs::read(ca)
            .map_err(|error| format!("cannot read the CA file {}: {error}", ca.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        for certificate in CertificateDer::pem_slice_iter(&pem) {
            let certificate =
                certificate.map_err(|error| format!("the CA file {}: {error}", ca.display()))?;
            roots
                .add(certificate)
                .map_err(|error| format!("the CA file {}: {error}", ca.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("the CA file {} holds no certificate", ca.display()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let server_name = server_name
            .map(|name| {
                ServerName::try_from(name.to_string())
                    .map_err(|error| format!("--tls-server-name {name:?}: {error}"))
            })
            .transpose()?;
        Ok(ClientTls {
            config: Arc::new(config),
            server_name,
        })
    }

    fn connect(
        &self,
        address: SocketAddr,
        socket: TcpStream,
    ) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, String> {
        let name = self
            .server_name
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(address.ip().into()));
        let connection = rustls::ClientConnection::new(Arc::clone(&self.config), name)
            .map_err(|error| format!("{address}: {error}"))?;
        Ok(rustls::StreamOwned::new(connection, socket))
    }
}

/// A user and password.
#[derive(Clone, Debug)]
pub struct Login {
    /// The user; `None` for the default user.
    pub user: Option<String>,
    /// The password.
    pub password: String,
}

/// `command` in the protocol's request form.
fn encode(command: &[&str], into: &mut Vec<u8>) {
    into.extend_from_slice(format!("*{}\r\n", command.len()).as_bytes());
    for argument in command {
        into.extend_from_slice(format!("${}\r\n", argument.len()).as_bytes());
        into.extend_from_slice(argument.as_bytes());
        into.extend_from_slice(b"\r\n");
    }
}

/// Sends `command` to the node at `address` (authenticating first, if
/// `access` says how) and returns its reply.
pub fn request(access: &Access, address: SocketAddr, command: &[&str]) -> Result<Reply, String> {
    let socket = TcpStream::connect_timeout(&address, TIMEOUT)
        .map_err(|error| format!("cannot connect to {address}: {error}"))?;
    socket
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|error| error.to_string())?;
    match &access.tls {
        Some(tls) => exchange(access, address, tls.connect(address, socket)?, command),
        None => exchange(access, address, socket, command),
    }
}

/// Sends `command` on `stream` (after `AUTH`, if `access` has a login)
/// and reads its reply.
fn exchange(
    access: &Access,
    address: SocketAddr,
    mut stream: impl Read + Write,
    command: &[&str],
) -> Result<Reply, String> {
    let mut encoded = Vec::new();
    if let Some(login) = &access.login {
        let mut auth = vec!["AUTH"];
        auth.extend(login.user.as_deref());
        auth.push(&login.password);
        encode(&auth, &mut encoded);
    }
    encode(command, &mut encoded);
    stream
        .write_all(&encoded)
        .and_then(|()| stream.flush())
        .map_err(|error| format!("cannot send to {address}: {error}"))?;
    let mut reader = BufReader::new(stream);
    let mut read = || read_reply(&mut reader).map_err(|error| format!("{address}: {error}"));
    if access.login.is_some() {
        if let Reply::Error(error) = read()? {
            return Err(format!("{address}: authentication refused: {error}"));
        }
    }
    read()
}

/// Sends `command` to the leader, starting at `node` (host:port of any
/// node's client address): follows `-MOVED` to the leader, and retries on
/// `-TRYAGAIN` for a while. Returns the leader's reply, errors included.
pub fn request_leader(access: &Access, node: &str, command: &[&str]) -> Result<Reply, String> {
    let mut address = resolve("--node", node)?;
    let mut redirects = 0;
    let started = Instant::now();
    loop {
        let reply = request(access, address, command)?;
        let Reply::Error(error) = &reply else {
            return Ok(reply);
        };
        if let Some(target) = error.strip_prefix("MOVED ") {
            let target = target.split(' ').nth(1).unwrap_or_default();
            redirects += 1;
            if redirects > MAX_REDIRECTS {
                return Err(format!("redirected {MAX_REDIRECTS} times; last: {error}"));
            }
            address = target
                .parse()
                .map_err(|_| format!("a redirect to an unusable address: {error}"))?;
        } else if error.starts_with("TRYAGAIN") && started.elapsed() < RETRY_FOR {
            std::thread::sleep(Duration::from_millis(200));
        } else {
            return Ok(reply);
        }
    }
}

/// Reads one reply.
pub fn read_reply(reader: &mut impl BufRead) -> Result<Reply, String> {
    let mut header = String::new();
    reader
        .read_line(&mut header)
        .map_err(|error| format!("no answer: {error}"))?;
    let header = header.trim_end_matches(['\r', '\n']);
    let (kind, rest) = header.split_at_checked(1).unwrap_or(("", ""));
    let number = || {
        rest.parse::<i64>()
            .map_err(|_| format!("unexpected answer {header:?}"))
    };
    match kind {
        "+" => Ok(Reply::Simple(rest.to_string())),
        "-" => Ok(Reply::Error(rest.to_string())),
        ":" => Ok(Reply::Integer(number()?)),
        "$" => {
            let Ok(length) = usize::try_from(number()?) else {
                return Ok(Reply::Bulk(None));
            };
            let mut body = vec![0; length + 2];
            reader
                .read_exact(&mut body)
                .map_err(|error| format!("answer cut short: {error}"))?;
            body.truncate(length);
            let text = String::from_utf8(body).map_err(|_| "the answer is not text".to_string())?;
            Ok(Reply::Bulk(Some(text)))
        }
        "*" => {
            let count = usize::try_from(number()?).unwrap_or(0);
            let items = (0..count)
                .map(|_| read_reply(reader))
                .collect::<Result<_, _>>()?;
            Ok(Reply::Array(items))
        }
        _ => Err(format!("unexpected answer {header:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_of_every_kind_are_read() {
        let mut input: &[u8] =
            b"+OK\r\n-ERR no\r\n:42\r\n$5\r\nhe\r\no\r\n$-1\r\n*2\r\n$1\r\na\r\n:1\r\n";
        let expected = [
            Reply::Simple("OK".into()),
            Reply::Error("ERR no".into()),
            Reply::Integer(42),
            Reply::Bulk(Some("he\r\no".into())),
            Reply::Bulk(None),
            Reply::Array(vec![Reply::Bulk(Some("a".into())), Reply::Integer(1)]),
        ];
        for reply in expected {
            assert_eq!(read_reply(&mut input), Ok(reply));
        }
        assert!(read_reply(&mut &b"?what\r\n"[..]).is_err());
        assert!(read_reply(&mut &b"$9\r\nshort\r\n"[..]).is_err());
        assert!(read_reply(&mut &b""[..]).is_err());
    }
}

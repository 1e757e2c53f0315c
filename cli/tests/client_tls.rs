//! `kontiki node --client-tls-cert/--client-tls-key`: clients reach the
//! port over TLS only — a TLS client that trusts the CA is served (after
//! `AUTH`), plaintext and TLS garbage are closed without an answer, and
//! `kontiki status --tls-ca` reads the node over TLS. redis-cli and
//! redis-py over TLS are in redis_tools.rs and redis_py.rs.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::SecureNode;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

/// What the node answers `request` with over plaintext TCP, until it
/// closes the connection.
fn plaintext(node: &SecureNode, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(node.address()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

#[test]
fn clients_are_served_over_tls_only() {
    let node = SecureNode::start("smol");

    // A rustls client that trusts the CA and checks the IP address.
    let pem = std::fs::read(&node.ca).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(&pem).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::IpAddress(node.address().ip().into());
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let socket = TcpStream::connect(node.address()).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut stream = rustls::StreamOwned::new(connection, socket);
    let request = format!(
        "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nAUTH\r\n${}\r\n{}\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
        node.password.len(),
        node.password
    );
    stream.write_all(request.as_bytes()).unwrap();
    stream.flush().unwrap();
    let expected = b"-NOAUTH Authentication required.\r\n+OK\r\n+OK\r\n$1\r\nv\r\n";
    let mut answer = vec![0u8; expected.len()];
    stream.read_exact(&mut answer).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&answer),
        String::from_utf8_lossy(expected)
    );

    // Plaintext and garbage get no answer, only a closed connection.
    let answer = plaintext(&node, b"*1\r\n$4\r\nPING\r\n");
    assert!(!answer.windows(4).any(|w| w == b"PONG"), "{answer:?}");
    let answer = plaintext(&node, b"\x16\x03\x01\x00\x10garbage garbage!");
    assert!(!answer.windows(4).any(|w| w == b"PONG"), "{answer:?}");

    // kontiki status over TLS; without the CA it cannot read the node.
    let status = node.status();
    assert!(status.status.success(), "{status:?}");
    assert!(String::from_utf8_lossy(&status.stdout).contains(r#""role":"leader""#));
    let without_tls = common::kontiki()
        .args(["status", "--json", &node.address().to_string()])
        .env("KONTIKI_PASSWORD", node.password)
        .output()
        .unwrap();
    assert!(!without_tls.status.success());
}

//! Mutual TLS between peers: a cluster whose links are TLS replicates as
//! before, and every impostor is refused at the handshake — plaintext,
//! TLS garbage, no certificate, another CA's certificate, an expired one,
//! and a member's valid certificate claiming another node's id — while
//! the leader keeps its term and the cluster keeps serving.
//!
//! The same forged message that a TLS cluster refuses is shown to depose
//! a plaintext cluster's leader, so the test would notice if TLS stopped
//! guarding the port.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kontiki::{Message, RequestVoteResponse, Term};
use kontiki_driver::tls::{node_name, CertificateAuthority, Issued, Validity};
use kontiki_driver::{NodeConfig, PeerTls, StartError, TlsFiles, TlsPem};
use kontiki_tests::live::{agreed_leader, cluster_configs, free_addresses, propose_all, Recorder};
use kontiki_tests::peer_wire::{self, frame, PROTOCOL_VERSION};
use kontiki_tokio::{Handle, MemoryStorage, TokioRuntime};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A CA and a certificate for each of nodes 1..=3.
struct Pki {
    ca: CertificateAuthority,
    nodes: Vec<Issued>,
}

fn pki() -> Pki {
    let ca = CertificateAuthority::generate(Validity::days_from_now(1)).unwrap();
    let nodes = (1..=3)
        .map(|id| {
            ca.issue(kontiki::NodeId(id), Validity::days_from_now(1), &[])
                .unwrap()
        })
        .collect();
    Pki { ca, nodes }
}

fn peer_tls(pki: &Pki, id: u64) -> PeerTls {
    let issued = &pki.nodes[id as usize - 1];
    let pem = TlsPem {
        ca: pki.ca.cert_pem().as_bytes(),
        cert: issued.cert_pem.as_bytes(),
        key: issued.key_pem.as_bytes(),
    };
    PeerTls::from_pem(kontiki::NodeId(id), pem).unwrap()
}

async fn start(configs: Vec<NodeConfig>) -> Vec<Handle<Recorder>> {
    let mut nodes = Vec::new();
    for mut config in configs {
        config.transport.handshake_timeout = Duration::from_millis(500);
        let node = kontiki_tokio::start(config, MemoryStorage::new(), Recorder::default())
            .await
            .unwrap();
        nodes.push(node);
    }
    nodes
}

/// A hello claiming to be `node` of cluster "guarded".
fn hello(node: u64) -> Vec<u8> {
    peer_wire::hello(node, "guarded", PROTOCOL_VERSION, "")
}

/// A hello as node 2 followed by a vote answer from a term far ahead,
/// which a leader that believed it would step down for.
fn forged_term(term: Term) -> Vec<u8> {
    let mut bytes = hello(2);
    let mut body = vec![0u8]; // frame kind: a message
    let message = Message::RequestVoteResponse(RequestVoteResponse {
        term: Term(term.0 + 1000),
        granted: false,
        pre_vote: false,
    });
    kontiki::wire::encode(&message, &mut body);
    bytes.extend_from_slice(&frame(&body));
    bytes
}

/// How a connection ended, with what the node sent before.
#[derive(Debug)]
enum Ended {
    /// The node closed it (TLS or TCP), after sending `0`.
    Closed(Vec<u8>),
    /// The TLS handshake or a record failed.
    Refused(String),
}

/// Sends `bytes` on a plain TCP connection and reads until the node
/// closes it; panics if it stays open.
fn plain_attempt(address: SocketAddr, bytes: &[u8]) -> Ended {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let _ = stream.write_all(bytes);
    read_until_closed(&mut stream)
}

fn read_until_closed(stream: &mut impl Read) -> Ended {
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => Ended::Closed(received),
        Err(error)
            if matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            panic!("the node kept an impostor's connection open")
        }
        Err(error) => Ended::Refused(error.to_string()),
    }
}

/// A TLS connection to node 1, trusting `pki`'s CA and showing
/// `certificate` (or none).
fn connect_tls(
    address: SocketAddr,
    pki: &Pki,
    certificate: Option<&Issued>,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca.cert_pem().as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let config = match certificate {
        Some(issued) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from(node_name(kontiki::NodeId(1))).unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let socket = TcpStream::connect(address).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    rustls::StreamOwned::new(connection, socket)
}

/// Opens TLS to node 1 (see [`connect_tls`]), sends `bytes` inside it and
/// reads until the node closes it.
fn tls_attempt(
    address: SocketAddr,
    pki: &Pki,
    certificate: Option<&Issued>,
    bytes: &[u8],
) -> Ended {
    let mut stream = connect_tls(address, pki, certificate);
    if let Err(error) = stream.write_all(bytes).and_then(|()| stream.flush()) {
        return Ended::Refused(error.to_string());
    }
    read_until_closed(&mut stream)
}

/// Whether node 1 takes a TLS connection showing `certificate` as node
/// 2's: it answers a hello with its own.
fn accepted_as_node_2(address: SocketAddr, pki: &Pki, certificate: &Issued) -> bool {
    let mut stream = connect_tls(address, pki, Some(certificate));
    let mut answer = [0u8; 8];
    stream.write_all(&hello(2)).is_ok()
        && stream.flush().is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer[4..] == b"KNTK"
}

/// The term every node agrees on, once they agree on a leader.
async fn settled_term(runtime: &TokioRuntime, nodes: &[Handle<Recorder>]) -> (usize, Term) {
    let leader = agreed_leader(runtime, nodes, None).await.unwrap();
    (leader, nodes[leader].status().term)
}

async fn stop(nodes: Vec<Handle<Recorder>>) {
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_serves_and_refuses_every_impostor() {
    let runtime = TokioRuntime::current();
    let pki = pki();
    let addresses = free_addresses(3);
    let configs = cluster_configs(&addresses, "guarded")
        .into_iter()
        .zip(1..)
        .map(|(mut config, id)| {
            config.tls = Some(peer_tls(&pki, id));
            config
        })
        .collect();
    let nodes = start(configs).await;
    let (leader, term) = settled_term(&runtime, &nodes).await;
    let committed = propose_all(&nodes[leader], (0..10u8).map(|n| vec![n]))
        .await
        .unwrap();
    assert_eq!(committed.len(), 10, "a TLS cluster replicates");
    // Node 1 is the target, whether it leads or follows: a follower that
    // believed a higher term would campaign and depose the leader too.
    let target = nodes[0].local_addr();

    let other_ca = self::pki();
    let expired = pki
        .ca
        .issue(
            kontiki::NodeId(2),
            Validity {
                not_before: SystemTime::now() - Duration::from_secs(7200),
                not_after: SystemTime::now() - Duration::from_secs(3600),
            },
            &[],
        )
        .unwrap();
    let attempts: Vec<(&str, Ended)> = vec![
        ("plaintext", plain_attempt(target, &forged_term(term))),
        (
            "TLS garbage",
            plain_attempt(target, b"\x16\x03\x01\x00\x05garbage and more garbage"),
        ),
        (
            "no certificate",
            tls_attempt(target, &pki, None, &forged_term(term)),
        ),
        (
            "another CA's certificate",
            tls_attempt(target, &pki, Some(&other_ca.nodes[1]), &forged_term(term)),
        ),
        (
            "an expired certificate",
            tls_attempt(target, &pki, Some(&expired), &forged_term(term)),
        ),
    ];
    for (attempt, ended) in attempts {
        match ended {
            // Whatever came back, it is not node 1's hello: the node
            // never took the connection as a peer's.
            Ended::Closed(received) => assert!(
                !received.windows(4).any(|w| w == b"KNTK"),
                "{attempt}: the node answered as to a peer: {received:?}"
            ),
            // The TLS handshake failed: the node sent an alert.
            Ended::Refused(error) => assert!(
                error.contains("alert"),
                "{attempt}: unexpected failure {error}"
            ),
        }
    }

    // Node 3's valid certificate claiming to be node 2.
    let ended = tls_attempt(target, &pki, Some(&pki.nodes[2]), &forged_term(term));
    match ended {
        Ended::Closed(received) => {
            let text = String::from_utf8_lossy(&received);
            assert!(
                text.contains("not for node 2"),
                "expected a refusal naming the certificate, got {text:?}"
            );
        }
        Ended::Refused(error) => panic!("expected a refusal frame, got {error}"),
    }

    // Nobody's term moved, and the cluster still commits through the same
    // leader.
    for node in &nodes {
        assert_eq!(node.status().term, term, "an impostor moved a term");
    }
    let committed = propose_all(&nodes[leader], (10..20u8).map(|n| vec![n]))
        .await
        .unwrap();
    assert_eq!(committed.len(), 10);
    assert_eq!(settled_term(&runtime, &nodes).await, (leader, term));
    stop(nodes).await;
}

/// The attack the TLS cluster turns away works on a plaintext cluster:
/// what makes the test above meaningful.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tls_a_forged_message_raises_the_term() {
    let runtime = TokioRuntime::current();
    let addresses = free_addresses(3);
    let nodes = start(cluster_configs(&addresses, "guarded")).await;
    let (_, term) = settled_term(&runtime, &nodes).await;
    let target = nodes[0].local_addr();
    let mut stream = TcpStream::connect(target).unwrap();
    stream.write_all(&forged_term(term)).unwrap();
    kontiki_tests::live::wait_for(&runtime, "the forged term to reach node 1", || {
        (nodes[0].status().term.0 >= term.0 + 1000).then_some(())
    })
    .await
    .unwrap();
    drop(stream);
    stop(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_to_start_with_another_nodes_material() {
    let pki = pki();
    let addresses = free_addresses(3);
    let mut config = cluster_configs(&addresses, "guarded").remove(0);
    config.tls = Some(peer_tls(&pki, 2));
    let error = kontiki_tokio::start(config, MemoryStorage::new(), Recorder::default())
        .await
        .err()
        .expect("node 1 started with node 2's certificate");
    assert!(matches!(
        error,
        StartError::TlsForAnotherNode {
            node: kontiki::NodeId(1),
            certified: kontiki::NodeId(2)
        }
    ));
}

fn write_files(directory: &std::path::Path, ca: &str, issued: &Issued) -> TlsFiles {
    let files = TlsFiles {
        ca: directory.join("ca.pem"),
        cert: directory.join("node.pem"),
        key: directory.join("node-key.pem"),
    };
    std::fs::write(&files.ca, ca).unwrap();
    std::fs::write(&files.cert, &issued.cert_pem).unwrap();
    std::fs::write(&files.key, &issued.key_pem).unwrap();
    files
}

/// A reload takes new files for new connections, and a failed one keeps
/// what was in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_reload_without_a_restart() {
    let pki = pki();
    let next = self::pki();
    let directory = tempfile::tempdir().unwrap();
    let files = write_files(directory.path(), pki.ca.cert_pem(), &pki.nodes[0]);
    let tls = PeerTls::load(kontiki::NodeId(1), files.clone()).unwrap();
    let mut config = cluster_configs(&free_addresses(1), "guarded").remove(0);
    config.tls = Some(tls.clone());
    let node = kontiki_tokio::start(config, MemoryStorage::new(), Recorder::default())
        .await
        .unwrap();
    let address = node.local_addr();
    assert!(accepted_as_node_2(address, &pki, &pki.nodes[1]));
    assert!(!accepted_as_node_2(address, &pki, &next.nodes[1]));

    // The CA file now trusts both CAs, as during a rotation.
    let both = format!("{}{}", pki.ca.cert_pem(), next.ca.cert_pem());
    write_files(directory.path(), &both, &pki.nodes[0]);
    tls.reload().unwrap();
    assert!(accepted_as_node_2(address, &pki, &next.nodes[1]));

    // Broken files are refused and the material in use stays.
    std::fs::write(&files.cert, "not a certificate").unwrap();
    assert!(tls.reload().is_err());
    assert!(accepted_as_node_2(address, &pki, &next.nodes[1]));
    assert!(accepted_as_node_2(address, &pki, &pki.nodes[1]));
    node.shutdown().await;
}

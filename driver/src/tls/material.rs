//! A node's TLS material: where it is, how it is checked, and the rustls
//! configurations built from it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kontiki::NodeId;
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// The DNS name a node's certificate must carry: `node-<id>.kontiki`.
#[must_use]
pub fn node_name(id: NodeId) -> String {
    format!("node-{id}.kontiki")
}

/// Where a node's TLS material is, as PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate authority (or authorities) that signs every
    /// member's certificate.
    pub ca: PathBuf,
    /// This node's certificate, followed by any intermediate certificates.
    pub cert: PathBuf,
    /// This node's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// TLS material in PEM, in memory.
#[derive(Clone, Copy, Debug)]
pub struct TlsPem<'a> {
    /// The certificate authority (see [`TlsFiles::ca`]).
    pub ca: &'a [u8],
    /// This node's certificate chain (see [`TlsFiles::cert`]).
    pub cert: &'a [u8],
    /// This node's private key (see [`TlsFiles::key`]).
    pub key: &'a [u8],
}

/// Why TLS material was not taken.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: io::Error,
    },
    /// PEM that holds no certificate or key of the expected kind, or is
    /// malformed.
    #[error("{what}: {problem}")]
    Pem {
        /// Which part of the material.
        what: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The node's certificate does not name it.
    #[error("the certificate is not for node {id}: it does not name {name}")]
    NotThisNode {
        /// The node.
        id: NodeId,
        /// The name it should carry.
        name: String,
    },
    /// The node's certificate is not valid under the CA now (another CA,
    /// expired, not yet valid).
    #[error("the certificate is not valid under the CA: {0}")]
    NotTrusted(rustls::Error),
    /// rustls refused the material (a key that does not match the
    /// certificate, for example).
    #[error("{0}")]
    Rejected(String),
}

/// The rustls configurations of both ends of a link.
pub(crate) struct Configs {
    pub(crate) dial: Arc<ClientConfig>,
    pub(crate) accept: Arc<ServerConfig>,
}

/// Whether certificate `leaf` names node `id`.
pub(crate) fn names(leaf: &ParsedCertificate<'_>, id: NodeId) -> bool {
    ServerName::try_from(node_name(id)).is_ok_and(|name| verify_server_name(leaf, &name).is_ok())
}

/// The bytes of the file at `path`.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        path: path.to_path_buf(),
        error,
    })
}

pub(crate) fn read_files(id: NodeId, files: &TlsFiles) -> Result<Configs, TlsError> {
    let (ca, cert, key) = (read(&files.ca)?, read(&files.cert)?, read(&files.key)?);
    configure(
        id,
        TlsPem {
            ca: &ca,
            cert: &cert,
            key: &key,
        },
    )
}

/// The certificates in `pem` (at least one); `what` names it in errors.
pub(crate) fn certificates(
    what: &'static str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let malformed = |problem: String| TlsError::Pem { what, problem };
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| malformed(error.to_string()))?;
    if certificates.is_empty() {
        return Err(malformed("no certificate in it".into()));
    }
    Ok(certificates)
}

/// The private key in `pem`.
pub(crate) fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|error| TlsError::Pem {
        what: "the key",
        problem: error.to_string(),
    })
}

/// Builds both ends' configurations from `pem`, after checking it.
pub(crate) fn configure(id: NodeId, pem: TlsPem<'_>) -> Result<Configs, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for authority in certificates("the CA", pem.ca)? {
        roots.add(authority).map_err(|error| TlsError::Pem {
            what: "the CA",
            problem: error.to_string(),
        })?;
    }
    let roots = Arc::new(roots);
    let chain = certificates("the certificate", pem.cert)?;
    let key = private_key(pem.key)?;
    check_own(id, &chain, &roots, &provider)?;
    let rejected = |error: rustls::Error| TlsError::Rejected(error.to_string());
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
            .build()
            .map_err(|error| TlsError::Rejected(error.to_string()))?;
    let accept = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(rejected)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(rejected)?;
    let dial = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(rejected)?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(rejected)?;
    Ok(Configs {
        dial: Arc::new(dial),
        accept: Arc::new(accept),
    })
}

/// Checks that the node's own certificate names it and is valid under
/// the CA now: a mistake here would otherwise show only as every peer
/// refusing the node.
fn check_own(
    id: NodeId,
    chain: &[CertificateDer<'static>],
    roots: &RootCertStore,
    provider: &CryptoProvider,
) -> Result<(), TlsError> {
    let leaf = ParsedCertificate::try_from(&chain[0]).map_err(|error| TlsError::Pem {
        what: "the certificate",
        problem: error.to_string(),
    })?;
    if !names(&leaf, id) {
        return Err(TlsError::NotThisNode {
            id,
            name: node_name(id),
        });
    }
    verify_server_cert_signed_by_trust_anchor(
        &leaf,
        roots,
        &chain[1..],
        UnixTime::now(),
        provider.signature_verification_algorithms.all,
    )
    .map_err(TlsError::NotTrusted)
}

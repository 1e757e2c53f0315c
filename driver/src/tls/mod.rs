//! Mutual TLS on peer links, with each node's identity bound to its
//! certificate.
//!
//! Every node holds a certificate signed by the cluster's certificate
//! authority (CA) and naming the node: the DNS name
//! [`node_name(id)`](node_name), `node-<id>.kontiki`. A link is TLS 1.3
//! with both ends authenticated:
//!
//! - the dialing node checks that the certificate it is shown chains to
//!   the CA and names the peer it meant to reach;
//! - the accepting node checks that the dialer's certificate chains to the
//!   CA and names the node id its handshake claims, so a valid
//!   certificate for node 2 cannot speak as node 3.
//!
//! When a node has TLS, it neither accepts nor opens plaintext links: a
//! plaintext handshake, TLS garbage, an expired certificate or one from
//! another CA is refused at the handshake, on that connection only.
//!
//! [`PeerTls::reload`] rereads the files: new connections use the new
//! certificate and CA, connections already open keep theirs.

use std::io;
use std::sync::Arc;

use futures::io::{AsyncRead, AsyncWrite};
use futures_rustls::{TlsAcceptor, TlsConnector, TlsStream};
use kontiki::NodeId;
use rustls::server::ParsedCertificate;
use rustls_pki_types::ServerName;

#[cfg(feature = "certificates")]
mod authority;
mod material;
mod reloadable;
mod server;

#[cfg(feature = "certificates")]
pub use authority::{CertificateAuthority, Issued, Validity};
use material::{configure, names, read_files, Configs};
pub use material::{node_name, TlsError, TlsFiles, TlsPem};
use reloadable::Reloadable;
pub use server::ServerTls;

/// A node's TLS for its peer links: see the [module](self) documentation.
///
/// Cheap to clone; clones share the material, so a
/// [`reload`](PeerTls::reload) through any of them applies to all.
#[derive(Clone, Debug)]
pub struct PeerTls {
    id: NodeId,
    material: Reloadable<TlsFiles, Configs>,
}

impl PeerTls {
    /// Reads node `id`'s material from `files` and checks it: the
    /// certificate names the node, chains to the CA and is valid now, and
    /// the key is its key.
    pub fn load(id: NodeId, files: TlsFiles) -> Result<PeerTls, TlsError> {
        let configs = read_files(id, &files)?;
        Ok(PeerTls {
            id,
            material: Reloadable::new(Some(files), configs),
        })
    }

    /// Node `id`'s material from memory, checked as by
    /// [`load`](PeerTls::load).
    pub fn from_pem(id: NodeId, pem: TlsPem<'_>) -> Result<PeerTls, TlsError> {
        let configs = configure(id, pem)?;
        Ok(PeerTls {
            id,
            material: Reloadable::new(None, configs),
        })
    }

    /// The node whose material this is.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Rereads the files given to [`load`](PeerTls::load) and, if they
    /// pass its checks, uses them for every new connection; on an error
    /// the material in use stays. Material from memory has nothing to
    /// reread: it stays, and this succeeds.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.material.reload(|files| read_files(self.id, files))
    }

    /// Opens TLS on `stream`, dialed to reach `peer`: the peer must show a
    /// certificate for that node.
    pub(crate) async fn dial<S>(&self, stream: S, peer: NodeId) -> io::Result<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(node_name(peer))
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
        let connector = TlsConnector::from(Arc::clone(&self.material.current().dial));
        Ok(connector.connect(name, stream).await?.into())
    }

    /// Accepts TLS on `stream`; the certificate it shows is checked
    /// against the CA here and against the node it claims to be by
    /// [`certifies`].
    pub(crate) async fn accept<S>(&self, stream: S) -> io::Result<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let acceptor = TlsAcceptor::from(Arc::clone(&self.material.current().accept));
        Ok(acceptor.accept(stream).await?.into())
    }
}

/// Whether the certificate the other end of `stream` showed names node
/// `claimed`.
pub(crate) fn certifies<S>(stream: &TlsStream<S>, claimed: NodeId) -> bool {
    let (_, state) = stream.get_ref();
    state
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| ParsedCertificate::try_from(leaf).ok())
        .is_some_and(|leaf| names(&leaf, claimed))
}

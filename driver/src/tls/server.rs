//! TLS for a port whose clients are not certified — an application's
//! client port, such as `kontiki node`'s Redis port: the server shows its
//! certificate, clients authenticate some other way (a password, say).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::io::{AsyncRead, AsyncWrite};
use futures_rustls::TlsAcceptor;
use rustls::ServerConfig;

use super::material::{certificates, private_key, read};
use super::reloadable::Reloadable;
use super::TlsError;

/// A server's certificate and key, for [`accept`](ServerTls::accept)ing
/// TLS 1.3 or 1.2 from clients without certificates.
///
/// Cheap to clone; clones share the material, so a
/// [`reload`](ServerTls::reload) through any applies to all.
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// Built from the certificate chain's and the key's files.
    material: Reloadable<(PathBuf, PathBuf), ServerConfig>,
}

fn configure(cert: &[u8], key: &[u8]) -> Result<ServerConfig, TlsError> {
    let chain = certificates("the certificate", cert)?;
    let key = private_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|error| TlsError::Rejected(error.to_string()))
}

impl ServerTls {
    /// Reads the certificate chain at `cert` and its key at `key` (PEM).
    pub fn load(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        let config = configure(&read(cert)?, &read(key)?)?;
        let files = (cert.to_path_buf(), key.to_path_buf());
        Ok(ServerTls {
            material: Reloadable::new(Some(files), config),
        })
    }

    /// A certificate chain and its key in memory (PEM).
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<ServerTls, TlsError> {
        Ok(ServerTls {
            material: Reloadable::new(None, configure(cert, key)?),
        })
    }

    /// Rereads the files given to [`load`](ServerTls::load); new
    /// connections use them. On an error the material in use stays;
    /// material from memory has nothing to reread.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.material
            .reload(|(cert, key)| configure(&read(cert)?, &read(key)?))
    }

    /// Accepts TLS on `stream`; the handshake fails on plaintext, garbage
    /// or a client that supports no version or cipher suite in common.
    pub async fn accept<S>(
        &self,
        stream: S,
    ) -> io::Result<impl AsyncRead + AsyncWrite + Unpin + Send>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        TlsAcceptor::from(self.material.current())
            .accept(stream)
            .await
    }
}

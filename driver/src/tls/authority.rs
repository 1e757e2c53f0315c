//! A development certificate authority: makes a cluster's CA and its
//! nodes' certificates, in the form [`PeerTls`](super::PeerTls) checks.
//!
//! It is what `kontiki cert` and the tests use. A production cluster may
//! use its own PKI instead: each node's certificate must carry the DNS
//! name [`node_name`](super::node_name) and allow both server and client
//! authentication.

use std::time::{Duration, SystemTime};

use kontiki::NodeId;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use super::material::{configure, node_name, TlsError, TlsPem};

/// The subject every CA made here carries. An issuer is rebuilt from it
/// and the CA's key, so a CA saved to files issues more certificates
/// later (a node added to the cluster) without parsing its certificate.
const CA_SUBJECT: &str = "kontiki development CA";

/// When a certificate is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// Not before this time.
    pub not_before: SystemTime,
    /// Not after this time.
    pub not_after: SystemTime,
}

impl Validity {
    /// From an hour ago (some slack for clocks a little behind) to `days`
    /// days from now.
    #[must_use]
    pub fn days_from_now(days: u32) -> Validity {
        let now = SystemTime::now();
        Validity {
            not_before: now - Duration::from_secs(3600),
            not_after: now + Duration::from_secs(u64::from(days) * 86_400),
        }
    }

    fn apply(self, params: &mut CertificateParams) {
        params.not_before = self.not_before.into();
        params.not_after = self.not_after.into();
    }
}

/// A certificate and its private key, in PEM.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

/// A certificate authority that issues node certificates.
pub struct CertificateAuthority {
    cert_pem: String,
    key: KeyPair,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

fn failed(what: &'static str) -> impl Fn(rcgen::Error) -> TlsError {
    move |error| TlsError::Pem {
        what,
        problem: error.to_string(),
    }
}

/// The parameters every CA made here is signed with (its validity
/// aside), from which its issuer is rebuilt.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, CA_SUBJECT);
    params.distinguished_name = subject;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

impl CertificateAuthority {
    /// A new CA with a new key (ECDSA P-256).
    pub fn generate(validity: Validity) -> Result<CertificateAuthority, TlsError> {
        let key = KeyPair::generate().map_err(failed("the CA's key"))?;
        let mut params = ca_params();
        validity.apply(&mut params);
        let cert = params.self_signed(&key).map_err(failed("the CA"))?;
        Ok(CertificateAuthority {
            cert_pem: cert.pem(),
            key,
        })
    }

    /// A CA made by [`generate`](CertificateAuthority::generate) and
    /// saved, from its certificate and key. Whether they belong together
    /// shows when it issues: [`issue`](CertificateAuthority::issue)
    /// checks every certificate against this one.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<CertificateAuthority, TlsError> {
        let key = KeyPair::from_pem(key_pem).map_err(failed("the CA's key"))?;
        Ok(CertificateAuthority {
            cert_pem: cert_pem.to_string(),
            key,
        })
    }

    /// The CA's certificate: every member's trust anchor.
    #[must_use]
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key: keep it away from the nodes.
    #[must_use]
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A certificate for node `id` with a new key, naming
    /// [`node_name(id)`](super::node_name) and `extra_names` (host names
    /// or IP addresses clients may check), for server and client
    /// authentication. It is checked as a node would check it (now, if
    /// `validity` covers now).
    pub fn issue(
        &self,
        id: NodeId,
        validity: Validity,
        extra_names: &[String],
    ) -> Result<Issued, TlsError> {
        let mut names = vec![node_name(id)];
        names.extend(extra_names.iter().cloned());
        let mut params = CertificateParams::new(names).map_err(failed("a name"))?;
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, node_name(id));
        params.distinguished_name = subject;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        validity.apply(&mut params);
        let key = KeyPair::generate().map_err(failed("the node's key"))?;
        let issuer = Issuer::new(ca_params(), &self.key);
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(failed("the certificate"))?;
        let issued = Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        let now = SystemTime::now();
        if validity.not_before <= now && now <= validity.not_after {
            configure(
                id,
                TlsPem {
                    ca: self.cert_pem.as_bytes(),
                    cert: issued.cert_pem.as_bytes(),
                    key: issued.key_pem.as_bytes(),
                },
            )?;
        }
        Ok(issued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::PeerTls;

    fn pem<'a>(ca: &'a CertificateAuthority, issued: &'a Issued) -> TlsPem<'a> {
        TlsPem {
            ca: ca.cert_pem().as_bytes(),
            cert: issued.cert_pem.as_bytes(),
            key: issued.key_pem.as_bytes(),
        }
    }

    #[test]
    fn a_saved_ca_issues_certificates_its_nodes_accept() {
        let ca = CertificateAuthority::generate(Validity::days_from_now(1)).unwrap();
        let saved = CertificateAuthority::from_pem(ca.cert_pem(), &ca.key_pem()).unwrap();
        let issued = saved
            .issue(NodeId(4), Validity::days_from_now(1), &["localhost".into()])
            .unwrap();
        let tls = PeerTls::from_pem(NodeId(4), pem(&ca, &issued)).unwrap();
        assert_eq!(tls.id(), NodeId(4));
    }

    #[test]
    fn material_that_does_not_fit_is_refused_with_the_reason() {
        let validity = Validity::days_from_now(1);
        let ca = CertificateAuthority::generate(validity).unwrap();
        let issued = ca.issue(NodeId(2), validity, &[]).unwrap();
        // Another node's certificate.
        let error = PeerTls::from_pem(NodeId(3), pem(&ca, &issued)).unwrap_err();
        assert!(matches!(error, TlsError::NotThisNode { id: NodeId(3), .. }));
        // Another CA.
        let other = CertificateAuthority::generate(validity).unwrap();
        let error = PeerTls::from_pem(NodeId(2), pem(&other, &issued)).unwrap_err();
        assert!(matches!(error, TlsError::NotTrusted(_)), "{error}");
        // A key that is not the certificate's.
        let mut mismatched = issued.clone();
        mismatched.key_pem = ca.issue(NodeId(2), validity, &[]).unwrap().key_pem;
        assert!(PeerTls::from_pem(NodeId(2), pem(&ca, &mismatched)).is_err());
        // An expired certificate.
        let past = Validity {
            not_before: SystemTime::now() - Duration::from_secs(7200),
            not_after: SystemTime::now() - Duration::from_secs(3600),
        };
        let expired = ca.issue(NodeId(2), past, &[]).unwrap();
        let error = PeerTls::from_pem(NodeId(2), pem(&ca, &expired)).unwrap_err();
        assert!(matches!(error, TlsError::NotTrusted(_)), "{error}");
        // A CA saved with another CA's key issues nothing.
        let crossed = CertificateAuthority::from_pem(ca.cert_pem(), &other.key_pem()).unwrap();
        assert!(crossed.issue(NodeId(2), validity, &[]).is_err());
        // Not PEM at all.
        let garbage = TlsPem {
            ca: b"garbage",
            cert: b"garbage",
            key: b"garbage",
        };
        assert!(matches!(
            PeerTls::from_pem(NodeId(2), garbage),
            Err(TlsError::Pem { what: "the CA", .. })
        ));
    }
}

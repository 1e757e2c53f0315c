//! `kontiki cert`: a development certificate authority and node
//! certificates in a directory, ready for `kontiki node --tls-*`.
//!
//! The directory holds `ca.pem` and `ca-key.pem` (made on the first run,
//! reused after, so that a node added later gets a certificate from the
//! same CA) and `node-<id>.pem` with `node-<id>-key.pem` per node (made
//! anew on every run that names the node: a renewal). Private keys are
//! written readable by their owner only.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use kontiki::NodeId;
use kontiki_driver::tls::{CertificateAuthority, Validity};
use kontiki_driver::TlsFiles;

/// What `kontiki cert` makes.
#[derive(Clone, Debug)]
pub struct CertOptions {
    /// Where the files go (created if missing).
    pub dir: PathBuf,
    /// The nodes to issue certificates for.
    pub nodes: Vec<u64>,
    /// How long new certificates are valid, in days.
    pub days: u32,
    /// Host names or IP addresses every node certificate also names (for
    /// clients that check the address they dial).
    pub names: Vec<String>,
}

/// The files of node `id`'s TLS material in `dir`, as `kontiki cert`
/// names them.
#[must_use]
pub fn node_files(dir: &Path, id: u64) -> TlsFiles {
    TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join(format!("node-{id}.pem")),
        key: dir.join(format!("node-{id}-key.pem")),
    }
}

/// Makes (or reuses) the CA and issues a certificate per node; returns
/// one line per file written or reused.
pub fn run(options: &CertOptions) -> Result<Vec<String>, String> {
    if options.nodes.is_empty() || options.nodes.contains(&0) {
        return Err("--nodes needs positive node ids (such as --nodes 1,2,3)".into());
    }
    if options.days == 0 {
        return Err("--days must be at least 1".into());
    }
    let dir = &options.dir;
    fs::create_dir_all(dir).map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    let ca_path = dir.join("ca.pem");
    let ca_key_path = dir.join("ca-key.pem");
    let validity = Validity::days_from_now(options.days);
    let mut report = Vec::new();
    let ca = if ca_path.exists() || ca_key_path.exists() {
        let read = |path: &Path| {
            fs::read_to_string(path)
                .map_err(|error| format!("cannot read {}: {error}", path.display()))
        };
        let ca = CertificateAuthority::from_pem(&read(&ca_path)?, &read(&ca_key_path)?)
            .map_err(|error| format!("the CA in {}: {error}", dir.display()))?;
        report.push(format!("reused   {}", ca_path.display()));
        ca
    } else {
        let ca = CertificateAuthority::generate(validity).map_err(|error| error.to_string())?;
        write(&ca_path, ca.cert_pem(), false)?;
        write(&ca_key_path, &ca.key_pem(), true)?;
        report.push(format!("created  {}", ca_path.display()));
        report.push(format!(
            "created  {} (keep it off the nodes)",
            ca_key_path.display()
        ));
        ca
    };
    for &id in &options.nodes {
        let issued = ca
            .issue(NodeId(id), validity, &options.names)
            .map_err(|error| {
                format!(
                    "cannot issue node {id}'s certificate with the CA in {}: {error}",
                    dir.display()
                )
            })?;
        let files = node_files(dir, id);
        write(&files.cert, &issued.cert_pem, false)?;
        write(&files.key, &issued.key_pem, true)?;
        report.push(format!("created  {}", files.cert.display()));
        report.push(format!("created  {}", files.key.display()));
    }
    Ok(report)
}

/// Writes `contents` to `path` in full, a private key readable by its
/// owner only.
fn write(path: &Path, contents: &str, private: bool) -> Result<(), String> {
    let failed = |error: std::io::Error| format!("cannot write {}: {error}", path.display());
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(failed)?;
    file.write_all(contents.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)
}

#[cfg(test)]
mod tests {
    use kontiki_driver::PeerTls;

    use super::*;

    #[test]
    fn a_second_run_adds_a_node_under_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let mut options = CertOptions {
            dir: dir.path().to_path_buf(),
            nodes: vec![1, 2, 3],
            days: 30,
            names: vec!["127.0.0.1".into(), "localhost".into()],
        };
        let first = run(&options).unwrap();
        assert_eq!(first.len(), 2 + 2 * 3);
        let ca = fs::read(dir.path().join("ca.pem")).unwrap();
        options.nodes = vec![4];
        let second = run(&options).unwrap();
        assert!(second[0].starts_with("reused"));
        assert_eq!(fs::read(dir.path().join("ca.pem")).unwrap(), ca);
        for id in 1..=4 {
            PeerTls::load(NodeId(id), node_files(dir.path(), id)).unwrap();
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(node_files(dir.path(), 4).key)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "a key readable by others");
        }
        options.nodes = vec![0];
        assert!(run(&options).is_err());
    }
}

//! Loading the server's TLS identity (certificate chain and private key, both PEM).
//!
//! Every protocol that speaks TLS (HTTPS now, explicit FTPS later) loads the same files through
//! [`load`], so an operator configures one certificate. The returned configuration offers the
//! HTTP ALPN protocols; another protocol clones it and replaces `alpn_protocols` (an FTPS server
//! would offer `ftp`), since a client that sends ALPN and finds no overlap is refused.
//!
//! The crypto provider is `ring`, passed explicitly rather than installed process-wide, so
//! nothing depends on which provider another crate may have enabled.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// ALPN protocols offered to HTTPS clients, most preferred first.
const HTTP_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Reads the PEM certificate chain at `cert` (end-entity certificate first) and the PEM private
/// key at `key` (PKCS#8, PKCS#1 RSA or SEC1 EC), checks that they belong together, and builds a
/// server configuration (TLS 1.2 and 1.3, no client certificates, ALPN `h2` and `http/1.1`).
/// Errors name the file and say what is wrong with it, for the operator to read.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain = read_chain(cert)?;
    let private_key = read_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                format!("the private key in {} does not match the certificate in {}", key.display(), cert.display())
            }
            other => format!("cannot use the key in {} with {}: {other}", key.display(), cert.display()),
        })?;
    config.alpn_protocols = HTTP_ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| pem_error(path, e, "certificate"))?;
    let chain = iter.collect::<Result<Vec<_>, _>>().map_err(|e| pem_error(path, e, "certificate"))?;
    if chain.is_empty() {
        return Err(format!("{}: no PEM certificate (\"BEGIN CERTIFICATE\") found", path.display()));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, e, "private key"))
}

/// The PEM crate's own messages print byte vectors; these say what to fix instead.
fn pem_error(path: &Path, e: pem::Error, what: &str) -> String {
    let file = path.display();
    match e {
        pem::Error::Io(e) if e.kind() == io::ErrorKind::NotFound => format!("{file}: no such file"),
        pem::Error::Io(e) => format!("cannot read {file}: {e}"),
        pem::Error::NoItemsFound => {
            format!("{file}: no PEM {what} found (expected PKCS#8, RSA or EC \"BEGIN … PRIVATE KEY\")")
        }
        pem::Error::MissingSectionEnd { .. } => format!("{file}: a PEM section has no END line"),
        pem::Error::IllegalSectionStart { .. } => format!("{file}: malformed PEM BEGIN line"),
        pem::Error::Base64Decode(e) => format!("{file}: invalid base64 in the PEM {what}: {e}"),
        other => format!("{file}: cannot read the PEM {what}: {other}"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;
    use std::process::Command;

    use super::*;

    /// A self-signed P-256 certificate and its key, made by the `openssl` command.
    pub(crate) fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
        let status = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .args(["-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
            .stderr(std::process::Stdio::null())
            .status()
            .expect("the openssl command");
        assert!(status.success());
        (cert, key)
    }

    #[test]
    fn missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "a");
        let gone = dir.path().join("gone.pem");
        let e = load(&gone, &key).unwrap_err();
        assert!(e.contains("gone.pem") && e.contains("no such file"), "{e}");
        let e = load(&cert, &gone).unwrap_err();
        assert!(e.contains("gone.pem") && e.contains("no such file"), "{e}");
    }

    #[test]
    fn garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "a");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = load(&junk, &key).unwrap_err();
        assert!(e.contains("junk.pem") && e.contains("no PEM certificate"), "{e}");
        let e = load(&cert, &junk).unwrap_err();
        assert!(e.contains("junk.pem") && e.contains("no PEM private key"), "{e}");
        std::fs::write(&junk, "-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n").unwrap();
        let e = load(&junk, &key).unwrap_err();
        assert!(e.contains("junk.pem") && e.contains("base64"), "{e}");
        std::fs::write(&junk, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        let e = load(&junk, &key).unwrap_err();
        assert!(e.contains("no END line"), "{e}");
    }

    #[test]
    fn a_key_from_another_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = self_signed(dir.path(), "a");
        let (_, other_key) = self_signed(dir.path(), "b");
        let e = load(&cert, &other_key).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
    }

    #[test]
    fn a_matching_pair_loads_with_http_alpn() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "a");
        let config = load(&cert, &key).unwrap();
        assert_eq!(config.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    }
}

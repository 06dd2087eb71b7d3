//! Configuration. One precedence, documented in the README: command-line flag, then
//! `WHARF_*` environment variable, then the TOML file given by `--config`, then default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;
use wharf_backends::Durability;

/// Flags of `wharf serve`. Every flag is optional here so we can tell "not given" from
/// "given as the default" when merging with the config file.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Directory holding the database and the blobs.
    #[arg(long, env = "WHARF_DATA")]
    pub data: Option<PathBuf>,
    /// Address to listen on for WebDAV and HTTP.
    #[arg(long, env = "WHARF_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// TOML file with any of the settings below (keys as the flags, with underscores).
    #[arg(long, env = "WHARF_CONFIG")]
    pub config: Option<PathBuf>,
    /// `process` (survives a killed process) or `full` (also fsyncs: survives power loss).
    #[arg(long, env = "WHARF_DURABILITY")]
    pub durability: Option<String>,
    /// Total bytes the tree may hold (default: the free disk space).
    #[arg(long, env = "WHARF_QUOTA_BYTES")]
    pub quota_bytes: Option<u64>,
    /// Largest accepted upload, in bytes (default: unlimited).
    #[arg(long, env = "WHARF_MAX_UPLOAD_BYTES")]
    pub max_upload_bytes: Option<u64>,
    /// Largest accepted XML request body (PROPFIND, PROPPATCH, LOCK), in bytes.
    #[arg(long, env = "WHARF_MAX_XML_BYTES")]
    pub max_xml_bytes: Option<usize>,
    /// Most resources a `Depth: infinity` PROPFIND may list before it is refused.
    #[arg(long, env = "WHARF_PROPFIND_INFINITY_LIMIT")]
    pub propfind_infinity_limit: Option<u64>,
    /// PEM certificate chain: serve HTTPS (needs --tls-key).
    #[arg(long, env = "WHARF_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "WHARF_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Also offer HTTP Digest authentication (RFC 7616), for Windows over plain HTTP.
    #[arg(long, env = "WHARF_DIGEST", num_args = 0..=1, default_missing_value = "true")]
    pub digest: Option<bool>,
    /// Let requests without credentials read the public area (`/public` in the store).
    #[arg(long, env = "WHARF_ANONYMOUS", num_args = 0..=1, default_missing_value = "true")]
    pub anonymous: Option<bool>,
    /// Failed logins (per user, and per source address) before a lockout.
    #[arg(long, env = "WHARF_LOCKOUT_AFTER")]
    pub lockout_after: Option<u32>,
    /// How long a lockout lasts, in seconds.
    #[arg(long, env = "WHARF_LOCKOUT_SECONDS")]
    pub lockout_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data: Option<PathBuf>,
    listen: Option<SocketAddr>,
    durability: Option<String>,
    quota_bytes: Option<u64>,
    max_upload_bytes: Option<u64>,
    max_xml_bytes: Option<usize>,
    propfind_infinity_limit: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    digest: Option<bool>,
    anonymous: Option<bool>,
    lockout_after: Option<u32>,
    lockout_seconds: Option<u64>,
}

/// The merged settings the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data: PathBuf,
    pub listen: SocketAddr,
    pub durability: Durability,
    pub quota_bytes: Option<u64>,
    pub max_upload_bytes: Option<u64>,
    pub max_xml_bytes: usize,
    pub propfind_infinity_limit: u64,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub digest: bool,
    pub anonymous: bool,
    pub lockout_after: u32,
    pub lockout_seconds: u64,
}

impl Settings {
    pub fn resolve(args: ServeArgs) -> Result<Settings, String> {
        let file = match &args.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let durability = match args.durability.or(file.durability).as_deref() {
            None | Some("process") => Durability::Process,
            Some("full") => Durability::Full,
            Some(other) => return Err(format!("durability must be `process` or `full`, not `{other}`")),
        };
        Ok(Settings {
            data: args.data.or(file.data).unwrap_or_else(|| PathBuf::from("data")),
            listen: args.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            durability,
            quota_bytes: args.quota_bytes.or(file.quota_bytes),
            max_upload_bytes: args.max_upload_bytes.or(file.max_upload_bytes),
            max_xml_bytes: args.max_xml_bytes.or(file.max_xml_bytes).unwrap_or(1 << 20),
            propfind_infinity_limit: args.propfind_infinity_limit.or(file.propfind_infinity_limit).unwrap_or(100_000),
            tls: match (args.tls_cert.or(file.tls_cert), args.tls_key.or(file.tls_key)) {
                (Some(c), Some(k)) => Some((c, k)),
                (None, None) => None,
                _ => return Err("--tls-cert and --tls-key go together".into()),
            },
            digest: args.digest.or(file.digest).unwrap_or(false),
            anonymous: args.anonymous.or(file.anonymous).unwrap_or(false),
            lockout_after: args.lockout_after.or(file.lockout_after).unwrap_or(5),
            lockout_seconds: args.lockout_seconds.or(file.lockout_seconds).unwrap_or(300),
        })
    }

    pub fn model_config(&self) -> dav_model::Config {
        dav_model::Config {
            durability: self.durability,
            quota_bytes: self.quota_bytes,
            max_upload_bytes: self.max_upload_bytes,
            ..dav_model::Config::default()
        }
    }
}

fn read_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_file_and_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("wharf.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nmax_xml_bytes = 77\n").unwrap();
        let args = ServeArgs { config: Some(file), max_xml_bytes: Some(5), ..Default::default() };
        let s = Settings::resolve(args).unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.max_xml_bytes, 5);
        assert_eq!(s.propfind_infinity_limit, 100_000);
    }

    #[test]
    fn unknown_file_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("wharf.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        let args = ServeArgs { config: Some(file), ..Default::default() };
        assert!(Settings::resolve(args).is_err());
    }
}

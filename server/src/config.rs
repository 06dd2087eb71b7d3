//! Configuration. One precedence, documented in the README: command-line flag, then
//! `WHARF_*` environment variable, then the TOML file given by `--config`, then default.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
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
    /// The database: `postgres://USER:PASSWORD@HOST/NAME` for one that several servers
    /// share (default: `wharf.db` in the data directory, SQLite).
    #[arg(long, env = "WHARF_DATABASE")]
    pub database: Option<String>,
    /// Keep file contents in S3-compatible object storage, `s3://BUCKET/PREFIX`, instead of
    /// `blobs/` in the data directory. Credentials from `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY`.
    #[arg(long, env = "WHARF_BLOBS")]
    pub blobs: Option<String>,
    /// S3 endpoint URL (default: `AWS_ENDPOINT_URL`, else AWS itself).
    #[arg(long, env = "WHARF_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 region (default: `AWS_REGION`, else us-east-1).
    #[arg(long, env = "WHARF_S3_REGION")]
    pub s3_region: Option<String>,
    /// Address the bucket as `BUCKET.ENDPOINT` (virtual-hosted style) instead of
    /// `ENDPOINT/BUCKET` (path style, the default).
    #[arg(long, env = "WHARF_S3_VIRTUAL_HOSTED", num_args = 0..=1, default_missing_value = "true")]
    pub s3_virtual_hosted: Option<bool>,
    /// Seconds before an unfinished upload or unreferenced object in the bucket counts as
    /// left over (another server sharing the bucket may still be committing it).
    #[arg(long, env = "WHARF_S3_GRACE_SECONDS")]
    pub s3_grace_seconds: Option<u64>,
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
    /// Files up to this many bytes are kept in the database with their rows instead of as
    /// files of the blob store (default 16384; 0: never; at most 524288).
    #[arg(long, env = "WHARF_INLINE_MAX_BYTES")]
    pub inline_max_bytes: Option<u64>,
    /// Memory for small file contents recently written or read, in bytes (default 64 MiB;
    /// 0: no cache).
    #[arg(long, env = "WHARF_CONTENT_CACHE_BYTES")]
    pub content_cache_bytes: Option<u64>,
    /// Archives opened as folders (`NAME.zip!/`): most members one may hold (default
    /// 1,000,000).
    #[arg(long, env = "WHARF_ARCHIVE_MAX_MEMBERS")]
    pub archive_max_members: Option<u64>,
    /// Archives opened as folders: most bytes their members may hold together,
    /// uncompressed (default 1 TiB).
    #[arg(long, env = "WHARF_ARCHIVE_MAX_BYTES")]
    pub archive_max_bytes: Option<u64>,
    /// Archives opened as folders: highest compression ratio of a zip member or a whole
    /// compressed tar before it is refused as a bomb (default 200).
    #[arg(long, env = "WHARF_ARCHIVE_MAX_RATIO")]
    pub archive_max_ratio: Option<u64>,
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
    /// Failed logins of one user name before it is locked out (0: never).
    #[arg(long, env = "WHARF_LOCKOUT_AFTER")]
    pub lockout_after: Option<u32>,
    /// Failed logins from one client address, whatever the user names, before the address is
    /// locked out (0: never). Higher than per user: an office behind NAT is one address.
    #[arg(long, env = "WHARF_ADDRESS_LOCKOUT_AFTER")]
    pub address_lockout_after: Option<u32>,
    /// How long a lockout lasts, in seconds.
    #[arg(long, env = "WHARF_LOCKOUT_SECONDS")]
    pub lockout_seconds: Option<u64>,
    /// Address for FTP (default 127.0.0.1:2121), or `off`.
    #[arg(long, env = "WHARF_FTP_LISTEN")]
    pub ftp_listen: Option<String>,
    /// Ports for passive-mode data connections, as `FIRST-LAST`.
    #[arg(long, env = "WHARF_FTP_PASSIVE_PORTS")]
    pub ftp_passive_ports: Option<String>,
    /// Address announced in PASV replies (IPv4 or DNS name), for NAT and containers.
    #[arg(long, env = "WHARF_FTP_PASSIVE_HOST")]
    pub ftp_passive_host: Option<String>,
    /// Refuse FTP logins and transfers without TLS (needs --tls-cert).
    #[arg(long, env = "WHARF_FTPS_REQUIRED", num_args = 0..=1, default_missing_value = "true")]
    pub ftps_required: Option<bool>,
    /// Serve this folder of the host in place as the administrator's home (`/`).
    #[arg(long, env = "WHARF_FOLDER")]
    pub folder: Option<PathBuf>,
    /// Numeric owner given to files and folders Wharf creates in host folders.
    #[arg(long, env = "WHARF_HOST_UID")]
    pub host_uid: Option<u32>,
    /// Numeric group given to files and folders Wharf creates in host folders.
    #[arg(long, env = "WHARF_HOST_GID")]
    pub host_gid: Option<u32>,
    /// Octal permissions of files Wharf creates in host folders (default: 666 less the umask).
    #[arg(long, env = "WHARF_HOST_FILE_MODE")]
    pub host_file_mode: Option<String>,
    /// Octal permissions of folders Wharf creates in host folders (default: 777 less the umask).
    #[arg(long, env = "WHARF_HOST_DIR_MODE")]
    pub host_dir_mode: Option<String>,
    /// Address of the operations listener (`/metrics`, `/livez`, `/readyz`; default
    /// 127.0.0.1:8081), or `off`. Kept off the WebDAV port so no file name is reserved.
    #[arg(long, env = "WHARF_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
    /// Seconds that requests and transfers in flight get to finish after SIGTERM.
    #[arg(long, env = "WHARF_GRACE_SECONDS")]
    pub grace_seconds: Option<u64>,
    /// Reverse proxies (addresses or CIDR ranges, comma-separated) whose `Forwarded` and
    /// `X-Forwarded-*` headers are believed. Nobody's are by default.
    #[arg(long, env = "WHARF_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// Serve under this path prefix (`/dav`) instead of at `/`.
    #[arg(long, env = "WHARF_BASE_PATH")]
    pub base_path: Option<String>,
    /// `text` (default) or `json`: one JSON object per log line.
    #[arg(long, env = "WHARF_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Log one line per HTTP request and FTP transfer (never credentials).
    #[arg(long, env = "WHARF_ACCESS_LOG", num_args = 0..=1, default_missing_value = "true")]
    pub access_log: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data: Option<PathBuf>,
    listen: Option<SocketAddr>,
    database: Option<String>,
    blobs: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_virtual_hosted: Option<bool>,
    s3_grace_seconds: Option<u64>,
    durability: Option<String>,
    quota_bytes: Option<u64>,
    max_upload_bytes: Option<u64>,
    inline_max_bytes: Option<u64>,
    content_cache_bytes: Option<u64>,
    archive_max_members: Option<u64>,
    archive_max_bytes: Option<u64>,
    archive_max_ratio: Option<u64>,
    max_xml_bytes: Option<usize>,
    propfind_infinity_limit: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    digest: Option<bool>,
    anonymous: Option<bool>,
    lockout_after: Option<u32>,
    address_lockout_after: Option<u32>,
    lockout_seconds: Option<u64>,
    ftp_listen: Option<String>,
    ftp_passive_ports: Option<String>,
    ftp_passive_host: Option<String>,
    ftps_required: Option<bool>,
    folder: Option<PathBuf>,
    host_uid: Option<u32>,
    host_gid: Option<u32>,
    host_file_mode: Option<String>,
    host_dir_mode: Option<String>,
    admin_listen: Option<String>,
    grace_seconds: Option<u64>,
    trusted_proxies: Option<String>,
    base_path: Option<String>,
    log_format: Option<String>,
    access_log: Option<bool>,
}

/// The merged settings the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data: PathBuf,
    pub listen: SocketAddr,
    /// `None`: blobs in the data directory.
    pub s3: Option<wharf_backends::S3Options>,
    pub database: Option<String>,
    pub durability: Durability,
    pub quota_bytes: Option<u64>,
    pub max_upload_bytes: Option<u64>,
    pub inline_max_bytes: u64,
    pub content_cache_bytes: u64,
    pub archive_limits: wharf_backends::archive::Limits,
    pub max_xml_bytes: usize,
    pub propfind_infinity_limit: u64,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub digest: bool,
    pub anonymous: bool,
    pub lockout_after: u32,
    pub address_lockout_after: u32,
    pub lockout_seconds: u64,
    /// `None` when FTP is off.
    pub ftp_listen: Option<SocketAddr>,
    pub ftp_passive_ports: RangeInclusive<u16>,
    pub ftp_passive_host: Option<String>,
    pub ftps_required: bool,
    pub folder: Option<PathBuf>,
    pub host_uid: Option<u32>,
    pub host_gid: Option<u32>,
    pub host_file_mode: Option<u32>,
    pub host_dir_mode: Option<u32>,
    /// `None` when the operations listener is off.
    pub admin_listen: Option<SocketAddr>,
    pub grace: std::time::Duration,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Empty, or `/prefix` without a trailing slash.
    pub base_path: String,
    pub log_json: bool,
    pub access_log: bool,
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
        let inline_max_bytes = args.inline_max_bytes.or(file.inline_max_bytes).unwrap_or(dav_model::DEFAULT_INLINE_MAX);
        if inline_max_bytes > dav_model::INLINE_CAP {
            return Err(format!("--inline-max-bytes is at most {}, not {inline_max_bytes}", dav_model::INLINE_CAP));
        }
        Ok(Settings {
            data: args.data.or(file.data).unwrap_or_else(|| PathBuf::from("data")),
            listen: args.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            database: parse_database(args.database.or(file.database))?,
            s3: parse_s3(
                args.blobs.or(file.blobs),
                args.s3_endpoint.or(file.s3_endpoint),
                args.s3_region.or(file.s3_region),
                args.s3_virtual_hosted.or(file.s3_virtual_hosted),
                args.s3_grace_seconds.or(file.s3_grace_seconds),
            )?,
            durability,
            quota_bytes: args.quota_bytes.or(file.quota_bytes),
            max_upload_bytes: args.max_upload_bytes.or(file.max_upload_bytes),
            inline_max_bytes,
            content_cache_bytes: args
                .content_cache_bytes
                .or(file.content_cache_bytes)
                .unwrap_or(dav_model::DEFAULT_CONTENT_CACHE_BYTES),
            archive_limits: {
                let d = wharf_backends::archive::Limits::default();
                wharf_backends::archive::Limits {
                    max_members: args.archive_max_members.or(file.archive_max_members).unwrap_or(d.max_members),
                    max_total: args.archive_max_bytes.or(file.archive_max_bytes).unwrap_or(d.max_total),
                    max_ratio: args.archive_max_ratio.or(file.archive_max_ratio).unwrap_or(d.max_ratio),
                }
            },
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
            address_lockout_after: args.address_lockout_after.or(file.address_lockout_after).unwrap_or(50),
            lockout_seconds: args.lockout_seconds.or(file.lockout_seconds).unwrap_or(300),
            ftp_listen: parse_ftp_listen(args.ftp_listen.or(file.ftp_listen).as_deref())?,
            ftp_passive_ports: parse_port_range(args.ftp_passive_ports.or(file.ftp_passive_ports).as_deref())?,
            ftp_passive_host: args.ftp_passive_host.or(file.ftp_passive_host).filter(|h| !h.is_empty()),
            ftps_required: args.ftps_required.or(file.ftps_required).unwrap_or(false),
            folder: args.folder.or(file.folder),
            host_uid: args.host_uid.or(file.host_uid),
            host_gid: args.host_gid.or(file.host_gid),
            host_file_mode: parse_mode("--host-file-mode", args.host_file_mode.or(file.host_file_mode))?,
            host_dir_mode: parse_mode("--host-dir-mode", args.host_dir_mode.or(file.host_dir_mode))?,
            admin_listen: parse_admin_listen(args.admin_listen.or(file.admin_listen).as_deref())?,
            grace: std::time::Duration::from_secs(args.grace_seconds.or(file.grace_seconds).unwrap_or(10)),
            trusted_proxies: parse_proxies(args.trusted_proxies.or(file.trusted_proxies).as_deref())?,
            base_path: parse_base_path(args.base_path.or(file.base_path).as_deref())?,
            log_json: match args.log_format.or(file.log_format).as_deref().map(str::trim) {
                None | Some("text") => false,
                Some("json") => true,
                Some(other) => return Err(format!("--log-format must be `text` or `json`, not `{other}`")),
            },
            access_log: args.access_log.or(file.access_log).unwrap_or(false),
        })
        .and_then(Settings::check)
    }

    fn check(self) -> Result<Settings, String> {
        if self.ftps_required && self.tls.is_none() {
            return Err("--ftps-required needs a certificate (--tls-cert and --tls-key)".into());
        }
        Ok(self)
    }

    pub fn model_config(&self) -> dav_model::Config {
        dav_model::Config {
            durability: self.durability,
            quota_bytes: self.quota_bytes,
            max_upload_bytes: self.max_upload_bytes,
            host_owner: self.host_uid,
            host_group: self.host_gid,
            host_file_mode: self.host_file_mode,
            host_dir_mode: self.host_dir_mode,
            inline_max: self.inline_max_bytes,
            content_cache_bytes: self.content_cache_bytes,
            archive_limits: self.archive_limits,
            s3: self.s3.clone(),
            database: self.database.clone(),
            ..dav_model::Config::default()
        }
    }
}

/// `--database`: a PostgreSQL URL, or nothing (SQLite in the data directory).
pub fn parse_database(value: Option<String>) -> Result<Option<String>, String> {
    match value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty() && v != "sqlite") {
        None => Ok(None),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Ok(Some(url)),
        // Not echoed: a mistyped URL may still hold a password.
        Some(_) => Err("--database takes a postgres:// URL (leave it out for SQLite in the data directory)".into()),
    }
}

/// `--blobs s3://BUCKET/PREFIX` and the S3 settings that go with it.
fn parse_s3(
    blobs: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    virtual_hosted: Option<bool>,
    grace_seconds: Option<u64>,
) -> Result<Option<wharf_backends::S3Options>, String> {
    let Some(url) = blobs.filter(|b| !b.trim().is_empty() && b.trim() != "local") else {
        if endpoint.is_some() || region.is_some() {
            return Err("--s3-endpoint and --s3-region need --blobs s3://BUCKET/PREFIX".into());
        }
        return Ok(None);
    };
    let mut options = wharf_backends::S3Options::from_url(url.trim())
        .ok_or_else(|| format!("--blobs: `{url}` is not s3://BUCKET or s3://BUCKET/PREFIX"))?;
    options.endpoint = endpoint.filter(|e| !e.trim().is_empty());
    options.region = region.filter(|r| !r.trim().is_empty());
    options.virtual_hosted = virtual_hosted;
    if let Some(seconds) = grace_seconds {
        options.grace = std::time::Duration::from_secs(seconds);
    }
    Ok(Some(options))
}

fn parse_ftp_listen(value: Option<&str>) -> Result<Option<SocketAddr>, String> {
    match value.map(str::trim) {
        None => Ok(Some(SocketAddr::from(([127, 0, 0, 1], 2121)))),
        Some("off" | "none" | "false" | "") => Ok(None),
        Some(addr) => {
            addr.parse().map(Some).map_err(|_| format!("--ftp-listen: `{addr}` is not ADDRESS:PORT or `off`"))
        }
    }
}

/// The operations listener: loopback by default, since `/metrics` tells anyone who can reach it
/// how busy the server is.
pub const DEFAULT_ADMIN_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8081);

pub fn parse_admin_listen(value: Option<&str>) -> Result<Option<SocketAddr>, String> {
    match value.map(str::trim) {
        None => Ok(Some(DEFAULT_ADMIN_LISTEN)),
        Some("off" | "none" | "false" | "") => Ok(None),
        Some(addr) => {
            addr.parse().map(Some).map_err(|_| format!("--admin-listen: `{addr}` is not ADDRESS:PORT or `off`"))
        }
    }
}

/// `10.0.0.0/8, 192.0.2.7`: ranges, or single addresses meaning themselves alone.
fn parse_proxies(value: Option<&str>) -> Result<Vec<ipnet::IpNet>, String> {
    let Some(value) = value else { return Ok(Vec::new()) };
    let mut nets = Vec::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let net = match item.parse::<ipnet::IpNet>() {
            Ok(net) => net,
            Err(_) => item
                .parse::<std::net::IpAddr>()
                .map(ipnet::IpNet::from)
                .map_err(|_| format!("--trusted-proxies: `{item}` is not an address or CIDR range"))?,
        };
        nets.push(net);
    }
    Ok(nets)
}

/// `/dav`, `dav/` and `/dav/` all mean `/dav`; `/` means no prefix. Only plain names: the
/// prefix is compared with request paths byte for byte, before percent-decoding.
fn parse_base_path(value: Option<&str>) -> Result<String, String> {
    let Some(value) = value else { return Ok(String::new()) };
    let trimmed = value.trim().trim_matches('/');
    let plain = |seg: &str| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
    };
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if !trimmed.split('/').all(plain) {
        return Err(format!("--base-path: `{value}` must be plain path segments such as /dav"));
    }
    Ok(format!("/{trimmed}"))
}

/// Passive ports: the IANA dynamic range unless configured (`50000-50100`, say).
fn parse_port_range(value: Option<&str>) -> Result<RangeInclusive<u16>, String> {
    let Some(value) = value else { return Ok(49152..=65535) };
    let bad = || format!("--ftp-passive-ports: `{value}` is not FIRST-LAST (ports 1-65535, FIRST <= LAST)");
    let (first, last) = value.trim().split_once('-').ok_or_else(bad)?;
    let first: u16 = first.trim().parse().map_err(|_| bad())?;
    let last: u16 = last.trim().parse().map_err(|_| bad())?;
    if first == 0 || first > last {
        return Err(bad());
    }
    Ok(first..=last)
}

/// Permission bits in octal (`640`, `0750`), at most `7777`.
fn parse_mode(flag: &str, value: Option<String>) -> Result<Option<u32>, String> {
    let Some(value) = value else { return Ok(None) };
    match u32::from_str_radix(value.trim(), 8) {
        Ok(mode) if mode <= 0o7777 => Ok(Some(mode)),
        _ => Err(format!("{flag}: `{value}` is not octal permission bits such as 640")),
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
    fn blobs_take_an_s3_url_with_its_settings() {
        let args = ServeArgs {
            blobs: Some("s3://bucket/some/prefix/".into()),
            s3_endpoint: Some("http://127.0.0.1:9000".into()),
            s3_grace_seconds: Some(5),
            ..Default::default()
        };
        let s3 = Settings::resolve(args).unwrap().s3.unwrap();
        assert_eq!((s3.bucket.as_str(), s3.prefix.as_str()), ("bucket", "some/prefix"));
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(s3.grace, std::time::Duration::from_secs(5));
        assert!(Settings::resolve(ServeArgs::default()).unwrap().s3.is_none());
        let bad = ServeArgs { blobs: Some("/srv/blobs".into()), ..Default::default() };
        assert!(Settings::resolve(bad).is_err());
        let orphan = ServeArgs { s3_endpoint: Some("http://x".into()), ..Default::default() };
        assert!(Settings::resolve(orphan).is_err(), "an endpoint without --blobs is a mistake");
    }

    #[test]
    fn ftp_listens_on_2121_unless_turned_off() {
        let s = Settings::resolve(ServeArgs::default()).unwrap();
        assert_eq!(s.ftp_listen, Some(SocketAddr::from(([127, 0, 0, 1], 2121))));
        let off = ServeArgs { ftp_listen: Some("off".into()), ..Default::default() };
        assert_eq!(Settings::resolve(off).unwrap().ftp_listen, None);
    }

    #[test]
    fn passive_port_range_is_first_dash_last() {
        assert_eq!(parse_port_range(Some("50000-50100")).unwrap(), 50000..=50100);
        assert!(parse_port_range(Some("50100-50000")).is_err());
        assert!(parse_port_range(Some("50000")).is_err());
    }

    #[test]
    fn host_modes_are_octal() {
        assert_eq!(parse_mode("m", Some("640".into())).unwrap(), Some(0o640));
        assert_eq!(parse_mode("m", Some("0750".into())).unwrap(), Some(0o750));
        assert!(parse_mode("m", Some("rw-r".into())).is_err());
        assert!(parse_mode("m", Some("17777".into())).is_err());
    }

    #[test]
    fn trusted_proxies_are_ranges_or_single_addresses() {
        let nets = parse_proxies(Some("10.0.0.0/8, 192.0.2.7,::1")).unwrap();
        assert_eq!(nets.len(), 3);
        assert!(nets[0].contains(&"10.1.2.3".parse::<std::net::IpAddr>().unwrap()));
        assert!(!nets[1].contains(&"192.0.2.8".parse::<std::net::IpAddr>().unwrap()));
        assert!(parse_proxies(Some("proxy.local")).is_err());
    }

    #[test]
    fn base_path_is_normalised_to_a_leading_slash() {
        assert_eq!(parse_base_path(Some("dav/")).unwrap(), "/dav");
        assert_eq!(parse_base_path(Some("/a/b")).unwrap(), "/a/b");
        assert_eq!(parse_base_path(Some("/")).unwrap(), "");
        assert!(parse_base_path(Some("/a/../b")).is_err());
        assert!(parse_base_path(Some("/a b")).is_err());
    }

    #[test]
    fn the_admin_listener_is_on_loopback_unless_turned_off() {
        let s = Settings::resolve(ServeArgs::default()).unwrap();
        assert_eq!(s.admin_listen, Some(DEFAULT_ADMIN_LISTEN));
        let off = ServeArgs { admin_listen: Some("off".into()), ..Default::default() };
        assert_eq!(Settings::resolve(off).unwrap().admin_listen, None);
    }

    #[test]
    fn ftps_required_without_a_certificate_is_an_error() {
        let args = ServeArgs { ftps_required: Some(true), ..Default::default() };
        assert!(Settings::resolve(args).is_err());
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

//! The process's metrics, named after Prometheus' conventions: one prefix (`wharf_`), base
//! units (`_seconds`, `_bytes`), counters ending in `_total`. Every label has a small fixed set
//! of values — never a user name or a path, which would make one series per user or per file
//! and let clients grow the scrape without bound.
//!
//! Requests, bytes and connections are counted as they happen, by the HTTP layer (`http.rs`)
//! and the FTP front end, into one process-wide [`Metrics`] (the accept loops, the router and
//! FTP sessions are built in different places; passing a handle through all of them would
//! buy nothing). What the model knows — locks, stored bytes, logins, garbage collection — is
//! read from it at each scrape ([`Figures`]), so no number is kept twice.

use std::collections::HashMap;
use std::fmt::Write;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{LazyLock, RwLock};
use std::time::Duration;

use dav_model::{ArchiveStats, GcStats, LoginStats, Stats};
use prometheus_client::encoding::{text, EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The media type of what [`Metrics::encode`] writes (Prometheus asks for it by name).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Request durations, in seconds: from a cached `GET` (under a millisecond) to uploads of
/// several gigabytes.
const DURATION_BUCKETS: [f64; 15] =
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Protocol {
    Webdav,
    Ftp,
}

impl EncodeLabelValue for Protocol {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(match self {
            Protocol::Webdav => "webdav",
            Protocol::Ftp => "ftp",
        })
    }
}

/// How a request ended: an HTTP status code, or whether an FTP command succeeded.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Status {
    Http(u16),
    Ok,
    Error,
}

impl EncodeLabelValue for Status {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        match self {
            Status::Http(code) => write!(encoder, "{code}"),
            Status::Ok => encoder.write_str("ok"),
            Status::Error => encoder.write_str("error"),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    protocol: Protocol,
    /// From a fixed list (see `http.rs` and `ftp/observe.rs`), never the client's own word.
    method: &'static str,
    status: Status,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    protocol: Protocol,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabels {
    protocol: Protocol,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabels {
    scope: &'static str,
}

/// Everything counted as it happens.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<MethodLabels, Histogram>,
    /// The series of each protocol, indexed by [`Protocol`]: the families' own lookups
    /// hash the label set under a lock, once per body chunk.
    received: [Counter; 2],
    sent: [Counter; 2],
    /// Of `sent`, the bytes `sendfile` took from the page cache (`zero_copy.rs`).
    sendfile: Counter,
    /// The request series already made. A family's lookup hashes the method's text with
    /// SipHash under its lock: a tenth of the instructions a small GET costs beyond the
    /// handler. The keys are the method's address and the status, so this hash is a
    /// multiply; there are at most a few hundred of them (methods and statuses are fixed
    /// sets, see [`RequestLabels`]).
    series: RwLock<HashMap<SeriesKey, (Counter, Histogram), BuildHasherDefault<KeyHasher>>>,
    http_connections: Gauge,
    ftp_sessions: Gauge,
    ftp_transfers: Gauge,
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

impl Metrics {
    fn new() -> Metrics {
        let histogram: fn() -> Histogram = || Histogram::new(DURATION_BUCKETS);
        let (requests, durations) = (Family::default(), Family::new_with_constructor(histogram));
        let (received, sent) = (Family::<ProtocolLabels, Counter>::default(), Family::default());
        let (http_connections, ftp_sessions, ftp_transfers) = (Gauge::default(), Gauge::default(), Gauge::default());
        let mut r = Registry::with_prefix("wharf");
        r.register("requests", "Requests answered, by protocol, method and outcome", requests.clone());
        r.register("request_duration_seconds", "Time from request to the end of its answer", durations.clone());
        r.register("received_bytes", "Bytes of request bodies and FTP uploads received", received.clone());
        r.register("sent_bytes", "Bytes of response bodies and FTP downloads sent", sent.clone());
        let sendfile = Counter::default();
        r.register("sendfile_bytes", "Bytes of response bodies sent from the page cache by sendfile", sendfile.clone());
        r.register("http_open_connections", "HTTP connections open now", http_connections.clone());
        r.register("ftp_open_sessions", "FTP control connections open now", ftp_sessions.clone());
        r.register("ftp_active_transfers", "FTP uploads and downloads in progress", ftp_transfers.clone());
        let by_protocol = |f: &Family<ProtocolLabels, Counter>| {
            [Protocol::Webdav, Protocol::Ftp].map(|protocol| f.get_or_create(&ProtocolLabels { protocol }).clone())
        };
        Metrics {
            registry: r,
            requests,
            durations,
            received: by_protocol(&received),
            sent: by_protocol(&sent),
            sendfile,
            series: RwLock::default(),
            http_connections,
            ftp_sessions,
            ftp_transfers,
        }
    }

    /// One request answered, `elapsed` after it arrived.
    pub fn request(&self, protocol: Protocol, method: &'static str, status: Status, elapsed: Duration) {
        let key = SeriesKey { protocol, method: (method.as_ptr() as usize, method.len()), status };
        let known = self.series.read().ok().and_then(|s| s.get(&key).cloned());
        let (count, duration) = known.unwrap_or_else(|| {
            let made = (
                self.requests.get_or_create(&RequestLabels { protocol, method, status }).clone(),
                self.durations.get_or_create(&MethodLabels { protocol, method }).clone(),
            );
            if let Ok(mut s) = self.series.write() {
                s.insert(key, made.clone());
            }
            made
        });
        count.inc();
        duration.observe(elapsed.as_secs_f64());
    }

    pub fn received(&self, protocol: Protocol, bytes: u64) {
        self.received[protocol as usize].inc_by(bytes);
    }

    pub fn sent(&self, protocol: Protocol, bytes: u64) {
        self.sent[protocol as usize].inc_by(bytes);
    }

    pub fn sent_from_page_cache(&self, bytes: u64) {
        self.sendfile.inc_by(bytes);
    }

    /// Counts an open HTTP connection until the returned guard is dropped.
    pub fn http_connection(&'static self) -> Open {
        Open::new(&self.http_connections)
    }

    /// Counts an open FTP session until the returned guard is dropped.
    pub fn ftp_session(&'static self) -> Open {
        Open::new(&self.ftp_sessions)
    }

    /// Counts an FTP transfer in progress until the returned guard is dropped.
    pub fn ftp_transfer(&'static self) -> Open {
        Open::new(&self.ftp_transfers)
    }

    /// The whole exposition: what was counted, then the model's figures, then `# EOF`.
    pub fn encode(&self, figures: &Figures) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        text::encode_registry(&mut out, &self.registry)?;
        text::encode_registry(&mut out, &figures.registry())?;
        text::encode_eof(&mut out)?;
        Ok(out)
    }
}

/// A request series in [`Metrics::series`]. Two equal method texts at different addresses
/// are two keys for the same series, which is harmless.
#[derive(Clone, Copy, Hash, PartialEq, Eq)]
struct SeriesKey {
    protocol: Protocol,
    /// The text's address and length.
    method: (usize, usize),
    status: Status,
}

/// Folds the few integers of a [`SeriesKey`] with a multiply per word; no client chooses them.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(n.into());
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(n.into());
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(n.into());
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_isize(&mut self, n: isize) {
        self.write_u64(n as u64);
    }
}

/// A gauge raised while this lives.
pub struct Open(&'static Gauge);

impl Open {
    fn new(gauge: &'static Gauge) -> Open {
        gauge.inc();
        Open(gauge)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What the model reports at a scrape. `stats` is `None` when the database could not be read:
/// its figures are then left out rather than shown as zero.
pub struct Figures {
    pub stats: Option<Stats>,
    pub gc: GcStats,
    pub logins: LoginStats,
    pub archives: ArchiveStats,
}

impl Figures {
    /// A registry made for this scrape alone, its counters set to the model's running totals.
    fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("wharf");
        if let Some(s) = &self.stats {
            r.register("locks_held", "WebDAV locks not yet expired", gauge(s.locks));
            r.register(
                "stored_bytes",
                "Bytes the files of the store hold (copies counted each)",
                gauge(s.stored_bytes),
            );
            r.register("stored_blobs", "Distinct contents (blobs) the store holds", gauge(s.blobs));
        }
        r.register("gc_runs", "Garbage collections run", counter(self.gc.runs));
        r.register("gc_removed_blobs", "Blobs removed by garbage collection", counter(self.gc.blobs_removed));
        r.register("gc_removed_bytes", "Bytes freed by garbage collection", counter(self.gc.bytes_removed));
        r.register("archive_indexes_built", "Archive indexes made by reading an archive", counter(self.archives.built));
        r.register(
            "archive_indexes_loaded",
            "Archive indexes read back from the database",
            counter(self.archives.loaded),
        );
        let l = &self.logins;
        let logins = Family::<ResultLabels, Counter>::default();
        for (result, n) in [("ok", l.ok), ("failed", l.failed), ("locked_out", l.locked_out), ("error", l.unavailable)]
        {
            logins.get_or_create(&ResultLabels { result }).inc_by(n);
        }
        r.register("logins", "Login checks by outcome (WebDAV checks every request's credentials)", logins);
        let lockouts = Family::<ScopeLabels, Counter>::default();
        lockouts.get_or_create(&ScopeLabels { scope: "user" }).inc_by(l.user_lockouts);
        lockouts.get_or_create(&ScopeLabels { scope: "address" }).inc_by(l.address_lockouts);
        r.register("lockouts", "Times a user name or a client address was locked out", lockouts);
        r
    }
}

fn gauge(value: u64) -> Gauge {
    let g = Gauge::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    g
}

fn counter(value: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(value);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures() -> Figures {
        let stats = Stats { locks: 2, stored_bytes: 1234, blobs: 3, gc: GcStats::default() };
        let gc = GcStats { runs: 4, blobs_removed: 5, bytes_removed: 6 };
        let logins =
            LoginStats { ok: 7, failed: 8, locked_out: 9, unavailable: 0, user_lockouts: 1, address_lockouts: 0 };
        Figures { stats: Some(stats), gc, logins, archives: ArchiveStats { built: 7, loaded: 8 } }
    }

    #[test]
    fn the_exposition_carries_counted_and_model_figures_and_ends_with_eof() {
        let m = Metrics::new();
        m.request(Protocol::Webdav, "PUT", Status::Http(201), Duration::from_millis(3));
        m.request(Protocol::Ftp, "STOR", Status::Ok, Duration::from_millis(3));
        m.received(Protocol::Ftp, 10);
        let out = m.encode(&figures()).unwrap();
        for line in [
            "wharf_requests_total{protocol=\"webdav\",method=\"PUT\",status=\"201\"} 1",
            "wharf_requests_total{protocol=\"ftp\",method=\"STOR\",status=\"ok\"} 1",
            "wharf_request_duration_seconds_bucket{le=\"0.005\",protocol=\"ftp\",method=\"STOR\"} 1",
            "wharf_received_bytes_total{protocol=\"ftp\"} 10",
            "wharf_locks_held 2",
            "wharf_stored_bytes 1234",
            "wharf_gc_removed_bytes_total 6",
            "wharf_archive_indexes_built_total 7",
            "wharf_logins_total{result=\"locked_out\"} 9",
            "wharf_lockouts_total{scope=\"user\"} 1",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} missing from\n{out}");
        }
        assert!(out.ends_with("# EOF\n"));
    }

    #[test]
    fn repeated_requests_count_into_one_series() {
        let m = Metrics::new();
        for _ in 0..3 {
            m.request(Protocol::Webdav, "GET", Status::Http(200), Duration::from_millis(1));
        }
        m.request(Protocol::Webdav, "GET", Status::Http(404), Duration::from_millis(1));
        // The same text at another address: the same series.
        let other: &'static str = String::from("GET").leak();
        m.request(Protocol::Webdav, other, Status::Http(200), Duration::from_millis(1));
        let out = m.encode(&figures()).unwrap();
        assert!(out.contains("wharf_requests_total{protocol=\"webdav\",method=\"GET\",status=\"200\"} 4\n"), "{out}");
        assert!(out.contains("wharf_requests_total{protocol=\"webdav\",method=\"GET\",status=\"404\"} 1\n"), "{out}");
        assert!(out.contains("wharf_request_duration_seconds_count{protocol=\"webdav\",method=\"GET\"} 5\n"), "{out}");
    }

    #[test]
    fn figures_the_database_could_not_give_are_left_out() {
        let out = Metrics::new().encode(&Figures { stats: None, ..figures() }).unwrap();
        assert!(!out.contains("wharf_stored_bytes"));
        assert!(out.contains("wharf_gc_runs_total 4"));
    }

    #[test]
    fn open_guards_count_while_they_live() {
        let before = global().ftp_sessions.get();
        let guard = global().ftp_session();
        assert_eq!(global().ftp_sessions.get(), before + 1);
        drop(guard);
        assert_eq!(global().ftp_sessions.get(), before);
    }
}

//! Brute-force protection shared by every protocol: counting failed logins per user name
//! and per source address, slowing repeated failures down, and locking a user or an
//! address out for a while once it has failed too often.
//!
//! Both counters matter: per user, so a distributed guesser cannot hammer one account; per
//! address, so one client cannot sweep many accounts. Checks read memory only; failures
//! are also counted in the database (`failures.rs`), whose records the authenticator
//! brings back here ([`Guard::adopt`]), so that servers sharing a database count and lock
//! out together. Memory is bounded, so a flood of invented user names cannot grow it
//! without limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys kept at most; beyond it, forgotten entries go first, then the least recent.
const CAPACITY: usize = 10_000;
/// The delay before answering the second failure in a row; it doubles from there.
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// Longest delay: long enough to slow guessing, short enough not to look like a hang.
const MAX_DELAY: Duration = Duration::from_secs(2);

/// How strict the guard is. The defaults match the server's: 5 failures of one user name,
/// 50 from one address, 5 minutes.
///
/// The two thresholds differ on purpose: one address may be a whole office behind NAT, or a
/// reverse proxy's view of everyone, where a few colleagues' typos must not lock all out; one
/// user name is one account, where a handful of wrong guesses is already suspicious.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardConfig {
    /// Failures of one user name within `lockout` that lock it out; 0 never locks out.
    pub max_failures: u32,
    /// Failures from one source address within `lockout` that lock it out; 0 never does.
    pub max_address_failures: u32,
    /// How long a lockout lasts, and the window in which failures are counted.
    pub lockout: Duration,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig { max_failures: 5, max_address_failures: 50, lockout: Duration::from_secs(300) }
    }
}

/// Users are keyed by a hash of the name: the name comes from the client and may be
/// long, and the map must stay small however many invented names arrive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User([u8; 32]),
    Source(IpAddr),
}

impl Key {
    fn user(name: &str) -> Key {
        Key::User(*blake3::hash(name.as_bytes()).as_bytes())
    }

    /// How the key is stored in the database: `u:` and the name's hash, `a:` and the address.
    fn text(&self) -> String {
        match self {
            Key::User(hash) => format!("u:{}", blake3::Hash::from_bytes(*hash).to_hex()),
            Key::Source(ip) => format!("a:{ip}"),
        }
    }

    fn parse(text: &str) -> Option<Key> {
        match text.split_once(':')? {
            ("u", hex) => blake3::Hash::from_hex(hex).ok().map(|h| Key::User(*h.as_bytes())),
            ("a", ip) => ip.parse().ok().map(Key::Source),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
    last: Instant,
}

/// Failure counters, locked per user and per source address. Cheap to call on every
/// login attempt: one mutex, two map lookups, no timers.
pub struct Guard {
    config: GuardConfig,
    entries: Mutex<HashMap<Key, Record>>,
    /// Lockouts begun, of user names and of addresses (for monitoring).
    lockouts: [AtomicU64; 2],
}

impl Guard {
    pub fn new(config: GuardConfig) -> Guard {
        Guard { config, entries: Mutex::new(HashMap::new()), lockouts: Default::default() }
    }

    /// How many times a user name, and an address, became locked out since start.
    pub fn lockouts(&self) -> (u64, u64) {
        (self.lockouts[0].load(Ordering::Relaxed), self.lockouts[1].load(Ordering::Relaxed))
    }

    pub fn config(&self) -> GuardConfig {
        self.config
    }

    /// `Err(retry_after)` while `user` or `source` is locked out.
    pub fn check(&self, user: &str, source: IpAddr) -> Result<(), Duration> {
        self.check_at(user, source, Instant::now())
    }

    /// Records a failed login and returns how long to wait before answering it.
    pub fn failure(&self, user: &str, source: IpAddr) -> Duration {
        self.failure_at(user, source, Instant::now())
    }

    /// A successful login clears the user's and the address's counters.
    pub fn success(&self, user: &str, source: IpAddr) {
        let mut entries = self.lock();
        entries.remove(&Key::user(user));
        entries.remove(&Key::Source(source_key(source)));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Record>> {
        // The map stays consistent whatever panicked while holding it: keep using it.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_at(&self, user: &str, source: IpAddr, now: Instant) -> Result<(), Duration> {
        let entries = self.lock();
        // The usual case, and the keys' hashing is most of the cost.
        if entries.is_empty() {
            return Ok(());
        }
        let keys = [Key::user(user), Key::Source(source_key(source))];
        let wait = keys
            .iter()
            .filter_map(|k| entries.get(k)?.locked_until)
            .filter_map(|until| until.checked_duration_since(now).filter(|d| !d.is_zero()))
            .max();
        match wait {
            Some(d) => Err(d),
            None => Ok(()),
        }
    }

    fn failure_at(&self, user: &str, source: IpAddr, now: Instant) -> Duration {
        let mut entries = self.lock();
        let mut user_failures = 0;
        let limits = [self.config.max_failures, self.config.max_address_failures];
        for (key, max) in [Key::user(user), Key::Source(source_key(source))].into_iter().zip(limits) {
            let is_user = matches!(key, Key::User(_));
            let rec =
                entries.entry(key).or_insert(Record { failures: 0, window_start: now, locked_until: None, last: now });
            if self.is_stale(rec, now) {
                *rec = Record { failures: 0, window_start: now, locked_until: None, last: now };
            }
            rec.failures = rec.failures.saturating_add(1);
            rec.last = now;
            if max > 0 && rec.failures >= max && rec.locked_until.is_none() {
                rec.locked_until = Some(now + self.config.lockout);
                self.lockouts[usize::from(!is_user)].fetch_add(1, Ordering::Relaxed);
            }
            if is_user {
                user_failures = rec.failures;
            }
        }
        if entries.len() > CAPACITY {
            self.evict(&mut entries, now);
        }
        // Slowed down per user name only: an address's count would slow every colleague
        // behind the same NAT down for one person's typos.
        backoff(user_failures)
    }

    /// A record that no longer counts: its lockout is over, or (unlocked) its counting
    /// window has passed.
    fn is_stale(&self, rec: &Record, now: Instant) -> bool {
        match rec.locked_until {
            Some(until) => now >= until,
            None => now.saturating_duration_since(rec.window_start) >= self.config.lockout,
        }
    }

    /// Drops stale records, then, if still too many, the least recently failed eighth.
    fn evict(&self, entries: &mut HashMap<Key, Record>, now: Instant) {
        entries.retain(|_, rec| !self.is_stale(rec, now));
        if entries.len() <= CAPACITY {
            return;
        }
        let mut lasts: Vec<Instant> = entries.values().map(|r| r.last).collect();
        let excess = entries.len() - CAPACITY * 7 / 8;
        let (_, cutoff, _) = lasts.select_nth_unstable(excess - 1);
        let cutoff = *cutoff;
        entries.retain(|_, rec| rec.last > cutoff);
    }

    /// The database keys of `user` and `source`, each with the failures that lock it out.
    pub(crate) fn shared_keys(&self, user: &str, source: IpAddr) -> Vec<(String, u32)> {
        let keys = [Key::user(user), Key::Source(source_key(source))];
        let limits = [self.config.max_failures, self.config.max_address_failures];
        keys.iter().map(Key::text).zip(limits).collect()
    }

    /// Whether `user` or `source` has failures or a lockout here, which a success must
    /// then also clear in the database.
    pub(crate) fn knows(&self, user: &str, source: IpAddr) -> bool {
        let entries = self.lock();
        !entries.is_empty()
            && (entries.contains_key(&Key::user(user)) || entries.contains_key(&Key::Source(source_key(source))))
    }

    /// Takes the database's records (every server's failures) as this guard's own; returns
    /// the back-off owed to the largest user-name count among them.
    pub(crate) fn adopt(&self, records: &[super::failures::Failures]) -> Duration {
        let (now, now_ns) = (Instant::now(), crate::now_ns());
        // A wall-clock time of the database as an instant of this process.
        let at = |ns: i64| match u64::try_from(ns.saturating_sub(now_ns)) {
            Ok(ahead) => now + Duration::from_nanos(ahead),
            Err(_) => now.checked_sub(Duration::from_nanos(now_ns.saturating_sub(ns).unsigned_abs())).unwrap_or(now),
        };
        let mut entries = self.lock();
        let mut user_failures = 0;
        for rec in records {
            let Some(key) = Key::parse(&rec.key) else { continue };
            if matches!(key, Key::User(_)) {
                user_failures = user_failures.max(rec.failures);
            }
            let locked_until = rec.locked_until_ns.map(at);
            let window_start = at(rec.window_start_ns);
            entries.insert(key, Record { failures: rec.failures, window_start, locked_until, last: now });
        }
        if entries.len() > CAPACITY {
            self.evict(&mut entries, now);
        }
        backoff(user_failures)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Nothing for a first failure (a typo), then 100 ms doubling up to 2 s.
fn backoff(failures: u32) -> Duration {
    match failures {
        0 | 1 => Duration::ZERO,
        n => FIRST_DELAY.saturating_mul(1 << (n - 2).min(6)).min(MAX_DELAY),
    }
}

/// The address a failure is counted against. An IPv6 client usually owns a whole /64 and
/// can pick any address in it, so IPv6 is counted per /64; IPv4-mapped addresses count as
/// the IPv4 address they are.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn guard(max: u32) -> Guard {
        Guard::new(GuardConfig { max_failures: max, max_address_failures: max, lockout: Duration::from_secs(60) })
    }

    #[test]
    fn a_user_is_locked_out_after_max_failures_from_any_address() {
        let (g, t) = (guard(3), Instant::now());
        g.failure_at("alice", ip("10.0.0.1"), t);
        g.failure_at("alice", ip("10.0.0.2"), t);
        assert!(g.check_at("alice", ip("10.0.0.3"), t).is_ok());
        g.failure_at("alice", ip("10.0.0.3"), t);
        let retry = g.check_at("alice", ip("10.0.0.9"), t + Duration::from_secs(10)).unwrap_err();
        assert_eq!(retry, Duration::from_secs(50));
        assert!(g.check_at("bob", ip("10.0.0.9"), t).is_ok(), "other users and addresses are unaffected");
    }

    #[test]
    fn an_address_is_locked_out_after_max_failures_across_users() {
        let (g, t) = (guard(3), Instant::now());
        for user in ["a", "b", "c"] {
            g.failure_at(user, ip("192.0.2.7"), t);
        }
        assert!(g.check_at("d", ip("192.0.2.7"), t).is_err());
        assert!(g.check_at("d", ip("192.0.2.8"), t).is_ok());
    }

    #[test]
    fn an_address_tolerates_more_failures_than_a_user_name() {
        let g = Guard::new(GuardConfig { max_failures: 2, max_address_failures: 5, lockout: Duration::from_secs(60) });
        let t = Instant::now();
        for user in ["a", "b", "c", "d"] {
            g.failure_at(user, ip("192.0.2.7"), t);
        }
        assert!(g.check_at("e", ip("192.0.2.7"), t).is_ok(), "four colleagues' typos lock nobody out");
        g.failure_at("e", ip("192.0.2.7"), t);
        assert!(g.check_at("f", ip("192.0.2.7"), t).is_err());
    }

    #[test]
    fn the_lockout_lifts_after_the_period_and_counting_starts_again() {
        let (g, t) = (guard(2), Instant::now());
        g.failure_at("u", ip("10.0.0.1"), t);
        g.failure_at("u", ip("10.0.0.1"), t);
        assert!(g.check_at("u", ip("10.0.0.1"), t + Duration::from_secs(59)).is_err());
        let later = t + Duration::from_secs(60);
        assert!(g.check_at("u", ip("10.0.0.1"), later).is_ok());
        assert_eq!(g.failure_at("u", ip("10.0.0.1"), later), Duration::ZERO, "counting restarted");
        assert!(g.check_at("u", ip("10.0.0.1"), later).is_ok());
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let (g, t) = (guard(2), Instant::now());
        g.failure_at("u", ip("10.0.0.1"), t);
        g.failure_at("u", ip("10.0.0.1"), t + Duration::from_secs(61));
        assert!(g.check_at("u", ip("10.0.0.1"), t + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn success_clears_the_user_and_the_address() {
        let (g, t) = (guard(3), Instant::now());
        g.failure_at("u", ip("10.0.0.1"), t);
        g.failure_at("u", ip("10.0.0.1"), t);
        g.success("u", ip("10.0.0.1"));
        g.failure_at("u", ip("10.0.0.1"), t);
        g.failure_at("u", ip("10.0.0.1"), t);
        assert!(g.check_at("u", ip("10.0.0.1"), t).is_ok());
    }

    #[test]
    fn the_delay_doubles_from_100ms_to_2s() {
        let (g, t) = (guard(0), Instant::now());
        let delays: Vec<u128> = (0..8).map(|_| g.failure_at("u", ip("10.0.0.1"), t).as_millis()).collect();
        assert_eq!(delays, [0, 100, 200, 400, 800, 1600, 2000, 2000]);
        assert!(g.check_at("u", ip("10.0.0.1"), t).is_ok(), "max_failures 0 never locks out");
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let (g, t) = (guard(2), Instant::now());
        g.failure_at("a", ip("2001:db8::1"), t);
        g.failure_at("b", ip("2001:db8::ffff:2"), t);
        assert!(g.check_at("c", ip("2001:db8::3"), t).is_err());
        assert!(g.check_at("c", ip("2001:db8:0:1::3"), t).is_ok());
        g.failure_at("a", ip("::ffff:10.1.1.1"), t);
        g.failure_at("b", ip("10.1.1.1"), t);
        assert!(g.check_at("c", ip("10.1.1.1"), t).is_err());
    }

    #[test]
    fn the_map_stays_bounded_under_a_flood_of_names() {
        let (g, t) = (guard(1_000), Instant::now());
        for n in 0..(CAPACITY as u64 + 500) {
            let source = IpAddr::V4((n as u32).into());
            g.failure_at(&format!("user{n}"), source, t + Duration::from_millis(n));
        }
        assert!(g.len() <= CAPACITY, "{}", g.len());
        // The most recent failures are the ones kept.
        let last = CAPACITY as u64 + 499;
        let recent = t + Duration::from_millis(last);
        assert_eq!(g.failure_at(&format!("user{last}"), IpAddr::V4((last as u32).into()), recent), FIRST_DELAY);
    }
}

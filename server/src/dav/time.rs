//! Date formats WebDAV uses: RFC 1123 (HTTP-date) for getlastmodified and headers,
//! RFC 3339 for creationdate.

use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn system_time(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH
    }
}

pub fn http_date(ns: i64) -> String {
    httpdate::fmt_http_date(system_time(ns))
}

/// [`http_date`] appended to `out` without an intermediate allocation.
pub fn write_http_date(out: &mut String, ns: i64) {
    let _ = write!(out, "{}", httpdate::HttpDate::from(system_time(ns)));
}

/// Parses an HTTP-date into seconds since the epoch; garbage yields `None` (RFC 9110 says
/// an invalid date in a conditional header is ignored).
pub fn parse_http_date(s: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64)
}

/// `YYYY-MM-DDThh:mm:ssZ` for a time in nanoseconds since the epoch, appended to `out`.
pub fn write_rfc3339(out: &mut String, ns: i64) {
    let secs = ns.div_euclid(1_000_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let _ = write!(out, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60);
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_a_known_instant() {
        let mut s = String::new();
        write_rfc3339(&mut s, 1_700_000_000 * 1_000_000_000);
        assert_eq!(s, "2023-11-14T22:13:20Z");
        s.clear();
        write_rfc3339(&mut s, 0);
        assert_eq!(s, "1970-01-01T00:00:00Z");
    }

    #[test]
    fn http_date_round_trips_to_seconds() {
        let s = http_date(1_700_000_000 * 1_000_000_000);
        assert_eq!(s, "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(parse_http_date(&s), Some(1_700_000_000));
    }
}

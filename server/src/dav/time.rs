//! Date formats WebDAV uses: RFC 1123 (HTTP-date) for getlastmodified and headers,
//! RFC 3339 for creationdate.

use std::fmt::Write;
use std::time::UNIX_EPOCH;

/// `Sun, 06 Nov 1994 08:49:37 GMT` for a time in nanoseconds since the epoch (times
/// before it read as the epoch). Written by hand: every GET's `Last-Modified` and every
/// member of a PROPFIND carries one, and formatting machinery cost several times this.
pub fn http_date_bytes(ns: i64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    let secs = ns.max(0) / 1_000_000_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    two_digits(&mut out[5..7], i64::from(d));
    out[8..11].copy_from_slice(MONTHS[m as usize - 1]);
    two_digits(&mut out[12..14], y / 100);
    two_digits(&mut out[14..16], y % 100);
    two_digits(&mut out[17..19], rem / 3600);
    two_digits(&mut out[20..22], rem % 3600 / 60);
    two_digits(&mut out[23..25], rem % 60);
    out
}

fn two_digits(out: &mut [u8], n: i64) {
    out[0] = b'0' + (n / 10 % 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

/// [`http_date_bytes`] appended to `out`.
pub fn write_http_date(out: &mut String, ns: i64) {
    // Only ASCII digits and names are ever written.
    out.push_str(std::str::from_utf8(&http_date_bytes(ns)).unwrap_or_default());
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
    if !(0..=9999).contains(&y) {
        let _ = write!(out, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60);
        return;
    }
    // By hand, as `http_date_bytes`: a PROPFIND writes one per member.
    let mut b = *b"0000-00-00T00:00:00Z";
    two_digits(&mut b[0..2], y / 100);
    two_digits(&mut b[2..4], y % 100);
    two_digits(&mut b[5..7], i64::from(m));
    two_digits(&mut b[8..10], i64::from(d));
    two_digits(&mut b[11..13], rem / 3600);
    two_digits(&mut b[14..16], rem % 3600 / 60);
    two_digits(&mut b[17..19], rem % 60);
    out.push_str(std::str::from_utf8(&b).unwrap_or_default());
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
    use std::time::{Duration, SystemTime};

    fn http_date(ns: i64) -> String {
        let mut s = String::new();
        write_http_date(&mut s, ns);
        s
    }

    fn system_time(ns: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64)
    }

    #[test]
    fn http_dates_match_httpdate_across_the_calendar() {
        let mut secs: i64 = 0;
        while secs < 7_000_000_000 {
            let ns = secs * 1_000_000_000 + 999_999_999;
            assert_eq!(http_date(ns), httpdate::fmt_http_date(system_time(ns)), "at {secs}");
            secs += 86_399 * 13 + 7;
        }
        assert_eq!(http_date(-5), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_111_777 * 1_000_000_000), "Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn rfc3339_dates_match_the_formatted_ones_across_the_calendar() {
        let mut secs: i64 = -86_400 * 400;
        while secs < 7_000_000_000 {
            let mut s = String::new();
            write_rfc3339(&mut s, secs * 1_000_000_000);
            let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
            let (y, m, d) = civil_from_days(days);
            let expected = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60);
            assert_eq!(s, expected, "at {secs}");
            secs += 86_399 * 11 + 13;
        }
    }

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

//! Times that clients set: which properties carry a modification or creation time, and
//! how their values parse.
//!
//! Clients have no standard way to set a file's times over WebDAV, so each brought its
//! own: Windows Explorer PROPPATCHes `Win32*Time` properties, Cyberduck a `lastmodified`
//! dead property, WinSCP `DAV:getlastmodified`, GVfs and ownCloud clients send a header
//! with PUT. The table lives here, in the model, so every adapter (and a later FTP `MFMT`)
//! gives the same property the same meaning.
//!
//! Times are stored as nanoseconds since the epoch in an `i64`, which spans 1970 to 2262;
//! a valid date outside that range is clamped to its nearest end rather than refused
//! (Windows sends 1601 for files that never had a time, and must not fail a copy).

use crate::props::PropName;

/// Windows Explorer's namespace for its file-time and attribute properties ([MS-WDV]).
pub const MS_NS: &str = "urn:schemas-microsoft-com:";
/// The "custom" namespace of the Sardine library, in which Cyberduck sets `lastmodified`.
pub const SARDINE_NS: &str = "SAR:";

/// Which time of the resource a property sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeField {
    Modified,
    Created,
    /// Checked (a bad value fails the PROPPATCH) but not kept: Wharf has no access time.
    Accessed,
}

/// How a time property's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// IMF-fixdate, the RFC 1123 form HTTP uses: `Sun, 06 Nov 1994 08:49:37 GMT`.
    HttpDate,
    /// RFC 3339, as `DAV:creationdate` is written: `1994-11-06T08:49:37Z`.
    Rfc3339,
}

/// A property whose value a client uses to set one of the resource's times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeProp {
    pub field: TimeField,
    pub format: TimeFormat,
    /// Also kept as a dead property. The DAV: ones are not: their live value shows it.
    pub dead: bool,
}

/// The time a property sets, if it is one of the time properties clients use.
pub fn time_prop(name: &PropName) -> Option<TimeProp> {
    use TimeField::*;
    use TimeFormat::*;
    let (field, format, dead) = match (name.ns.as_str(), name.local.as_str()) {
        (MS_NS, "Win32LastModifiedTime") => (Modified, HttpDate, true),
        (MS_NS, "Win32CreationTime") => (Created, HttpDate, true),
        (MS_NS, "Win32LastAccessTime") => (Accessed, HttpDate, true),
        (SARDINE_NS, "lastmodified") => (Modified, HttpDate, true),
        ("DAV:", "getlastmodified") => (Modified, HttpDate, false),
        ("DAV:", "creationdate") => (Created, Rfc3339, false),
        _ => return None,
    };
    Some(TimeProp { field, format, dead })
}

impl TimeProp {
    /// The value as nanoseconds since the epoch; `None` when it isn't a date of this format.
    pub fn parse(&self, text: &str) -> Option<i64> {
        match self.format {
            TimeFormat::HttpDate => parse_http_date(text),
            TimeFormat::Rfc3339 => parse_rfc3339(text),
        }
    }
}

/// Latest second an `i64` of nanoseconds can hold (2262-04-11T23:47:16Z).
const MAX_SECS: i64 = i64::MAX / 1_000_000_000;

/// Seconds (and nanoseconds within them) to stored nanoseconds, clamped to what is stored.
fn to_ns(secs: i64, nanos: u32) -> i64 {
    if secs < 0 {
        0
    } else if secs >= MAX_SECS {
        MAX_SECS * 1_000_000_000
    } else {
        secs * 1_000_000_000 + i64::from(nanos)
    }
}

/// Parses `X-OC-Mtime` (the ownCloud convention GVfs follows): whole seconds since the
/// epoch, optionally with a fraction. Anything else is `None`.
pub fn parse_unix_seconds(s: &str) -> Option<i64> {
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs = whole.parse::<i64>().unwrap_or(MAX_SECS);
    Some(to_ns(secs, nanos_of(frac)))
}

/// The nanoseconds a decimal fraction's digits stand for (beyond nine digits ignored).
fn nanos_of(digits: &str) -> u32 {
    let mut n = 0u32;
    for (i, b) in digits.bytes().take(9).enumerate() {
        n += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
    }
    n
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into nanoseconds since the
/// epoch. The weekday must be a day name but need not match the date; `UTC` is accepted
/// for `GMT`. Years before 1970 are valid and clamp to the epoch.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let (wday, rest) = s.split_once(", ")?;
    if !DAYS.contains(&wday) {
        return None;
    }
    let mut parts = rest.split(' ');
    let (day, mon, year, time, zone) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !matches!(zone, "GMT" | "UTC") || day.len() != 2 || year.len() != 4 {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == mon)? as u32 + 1;
    let (h, m, sec) = clock(time)?;
    let days = days_from_civil(number(year)?, month, number(day)? as u32)?;
    Some(to_ns(days * 86_400 + h * 3600 + m * 60 + sec, 0))
}

/// Parses an RFC 3339 date-time (`1994-11-06T08:49:37Z`, `…37.5+01:00`) into nanoseconds
/// since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let date = s.get(..10)?;
    let sep = s.get(10..11)?;
    if !matches!(sep, "T" | "t" | " ") || date.as_bytes()[4] != b'-' || date.as_bytes()[7] != b'-' {
        return None;
    }
    let (year, month, day) = (number(&date[..4])?, number(&date[5..7])?, number(&date[8..10])?);
    let rest = &s[11..];
    let (h, m, sec) = clock(rest.get(..8)?)?;
    let rest = &rest[8..];
    let zone_at = rest.find(['Z', 'z', '+', '-'])?;
    let (frac, zone) = rest.split_at(zone_at);
    let nanos = match frac.strip_prefix('.') {
        Some(d) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => nanos_of(d),
        None if frac.is_empty() => 0,
        _ => return None,
    };
    let offset = zone_offset(zone)?;
    let days = days_from_civil(year, month as u32, day as u32)?;
    Some(to_ns(days * 86_400 + h * 3600 + m * 60 + sec - offset, nanos))
}

/// `Z` or `±hh:mm` as seconds east of UTC.
fn zone_offset(zone: &str) -> Option<i64> {
    if zone.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = match zone.get(..1)? {
        "+" => 1,
        "-" => -1,
        _ => return None,
    };
    let (h, m) = zone[1..].split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m) = (number(h)?, number(m)?);
    (h < 24 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

/// `hh:mm:ss` as (hours, minutes, seconds); a leap second (`:60`) counts as `:59`.
fn clock(s: &str) -> Option<(i64, i64, i64)> {
    let b = s.as_bytes();
    if s.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, sec) = (number(&s[..2])?, number(&s[3..5])?, number(&s[6..8])?);
    (h < 24 && m < 60 && sec <= 60).then_some((h, m, sec.min(59)))
}

/// A run of ASCII digits (no sign, no spaces) as a number.
fn number(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm);
/// `None` for a day the month doesn't have.
fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&m) || d == 0 || d > month_days[m as usize - 1] {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn http_dates_parse() {
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777 * S));
        assert_eq!(parse_http_date(" Thu, 26 Nov 2026 05:56:29 GMT "), Some(1_795_672_589 * S));
        assert_eq!(parse_http_date("Tue, 14 Nov 2023 22:13:20 UTC"), Some(1_700_000_000 * S));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
    }

    #[test]
    fn http_dates_out_of_range_clamp() {
        assert_eq!(parse_http_date("Mon, 01 Jan 1601 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"), Some(MAX_SECS * S));
    }

    #[test]
    fn bad_http_dates_are_refused() {
        for s in [
            "",
            "yesterday",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "Sun, 06 Nov 1994 08:4:37 GMT",
            "Sun, 06 Nov +994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(s), None, "{s:?}");
        }
    }

    #[test]
    fn rfc3339_dates_parse() {
        assert_eq!(parse_rfc3339("1994-11-06T08:49:37Z"), Some(784_111_777 * S));
        assert_eq!(parse_rfc3339("1994-11-06t08:49:37.25z"), Some(784_111_777 * S + S / 4));
        assert_eq!(parse_rfc3339("1994-11-06T09:49:37+01:00"), Some(784_111_777 * S));
        assert_eq!(parse_rfc3339("1994-11-06T07:49:37-01:00"), Some(784_111_777 * S));
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400 * S));
    }

    #[test]
    fn bad_rfc3339_dates_are_refused() {
        for s in [
            "",
            "1994-11-06",
            "1994-11-06T08:49:37",
            "1994-11-06T08:49:37.Z",
            "1994-11-06T08:49:37+0100",
            "1994-13-06T08:49:37Z",
            "1900-02-29T08:49:37Z",
            "1994/11/06T08:49:37Z",
            "Sun, 06 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_rfc3339(s), None, "{s:?}");
        }
    }

    #[test]
    fn unix_seconds_parse() {
        assert_eq!(parse_unix_seconds("1700000000"), Some(1_700_000_000 * S));
        assert_eq!(parse_unix_seconds(" 1700000000.5 "), Some(1_700_000_000 * S + S / 2));
        assert_eq!(parse_unix_seconds("99999999999999999999"), Some(MAX_SECS * S));
        for s in ["", "-5", "1e9", "abc", "12 34", ".5", "1.2.3"] {
            assert_eq!(parse_unix_seconds(s), None, "{s:?}");
        }
    }

    #[test]
    fn time_properties_are_known() {
        let win = time_prop(&PropName::new(MS_NS, "Win32LastModifiedTime")).unwrap();
        assert_eq!((win.field, win.dead), (TimeField::Modified, true));
        let dav = time_prop(&PropName::dav("getlastmodified")).unwrap();
        assert_eq!((dav.field, dav.dead), (TimeField::Modified, false));
        assert_eq!(time_prop(&PropName::dav("creationdate")).unwrap().format, TimeFormat::Rfc3339);
        assert!(time_prop(&PropName::new(MS_NS, "Win32FileAttributes")).is_none());
        assert!(time_prop(&PropName::dav("getetag")).is_none());
    }
}

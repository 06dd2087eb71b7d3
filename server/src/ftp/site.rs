//! `SITE UTIME`: FTP clients (lftp's mirror, FileZilla) keep modification times with it.
//! It becomes the model's PROPPATCH of `getlastmodified`, so WebDAV and every later FTP
//! listing show the time the client set.

use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use dav_model::times::parse_rfc3339;
use dav_model::{DeadProp, PatchOp, PropName};
use libunftp::options::{Reply, ReplyCode, SiteCommandContext, SiteCommandHandler};

use super::auth::FtpUser;
use super::observe::Observed;

#[derive(Debug)]
pub struct Utime;

#[async_trait]
impl SiteCommandHandler<Observed, FtpUser> for Utime {
    async fn handle(&self, ctx: &SiteCommandContext<Observed, FtpUser>) -> Reply {
        let Some((path, modified_ns)) = parse(&ctx.arguments) else {
            return Reply::new(
                ReplyCode::ParameterSyntaxError,
                "usage: SITE UTIME YYYYMMDDhhmmss PATH, or SITE UTIME PATH ATIME MTIME CTIME UTC",
            );
        };
        let Some(user) = ctx.user.as_ref().as_ref() else {
            return Reply::new(ReplyCode::NotLoggedIn, "log in first");
        };
        match ctx.storage.set_modified(user, &path, modified_ns).await {
            Ok(()) => Reply::new(ReplyCode::CommandOkay, "modification time set"),
            Err(e) => Reply::new(ReplyCode::FileError, &e.to_string()),
        }
    }
}

/// The path and the new modification time (nanoseconds since the epoch) of the two forms
/// in use: `YYYYMMDDhhmmss PATH` and ProFTPD's `PATH ATIME MTIME CTIME UTC`. Times are UTC.
pub(crate) fn parse(args: &str) -> Option<(String, i64)> {
    let args = args.trim();
    let words: Vec<&str> = args.split(' ').collect();
    if words.len() >= 5 && words[words.len() - 1].eq_ignore_ascii_case("UTC") {
        let mtime = stamp(words[words.len() - 3])?;
        let tail: usize = words[words.len() - 4..].iter().map(|w| w.len() + 1).sum();
        let path = &args[..args.len() - tail];
        return (!path.is_empty()).then(|| (path.to_owned(), mtime));
    }
    let (time, path) = args.split_once(' ')?;
    Some((path.to_owned(), stamp(time)?)).filter(|(p, _)| !p.is_empty())
}

/// `YYYYMMDDhhmmss` (MDTM's format), UTC.
fn stamp(s: &str) -> Option<i64> {
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rfc3339 = format!("{}-{}-{}T{}:{}:{}Z", &s[0..4], &s[4..6], &s[6..8], &s[8..10], &s[10..12], &s[12..14]);
    parse_rfc3339(&rfc3339)
}

/// The PROPPATCH that sets a modification time: `getlastmodified` as an HTTP date.
pub fn modified_patch(ns: i64) -> PatchOp {
    let when = UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64);
    let date = httpdate::fmt_http_date(when);
    PatchOp::Set(DeadProp {
        name: PropName::dav("getlastmodified"),
        xml: format!("<D:getlastmodified xmlns:D=\"DAV:\">{date}</D:getlastmodified>"),
        text: Some(date),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAN_2_2020: i64 = 1_577_923_200 * 1_000_000_000;

    #[test]
    fn time_then_path() {
        assert_eq!(parse("20200102000000 dir/a file.txt"), Some(("dir/a file.txt".into(), JAN_2_2020)));
    }

    #[test]
    fn proftpd_form_takes_the_middle_time() {
        let args = "my file.txt 20000101000000 20200102000000 20000101000000 UTC";
        assert_eq!(parse(args), Some(("my file.txt".into(), JAN_2_2020)));
    }

    #[test]
    fn nonsense_is_refused() {
        assert_eq!(parse("yesterday file.txt"), None);
        assert_eq!(parse("20200102000000"), None);
        assert_eq!(parse("2020010200000 f"), None);
    }
}

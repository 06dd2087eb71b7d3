//! FTP paths to tree paths. libunftp passes paths as the client typed them, joined to its
//! own idea of the working directory but never normalised (`CWD ../..` is kept literally).
//! Every path goes through [`resolve`] here before it reaches the model: `.` and `..` are
//! applied, `..` at the top stays at the top (as in a chroot), and the result is a
//! [`DavPath`] in the principal's view, which cannot name anything outside it.

use std::path::{Component, Path};

use dav_model::DavPath;
use unftp_core::storage::{Error as FtpError, ErrorKind};

use super::error::kind;

/// The tree path of `raw`. A relative `raw` is taken from `cwd`: libunftp hands MLST and
/// STAT arguments over without joining them to the working directory.
pub fn resolve(cwd: &DavPath, raw: &Path) -> Result<DavPath, FtpError> {
    let mut segments: Vec<String> =
        if raw.is_absolute() { Vec::new() } else { cwd.segments().iter().map(|s| s.to_string()).collect() };
    for part in raw.components() {
        match part {
            Component::RootDir | Component::Prefix(_) => segments.clear(),
            Component::CurDir => {}
            Component::ParentDir => {
                segments.pop();
            }
            Component::Normal(name) => {
                let name =
                    name.to_str().ok_or_else(|| kind(ErrorKind::FileNameNotAllowedError, "name is not UTF-8"))?;
                segments.push(name.to_owned());
            }
        }
    }
    let mut path = DavPath::root();
    for s in &segments {
        path = path.join(s).map_err(super::error::reply)?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(cwd: &str, raw: &str) -> String {
        resolve(&DavPath::parse(cwd).unwrap(), Path::new(raw)).unwrap().to_string()
    }

    #[test]
    fn parent_of_the_top_is_the_top() {
        assert_eq!(at("/", "/../../etc/passwd"), at("/", "/etc/passwd"));
        assert_eq!(at("/a", "../../../x"), at("/", "/x"));
    }

    #[test]
    fn relative_paths_start_at_the_working_directory() {
        assert_eq!(at("/docs", "notes.txt"), at("/", "/docs/notes.txt"));
    }

    #[test]
    fn dots_are_applied() {
        assert_eq!(at("/", "/a/./b/../c"), at("/", "/a/c"));
    }

    #[test]
    fn names_are_nfc() {
        assert_eq!(at("/", "/cafe\u{301}"), at("/", "/caf\u{e9}"));
    }

    #[test]
    fn encoded_dots_are_ordinary_names() {
        // FTP has no percent-encoding: `%2e%2e` is a file called that, inside the tree.
        assert_eq!(at("/", "/%2e%2e/x"), "/%2e%2e/x");
    }
}

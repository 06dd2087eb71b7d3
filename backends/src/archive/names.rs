//! Member names made safe: whatever an archive says, a member's path is a list of plain
//! names inside the archive's own view.

use unicode_normalization::UnicodeNormalization;

/// The path of a member named `raw` (already decoded to text), as names below the
/// archive's root, or `None` if it must not be shown: backslashes count as separators
/// (zips made on Windows), empty and `.` segments are dropped, a `..` segment, an absolute
/// path or a drive letter (`C:`) means the member is skipped rather than moved somewhere
/// it did not ask to be. Names are NFC, as every name in the model is; control
/// characters are refused, and so are paths longer than 4,096 bytes or deeper than 256
/// folders. The root itself (`""`, `./`) is `Some(vec![])`.
pub fn safe_path(raw: &str) -> Option<Vec<String>> {
    if raw.starts_with('/') || raw.starts_with('\\') || raw.len() > MAX_PATH_BYTES {
        return None;
    }
    let mut out = Vec::new();
    for (i, seg) in raw.split(['/', '\\']).enumerate() {
        match seg {
            "" | "." => continue,
            ".." => return None,
            s if i == 0 && s.len() == 2 && s.ends_with(':') => return None,
            s if s.chars().any(|c| c.is_control()) => return None,
            s => out.push(s.nfc().collect::<String>()),
        }
    }
    (out.len() <= MAX_DEPTH).then_some(out)
}

/// Longest member path shown, in bytes: Linux's `PATH_MAX`, so every member shown could
/// also be extracted; longer names only make indexes large.
const MAX_PATH_BYTES: usize = 4096;
/// Deepest member path shown: folders nested deeper are hostile, not useful, and would
/// make every walk of the archive that deep.
const MAX_DEPTH: usize = 256;

#[cfg(test)]
mod tests {
    use super::safe_path;

    #[test]
    fn plain_paths_split_into_names() {
        assert_eq!(safe_path("a/b/c.txt"), Some(vec!["a".into(), "b".into(), "c.txt".into()]));
        assert_eq!(safe_path("dir/"), Some(vec!["dir".into()]));
        assert_eq!(safe_path("./x"), Some(vec!["x".into()]));
    }

    #[test]
    fn backslashes_are_separators() {
        assert_eq!(safe_path("a\\b"), Some(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn escaping_paths_are_refused() {
        for raw in ["../x", "a/../../x", "a/../x", "/etc/passwd", "\\x", "C:\\x", "c:/x", "a\u{0}b"] {
            assert_eq!(safe_path(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn paths_too_long_or_too_deep_are_refused() {
        assert_eq!(safe_path(&"a/".repeat(257)), None);
        assert_eq!(safe_path(&"a/".repeat(256)).map(|p| p.len()), Some(256));
        assert_eq!(safe_path(&"n".repeat(4097)), None);
    }

    #[test]
    fn nfd_names_become_nfc() {
        assert_eq!(safe_path("cafe\u{301}"), Some(vec!["caf\u{e9}".into()]));
    }
}

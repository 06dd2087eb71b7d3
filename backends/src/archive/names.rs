//! Member names made safe: whatever an archive says, a member's path is a list of plain
//! names inside the archive's own view.

use unicode_normalization::UnicodeNormalization;

/// The path of a member named `raw` (already decoded to text), as names below the
/// archive's root, or `None` if it must not be shown: backslashes count as separators
/// (zips made on Windows), empty and `.` segments are dropped, a `..` segment, an absolute
/// path or a drive letter (`C:`) means the member is skipped rather than moved somewhere
/// it did not ask to be. Names are NFC, as every name in the model is; control
/// characters are refused. The root itself (`""`, `./`) is `Some(vec![])`.
pub fn safe_path(raw: &str) -> Option<Vec<String>> {
    if raw.starts_with('/') || raw.starts_with('\\') {
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
    Some(out)
}

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
    fn nfd_names_become_nfc() {
        assert_eq!(safe_path("cafe\u{301}"), Some(vec!["caf\u{e9}".into()]));
    }
}

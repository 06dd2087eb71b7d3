//! Names on disk and names in the model, one to one.
//!
//! The model spells names as NFC UTF-8; Linux stores arbitrary bytes. Every stored name
//! must be reachable, and two stored names must never show up under one model name (a
//! write meant for one would land on the other, and a lock on one would not cover the
//! other). So:
//!
//! - bytes that are not valid UTF-8, and the UTF-8 of the private-use characters
//!   U+F700..=U+F7FF, are written as U+F700 + byte. Decoding maps those characters back to
//!   single bytes, so `decode(encode(b)) == b` for every `b`; the range is reserved by
//!   this mapping, which is why a name really containing it is escaped too;
//! - a valid name that is not NFC (NFD, as macOS writes) is shown as its NFC form, unless
//!   that form is taken (an entry already encodes to it, or two such names fold to it) or
//!   is pure ASCII (ASCII names are looked up without a directory scan, see
//!   [`Canon::Plain`]); then all its non-ASCII bytes are escaped, which is NFC and decodes
//!   back to its bytes;
//! - every other spelling of a stored name (an escape of a byte that needs none) is an
//!   alias: it names nothing and can't be created, so each object has one model name.

use std::collections::{HashMap, HashSet};

use unicode_normalization::{is_nfc, UnicodeNormalization};

/// The tree's own temporary files start with this: hidden from listings and reserved.
pub(super) const TEMP_PREFIX: &str = ".wharf-tmp-";

/// Longest encoded name shown: beyond it some clients and file systems on the other end
/// choke, and no Linux name (255 bytes, at most 3 encoded bytes each) comes near it.
const MAX_NAME: usize = 1020;

const ESCAPE_BASE: u32 = 0xF700;

fn is_escape(c: char) -> bool {
    (0xF700..=0xF7FF).contains(&u32::from(c))
}

fn push_escaped(out: &mut String, byte: u8) {
    // Every value in U+F700..=U+F7FF is a valid scalar value (no surrogates there).
    out.extend(char::from_u32(ESCAPE_BASE + u32::from(byte)));
}

/// The model name of disk bytes, before NFC is considered.
pub(super) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if is_escape(c) {
                let mut buf = [0; 4];
                c.encode_utf8(&mut buf).bytes().for_each(|b| push_escaped(&mut out, b));
            } else {
                out.push(c);
            }
        }
        chunk.invalid().iter().for_each(|&b| push_escaped(&mut out, b));
    }
    out
}

/// The disk bytes a model name stands for (the inverse of [`encode`] and [`escape_all`]).
pub(super) fn decode(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    for c in name.chars() {
        if is_escape(c) {
            out.push((u32::from(c) - ESCAPE_BASE) as u8);
        } else {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out
}

/// ASCII as is, every other byte escaped: NFC whatever the bytes, so it can always stand
/// in for a name whose plain form is taken or not NFC.
pub(super) fn escape_all(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii() {
            out.push(char::from(b));
        } else {
            push_escaped(&mut out, b);
        }
    }
    out
}

pub(super) fn is_temp(bytes: &[u8]) -> bool {
    bytes.starts_with(TEMP_PREFIX.as_bytes())
}

/// How disk bytes want to be shown, before looking at their neighbours.
enum Shape {
    /// Shown as this, whatever else the directory holds (it decodes to the bytes).
    Exact(String),
    /// Valid UTF-8 but not NFC: shown as `nfc` if nobody else claims it.
    Folds { nfc: String },
}

fn shape(bytes: &[u8]) -> Shape {
    if let Ok(s) = std::str::from_utf8(bytes) {
        if !s.chars().any(is_escape) {
            if is_nfc(s) {
                return Shape::Exact(s.to_owned());
            }
            let nfc: String = s.nfc().collect();
            if !nfc.is_ascii() {
                return Shape::Folds { nfc };
            }
            return Shape::Exact(escape_all(bytes));
        }
    }
    let encoded = encode(bytes);
    if is_nfc(&encoded) {
        Shape::Exact(encoded)
    } else {
        Shape::Exact(escape_all(bytes))
    }
}

/// The model names of a directory's entries (temp files already left out), in the same
/// order; `None` for a name that can't be shown.
pub(super) fn listing<B: AsRef<[u8]>>(entries: &[B]) -> Vec<Option<String>> {
    let shapes: Vec<Shape> = entries.iter().map(|b| shape(b.as_ref())).collect();
    let escaped = colliding(&shapes);
    let named = shapes.into_iter().zip(entries).enumerate().map(|(i, (s, bytes))| match s {
        Shape::Exact(name) => name,
        Shape::Folds { .. } if escaped.get(i) == Some(&true) => escape_all(bytes.as_ref()),
        Shape::Folds { nfc } => nfc,
    });
    named.map(|name| (name.len() <= MAX_NAME).then_some(name)).collect()
}

/// Which folding names must be shown escaped: those whose NFC form is another entry's
/// exact name or another folding entry's NFC form. Empty when nothing folds, as in most
/// directories, which then need no sets at all.
fn colliding(shapes: &[Shape]) -> Vec<bool> {
    if !shapes.iter().any(|s| matches!(s, Shape::Folds { .. })) {
        return Vec::new();
    }
    let mut exact = HashSet::new();
    let mut folds: HashMap<&str, usize> = HashMap::new();
    for s in shapes {
        match s {
            Shape::Exact(name) => {
                exact.insert(name.as_str());
            }
            Shape::Folds { nfc } => *folds.entry(nfc.as_str()).or_default() += 1,
        }
    }
    let collides = |nfc: &str| exact.contains(nfc) || folds.get(nfc) != Some(&1);
    shapes.iter().map(|s| matches!(s, Shape::Folds { nfc } if collides(nfc))).collect()
}

/// What a model name can stand for, judged from the name alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Canon {
    /// Its decoded bytes are the entry, if present. With `fold`, a missing entry may
    /// still exist as a non-NFC twin, found only by a directory scan; only non-ASCII
    /// names without escapes can be such a fold, so ASCII names never scan.
    Plain { fold: bool },
    /// The escaped form of a non-NFC name: valid only while the plain form is taken, which
    /// only a directory scan tells.
    EscapedFold,
    /// Another spelling of a name that is shown differently: names nothing.
    Alias,
}

/// Also refuses a name that decodes to one of the tree's temp files.
pub(super) fn canon(name: &str) -> Canon {
    if name.is_ascii() {
        return if name.starts_with(TEMP_PREFIX) { Canon::Alias } else { Canon::Plain { fold: false } };
    }
    let bytes = decode(name);
    // Escapes of `/`, NUL or dots are aliases anyway (their plain spelling is the shown
    // one); refusing them here as well keeps a decoded name from ever being a path.
    if is_temp(&bytes) || bytes.contains(&b'/') || bytes.contains(&0) || bytes == b"." || bytes == b".." {
        return Canon::Alias;
    }
    match shape(&bytes) {
        Shape::Exact(shown) if shown == name => Canon::Plain { fold: !name.chars().any(is_escape) },
        Shape::Folds { .. } if escape_all(&bytes) == name => Canon::EscapedFold,
        _ => Canon::Alias,
    }
}

/// Whether a path segment could ever be a name: the model never sends these, but a
/// slash, a NUL or a dot segment would change what the path means on disk.
pub(super) fn valid_segment(name: &str) -> bool {
    !(name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NFD: &[u8] = "cafe\u{301}".as_bytes();
    const NFC: &str = "caf\u{e9}";

    #[test]
    fn decode_inverts_encode_on_arbitrary_bytes() {
        let samples: Vec<Vec<u8>> = vec![
            b"plain".to_vec(),
            b"caf\xe9".to_vec(),
            vec![0xff, 0xfe, b'a', 0xc3],
            "\u{F700}\u{F7FF}x".as_bytes().to_vec(),
            "\u{F6FF}\u{F800}".as_bytes().to_vec(),
            (1..=255u8).collect(),
            NFD.to_vec(),
        ];
        for bytes in samples {
            assert_eq!(decode(&encode(&bytes)), bytes, "{bytes:?}");
            assert_eq!(decode(&escape_all(&bytes)), bytes, "{bytes:?}");
        }
    }

    #[test]
    fn invalid_bytes_become_private_use_characters() {
        assert_eq!(encode(b"caf\xe9"), "caf\u{F7E9}");
        assert_eq!(decode("caf\u{F7E9}"), b"caf\xe9");
    }

    #[test]
    fn escape_range_characters_are_escaped_bytewise() {
        let name = encode("\u{F741}".as_bytes());
        assert_eq!(name, "\u{F7EF}\u{F79D}\u{F781}");
        assert_eq!(canon(&name), Canon::Plain { fold: false });
        // The character itself would decode to "A": an alias, not a second name for it.
        assert_eq!(canon("\u{F741}"), Canon::Alias);
    }

    #[test]
    fn nfd_name_is_listed_as_nfc() {
        assert_eq!(listing(&[NFD]), vec![Some(NFC.to_owned())]);
    }

    #[test]
    fn nfd_twin_of_an_nfc_name_is_escaped() {
        let names = listing(&[NFD, NFC.as_bytes()]);
        assert_eq!(names[1].as_deref(), Some(NFC));
        let escaped = names[0].clone().unwrap();
        assert_eq!(escaped, "cafe\u{F7CC}\u{F781}");
        assert_eq!(decode(&escaped), NFD);
        assert_eq!(canon(&escaped), Canon::EscapedFold);
    }

    #[test]
    fn two_non_nfc_names_folding_alike_are_both_escaped() {
        // U+212B ANGSTROM SIGN and A + combining ring both fold to U+00C5.
        let a = "\u{212B}".as_bytes();
        let b = "A\u{30A}".as_bytes();
        let names = listing(&[a, b]);
        assert_eq!(names[0].as_deref(), Some(escape_all(a).as_str()));
        assert_eq!(names[1].as_deref(), Some(escape_all(b).as_str()));
    }

    #[test]
    fn fold_to_ascii_is_escaped_not_folded() {
        // U+212A KELVIN SIGN folds to "K", which is looked up without a scan.
        let kelvin = "\u{212A}".as_bytes();
        assert_eq!(listing(&[kelvin]), vec![Some(escape_all(kelvin))]);
        assert_eq!(canon(&escape_all(kelvin)), Canon::Plain { fold: false });
    }

    #[test]
    fn invalid_utf8_around_non_nfc_text_is_fully_escaped() {
        let mut bytes = NFD.to_vec();
        bytes.push(0xff);
        let name = listing(&[&bytes])[0].clone().unwrap();
        assert!(is_nfc(&name));
        assert_eq!(decode(&name), bytes);
        assert_eq!(canon(&name), Canon::Plain { fold: false });
    }

    #[test]
    fn ascii_names_never_fold() {
        assert_eq!(canon("report.txt"), Canon::Plain { fold: false });
        assert_eq!(canon(NFC), Canon::Plain { fold: true });
    }

    #[test]
    fn escaping_a_plain_byte_is_an_alias() {
        assert_eq!(canon("\u{F741}bc"), Canon::Alias);
        assert_eq!(canon("\u{F7C3}\u{F7A9}"), Canon::Alias); // "é" spelled as its bytes
    }

    #[test]
    fn escaped_separators_and_dots_are_never_names() {
        for name in ["a\u{F72F}b", "\u{F72E}\u{F72E}", "\u{F72E}", "x\u{F700}"] {
            assert_eq!(canon(name), Canon::Alias, "{name:?}");
        }
    }

    #[test]
    fn temp_names_are_reserved_in_any_spelling() {
        assert_eq!(canon(".wharf-tmp-abc"), Canon::Alias);
        assert_eq!(canon("\u{F72E}wharf-tmp-abc"), Canon::Alias);
        assert!(is_temp(b".wharf-tmp-x"));
    }

    #[test]
    fn over_long_names_are_left_out() {
        let long = vec![0xffu8; 400]; // 3 encoded bytes each
        assert_eq!(listing(&[long]), vec![None]);
    }

    #[test]
    fn segments_that_change_path_meaning_are_invalid() {
        for bad in ["", ".", "..", "a/b", "a\0b"] {
            assert!(!valid_segment(bad), "{bad:?}");
        }
        assert!(valid_segment("...") && valid_segment(".hidden"));
    }
}

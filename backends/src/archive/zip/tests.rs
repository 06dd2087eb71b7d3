use std::io::{self, Read, Write};
use std::ops::Range;
use std::process::Command;
use std::sync::Arc;
use std::{fs, time};

use super::super::{Data, Index, Limits, Member, Source, SourceReader};
use super::{days_from_civil, index, inflate, FLAG_UTF8};
use crate::{ByteStream, Error, Result};

/// An archive in memory, served in 1000-byte chunks so reads cross chunk boundaries.
struct Mem(Vec<u8>);

#[async_trait::async_trait]
impl Source for Mem {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    async fn read(&self, range: Range<u64>) -> Result<ByteStream> {
        let bytes = bytes::Bytes::copy_from_slice(&self.0[range.start as usize..range.end as usize]);
        let chunks: Vec<_> =
            (0..bytes.len()).step_by(1000).map(|i| Ok(bytes.slice(i..(i + 1000).min(bytes.len())))).collect();
        Ok(Box::pin(futures_util::stream::iter(chunks)))
    }
}

fn reader(zip: &[u8]) -> SourceReader {
    SourceReader::new(Arc::new(Mem(zip.to_vec())), tokio::runtime::Handle::current(), None)
}

async fn index_with(zip: &[u8], limits: Limits) -> Result<Index> {
    let r = reader(zip);
    tokio::task::spawn_blocking(move || index(r, &limits)).await.expect("index panicked")
}

async fn index_of(zip: &[u8]) -> Index {
    index_with(zip, Limits::default()).await.expect("a readable zip")
}

fn archive_error(r: Result<Index>) -> String {
    match r {
        Err(Error::Archive(msg)) => msg,
        other => panic!("expected Error::Archive, got {other:?}"),
    }
}

fn paths(ix: &Index) -> Vec<String> {
    ix.members.iter().map(|m| m.path.join("/")).collect()
}

/// A member's bytes: a stored one sliced out, a deflated one through `inflate`.
async fn contents(zip: &[u8], m: &Member, size: u64) -> io::Result<Vec<u8>> {
    let (r, data) = (reader(zip), m.data.clone());
    let all = zip.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        match data {
            Data::Stored { offset } => out.extend_from_slice(&all[offset as usize..][..size as usize]),
            Data::Deflated { offset, compressed } => {
                inflate(r, offset, compressed, size)?.read_to_end(&mut out)?;
            }
            Data::Stream { .. } => panic!("a zip member in a stream"),
        }
        Ok(out)
    })
    .await
    .expect("read panicked")
}

/// Runs Info-ZIP's `zip -q ARGS out.zip NAMES…` in a folder holding `files` (a name
/// ending in '/' is a folder), after `prepare` ran there; returns the archive.
fn info_zip(files: &[(&str, &[u8])], args: &[&str], prepare: impl FnOnce(&std::path::Path)) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, bytes) in files {
        let p = dir.path().join(name);
        fs::create_dir_all(if name.ends_with('/') { &p } else { p.parent().expect("parent") }).expect("mkdir");
        if !name.ends_with('/') {
            fs::write(&p, bytes).expect("write");
        }
    }
    prepare(dir.path());
    let status = Command::new("zip")
        .current_dir(dir.path())
        .arg("-q")
        .args(args)
        .arg("out.zip")
        .args(files.iter().map(|f| f.0))
        .status()
        .expect("Info-ZIP's zip is needed: apt-get install zip");
    assert!(status.success(), "zip failed");
    fs::read(dir.path().join("out.zip")).expect("read out.zip")
}

/// One entry of a crafted archive, stored unless said otherwise.
#[derive(Clone, Default)]
struct Raw {
    name: Vec<u8>,
    data: Vec<u8>,
    size: u32,
    compressed: Option<u32>,
    method: u16,
    flags: u16,
    made_by: u16,
    external: u32,
    extra: Vec<u8>,
    date_time: (u16, u16),
}

fn raw(name: impl AsRef<[u8]>, data: &[u8]) -> Raw {
    Raw { name: name.as_ref().to_vec(), data: data.to_vec(), size: data.len() as u32, ..Raw::default() }
}

fn crc(b: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(b);
    c.sum()
}

/// Local headers and data, then the central directory and its end record.
fn craft(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let csize = e.compressed.unwrap_or(e.data.len() as u32);
        let common = |b: &mut Vec<u8>| {
            for v in [20, e.flags, e.method, e.date_time.1, e.date_time.0] {
                b.extend(v.to_le_bytes());
            }
            for v in [crc(&e.data), csize, e.size] {
                b.extend(v.to_le_bytes());
            }
            b.extend((e.name.len() as u16).to_le_bytes());
        };
        out.extend(0x0403_4b50u32.to_le_bytes());
        common(&mut out);
        out.extend([0, 0]);
        out.extend(&e.name);
        out.extend(&e.data);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(e.made_by.to_le_bytes());
        common(&mut central);
        central.extend((e.extra.len() as u16).to_le_bytes());
        central.extend([0; 6]); // comment length, disk, internal attributes
        central.extend(e.external.to_le_bytes());
        central.extend(offset.to_le_bytes());
        central.extend(&e.name);
        central.extend(&e.extra);
    }
    let (at, n) = (out.len() as u32, entries.len() as u16);
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0; 4]);
    for v in [n, n] {
        out.extend(v.to_le_bytes());
    }
    for v in [central.len() as u32, at] {
        out.extend(v.to_le_bytes());
    }
    out.extend([0, 0]);
    out
}

fn deflate(b: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(b).expect("deflate");
    enc.finish().expect("deflate")
}

#[tokio::test(flavor = "multi_thread")]
async fn info_zip_archive_lists_folders_and_files_in_order() {
    let zip = info_zip(&[("d/", b""), ("d/a.txt", b"hello"), ("b.bin", &[7; 3000])], &[], |_| {});
    let ix = index_of(&zip).await;
    assert_eq!(paths(&ix), ["d", "d/a.txt", "b.bin"]);
    assert_eq!(ix.members.iter().map(|m| (m.dir, m.size)).collect::<Vec<_>>(), [(true, 0), (false, 5), (false, 3000)]);
    assert_eq!(ix.members[1].crc32, Some(crc(b"hello")));
    assert!(ix.members.iter().all(|m| m.refused.is_none()));
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_member_data_starts_after_its_local_header() {
    // Info-ZIP's local extra fields are longer than its central ones.
    let zip = info_zip(&[("a.txt", b"hello, stored")], &["-0"], |_| {});
    let ix = index_of(&zip).await;
    assert!(matches!(ix.members[0].data, Data::Stored { .. }));
    assert_eq!(contents(&zip, &ix.members[0], 13).await.expect("read"), b"hello, stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn deflated_member_inflates_to_its_bytes() {
    let text: Vec<u8> = (0..20_000u32).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
    let zip = info_zip(&[("t.txt", &text)], &[], |_| {});
    let m = &index_of(&zip).await.members[0];
    assert!(matches!(m.data, Data::Deflated { compressed, .. } if compressed < text.len() as u64));
    assert_eq!(contents(&zip, m, m.size).await.expect("inflate"), text);
}

#[tokio::test(flavor = "multi_thread")]
async fn inflate_fails_when_the_stream_runs_past_the_size() {
    let zip = info_zip(&[("t.txt", &[b'x'; 5000])], &[], |_| {});
    let m = &index_of(&zip).await.members[0];
    let err = contents(&zip, m, 4999).await.expect_err("one byte too many");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
}

#[tokio::test(flavor = "multi_thread")]
async fn inflate_fails_when_the_stream_ends_before_the_size() {
    let zip = info_zip(&[("t.txt", &[b'x'; 5000])], &[], |_| {});
    let m = &index_of(&zip).await.members[0];
    let err = contents(&zip, m, 5001).await.expect_err("one byte short");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
}

#[tokio::test(flavor = "multi_thread")]
async fn zip64_end_records_and_extra_field_are_read() {
    let zip = info_zip(&[("a.txt", b"zip64 me")], &["-fz"], |_| {});
    assert!(zip.windows(4).any(|w| w == b"PK\x06\x06"), "zip -fz wrote no zip64 end record");
    let ix = index_of(&zip).await;
    assert_eq!(paths(&ix), ["a.txt"]);
    assert_eq!(contents(&zip, &ix.members[0], ix.members[0].size).await.expect("read"), b"zip64 me");
}

#[tokio::test(flavor = "multi_thread")]
async fn zip64_directory_claiming_four_billion_entries_is_refused() {
    let mut zip = info_zip(&[("a.txt", b"x")], &["-fz"], |_| {});
    let at = zip.windows(4).position(|w| w == b"PK\x06\x06").expect("zip64 end record");
    zip[at + 24..at + 40].copy_from_slice(&[4_000_000_000u64.to_le_bytes(), 4_000_000_000u64.to_le_bytes()].concat());
    let unlimited = Limits { max_members: u64::MAX, ..Limits::default() };
    assert!(archive_error(index_with(&zip, unlimited).await).contains("claims 4000000000 entries"));
}

#[tokio::test(flavor = "multi_thread")]
async fn central_directory_past_the_end_is_refused() {
    let mut zip = craft(&[raw("a", b"x")]);
    let at = zip.len() - 22;
    zip[at + 12..at + 16].copy_from_slice(&1_000_000u32.to_le_bytes());
    assert!(archive_error(index_with(&zip, Limits::default()).await).contains("runs past the end"));
}

#[tokio::test(flavor = "multi_thread")]
async fn archive_cut_short_is_refused() {
    let zip = info_zip(&[("a.txt", &[1; 10_000])], &["-0"], |_| {});
    let msg = archive_error(index_with(&zip[..zip.len() / 2], Limits::default()).await);
    assert!(msg.contains("end of central directory not found"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn member_whose_data_is_cut_short_is_listed_but_refused() {
    let zip = craft(&[Raw { compressed: Some(1_000_000), size: 1_000_000, ..raw("big", b"abc") }, raw("ok", b"fine")]);
    let ix = index_of(&zip).await;
    assert_eq!(paths(&ix), ["big", "ok"]);
    assert!(ix.members[0].refused.as_deref().is_some_and(|r| r.contains("cut short")));
    assert_eq!(ix.members[1].refused, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn escaping_names_are_skipped() {
    let names = ["../evil", "/etc/passwd", "C:\\x", "a/../../b", "ok"];
    let zip = craft(&names.map(|n| raw(n, b"x")));
    assert_eq!(paths(&index_of(&zip).await), ["ok"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn root_only_name_is_skipped() {
    let zip = craft(&[raw("./", b""), raw("a", b"x")]);
    assert_eq!(paths(&index_of(&zip).await), ["a"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn symlink_members_are_skipped() {
    let link = |dir: &std::path::Path| {
        fs::remove_file(dir.join("link")).expect("rm");
        std::os::unix::fs::symlink("/etc/passwd", dir.join("link")).expect("symlink");
    };
    let zip = info_zip(&[("a.txt", b"x"), ("link", b"")], &["-y"], link);
    assert!(zip.windows(11).any(|w| w == b"/etc/passwd"), "zip -y stored no link");
    assert_eq!(paths(&index_of(&zip).await), ["a.txt"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn folder_by_ms_dos_attribute_is_a_folder() {
    let zip = craft(&[Raw { external: 0x10, ..raw("d", b"") }]);
    let m = &index_of(&zip).await.members[0];
    assert!(m.dir && m.size == 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn names_without_the_utf8_flag_are_cp437() {
    let zip = craft(&[raw(b"caf\x82 \xe1", b"x")]);
    assert_eq!(paths(&index_of(&zip).await), ["café ß"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn unflagged_names_that_are_valid_utf8_are_utf8() {
    let zip = craft(&[raw("日本語/naïve.txt", b"x")]);
    assert_eq!(paths(&index_of(&zip).await), ["日本語/naïve.txt"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn names_with_the_utf8_flag_are_utf8() {
    let zip = craft(&[Raw { flags: FLAG_UTF8, ..raw("café", b"x") }]);
    assert_eq!(paths(&index_of(&zip).await), ["café"]);
}

fn unicode_path(crc: u32, name: &str) -> Vec<u8> {
    let len = (5 + name.len()) as u16;
    [&0x7075u16.to_le_bytes()[..], &len.to_le_bytes(), &[1], &crc.to_le_bytes(), name.as_bytes()].concat()
}

#[tokio::test(flavor = "multi_thread")]
async fn unicode_path_field_names_the_member_when_its_crc_matches() {
    let zip = craft(&[Raw { extra: unicode_path(crc(b"caf?"), "café"), ..raw("caf?", b"x") }]);
    assert_eq!(paths(&index_of(&zip).await), ["café"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn unicode_path_field_with_a_stale_crc_is_ignored() {
    let zip = craft(&[Raw { extra: unicode_path(crc(b"other"), "café"), ..raw("caf?", b"x") }]);
    assert_eq!(paths(&index_of(&zip).await), ["caf?"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn later_duplicate_wins() {
    let zip = craft(&[raw("a", b"old"), raw("b", b"x"), raw("./a", b"new")]);
    let ix = index_of(&zip).await;
    assert_eq!(paths(&ix), ["b", "a"]);
    assert_eq!(contents(&zip, &ix.members[1], 3).await.expect("read"), b"new");
}

#[tokio::test(flavor = "multi_thread")]
async fn extended_timestamp_gives_the_modification_time() {
    let set = |dir: &std::path::Path| {
        let t = time::UNIX_EPOCH + time::Duration::from_secs(1_600_000_000);
        fs::File::options().write(true).open(dir.join("a")).and_then(|f| f.set_modified(t)).expect("utime");
    };
    let zip = info_zip(&[("a", b"x")], &[], set);
    assert_eq!(index_of(&zip).await.members[0].modified_ns, 1_600_000_000_000_000_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn dos_date_and_time_count_as_utc() {
    let date_time = ((40 << 9) | (2 << 5) | 29, (13 << 11) | (45 << 5) | 15); // 2020-02-29 13:45:30
    let zip = craft(&[Raw { date_time, ..raw("a", b"x") }]);
    assert_eq!(index_of(&zip).await.members[0].modified_ns, 1_582_983_930_000_000_000);
}

#[test]
fn days_from_civil_counts_from_1970() {
    assert_eq!(
        [days_from_civil(1970, 1, 1), days_from_civil(1969, 12, 31), days_from_civil(2000, 3, 1)],
        [0, -1, 11_017]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unsupported_method_is_listed_but_refused() {
    let zip = craft(&[Raw { method: 12, ..raw("a.bz2", b"BZh") }]);
    let m = &index_of(&zip).await.members[0];
    assert_eq!(m.refused.as_deref(), Some("compression method 12 is not supported"));
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_member_is_listed_but_refused() {
    let zip = info_zip(&[("secret.txt", b"hush")], &["-P", "pass"], |_| {});
    let m = &index_of(&zip).await.members[0];
    assert_eq!(m.refused.as_deref(), Some("it is encrypted"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bomb_over_the_ratio_limit_is_listed_but_refused() {
    let zip = info_zip(&[("zeros", &vec![0; 50 << 20])], &[], |_| {});
    let ix = index_with(&zip, Limits { max_ratio: 100, ..Limits::default() }).await.expect("index");
    assert_eq!(ix.members[0].size, 50 << 20);
    assert_eq!(ix.members[0].refused.as_deref(), Some("compression ratio over the limit of 100"));
}

#[tokio::test(flavor = "multi_thread")]
async fn small_member_is_never_refused_for_its_ratio() {
    let zeros = vec![0; 1 << 20];
    let zip = craft(&[Raw { method: 8, size: 1 << 20, ..raw("zeros", &deflate(&zeros)) }]);
    let m = &index_with(&zip, Limits { max_ratio: 2, ..Limits::default() }).await.expect("index").members[0];
    assert_eq!(m.refused, None);
    assert_eq!(contents(&zip, m, m.size).await.expect("inflate"), zeros);
}

#[tokio::test(flavor = "multi_thread")]
async fn more_members_than_the_limit_are_refused() {
    let zip = craft(&[raw("a", b""), raw("b", b""), raw("c", b"")]);
    let msg = archive_error(index_with(&zip, Limits { max_members: 2, ..Limits::default() }).await);
    assert!(msg.contains("3 members, over the limit of 2"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn members_over_the_total_size_limit_are_refused() {
    let zip = craft(&[raw("a", b"123456"), raw("b", b"123456")]);
    let msg = archive_error(index_with(&zip, Limits { max_total: 10, ..Limits::default() }).await);
    assert!(msg.contains("more than 10 bytes"), "{msg}");
}

//! `wharf fsck` on real data directories: clean after real traffic, and each kind of
//! damage done to a stopped server's store reported, repaired where it can be, and the
//! server afterwards serving the files that survived with their bytes.

use std::path::{Path, PathBuf};
use std::process::Command;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, SqliteConnection};

use crate::harness::{get, mkcol, put, Server};

/// Runs `wharf ARGS` (the caller adds `--data`); returns success and stdout with stderr.
pub fn wharf(args: &[&str]) -> (bool, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_wharf")).args(args).env("WHARF_LOG", "warn").output().expect("run wharf");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// `wharf fsck --data DATA EXTRA...`.
pub fn fsck(data: &Path, extra: &[&str]) -> (bool, String) {
    let data = data.to_str().expect("UTF-8 path");
    let mut args = vec!["fsck", "--data", data];
    args.extend_from_slice(extra);
    wharf(&args)
}

fn assert_clean(data: &Path, extra: &[&str]) {
    let (ok, out) = fsck(data, extra);
    assert!(ok && out.contains("fsck: 0 problems") && out.contains("; consistent"), "{out}");
}

/// The server's database, with foreign keys unenforced, as a careless tool would open it.
async fn db(data: &Path) -> SqliteConnection {
    let opts = SqliteConnectOptions::new().filename(data.join("wharf.db")).foreign_keys(false);
    opts.connect().await.expect("open the database")
}

async fn sql(data: &Path, statement: &str) {
    sqlx::query(statement).execute(&mut db(data).await).await.expect(statement);
}

/// The blob a file named `name` points at.
async fn blob_of(data: &Path, name: &str) -> String {
    let q = sqlx::query_as::<_, (String,)>("SELECT blob_id FROM resources WHERE name = ?").bind(name);
    q.fetch_one(&mut db(data).await).await.expect("the file's blob").0
}

pub fn blob_path(data: &Path, blob: &str) -> PathBuf {
    data.join("blobs").join("blobs").join(&blob[..2]).join(blob)
}

const KEPT: &[u8] = b"kept bytes";
const SHARED: &[u8] = b"shared bytes";
const VICTIM: &[u8] = b"victim bytes";

/// A stopped server whose blob store holds `/keep.txt`, `/dir/a.txt` and its copy `/dir/b.txt`
/// (one blob, two references), and `/victim.txt`, the file the damage is done to.
async fn stopped_store() -> Server {
    // Every content a file of the blob store, which is what the damage is done to.
    let mut s = Server::start_with(&["--inline-max-bytes", "0"]);
    assert_eq!(put(&s, "/keep.txt", KEPT).await, 201);
    assert_eq!(mkcol(&s, "/dir").await, 201);
    assert_eq!(put(&s, "/dir/a.txt", SHARED).await, 201);
    let copy = s.req("COPY", "/dir/a.txt").header("Destination", s.url("/dir/b.txt")).send().await.expect("COPY");
    assert_eq!(copy.status().as_u16(), 201);
    assert_eq!(put(&s, "/victim.txt", VICTIM).await, 201);
    s.kill();
    s
}

/// The files the damage did not touch still serve their bytes.
async fn survivors_intact(s: &Server) {
    assert_eq!(get(s, "/keep.txt").await, (200, KEPT.to_vec()));
    assert_eq!(get(s, "/dir/a.txt").await, (200, SHARED.to_vec()));
    assert_eq!(get(s, "/dir/b.txt").await, (200, SHARED.to_vec()));
}

#[tokio::test]
async fn a_store_after_real_traffic_is_consistent_beside_the_server_and_stopped() {
    let mut s = Server::start();
    assert_eq!(mkcol(&s, "/d").await, 201);
    for (i, size) in [10, 300_000, 2_500_000].into_iter().enumerate() {
        assert_eq!(put(&s, &format!("/d/f{i}"), vec![i as u8 + 1; size]).await, 201);
    }
    assert_eq!(put(&s, "/d/f0", b"overwritten".to_vec()).await, 204);
    let copy = s.req("COPY", "/d").header("Destination", s.url("/e")).send().await.expect("COPY");
    assert_eq!(copy.status().as_u16(), 201);
    let moved = s.req("MOVE", "/e/f1").header("Destination", s.url("/e/g")).send().await.expect("MOVE");
    assert_eq!(moved.status().as_u16(), 201);
    assert_eq!(s.req("DELETE", "/e/f2").send().await.expect("DELETE").status().as_u16(), 204);
    let body = "<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop><Z:k xmlns:Z=\"urn:z\">v</Z:k></D:prop></D:set></D:propertyupdate>";
    assert_eq!(s.req("PROPPATCH", "/d/f0").body(body).send().await.expect("PROPPATCH").status().as_u16(), 207);
    let lockinfo = "<D:lockinfo xmlns:D=\"DAV:\"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>";
    assert_eq!(s.req("LOCK", "/new").body(lockinfo).send().await.expect("LOCK").status().as_u16(), 201);

    assert_clean(&s.data, &["--verify-content"]);
    s.kill();
    let (ok, out) = fsck(&s.data, &["--verify-content"]);
    assert!(ok && out.contains("0 problems") && out.contains("2800011 bytes verified"), "{out}");
}

#[tokio::test]
async fn a_deleted_blob_names_the_file_that_lost_its_content_until_the_bytes_come_back() {
    let mut s = stopped_store().await;
    std::fs::remove_file(blob_path(&s.data, &blob_of(&s.data, "victim.txt").await)).expect("delete the blob");
    let (ok, out) = fsck(&s.data, &[]);
    assert!(!ok && out.contains("is missing from the store: content lost for /home/admin/victim.txt"), "{out}");
    let (ok, out) = fsck(&s.data, &["--repair"]);
    assert!(!ok && out.contains("not repaired: content lost") && out.contains("1 problem remains"), "{out}");

    s.restart();
    survivors_intact(&s).await;
    assert_ne!(get(&s, "/victim.txt").await.0, 200, "nothing is served in place of the lost bytes");
    // The same bytes uploaded again, under any name, are the lost blob again.
    assert_eq!(put(&s, "/again.txt", VICTIM).await, 201);
    assert_eq!(get(&s, "/victim.txt").await, (200, VICTIM.to_vec()));
    assert_clean(&s.data, &["--verify-content"]);
}

#[tokio::test]
async fn damaged_bytes_are_found_only_by_verifying_and_moved_out_of_the_store() {
    let mut s = stopped_store().await;
    let blob = blob_of(&s.data, "victim.txt").await;
    std::fs::write(blob_path(&s.data, &blob), b"VICTIM BYTES").expect("damage the blob");
    assert_clean(&s.data, &[]);
    let (ok, out) = fsck(&s.data, &["--verify-content"]);
    assert!(!ok && out.contains("does not hash to its id: damaged content of /home/admin/victim.txt"), "{out}");
    let (ok, out) = fsck(&s.data, &["--repair", "--verify-content"]);
    assert!(!ok && out.contains("repaired: file moved to") && out.contains("remaining: blob"), "{out}");
    let aside = s.data.join("blobs").join("lost+found").join(&blob);
    assert_eq!(std::fs::read(aside).expect("the damaged bytes, kept"), b"VICTIM BYTES");

    s.restart();
    survivors_intact(&s).await;
    assert_ne!(get(&s, "/victim.txt").await.0, 200, "the damaged bytes are served no more");
}

#[tokio::test]
async fn an_unreferenced_blob_file_is_reported_and_deleted() {
    let mut s = stopped_store().await;
    let stray = blake3::hash(b"stray").to_hex().to_string();
    std::fs::write(blob_path(&s.data, &stray), b"stray").expect("plant a blob file");
    let (ok, out) = fsck(&s.data, &[]);
    assert!(!ok && out.contains(&format!("blob file {} is not referenced", &stray[..16])), "{out}");
    let (ok, out) = fsck(&s.data, &["--repair"]);
    assert!(ok && out.contains("repaired: file deleted") && out.contains("; consistent"), "{out}");
    assert!(!blob_path(&s.data, &stray).exists());
    assert_clean(&s.data, &["--verify-content"]);
    s.restart();
    survivors_intact(&s).await;
}

#[tokio::test]
async fn a_reference_count_changed_behind_the_servers_back_is_set_right() {
    let mut s = stopped_store().await;
    let shared = blob_of(&s.data, "a.txt").await;
    sql(&s.data, &format!("UPDATE blobs SET refcount = 7 WHERE id = '{shared}'")).await;
    let (ok, out) = fsck(&s.data, &[]);
    assert!(!ok && out.contains(&format!("blob {} counted 7 references, has 2", &shared[..16])), "{out}");
    let (ok, out) = fsck(&s.data, &["--repair"]);
    assert!(ok && out.contains("repaired: count set to 2"), "{out}");
    assert_clean(&s.data, &[]);

    s.restart();
    survivors_intact(&s).await;
    // The count is right again: once both files are deleted, their blob goes.
    for path in ["/dir/a.txt", "/dir/b.txt"] {
        assert_eq!(s.req("DELETE", path).send().await.expect("DELETE").status().as_u16(), 204);
    }
    assert!(!blob_path(&s.data, &shared).exists());
    assert_clean(&s.data, &[]);
}

#[tokio::test]
async fn a_lock_whose_root_was_deleted_behind_the_servers_back_is_removed() {
    let mut s = Server::start();
    assert_eq!(put(&s, "/victim.txt", VICTIM).await, 201);
    let lockinfo = "<D:lockinfo xmlns:D=\"DAV:\"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>";
    assert_eq!(s.req("LOCK", "/victim.txt").body(lockinfo).send().await.expect("LOCK").status().as_u16(), 200);
    s.kill();
    sql(&s.data, "DELETE FROM resources WHERE name = 'victim.txt'").await;
    let (ok, out) = fsck(&s.data, &[]);
    assert!(!ok && out.contains("is rooted at /home/admin/victim.txt, which does not exist"), "{out}");
    let (ok, out) = fsck(&s.data, &["--repair"]);
    assert!(ok && out.contains("repaired: lock removed"), "{out}");
    assert_clean(&s.data, &[]);
    s.restart();
    assert_eq!(put(&s, "/victim.txt", b"unlocked".to_vec()).await, 201, "no lock left to refuse it");
}

#[tokio::test]
async fn a_property_of_a_resource_that_is_gone_is_deleted() {
    let mut s = stopped_store().await;
    sql(&s.data, "INSERT INTO dead_props (resource_id, namespace, name, xml) VALUES (424242, 'urn:z', 'k', '<k/>')")
        .await;
    let (ok, out) = fsck(&s.data, &[]);
    assert!(!ok && out.contains("of dead_props: its resources row is missing"), "{out}");
    let (ok, out) = fsck(&s.data, &["--repair"]);
    assert!(ok && out.contains("repaired: row deleted"), "{out}");
    assert_clean(&s.data, &[]);
    s.restart();
    survivors_intact(&s).await;
    assert_eq!(get(&s, "/victim.txt").await, (200, VICTIM.to_vec()));
}

#[tokio::test]
async fn repairs_and_restores_refuse_to_run_beside_a_server_and_a_second_server_refuses_too() {
    let s = Server::start();
    assert_eq!(put(&s, "/f", b"x".to_vec()).await, 201);
    let (ok, out) = fsck(&s.data, &["--repair"]);
    assert!(!ok && out.contains("stop it before --repair"), "{out}");
    let backup = s.data.with_file_name("backup");
    let data = s.data.to_str().expect("UTF-8 path");
    assert!(wharf(&["backup", "--data", data, backup.to_str().expect("UTF-8 path")]).0);
    let (ok, out) = wharf(&["restore", backup.to_str().expect("UTF-8 path"), "--data", data, "--force"]);
    assert!(!ok && out.contains("stop it before restoring"), "{out}");
    let (ok, out) = wharf(&["serve", "--data", data, "--listen", "127.0.0.1:0", "--ftp-listen", "off"]);
    assert!(!ok && out.contains("is in use by another wharf serve"), "{out}");
    assert_eq!(get(&s, "/f").await, (200, b"x".to_vec()), "the running server was left alone");
}

#[tokio::test]
async fn a_data_directory_another_machine_serves_is_refused_until_its_lease_lapses() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    // What a server on another machine sharing the folder over the network writes and
    // renews; flock alone may not reach across machines.
    let seen = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let lease = |seen: u64| format!("boot=0f0f0f0f-another-kernel\nhost=node-b\npid=4242\nseen={seen}\n");
    std::fs::write(data.join("wharf.lock"), lease(seen)).expect("lease");
    let path = data.to_str().expect("UTF-8 path");
    let (ok, out) = wharf(&["serve", "--data", path, "--listen", "127.0.0.1:0", "--ftp-listen", "off"]);
    assert!(!ok && out.contains("node-b (pid 4242"), "{out}");
    std::fs::write(data.join("wharf.lock"), lease(seen - 60)).expect("lapsed lease");
    let s = Server::start_in(&data, &[]);
    assert_eq!(put(&s, "/taken-over", b"x".to_vec()).await, 201);
    let held = std::fs::read_to_string(data.join("wharf.lock")).expect("lease");
    assert!(held.contains(&format!("pid={}", s.pid())), "the new server's lease: {held}");
}

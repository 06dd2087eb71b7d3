//! No request reaches outside a served folder: not with `..` in any encoding, not through
//! symlinks planted in the folder (to `/etc`, to `..`, to a sibling folder), not even
//! through a symlink swapped between inside and outside while requests run. Every test
//! keeps a sibling folder `outside` with a marker and checks it is never read or changed.

use std::os::unix::fs::symlink;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{client_builder, ftp_as, raw_as};
use crate::host_common::*;

/// Content of the files outside: any answer holding it leaked them.
const MARKER: &str = "OUTSIDE-MARKER-7f3a9c";
/// Name of a file two levels outside, never named in any request: any answer holding it
/// listed an outside folder.
const DEEP: &str = "deep-outside.txt";

/// The team share, with `outside/outside-secret.txt` and `outside/sub/deep-outside.txt`
/// holding the marker, and `inside.txt` in the folder.
async fn guarded() -> Host {
    let h = team().await;
    std::fs::write(h.outside().join("outside-secret.txt"), MARKER).expect("write outside");
    std::fs::create_dir(h.outside().join("sub")).expect("mkdir outside");
    std::fs::write(h.outside().join("sub").join(DEEP), MARKER).expect("write outside");
    std::fs::write(h.disk("inside.txt"), "inside content").expect("write inside");
    h
}

/// Symlinks to places outside the folder, each with a name that gives nothing away.
fn plant_links(h: &Host) {
    symlink("/etc", h.disk("etc-link")).expect("symlink");
    symlink("/etc/passwd", h.disk("pw-link")).expect("symlink");
    symlink("..", h.disk("up")).expect("symlink");
    symlink("../outside", h.disk("out")).expect("symlink");
    symlink(h.outside(), h.disk("outabs")).expect("symlink");
    symlink(h.outside().join("outside-secret.txt"), h.disk("outfile")).expect("symlink");
    std::fs::create_dir(h.disk("nested")).expect("mkdir");
    symlink("../../outside/sub", h.disk("nested/deep-link")).expect("symlink");
}

/// Panics if `body` shows anything from outside the folder.
fn assert_nothing_from_outside(what: &str, body: &str) {
    for leak in [MARKER, DEEP, "outside-secret", "root:x:0:0", "os-release", "hostname"] {
        assert!(!body.contains(leak), "{what} shows {leak:?}: {body}");
    }
}

/// Panics unless the outside folder and the folders' common parent are as `guarded` left them.
fn assert_outside_untouched(h: &Host) {
    let want = vec![
        ("outside-secret.txt".to_owned(), MARKER.to_owned()),
        ("sub/".to_owned(), String::new()),
        (format!("sub/{DEEP}"), MARKER.to_owned()),
    ];
    assert_eq!(snapshot(&h.outside()), want, "the outside folder changed");
    assert_eq!(disk_names(h.root.path()), ["folder", "outside"], "something appeared beside the folder");
}

const TRAVERSALS: &[&str] = &[
    "/team/..%2foutside%2foutside-secret.txt",
    "/team/..%2Foutside/outside-secret.txt",
    "/team/%2e%2e/outside/outside-secret.txt",
    "/team/%2E%2E%2Foutside%2Foutside-secret.txt",
    "/team/.%2e/outside/outside-secret.txt",
    "/team/../outside/outside-secret.txt",
    "/team/..%5coutside%5coutside-secret.txt",
    "/team/%252e%252e%252foutside%252foutside-secret.txt",
    "/team/..%c0%afoutside%c0%afoutside-secret.txt",
    "/team/inside.txt/..%2f..%2foutside%2foutside-secret.txt",
    "/team/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/team/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
];

#[tokio::test]
async fn dot_dot_in_any_encoding_reads_nothing_outside_the_folder() {
    let h = guarded().await;
    for target in TRAVERSALS {
        let (status, answer) = raw_as(&h.s, ALICE, "GET", target, &[], b"");
        assert_ne!(status, 200, "GET {target}: {answer}");
        // (An error body may name the path asked for; only content would be a leak.)
        assert!(!answer.contains(MARKER) && !answer.contains("root:x:0:0"), "GET {target}: {answer}");
    }
    for target in ["/team/..%2foutside", "/team/%2e%2e/outside/sub/", "/team/..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc/"] {
        let (status, answer) = raw_as(&h.s, ALICE, "PROPFIND", target, &[("Depth", "1")], b"");
        assert_ne!(status, 207, "PROPFIND {target}: {answer}");
        assert_nothing_from_outside(&format!("PROPFIND {target}"), &answer);
    }
}

#[tokio::test]
async fn dot_dot_in_any_encoding_writes_nothing_outside_the_folder() {
    let h = guarded().await;
    for target in TRAVERSALS.iter().filter(|t| t.contains("outside-secret")) {
        raw_as(&h.s, ALICE, "PUT", target, &[], b"overwritten");
        raw_as(&h.s, ALICE, "DELETE", target, &[], b"");
        raw_as(&h.s, ALICE, "PROPPATCH", target, &[], set_tag("x").as_bytes());
        raw_as(&h.s, ALICE, "LOCK", target, &[], LOCKINFO.as_bytes());
    }
    for target in ["/team/..%2foutside%2fsub", "/team/%2e%2e/outside/sub/", "/team/..%2foutside"] {
        raw_as(&h.s, ALICE, "DELETE", target, &[], b"");
        raw_as(&h.s, ALICE, "MKCOL", target, &[], b"");
    }
    for target in ["/team/..%2foutside%2fnew.txt", "/team/%2e%2e/new.txt", "/team/%2e%2e/outside/new.txt"] {
        raw_as(&h.s, ALICE, "PUT", target, &[], b"new");
        raw_as(&h.s, ALICE, "MKCOL", &target.replace(".txt", "-dir"), &[], b"");
        raw_as(&h.s, ALICE, "LOCK", &target.replace(".txt", "-locked.txt"), &[], LOCKINFO.as_bytes());
    }
    // Destinations are paths too.
    let base = h.s.base.trim_end_matches('/').to_owned();
    for dest in ["/team/..%2foutside%2fmoved.txt", "/team/%2e%2e/outside/moved.txt", "/team/..%2f..%2fmoved.txt"] {
        let d = format!("{base}{dest}");
        raw_as(&h.s, ALICE, "COPY", "/team/inside.txt", &[("Destination", &d)], b"");
        raw_as(&h.s, ALICE, "MOVE", "/team/inside.txt", &[("Destination", &d)], b"");
    }
    let outside_file = format!("{base}/team/..%2foutside%2foutside-secret.txt");
    raw_as(&h.s, ALICE, "COPY", "/team/inside.txt", &[("Destination", &outside_file)], b"");
    raw_as(&h.s, ALICE, "MOVE", "/team/..%2foutside%2fsub", &[("Destination", &format!("{base}/team/stolen"))], b"");
    assert_outside_untouched(&h);
    assert_eq!(std::fs::read(h.disk("inside.txt")).expect("read"), b"inside content");
}

#[tokio::test]
async fn symlinks_pointing_out_of_the_folder_are_never_followed_for_reads() {
    let h = guarded().await;
    plant_links(&h);
    for path in [
        "/team/etc-link/passwd",
        "/team/pw-link",
        "/team/up/outside/outside-secret.txt",
        "/team/out/outside-secret.txt",
        "/team/out/sub/deep-outside.txt",
        "/team/outabs/outside-secret.txt",
        "/team/outfile",
        "/team/nested/deep-link/deep-outside.txt",
    ] {
        let r = h.req(ALICE, "GET", path).send().await.expect("GET");
        let status = r.status().as_u16();
        let body = r.text().await.expect("body");
        assert!(status == 404 || status == 403, "GET {path}: {status} {body}");
        assert_nothing_from_outside(&format!("GET {path}"), &body);
        let head = h.req(ALICE, "HEAD", path).send().await.expect("HEAD").status().as_u16();
        assert!(head == 404 || head == 403, "HEAD {path}: {head}");
    }
}

#[tokio::test]
async fn listings_of_a_folder_with_outward_symlinks_show_nothing_from_outside() {
    let h = guarded().await;
    plant_links(&h);
    for (path, depth) in [
        ("/team/", "1"),
        ("/team/", "infinity"),
        ("/team/nested/", "infinity"),
        ("/team/up/", "1"),
        ("/team/out/", "1"),
        ("/team/outabs/", "infinity"),
        ("/team/etc-link/", "1"),
        ("/team/nested/deep-link/", "1"),
    ] {
        let (status, xml) = propfind_as(&h, ALICE, path, depth, ALLPROP).await;
        assert_nothing_from_outside(&format!("PROPFIND {path} Depth {depth} ({status})"), &xml);
        if path == "/team/" && depth == "1" {
            let got = hrefs(status, &xml);
            assert!(got.contains(&"/team/inside.txt".to_owned()), "{got:?}");
        }
    }
    // The page, and the zip, of the whole folder.
    let page = h.req(ALICE, "GET", "/team/").header("Accept", "text/html").send().await.expect("GET");
    assert_eq!(page.status(), 200);
    assert_nothing_from_outside("the listing page", &page.text().await.expect("page"));
    let zip = h.req(ALICE, "GET", "/team/?download=zip").send().await.expect("GET");
    assert_eq!(zip.status(), 200);
    let bytes = zip.bytes().await.expect("zip");
    assert_nothing_from_outside("the zip", &String::from_utf8_lossy(&bytes));
    assert!(String::from_utf8_lossy(&bytes).contains("inside content"), "the zip holds the inside file");
}

#[tokio::test]
async fn writes_through_outward_symlinks_never_change_anything_outside() {
    let h = guarded().await;
    plant_links(&h);
    let dest = |p: &str| h.s.url(p);
    for path in [
        "/team/out/new.txt",
        "/team/outabs/sub/new.txt",
        "/team/up/outside/new.txt",
        "/team/outfile",
        "/team/out/outside-secret.txt",
        "/team/nested/deep-link/deep-outside.txt",
    ] {
        let _ = h.req(ALICE, "PUT", path).body("written through a link").send().await.expect("PUT");
    }
    for path in ["/team/out/newdir", "/team/outabs/sub/newdir", "/team/up/newdir"] {
        let _ = h.req(ALICE, "MKCOL", path).send().await.expect("MKCOL");
    }
    for path in ["/team/out/locked.txt", "/team/up/locked.txt", "/team/outabs/sub/locked.txt"] {
        let _ = h.req(ALICE, "LOCK", path).body(LOCKINFO).send().await.expect("LOCK");
    }
    for to in ["/team/out/copied.txt", "/team/outabs/sub/copied.txt", "/team/up/copied.txt", "/team/outfile"] {
        let _ = h.req(ALICE, "COPY", "/team/inside.txt").header("Destination", dest(to)).send().await.expect("COPY");
    }
    for to in ["/team/out/moved.txt", "/team/up/outside/moved.txt"] {
        std::fs::write(h.disk("mover.txt"), "mover").expect("write");
        let _ = h.req(ALICE, "MOVE", "/team/mover.txt").header("Destination", dest(to)).send().await.expect("MOVE");
    }
    let _ =
        h.req(ALICE, "MOVE", "/team/out/sub/").header("Destination", dest("/team/taken/")).send().await.expect("MOVE");
    let _ = h
        .req(ALICE, "MOVE", "/team/out/outside-secret.txt")
        .header("Destination", dest("/team/taken.txt"))
        .send()
        .await;
    let _ = h.req(ALICE, "COPY", "/team/outabs/").header("Destination", dest("/team/copied-dir/")).send().await;
    assert_outside_untouched(&h);
    for name in disk_names(&h.folder()) {
        let p = h.disk(&name);
        if std::fs::symlink_metadata(&p).expect("meta").is_file() {
            let content = std::fs::read(&p).expect("read");
            assert!(!String::from_utf8_lossy(&content).contains(MARKER), "{name} got outside content");
        }
    }
}

#[tokio::test]
async fn deletes_through_outward_symlinks_never_delete_anything_outside() {
    let h = guarded().await;
    plant_links(&h);
    for path in [
        "/team/out/outside-secret.txt",
        "/team/out/sub/",
        "/team/outabs/sub/deep-outside.txt",
        "/team/up/outside/",
        "/team/up/outside/outside-secret.txt",
        "/team/nested/deep-link/deep-outside.txt",
        "/team/outfile",
        "/team/out/",
        "/team/outabs",
        "/team/up/",
        "/team/nested/",
    ] {
        let _ = h.req(ALICE, "DELETE", path).send().await.expect("DELETE");
    }
    assert_outside_untouched(&h);
    assert!(h.folder().is_dir());
    assert_eq!(std::fs::read(h.disk("inside.txt")).expect("read"), b"inside content");
}

#[tokio::test]
async fn ftp_never_follows_symlinks_or_dot_dot_out_of_the_folder() {
    let h = guarded().await;
    plant_links(&h);
    let out = ftp_as(
        &h.s,
        ALICE.0,
        ALICE.1,
        "def attempt(fn):\n    try:\n        say(repr(fn()))\n    except (ftplib.Error, EOFError) as e:\n        say('refused ' + str(e)[:1])\n\
         f.cwd('team')\n\
         for p in ['out', 'outabs', 'up', 'up/outside', 'etc-link', 'nested/deep-link', '../..', '..%2f..']:\n\
         \x20   attempt(lambda: f.nlst(p))\n\
         \x20   attempt(lambda: [n for n, _ in f.mlsd(p)])\n\
         for p in ['out/outside-secret.txt', 'outfile', 'pw-link', 'etc-link/passwd', 'up/outside/outside-secret.txt', '../../outside/outside-secret.txt', '/../outside/outside-secret.txt']:\n\
         \x20   attempt(lambda: retr(p))\n\
         \x20   attempt(lambda: f.size(p))\n\
         for p in ['out', 'up', 'outabs/sub']:\n\
         \x20   attempt(lambda: f.cwd(p))\n\
         \x20   attempt(lambda: f.nlst())\n\
         \x20   f.cwd('/team')\n\
         for p in ['out/ftp.txt', 'up/outside/ftp.txt', 'outabs/sub/ftp.txt', 'out/outside-secret.txt', 'outfile', '../outside/ftp.txt']:\n\
         \x20   attempt(lambda: stor(p, b'ftp'))\n\
         for p in ['out/outside-secret.txt', 'outabs/sub/deep-outside.txt', 'up/outside/outside-secret.txt', 'outfile']:\n\
         \x20   attempt(lambda: f.delete(p))\n\
         for p in ['out/sub', 'up/outside/sub', 'out/newdir', 'up/newdir']:\n\
         \x20   attempt(lambda: f.rmd(p))\n\
         \x20   attempt(lambda: f.mkd(p + '2'))\n\
         attempt(lambda: f.rename('out/outside-secret.txt', 'taken.txt'))\n\
         attempt(lambda: f.rename('inside.txt', 'out/inside.txt'))\n\
         attempt(lambda: f.rename('up/outside/sub', 'stolen'))",
    );
    // Some listings may show the links' own names; never what is behind them.
    let shown: String = out.lines().filter(|l| !l.starts_with("refused")).collect::<Vec<_>>().join("\n");
    assert_nothing_from_outside("FTP", &shown);
    assert!(!shown.contains("'folder'"), "a listing of the folder's parent: {shown}");
    assert_outside_untouched(&h);
}

/// GET of `path` as alice within 10 s: status and the length of the whole body (an error
/// if the body broke off).
async fn fetch_soon(h: &Host, path: &str, accept: &str) -> (u16, Result<usize, reqwest::Error>) {
    let fetch = async {
        let r = h.req(ALICE, "GET", path).header("Accept", accept).send().await.expect("GET");
        (r.status().as_u16(), r.bytes().await.map(|b| b.len()))
    };
    tokio::time::timeout(Duration::from_secs(10), fetch).await.unwrap_or_else(|_| panic!("GET {path} never ends"))
}

/// PROPFIND of `path` as alice within 10 s.
async fn propfind_soon(h: &Host, path: &str, depth: &str) -> (u16, String) {
    let answer = propfind_as(h, ALICE, path, depth, ALLPROP);
    tokio::time::timeout(Duration::from_secs(10), answer)
        .await
        .unwrap_or_else(|_| panic!("PROPFIND {path} Depth {depth} never ends"))
}

fn plant_dangling_and_looping_links(h: &Host) {
    symlink("/nonexistent/nowhere", h.disk("dangling")).expect("symlink");
    symlink("loop-b", h.disk("loop-a")).expect("symlink");
    symlink("loop-a", h.disk("loop-b")).expect("symlink");
    symlink("self", h.disk("self")).expect("symlink");
}

#[tokio::test]
async fn dangling_and_looping_symlinks_do_not_fail_a_listing() {
    let h = guarded().await;
    plant_dangling_and_looping_links(&h);
    for depth in ["1", "infinity"] {
        let (status, xml) = propfind_soon(&h, "/team/", depth).await;
        let got = hrefs(status, &xml);
        assert!(got.contains(&"/team/inside.txt".to_owned()), "Depth {depth}: {got:?}");
    }
    let (status, _) = fetch_soon(&h, "/team/", "text/html").await;
    assert_eq!(status, 200, "the listing page");
    let out = ftp_as(
        &h.s,
        ALICE.0,
        ALICE.1,
        "say('inside.txt' in [n for n, _ in f.mlsd('team')])\nsay('inside.txt' in f.nlst('team'))",
    );
    assert_eq!(out, "True\nTrue\n");
}

#[tokio::test]
async fn get_of_a_dangling_or_looping_symlink_is_a_client_error() {
    let h = guarded().await;
    plant_dangling_and_looping_links(&h);
    for path in ["/team/dangling", "/team/loop-a", "/team/self", "/team/loop-b/x", "/team/dangling/x"] {
        let (status, _) = fetch_soon(&h, path, "*/*").await;
        assert!((400..500).contains(&status), "GET {path}: {status}");
    }
}

#[tokio::test]
async fn a_zip_of_a_folder_with_dangling_and_looping_symlinks_holds_its_files() {
    let h = guarded().await;
    plant_dangling_and_looping_links(&h);
    let (status, len) = fetch_soon(&h, "/team/?download=zip", "*/*").await;
    assert_eq!(status, 200);
    let len = len.expect("a whole zip");
    assert!(len > 0 && len < 1 << 20, "{len} bytes");
}

/// Links inside the folder that lead back up: following them, a walk never ends.
fn plant_cycles(h: &Host) {
    symlink(".", h.disk("here")).expect("symlink");
    std::fs::create_dir(h.disk("d")).expect("mkdir");
    symlink("..", h.disk("d/parent")).expect("symlink");
}

#[tokio::test]
async fn depth_infinity_over_a_symlink_cycle_inside_the_folder_ends() {
    let h = guarded().await;
    plant_cycles(&h);
    let (status, xml) = propfind_soon(&h, "/team/", "infinity").await;
    // Either the listing (each object once) or the finite-depth refusal.
    assert!(status == 207 || status == 403, "{status}: {xml}");
    if status == 207 {
        let got = hrefs(status, &xml);
        assert!(got.len() < 100, "{} responses: the walk went round the cycle", got.len());
    }
}

#[tokio::test]
async fn a_zip_of_a_folder_with_a_symlink_cycle_inside_ends() {
    let h = guarded().await;
    plant_cycles(&h);
    let (status, len) = fetch_soon(&h, "/team/?download=zip", "*/*").await;
    assert_eq!(status, 200);
    let len = len.expect("a whole zip");
    assert!(len < 1 << 20, "{len} bytes: the walk went round the cycle");
}

/// `inside` (a folder in the served folder) or the outside folder, relative or absolute.
fn swing_targets(h: &Host) -> [std::path::PathBuf; 4] {
    ["inside".into(), "../outside".into(), h.disk("inside"), h.outside()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_swapped_between_inside_and_outside_never_exposes_or_changes_the_outside() {
    let h = Arc::new(guarded().await);
    std::fs::create_dir_all(h.disk("inside/sub")).expect("mkdir");
    std::fs::write(h.disk("inside/secret-inside.txt"), "inside secret").expect("write");
    std::fs::write(h.disk("inside/sub/inside-deep.txt"), "inside deep").expect("write");
    symlink("inside", h.disk("swing")).expect("symlink");
    let run_for = Duration::from_secs(5);

    // Swaps `swing` as fast as it can: a fresh link beside the folder, renamed over it.
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, targets) = (stop.clone(), swing_targets(&h));
        let (fresh, swing) = (h.root.path().join("swing-fresh"), h.disk("swing"));
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _ = std::fs::remove_file(&fresh);
                symlink(&targets[(swaps % 4) as usize], &fresh).expect("symlink");
                std::fs::rename(&fresh, &swing).expect("rename over swing");
                swaps += 1;
            }
            swaps
        })
    };

    let leaks: Arc<Mutex<Vec<String>>> = Arc::default();
    let client = client_builder().timeout(Duration::from_secs(15)).build().expect("client");
    let deadline = Instant::now() + run_for;
    let auth = crate::harness::basic(ALICE.0, ALICE.1);

    // FTP: one Python process looping over the same paths.
    let ftp = {
        let h = h.clone();
        tokio::task::spawn_blocking(move || {
            ftp_as(
                &h.s,
                ALICE.0,
                ALICE.1,
                "host, port = f.host, f.port\n\
                 def fresh():\n    g = ftplib.FTP(); g.connect(host, port, timeout=8); g.login('alice', 'alice-pass-1'); return g\n\
                 end = time.time() + 5\n\
                 i = 0\n\
                 while time.time() < end:\n\
                 \x20   i += 1\n\
                 \x20   reads = [lambda: f.nlst('team/swing'), lambda: f.nlst('team/swing/sub'),\n\
                 \x20            lambda: [n for n, _ in f.mlsd('team/swing')],\n\
                 \x20            lambda: (lambda b: (f.retrlines('LIST team/swing/sub', b.append), b)[1])([]),\n\
                 \x20            lambda: retr('team/swing/outside-secret.txt'), lambda: retr('team/swing/secret-inside.txt')]\n\
                 \x20   writes = [lambda: stor('team/swing/ftp-%d.txt' % i, b'ftp'), lambda: stor('team/swing/sub/ftp-%d.txt' % i, b'ftp'),\n\
                 \x20             lambda: f.delete('team/swing/outside-secret.txt'), lambda: f.delete('team/swing/sub/' + 'deep-' + 'outside.txt'),\n\
                 \x20             lambda: f.rename('team/swing/outside-secret.txt', 'team/ftp-moved-%d.txt' % i),\n\
                 \x20             lambda: f.rmd('team/swing/sub')]\n\
                 \x20   for op in reads + writes:\n\
                 \x20       try:\n            r = op()\n            if op in reads: say(repr(r))\n\
                 \x20       except (ftplib.Error, EOFError):\n            pass\n\
                 \x20       except OSError:\n            f = fresh()\n\
                 f = fresh()\n\
                 say('iterations %d' % i)",
            )
        })
    };

    // WebDAV: one task per kind of request, each looping until the deadline.
    type Make = Box<dyn Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync>;
    let base = h.s.url("");
    let ops: Vec<(&str, Make)> = {
        let b = base.clone();
        let url = move |p: &str| format!("{b}{p}");
        let u = url.clone();
        let mut v: Vec<(&str, Make)> = Vec::new();
        v.push((
            "GET",
            Box::new({
                let u = u.clone();
                move |c, i| {
                    c.get(u(if i % 2 == 0 {
                        "/team/swing/outside-secret.txt"
                    } else {
                        "/team/swing/secret-inside.txt"
                    }))
                }
            }),
        ));
        v.push((
            "GET deep",
            Box::new({
                let u = u.clone();
                move |c, _| c.get(u("/team/swing/sub/inside-deep.txt"))
            }),
        ));
        v.push((
            "PROPFIND",
            Box::new({
                let u = u.clone();
                move |c, i| {
                    let p = if i % 2 == 0 { "/team/swing/" } else { "/team/swing/sub/" };
                    c.request(reqwest::Method::from_bytes(b"PROPFIND").expect("m"), u(p))
                        .header("Depth", if i % 3 == 0 { "infinity" } else { "1" })
                }
            }),
        ));
        v.push((
            "PUT",
            Box::new({
                let u = u.clone();
                move |c, i| {
                    let p = if i % 2 == 0 {
                        format!("/team/swing/put-{i}.txt")
                    } else {
                        format!("/team/swing/sub/put-{i}.txt")
                    };
                    c.put(u(&p)).body("put through swing")
                }
            }),
        ));
        v.push((
            "DELETE",
            Box::new({
                let u = u.clone();
                move |c, i| {
                    let p =
                        ["/team/swing/outside-secret.txt", "/team/swing/sub/", "/team/swing/secret-inside.txt"][i % 3];
                    c.delete(u(p))
                }
            }),
        ));
        v.push((
            "COPY",
            Box::new({
                let u = u.clone();
                move |c, i| {
                    let m = reqwest::Method::from_bytes(b"COPY").expect("m");
                    match i % 3 {
                        0 => c
                            .request(m, u("/team/swing/outside-secret.txt"))
                            .header("Destination", u(&format!("/team/copied-{i}.txt"))),
                        1 => {
                            c.request(m, u("/team/swing/sub/")).header("Destination", u(&format!("/team/copied-{i}/")))
                        }
                        _ => c
                            .request(m, u("/team/inside.txt"))
                            .header("Destination", u(&format!("/team/swing/sub/c-{i}.txt"))),
                    }
                }
            }),
        ));
        v.push((
            "MOVE",
            Box::new({
                let u = u.clone();
                move |c, i| {
                    let m = reqwest::Method::from_bytes(b"MOVE").expect("m");
                    match i % 3 {
                        0 => c
                            .request(m, u("/team/swing/outside-secret.txt"))
                            .header("Destination", u(&format!("/team/moved-{i}.txt"))),
                        1 => c.request(m, u("/team/swing/sub/")).header("Destination", u(&format!("/team/moved-{i}/"))),
                        _ => c
                            .request(m, u(&format!("/team/moved-{}/", i - 1)))
                            .header("Destination", u("/team/swing/sub/")),
                    }
                }
            }),
        ));
        v.push((
            "ZIP",
            Box::new({
                let u = u.clone();
                move |c, _| c.get(u("/team/swing/?download=zip"))
            }),
        ));
        v
    };
    let mut tasks = Vec::new();
    for (name, make) in ops {
        let (client, auth, leaks) = (client.clone(), auth.clone(), leaks.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while Instant::now() < deadline {
                i += 1;
                let r = make(&client, i).header("Authorization", &auth).send().await;
                let body = match r {
                    Ok(r) => r.bytes().await.map(|b| String::from_utf8_lossy(&b).into_owned()),
                    Err(e) => Err(e),
                };
                match body {
                    Ok(body) => {
                        let listing = name == "PROPFIND" || name == "ZIP";
                        let mut bad = vec![MARKER, DEEP];
                        if listing {
                            bad.push("outside-secret");
                        }
                        if let Some(leak) = bad.iter().find(|l| body.contains(*l)) {
                            leaks.lock().expect("lock").push(format!("{name} #{i} showed {leak:?}: {body}"));
                        }
                    }
                    Err(e) if e.is_timeout() => leaks.lock().expect("lock").push(format!("{name} #{i} timed out")),
                    Err(_) => {} // a refused body or a reset: not an exposure
                }
            }
            i
        }));
    }
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await.expect("task"));
    }
    let ftp_out = tokio::time::timeout(Duration::from_secs(60), ftp).await.expect("FTP loop hangs").expect("FTP task");
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().expect("swapper");
    let rounds: u32 = ftp_out
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("iterations "))
        .and_then(|n| n.parse().ok())
        .expect("FTP rounds");
    assert!(rounds > 5, "only {rounds} FTP rounds");
    assert!(swaps > 100, "only {swaps} swaps");
    assert!(counts.iter().all(|&n| n > 3), "too few requests: {counts:?}");

    let leaks = leaks.lock().expect("lock").clone();
    assert!(leaks.is_empty(), "{} leaks, first: {}", leaks.len(), leaks[0]);
    for leak in [MARKER, DEEP, "outside-secret"] {
        assert!(!ftp_out.contains(leak), "FTP showed {leak:?}: {ftp_out}");
    }
    assert_outside_untouched(&h);
    // Nothing from outside was copied or moved in.
    for (path, content) in snapshot(&h.folder()) {
        assert!(!content.contains(MARKER), "{path} holds outside content");
        assert!(!path.contains("deep-outside"), "{path} came from outside");
    }
    // And the server still answers.
    let (status, xml) = tokio::time::timeout(Duration::from_secs(10), propfind_as(&h, ALICE, "/team/", "1", ALLPROP))
        .await
        .expect("the server no longer answers");
    assert!(hrefs(status, &xml).contains(&"/team/inside.txt".to_owned()));
}

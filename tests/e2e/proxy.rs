//! Behind a reverse proxy: whose `X-Forwarded-For` counts, COPY and MOVE with the public
//! URL in `Destination`, and the separate lockout thresholds per user and per address.

use crate::harness::*;

/// A request as `user` from the loopback peer, with proxy-style headers.
async fn as_user(s: &Server, user: &str, password: &str, forwarded: &[(&str, &str)]) -> u16 {
    let mut r = new_client().get(s.url("/")).header("Authorization", basic(user, password));
    for (k, v) in forwarded {
        r = r.header(*k, *v);
    }
    r.send().await.expect("GET").status().as_u16()
}

#[tokio::test]
async fn a_spoofed_x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let s = Server::start_with(&["--lockout-after", "100", "--address-lockout-after", "2"]);
    // Each failure claims another address; the guard must count the real peer for both.
    assert_eq!(as_user(&s, "admin", "wrong", &[("X-Forwarded-For", "198.51.100.1")]).await, 401);
    assert_eq!(as_user(&s, "admin", "wrong", &[("X-Forwarded-For", "198.51.100.2")]).await, 401);
    let next = as_user(&s, "admin", ADMIN_PASSWORD, &[("X-Forwarded-For", "198.51.100.3")]).await;
    assert_eq!(next, 429, "the loopback peer itself is locked out");
}

#[tokio::test]
async fn a_trusted_proxys_x_forwarded_for_names_the_client_the_guard_counts() {
    let s = Server::start_with(&[
        "--trusted-proxies",
        "127.0.0.0/8",
        "--lockout-after",
        "100",
        "--address-lockout-after",
        "2",
    ]);
    let attacker = [("X-Forwarded-For", "203.0.113.66")];
    assert_eq!(as_user(&s, "admin", "wrong", &attacker).await, 401);
    assert_eq!(as_user(&s, "admin", "wrong", &attacker).await, 401);
    assert_eq!(as_user(&s, "admin", ADMIN_PASSWORD, &attacker).await, 429, "the attacker's address is locked out");
    let colleague = [("X-Forwarded-For", "203.0.113.7")];
    assert_eq!(as_user(&s, "admin", ADMIN_PASSWORD, &colleague).await, 200, "another client behind the proxy is not");
}

#[tokio::test]
async fn the_forwarded_header_of_a_trusted_proxy_is_read_too() {
    let s = Server::start_with(&["--trusted-proxies", "127.0.0.1", "--address-lockout-after", "1"]);
    let attacker = [("Forwarded", "for=\"[2001:db8::66]:4711\";proto=https")];
    assert_eq!(as_user(&s, "nobody", "wrong", &attacker).await, 401);
    assert_eq!(as_user(&s, "admin", ADMIN_PASSWORD, &attacker).await, 429);
    assert_eq!(as_user(&s, "admin", ADMIN_PASSWORD, &[]).await, 200, "the proxy's own address is not locked out");
}

#[tokio::test]
async fn a_few_typos_from_one_address_lock_out_the_user_but_not_the_address() {
    let s = Server::start_with(&["--lockout-after", "2"]);
    add_user(&s, "bob", "bob-secret", &[]);
    assert_eq!(as_user(&s, "admin", "typo", &[]).await, 401);
    assert_eq!(as_user(&s, "admin", "typo", &[]).await, 401);
    assert_eq!(as_user(&s, "admin", ADMIN_PASSWORD, &[]).await, 429, "the user name is locked out");
    assert_eq!(as_user(&s, "bob", "bob-secret", &[]).await, 200, "a colleague at the same address is not");
}

/// COPY or MOVE `/a.txt` to `destination`, sent through the proxy's eyes: the Host is the back
/// end's, the scheme and host the client used arrive in forwarding headers.
async fn transfer(s: &Server, method: &str, destination: &str, forwarded: &[(&str, &str)]) -> u16 {
    let mut r = s.req(method, "/a.txt").header("Destination", destination);
    for (k, v) in forwarded {
        r = r.header(*k, *v);
    }
    r.send().await.expect("transfer").status().as_u16()
}

const PUBLIC: [(&str, &str); 2] = [("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "files.example.org")];

#[tokio::test]
async fn copy_to_the_proxys_public_https_url_works() {
    let s = Server::start_with(&["--trusted-proxies", "127.0.0.1"]);
    assert_eq!(put(&s, "/a.txt", "payload").await, 201);
    assert_eq!(transfer(&s, "COPY", "https://files.example.org/b.txt", &PUBLIC).await, 201);
    assert_eq!(get(&s, "/b.txt").await, (200, b"payload".to_vec()));
}

#[tokio::test]
async fn move_to_the_proxys_public_https_url_works_with_forwarded() {
    let s = Server::start_with(&["--trusted-proxies", "127.0.0.1"]);
    assert_eq!(put(&s, "/a.txt", "payload").await, 201);
    let forwarded = [("Forwarded", "for=192.0.2.1;proto=https;host=files.example.org")];
    assert_eq!(transfer(&s, "MOVE", "https://files.example.org/moved%20here.txt", &forwarded).await, 201);
    assert_eq!(get(&s, "/moved%20here.txt").await, (200, b"payload".to_vec()));
    assert_eq!(get(&s, "/a.txt").await.0, 404);
}

#[tokio::test]
async fn a_public_destination_from_an_untrusted_peer_is_another_server() {
    let s = Server::start();
    assert_eq!(put(&s, "/a.txt", "payload").await, 201);
    assert_eq!(transfer(&s, "COPY", "https://files.example.org/b.txt", &PUBLIC).await, 502);
    assert_eq!(get(&s, "/b.txt").await.0, 404);
}

#[tokio::test]
async fn the_browser_page_behind_a_proxy_may_write_from_the_public_origin() {
    let s = Server::start_with(&["--trusted-proxies", "127.0.0.1"]);
    let page_write = |forwarded: &'static [(&'static str, &'static str)]| {
        let mut r = s
            .req("MKCOL", "/from-page/")
            .header("Origin", "https://files.example.org")
            .header("Sec-Fetch-Site", "same-origin")
            .header("X-Wharf-Request", "1");
        for (k, v) in forwarded {
            r = r.header(*k, *v);
        }
        r.send()
    };
    assert_eq!(
        page_write(&[]).await.expect("MKCOL").status().as_u16(),
        403,
        "without the proxy's word, a foreign origin"
    );
    assert_eq!(page_write(&PUBLIC).await.expect("MKCOL").status().as_u16(), 201);
}

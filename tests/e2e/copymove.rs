//! COPY, MOVE and DELETE (RFC 4918 9.6, 9.8, 9.9): status codes, subtree semantics, and
//! the content-addressed blob store sharing bytes between copies and reclaiming them.

use futures_util::{stream, StreamExt};

use crate::harness::{get, mkcol, propfind, put, stored_blobs, Server};

/// Members of the large collection.
const MEMBERS: usize = 1000;

/// Distinct content per member, so that every member owns its own blob.
fn member_body(i: usize) -> Vec<u8> {
    format!("member {i} of the big collection\n").repeat(1 + i % 7).into_bytes()
}

fn member_path(dir: &str, i: usize) -> String {
    format!("{dir}/f{i:04}")
}

/// Creates `dir` with `MEMBERS` files, PUT 16 at a time.
async fn fill_big_collection(s: &Server, dir: &str) {
    assert_eq!(mkcol(s, dir).await, 201);
    let statuses: Vec<u16> = stream::iter(0..MEMBERS)
        .map(|i| async move { put(s, &member_path(dir, i), member_body(i)).await })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses.iter().all(|&c| c == 201), "a member PUT failed: {statuses:?}");
}

/// COPY or MOVE `from` to `to` (a path on the same server) with extra headers.
async fn transfer(s: &Server, method: &str, from: &str, to: &str, headers: &[(&str, &str)]) -> u16 {
    let mut r = s.req(method, from).header("Destination", s.url(to));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.expect(method).status().as_u16()
}

/// Number of members PROPFIND Depth 1 lists below the collection at `path`.
async fn member_count(s: &Server, path: &str) -> usize {
    let body = "<?xml version=\"1.0\"?><D:propfind xmlns:D=\"DAV:\"><D:prop><D:getetag/></D:prop></D:propfind>";
    let (status, xml) = propfind(s, path, "1", body).await;
    assert_eq!(status, 207, "PROPFIND {path}: {xml}");
    xml.matches("<D:response>").count() - 1
}

/// GETs a handful of members spread over the range and compares their bytes.
async fn spot_check_members(s: &Server, dir: &str) {
    for i in [0, 1, 7, 123, 500, 777, 998, MEMBERS - 1] {
        let (status, body) = get(s, &member_path(dir, i)).await;
        assert_eq!(status, 200, "GET {}", member_path(dir, i));
        assert_eq!(body, member_body(i), "content of {}", member_path(dir, i));
    }
}

#[tokio::test]
async fn copy_of_a_large_collection_shares_blobs_and_copies_every_member() {
    let s = Server::start();
    fill_big_collection(&s, "/big").await;
    let blobs_before = stored_blobs(&s.data).await;
    assert_eq!(blobs_before, MEMBERS);

    assert_eq!(transfer(&s, "COPY", "/big", "/copy", &[]).await, 201);

    assert_eq!(member_count(&s, "/copy").await, MEMBERS);
    spot_check_members(&s, "/copy").await;
    spot_check_members(&s, "/big").await;
    assert_eq!(stored_blobs(&s.data).await, blobs_before, "COPY must not duplicate blob files");
}

#[tokio::test]
async fn move_of_a_large_collection_moves_every_member() {
    let s = Server::start();
    fill_big_collection(&s, "/big").await;

    assert_eq!(transfer(&s, "MOVE", "/big", "/moved", &[]).await, 201);

    assert_eq!(get(&s, "/big").await.0, 404);
    assert_eq!(get(&s, &member_path("/big", 0)).await.0, 404);
    assert_eq!(member_count(&s, "/moved").await, MEMBERS);
    spot_check_members(&s, "/moved").await;
    assert_eq!(stored_blobs(&s.data).await, MEMBERS);
}

#[tokio::test]
async fn copy_with_overwrite_false_onto_an_existing_resource_is_412() {
    let s = Server::start();
    assert_eq!(put(&s, "/a", "source").await, 201);
    assert_eq!(put(&s, "/b", "destination").await, 201);

    assert_eq!(transfer(&s, "COPY", "/a", "/b", &[("Overwrite", "F")]).await, 412);

    assert_eq!(get(&s, "/b").await.1, b"destination");
}

#[tokio::test]
async fn copy_with_overwrite_true_replaces_the_destination_with_204() {
    let s = Server::start();
    assert_eq!(put(&s, "/a", "source").await, 201);
    assert_eq!(put(&s, "/b", "destination").await, 201);

    assert_eq!(transfer(&s, "COPY", "/a", "/b", &[("Overwrite", "T")]).await, 204);

    assert_eq!(get(&s, "/b").await, (200, b"source".to_vec()));
    assert_eq!(get(&s, "/a").await, (200, b"source".to_vec()));
}

#[tokio::test]
async fn overwritten_destination_content_is_reclaimed() {
    let s = Server::start();
    assert_eq!(put(&s, "/a", "source").await, 201);
    assert_eq!(put(&s, "/b", "destination").await, 201);
    assert_eq!(stored_blobs(&s.data).await, 2);

    assert_eq!(transfer(&s, "COPY", "/a", "/b", &[]).await, 204);

    assert_eq!(stored_blobs(&s.data).await, 1, "the replaced content's blob is no longer referenced");
}

#[tokio::test]
async fn copy_overwriting_a_collection_replaces_its_whole_subtree() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/dst").await, 201);
    assert_eq!(put(&s, "/dst/old", "old member").await, 201);
    assert_eq!(put(&s, "/file", "a file").await, 201);

    assert_eq!(transfer(&s, "COPY", "/file", "/dst", &[]).await, 204);

    assert_eq!(get(&s, "/dst").await, (200, b"a file".to_vec()));
    assert_eq!(get(&s, "/dst/old").await.0, 404);
}

#[tokio::test]
async fn copy_depth_zero_of_a_collection_copies_no_members() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/c").await, 201);
    assert_eq!(put(&s, "/c/a", "a").await, 201);
    assert_eq!(mkcol(&s, "/c/sub").await, 201);

    assert_eq!(transfer(&s, "COPY", "/c", "/d", &[("Depth", "0")]).await, 201);

    assert_eq!(member_count(&s, "/d").await, 0);
    assert_eq!(get(&s, "/d/a").await.0, 404);
    assert_eq!(member_count(&s, "/c").await, 2);
}

#[tokio::test]
async fn copy_onto_itself_is_forbidden() {
    let s = Server::start();
    assert_eq!(put(&s, "/f", "x").await, 201);
    assert_eq!(transfer(&s, "COPY", "/f", "/f", &[]).await, 403);
}

#[tokio::test]
async fn move_onto_itself_is_forbidden() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/c").await, 201);
    assert_eq!(transfer(&s, "MOVE", "/c", "/c", &[]).await, 403);
    assert_eq!(member_count(&s, "/c").await, 0);
}

#[tokio::test]
async fn copy_into_its_own_subtree_is_forbidden() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/c").await, 201);
    assert_eq!(put(&s, "/c/a", "a").await, 201);

    assert_eq!(transfer(&s, "COPY", "/c", "/c/inner", &[]).await, 403);

    assert_eq!(get(&s, "/c/inner").await.0, 404);
}

#[tokio::test]
async fn move_into_its_own_subtree_is_forbidden() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/c").await, 201);
    assert_eq!(mkcol(&s, "/c/sub").await, 201);

    assert_eq!(transfer(&s, "MOVE", "/c", "/c/sub/c", &[]).await, 403);

    assert_eq!(member_count(&s, "/c").await, 1);
}

/// A collection holding `/c/sub/f`, for transfers onto an ancestor of the source.
async fn nested_source(s: &Server) {
    assert_eq!(mkcol(s, "/c").await, 201);
    assert_eq!(mkcol(s, "/c/sub").await, 201);
    assert_eq!(put(s, "/c/sub/f", "precious").await, 201);
}

#[tokio::test]
async fn copy_overwriting_an_ancestor_of_the_source_is_forbidden() {
    let s = Server::start();
    nested_source(&s).await;

    assert_eq!(transfer(&s, "COPY", "/c/sub", "/c", &[("Overwrite", "T")]).await, 403);

    assert_eq!(get(&s, "/c/sub/f").await, (200, b"precious".to_vec()));
}

#[tokio::test]
async fn move_overwriting_an_ancestor_of_the_source_is_forbidden() {
    let s = Server::start();
    nested_source(&s).await;

    assert_eq!(transfer(&s, "MOVE", "/c/sub", "/c", &[("Overwrite", "T")]).await, 403);

    assert_eq!(get(&s, "/c/sub/f").await, (200, b"precious".to_vec()));
}

#[tokio::test]
async fn copy_into_a_missing_parent_is_409() {
    let s = Server::start();
    assert_eq!(put(&s, "/f", "x").await, 201);
    assert_eq!(transfer(&s, "COPY", "/f", "/missing/f", &[]).await, 409);
}

#[tokio::test]
async fn move_into_a_missing_parent_is_409_and_keeps_the_source() {
    let s = Server::start();
    assert_eq!(put(&s, "/f", "x").await, 201);

    assert_eq!(transfer(&s, "MOVE", "/f", "/missing/f", &[]).await, 409);

    assert_eq!(get(&s, "/f").await, (200, b"x".to_vec()));
}

#[tokio::test]
async fn move_of_a_file_keeps_its_dead_properties() {
    let s = Server::start();
    assert_eq!(put(&s, "/f", "x").await, 201);
    let patch = "<?xml version=\"1.0\"?><D:propertyupdate xmlns:D=\"DAV:\" xmlns:Z=\"urn:wharf-test\">\
                 <D:set><D:prop><Z:colour>ultramarine</Z:colour></D:prop></D:set></D:propertyupdate>";
    let r = s.req("PROPPATCH", "/f").body(patch).send().await.expect("PROPPATCH");
    assert_eq!(r.status().as_u16(), 207);

    assert_eq!(transfer(&s, "MOVE", "/f", "/g", &[]).await, 201);

    let ask = "<?xml version=\"1.0\"?><D:propfind xmlns:D=\"DAV:\" xmlns:Z=\"urn:wharf-test\">\
               <D:prop><Z:colour/></D:prop></D:propfind>";
    let (status, xml) = propfind(&s, "/g", "0", ask).await;
    assert_eq!(status, 207);
    assert!(xml.contains("ultramarine"), "dead property lost by MOVE: {xml}");
    assert!(xml.contains("200 OK"), "{xml}");
    assert_eq!(get(&s, "/f").await.0, 404);
}

#[tokio::test]
async fn delete_of_a_collection_removes_its_whole_subtree() {
    let s = Server::start();
    let before = member_count(&s, "/").await;
    assert_eq!(mkcol(&s, "/c").await, 201);
    assert_eq!(mkcol(&s, "/c/sub").await, 201);
    assert_eq!(mkcol(&s, "/c/sub/deeper").await, 201);
    let members = ["/c/a", "/c/sub/b", "/c/sub/deeper/c"];
    for m in members {
        assert_eq!(put(&s, m, format!("content of {m}")).await, 201);
    }

    let r = s.req("DELETE", "/c").send().await.expect("DELETE");
    assert_eq!(r.status().as_u16(), 204);

    for p in ["/c", "/c/sub", "/c/sub/deeper"].into_iter().chain(members) {
        assert_eq!(get(&s, p).await.0, 404, "{p} survived the DELETE");
    }
    assert_eq!(member_count(&s, "/").await, before);
}

#[tokio::test]
async fn blobs_are_reclaimed_once_nothing_references_them() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/c").await, 201);
    assert_eq!(mkcol(&s, "/c/sub").await, 201);
    assert_eq!(put(&s, "/c/a", "alpha").await, 201);
    assert_eq!(put(&s, "/c/sub/b", "beta").await, 201);
    assert_eq!(transfer(&s, "COPY", "/c/a", "/a-copy", &[]).await, 201);
    assert_eq!(stored_blobs(&s.data).await, 2);

    assert_eq!(s.req("DELETE", "/c").send().await.expect("DELETE").status().as_u16(), 204);
    assert_eq!(stored_blobs(&s.data).await, 1, "only the blob /a-copy still references is kept");

    assert_eq!(s.req("DELETE", "/a-copy").send().await.expect("DELETE").status().as_u16(), 204);
    assert_eq!(stored_blobs(&s.data).await, 0, "no resource references a blob any more");
}

#[tokio::test]
async fn copy_stays_readable_after_its_source_is_deleted() {
    let s = Server::start();
    let content = b"shared bytes ".repeat(10_000);
    assert_eq!(put(&s, "/src", content.clone()).await, 201);
    assert_eq!(transfer(&s, "COPY", "/src", "/dst", &[]).await, 201);
    assert_eq!(stored_blobs(&s.data).await, 1, "the copy shares the source's blob");

    assert_eq!(s.req("DELETE", "/src").send().await.expect("DELETE").status().as_u16(), 204);

    assert_eq!(stored_blobs(&s.data).await, 1, "a blob still referenced must not be reclaimed");
    assert_eq!(get(&s, "/dst").await, (200, content));
}

#[tokio::test]
async fn destination_on_another_host_is_502() {
    let s = Server::start();
    assert_eq!(put(&s, "/f", "x").await, 201);

    let r = s.req("COPY", "/f").header("Destination", "http://example.invalid/x").send().await.expect("COPY");
    assert_eq!(r.status().as_u16(), 502);
    let r = s.req("MOVE", "/f").header("Destination", "http://example.invalid/x").send().await.expect("MOVE");
    assert_eq!(r.status().as_u16(), 502);

    assert_eq!(get(&s, "/f").await, (200, b"x".to_vec()));
}

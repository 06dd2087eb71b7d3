//! The model on a mounted folder, below the adapters: properties belong to objects, a move
//! between trees carries them, and the preconditions a transfer's steps run with only
//! submit tokens.

use futures_util::stream;

use crate::condition::Preconditions;
use crate::path::DavPath;
use crate::props::{DeadProp, PatchOp, PropName};
use crate::{ByteStream, LockRequest, LockScope, PutOptions, Repository, Transfer};

fn p(s: &str) -> DavPath {
    DavPath::parse(s).unwrap()
}

fn body(bytes: &'static [u8]) -> ByteStream {
    Box::pin(stream::once(async move { Ok(bytes::Bytes::from_static(bytes)) }))
}

/// A scratch repository with the share `team` serving a fresh temporary folder.
async fn mounted() -> (tempfile::TempDir, tempfile::TempDir, Repository) {
    let (db, repo) = Repository::scratch().await;
    let folder = tempfile::tempdir().unwrap();
    repo.add_host_share("team", folder.path(), false, None).await.unwrap();
    (db, folder, repo)
}

fn colour(value: &str) -> PatchOp {
    let xml = format!("<C:colour xmlns:C=\"urn:c\">{value}</C:colour>");
    PatchOp::Set(DeadProp { name: PropName::new("urn:c", "colour"), xml, text: Some(value.into()) })
}

async fn dead(repo: &Repository, path: &str) -> Vec<DeadProp> {
    let r = repo.resolve(&p(path)).await.unwrap().unwrap();
    repo.entry(&r).await.unwrap().dead
}

#[tokio::test]
async fn a_file_another_program_replaces_does_not_inherit_its_dead_properties() {
    let (_db, folder, repo) = mounted().await;
    repo.put(&p("/shares/team/f"), body(b"one"), PutOptions::default()).await.unwrap();
    repo.proppatch(&p("/shares/team/f"), &[colour("red")], &Preconditions::default(), None).await.unwrap();
    assert_eq!(dead(&repo, "/shares/team/f").await.len(), 1);
    let file = folder.path().join("f");
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, b"another program's").unwrap();
    assert!(dead(&repo, "/shares/team/f").await.is_empty());
}

#[tokio::test]
async fn a_move_from_the_store_into_a_folder_carries_bytes_and_dead_properties() {
    let (_db, folder, repo) = mounted().await;
    repo.put(&p("/doc"), body(b"bytes"), PutOptions::default()).await.unwrap();
    repo.proppatch(&p("/doc"), &[colour("blue")], &Preconditions::default(), None).await.unwrap();
    let pre = Preconditions::default();
    let (src, dst) = (p("/doc"), p("/shares/team/doc"));
    repo.transfer(Transfer::deep(&src, &dst, true, &pre)).await.unwrap();
    assert_eq!(std::fs::read(folder.path().join("doc")).unwrap(), b"bytes");
    assert!(repo.resolve(&src).await.unwrap().is_none());
    let props = dead(&repo, "/shares/team/doc").await;
    assert_eq!(props.len(), 1);
    assert!(props[0].xml.contains("blue"));
}

#[tokio::test]
async fn proving_preconditions_submit_tokens_and_demand_nothing_else() {
    let (_db, _folder, repo) = mounted().await;
    let file = p("/shares/team/locked");
    let req = LockRequest {
        scope: LockScope::Exclusive,
        depth_infinite: false,
        owner_xml: None,
        principal: Some("alice".into()),
        timeouts: vec![],
    };
    let (lock, _) = repo.lock(&file, req, &Preconditions::default()).await.unwrap();
    let as_alice = |pre: Preconditions| PutOptions { pre, principal: Some("alice".into()), ..PutOptions::default() };
    let refused = repo.put(&file, body(b"x"), as_alice(Preconditions::default())).await;
    assert!(matches!(refused, Err(crate::Error::Locked(_))), "{refused:?}");
    let proving = Preconditions::proving([lock.token.as_str()].into_iter());
    repo.put(&file, body(b"x"), as_alice(proving)).await.unwrap();
}

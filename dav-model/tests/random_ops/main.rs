//! Model tests driven by random operation sequences (issue 16). Two principals PUT, MKCOL,
//! COPY, MOVE, DELETE, PROPPATCH, LOCK and UNLOCK on their homes and two shares, with names
//! from a small pool of awkward ones (NFC and NFD spellings, dots, spaces, 200+ bytes).
//! After every step the store, walked through a View, must show what a small in-memory
//! reference of the same semantics holds (`reference.rs`), and its invariants must hold
//! (`invariants.rs`). A failing sequence shrinks to a minimal one; those found are kept
//! below as named regression tests, and proptest records the seeds of failures in
//! `proptest-regressions/random_ops.txt`, which it replays first on every run.
//!
//! 64 sequences of up to 40 operations by default; for more:
//! `PROPTEST_CASES=5000 cargo test -p dav-model --test random_ops --release`.

mod invariants;
mod ops;
mod reference;
mod state;
mod store;
mod world;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use ops::{Area, Body, Op, Submit, Target, ViewPath, Who};

const DEFAULT_CASES: u32 = 64;
const REGRESSIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proptest-regressions/random_ops.txt");

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = DEFAULT_CASES;
    }
    config.failure_persistence = Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS)));
    config
}

/// No quota half of the time (the plain, one-trip write paths only run then), else one
/// that three files of 3,000 bytes exceed.
fn quota() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![Just(None), Just(Some(8_000))]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_operation_sequences_agree_with_the_reference(
        quota in quota(),
        ops in proptest::collection::vec(ops::op(), 1..=40),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let result = rt.block_on(world::run(quota, &ops));
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

// ---- named sequences: minimal cases of bugs found, and cases worth running every time ----

fn path(area: Area, names: &[&str]) -> Target {
    Target::Fresh(ViewPath::new(area, names))
}

/// Runs a fixed sequence exactly as the random test runs its own.
async fn replay(quota: Option<u64>, ops: &[Op]) {
    if let Err(e) = world::run(quota, ops).await {
        panic!("{e}");
    }
}

/// Finder sends NFD; both spellings address one file, so the second PUT replaces it.
#[tokio::test]
async fn nfc_and_nfd_spellings_name_one_resource() {
    let (nfc, nfd) = ("\u{e9}", "e\u{301}");
    let body = Body { len: 5, fill: 1 };
    replay(
        None,
        &[
            Op::Put { who: Who::Alice, path: path(Area::Team, &[nfd]), body, submit: Submit::Nothing },
            Op::Put { who: Who::Bob, path: path(Area::Team, &[nfc]), body, submit: Submit::Nothing },
        ],
    )
    .await;
}

/// A deep COPY of a folder was not checked against the quota at all (only a file's was):
/// here it would have taken the store to 80,000 bytes of 60,000.
#[tokio::test]
async fn copying_a_folder_counts_its_files_against_the_quota() {
    let big = Body { len: 40_000, fill: 0 };
    let alice = Who::Alice;
    replay(
        Some(60_000),
        &[
            Op::Mkcol { who: alice, path: path(Area::Team, &["a"]), submit: Submit::Nothing },
            Op::Put { who: alice, path: path(Area::Team, &["a", "f"]), body: big, submit: Submit::Nothing },
            Op::Copy {
                who: alice,
                src: path(Area::Team, &["a"]),
                dst: path(Area::Team, &["b"]),
                deep: true,
                overwrite: false,
                submit: Submit::Nothing,
            },
        ],
    )
    .await;
}

/// Both holders of shared locks know each other's tokens; a refresh submitting both must
/// refresh the requester's own lock, not fail on whichever row came first.
#[tokio::test]
async fn a_refresh_with_everyones_tokens_refreshes_the_requesters_own_lock() {
    let file = || path(Area::Team, &["shared.txt"]);
    let body = Body { len: 3, fill: 2 };
    replay(
        None,
        &[
            Op::Put { who: Who::Alice, path: file(), body, submit: Submit::Nothing },
            Op::Lock { who: Who::Alice, path: file(), exclusive: false, deep: false, submit: Submit::Nothing },
            Op::Lock { who: Who::Bob, path: file(), exclusive: false, deep: false, submit: Submit::Nothing },
            Op::Refresh { who: Who::Bob, path: file(), submit: Submit::Everyone },
            Op::Refresh { who: Who::Alice, path: file(), submit: Submit::Everyone },
        ],
    )
    .await;
}

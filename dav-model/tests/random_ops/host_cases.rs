//! Named sequences on the share `host`, served from a host folder: each the minimal case
//! of a divergence from the store's semantics the random sequences found in the mount
//! code (fixed there), and cases worth running every time.

use crate::ops::{too_long_for_a_host, Area, Body, Op, Submit, Target, Who, RESERVED_ON_A_HOST};
use crate::state::Limits;
use crate::{path, replay};

const ALICE: Who = Who::Alice;
const SMALL: Body = Body { len: 5, fill: 1 };
const MID: Body = Body { len: 3000, fill: 2 };

fn host(names: &[&str]) -> Target {
    path(Area::Host, names)
}

fn put(path: Target, body: Body) -> Op {
    Op::Put { who: ALICE, path, body, submit: Submit::Nothing }
}

fn mkcol(path: Target) -> Op {
    Op::Mkcol { who: ALICE, path, submit: Submit::Nothing }
}

fn lock(path: Target) -> Op {
    Op::Lock { who: ALICE, path, exclusive: true, deep: false, submit: Submit::Nothing }
}

/// The RFC 4331 figure of a folder without a cap moved only when a walk of it was due (5
/// seconds): a PUT without conditions or locks did not adjust it, as other writes do.
#[tokio::test]
async fn a_plain_put_into_the_host_folder_shows_in_its_used_bytes_at_once() {
    replay(Limits::default(), &[put(host(&["a"]), MID), put(host(&["b"]), SMALL)]).await;
}

/// Conditions are evaluated before the parent is looked at, as in the store (412, not 409).
#[tokio::test]
async fn a_put_into_the_host_folder_evaluates_its_conditions_before_the_parent() {
    replay(
        Limits::default(),
        &[
            put(host(&["f"]), SMALL),
            lock(host(&["f"])),
            Op::Put { who: ALICE, path: host(&["missing", "f"]), body: SMALL, submit: Submit::Untagged(0) },
        ],
    )
    .await;
}

/// A name the folder keeps for its temporary files, in a folder that does not exist: 409
/// as any other name there, not 403 (a LOCK creating it, or a PUT on the plain path).
#[tokio::test]
async fn a_reserved_name_in_a_missing_host_folder_is_a_conflict() {
    let reserved = || host(&["missing", RESERVED_ON_A_HOST]);
    replay(Limits::default(), &[lock(reserved()), put(reserved(), SMALL)]).await;
}

/// A transfer between the trees checks the destination's parent (409) and what is there
/// (412) before the destination's locks (423), as within the store.
#[tokio::test]
async fn a_move_into_the_host_folder_checks_the_destination_parent_before_its_locks() {
    replay(
        Limits::default(),
        &[
            put(path(Area::Team, &["f"]), SMALL),
            Op::Lock { who: Who::Bob, path: host(&[]), exclusive: true, deep: true, submit: Submit::Nothing },
            Op::Move {
                who: ALICE,
                src: path(Area::Team, &["f"]),
                dst: host(&["missing", "f"]),
                overwrite: false,
                submit: Submit::Nothing,
            },
        ],
    )
    .await;
}

/// A file copied over a file of the other tree replaces it in one step (the PUT of the
/// copy), which must end as if it had been deleted first (RFC 4918 9.8.4): its lock and
/// the dead properties the source does not have went on living on the new file.
#[tokio::test]
async fn a_file_copied_over_a_file_of_the_other_tree_takes_its_locks_and_properties_away() {
    let (src, dst) = (|| path(Area::Team, &["f"]), || host(&["f"]));
    let patch =
        Op::PropPatch { who: ALICE, path: dst(), instrs: vec![crate::ops::Instr::Set(0, 1)], submit: Submit::Nothing };
    let copy = |submit| Op::Copy { who: ALICE, src: src(), dst: dst(), deep: true, overwrite: true, submit };
    replay(
        Limits::default(),
        &[put(src(), SMALL), put(dst(), MID), patch, copy(Submit::Nothing), lock(dst()), copy(Submit::Mine)],
    )
    .await;
}

/// Within the folder, a MOVE over a locked file (its lock proven) takes that lock away
/// with the file it replaces, as in the store.
#[tokio::test]
async fn a_move_over_a_locked_file_in_the_host_folder_takes_its_lock_away() {
    replay(
        Limits::default(),
        &[
            put(host(&["a"]), SMALL),
            put(host(&["b"]), MID),
            lock(host(&["b"])),
            Op::Move { who: ALICE, src: host(&["a"]), dst: host(&["b"]), overwrite: true, submit: Submit::Mine },
        ],
    )
    .await;
}

/// A COPY Depth 0 of a folder creates an empty folder: its members don't count against
/// the folder's cap.
#[tokio::test]
async fn a_depth_0_copy_in_the_host_folder_counts_no_members_against_its_cap() {
    replay(
        Limits { store: None, host: Some(8_000) },
        &[
            mkcol(host(&["a"])),
            put(host(&["a", "f"]), MID),
            put(host(&["a", "g"]), Body { fill: 0, ..MID }),
            Op::Copy {
                who: ALICE,
                src: host(&["a"]),
                dst: host(&["b"]),
                deep: false,
                overwrite: false,
                submit: Submit::Nothing,
            },
        ],
    )
    .await;
}

/// A folder of the store moved into the host folder with names the host can't hold
/// arrives in part (207 naming them, 400 and 403) and stays where it was; the rest of it,
/// a subfolder included, is in the host folder.
#[tokio::test]
async fn a_folder_moved_into_the_host_with_names_it_cannot_hold_arrives_in_part() {
    let team = |names: &[&str]| path(Area::Team, names);
    let long = too_long_for_a_host();
    replay(
        Limits::default(),
        &[
            mkcol(team(&["a"])),
            put(team(&["a", "fine"]), SMALL),
            put(team(&["a", &long]), SMALL),
            mkcol(team(&["a", "sub"])),
            put(team(&["a", "sub", RESERVED_ON_A_HOST]), SMALL),
            put(team(&["a", "sub", "fine"]), SMALL),
            Op::Move { who: ALICE, src: team(&["a"]), dst: host(&["a"]), overwrite: false, submit: Submit::Nothing },
        ],
    )
    .await;
}

/// A folder of the host copied into a store that can't hold all of it: the files that
/// don't fit are named with 507, the others arrive.
#[tokio::test]
async fn a_folder_copied_into_a_full_store_arrives_in_part() {
    replay(
        Limits { store: Some(8_000), host: None },
        &[
            mkcol(host(&["a"])),
            put(host(&["a", "1"]), MID),
            put(host(&["a", "2"]), Body { fill: 0, ..MID }),
            put(host(&["a", "3"]), Body { fill: 1, ..MID }),
            Op::Copy {
                who: ALICE,
                src: host(&["a"]),
                dst: path(Area::Home, &["a"]),
                deep: true,
                overwrite: false,
                submit: Submit::Nothing,
            },
        ],
    )
    .await;
}

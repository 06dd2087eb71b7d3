//! `wharf fsck`, `wharf backup` and `wharf restore`: the operator's tools for a data
//! directory. The work is the model's ([`Repository::fsck`], [`dav_model::backup`]); this
//! module parses the command line, decides whether a running server allows the command,
//! and prints one line per problem and per repair, then a summary.
//!
//! A running server holds the data directory's lock ([`DataDirLock`]). A check and a
//! backup work beside it; a repair or a restore need the store to themselves and refuse.

use std::path::{Path, PathBuf};

use clap::Args;
use dav_model::backup::Copied;
use dav_model::datadir::DataDirLock;
use dav_model::fsck::{FsckOptions, Outcome, Report};
use dav_model::Repository;

/// Check the store's consistency, and repair what can be repaired.
#[derive(Debug, Args)]
pub struct FsckArgs {
    /// Directory holding the database and the blobs.
    #[arg(long, env = "WHARF_DATA", default_value = "data")]
    data: PathBuf,
    /// Repair what can be repaired (the server must be stopped).
    #[arg(long)]
    repair: bool,
    /// Also read every blob and check its bytes against its id and size.
    #[arg(long)]
    verify_content: bool,
    /// The server's database, if it is PostgreSQL (`--database` of `wharf serve`).
    #[arg(long, env = "WHARF_DATABASE")]
    database: Option<String>,
}

/// Write a consistent copy of the data directory to DEST, while the server runs.
#[derive(Debug, Args)]
pub struct BackupArgs {
    #[arg(long, env = "WHARF_DATA", default_value = "data")]
    data: PathBuf,
    /// A new or empty directory; on the same file system, blobs are hard-linked.
    dest: PathBuf,
    /// Refused when set: see [`on_postgres`].
    #[arg(long, env = "WHARF_DATABASE", hide = true)]
    database: Option<String>,
}

/// Bring a backup back as the data directory (the server must be stopped).
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A directory written by `wharf backup`.
    backup: PathBuf,
    #[arg(long, env = "WHARF_DATA", default_value = "data")]
    data: PathBuf,
    /// Replace the database and blobs of a data directory that is not empty.
    #[arg(long)]
    force: bool,
    /// Read every restored blob when checking the result.
    #[arg(long)]
    verify_content: bool,
    /// Refused when set: see [`on_postgres`].
    #[arg(long, env = "WHARF_DATABASE", hide = true)]
    database: Option<String>,
}

/// Backup and restore copy an SQLite database file and its blobs; a PostgreSQL database
/// is backed up with PostgreSQL's own tools, while every node keeps serving.
fn on_postgres(database: Option<String>, what: &str) -> Result<(), String> {
    match crate::config::parse_database(database)? {
        Some(_) => Err(format!(
            "{what} works on SQLite data directories; this repository's database is PostgreSQL: \
             use pg_dump / pg_restore (and the object store's own copies for --blobs s3://)"
        )),
        None => Ok(()),
    }
}

pub async fn fsck(args: FsckArgs) -> Result<(), String> {
    let database = crate::config::parse_database(args.database)?;
    if database.is_some() && args.repair {
        // The data directory's lock tells only whether this machine's server runs.
        return Err("--repair needs the repository to itself, and other nodes may be serving this PostgreSQL \
                    database: run the check without --repair"
            .into());
    }
    if database.is_none() && !args.data.join("wharf.db").is_file() {
        return Err(format!("no repository in {} (no wharf.db)", args.data.display()));
    }
    let lock = DataDirLock::try_take(&args.data).map_err(|e| e.to_string())?.map(std::sync::Arc::new);
    if let Some(held) = &lock {
        DataDirLock::keep_renewed(held);
    }
    if lock.is_none() && args.repair {
        return Err(format!(
            "a server is running on {}: stop it before --repair (a check without --repair works beside it)",
            args.data.display()
        ));
    }
    let options = FsckOptions { repair: args.repair, verify_content: args.verify_content };
    let report = check(&args.data, database.as_deref(), options).await?;
    if lock.is_none() && !report.is_clean() {
        println!(
            "note: a server is running on {}; each finding was confirmed, but may be momentary",
            args.data.display()
        );
    }
    verdict(&report)
}

async fn check(data: &Path, database: Option<&str>, options: FsckOptions) -> Result<Report, String> {
    let repo = Repository::open_maintenance(data, database).await.map_err(|e| e.to_string())?;
    let report = repo.fsck(options).await.map_err(|e| format!("fsck of {}: {e}", data.display()));
    repo.close().await;
    let report = report?;
    print_report(&report);
    Ok(report)
}

/// One line per problem and one per repair, then the summary.
fn print_report(report: &Report) {
    let (mut repaired, mut left) = (0, 0);
    for problem in &report.problems {
        println!("problem: {}", problem.finding);
        match &problem.outcome {
            Outcome::Found => {}
            Outcome::Repaired(r) => {
                repaired += 1;
                println!("  repaired: {r}");
            }
            Outcome::Left(why) => {
                left += 1;
                println!("  not repaired: {why}");
            }
        }
    }
    for finding in &report.remaining {
        println!("remaining: {finding}");
    }
    let found = report.problems.len();
    let state = if report.is_consistent() { "consistent" } else { "NOT consistent" };
    let done = if repaired + left > 0 { format!(", {repaired} repaired, {left} not repaired") } else { String::new() };
    println!("fsck: {found} problem{}{done}; checked {}; {state}", plural(found), report.counts);
}

/// Exit status 0 when the store is consistent (now), 1 otherwise.
fn verdict(report: &Report) -> Result<(), String> {
    if report.is_consistent() {
        return Ok(());
    }
    let n = if report.remaining.is_empty() { report.problems.len() } else { report.remaining.len() };
    Err(format!("{n} problem{} remain{}", plural(n), if n == 1 { "s" } else { "" }))
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

pub async fn backup(args: BackupArgs) -> Result<(), String> {
    on_postgres(args.database, "wharf backup")?;
    let done = dav_model::backup::backup(&args.data, &args.dest).await.map_err(|e| format!("backup: {e}"))?;
    println!(
        "backup: {} written: the database and {} blobs ({} hard-linked, {} copied), {} snapshot{}",
        args.dest.display(),
        done.blobs,
        done.linked,
        done.copied,
        done.rounds,
        plural(done.rounds as usize)
    );
    host_folders_note(&done);
    if !done.missing.is_empty() {
        for blob in &done.missing {
            println!("problem: blob {blob} is missing from the store, so from the backup too");
        }
        return Err(format!("the store is damaged ({} blobs missing): run wharf fsck", done.missing.len()));
    }
    Ok(())
}

pub async fn restore(args: RestoreArgs) -> Result<(), String> {
    on_postgres(args.database, "wharf restore")?;
    let Some(lock) = DataDirLock::try_take(&args.data).map_err(|e| e.to_string())? else {
        return Err(format!("a server is running on {}: stop it before restoring", args.data.display()));
    };
    let lock = std::sync::Arc::new(lock);
    DataDirLock::keep_renewed(&lock);
    let done =
        dav_model::backup::restore(&args.backup, &args.data, args.force).await.map_err(|e| format!("restore: {e}"))?;
    println!(
        "restore: {} restored from {}: {} blobs ({} hard-linked, {} copied)",
        args.data.display(),
        args.backup.display(),
        done.blobs,
        done.linked,
        done.copied
    );
    host_folders_note(&done);
    let report = check(&args.data, None, FsckOptions { repair: false, verify_content: args.verify_content }).await?;
    verdict(&report)
}

/// Host folders are served in place: their files were never part of the store.
fn host_folders_note(done: &Copied) {
    for (stored, folder) in &done.host_folders {
        println!("note: {stored} serves the host folder {folder}: its settings and properties are included, its files are not");
    }
}

//! `wharf`: the binary. Adapters only — WebDAV over HTTP now, FTP and the browser front end
//! later — onto the protocol-agnostic `dav-model`.

use clap::{Parser, Subcommand};
use wharf::{admin, config, maintenance, ops, serve};

mod alloc;

/// glibc's malloc took a fifth of the instructions of a small PUT (callgrind), much of it
/// on memory freed by another thread than the one that allocated it, which is how a
/// request's memory moves between tokio's workers and SQLite's thread.
#[global_allocator]
static ALLOCATOR: alloc::Mimalloc = alloc::Mimalloc;

/// mimalloc asks for transparent huge pages for its memory, and the kernel then zeroes
/// 2 MiB at a fault where 4 KiB would do: under many small uploads, a sixth of the
/// process's CPU time went to `clear_page` (perf), and a 4 KiB PUT cost 15-20% more CPU
/// than with huge pages off. Large transfers stream through buffers of 1 MiB at most,
/// which gain nothing measurable from huge pages.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE only sets a flag of this process; it reads no memory.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[derive(Parser)]
#[command(name = "wharf", version, about = "A WebDAV file server whose tree lives in SQL")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the tree over WebDAV.
    Serve(Box<config::ServeArgs>),
    /// Manage users (works while `wharf serve` runs on the same data directory).
    User(admin::UserCommand),
    /// Manage shares and who may use them.
    Share(admin::ShareCommand),
    /// Ask a running server whether it is ready (its `/readyz`): exit 0 if so, 1 if not.
    /// For container health checks.
    Healthcheck(ops::healthcheck::Args),
    /// Check the store's consistency (beside a running server), or repair it (stopped).
    Fsck(maintenance::FsckArgs),
    /// Write a consistent copy of the data directory, while the server runs.
    Backup(maintenance::BackupArgs),
    /// Bring a backup back as the data directory (the server must be stopped).
    Restore(maintenance::RestoreArgs),
}

fn main() -> std::process::ExitCode {
    no_transparent_huge_pages();
    let cli = Cli::parse();
    // `wharf serve` starts logging itself, once its settings say in which format.
    if !matches!(cli.command, Command::Serve(_)) {
        wharf::logging::init(false);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return failure(format!("cannot start the runtime: {e}")),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::serve(*args).await,
            Command::User(cmd) => admin::user(cmd).await,
            Command::Share(cmd) => admin::share(cmd).await,
            Command::Healthcheck(args) => ops::healthcheck::run(args).await,
            Command::Fsck(args) => maintenance::fsck(args).await,
            Command::Backup(args) => maintenance::backup(args).await,
            Command::Restore(args) => maintenance::restore(args).await,
        }
    });
    // Every command awaits what it needs before returning; what is left are background tasks.
    // Don't wait on them without bound: sqlx 0.8's pool maintenance task can spin without
    // yielding after its pool closed, and `wharf fsck` then never exited.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => failure(e),
    }
}

fn failure(message: String) -> std::process::ExitCode {
    eprintln!("wharf: {message}");
    std::process::ExitCode::FAILURE
}

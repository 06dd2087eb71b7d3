//! `wharf`: the binary. Adapters only — WebDAV over HTTP now, FTP and the browser front end
//! later — onto the protocol-agnostic `dav-model`.

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use wharf::{admin, config, maintenance, ops, serve};

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

/// Logs go to stderr, as text or (`--log-format json`) one JSON object per line for log
/// collectors; `WHARF_LOG` filters them like `RUST_LOG`.
fn init_logging(json: bool) {
    // libunftp logs through the `log` crate (bridged by the `tracing-log` feature); its
    // info level is one line per command, so by default only its warnings show.
    let filter = EnvFilter::try_from_env("WHARF_LOG").unwrap_or_else(|_| EnvFilter::new("info,libunftp=warn"));
    // Colours only for a terminal: `docker logs` and log files would show the escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if json {
        builder.json().with_current_span(false).with_span_list(false).init();
    } else {
        builder.init();
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let job: Result<_, String> = match cli.command {
        // The server's settings are resolved first: they say how to log.
        Command::Serve(args) => config::Settings::resolve(*args).map(|settings| {
            init_logging(settings.log_json);
            Job::Serve(Box::new(settings))
        }),
        Command::User(cmd) => Ok(Job::User(cmd)),
        Command::Share(cmd) => Ok(Job::Share(cmd)),
        Command::Healthcheck(args) => Ok(Job::Healthcheck(args)),
        Command::Fsck(args) => Ok(Job::Fsck(args)),
        Command::Backup(args) => Ok(Job::Backup(args)),
        Command::Restore(args) => Ok(Job::Restore(args)),
    };
    let job = match job {
        Ok(job) => job,
        Err(e) => return failure(e),
    };
    if !matches!(job, Job::Serve(_)) {
        init_logging(false);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return failure(format!("cannot start the runtime: {e}")),
    };
    let result = runtime.block_on(async {
        match job {
            Job::Serve(settings) => serve::serve(*settings).await,
            Job::User(cmd) => admin::user(cmd).await,
            Job::Share(cmd) => admin::share(cmd).await,
            Job::Healthcheck(args) => ops::healthcheck::run(args).await,
            Job::Fsck(args) => maintenance::fsck(args).await,
            Job::Backup(args) => maintenance::backup(args).await,
            Job::Restore(args) => maintenance::restore(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => failure(e),
    }
}

/// A command, with the server's settings already resolved.
enum Job {
    /// Boxed: the settings are several times larger than any other command's arguments.
    Serve(Box<config::Settings>),
    User(admin::UserCommand),
    Share(admin::ShareCommand),
    Healthcheck(ops::healthcheck::Args),
    Fsck(maintenance::FsckArgs),
    Backup(maintenance::BackupArgs),
    Restore(maintenance::RestoreArgs),
}

fn failure(message: String) -> std::process::ExitCode {
    eprintln!("wharf: {message}");
    std::process::ExitCode::FAILURE
}

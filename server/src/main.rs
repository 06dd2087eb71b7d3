//! `wharf`: the binary. Adapters only — WebDAV over HTTP now, FTP and the browser front end
//! later — onto the protocol-agnostic `dav-model`.

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

mod admin;
mod config;
mod dav;
mod ftp;
mod http_server;
mod if_header;
mod listener;
mod proxy;
mod serve;
mod tls;
mod xml;

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
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        // libunftp logs through the `log` crate (bridged by the `tracing-log` feature); its
        // info level is one line per command, so by default only its warnings show.
        .with_env_filter(EnvFilter::try_from_env("WHARF_LOG").unwrap_or_else(|_| EnvFilter::new("info,libunftp=warn")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wharf: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::serve(*args).await,
            Command::User(cmd) => admin::user(cmd).await,
            Command::Share(cmd) => admin::share(cmd).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wharf: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

//! Logs go to stderr, as text or (`--log-format json`) one JSON object per line for log
//! collectors; `WHARF_LOG` filters them like `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber; called once, by `wharf serve` after its settings (which say the
/// format) are resolved, and by every other command before it runs.
pub fn init(json: bool) {
    // libunftp logs through the `log` crate (bridged by the `tracing-log` feature); its
    // info level is one line per command, so by default only its warnings show. PostgreSQL's
    // notices ("relation … already exists, skipping" at every start) likewise.
    let filter = EnvFilter::try_from_env("WHARF_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,libunftp=warn,sqlx::postgres::notice=warn"));
    // Colours only for a terminal: `docker logs` and log files would show the escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if json {
        builder.json().with_current_span(false).with_span_list(false).init();
    } else {
        builder.init();
    }
}

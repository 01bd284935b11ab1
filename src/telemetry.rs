//! Logging: JSON lines under the Functions host, readable text on a terminal.
//!
//! Under the host (`serve`), ERROR and WARN go to stderr (the host logs stderr lines as Error,
//! or Warning when the line contains "warn") and everything else to stdout (Information). On the
//! command line every log line goes to stderr, so that stdout carries only the command's output
//! (the run report as JSON, `status`, `config check`). Field names are dotted and
//! stable (`run.id`, `records.written`); tokens, secrets, SAS and record contents are never
//! logged.

use std::io::IsTerminal;

use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

use crate::config::LogFormat;

/// The default filter when `RUST_LOG` is unset: our crate at INFO, the SDKs at WARN.
pub const DEFAULT_FILTER: &str =
    "info,azure_core=warn,azure_identity=warn,azure_storage_blob=warn,reqwest=warn,hyper=warn";

/// The default filter on the command line when `RUST_LOG` is unset.
pub const CLI_FILTER: &str = "warn";

/// Installs the global subscriber. `format` is resolved against the terminal when `Auto`;
/// `under_host` splits the levels between stderr and stdout as the Functions host expects.
pub fn init(format: LogFormat, under_host: bool) {
    // On the command line the progress display and the printed report say what happened;
    // log lines are for problems unless RUST_LOG asks for more.
    let default_filter = if under_host {
        DEFAULT_FILTER
    } else {
        CLI_FILTER
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let stderr_up_to = if under_host {
        Level::WARN
    } else {
        Level::TRACE
    };
    let writer = std::io::stderr
        .with_max_level(stderr_up_to)
        .or_else(std::io::stdout);
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// Reads `LOG_FORMAT` without the rest of the configuration, so that configuration errors can
/// themselves be logged in the right format.
pub fn format_from_env() -> LogFormat {
    match std::env::var("LOG_FORMAT")
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "json" => LogFormat::Json,
        "pretty" => LogFormat::Pretty,
        _ => LogFormat::Auto,
    }
}

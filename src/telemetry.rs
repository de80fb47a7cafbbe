//! Tracing subscriber set-up: JSON lines in production, human format on a terminal.
//! Does not decide what is logged; secrets are kept out by their types, not filtered here.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Output format, mirrored from the config section so this module imports nothing from the crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Pretty on a terminal, JSON otherwise.
    Auto,
    /// JSON lines.
    Json,
    /// Human-readable.
    Pretty,
}

/// Installs the global subscriber writing to stderr. Safe to call twice (the second call does nothing).
pub fn init(filter: &str, format: Format) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        Format::Json => true,
        Format::Pretty => false,
        Format::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.compact().try_init()
    };
}

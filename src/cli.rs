//! What the service binaries share: `--help`, configuration from `PW_*`, logging, signals and exit codes.
//! Exit codes: 0 after a clean shutdown, 2 for a configuration error, 1 when start-up fails.

use std::future::Future;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::config::{self, ConfigError, LogSettings, Role, Source};
use crate::{shutdown, telemetry};

/// One service binary: its name, role (which variables `--help` lists) and one-line description.
#[derive(Debug, Clone, Copy)]
pub struct Binary {
    /// Name in messages and `--help`.
    pub name: &'static str,
    /// Which configuration it reads.
    pub role: Role,
    /// What it does, for `--help`.
    pub about: &'static str,
}

/// Handles `--help`, parses the configuration with `parse`, installs logging from its `log` settings and
/// runs `service` until SIGTERM/SIGINT cancels it. Configuration errors go to stderr (exit 2); a service
/// that cannot start is logged and printed with its causes (exit 1).
pub async fn main<C, E, Fut>(
    binary: Binary,
    parse: impl FnOnce(&Source) -> Result<C, ConfigError>,
    log: impl FnOnce(&C) -> &LogSettings,
    service: impl FnOnce(C, CancellationToken) -> Fut,
) -> ExitCode
where
    Fut: Future<Output = Result<(), E>>,
    E: std::error::Error,
{
    let name = binary.name;
    let loaded = config::handle_args(name, binary.role, binary.about)
        .and_then(|()| Source::from_env())
        .and_then(|src| parse(&src).map(|config| (config, src)));
    let (config, src) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{name}: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(log(&config));
    warn_unknown(&src);
    match service(config, shutdown::shutdown_token()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain = error_chain(&e);
            tracing::error!(error = %chain, "{name} could not start");
            eprintln!("{name}: {chain}");
            ExitCode::FAILURE
        }
    }
}

/// Logs every `PW_*` variable no binary reads (a typo is otherwise silently ignored), with the closest
/// known name.
pub fn warn_unknown(src: &Source) {
    for (name, closest) in src.unknown_names() {
        match closest {
            Some(known) => tracing::warn!(
                variable = %name,
                "unknown configuration variable {name} ignored; did you mean {known}?"
            ),
            None => {
                tracing::warn!(variable = %name, "unknown configuration variable {name} ignored")
            }
        }
    }
}

/// Installs the global log subscriber the settings describe.
pub fn init_logging(log: &LogSettings) {
    telemetry::init(&log.filter, log.format);
}

/// The error and its causes on one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn error_chain_joins_every_cause() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&e), "outer: inner");
    }
}

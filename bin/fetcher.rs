//! The fetcher binary: reads `PW_*` configuration, sets up logging and signals, runs the fetcher service.
//! Exit codes: 0 after a clean shutdown, 2 for a configuration error, 1 when start-up fails.

use std::process::ExitCode;

use podcast_worker::config::{self, FetcherConfig, LogFormat, Role, Source};
use podcast_worker::{fetcher, shutdown, telemetry};

const ABOUT: &str =
    "pulls register tasks from the manager API into Redis Streams (one leader, others stand by)";

#[tokio::main]
async fn main() -> ExitCode {
    let loaded = config::handle_args("fetcher", Role::Fetcher, ABOUT)
        .and_then(|()| Source::from_env())
        .and_then(|src| FetcherConfig::from_source(&src));
    let config = match loaded {
        Ok(config) => config,
        Err(e) => {
            eprintln!("fetcher: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let format = match config.log.format {
        LogFormat::Auto => telemetry::Format::Auto,
        LogFormat::Json => telemetry::Format::Json,
        LogFormat::Pretty => telemetry::Format::Pretty,
    };
    telemetry::init(&config.log.filter, format);
    let cancel = shutdown::shutdown_token();
    match fetcher::run_service(config, cancel).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain = error_chain(&e);
            tracing::error!(error = %chain, "fetcher could not start");
            eprintln!("fetcher: {chain}");
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

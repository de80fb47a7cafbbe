//! The executor binary: reads `PW_*` configuration, sets up logging and signals, runs the executor service
//! (SIGTERM/SIGINT: stop claiming, let running tasks finish up to `PW_SHUTDOWN_GRACE_SECS`, exit 0).
//! Exit codes: 0 after a clean shutdown, 2 for a configuration error, 1 when start-up fails.

use std::process::ExitCode;

use podcast_worker::config::{self, ExecutorConfig, LogFormat, Role, Source};
use podcast_worker::{executor, shutdown, telemetry};

const ABOUT: &str =
    "claims register tasks from Redis Streams, runs each platform's driver, reports back";

#[tokio::main]
async fn main() -> ExitCode {
    let loaded = config::handle_args("executor", Role::Executor, ABOUT)
        .and_then(|()| Source::from_env())
        .and_then(|src| ExecutorConfig::from_source(&src));
    let config = match loaded {
        Ok(config) => config,
        Err(e) => {
            eprintln!("executor: configuration error: {e}");
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
    match executor::run_service(config, cancel).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain = error_chain(&e);
            tracing::error!(error = %chain, "executor could not start");
            eprintln!("executor: {chain}");
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

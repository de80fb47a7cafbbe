//! The executor binary: reads `PW_*` configuration, sets up logging and signals, runs the executor service
//! (SIGTERM/SIGINT: stop claiming, let running tasks finish up to `PW_SHUTDOWN_GRACE_SECS`, exit 0).
//! Exit codes: 0 after a clean shutdown, 2 for a configuration error, 1 when start-up fails.

use std::process::ExitCode;

use podcast_worker::cli::{self, Binary};
use podcast_worker::config::{ExecutorConfig, Role};
use podcast_worker::executor;

const BINARY: Binary = Binary {
    name: "executor",
    role: Role::Executor,
    about: "claims register tasks from Redis Streams, runs each platform's driver, reports back",
};

#[tokio::main]
async fn main() -> ExitCode {
    cli::main(
        BINARY,
        ExecutorConfig::from_source,
        |c| &c.log,
        executor::run_service,
    )
    .await
}

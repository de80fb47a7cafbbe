//! The fetcher binary: reads `PW_*` configuration, sets up logging and signals, runs the fetcher service.
//! Exit codes: 0 after a clean shutdown, 2 for a configuration error, 1 when start-up fails.

use std::process::ExitCode;

use podcast_worker::cli::{self, Binary};
use podcast_worker::config::{FetcherConfig, Role};
use podcast_worker::fetcher;

const BINARY: Binary = Binary {
    name: "fetcher",
    role: Role::Fetcher,
    about: "pulls register tasks from the manager API into Redis Streams (one leader, others stand by)",
};

#[tokio::main]
async fn main() -> ExitCode {
    cli::main(
        BINARY,
        FetcherConfig::from_source,
        |c| &c.log,
        fetcher::run_service,
    )
    .await
}

//! The admin command `pwctl`: looks at and steers a running fleet through its Redis (status, dead
//! letters, outbox, consumers, pause/resume of a domain, drain of an executor). See `docs/operations.md`.
//! Exit codes: 0 done, 1 runtime failure, 2 usage or configuration error.

use std::process::ExitCode;

use podcast_worker::admin;

#[tokio::main]
async fn main() -> ExitCode {
    admin::main().await
}

//! `recipe-check [--attempt N] [--from STEP] <recipe.toml> <task.json> [screenshots-dir]`: runs one recipe for
//! one task against the real site, step by step, saving a screenshot after each step (default dir
//! `recipe-check/`). `recipe-check import <recording.json> [task.json]` prints a recipe draft made from a
//! Chrome DevTools Recorder export. Settings come from the same `PW_*` variables as the executor's.

use std::process::ExitCode;

use podcast_worker::{recipe, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    telemetry::init("warn,podcast_worker=info", telemetry::LogFormat::Pretty);
    recipe::check_command(&args).await
}

//! `recipe-check [--attempt N] [--from STEP] <recipe.toml> <task.json> [screenshots-dir]`: runs one recipe for
//! one task against the real site, step by step, saving a screenshot after each step (default dir
//! `recipe-check/`). `recipe-check import <recording.json> [task.json]` prints a recipe draft made from a
//! Chrome DevTools Recorder export. Settings come from the executor's `PW_*` variables. Exit codes: 0
//! registered (or draft printed), 1 failed (or no browser), 2 bad arguments, files or configuration.

use std::process::ExitCode;

use podcast_worker::config::{Source, version_line};
use podcast_worker::{cli, recipe, telemetry};

const HELP: &str =
    "usage: recipe-check [--attempt N] [--from STEP] <recipe.toml> <task.json> [shots-dir]
       recipe-check import <recording.json> [task.json] > draft.toml
Runs one recipe with a screenshot per step (docs/recipes.md); settings: executor --help.
Exit codes: 0 registered, 1 the recipe failed, 2 bad arguments, files or configuration.";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(flag) = args
        .iter()
        .find(|a| ["--help", "-h", "--version", "-V"].contains(&a.as_str()))
    {
        match flag.as_str() {
            "--help" | "-h" => println!("{HELP}"),
            _ => println!("{}", version_line("recipe-check")),
        }
        return ExitCode::SUCCESS;
    }
    telemetry::init("warn,podcast_worker=info", telemetry::LogFormat::Pretty);
    if let Ok(src) = Source::from_env() {
        cli::warn_unknown(&src);
    }
    recipe::check_command(&args).await
}

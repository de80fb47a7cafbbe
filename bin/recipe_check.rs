//! `recipe-check <recipe.toml> <task.json> [screenshots-dir]`: runs one recipe for one task against the real
//! site with a screenshot after each step (default dir `recipe-check/`), configured by the executor's `PW_*`
//! variables. Exit codes: 0 registered, 1 failed (or no browser), 2 bad arguments, files or configuration.

use std::{path::PathBuf, process::ExitCode};

use podcast_worker::config::{RecipeSettings, Source, version_line};
use podcast_worker::{cli, recipe, telemetry};

const USAGE: &str =
    "usage: recipe-check <recipe.toml> <task.json> [shots-dir] | --help | --version";
const HELP: &str = "Runs one recipe with a screenshot per step (docs/recipes.md); settings: executor --help.\n\
Exit codes: 0 registered, 1 the recipe failed, 2 bad arguments, files or configuration.";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(flag) = args
        .iter()
        .find(|a| ["--help", "-h", "--version", "-V"].contains(&a.as_str()))
    {
        match flag.as_str() {
            "--help" | "-h" => println!("{USAGE}\n{HELP}"),
            _ => println!("{}", version_line("recipe-check")),
        }
        return ExitCode::SUCCESS;
    }
    if args.len() < 2 || args.len() > 3 || args.iter().any(|a| a.starts_with('-')) {
        eprintln!("{USAGE}\nSee docs/recipes.md.");
        return ExitCode::from(2);
    }
    let loaded = Source::from_env().and_then(|src| Ok((RecipeSettings::from_source(&src)?, src)));
    let Ok((settings, src)) =
        loaded.inspect_err(|e| eprintln!("recipe-check: configuration error: {e}"))
    else {
        return ExitCode::from(2);
    };
    telemetry::init("warn,podcast_worker=info", telemetry::LogFormat::Pretty);
    cli::warn_unknown(&src);
    let shots = PathBuf::from(args.get(2).map_or("recipe-check", String::as_str));
    let run = recipe::check(&settings, args[0].as_ref(), args[1].as_ref(), &shots);
    match run.await {
        Err(e) => {
            eprintln!("recipe-check: {e}");
            let setup = matches!(e, recipe::CheckError::Setup(_));
            ExitCode::from(if setup { 1 } else { 2 })
        }
        Ok(outcome) => {
            print!("{}", outcome.log);
            println!("screenshots: {}", shots.display());
            match outcome.result {
                Ok(reg) => {
                    println!("registered:\n{}", recipe::describe(&reg));
                    ExitCode::SUCCESS
                }
                Err(_) => ExitCode::FAILURE,
            }
        }
    }
}

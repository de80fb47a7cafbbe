//! `recipe-check <recipe.toml> <task.json> [screenshots-dir]`: runs one recipe for one task against the real
//! site, step by step, saving a screenshot after each step (default dir `recipe-check/`). Settings (Chromium,
//! IMAP, image limits, artifacts) come from the same `PW_*` variables as the executor's. Exit 0 on success.

use std::path::PathBuf;
use std::process::ExitCode;

use podcast_worker::config::{RecipeSettings, Source};
use podcast_worker::{recipe, telemetry};

const USAGE: &str = "usage: recipe-check <recipe.toml> <task.json> [screenshots-dir]";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 || args.len() > 3 || args.iter().any(|a| a.starts_with('-')) {
        eprintln!("{USAGE}\nSee docs/recipes.md.");
        return ExitCode::from(2);
    }
    let settings = Source::from_env().and_then(|src| RecipeSettings::from_source(&src));
    let settings = match settings {
        Ok(s) => s,
        Err(e) => {
            eprintln!("recipe-check: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init("warn,podcast_worker=info", telemetry::LogFormat::Pretty);
    let shots = PathBuf::from(args.get(2).map_or("recipe-check", String::as_str));
    let run = recipe::check(&settings, args[0].as_ref(), args[1].as_ref(), &shots);
    match run.await {
        Err(e) => {
            eprintln!("recipe-check: {e}");
            ExitCode::from(2)
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

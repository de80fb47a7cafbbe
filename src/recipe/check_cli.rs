//! The `recipe-check` command line: `recipe-check [--attempt N] [--from STEP] <recipe.toml> <task.json>
//! [screenshots-dir]` runs one recipe for one task step by step ([`super::check`]); `recipe-check import
//! <recording.json> [task.json]` prints a recipe draft from a Chrome DevTools Recorder export. Settings come
//! from the same `PW_*` variables as the executor's.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{CheckFiles, CheckPlan};
use crate::config::{ConfigError, RecipeSettings, Source, StreamSettings};

const USAGE: &str =
    "usage: recipe-check [--attempt N] [--from STEP] <recipe.toml> <task.json> [screenshots-dir]
       recipe-check import <recording.json> [task.json] > draft.toml";

/// The command line, parsed.
enum Command {
    Check {
        plan: CheckPlan,
        files: Vec<String>,
    },
    Import {
        recording: String,
        task: Option<String>,
    },
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    if args.first().map(String::as_str) == Some("import") {
        return match &args[1..] {
            [rec] => Ok(Command::Import {
                recording: rec.clone(),
                task: None,
            }),
            [rec, task] => Ok(Command::Import {
                recording: rec.clone(),
                task: Some(task.clone()),
            }),
            _ => Err("import takes a recording and optionally a task file".into()),
        };
    }
    let mut plan = CheckPlan {
        attempt: 1,
        from: None,
    };
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--attempt" => {
                let n = it.next().ok_or("--attempt needs a number")?;
                plan.attempt = n
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| format!("--attempt {n:?}: a number from 1"))?;
            }
            "--from" => plan.from = Some(it.next().ok_or("--from needs a step name")?.clone()),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            file => files.push(file.to_owned()),
        }
    }
    if !(2..=3).contains(&files.len()) {
        return Err("a recipe and a task file are needed".into());
    }
    Ok(Command::Check { plan, files })
}

fn settings(src: &Source) -> Result<super::CheckSettings, ConfigError> {
    // The fleet's Redis only when it is configured: a check on a laptop needs none.
    let redis = match src.is_set(&crate::config::vars::REDIS_URL) {
        true => Some(StreamSettings::from_source(src)?),
        false => None,
    };
    Ok(super::CheckSettings {
        recipe: RecipeSettings::from_source(src)?,
        redis,
    })
}

fn import(recording: &str, task: Option<&str>) -> ExitCode {
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("cannot read {p}: {e}"));
    let result = read(recording).and_then(|text| {
        let vars = match task {
            None => None,
            Some(t) => Some(super::task_file_vars(Path::new(t)).map_err(|e| e.to_string())?),
        };
        super::import_recording(recording, &text, vars.as_ref()).map_err(|e| e.to_string())
    });
    match result {
        Ok(draft) => {
            print!("{draft}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("recipe-check: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs `recipe-check` with its arguments (without the program name); the exit code is 0 = registered (or
/// draft printed), 1 = a step failed, 2 = bad input.
pub async fn command(args: &[String]) -> ExitCode {
    let (plan, files) = match parse_args(args) {
        Ok(Command::Import { recording, task }) => return import(&recording, task.as_deref()),
        Ok(Command::Check { plan, files }) => (plan, files),
        Err(e) => {
            eprintln!("recipe-check: {e}\n{USAGE}\nSee docs/recipes.md.");
            return ExitCode::from(2);
        }
    };
    let settings = match Source::from_env().and_then(|src| settings(&src)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("recipe-check: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let shots = PathBuf::from(files.get(2).map_or("recipe-check", String::as_str));
    let files = CheckFiles {
        recipe: files[0].as_ref(),
        task: files[1].as_ref(),
        screenshots: &shots,
    };
    match super::check(&settings, files, &plan).await {
        Err(e) => {
            eprintln!("recipe-check: {e}");
            let setup = matches!(e, super::CheckError::Setup(_));
            ExitCode::from(if setup { 1 } else { 2 })
        }
        Ok(outcome) => {
            print!("{}", outcome.log);
            println!("screenshots: {}", shots.display());
            match outcome.result {
                Ok(reg) => {
                    println!("registered:\n{}", super::describe(&reg));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    if let Some(note) = e.note() {
                        println!("{note}");
                    }
                    ExitCode::FAILURE
                }
            }
        }
    }
}

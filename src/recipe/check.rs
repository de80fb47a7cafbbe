//! The recipe check: runs one recipe file for one task (a JSON file shaped like `GET /links/{id}`) against
//! the real site, step by step, saving a screenshot after every step, so an operator can develop a recipe.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::ExposeSecret;

use super::driver::{RecipeDriver, RunOutcome, StepHook};
use super::env::RecipeEnv;
use super::{Step, parse_recipe};
use crate::browser::{BrowserPool, Session};
use crate::config::{RecipeSettings, StreamSettings};
use crate::task::{Registration, Task};

/// Everything the check needs besides its files.
#[derive(Debug, Clone)]
pub struct CheckSettings {
    /// Browser pool (its artifacts directory receives failure artifacts as usual), IMAP, image, TOTP.
    pub recipe: RecipeSettings,
    /// The fleet's Redis (when `PW_REDIS_URL` is set): TOTP time steps are claimed there, so a check never
    /// types a code an executor (or another check) used.
    pub redis: Option<StreamSettings>,
}

/// How to play the run.
#[derive(Debug, Clone, Default)]
pub struct CheckPlan {
    /// Which attempt of the task to play (from 1; `--attempt 2` lets `[[resume]]` rules apply).
    pub attempt: u32,
    /// Start at the step with this `name` (`--from`), skipping the steps before it.
    pub from: Option<String>,
}

/// Why the check could not run at all (a failing step is a [`RunOutcome`] error instead).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A file could not be read.
    #[error("cannot read {0}")]
    Read(String, #[source] std::io::Error),
    /// The recipe is invalid.
    #[error(transparent)]
    Recipe(#[from] super::RecipeError),
    /// The task JSON does not fit (the field path is named, never a value).
    #[error("{file}: not a task (at {path})")]
    Task {
        /// The task file.
        file: String,
        /// Where decoding failed.
        path: String,
    },
    /// The browser, the mailbox or the screenshot directory could not be set up.
    #[error("{0}")]
    Setup(String),
}

struct Screenshots(PathBuf);

#[async_trait::async_trait]
impl StepHook for Screenshots {
    async fn after_step(&self, session: &Session, step: &Step, ok: bool) {
        let state = if ok { "ok" } else { "failed" };
        let name = format!("{:02}-{}-{state}.png", step.index, step.action.kind());
        match session.screenshot().await {
            Ok(png) => {
                let _ = tokio::fs::write(self.0.join(name), png).await;
            }
            Err(e) => tracing::warn!(step = step.index, error = %e, "no screenshot"),
        }
    }
}

/// The files of a check.
#[derive(Debug, Clone, Copy)]
pub struct CheckFiles<'a> {
    /// The recipe.
    pub recipe: &'a Path,
    /// The task (JSON shaped like `GET /links/{id}`).
    pub task: &'a Path,
    /// Where the screenshots go.
    pub screenshots: &'a Path,
}

/// Runs the recipe once for the task, as `plan` says, with a screenshot per step.
///
/// # Errors
/// [`CheckError`] when the files or the set-up are unusable.
pub async fn check(
    settings: &CheckSettings,
    files: CheckFiles<'_>,
    plan: &CheckPlan,
) -> Result<RunOutcome, CheckError> {
    let CheckFiles {
        recipe: recipe_file,
        task: task_file,
        screenshots,
    } = files;
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| CheckError::Read(p.display().to_string(), e))
    };
    let recipe = parse_recipe(&recipe_file.display().to_string(), &read(recipe_file)?)?;
    let from = match &plan.from {
        None => 0,
        Some(name) => super::parse::start_at(&recipe, name)?,
    };
    let task = read_task(task_file)?;
    std::fs::create_dir_all(screenshots)
        .map_err(|e| CheckError::Setup(format!("cannot create {}: {e}", screenshots.display())))?;
    let pool = BrowserPool::new(settings.recipe.browser.clone())
        .map_err(|e| CheckError::Setup(e.to_string()))?;
    let mut env = RecipeEnv::new(
        pool.clone(),
        &settings.recipe.mail,
        settings.recipe.image.clone(),
        settings.recipe.totp,
    )
    .map_err(|e| CheckError::Setup(e.to_string()))?;
    if let Some(redis) = &settings.redis {
        env = env
            .with_totp_ledger(redis)
            .map_err(|e| CheckError::Setup(e.to_string()))?;
    }
    let driver = RecipeDriver::new(Arc::new(recipe), env);
    let hook = Screenshots(screenshots.to_owned());
    let attempt = plan.attempt.max(1);
    let outcome = driver.run_from(&task, attempt, from, Some(&hook)).await;
    pool.shutdown().await;
    Ok(outcome)
}

/// Reads a task file (JSON shaped like `GET /links/{id}`).
fn read_task(file: &Path) -> Result<Task, CheckError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CheckError::Read(file.display().to_string(), e))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| CheckError::Task {
        file: file.display().to_string(),
        path: e.path().to_string(),
    })
}

/// The variables a recipe would see for the task in `file` (for `recipe-check import`'s value matching).
///
/// # Errors
/// [`CheckError`] when the file cannot be read or is not a task.
pub fn task_file_vars(file: &Path) -> Result<super::Vars, CheckError> {
    Ok(super::driver::task_vars(&read_task(file)?))
}

/// A registration for display: secrets shown only as their length.
pub fn describe(reg: &Registration) -> String {
    let secret = |s: &Option<secrecy::SecretString>| match s {
        Some(s) => format!("<{} characters>", s.expose_secret().chars().count()),
        None => "-".into(),
    };
    let plain = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    format!(
        "email: {}\nusername: {}\npassword: {}\ncookie: {}\nlink_rss: {}\nnote: {}",
        plain(&reg.email),
        plain(&reg.username),
        secret(&reg.password),
        secret(&reg.cookie),
        plain(&reg.link_rss),
        plain(&reg.note)
    )
}

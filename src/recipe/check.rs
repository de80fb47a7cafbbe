//! The recipe check: runs one recipe file for one task (a JSON file shaped like `GET /links/{id}`) against
//! the real site, step by step, saving a screenshot after every step, so an operator can develop a recipe.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::ExposeSecret;

use super::driver::{RecipeDriver, RecipeEnv, RunOutcome, StepHook};
use super::{Step, parse_recipe};
use crate::browser::{BrowserPool, Session};
use crate::config::RecipeSettings;
use crate::task::{Registration, Task};

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

/// Runs `recipe_file` once for the task in `task_file`, with a screenshot per step in `screenshots`.
///
/// # Errors
/// [`CheckError`] when the files or the set-up are unusable.
pub async fn check(
    settings: &RecipeSettings,
    recipe_file: &Path,
    task_file: &Path,
    screenshots: &Path,
) -> Result<RunOutcome, CheckError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| CheckError::Read(p.display().to_string(), e))
    };
    let recipe = parse_recipe(&recipe_file.display().to_string(), &read(recipe_file)?)?;
    let text = read(task_file)?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    let task: Task = serde_path_to_error::deserialize(de).map_err(|e| CheckError::Task {
        file: task_file.display().to_string(),
        path: e.path().to_string(),
    })?;
    std::fs::create_dir_all(screenshots)
        .map_err(|e| CheckError::Setup(format!("cannot create {}: {e}", screenshots.display())))?;
    let pool =
        BrowserPool::new(settings.browser.clone()).map_err(|e| CheckError::Setup(e.to_string()))?;
    let env = RecipeEnv::new(
        pool.clone(),
        &settings.mail,
        settings.image.clone(),
        settings.totp,
    )
    .map_err(|e| CheckError::Setup(e.to_string()))?;
    let driver = RecipeDriver::new(Arc::new(recipe), env);
    let hook = Screenshots(screenshots.to_owned());
    let outcome = driver.run(&task, Some(&hook)).await;
    pool.shutdown().await;
    Ok(outcome)
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

//! The step log (what each step did and how long it took, never a value typed or read) and the failure
//! artifacts: a screenshot, the page's HTML and the step log under `<artifacts dir>/<task id>/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::browser::Session;

/// One line per step run. Holds selectors, step kinds, outcomes and timings; never a typed value, a
/// code, a cookie or an extracted value, so it can be saved and shown.
#[derive(Debug, Clone, Default)]
pub struct StepLog {
    lines: Vec<String>,
}

impl StepLog {
    /// Adds a line.
    pub fn push(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }

    /// Adds the outcome of step `index`.
    pub fn step(&mut self, index: usize, what: &str, outcome: &str, took: Duration) {
        self.push(format!(
            "step {index} {what}: {outcome} ({} ms)",
            took.as_millis()
        ));
    }

    /// The lines so far.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }
}

impl std::fmt::Display for StepLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for line in &self.lines {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// Saves `failure.png`, `page.html` and `steps.log` into `dir/<task_id>/` (each best effort, a few seconds
/// at most) and returns that directory.
pub(crate) async fn save(
    dir: &Path,
    task_id: &str,
    session: Option<&Session>,
    log: &StepLog,
) -> PathBuf {
    let target = dir.join(task_id);
    if let Err(err) = tokio::fs::create_dir_all(&target).await {
        tracing::warn!(task_id, error = %err, "cannot create the artifacts directory");
        return target;
    }
    if let Some(session) = session {
        let limit = Duration::from_secs(5);
        if let Ok(Ok(png)) = tokio::time::timeout(limit, session.screenshot()).await {
            let _ = tokio::fs::write(target.join("failure.png"), png).await;
        }
        if let Ok(Ok(html)) = tokio::time::timeout(limit, session.html()).await {
            let _ = tokio::fs::write(target.join("page.html"), html).await;
        }
    }
    let _ = tokio::fs::write(target.join("steps.log"), log.to_string()).await;
    target
}

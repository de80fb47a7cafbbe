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
/// at most) and returns that directory. The directories are made 0700 and the files 0600 (they show a
/// person's account); every value in `secrets` is replaced by `[secret]` in `page.html` and `steps.log`
/// (as typed, HTML-escaped and URL-encoded), since a page may echo what was typed into it.
pub(crate) async fn save(
    dir: &Path,
    task_id: &str,
    session: Option<&Session>,
    log: &StepLog,
    secrets: &[&str],
) -> PathBuf {
    let target = dir.join(task_id);
    if let Err(err) = private_dirs(dir, &target).await {
        tracing::warn!(task_id, error = %err, "cannot create the artifacts directory");
        return target;
    }
    if let Some(session) = session {
        let limit = Duration::from_secs(5);
        if let Ok(Ok(png)) = tokio::time::timeout(limit, session.screenshot()).await {
            write_private(&target.join("failure.png"), &png).await;
        }
        if let Ok(Ok(html)) = tokio::time::timeout(limit, session.html()).await {
            write_private(&target.join("page.html"), scrub(&html, secrets).as_bytes()).await;
        }
    }
    let log = scrub(&log.to_string(), secrets);
    write_private(&target.join("steps.log"), log.as_bytes()).await;
    target
}

/// Creates `target` (and `root` above it) with mode 0700, and tightens them if they existed.
async fn private_dirs(root: &Path, target: &Path) -> std::io::Result<()> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(target).await?;
    #[cfg(unix)]
    for d in [root, target] {
        use std::os::unix::fs::PermissionsExt;
        let _ = tokio::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).await;
    }
    Ok(())
}

/// Writes `bytes` to `path` readable by its owner only (replacing an earlier attempt's file).
async fn write_private(path: &Path, bytes: &[u8]) {
    let _ = tokio::fs::remove_file(path).await;
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let written = async {
        use tokio::io::AsyncWriteExt;
        let mut file = options.open(path).await?;
        file.write_all(bytes).await?;
        file.flush().await
    };
    if let Err(err) = written.await {
        tracing::warn!(file = %path.display(), error = %err, "cannot write a failure artifact");
    }
}

/// `text` with every secret (and its HTML-escaped and URL-encoded forms) replaced by `[secret]`; longer
/// secrets first, so one containing another is replaced whole.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut forms: Vec<String> = Vec::new();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        // How a serialised DOM writes it in text and in an attribute value.
        let amp = s.replace('&', "&amp;");
        let text = amp.replace('<', "&lt;").replace('>', "&gt;");
        let attr = amp.replace('"', "&quot;");
        let url: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
        for f in [(*s).to_owned(), text, attr, url] {
            if !forms.contains(&f) {
                forms.push(f);
            }
        }
    }
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    let mut out = text.to_owned();
    for f in &forms {
        out = out.replace(f.as_str(), "[secret]");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_replaces_secrets_in_every_form() {
        let html = r#"<input value="p&amp;ss<1&quot;"> p&amp;ss&lt;1" p&ss<1" ?q=p%26ss%3C1%22 code 123456 and 1234567"#;
        let out = scrub(html, &["p&ss<1\"", "123456", "1234567", ""]);
        assert_eq!(
            out,
            r#"<input value="[secret]"> [secret] [secret] ?q=[secret] code [secret] and [secret]"#
        );
    }
}

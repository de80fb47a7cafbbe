//! Runs one recipe's steps in one browser session: auto-waiting for elements, watching every wait for the
//! recipe's site errors and CAPTCHA selectors, checking step conditions, and classifying each failure by its
//! [`FailureKind`]. Values typed or read never reach the step log or an error message.

mod inputs;
mod js;

use std::time::{Duration, Instant, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::env::RecipeEnv;
use super::template::Vars;
use super::{Action, Condition, GuardKind, Recipe, Step, StepLog};
use crate::browser::{BrowserError, LoadEvents, Resource, Session};
use crate::driver::{DriverError, FailureKind};
use crate::image::DownloadedImage;
use crate::task::Task;
use crate::totp::TotpCode;
use js::{JS_FIND_TEXT, JS_NAV_STATUS, JS_STATUS, JS_VISIBLE_TEXT};

/// How a step failed: its kind decides the task's fate (see [`FailureKind`]).
pub(crate) type Failure = DriverError;

impl From<BrowserError> for DriverError {
    fn from(e: BrowserError) -> Self {
        let kind = match e {
            BrowserError::Launch(_) | BrowserError::Crashed => FailureKind::Browser,
            BrowserError::Timeout { .. } => FailureKind::Timeout,
            BrowserError::Page(_) => FailureKind::Network,
            BrowserError::NoElement(_) => FailureKind::Structure,
        };
        DriverError::new(kind, true, e.to_string())
    }
}

/// The kind of a step that ran out of time: waiting on the page's elements is [`FailureKind::Structure`]
/// (an element that never appears); a page load, a mail and a TOTP window are [`FailureKind::Timeout`].
fn timeout_kind(action: &Action) -> FailureKind {
    match action {
        Action::Goto(_) | Action::WaitMail(_) | Action::Totp(_) => FailureKind::Timeout,
        _ => FailureKind::Structure,
    }
}

fn site(message: impl Into<String>) -> Failure {
    DriverError::new(FailureKind::Site, false, message)
}

fn permanent(kind: FailureKind, message: impl Into<String>) -> Failure {
    DriverError::new(kind, false, message)
}

fn transient(kind: FailureKind, message: impl Into<String>) -> Failure {
    DriverError::new(kind, true, message)
}

/// What a wait waits for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Until<'a> {
    /// An element matching the selector is visible.
    Visible(&'a str),
    /// As `Visible`, and the page is marked, so that `Navigated` can tell the next page from it.
    VisibleMark(&'a str),
    /// An element matching the selector exists.
    Exists(&'a str),
    /// The page's visible text contains the text.
    Text(&'a str),
    /// The page a `navigates = true` click started has loaded.
    Navigated,
    /// Nothing: just the page's state now (site error, CAPTCHA, URL).
    Now,
}

impl<'a> Until<'a> {
    /// The condition's name and argument for `JS_STATUS`.
    fn js(self) -> (&'static str, &'a str) {
        match self {
            Until::Visible(s) => ("visible", s),
            Until::VisibleMark(s) => ("visible-mark", s),
            Until::Exists(s) => ("exists", s),
            Until::Text(t) => ("text", t),
            Until::Navigated => ("navigated", ""),
            Until::Now => ("none", ""),
        }
    }
}

/// Pause between two checks of a waited-for condition.
const POLL: Duration = Duration::from_millis(150);

/// The state of one recipe run.
pub(crate) struct Run<'a> {
    pub env: &'a RecipeEnv,
    pub recipe: &'a Recipe,
    pub task: &'a Task,
    pub session: &'a Session,
    pub vars: Vars,
    pub started: SystemTime,
    pub image: Option<DownloadedImage>,
    /// Which attempt of the task this run is (from 1); `[[resume]]` rules apply from the second.
    pub attempt: u32,
    /// Secret values typed or read that are no variable (TOTP codes): scrubbed from artifacts too.
    pub typed: Vec<SecretString>,
    /// The code of the `totp` step about to run, claimed (and its window awaited) before the step's limit.
    pub next_totp: Option<TotpCode>,
    /// The time step of a claimed TOTP code not typed yet: given back if the step ends before typing it.
    pub untyped_totp: Option<u64>,
}

impl Run<'_> {
    /// The limit of a step: its own `timeout_ms`, else the default (longer for mail and TOTP).
    pub fn limit(&self, step: &Step) -> Duration {
        let default = self.env.step_timeout;
        step.timeout.unwrap_or(match step.action {
            Action::WaitMail(_) => default.max(Duration::from_secs(180)),
            Action::Totp(_) => default.max(Duration::from_secs(45)),
            _ => default,
        })
    }

    /// Whether the step's condition holds now (true without one); a page mid-navigation is asked again
    /// until the step's limit.
    pub async fn holds(&self, step: &Step) -> Result<bool, Failure> {
        let Some(cond) = &step.when else {
            return Ok(true);
        };
        let limit = self.limit(step);
        let check = async {
            loop {
                let probe = match cond {
                    Condition::Visible(sel) => self
                        .session
                        .call(JS_VISIBLE_TEXT, &[sel.as_str().into()])
                        .await
                        .map(|v| !v.is_null()),
                    Condition::Text(t) => {
                        let text = t.render(&self.vars);
                        self.session
                            .call(JS_FIND_TEXT, &[text.into()])
                            .await
                            .map(|v| !v.is_null())
                    }
                    Condition::Url(re) => self
                        .session
                        .eval("location.href")
                        .await
                        .map(|v| re.is_match(v.as_str().unwrap_or_default())),
                };
                match probe {
                    Ok(holds) => return Ok(holds),
                    Err(e) if e.to_string().contains("is not a valid selector") => {
                        return Err(permanent(
                            FailureKind::Recipe,
                            format!("invalid selector in {}", cond.key()),
                        ));
                    }
                    Err(_) if !self.session.browser_dead() => {}
                    Err(_) => return Err(BrowserError::Crashed.into()),
                }
                tokio::time::sleep(POLL).await;
            }
        };
        match tokio::time::timeout(limit, check).await {
            Ok(r) => r,
            Err(_) => Err(transient(
                FailureKind::Timeout,
                format!(
                    "step {} ({}): its {} could not be checked in {} ms",
                    step.index,
                    step.action.kind(),
                    cond.key(),
                    limit.as_millis()
                ),
            )),
        }
    }

    /// Runs one step under its limit; records it in `log`.
    pub async fn step(&mut self, step: &Step, log: &mut StepLog) -> Result<(), Failure> {
        let what = describe(step);
        let limit = self.limit(step);
        let start = Instant::now();
        // A TOTP code is claimed, and its window awaited, before the step's limit starts: that wait depends on
        // how many windows other processes hold for the secret (up to a few), not on the page.
        let prepared = match step.action {
            Action::Totp(_) => self.totp_code().await.map(Some),
            _ => Ok(None),
        };
        let result = match prepared {
            Err(failure) => Err(failure),
            Ok(code) => {
                self.next_totp = code;
                let run = async {
                    self.block_for(step).await?;
                    self.exec(&step.action, limit).await
                };
                match tokio::time::timeout(limit, run).await {
                    Ok(r) => r,
                    Err(_) => Err(transient(
                        timeout_kind(&step.action),
                        format!(
                            "step {} ({}) timed out after {} ms",
                            step.index,
                            step.action.kind(),
                            limit.as_millis()
                        ),
                    )),
                }
            }
        };
        if let Some(untyped) = self.untyped_totp.take() {
            self.env.totp.release(&self.task.twofa, untyped).await;
        }
        let result = result.map_err(|f| self.scrubbed(f));
        let outcome = match &result {
            Ok(()) => "ok".to_owned(),
            Err(f) => format!("failed: {f}"),
        };
        log.step(step.index, &what, &outcome, start.elapsed());
        result
    }

    /// Blocks the recipe's `block` types, except those the step unblocks (nothing to do when unchanged).
    async fn block_for(&self, step: &Step) -> Result<(), Failure> {
        let kinds: Vec<Resource> = (self.recipe.block.iter())
            .filter(|r| !step.unblock.contains(r))
            .copied()
            .collect();
        Ok(self.session.block(&kinds).await?)
    }

    async fn exec(&mut self, action: &Action, limit: Duration) -> Result<(), Failure> {
        let s = self.session;
        match action {
            Action::Goto(url) => {
                s.goto(&url.render(&self.vars)).await?;
                self.check_status().await
            }
            Action::Fill { selector, value } => {
                self.wait(Until::Visible(selector)).await?;
                Ok(s.fill(selector, &value.render(&self.vars)).await?)
            }
            Action::Click {
                selector,
                navigates,
            } => self.click(selector, *navigates).await,
            Action::Select { selector, value } => {
                self.wait(Until::Visible(selector)).await?;
                Ok(s.select(selector, &value.render(&self.vars)).await?)
            }
            Action::Check { selector, on } => {
                self.wait(Until::Exists(selector)).await?;
                Ok(s.check(selector, *on).await?)
            }
            Action::UploadImage(sel) => self.upload(sel).await,
            Action::WaitFor(sel) => self.wait(Until::Visible(sel)).await.map(drop),
            Action::WaitUrl(re) => loop {
                let href = self.wait(Until::Now).await?;
                if re.is_match(&href) {
                    return Ok(());
                }
                tokio::time::sleep(POLL).await;
            },
            Action::WaitText(text) => {
                let text = text.render(&self.vars);
                self.wait(Until::Text(&text)).await.map(drop)
            }
            Action::Totp(sel) => self.totp(sel).await,
            Action::WaitMail(m) => self.mail(m, limit).await,
            Action::Extract(e) => self.extract(e).await,
            Action::FailIf {
                selector,
                message,
                kind,
            } => {
                let text = s.call(JS_VISIBLE_TEXT, &[selector.as_str().into()]).await?;
                match text.as_str() {
                    Some(t) => Err(guard(*kind, message.as_deref().unwrap_or(t))),
                    None => Ok(()),
                }
            }
            Action::FailIfText {
                text,
                message,
                kind,
            } => {
                let text = text.render(&self.vars);
                let found = s.call(JS_FIND_TEXT, &[text.into()]).await?;
                match found.as_str() {
                    Some(line) => Err(guard(*kind, message.as_deref().unwrap_or(line))),
                    None => Ok(()),
                }
            }
            Action::Cookies(into) => {
                let header = s.cookie_header().await?;
                self.vars.set_secret(into, SecretString::from(header));
                Ok(())
            }
            Action::GotoStep(_) => Ok(()),
        }
    }

    /// Polls until `until` holds, failing at once on a site error or a CAPTCHA. Returns the URL.
    pub async fn wait(&self, until: Until<'_>) -> Result<String, Failure> {
        let status = self.wait_until(until, None).await?;
        Ok(status["href"].as_str().unwrap_or_default().to_owned())
    }

    /// [`Run::wait`], also checking at once whenever the page fires a load event (`loads`); returns
    /// `JS_STATUS`'s answer (`href`, and `status` for `Navigated`).
    async fn wait_until(
        &self,
        until: Until<'_>,
        mut loads: Option<&mut LoadEvents>,
    ) -> Result<Value, Failure> {
        let r = self.recipe;
        let (cond, arg) = until.js();
        let args = [
            json!(cond),
            json!(arg),
            json!(r.error_selectors),
            json!(r.error_texts),
            json!(r.captcha_selectors),
        ];
        loop {
            match self.session.call(JS_STATUS, &args).await {
                Ok(v) => {
                    if let Some(c) = v.get("captcha").and_then(Value::as_str) {
                        return Err(permanent(
                            FailureKind::Captcha,
                            format!("captcha shown ({c})"),
                        ));
                    }
                    if let Some(e) = v.get("error").and_then(Value::as_str) {
                        return Err(site(e));
                    }
                    if v.get("ok").and_then(Value::as_bool) == Some(true) {
                        return Ok(v);
                    }
                }
                // A selector the browser cannot parse is a recipe mistake: waiting will not fix it.
                Err(e) if e.to_string().contains("is not a valid selector") => {
                    return Err(permanent(
                        FailureKind::Recipe,
                        format!("invalid selector {arg:?}"),
                    ));
                }
                // Mid-navigation the page has no context for a moment: try again.
                Err(_) if !self.session.browser_dead() => {}
                Err(_) => return Err(BrowserError::Crashed.into()),
            }
            match loads.as_deref_mut() {
                Some(loads) => drop(tokio::time::timeout(POLL, loads.next()).await),
                None => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// The site error or CAPTCHA the page shows now, if any (used to explain a failed step).
    pub(crate) async fn page_problem(&self) -> Option<Failure> {
        let probe = tokio::time::timeout(Duration::from_secs(3), self.wait(Until::Now));
        match probe.await {
            Ok(Err(f)) if matches!(f.kind, FailureKind::Site | FailureKind::Captcha) => {
                Some(self.scrubbed(f))
            }
            _ => None,
        }
    }

    async fn check_status(&self) -> Result<(), Failure> {
        let status = self.session.eval(JS_NAV_STATUS).await?;
        http_status(status.as_u64())
    }

    /// A click; one that `navigates` waits for the next page's load (ended by its load event, not a poll)
    /// and fails on its HTTP 5xx. The round trips are few on purpose: under load, each waits for a busy
    /// renderer (BENCHMARKS.md, "Pages").
    async fn click(&self, sel: &str, navigates: bool) -> Result<(), Failure> {
        if !navigates {
            self.wait(Until::Visible(sel)).await?;
            return Ok(self.session.click(sel).await?);
        }
        let mut loads = self.session.load_events().await?;
        self.wait(Until::VisibleMark(sel)).await?;
        self.session.click(sel).await?;
        let status = self.wait_until(Until::Navigated, Some(&mut loads)).await?;
        http_status(status["status"].as_u64())
    }

    /// `f` with every secret value of the run replaced in its message: a site error is the page's text, and
    /// a page may echo what was typed.
    pub fn scrubbed(&self, mut f: Failure) -> Failure {
        f.message = super::artifacts::scrub(&f.message, &self.secrets());
        f
    }

    /// Every secret value of this run: the task's credentials, secret variables (cookies, mailed codes,
    /// secret extracts) and typed TOTP codes, for scrubbing the failure artifacts.
    pub fn secrets(&self) -> Vec<&str> {
        let task = self.task;
        let mut out: Vec<&str> = [
            &task.password,
            &task.pass_mail,
            &task.app_password,
            &task.twofa,
        ]
        .into_iter()
        .map(|s| s.expose_secret())
        .chain(self.vars.secrets())
        .chain(self.typed.iter().map(|s| s.expose_secret()))
        .collect();
        out.retain(|s| !s.trim().is_empty());
        out
    }
}

/// The page's HTTP status (0 or none: unknown) as a step's result: 5xx is a transient network failure.
fn http_status(code: Option<u64>) -> Result<(), Failure> {
    match code {
        Some(code) if code >= 500 => Err(transient(
            FailureKind::Network,
            format!("site answered HTTP {code}"),
        )),
        _ => Ok(()),
    }
}

/// A `fail_if` / `fail_if_text` guard's failure.
fn guard(kind: GuardKind, text: &str) -> Failure {
    match kind {
        GuardKind::Site => site(text),
        GuardKind::Recipe => permanent(FailureKind::Recipe, text),
    }
}

/// A step as the log shows it: action and selector (or URL without its query), never a value.
pub(crate) fn describe(step: &Step) -> String {
    let label = step
        .name
        .as_deref()
        .map(|n| format!(" [{n}]"))
        .unwrap_or_default();
    let target = match &step.action {
        Action::Fill { selector, .. }
        | Action::Click { selector, .. }
        | Action::Select { selector, .. }
        | Action::Check { selector, .. }
        | Action::FailIf { selector, .. } => selector.clone(),
        Action::UploadImage(s) | Action::WaitFor(s) | Action::Totp(s) => s.clone(),
        Action::Extract(e) => format!("{} -> {}", e.selector, e.into),
        Action::WaitMail(m) => format!("-> {}", m.into),
        Action::Cookies(v) => format!("-> {v}"),
        Action::GotoStep(name) => format!("-> {name:?}"),
        Action::WaitUrl(re) => re.as_str().to_owned(),
        Action::Goto(_) | Action::WaitText(_) | Action::FailIfText { .. } => String::new(),
    };
    format!("{}{label} {target}", step.action.kind())
        .trim_end()
        .to_owned()
}

//! Runs one recipe's steps in one browser session: auto-waiting for elements, watching every wait for the
//! recipe's site errors and CAPTCHA selectors, and classifying each failure (site error, captcha, permanent,
//! transient). Values typed or read never reach the step log or an error message.

use std::time::{Duration, Instant, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::driver::RecipeEnv;
use super::template::Vars;
use super::{Action, ExtractStep, MailStep, Recipe, Step, StepLog};
use crate::browser::{BrowserError, Session};
use crate::image::DownloadedImage;
use crate::mailbox::{MailLogin, MailQuery};
use crate::task::Task;

/// How one step failed, which decides the task's fate.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// The site showed an error (its text): permanent.
    Site(String),
    /// A CAPTCHA is shown: permanent.
    Captcha(String),
    /// Retrying cannot help (bad input, mailbox login refused, bad image).
    Permanent(String),
    /// May work on a new attempt (timeouts, navigation, crash, 5xx).
    Transient(String),
}

impl From<BrowserError> for Failure {
    fn from(e: BrowserError) -> Self {
        Failure::Transient(e.to_string())
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

    /// Runs one step under its limit; records it in `log`.
    pub async fn step(&mut self, step: &Step, log: &mut StepLog) -> Result<(), Failure> {
        let what = describe(step);
        let limit = self.limit(step);
        let start = Instant::now();
        let result = match tokio::time::timeout(limit, self.exec(&step.action, limit)).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Transient(format!(
                "step {} ({}) timed out after {} ms",
                step.index,
                step.action.kind(),
                limit.as_millis()
            ))),
        };
        let outcome = match &result {
            Ok(()) => "ok".to_owned(),
            Err(f) => format!("failed: {}", failure_text(f)),
        };
        log.step(step.index, &what, &outcome, start.elapsed());
        result
    }

    async fn exec(&mut self, action: &Action, limit: Duration) -> Result<(), Failure> {
        let s = self.session;
        match action {
            Action::Goto(url) => {
                s.goto(&url.render(&self.vars)).await?;
                self.check_status().await
            }
            Action::Fill(sel, value) => {
                self.wait("visible", sel).await?;
                Ok(s.fill(sel, &value.render(&self.vars)).await?)
            }
            Action::Click(sel, navigates) => self.click(sel, *navigates).await,
            Action::Select(sel, value) => {
                self.wait("visible", sel).await?;
                Ok(s.select(sel, &value.render(&self.vars)).await?)
            }
            Action::Check(sel, on) => {
                self.wait("exists", sel).await?;
                Ok(s.check(sel, *on).await?)
            }
            Action::UploadImage(sel) => self.upload(sel).await,
            Action::WaitFor(sel) => self.wait("visible", sel).await.map(drop),
            Action::WaitUrl(re) => loop {
                let href = self.wait("none", "").await?;
                if re.is_match(&href) {
                    return Ok(());
                }
                tokio::time::sleep(POLL).await;
            },
            Action::WaitText(text) => self.wait("text", &text.render(&self.vars)).await.map(drop),
            Action::Totp(sel) => self.totp(sel).await,
            Action::WaitMail(m) => self.mail(m, limit).await,
            Action::Extract(e) => self.extract(e).await,
            Action::FailIf(sel, message) => self.fail_if(sel, message.as_deref()).await,
            Action::FailIfText(text, message) => {
                let text = text.render(&self.vars);
                let found = s.call(JS_FIND_TEXT, &[text.clone().into()]).await?;
                match found.as_str() {
                    Some(line) => Err(Failure::Site(message.clone().unwrap_or(line.to_owned()))),
                    None => Ok(()),
                }
            }
            Action::Cookies(into) => {
                let header = s.cookie_header().await?;
                self.vars.set_secret(into, SecretString::from(header));
                Ok(())
            }
        }
    }

    /// Polls until `cond` holds (`visible`/`exists` for a selector, `text` on the page, `navigated` after a
    /// click, `none` for just the URL), failing at once on a site error or a CAPTCHA. Returns the URL.
    pub async fn wait(&self, cond: &str, arg: &str) -> Result<String, Failure> {
        let r = self.recipe;
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
                        return Err(Failure::Captcha(format!("captcha shown ({c})")));
                    }
                    if let Some(e) = v.get("error").and_then(Value::as_str) {
                        return Err(Failure::Site(e.to_owned()));
                    }
                    if v.get("ok").and_then(Value::as_bool) == Some(true) {
                        return Ok(v["href"].as_str().unwrap_or_default().to_owned());
                    }
                }
                // A selector the browser cannot parse is a recipe mistake: waiting will not fix it.
                Err(e) if e.to_string().contains("is not a valid selector") => {
                    return Err(Failure::Permanent(format!(
                        "recipe error: invalid selector {arg:?}"
                    )));
                }
                // Mid-navigation the page has no context for a moment: try again.
                Err(_) if !self.session.browser_dead() => {}
                Err(_) => return Err(BrowserError::Crashed.into()),
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The site error or CAPTCHA the page shows now, if any (used to explain a failed step).
    pub async fn page_problem(&self) -> Option<Failure> {
        let probe = tokio::time::timeout(Duration::from_secs(3), self.wait("none", ""));
        match probe.await {
            Ok(Err(f @ (Failure::Site(_) | Failure::Captcha(_)))) => Some(f),
            _ => None,
        }
    }

    async fn check_status(&self) -> Result<(), Failure> {
        let status = self.session.eval(JS_NAV_STATUS).await?;
        match status.as_u64() {
            Some(code) if code >= 500 => {
                Err(Failure::Transient(format!("site answered HTTP {code}")))
            }
            _ => Ok(()),
        }
    }

    async fn click(&self, sel: &str, navigates: bool) -> Result<(), Failure> {
        self.wait("visible", sel).await?;
        if navigates {
            self.session.eval("window.__pwBeforeNav = true").await?;
        }
        self.session.click(sel).await?;
        if navigates {
            self.wait("navigated", "").await?;
            self.check_status().await?;
        }
        Ok(())
    }

    async fn upload(&mut self, sel: &str) -> Result<(), Failure> {
        if self.image.is_none() {
            let url = self.task.image_url.trim();
            if url.is_empty() {
                return Err(Failure::Permanent("the task has no image_url".into()));
            }
            let image = crate::image::fetch_image(&self.env.image, url)
                .await
                .map_err(|e| match e.is_permanent() {
                    true => Failure::Permanent(e.to_string()),
                    false => Failure::Transient(e.to_string()),
                })?;
            self.image = Some(image);
        }
        self.wait("exists", sel).await?;
        let path = self.image.as_ref().map(|i| i.path().to_owned());
        Ok(self.session.upload(sel, &path.unwrap_or_default()).await?)
    }

    async fn totp(&self, sel: &str) -> Result<(), Failure> {
        if self.task.twofa.expose_secret().trim().is_empty() {
            return Err(Failure::Permanent("the task has no twofa secret".into()));
        }
        let code = self
            .env
            .totp
            .fresh_code(&self.task.twofa)
            .await
            .map_err(|e| Failure::Permanent(e.to_string()))?;
        self.wait("visible", sel).await?;
        Ok(self.session.fill(sel, &code.code).await?)
    }

    async fn mail(&mut self, m: &MailStep, limit: Duration) -> Result<(), Failure> {
        let task = self.task;
        let password = match task.app_password.expose_secret().trim() {
            "" => task.pass_mail.clone(),
            _ => task.app_password.clone(),
        };
        let login = MailLogin {
            user: task.email.clone(),
            password,
        };
        let render = |t: &Option<super::Template>| t.as_ref().map(|t| t.render(&self.vars));
        let query = MailQuery {
            from: render(&m.from),
            subject: render(&m.subject),
            to: render(&m.to).or_else(|| Some(task.email.clone())),
            since: self.started - Duration::from_secs(5),
            pattern: m.pattern.clone(),
        };
        let deadline =
            tokio::time::Instant::now() + limit.saturating_sub(Duration::from_millis(500));
        match self.env.mailbox.wait_for(&login, &query, deadline).await {
            Ok(found) => {
                self.vars.set(&m.into, found.value);
                Ok(())
            }
            Err(e) if e.is_permanent() => Err(Failure::Permanent(e.to_string())),
            Err(e) => Err(Failure::Transient(e.to_string())),
        }
    }

    async fn extract(&mut self, e: &ExtractStep) -> Result<(), Failure> {
        self.wait("exists", &e.selector).await?;
        let args = [json!(e.selector), json!(e.attribute)];
        let raw = self.session.call(JS_READ, &args).await?;
        let raw = raw.as_str().unwrap_or_default().trim().to_owned();
        let value = match &e.pattern {
            None => raw,
            Some(re) => match re.captures(&raw) {
                Some(c) => c
                    .get(1)
                    .or_else(|| c.get(0))
                    .map_or("", |m| m.as_str())
                    .to_owned(),
                None => {
                    return Err(Failure::Transient(format!(
                        "the value of {:?} does not match the pattern",
                        e.selector
                    )));
                }
            },
        };
        if value.is_empty() {
            return Err(Failure::Transient(format!("{:?} is empty", e.selector)));
        }
        self.vars.set(&e.into, value);
        Ok(())
    }

    async fn fail_if(&self, sel: &str, message: Option<&str>) -> Result<(), Failure> {
        let text = self.session.call(JS_VISIBLE_TEXT, &[sel.into()]).await?;
        match text.as_str() {
            Some(t) => Err(Failure::Site(message.unwrap_or(t).to_owned())),
            None => Ok(()),
        }
    }
}

/// The failure's text for the step log and the error message.
pub(crate) fn failure_text(f: &Failure) -> String {
    match f {
        Failure::Site(m) => format!("site error: {m}"),
        Failure::Captcha(m) => format!("captcha: {m}"),
        Failure::Permanent(m) | Failure::Transient(m) => m.clone(),
    }
}

/// A step as the log shows it: action and selector (or URL without its query), never a value.
fn describe(step: &Step) -> String {
    let label = step
        .name
        .as_deref()
        .map(|n| format!(" [{n}]"))
        .unwrap_or_default();
    let target = match &step.action {
        Action::Fill(s, _)
        | Action::Click(s, _)
        | Action::Select(s, _)
        | Action::Check(s, _)
        | Action::UploadImage(s)
        | Action::WaitFor(s)
        | Action::Totp(s)
        | Action::FailIf(s, _) => s.clone(),
        Action::Extract(e) => format!("{} -> {}", e.selector, e.into),
        Action::WaitMail(m) => format!("-> {}", m.into),
        Action::Cookies(v) => format!("-> {v}"),
        Action::WaitUrl(re) => re.as_str().to_owned(),
        Action::Goto(_) | Action::WaitText(_) | Action::FailIfText(..) => String::new(),
    };
    format!("{}{label} {target}", step.action.kind())
        .trim_end()
        .to_owned()
}

const JS_STATUS: &str = r#"(cond, arg, errSel, errTexts, capSel) => {
  const vis = (el) => !!el && !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  for (const s of capSel) { if (vis(document.querySelector(s))) return {captcha: s}; }
  for (const s of errSel) {
    for (const el of document.querySelectorAll(s)) {
      const t = (el.innerText || '').trim();
      if (vis(el) && t) return {error: t.slice(0, 500)};
    }
  }
  const body = document.body ? document.body.innerText : '';
  for (const t of errTexts) {
    const line = body.split('\n').find(l => l.toLowerCase().includes(t.toLowerCase()));
    if (line) return {error: line.trim().slice(0, 500)};
  }
  let ok = false;
  if (cond === 'visible') ok = vis(document.querySelector(arg));
  else if (cond === 'exists') ok = !!document.querySelector(arg);
  else if (cond === 'text') ok = body.includes(arg);
  else if (cond === 'navigated') ok = window.__pwBeforeNav === undefined && document.readyState === 'complete';
  else ok = true;
  return {ok, href: location.href};
}"#;

const JS_NAV_STATUS: &str = "(() => { const n = performance.getEntriesByType('navigation')[0]; \
                             return n && n.responseStatus ? n.responseStatus : 0; })()";

const JS_READ: &str = r#"(sel, attr) => {
  const el = document.querySelector(sel);
  if (!el) return '';
  if (attr === 'value') return el.value || '';
  if ((attr === 'href' || attr === 'src') && el[attr]) return el[attr];
  if (attr) return el.getAttribute(attr) || '';
  return el.innerText || el.textContent || '';
}"#;

const JS_VISIBLE_TEXT: &str = r#"(sel) => {
  for (const el of document.querySelectorAll(sel)) {
    if (el.offsetWidth || el.offsetHeight || el.getClientRects().length)
      return ((el.innerText || '').trim() || sel).slice(0, 500);
  }
  return null;
}"#;

const JS_FIND_TEXT: &str = r#"(text) => {
  const body = document.body ? document.body.innerText : '';
  const line = body.split('\n').find(l => l.toLowerCase().includes(text.toLowerCase()));
  return line ? line.trim().slice(0, 500) : null;
}"#;

//! [`RecipeDriver`]: the [`Driver`] that registers an account by running a recipe in a fresh browser context,
//! turning step failures into permanent or transient [`DriverError`]s and saving failure artifacts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;

use super::run::{Failure, Run, failure_text};
use super::template::{Vars, html_to_text, seed, spin};
use super::{Recipe, Step, StepLog, artifacts};
use crate::browser::{BrowserPool, Session};
use crate::config::{ImageSettings, MailSettings, TotpSettings};
use crate::driver::{Driver, DriverError};
use crate::mailbox::{MailError, Mailbox};
use crate::task::{Registration, Task};
use crate::totp::TotpGenerator;

/// What every recipe run shares: the browser pool, the mailbox reader, the TOTP generator, image limits.
#[derive(Clone, Debug)]
pub struct RecipeEnv {
    /// Browser pool.
    pub pool: BrowserPool,
    /// Verification mail reader.
    pub mailbox: Mailbox,
    /// TOTP codes (never the same one twice).
    pub totp: TotpGenerator,
    /// `image_url` download limits.
    pub image: ImageSettings,
    /// Default limit of one step.
    pub step_timeout: Duration,
    /// Limit of a whole run.
    pub recipe_timeout: Duration,
    /// Where failure artifacts go.
    pub artifacts_dir: PathBuf,
}

impl RecipeEnv {
    /// Builds the environment; timeouts and the artifacts directory come from the pool's settings.
    ///
    /// # Errors
    /// [`MailError::Config`] when the IMAP TLS settings are unusable.
    pub fn new(
        pool: BrowserPool,
        mail: &MailSettings,
        image: ImageSettings,
        totp: TotpSettings,
    ) -> Result<Self, MailError> {
        let s = pool.settings().clone();
        Ok(Self {
            mailbox: Mailbox::new(mail)?,
            totp: TotpGenerator::new(totp.min_remaining),
            image,
            step_timeout: s.step_timeout,
            recipe_timeout: s.recipe_timeout,
            artifacts_dir: s.artifacts_dir,
            pool,
        })
    }
}

/// Called after every step (the recipe check command saves a screenshot per step with it).
#[async_trait::async_trait]
pub trait StepHook: Send + Sync {
    /// `ok` tells whether the step succeeded.
    async fn after_step(&self, session: &Session, step: &Step, ok: bool);
}

/// A run's result and its step log.
#[derive(Debug)]
pub struct RunOutcome {
    /// The registration, or why it failed (with the artifacts directory in the message).
    pub result: Result<Registration, DriverError>,
    /// What each step did.
    pub log: StepLog,
}

/// Runs one recipe for every task of its domains.
#[derive(Debug, Clone)]
pub struct RecipeDriver {
    recipe: Arc<Recipe>,
    env: RecipeEnv,
}

impl RecipeDriver {
    /// A driver for `recipe`.
    pub fn new(recipe: Arc<Recipe>, env: RecipeEnv) -> Self {
        Self { recipe, env }
    }

    /// The recipe it runs.
    pub fn recipe(&self) -> &Recipe {
        &self.recipe
    }

    /// Runs the recipe once for `task` under the recipe timeout, calling `hook` after each step.
    pub async fn run(&self, task: &Task, hook: Option<&dyn StepHook>) -> RunOutcome {
        self.run_attempt(task, 1, hook).await
    }

    /// [`RecipeDriver::run`] as attempt `attempt` (from 1) of the task: from the second attempt on, the
    /// recipe's `[[resume]]` rules apply.
    pub async fn run_attempt(
        &self,
        task: &Task,
        attempt: u32,
        hook: Option<&dyn StepHook>,
    ) -> RunOutcome {
        let mut log = StepLog::default();
        let result = match self.env.pool.open_session().await {
            Err(e) => Err(DriverError::Transient(e.to_string())),
            Ok(session) => {
                let run = Run {
                    env: &self.env,
                    recipe: &self.recipe,
                    task,
                    session: &session,
                    vars: task_vars(task),
                    started: SystemTime::now(),
                    image: None,
                    attempt,
                };
                let r = self.run_in(run, hook, &mut log).await;
                session.close().await;
                r
            }
        };
        if let Err(e) = &result {
            log.push(format!("failed: {e}"));
        }
        RunOutcome { result, log }
    }

    async fn run_in(
        &self,
        mut run: Run<'_>,
        hook: Option<&dyn StepHook>,
        log: &mut StepLog,
    ) -> Result<Registration, DriverError> {
        let (task, session) = (run.task, run.session);
        let limit = self.env.recipe_timeout;
        let steps = self.steps(&mut run, hook, log);
        let failure = match tokio::time::timeout(limit, steps).await {
            Ok(Ok(())) => return Ok(self.registration(&run.vars)),
            Ok(Err(f)) => f,
            Err(_) => Failure::Transient(format!(
                "recipe {} timed out after {} s",
                self.recipe.name,
                limit.as_secs()
            )),
        };
        let dir = artifacts::save(
            &self.env.artifacts_dir,
            task.id.as_str(),
            Some(session),
            log,
        )
        .await;
        let text = format!("{} (artifacts: {})", failure_text(&failure), dir.display());
        Err(match failure {
            Failure::Transient(_) => DriverError::Transient(text),
            _ => DriverError::Permanent(text),
        })
    }

    async fn steps(
        &self,
        run: &mut Run<'_>,
        hook: Option<&dyn StepHook>,
        log: &mut StepLog,
    ) -> Result<(), Failure> {
        let steps = &self.recipe.steps;
        let mut resumed = vec![false; self.recipe.resume.len()];
        let mut i = 0;
        while let Some(step) = steps.get(i) {
            i += 1;
            let mut result = run.step(step, log).await;
            if let Some(hook) = hook {
                hook.after_step(run.session, step, result.is_ok()).await;
            }
            if let Err(Failure::Transient(m)) = &result {
                // A failed step may leave a submit waiting for its answer: abandon it now, so it cannot
                // complete in the background (and make a retry find the account "already registered")
                // while the page is examined and the artifacts saved.
                if !step.optional {
                    let stop = run.session.stop_loading();
                    let _ = tokio::time::timeout(Duration::from_secs(2), stop).await;
                }
                // A failed step is often explained by what the page shows (a site error, a CAPTCHA), or
                // by a dead browser.
                result = Err(if run.session.browser_dead() {
                    Failure::Transient("browser crashed".into())
                } else {
                    run.page_problem()
                        .await
                        .unwrap_or_else(|| Failure::Transient(m.clone()))
                });
            }
            if let Err(Failure::Site(message)) = &result
                && let Some(k) = self.resume_rule(run.attempt, i, message, &resumed)
            {
                let to = &steps[self.recipe.resume[k].from];
                log.push(format!(
                    "step {}: the site says {message:?} on attempt {}: an earlier attempt got this far; \
                     resuming at step {}",
                    step.index, run.attempt, to.index
                ));
                resumed[k] = true;
                i = self.recipe.resume[k].from;
                continue;
            }
            match result {
                Err(Failure::Transient(_) | Failure::Permanent(_)) if step.optional => {
                    log.push(format!("step {} is optional: continuing", step.index));
                }
                other => other?,
            }
        }
        Ok(())
    }

    /// The `[[resume]]` rule (its index) that applies to a site error `message` met before step `next`
    /// (index from 0) on attempt `attempt`: only on a retry, only forward, each rule once.
    fn resume_rule(
        &self,
        attempt: u32,
        next: usize,
        message: &str,
        used: &[bool],
    ) -> Option<usize> {
        if attempt < 2 {
            return None;
        }
        let message = message.to_lowercase();
        self.recipe.resume.iter().enumerate().find_map(|(k, r)| {
            (!used[k] && r.from >= next && message.contains(&r.when.to_lowercase())).then_some(k)
        })
    }

    fn registration(&self, vars: &Vars) -> Registration {
        let m = &self.recipe.result;
        let text = |t: &Option<super::Template>| {
            t.as_ref()
                .map(|t| t.render(vars))
                .filter(|v| !v.trim().is_empty())
        };
        Registration {
            email: text(&m.email),
            username: text(&m.username),
            password: text(&m.password).map(SecretString::from),
            cookie: text(&m.cookie).map(SecretString::from),
            link_rss: text(&m.link_rss),
            note: text(&m.note),
        }
    }
}

/// The variables a task offers templates; Spintax in `username` and `about` resolved with a per-task seed.
pub(crate) fn task_vars(task: &Task) -> Vars {
    let id = task.id.as_str();
    let about_html = spin(&task.about, seed(&format!("{id}:about")));
    let mut v = Vars::default();
    v.set("task_id", id);
    v.set("request_id", task.request_id.clone());
    v.set("group_id", task.group_id.clone());
    v.set("domain", task.domain.clone());
    v.set("website", task.website.clone());
    v.set("email", task.email.clone());
    v.set(
        "username",
        spin(&task.username, seed(&format!("{id}:username"))),
    );
    v.set_secret("password", task.password.clone());
    v.set("about_text", html_to_text(&about_html));
    v.set("about", about_html.clone());
    v.set("about_html", about_html);
    v.set("image_url", task.image_url.clone());
    v.set("link_rss", task.link_rss.clone());
    v
}

#[async_trait::async_trait]
impl Driver for RecipeDriver {
    fn name(&self) -> &str {
        &self.recipe.name
    }

    async fn register(&self, task: &Task) -> Result<Registration, DriverError> {
        self.register_attempt(task, 1).await
    }

    async fn register_attempt(
        &self,
        task: &Task,
        attempt: u32,
    ) -> Result<Registration, DriverError> {
        let outcome = self.run_attempt(task, attempt, None).await;
        if let Err(e) = &outcome.result {
            tracing::info!(task_id = %task.id, recipe = %self.recipe.name, error = %e, "recipe failed");
        }
        outcome.result
    }
}

//! [`RecipeDriver`]: the [`Driver`] that registers an account by running a recipe in a fresh browser context:
//! steps in order, skipping those whose condition is false, following forward jumps and `[[resume]]` rules,
//! and saving scrubbed failure artifacts named in the error's note.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;

use super::env::RecipeEnv;
use super::run::{Failure, Run, describe};
use super::template::{Vars, html_to_text, seed, spin};
use super::{Recipe, Step, StepLog, artifacts};
use crate::browser::Session;
use crate::driver::{Driver, DriverError, FailureKind};
use crate::task::{Registration, Task};

/// Called after every step (the recipe check command saves a screenshot per step with it).
#[async_trait::async_trait]
pub trait StepHook: Send + Sync {
    /// `ok` tells whether the step succeeded.
    async fn after_step(&self, session: &Session, step: &Step, ok: bool);
}

/// A run's result and its step log.
#[derive(Debug)]
pub struct RunOutcome {
    /// The registration, or why it failed (the artifacts directory in the error's note).
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
    pub(crate) async fn run_attempt(
        &self,
        task: &Task,
        attempt: u32,
        hook: Option<&dyn StepHook>,
    ) -> RunOutcome {
        self.run_from(task, attempt, 0, hook).await
    }

    /// [`RecipeDriver::run_attempt`] starting at step `from` (an index from 0; `recipe-check --from`), on a
    /// fresh page: the steps before it are not run, so the variables they would set are unset.
    pub(crate) async fn run_from(
        &self,
        task: &Task,
        attempt: u32,
        from: usize,
        hook: Option<&dyn StepHook>,
    ) -> RunOutcome {
        let mut log = StepLog::default();
        let result = match self.env.pool.open_session().await {
            Err(e) => Err(e.into()),
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
                    typed: Vec::new(),
                    next_totp: None,
                    untyped_totp: None,
                };
                let r = self.run_in(run, from, hook, &mut log).await;
                session.close().await;
                r
            }
        };
        if let Err(e) = &result
            && e.note.is_none()
        {
            log.push(format!("failed: {e}"));
        }
        RunOutcome { result, log }
    }

    async fn run_in(
        &self,
        mut run: Run<'_>,
        from: usize,
        hook: Option<&dyn StepHook>,
        log: &mut StepLog,
    ) -> Result<Registration, DriverError> {
        let (task, session) = (run.task, run.session);
        let limit = self.env.recipe_timeout;
        let steps = self.steps(&mut run, from, hook, log);
        let failure = match tokio::time::timeout(limit, steps).await {
            Ok(Ok(())) => return Ok(self.registration(&run.vars)),
            Ok(Err(f)) => f,
            Err(_) => DriverError::new(
                FailureKind::Timeout,
                true,
                format!(
                    "recipe {} timed out after {} s",
                    self.recipe.name,
                    limit.as_secs()
                ),
            ),
        };
        log.push(format!("failed: {failure}"));
        let dir = artifacts::save(
            &self.env.artifacts_dir,
            task.id.as_str(),
            Some(session),
            log,
            &run.secrets(),
        )
        .await;
        Err(failure.with_note(format!("artifacts: {}", dir.display())))
    }

    async fn steps(
        &self,
        run: &mut Run<'_>,
        from: usize,
        hook: Option<&dyn StepHook>,
        log: &mut StepLog,
    ) -> Result<(), Failure> {
        let steps = &self.recipe.steps;
        let mut resumed = vec![false; self.recipe.resume.len()];
        let mut i = from;
        while let Some(step) = steps.get(i) {
            i += 1;
            match run.holds(step).await {
                Ok(true) => {}
                Ok(false) => {
                    let key = step.when.as_ref().map_or("", |c| c.key());
                    log.push(format!(
                        "step {} {}: skipped ({key} is false)",
                        step.index,
                        describe(step)
                    ));
                    continue;
                }
                Err(f) => return Err(f),
            }
            let mut result = run.step(step, log).await;
            if let Some(hook) = hook {
                hook.after_step(run.session, step, result.is_ok()).await;
            }
            if let Err(failure) = &result
                && failure.transient
            {
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
                    DriverError::new(FailureKind::Browser, true, "browser crashed")
                } else {
                    match run.page_problem().await {
                        Some(problem) => problem,
                        None => failure.clone(),
                    }
                });
            }
            if let Err(Failure {
                kind: FailureKind::Site,
                message,
                ..
            }) = &result
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
                Err(f)
                    if step.optional
                        && !matches!(f.kind, FailureKind::Site | FailureKind::Captcha) =>
                {
                    log.push(format!("step {} is optional: continuing", step.index));
                }
                Err(f) => return Err(f),
                Ok(()) => {
                    if let Some(to) = step.then {
                        log.push(format!(
                            "step {}: continuing at step {}",
                            step.index, steps[to].index
                        ));
                        i = to;
                    }
                }
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
    v.set_secret("pass_mail", task.pass_mail.clone());
    v.set_secret("app_password", task.app_password.clone());
    v.set("about_text", html_to_text(&about_html));
    v.set("about", about_html.clone());
    v.set("about_html", about_html);
    v.set("image_url", task.image_url.clone().unwrap_or_default());
    v.set("link_rss", task.link_rss.clone().unwrap_or_default());
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

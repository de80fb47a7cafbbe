//! The whole pipeline against the simulator's demo platforms, in one process and with nothing mocked: the
//! simulator (mail into the test Dovecot), the fetcher, Redis, and an executor running the real recipes of
//! `recipes/` in the real headless Chromium (`*.demo.test` mapped to the simulator), reading mail over IMAP.

use std::sync::Arc;
use std::time::Duration;

use podcast_worker::config::{ExecutorConfig, FetcherConfig, Source};
use podcast_worker::executor::Executor;
use podcast_worker::fetcher::Fetcher;
use podcast_worker::metrics::Metrics;
use pw_simulator::{
    self as simulator, DEFAULT_MAIN_DOMAIN, DemoFaults, MailOptions, ScenarioSpec, ScenarioTask,
    SimulatorHandle, SimulatorOptions, TaskView,
};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::browser::chromium_path;
use super::mail::dovecot;
use super::{cleanup, redis_url, unique_prefix};

const API_KEY: &str = "demo-e2e-key-7d21";
const OUTBOX_KEY_HEX: &str = "7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e";

/// What a test changes from the defaults (default: no manager retries, no extra variables).
#[derive(Default)]
pub struct StackOptions {
    /// The simulator's retry manager: failures re-queued before final_failed.
    pub max_retries: u32,
    /// Executor variables on top of the defaults (e.g. `PW_STEP_TIMEOUT_MS`).
    pub executor_vars: Vec<(&'static str, String)>,
}

/// A running simulator + fetcher + executor on a key prefix of its own.
pub struct DemoStack {
    /// The simulated manager and demo platforms.
    pub sim: Arc<SimulatorHandle>,
    /// Redis key prefix of this test.
    pub prefix: String,
    /// The executor's metrics.
    pub metrics: Arc<Metrics>,
    /// Profiles and failure artifacts.
    pub dir: tempfile::TempDir,
    seed: u64,
    web: reqwest::Client,
    executor_vars: Vec<(&'static str, String)>,
    cancel: CancellationToken,
    running: JoinSet<()>,
    pool: Option<podcast_worker::browser::BrowserPool>,
}

/// Logs of the pipeline in the test's output (shown when a test fails); `RUST_LOG` overrides the filter.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("podcast_worker=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

fn common_vars(prefix: &str, sim: &SimulatorHandle, consumer: &str) -> Source {
    Source::from_pairs([
        ("PW_REDIS_URL", redis_url()),
        ("PW_KEY_PREFIX", prefix.to_owned()),
        ("PW_API_BASE_URL", sim.api_base_url()),
        ("PW_API_KEY", API_KEY.to_owned()),
        ("PW_OUTBOX_KEY", OUTBOX_KEY_HEX.to_owned()),
        ("PW_CONSUMER_NAME", consumer.to_owned()),
        ("PW_API_TIMEOUT_MS", "10000".to_owned()),
        ("PW_API_BACKOFF_MS", "50".to_owned()),
        ("PW_API_BACKOFF_MAX_MS", "500".to_owned()),
        ("PW_POLL_MIN_MS", "50".to_owned()),
        ("PW_POLL_MAX_MS", "300".to_owned()),
        ("PW_READ_BLOCK_MS", "200".to_owned()),
        ("PW_OUTBOX_RETRY_MS", "300".to_owned()),
        ("PW_METRICS_ADDR", "127.0.0.1:0".to_owned()),
    ])
}

/// The executor's configuration: the real recipes, Chromium mapping the demo host names to the simulator,
/// images from private addresses allowed, IMAP at the test Dovecot.
fn executor_source(stack: &StackParts<'_>, extra: &[(&'static str, String)]) -> Source {
    let imap = dovecot();
    let mut src = common_vars(stack.prefix, stack.sim, "demo-e2e-executor");
    let dir = stack.dir;
    let vars = [
        (
            "PW_RECIPES_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/recipes").to_owned(),
        ),
        ("PW_CHROMIUM_PATH", chromium_path().display().to_string()),
        (
            "PW_CHROMIUM_ARGS",
            format!(
                // Two rules in one flag: the value's comma survives the `;;` list syntax.
                "host-resolver-rules=MAP *.demo.test 127.0.0.1:{}, EXCLUDE localhost;;",
                stack.sim.addr().port()
            ),
        ),
        (
            "PW_BROWSER_PROFILE_ROOT",
            dir.join("profiles").display().to_string(),
        ),
        (
            "PW_ARTIFACTS_DIR",
            dir.join("artifacts").display().to_string(),
        ),
        ("PW_IMAGE_ALLOW_PRIVATE", "true".to_owned()),
        ("PW_IMAP_HOST", "localhost".to_owned()),
        ("PW_IMAP_PORT", imap.port.to_string()),
        ("PW_IMAP_CA_FILE", imap.ca.display().to_string()),
        ("PW_MAIL_POLL_MS", "250".to_owned()),
        ("PW_CONCURRENCY", "3".to_owned()),
        ("PW_TASK_TIMEOUT_SECS", "100".to_owned()),
        ("PW_RECIPE_TIMEOUT_SECS", "90".to_owned()),
        ("PW_TASK_ATTEMPTS", "1".to_owned()),
        ("PW_TASK_BACKOFF_MS", "100".to_owned()),
    ];
    for (k, v) in vars.iter().chain(extra) {
        src.set(k, v);
    }
    src
}

struct StackParts<'a> {
    prefix: &'a str,
    sim: &'a SimulatorHandle,
    dir: &'a std::path::Path,
}

impl DemoStack {
    /// Starts the simulator only (no tasks yet; demo mail into the test Dovecot). Add tasks, prepare the demo
    /// sites, then call [`Self::start_pipeline`].
    pub async fn new(options: StackOptions) -> Self {
        init_logging();
        let imap = dovecot();
        let mut sim_options = SimulatorOptions::for_test(API_KEY);
        sim_options.max_retries = options.max_retries;
        sim_options.mail = MailOptions {
            maildir_root: Some(imap.root.clone()),
            users_file: Some(imap.users.clone()),
            spam: 0.0,
        };
        let sim = simulator::spawn(sim_options).await.expect("simulator");
        Self {
            sim: Arc::new(sim),
            prefix: unique_prefix(),
            metrics: super::executor::metrics(),
            dir: tempfile::tempdir().expect("temp dir"),
            seed: u64::from(uuid::Uuid::new_v4().as_u128() as u32),
            web: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
            executor_vars: options.executor_vars,
            cancel: CancellationToken::new(),
            running: JoinSet::new(),
            pool: None,
        }
    }

    /// Starts a fetcher and one executor running the real recipes in Chromium.
    pub async fn start_pipeline(&mut self) {
        let fetcher_cfg =
            FetcherConfig::from_source(&common_vars(&self.prefix, &self.sim, "fetcher"))
                .expect("fetcher config");
        let fetcher = Fetcher::connect(
            &fetcher_cfg.streams,
            &fetcher_cfg.api,
            fetcher_cfg.fetcher,
            super::fetcher::metrics(),
        )
        .await
        .expect("fetcher");
        self.running.spawn(fetcher.run(self.cancel.clone()));

        let parts = StackParts {
            prefix: &self.prefix,
            sim: &self.sim,
            dir: self.dir.path(),
        };
        let cfg = ExecutorConfig::from_source(&executor_source(&parts, &self.executor_vars))
            .expect("executor config");
        let recipes = podcast_worker::recipe::setup(&cfg.recipe, Some(&cfg.streams))
            .expect("the real recipes load");
        let executor = Executor::new(&cfg, recipes.drivers, self.metrics.clone())
            .await
            .expect("executor");
        let stop = self.cancel.clone();
        self.running.spawn(async move { executor.run(stop).await });
        self.pool = Some(recipes.pool);
    }

    /// Adds one request: its main-site task on `main.demo.test`, then `subs` sub-site tasks. Each stack has its
    /// own seed, so its mailboxes are not those of another test sharing the Dovecot.
    pub fn add_request(&self, subs: u32) -> Vec<ScenarioTask> {
        self.add_requests_on(DEFAULT_MAIN_DOMAIN, 1, subs)
    }

    /// Adds `requests` requests whose main-site task is on `main`, each with `subs` sub-site tasks.
    pub fn add_requests_on(&self, main: &str, requests: u32, subs: u32) -> Vec<ScenarioTask> {
        self.sim.add_scenario(&ScenarioSpec {
            requests,
            subs_per_request: subs,
            seed: self.seed,
            main_domains: vec![main.to_owned()],
            ..ScenarioSpec::default()
        })
    }

    /// Waits until every task is completed or final_failed, or `within` passed; the caller's assertions then
    /// tell what went wrong, with the simulator's evidence.
    pub async fn settle(&self, ids: &[String], within: Duration) {
        let started = std::time::Instant::now();
        let done = || {
            ids.iter()
                .all(|id| matches!(self.view(id).state, "completed" | "final_failed"))
        };
        let what = "every task finished (or the settle deadline)";
        super::eventually(within + Duration::from_secs(5), what, || async {
            (done() || started.elapsed() > within).then_some(())
        })
        .await;
    }

    /// A task's view in the simulator.
    pub fn view(&self, id: &str) -> TaskView {
        self.sim.task(id).expect("a task of this simulator")
    }

    /// A string field of the task as the API hands it out.
    pub fn field(&self, id: &str, name: &str) -> String {
        self.view(id).task[name]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// What the simulator knows, for assertion messages: the audit, the demo faults and every task's view.
    pub fn evidence(&self, ids: &[String]) -> String {
        let views: Vec<TaskView> = ids.iter().map(|id| self.view(id)).collect();
        let all = json!({"audit": self.sim.audit(), "tasks": views});
        let pretty = serde_json::to_string_pretty(&all).unwrap_or_default();
        format!("simulator evidence:\n{pretty}")
    }

    /// How many history entries of `action` the task has (applied or not).
    pub fn count(&self, id: &str, action: &str) -> usize {
        self.view(id)
            .history
            .iter()
            .filter(|h| h.action == action)
            .count()
    }

    /// The demo platforms' step faults now (`GET /admin/demo/faults`).
    pub async fn demo_faults(&self) -> DemoFaults {
        let url = format!("{}/admin/demo/faults", self.sim.url());
        let r = self.web.get(url).send().await.expect("demo faults");
        r.json().await.expect("demo faults JSON")
    }

    /// A demo platform's accounts and shows (`GET /admin/demo/sites/{domain}`).
    pub async fn site(&self, domain: &str) -> Value {
        let url = format!("{}/admin/demo/sites/{domain}", self.sim.url());
        let r = self.web.get(url).send().await.expect("demo site");
        r.json().await.expect("demo site JSON")
    }

    /// POSTs a JSON body to a demo admin endpoint and returns the answer.
    pub async fn admin(&self, path: &str, body: Value) -> Value {
        let url = format!("{}/admin/demo/{path}", self.sim.url());
        let r = self.web.post(url).json(&body).send().await.expect(path);
        r.json().await.expect("admin JSON")
    }

    /// Posts a form to a demo platform by path (`/demo/<domain><path>`); returns status and page.
    pub async fn post_form(
        &self,
        domain: &str,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, String) {
        let url = format!("{}/demo/{domain}{path}", self.sim.url());
        let r = self.web.post(url).form(form).send().await.expect(path);
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    /// Stops the fetcher and executor, shuts Chromium down and deletes this test's Redis keys.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        while self.running.join_next().await.is_some() {}
        if let Some(pool) = self.pool.take() {
            pool.shutdown().await;
        }
        cleanup(&self.prefix).await;
    }
}

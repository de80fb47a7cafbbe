//! The whole pipeline in one process: simulator → fetcher → Redis → several executors (with a driver that
//! returns at once, counting registrations per task) → reports. For the fault matrix.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use podcast_worker::config::{ExecutorConfig, FetcherConfig, Source};
use podcast_worker::driver::{Driver, DriverError, Drivers};
use podcast_worker::executor::Executor;
use podcast_worker::fetcher::Fetcher;
use podcast_worker::task::{Registration, Task};
use pw_simulator::{
    self as simulator, Audit, DEFAULT_MAIN_DOMAIN, DEFAULT_SUB_DOMAINS, Faults, ScenarioSpec,
    SimulatorHandle, SimulatorOptions,
};
use secrecy::SecretString;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::fetcher::metrics;
use super::{cleanup, eventually, redis_url, unique_prefix};
use podcast_worker::metrics::Metrics;
use pw_simulator::REQUESTS_TOTAL;

const KEY: &str = "pipeline-key-9c0d";
const OUTBOX_KEY_HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Registers instantly and counts how often each task was registered.
#[derive(Default)]
pub struct CountingDriver {
    runs: Mutex<HashMap<String, usize>>,
    attempts: Mutex<HashMap<String, Vec<u32>>>,
    fail_first: bool,
}

impl CountingDriver {
    /// Fails each task's first run permanently (the manager's retry manager re-queues it), then succeeds.
    pub fn failing_first() -> Self {
        Self {
            fail_first: true,
            ..Self::default()
        }
    }

    /// Registrations per task id.
    pub fn runs(&self) -> HashMap<String, usize> {
        self.runs.lock().unwrap().clone()
    }

    /// The attempt numbers the executor gave each task's runs, in order.
    pub fn attempts(&self) -> HashMap<String, Vec<u32>> {
        self.attempts.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Driver for CountingDriver {
    fn name(&self) -> &str {
        "counting"
    }

    async fn register_attempt(
        &self,
        task: &Task,
        attempt: u32,
    ) -> Result<Registration, DriverError> {
        self.attempts
            .lock()
            .unwrap()
            .entry(task.id.to_string())
            .or_default()
            .push(attempt);
        self.register(task).await
    }

    async fn register(&self, task: &Task) -> Result<Registration, DriverError> {
        let run = {
            let mut runs = self.runs.lock().unwrap();
            let n = runs.entry(task.id.to_string()).or_default();
            *n += 1;
            *n
        };
        if self.fail_first && run == 1 {
            return Err(DriverError::permanent("refused the first time".to_owned()));
        }
        Ok(Registration {
            email: Some(task.email.clone()),
            username: Some(format!("u-{}", task.id)),
            password: Some(SecretString::from("Regist3red!pw")),
            cookie: Some(SecretString::from(format!("sid={}", task.id))),
            link_rss: task
                .link_rss
                .is_none()
                .then(|| format!("https://feeds.test/{}/rss", task.id)),
            note: None,
        })
    }
}

/// A running pipeline.
pub struct Pipeline {
    pub prefix: String,
    pub sim: SimulatorHandle,
    pub driver: Arc<CountingDriver>,
    /// The fetcher's metrics, then each executor's.
    pub metrics: Vec<Arc<Metrics>>,
    cancel: CancellationToken,
    running: JoinSet<()>,
}

fn source(prefix: &str, sim: &SimulatorHandle, consumer: &str) -> Source {
    Source::from_pairs([
        ("PW_REDIS_URL", redis_url()),
        ("PW_KEY_PREFIX", prefix.to_owned()),
        ("PW_API_BASE_URL", sim.api_base_url()),
        ("PW_API_KEY", KEY.to_owned()),
        ("PW_OUTBOX_KEY", OUTBOX_KEY_HEX.to_owned()),
        ("PW_CONSUMER_NAME", consumer.to_owned()),
        ("PW_CONCURRENCY", "3".to_owned()),
        ("PW_READ_BLOCK_MS", "100".to_owned()),
        ("PW_CLAIM_IDLE_MS", "3000".to_owned()),
        ("PW_LEASE_RENEW_MS", "1000".to_owned()),
        ("PW_API_TIMEOUT_MS", "3000".to_owned()),
        ("PW_API_RETRIES", "4".to_owned()),
        ("PW_API_BACKOFF_MS", "20".to_owned()),
        ("PW_API_BACKOFF_MAX_MS", "1500".to_owned()),
        ("PW_TASK_BACKOFF_MS", "20".to_owned()),
        ("PW_OUTBOX_RETRY_MS", "200".to_owned()),
        ("PW_POLL_MIN_MS", "20".to_owned()),
        ("PW_POLL_MAX_MS", "200".to_owned()),
        ("PW_FETCH_LIMIT", "5".to_owned()),
        ("PW_MAX_BACKLOG", "8".to_owned()),
        ("PW_LEADER_TTL_MS", "2000".to_owned()),
        ("PW_METRICS_ADDR", "127.0.0.1:0".to_owned()),
    ])
}

impl Pipeline {
    /// Starts a simulator with `requests` requests of `subs` sub-site tasks and `faults`, a fetcher and
    /// `executors` executors.
    pub async fn start(requests: u32, subs: u32, faults: Faults, executors: usize) -> Self {
        Self::start_with(requests, subs, faults, executors, CountingDriver::default()).await
    }

    /// [`Pipeline::start`] with a driver of the test's choosing.
    pub async fn start_with(
        requests: u32,
        subs: u32,
        faults: Faults,
        executors: usize,
        driver: CountingDriver,
    ) -> Self {
        let mut opts = SimulatorOptions::for_test(KEY);
        opts.scenario = ScenarioSpec {
            requests,
            subs_per_request: subs,
            ..ScenarioSpec::default()
        };
        opts.faults = faults;
        let sim = simulator::spawn(opts).await.expect("simulator");
        let prefix = unique_prefix();
        let driver = Arc::new(driver);
        let mut drivers = Drivers::new();
        for d in std::iter::once(DEFAULT_MAIN_DOMAIN).chain(DEFAULT_SUB_DOMAINS.iter().copied()) {
            drivers.insert(d, driver.clone());
        }
        let cancel = CancellationToken::new();
        let mut running = JoinSet::new();
        let cfg = FetcherConfig::from_source(&source(&prefix, &sim, "fetcher")).unwrap();
        let mut all_metrics = vec![metrics()];
        let fetcher = Fetcher::connect(&cfg.streams, &cfg.api, cfg.fetcher, all_metrics[0].clone())
            .await
            .unwrap();
        running.spawn(fetcher.run(cancel.clone()));
        for i in 0..executors {
            let cfg: ExecutorConfig =
                ExecutorConfig::from_source(&source(&prefix, &sim, &format!("exec-{i}"))).unwrap();
            all_metrics.push(metrics());
            let exec = Executor::new(&cfg, drivers.clone(), all_metrics[i + 1].clone())
                .await
                .unwrap();
            let cancel = cancel.clone();
            running.spawn(async move { exec.run(cancel).await });
        }
        Self {
            prefix,
            sim,
            driver,
            metrics: all_metrics,
            cancel,
            running,
        }
    }

    /// Waits until no task is in our hands (handed out, running, failed awaiting retry, or queued but
    /// not blocked by a dead main task) and returns the audit.
    pub async fn settled(&self, deadline: Duration) -> Audit {
        eventually(deadline, "every task to settle", || async {
            let a = self.sim.audit();
            let busy = ["handed_out", "running", "failed"]
                .iter()
                .map(|s| a.counts[s])
                .sum::<usize>();
            (busy == 0 && a.counts["queued"] == a.blocked).then_some(a)
        })
        .await
    }

    /// The sum over the fetcher and executors of every series of `family` (e.g. `pw_api_retries_total`).
    pub fn total(&self, family: &str) -> f64 {
        self.metrics
            .iter()
            .map(|m| family_sum(&m.render(), family, ""))
            .sum()
    }

    /// Simulator answers with `status` (a code or `dropped`), from its `/metrics`.
    pub async fn sim_answers(&self, status: &str) -> f64 {
        let page = reqwest::get(format!("{}/metrics", self.sim.url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        family_sum(&page, REQUESTS_TOTAL, &format!("status=\"{status}\""))
    }

    /// Stops the fetcher and executors and deletes this test's keys.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        while self.running.join_next().await.is_some() {}
        cleanup(&self.prefix).await;
    }
}

/// Sums the samples of `family` whose labels contain `filter`.
fn family_sum(page: &str, family: &str, filter: &str) -> f64 {
    page.lines()
        .filter(|l| {
            l.starts_with(family) && l[family.len()..].starts_with(['{', ' ']) && l.contains(filter)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

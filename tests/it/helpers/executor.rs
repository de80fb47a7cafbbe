//! Executor fixtures: a simulator per test, configurations built in code, a fetcher step, recording drivers,
//! and the real `executor` binary as a child process.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use podcast_worker::config::{ExecutorConfig, FetcherConfig, Source};
use podcast_worker::driver::{Driver, DriverError};
use podcast_worker::fetcher::Fetcher;
use podcast_worker::metrics::{Metrics, MetricsOptions};
use podcast_worker::task::{Registration, Task};
use pw_simulator::{self as simulator, ScenarioSpec, SimulatorHandle, SimulatorOptions};
use secrecy::{ExposeSecret, SecretString};

use super::{redis_url, unique_prefix};

/// The API key the simulator accepts in these tests.
pub const API_KEY: &str = "exec-test-key-5b1e";
/// The outbox key (hex) of these tests.
pub const OUTBOX_KEY_HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// A simulator, a key prefix, and configuration for executors and a fetcher talking to them.
pub struct TestEnv {
    /// Redis key prefix of this test.
    pub prefix: String,
    /// The simulated manager.
    pub sim: Arc<SimulatorHandle>,
}

impl TestEnv {
    /// A fresh prefix and simulator (no tasks yet).
    pub async fn new() -> Self {
        let sim = simulator::spawn(SimulatorOptions::for_test(API_KEY))
            .await
            .expect("simulator");
        Self {
            prefix: unique_prefix(),
            sim: Arc::new(sim),
        }
    }

    /// Adds `requests` requests with `subs` sub-site tasks each on the given domains.
    pub fn add(&self, requests: u32, subs: u32, main: &str, sub_domains: &[&str]) -> Vec<String> {
        let spec = ScenarioSpec {
            requests,
            subs_per_request: subs,
            seed: rand::random(),
            main_domains: vec![main.to_owned()],
            sub_domains: sub_domains.iter().map(|d| (*d).to_owned()).collect(),
        };
        self.sim
            .add_scenario(&spec)
            .into_iter()
            .map(|t| t.id)
            .collect()
    }

    /// Environment variables of an executor or fetcher of this test (no secrets on command lines).
    pub fn vars(&self, consumer: &str) -> Vec<(String, String)> {
        [
            ("PW_REDIS_URL", redis_url()),
            ("PW_KEY_PREFIX", self.prefix.clone()),
            ("PW_API_BASE_URL", self.sim.api_base_url()),
            ("PW_API_KEY", API_KEY.to_owned()),
            ("PW_OUTBOX_KEY", OUTBOX_KEY_HEX.to_owned()),
            ("PW_CONSUMER_NAME", consumer.to_owned()),
            ("PW_READ_BLOCK_MS", "100".to_owned()),
            ("PW_API_RETRIES", "1".to_owned()),
            ("PW_API_BACKOFF_MS", "20".to_owned()),
            ("PW_API_BACKOFF_MAX_MS", "100".to_owned()),
            ("PW_API_TIMEOUT_MS", "5000".to_owned()),
            ("PW_TASK_BACKOFF_MS", "20".to_owned()),
            ("PW_OUTBOX_RETRY_MS", "200".to_owned()),
            ("PW_METRICS_ADDR", "127.0.0.1:0".to_owned()),
            ("PW_POLL_MIN_MS", "50".to_owned()),
            ("PW_POLL_MAX_MS", "200".to_owned()),
            // No recipes: the binary serves only its synthetic domains and sets up no browser.
            (
                "PW_RECIPES_DIR",
                "/nonexistent/pw-exec-test-recipes".to_owned(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// An executor configuration named `consumer`, with `extra` variables on top.
    pub fn executor_config(&self, consumer: &str, extra: &[(&str, &str)]) -> ExecutorConfig {
        let mut src = Source::from_pairs(
            self.vars(consumer)
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        for (k, v) in extra {
            src.set(k, v);
        }
        ExecutorConfig::from_source(&src).expect("executor config")
    }

    /// A fetcher (leader of this prefix) to hand listed tasks to the streams.
    pub async fn fetcher(&self) -> Fetcher {
        let src = Source::from_pairs(
            self.vars("fetcher")
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let cfg = FetcherConfig::from_source(&src).expect("fetcher config");
        Fetcher::connect(&cfg.streams, &cfg.api, cfg.fetcher, metrics())
            .await
            .expect("fetcher")
    }

    /// A task's state name in the simulator.
    pub fn state(&self, id: &str) -> &'static str {
        self.sim.task(id).expect("task").state
    }

    /// Whether every id is in `state`.
    pub fn all_in(&self, ids: &[String], state: &str) -> bool {
        ids.iter().all(|id| self.state(id) == state)
    }

    /// The secrets the simulator handed out with these tasks (passwords, app passwords, TOTP, mail) plus
    /// every reported password and cookie.
    pub fn secrets(&self, ids: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for id in ids {
            let view = self.sim.task(id).expect("task");
            for field in ["password", "pass_mail", "app_password", "twofa"] {
                if let Some(v) = view.task.get(field).and_then(|v| v.as_str())
                    && v.len() >= 6
                {
                    out.push(v.to_owned());
                }
            }
            if let Some(r) = view.report {
                out.extend(r.password.into_iter().chain(r.cookie));
            }
        }
        out
    }
}

/// Fresh executor metrics.
pub fn metrics() -> Arc<Metrics> {
    Arc::new(
        Metrics::new(MetricsOptions {
            role: "executor",
            version: "test",
            domains: vec![],
            stall_after: Duration::from_secs(600),
        })
        .expect("metrics"),
    )
}

/// What a [`TestDriver`] does when called.
#[derive(Clone)]
pub enum Behaviour {
    /// Succeed after a delay.
    Succeed(Duration),
    /// Fail permanently.
    Permanent(&'static str),
    /// Fail transiently every time.
    Transient(&'static str),
    /// Run a hook (e.g. make the manager fail), then succeed.
    Hook(Arc<dyn Fn() + Send + Sync>),
}

/// A driver recording every call as (driver label, task id).
#[derive(Clone)]
pub struct TestDriver {
    /// Label of this instance (e.g. its executor).
    pub label: String,
    /// Calls of every instance sharing it.
    pub calls: Arc<Mutex<Vec<(String, String)>>>,
    /// What it does.
    pub behaviour: Behaviour,
    /// The attempt number the executor gave each call (`Driver::register_attempt`).
    pub attempts: Arc<Mutex<Vec<u32>>>,
}

impl TestDriver {
    /// A driver labelled `label` that appends to `calls`.
    pub fn new(
        label: &str,
        calls: &Arc<Mutex<Vec<(String, String)>>>,
        behaviour: Behaviour,
    ) -> Self {
        Self {
            label: label.to_owned(),
            calls: calls.clone(),
            behaviour,
            attempts: Arc::default(),
        }
    }

    /// Calls per task id.
    pub fn per_task(calls: &Arc<Mutex<Vec<(String, String)>>>) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for (_, id) in calls.lock().unwrap().iter() {
            *m.entry(id.clone()).or_default() += 1;
        }
        m
    }
}

#[async_trait::async_trait]
impl Driver for TestDriver {
    fn name(&self) -> &str {
        "test"
    }

    async fn register_attempt(
        &self,
        task: &Task,
        attempt: u32,
    ) -> Result<Registration, DriverError> {
        self.attempts.lock().unwrap().push(attempt);
        self.register(task).await
    }

    async fn register(&self, task: &Task) -> Result<Registration, DriverError> {
        self.calls
            .lock()
            .unwrap()
            .push((self.label.clone(), task.id.to_string()));
        match &self.behaviour {
            Behaviour::Succeed(d) => tokio::time::sleep(*d).await,
            Behaviour::Permanent(m) => return Err(DriverError::permanent((*m).to_owned())),
            Behaviour::Transient(m) => return Err(DriverError::transient((*m).to_owned())),
            Behaviour::Hook(f) => f(),
        }
        Ok(Registration {
            email: Some(task.email.clone()),
            username: Some(format!("u-{}", task.id)),
            password: Some(SecretString::from(format!(
                "R3al!{}",
                task.password.expose_secret().len()
            ))),
            cookie: Some(SecretString::from(format!("sid=ck-{}", task.id))),
            link_rss: task
                .link_rss
                .is_none()
                .then(|| format!("https://feeds.test/{}/rss", task.id)),
            note: None,
        })
    }
}

/// Drivers serving `domains` with `driver`.
pub fn drivers(domains: &[&str], driver: TestDriver) -> podcast_worker::driver::Drivers {
    let mut d = podcast_worker::driver::Drivers::new();
    let driver: Arc<dyn Driver> = Arc::new(driver);
    for domain in domains {
        d.insert(domain, driver.clone());
    }
    d
}

/// The real `executor` binary with this test's variables plus `extra`; stderr captured to `log`.
pub fn spawn_binary(
    env: &TestEnv,
    consumer: &str,
    extra: &[(&str, &str)],
    log: &std::path::Path,
) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_executor"));
    cmd.env_clear()
        .envs(env.vars(consumer))
        .envs(extra.iter().map(|(k, v)| (*k, *v)))
        .env("PW_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .kill_on_drop(true);
    cmd.spawn().expect("spawn executor binary")
}

/// Sends a signal to a child process.
pub fn signal(child: &tokio::process::Child, sig: &str) {
    let pid = child.id().expect("child pid").to_string();
    let ok = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid} failed");
}

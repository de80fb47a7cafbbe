//! Fetcher fixtures: a simulator, settings for a test prefix, a fetcher wired to both, and the fetcher
//! binary started with a test environment.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use podcast_worker::config::{ApiSettings, FetcherSettings};
use podcast_worker::fetcher::Fetcher;
use podcast_worker::metrics::{Metrics, MetricsOptions};
use pw_simulator::{self as simulator, ScenarioSpec, SimulatorHandle, SimulatorOptions};
use secrecy::SecretString;

use super::redis_url;
use super::streams::stream_settings;

/// The key every test simulator accepts.
pub const SIM_KEY: &str = "sim-test-key-31f";

/// A simulator on 127.0.0.1:0 holding `requests` requests of `subs` sub-site tasks each.
pub async fn simulator(requests: u32, subs: u32) -> SimulatorHandle {
    let mut opts = SimulatorOptions::for_test(SIM_KEY);
    opts.scenario = ScenarioSpec {
        requests,
        subs_per_request: subs,
        ..ScenarioSpec::default()
    };
    simulator::spawn(opts).await.expect("simulator starts")
}

/// API settings for `base` with `key`: short timeout and backoff.
pub fn api_settings(base: &str, key: &str) -> ApiSettings {
    ApiSettings {
        base_url: url::Url::parse(base).unwrap(),
        api_key: SecretString::from(key.to_owned()),
        timeout: Duration::from_secs(5),
        retries: 6,
        backoff: Duration::from_millis(20),
        backoff_max: Duration::from_secs(2),
    }
}

/// Fetcher settings: fast polling, a 1.5 s lease.
pub fn fetcher_settings(limit: u32, max_backlog: u64) -> FetcherSettings {
    FetcherSettings {
        limit,
        max_backlog,
        poll_min: Duration::from_millis(20),
        poll_max: Duration::from_millis(200),
        inflight_ttl: Duration::from_secs(3600),
        leader_ttl: Duration::from_millis(1500),
        main_domains: vec!["anchor.fm".into()],
    }
}

/// A fresh metrics registry for one fetcher.
pub fn metrics() -> Arc<Metrics> {
    Arc::new(
        Metrics::new(MetricsOptions {
            role: "fetcher",
            version: "test",
            domains: vec![],
            stall_after: Duration::from_secs(600),
        })
        .unwrap(),
    )
}

/// A fetcher on `prefix` pulling from `sim` with `key`.
pub async fn fetcher(
    sim: &SimulatorHandle,
    prefix: &str,
    key: &str,
    settings: FetcherSettings,
) -> (Fetcher, Arc<Metrics>) {
    let m = metrics();
    let f = Fetcher::connect(
        &stream_settings(prefix),
        &api_settings(&sim.api_base_url(), key),
        settings,
        m.clone(),
    )
    .await
    .expect("fetcher connects");
    (f, m)
}

/// The value of one sample line of `metrics` (`name{labels}`), or 0 when absent.
pub fn sample(metrics: &Metrics, series: &str) -> f64 {
    metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The `fetcher` binary with a test environment (and nothing of the caller's `PW_*`).
pub fn fetcher_command(sim_api: &str, prefix: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fetcher"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("PW_")) {
        cmd.env_remove(k);
    }
    cmd.env("PW_API_BASE_URL", sim_api)
        .env("PW_API_KEY", SIM_KEY)
        .env("PW_REDIS_URL", redis_url())
        .env("PW_KEY_PREFIX", prefix)
        .env("PW_METRICS_ADDR", "127.0.0.1:0")
        .env("PW_LEADER_TTL_MS", "1500")
        .env("PW_POLL_MIN_MS", "20")
        .env("PW_POLL_MAX_MS", "200")
        .env("PW_LOG", "info")
        .env("PW_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Kills a child on drop, so a failing test leaves no fetcher behind.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

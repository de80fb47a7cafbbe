//! The `/metrics` and health endpoints and the Redis sampler ([`MetricsSettings`]).

use std::net::SocketAddr;
use std::time::Duration;

use super::Role;
use super::source::{ConfigError, Source, invalid};
use super::var::*;

vars! {
    /// Every metrics and health variable.
    METRICS_VARS;
    METRICS_ADDR: Option<String> = optional_text(), [F, E], "Address of /metrics, /healthz, /readyz; default 0.0.0.0:9101 (fetcher), 0.0.0.0:9102 (executor); port 0 picks one";
    HEALTH_STALL_SECS: Duration = secs(10, 86_400).or("900"), [F, E], "/healthz fails when work has waited this long without progress; above PW_TASK_TIMEOUT_SECS";
    SAMPLE_INTERVAL_MS: Duration = millis(100, 600_000).or("5000"), [F, E], "How often stream lag, pending, dead letters and the outbox are sampled from Redis (and the browser pool's contexts, memory and restarts)";
}
use vars::*;

/// Where `/metrics` and the health endpoints listen.
#[derive(Debug, Clone)]
pub struct MetricsSettings {
    /// Listen address.
    pub addr: SocketAddr,
    /// Work may wait this long without progress before `/healthz` fails.
    pub stall_after: Duration,
    /// Interval of the Redis stream sampler.
    pub sample_interval: Duration,
}

impl MetricsSettings {
    /// Reads `PW_METRICS_ADDR`, with the role's default.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn from_source(src: &Source, role: Role) -> Result<Self, ConfigError> {
        let raw = src.get(&METRICS_ADDR)?.unwrap_or_else(|| {
            match role {
                Role::Executor => "0.0.0.0:9102",
                _ => "0.0.0.0:9101",
            }
            .to_owned()
        });
        let addr = raw
            .parse()
            .map_err(|_| invalid(&METRICS_ADDR, &raw, "host:port"))?;
        Ok(Self {
            addr,
            stall_after: src.get(&HEALTH_STALL_SECS)?,
            sample_interval: src.get(&SAMPLE_INTERVAL_MS)?,
        })
    }
}

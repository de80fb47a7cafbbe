//! The fetch loop ([`FetcherSettings`]): page size, backpressure, polling, de-duplication, leadership.

use std::time::Duration;

use super::source::{ConfigError, Source};
use super::var::*;

vars! {
    /// Every fetcher variable (and the main-site domains, which the executor reads too).
    FETCHER_VARS;
    MAIN_DOMAINS: Vec<String> = domains().or("anchor.fm,creators.spotify.com,podcasters.spotify.com,spotify.com"), [F, E], "Domains always treated as main sites (comma-separated)";
    FETCH_LIMIT: u64 = int(1, 1000).or("50"), [F], "Tasks asked for per GET /links call (1..=1000)";
    MAX_BACKLOG: u64 = int(1, 10_000_000).or("200"), [F], "Most tasks held per stream (lag + pending) before the fetcher stops pulling";
    POLL_MIN_MS: Duration = millis(1, WEEK_MS).or("500"), [F], "Poll delay after an empty page while work flows";
    POLL_MAX_MS: Duration = millis(1, WEEK_MS).or("1500"), [F], "Longest poll delay when idle (the delay doubles up to it, with jitter)";
    INFLIGHT_TTL_SECS: Duration = secs(1, MONTH_SECS).or("172800"), [F], "Expiry of a task's de-duplication marker; longer than any task lives with us";
    LEADER_TTL_MS: Duration = millis(1, WEEK_MS).or("10000"), [F], "Fetcher leader lease; a standby takes over within about this time";
}
use vars::*;

/// Fetcher behaviour.
#[derive(Debug, Clone)]
pub struct FetcherSettings {
    /// Page size of `GET /links`.
    pub limit: u32,
    /// Backlog cap per stream.
    pub max_backlog: u64,
    /// Shortest poll delay.
    pub poll_min: Duration,
    /// Longest poll delay.
    pub poll_max: Duration,
    /// Expiry of the de-duplication marker.
    pub inflight_ttl: Duration,
    /// Leader lease length.
    pub leader_ttl: Duration,
    /// Domains that are always main sites, normalised.
    pub main_domains: Vec<String>,
}

impl FetcherSettings {
    /// Reads and checks the fetcher variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let s = Self {
            limit: src.get(&FETCH_LIMIT)? as u32,
            max_backlog: src.get(&MAX_BACKLOG)?,
            poll_min: src.get(&POLL_MIN_MS)?,
            poll_max: src.get(&POLL_MAX_MS)?,
            inflight_ttl: src.get(&INFLIGHT_TTL_SECS)?,
            leader_ttl: src.get(&LEADER_TTL_MS)?,
            main_domains: src.get(&MAIN_DOMAINS)?,
        };
        if s.poll_min > s.poll_max {
            return Err(ConfigError::Invalid {
                var: POLL_MIN_MS.name,
                reason: format!("must not exceed {}", POLL_MAX_MS.name),
            });
        }
        if s.leader_ttl < Duration::from_millis(500) {
            return Err(ConfigError::Invalid {
                var: LEADER_TTL_MS.name,
                reason: "must be at least 500".into(),
            });
        }
        Ok(s)
    }
}

//! Task processing on an executor ([`ExecutorSettings`]): concurrency, attempts, drain, the outbox key
//! ([`OutboxKey`]) and the benchmark-only synthetic driver.

use std::num::NonZeroUsize;
use std::time::Duration;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use super::fetcher::vars::MAIN_DOMAINS;
use super::source::{ConfigError, Source, invalid};
use super::var::*;
use crate::task::normalise_domain;

vars! {
    /// Every executor task-processing variable.
    EXECUTOR_VARS;
    CONCURRENCY: NonZeroUsize = count().or("2"), [E], "Tasks one executor runs at once (browser slots)";
    DOMAIN_LIMITS: Vec<String> = list().or(""), [E], "Per-domain concurrency caps per executor, e.g. anchor.fm=1,podbean.com=2";
    TASK_TIMEOUT_SECS: Duration = secs(1, MONTH_SECS).or("600"), [E], "Limit of one registration attempt";
    TASK_ATTEMPTS: u64 = int(1, 20).or("3"), [E], "Attempts of a task whose failures are transient before reporting fail";
    TASK_BACKOFF_MS: Duration = millis(1, WEEK_MS).or("2000"), [E], "Delay before the second attempt; doubles each attempt";
    SHUTDOWN_GRACE_SECS: Duration = secs(1, MONTH_SECS).or("60"), [E], "On SIGTERM, how long running tasks may finish before the executor exits";
    OUTBOX_KEY: SecretString = secret(), [E], "32-byte key (base64 or 64 hex digits) encrypting results in Redis; or PW_OUTBOX_KEY_FILE";
    OUTBOX_RETRY_MS: Duration = millis(1, WEEK_MS).or("5000"), [E], "How often results waiting in the outbox are reported again";
    CONSUMER_NAME: Option<String> = optional_text(), [E], "Consumer name in the group; default `<hostname>-<pid>`";
    SYNTHETIC_DOMAINS: Vec<String> = domains().or(""), [E], "Benchmark/test only: domains served by a synthetic driver that registers nothing, e.g. a.test,b.test";
    SYNTHETIC_FAIL_DOMAINS: Vec<String> = domains().or(""), [E], "Test only: synthetic domains whose every registration fails as a broken recipe (\"recipe error: …\")";
    SYNTHETIC_DELAY_MS: Duration = millis(0, 86_400_000).or("0"), [E], "Benchmark/test only: how long one synthetic registration takes";
}
use vars::*;

/// The 32-byte AEAD key of the outbox. `Debug` is redacted.
#[derive(Clone)]
pub struct OutboxKey(pub [u8; 32]);

impl std::fmt::Debug for OutboxKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutboxKey(<redacted>)")
    }
}

impl OutboxKey {
    /// Decodes base64 (standard or URL-safe) or 64 hex digits.
    pub fn decode(text: &str) -> Option<Self> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
                .collect::<Option<Vec<u8>>>()?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
                .ok()?
        };
        bytes.try_into().ok().map(OutboxKey)
    }
}

/// Executor behaviour.
#[derive(Debug, Clone)]
pub struct ExecutorSettings {
    /// Tasks run at once.
    pub concurrency: NonZeroUsize,
    /// Per-domain caps (normalised domain, cap).
    pub domain_limits: Vec<(String, NonZeroUsize)>,
    /// Limit of one attempt.
    pub task_timeout: Duration,
    /// Attempts for transient failures.
    pub task_attempts: u32,
    /// First delay between attempts.
    pub task_backoff: Duration,
    /// Drain time on SIGTERM.
    pub shutdown_grace: Duration,
    /// Outbox encryption key.
    pub outbox_key: OutboxKey,
    /// Outbox re-report interval.
    pub outbox_retry: Duration,
    /// Consumer name in the group.
    pub consumer_name: String,
    /// Main-site domains, normalised.
    pub main_domains: Vec<String>,
    /// Benchmark/test only: domains served by the synthetic driver, normalised.
    pub synthetic_domains: Vec<String>,
    /// Test only: synthetic domains whose registrations fail as a broken recipe, normalised.
    pub synthetic_fail_domains: Vec<String>,
    /// Benchmark/test only: duration of one synthetic registration.
    pub synthetic_delay: Duration,
}

impl ExecutorSettings {
    /// Reads and checks the executor variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let key = src.get(&OUTBOX_KEY)?;
        let outbox_key = OutboxKey::decode(key.expose_secret()).ok_or(ConfigError::Invalid {
            var: OUTBOX_KEY.name,
            reason: "must be 32 bytes as base64 or 64 hex digits (e.g. `openssl rand -base64 32`)"
                .into(),
        })?;
        let consumer_name = src
            .get(&CONSUMER_NAME)?
            .unwrap_or_else(default_consumer_name);
        if consumer_name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid(
                &CONSUMER_NAME,
                &consumer_name,
                "a name without spaces",
            ));
        }
        Ok(Self {
            concurrency: src.get(&CONCURRENCY)?,
            domain_limits: domain_limits(src)?,
            task_timeout: src.get(&TASK_TIMEOUT_SECS)?,
            task_attempts: src.get(&TASK_ATTEMPTS)? as u32,
            task_backoff: src.get(&TASK_BACKOFF_MS)?,
            shutdown_grace: src.get(&SHUTDOWN_GRACE_SECS)?,
            outbox_key,
            outbox_retry: src.get(&OUTBOX_RETRY_MS)?,
            consumer_name,
            main_domains: src.get(&MAIN_DOMAINS)?,
            synthetic_domains: src.get(&SYNTHETIC_DOMAINS)?,
            synthetic_fail_domains: src.get(&SYNTHETIC_FAIL_DOMAINS)?,
            synthetic_delay: src.get(&SYNTHETIC_DELAY_MS)?,
        })
    }
}

/// `<hostname>-<pid>`: unique per process, and says in XPENDING who holds what.
pub fn default_consumer_name() -> String {
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "host".into());
    format!("{host}-{}", std::process::id())
}

fn domain_limits(src: &Source) -> Result<Vec<(String, NonZeroUsize)>, ConfigError> {
    src.get(&DOMAIN_LIMITS)?
        .iter()
        .map(|item| {
            let (d, n) = item
                .split_once('=')
                .ok_or_else(|| invalid(&DOMAIN_LIMITS, item, "domain=limit pairs"))?;
            let n: NonZeroUsize = n
                .trim()
                .parse()
                .map_err(|_| invalid(&DOMAIN_LIMITS, item, "a positive limit"))?;
            Ok((normalise_domain(d), n))
        })
        .collect()
}

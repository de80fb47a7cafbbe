//! The variables ([`VARS`]) and the typed per-role sections built from them. Each default lives here only;
//! the README's configuration table is checked against this list by a test.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use super::source::{ConfigError, Source, invalid};
use super::{Role, Var};
use crate::task::normalise_domain;

const F: Role = Role::Fetcher;
const E: Role = Role::Executor;
const S: Role = Role::Simulator;

macro_rules! var {
    ($id:ident, $name:literal, $default:expr, $secret:expr, [$($role:expr),*], $help:literal) => {
        #[doc = $help]
        pub const $id: Var = Var { name: $name, default: $default, secret: $secret, roles: &[$($role),*], help: $help };
    };
}

/// Names of every variable, as constants so code and tests refer to them by name.
pub mod vars {
    use super::*;
    var!(
        CONFIG_FILE,
        "PW_CONFIG_FILE",
        None,
        false,
        [F, E, S],
        "Optional file of KEY=VALUE lines read before the environment"
    );
    var!(
        LOG,
        "PW_LOG",
        Some("info"),
        false,
        [F, E, S],
        "Log filter (tracing EnvFilter syntax), e.g. info or podcast_worker=debug"
    );
    var!(
        LOG_FORMAT,
        "PW_LOG_FORMAT",
        Some("auto"),
        false,
        [F, E, S],
        "auto (pretty on a terminal, JSON otherwise), json or pretty"
    );
    var!(
        REDIS_URL,
        "PW_REDIS_URL",
        Some("redis://127.0.0.1:6379"),
        true,
        [F, E],
        "Redis URL; may carry a password; rediss:// for TLS"
    );
    var!(
        KEY_PREFIX,
        "PW_KEY_PREFIX",
        Some("{pw}"),
        false,
        [F, E],
        "Prefix of every Redis key; keep one {hash tag} for Redis Cluster"
    );
    var!(
        STREAM_MAXLEN,
        "PW_STREAM_MAXLEN",
        Some("100000"),
        false,
        [F, E],
        "Approximate cap of each task stream (XADD MAXLEN ~)"
    );
    var!(
        CLAIM_IDLE_MS,
        "PW_CLAIM_IDLE_MS",
        Some("60000"),
        false,
        [F, E],
        "An entry idle this long belongs to a dead executor and is reclaimed"
    );
    var!(
        LEASE_RENEW_MS,
        "PW_LEASE_RENEW_MS",
        Some("10000"),
        false,
        [E],
        "How often a live executor renews the entries it runs; under half of PW_CLAIM_IDLE_MS"
    );
    var!(
        MAX_DELIVERIES,
        "PW_MAX_DELIVERIES",
        Some("5"),
        false,
        [E],
        "Deliveries after which an entry is dead-lettered"
    );
    var!(
        READ_BLOCK_MS,
        "PW_READ_BLOCK_MS",
        Some("2000"),
        false,
        [E],
        "XREADGROUP BLOCK time; at most 2000 so shutdown is noticed quickly"
    );
    var!(
        API_BASE_URL,
        "PW_API_BASE_URL",
        Some("https://manager.likepion.com/api/v1/podcast_account"),
        false,
        [F, E],
        "Manager API base URL"
    );
    var!(
        API_KEY,
        "PW_API_KEY",
        None,
        true,
        [F, E],
        "Manager API key (X-API-Key); or PW_API_KEY_FILE"
    );
    var!(
        API_TIMEOUT_MS,
        "PW_API_TIMEOUT_MS",
        Some("15000"),
        false,
        [F, E],
        "Timeout of one manager API request"
    );
    var!(
        API_RETRIES,
        "PW_API_RETRIES",
        Some("4"),
        false,
        [F, E],
        "Retries of a transient manager API failure before giving up for now"
    );
    var!(
        API_BACKOFF_MS,
        "PW_API_BACKOFF_MS",
        Some("250"),
        false,
        [F, E],
        "First retry delay; doubles each retry, with full jitter"
    );
    var!(
        API_BACKOFF_MAX_MS,
        "PW_API_BACKOFF_MAX_MS",
        Some("10000"),
        false,
        [F, E],
        "Cap of one retry delay (also of Retry-After)"
    );
    var!(
        MAIN_DOMAINS,
        "PW_MAIN_DOMAINS",
        Some("anchor.fm,creators.spotify.com,podcasters.spotify.com,spotify.com"),
        false,
        [F, E],
        "Domains always treated as main sites (comma-separated)"
    );
    var!(
        FETCH_LIMIT,
        "PW_FETCH_LIMIT",
        Some("50"),
        false,
        [F],
        "Tasks asked for per GET /links call (1..=1000)"
    );
    var!(
        MAX_BACKLOG,
        "PW_MAX_BACKLOG",
        Some("200"),
        false,
        [F],
        "Most tasks held per stream (lag + pending) before the fetcher stops pulling"
    );
    var!(
        POLL_MIN_MS,
        "PW_POLL_MIN_MS",
        Some("500"),
        false,
        [F],
        "Poll delay after an empty page while work flows"
    );
    var!(
        POLL_MAX_MS,
        "PW_POLL_MAX_MS",
        Some("1500"),
        false,
        [F],
        "Longest poll delay when idle (the delay doubles up to it, with jitter)"
    );
    var!(
        INFLIGHT_TTL_SECS,
        "PW_INFLIGHT_TTL_SECS",
        Some("172800"),
        false,
        [F],
        "Expiry of a task's de-duplication marker; longer than any task lives with us"
    );
    var!(
        LEADER_TTL_MS,
        "PW_LEADER_TTL_MS",
        Some("10000"),
        false,
        [F],
        "Fetcher leader lease; a standby takes over within about this time"
    );
    var!(
        CONCURRENCY,
        "PW_CONCURRENCY",
        Some("2"),
        false,
        [E],
        "Tasks one executor runs at once (browser slots)"
    );
    var!(
        DOMAIN_LIMITS,
        "PW_DOMAIN_LIMITS",
        Some(""),
        false,
        [E],
        "Per-domain concurrency caps per executor, e.g. anchor.fm=1,podbean.com=2"
    );
    var!(
        TASK_TIMEOUT_SECS,
        "PW_TASK_TIMEOUT_SECS",
        Some("600"),
        false,
        [E],
        "Limit of one registration attempt"
    );
    var!(
        TASK_ATTEMPTS,
        "PW_TASK_ATTEMPTS",
        Some("3"),
        false,
        [E],
        "Attempts of a task whose failures are transient before reporting fail"
    );
    var!(
        TASK_BACKOFF_MS,
        "PW_TASK_BACKOFF_MS",
        Some("2000"),
        false,
        [E],
        "Delay before the second attempt; doubles each attempt"
    );
    var!(
        SHUTDOWN_GRACE_SECS,
        "PW_SHUTDOWN_GRACE_SECS",
        Some("60"),
        false,
        [E],
        "On SIGTERM, how long running tasks may finish before the executor exits"
    );
    var!(
        OUTBOX_KEY,
        "PW_OUTBOX_KEY",
        None,
        true,
        [E],
        "32-byte key (base64 or 64 hex digits) encrypting results in Redis; or PW_OUTBOX_KEY_FILE"
    );
    var!(
        OUTBOX_RETRY_MS,
        "PW_OUTBOX_RETRY_MS",
        Some("5000"),
        false,
        [E],
        "How often results waiting in the outbox are reported again"
    );
    var!(
        CONSUMER_NAME,
        "PW_CONSUMER_NAME",
        None,
        false,
        [E],
        "Consumer name in the group; default `<hostname>-<pid>`"
    );
    var!(
        METRICS_ADDR,
        "PW_METRICS_ADDR",
        None,
        false,
        [F, E],
        "Address of /metrics, /healthz, /readyz; default 0.0.0.0:9101 (fetcher), 0.0.0.0:9102 (executor); port 0 picks one"
    );
    var!(
        HEALTH_STALL_SECS,
        "PW_HEALTH_STALL_SECS",
        Some("900"),
        false,
        [F, E],
        "/healthz fails when work has waited this long without progress; above PW_TASK_TIMEOUT_SECS"
    );
    var!(
        SAMPLE_INTERVAL_MS,
        "PW_SAMPLE_INTERVAL_MS",
        Some("5000"),
        false,
        [F, E],
        "How often stream lag, pending, dead letters and the outbox are sampled from Redis"
    );
    var!(
        SYNTHETIC_DOMAINS,
        "PW_SYNTHETIC_DOMAINS",
        Some(""),
        false,
        [E],
        "Benchmark/test only: domains served by a synthetic driver that registers nothing, e.g. a.test,b.test"
    );
    var!(
        SYNTHETIC_DELAY_MS,
        "PW_SYNTHETIC_DELAY_MS",
        Some("0"),
        false,
        [E],
        "Benchmark/test only: how long one synthetic registration takes"
    );
}
use vars::*;

/// Every variable of the fetcher and executor; the simulator's are in [`super::SIMULATOR_VARS`].
pub const VARS: &[Var] = &[
    CONFIG_FILE,
    LOG,
    LOG_FORMAT,
    REDIS_URL,
    KEY_PREFIX,
    STREAM_MAXLEN,
    CLAIM_IDLE_MS,
    LEASE_RENEW_MS,
    MAX_DELIVERIES,
    READ_BLOCK_MS,
    API_BASE_URL,
    API_KEY,
    API_TIMEOUT_MS,
    API_RETRIES,
    API_BACKOFF_MS,
    API_BACKOFF_MAX_MS,
    MAIN_DOMAINS,
    FETCH_LIMIT,
    MAX_BACKLOG,
    POLL_MIN_MS,
    POLL_MAX_MS,
    INFLIGHT_TTL_SECS,
    LEADER_TTL_MS,
    CONCURRENCY,
    DOMAIN_LIMITS,
    TASK_TIMEOUT_SECS,
    TASK_ATTEMPTS,
    TASK_BACKOFF_MS,
    SHUTDOWN_GRACE_SECS,
    OUTBOX_KEY,
    OUTBOX_RETRY_MS,
    CONSUMER_NAME,
    METRICS_ADDR,
    HEALTH_STALL_SECS,
    SAMPLE_INTERVAL_MS,
    SYNTHETIC_DOMAINS,
    SYNTHETIC_DELAY_MS,
];

/// Log output settings.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// EnvFilter directive.
    pub filter: String,
    /// `auto`, `json` or `pretty`.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Pretty on a terminal, JSON otherwise.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Pretty,
}

impl LogSettings {
    /// Reads `PW_LOG` and `PW_LOG_FORMAT`.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let format = match src.required(&LOG_FORMAT)?.as_str() {
            "auto" => LogFormat::Auto,
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            other => return Err(invalid(&LOG_FORMAT, other, "auto, json or pretty")),
        };
        Ok(Self {
            filter: src.required(&LOG)?,
            format,
        })
    }
}

/// Redis connection and stream behaviour, shared by fetcher and executor.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Redis URL (may hold a password).
    pub redis_url: SecretString,
    /// Key prefix, e.g. `{pw}`.
    pub key_prefix: String,
    /// Approximate stream cap.
    pub maxlen: usize,
    /// Idle time after which an entry is reclaimed from its consumer.
    pub claim_idle: Duration,
    /// Lease renewal interval of running entries.
    pub lease_renew: Duration,
    /// Deliveries before dead-lettering.
    pub max_deliveries: u64,
    /// Blocking read time.
    pub read_block: Duration,
}

impl StreamSettings {
    /// Reads and checks the stream variables.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let redis_url = src.required_secret(&REDIS_URL)?;
        let scheme_ok = ["redis://", "rediss://", "unix://", "redis+unix://"]
            .iter()
            .any(|s| redis_url.expose_secret().starts_with(s));
        if !scheme_ok {
            return Err(ConfigError::Invalid {
                var: REDIS_URL.name,
                reason: "must start with redis://, rediss:// or unix://".into(),
            });
        }
        let key_prefix = src.required(&KEY_PREFIX)?;
        if key_prefix.chars().any(|c| c.is_whitespace()) {
            return Err(invalid(&KEY_PREFIX, &key_prefix, "a prefix without spaces"));
        }
        let s = Self {
            redis_url,
            key_prefix,
            maxlen: src.int_in(&STREAM_MAXLEN, 100, 100_000_000)? as usize,
            claim_idle: src.millis(&CLAIM_IDLE_MS)?,
            lease_renew: src.millis(&LEASE_RENEW_MS)?,
            max_deliveries: src.int_in(&MAX_DELIVERIES, 1, 1000)?,
            read_block: src.millis(&READ_BLOCK_MS)?,
        };
        if s.read_block > Duration::from_secs(2) {
            return Err(ConfigError::Invalid {
                var: READ_BLOCK_MS.name,
                reason: "must be at most 2000 so shutdown is noticed quickly".into(),
            });
        }
        if s.lease_renew * 2 >= s.claim_idle {
            return Err(ConfigError::Invalid {
                var: LEASE_RENEW_MS.name,
                reason: format!(
                    "must be under half of {} ({} ms), or live tasks get reclaimed",
                    CLAIM_IDLE_MS.name,
                    s.claim_idle.as_millis()
                ),
            });
        }
        Ok(s)
    }
}

/// Manager API client settings.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Base URL, without a trailing slash.
    pub base_url: url::Url,
    /// `X-API-Key`.
    pub api_key: SecretString,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries of transient failures.
    pub retries: u32,
    /// First backoff delay.
    pub backoff: Duration,
    /// Backoff cap.
    pub backoff_max: Duration,
}

impl ApiSettings {
    /// Reads and checks the API variables.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let raw = src.required(&API_BASE_URL)?;
        let base_url = url::Url::parse(raw.trim_end_matches('/'))
            .map_err(|_| invalid(&API_BASE_URL, &raw, "an http(s) URL"))?;
        if !matches!(base_url.scheme(), "http" | "https") || !base_url.username().is_empty() {
            return Err(invalid(
                &API_BASE_URL,
                &raw,
                "an http(s) URL without credentials",
            ));
        }
        let api_key = src.required_secret(&API_KEY)?;
        let key = api_key.expose_secret();
        if key.trim().is_empty() || key.chars().any(|c| c.is_control()) {
            return Err(ConfigError::Invalid {
                var: API_KEY.name,
                reason: "must be non-empty printable text".into(),
            });
        }
        Ok(Self {
            base_url,
            api_key,
            timeout: src.millis(&API_TIMEOUT_MS)?,
            retries: src.int_in(&API_RETRIES, 0, 20)? as u32,
            backoff: src.millis(&API_BACKOFF_MS)?,
            backoff_max: src.millis(&API_BACKOFF_MAX_MS)?,
        })
    }
}

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
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let s = Self {
            limit: src.int_in(&FETCH_LIMIT, 1, 1000)? as u32,
            max_backlog: src.int_in(&MAX_BACKLOG, 1, 10_000_000)?,
            poll_min: src.millis(&POLL_MIN_MS)?,
            poll_max: src.millis(&POLL_MAX_MS)?,
            inflight_ttl: src.secs(&INFLIGHT_TTL_SECS)?,
            leader_ttl: src.millis(&LEADER_TTL_MS)?,
            main_domains: main_domains(src),
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

fn main_domains(src: &Source) -> Vec<String> {
    src.list(&MAIN_DOMAINS)
        .iter()
        .map(|d| normalise_domain(d))
        .collect()
}

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
    /// Benchmark/test only: duration of one synthetic registration.
    pub synthetic_delay: Duration,
}

impl ExecutorSettings {
    /// Reads and checks the executor variables.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let key = src.required_secret(&OUTBOX_KEY)?;
        let outbox_key = OutboxKey::decode(key.expose_secret()).ok_or(ConfigError::Invalid {
            var: OUTBOX_KEY.name,
            reason: "must be 32 bytes as base64 or 64 hex digits (e.g. `openssl rand -base64 32`)"
                .into(),
        })?;
        let consumer_name = match src.raw(&CONSUMER_NAME) {
            Some(name) => name,
            None => default_consumer_name(),
        };
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
            concurrency: src.parse::<NonZeroUsize>(&CONCURRENCY)?,
            domain_limits: domain_limits(src)?,
            task_timeout: src.secs(&TASK_TIMEOUT_SECS)?,
            task_attempts: src.int_in(&TASK_ATTEMPTS, 1, 20)? as u32,
            task_backoff: src.millis(&TASK_BACKOFF_MS)?,
            shutdown_grace: src.secs(&SHUTDOWN_GRACE_SECS)?,
            outbox_key,
            outbox_retry: src.millis(&OUTBOX_RETRY_MS)?,
            consumer_name,
            main_domains: main_domains(src),
            synthetic_domains: src
                .list(&SYNTHETIC_DOMAINS)
                .iter()
                .map(|d| normalise_domain(d))
                .collect(),
            synthetic_delay: Duration::from_millis(src.int_in(
                &SYNTHETIC_DELAY_MS,
                0,
                86_400_000,
            )?),
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
    src.list(&DOMAIN_LIMITS)
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
    pub fn from_source(src: &Source, role: Role) -> Result<Self, ConfigError> {
        let raw = src.raw(&METRICS_ADDR).unwrap_or_else(|| {
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
            stall_after: Duration::from_secs(src.int_in(&HEALTH_STALL_SECS, 10, 86_400)?),
            sample_interval: Duration::from_millis(src.int_in(
                &SAMPLE_INTERVAL_MS,
                100,
                600_000,
            )?),
        })
    }
}

/// Everything the fetcher binary needs.
#[derive(Debug, Clone)]
pub struct FetcherConfig {
    /// Logging.
    pub log: LogSettings,
    /// Redis streams.
    pub streams: StreamSettings,
    /// Manager API.
    pub api: ApiSettings,
    /// Fetch loop.
    pub fetcher: FetcherSettings,
    /// Metrics endpoint.
    pub metrics: MetricsSettings,
}

impl FetcherConfig {
    /// Parses and validates the fetcher's configuration.
    ///
    /// # Errors
    /// The first [`ConfigError`] found, naming the variable.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            log: LogSettings::from_source(src)?,
            streams: StreamSettings::from_source(src)?,
            api: ApiSettings::from_source(src)?,
            fetcher: FetcherSettings::from_source(src)?,
            metrics: MetricsSettings::from_source(src, Role::Fetcher)?,
        })
    }
}

/// Everything the executor binary needs.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Logging.
    pub log: LogSettings,
    /// Redis streams.
    pub streams: StreamSettings,
    /// Manager API.
    pub api: ApiSettings,
    /// Task processing.
    pub executor: ExecutorSettings,
    /// Metrics endpoint.
    pub metrics: MetricsSettings,
    /// Browser pool and recipe runner.
    pub browser: super::BrowserSettings,
    /// IMAP for verification mail (recipes' `wait_mail`).
    pub mail: super::MailSettings,
    /// `image_url` download limits (recipes' `upload_image`).
    pub image: super::ImageSettings,
    /// TOTP code use (recipes' `totp`).
    pub totp: super::TotpSettings,
}

impl ExecutorConfig {
    /// Parses and validates the executor's configuration.
    ///
    /// # Errors
    /// The first [`ConfigError`] found, naming the variable.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let c = Self {
            log: LogSettings::from_source(src)?,
            streams: StreamSettings::from_source(src)?,
            api: ApiSettings::from_source(src)?,
            executor: ExecutorSettings::from_source(src)?,
            metrics: MetricsSettings::from_source(src, Role::Executor)?,
            browser: super::BrowserSettings::from_source(src)?,
            mail: super::MailSettings::from_source(src)?,
            image: super::ImageSettings::from_source(src)?,
            totp: super::TotpSettings::from_source(src)?,
        };
        // The recipe must end first, so a timed-out run still saves its failure artifacts.
        if c.browser.recipe_timeout >= c.executor.task_timeout {
            return Err(ConfigError::Invalid {
                var: super::browser_vars::RECIPE_TIMEOUT_SECS.name,
                reason: format!("must be under {}", TASK_TIMEOUT_SECS.name),
            });
        }
        // A task may legitimately run this long without anything finishing.
        if c.metrics.stall_after <= c.executor.task_timeout {
            return Err(ConfigError::Invalid {
                var: HEALTH_STALL_SECS.name,
                reason: format!("must exceed {}", TASK_TIMEOUT_SECS.name),
            });
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Source {
        Source::from_pairs([
            ("PW_API_KEY", "k-123-secret"),
            (
                "PW_OUTBOX_KEY",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            ),
        ])
    }

    #[test]
    fn defaults_parse_for_both_roles() {
        let e = ExecutorConfig::from_source(&base()).unwrap();
        assert_eq!(e.executor.concurrency.get(), 2);
        assert_eq!(e.streams.key_prefix, "{pw}");
        assert_eq!(e.executor.outbox_key.0[31], 31);
        let f = FetcherConfig::from_source(&base()).unwrap();
        assert!(f.fetcher.main_domains.contains(&"anchor.fm".to_owned()));
        assert_eq!(f.metrics.addr.port(), 9101);
    }

    #[test]
    fn errors_name_the_variable_and_hide_secrets() {
        let mut src = base();
        src.set("PW_FETCH_LIMIT", "0");
        let err = FetcherConfig::from_source(&src).unwrap_err().to_string();
        assert!(
            err.contains("PW_FETCH_LIMIT") && err.contains("between 1 and 1000"),
            "{err}"
        );

        let mut src = base();
        src.set("PW_OUTBOX_KEY", "short-secret-value");
        let err = ExecutorConfig::from_source(&src).unwrap_err().to_string();
        assert!(
            err.contains("PW_OUTBOX_KEY") && !err.contains("short-secret-value"),
            "{err}"
        );

        let err = FetcherConfig::from_source(&Source::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("PW_API_KEY is required"), "{err}");
    }

    #[test]
    fn contradictions_are_refused() {
        let mut src = base();
        src.set("PW_LEASE_RENEW_MS", "40000");
        let err = ExecutorConfig::from_source(&src).unwrap_err().to_string();
        assert!(err.contains("PW_LEASE_RENEW_MS"), "{err}");
        let mut src = base();
        src.set("PW_READ_BLOCK_MS", "5000");
        assert!(ExecutorConfig::from_source(&src).is_err());
        let mut src = base();
        src.set("PW_HEALTH_STALL_SECS", "600");
        let err = ExecutorConfig::from_source(&src).unwrap_err().to_string();
        assert!(err.contains("PW_HEALTH_STALL_SECS"), "{err}");
        let mut src = base();
        src.set("PW_DOMAIN_LIMITS", "anchor.fm=0");
        assert!(
            ExecutorConfig::from_source(&src)
                .unwrap_err()
                .to_string()
                .contains("PW_DOMAIN_LIMITS")
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut src = base();
        src.set("PW_REDIS_URL", "redis://:pa55word@localhost:6379");
        let e = ExecutorConfig::from_source(&src).unwrap();
        let shown = format!("{e:?}");
        assert!(
            !shown.contains("k-123-secret")
                && !shown.contains("pa55word")
                && !shown.contains("AAEC"),
            "{shown}"
        );
    }

    #[test]
    fn outbox_key_accepts_hex_and_base64() {
        assert!(OutboxKey::decode(&"ab".repeat(32)).is_some());
        assert!(OutboxKey::decode("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").is_some());
        assert!(OutboxKey::decode("AAEC").is_none());
    }
}

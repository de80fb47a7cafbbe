//! The simulator's variables ([`SIMULATOR_VARS`], all `PW_SIM_*`) and its settings section. The simulator
//! module itself imports nothing from the crate: `bin/simulator.rs` maps [`SimulatorConfig`] onto its options.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use super::source::{ConfigError, Source, invalid};
use super::{LogSettings, Role, Var};

const S: &[Role] = &[Role::Simulator];

const fn var(name: &'static str, default: Option<&'static str>, help: &'static str) -> Var {
    Var {
        name,
        default,
        secret: false,
        roles: S,
        help,
    }
}

/// Names of the simulator's variables.
pub mod sim_vars {
    use super::{S, Var, var};

    /// Listen address.
    pub const LISTEN: Var = var(
        "PW_SIM_LISTEN",
        Some("127.0.0.1:8080"),
        "Simulator listen address (port 0 picks one)",
    );
    /// Public base URL.
    pub const PUBLIC_URL: Var = var(
        "PW_SIM_PUBLIC_URL",
        None,
        "Base URL clients reach the simulator at; default http://<listen address>",
    );
    /// The API key clients must send.
    pub const API_KEY: Var = Var {
        name: "PW_SIM_API_KEY",
        default: None,
        secret: true,
        roles: S,
        help: "The X-API-Key the simulated manager accepts; or PW_SIM_API_KEY_FILE",
    };
    /// Requests generated at start-up.
    pub const REQUESTS: Var = var(
        "PW_SIM_REQUESTS",
        Some("0"),
        "Requests generated at start-up (each a main task plus sub-site tasks)",
    );
    /// Sub-site tasks per request.
    pub const SUBS_PER_REQUEST: Var = var(
        "PW_SIM_SUBS_PER_REQUEST",
        Some("3"),
        "Sub-site tasks per generated request",
    );
    /// Seed of generated data and fault rolls.
    pub const SEED: Var = var(
        "PW_SIM_SEED",
        Some("1"),
        "Seed of generated data and fault dice (same seed, same tasks)",
    );
    /// Main-site domain.
    pub const MAIN_DOMAIN: Var = var(
        "PW_SIM_MAIN_DOMAIN",
        Some("main.demo.test"),
        "Domain of generated main-site tasks",
    );
    /// Sub-site domains.
    pub const SUB_DOMAINS: Var = var(
        "PW_SIM_SUB_DOMAINS",
        Some("sub-a.demo.test,sub-b.demo.test,sub-c.demo.test"),
        "Domains of generated sub-site tasks, used in turn (comma-separated)",
    );
    /// Retry manager limit.
    pub const MAX_RETRIES: Var = var(
        "PW_SIM_MAX_RETRIES",
        Some("2"),
        "Failures the retry manager re-queues before a task is final_failed",
    );
    /// Retry manager delay.
    pub const RETRY_DELAY_MS: Var = var(
        "PW_SIM_RETRY_DELAY_MS",
        Some("0"),
        "Delay before a failed task is queued again",
    );
    /// 5xx probability.
    pub const FAULT_5XX: Var = var(
        "PW_SIM_FAULT_5XX",
        Some("0"),
        "Probability of a 500/502/503 answer (nothing applied)",
    );
    /// 429 probability.
    pub const FAULT_429: Var = var(
        "PW_SIM_FAULT_429",
        Some("0"),
        "Probability of a 429 with Retry-After (nothing applied)",
    );
    /// Retry-After of a 429.
    pub const RETRY_AFTER_SECS: Var = var(
        "PW_SIM_RETRY_AFTER_SECS",
        Some("1"),
        "Retry-After of a simulated 429",
    );
    /// Slow-answer probability.
    pub const FAULT_SLOW: Var = var(
        "PW_SIM_FAULT_SLOW",
        Some("0"),
        "Probability of a slow answer",
    );
    /// Slow-answer delay.
    pub const SLOW_MS: Var = var(
        "PW_SIM_SLOW_MS",
        Some("2000"),
        "Delay of a slow answer (before the request is applied)",
    );
    /// Dropped-connection probability.
    pub const FAULT_DROP: Var = var(
        "PW_SIM_FAULT_DROP",
        Some("0"),
        "Probability of closing the connection without an answer",
    );
    /// Share of drops applied first.
    pub const DROP_AFTER_APPLY: Var = var(
        "PW_SIM_DROP_AFTER_APPLY",
        Some("0.5"),
        "Share of dropped connections whose request was applied before the drop",
    );
    /// Garbage-body probability.
    pub const FAULT_GARBAGE: Var = var(
        "PW_SIM_FAULT_GARBAGE",
        Some("0"),
        "Probability of a 200 whose body is not JSON (nothing applied)",
    );
    /// Duplicate hand-out probability.
    pub const FAULT_DUPLICATE: Var = var(
        "PW_SIM_FAULT_DUPLICATE",
        Some("0"),
        "Probability per listing of listing again a task already handed out",
    );
    /// Deletion probability.
    pub const FAULT_DELETE: Var = var(
        "PW_SIM_FAULT_DELETE",
        Some("0"),
        "Probability per listed task of soft-deleting it right after listing (404 after)",
    );
    /// Maildir root of the demo mail.
    pub const MAILDIR_ROOT: Var = var(
        "PW_SIM_MAILDIR_ROOT",
        None,
        "Maildir root the demo platforms deliver mail into (<root>/<email>/new); unset keeps mail in memory",
    );
    /// Dovecot users file.
    pub const MAIL_USERS_FILE: Var = var(
        "PW_SIM_MAIL_USERS_FILE",
        None,
        "Dovecot passwd-file each generated mailbox is added to (<email>:{PLAIN}<app password>)",
    );
    /// Spam probability.
    pub const MAIL_SPAM: Var = var(
        "PW_SIM_MAIL_SPAM",
        Some("0"),
        "Probability that a demo mail lands in the Junk folder",
    );
}
use sim_vars::*;

/// Every variable the simulator reads (besides `PW_CONFIG_FILE`, `PW_LOG`, `PW_LOG_FORMAT`).
pub const SIMULATOR_VARS: &[Var] = &[
    LISTEN,
    PUBLIC_URL,
    API_KEY,
    REQUESTS,
    SUBS_PER_REQUEST,
    SEED,
    MAIN_DOMAIN,
    SUB_DOMAINS,
    MAX_RETRIES,
    RETRY_DELAY_MS,
    FAULT_5XX,
    FAULT_429,
    RETRY_AFTER_SECS,
    FAULT_SLOW,
    SLOW_MS,
    FAULT_DROP,
    DROP_AFTER_APPLY,
    FAULT_GARBAGE,
    FAULT_DUPLICATE,
    FAULT_DELETE,
    MAILDIR_ROOT,
    MAIL_USERS_FILE,
    MAIL_SPAM,
];

/// Fault probabilities (`0.0..=1.0`) and parameters, mirrored by the simulator's own `Faults`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatorFaults {
    /// 5xx answers.
    pub error_5xx: f64,
    /// 429 answers.
    pub too_many_requests: f64,
    /// Retry-After of a 429, seconds.
    pub retry_after_secs: u64,
    /// Slow answers.
    pub slow: f64,
    /// Delay of a slow answer.
    pub slow_delay: Duration,
    /// Dropped connections.
    pub drop_connection: f64,
    /// Share of drops applied first.
    pub drop_after_apply: f64,
    /// Non-JSON 200 answers.
    pub garbage: f64,
    /// Duplicate hand-outs, per listing.
    pub duplicate: f64,
    /// Deletions, per listed task.
    pub delete: f64,
}

/// Everything the simulator binary needs.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Logging.
    pub log: LogSettings,
    /// Listen address.
    pub listen: SocketAddr,
    /// Base URL clients use, if not `http://<listen>`.
    pub public_url: Option<String>,
    /// Accepted `X-API-Key`.
    pub api_key: SecretString,
    /// Requests generated at start-up.
    pub requests: u32,
    /// Sub-site tasks per request.
    pub subs_per_request: u32,
    /// Seed.
    pub seed: u64,
    /// Main-site domain.
    pub main_domain: String,
    /// Sub-site domains (at least one).
    pub sub_domains: Vec<String>,
    /// Retry manager limit.
    pub max_retries: u32,
    /// Retry manager delay.
    pub retry_delay: Duration,
    /// Fault flags.
    pub faults: SimulatorFaults,
    /// Maildir root for demo mail.
    pub maildir_root: Option<PathBuf>,
    /// Dovecot users file.
    pub mail_users_file: Option<PathBuf>,
    /// Probability of delivering to Junk.
    pub mail_spam: f64,
}

impl SimulatorConfig {
    /// Parses and validates the simulator's configuration.
    ///
    /// # Errors
    /// The first [`ConfigError`] found, naming the variable.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let raw_listen = src.required(&LISTEN)?;
        let listen = raw_listen
            .trim()
            .parse()
            .map_err(|_| invalid(&LISTEN, &raw_listen, "host:port"))?;
        let public_url = src
            .raw(&PUBLIC_URL)
            .map(|u| u.trim_end_matches('/').to_owned());
        if let Some(url) = &public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid(&PUBLIC_URL, url, "an http(s) URL"));
        }
        let sub_domains = src.list(&SUB_DOMAINS);
        if sub_domains.is_empty() {
            return Err(invalid(&SUB_DOMAINS, "", "at least one domain"));
        }
        Ok(Self {
            log: LogSettings::from_source(src)?,
            listen,
            public_url,
            api_key: src.required_secret(&API_KEY)?,
            requests: src.int_in(&REQUESTS, 0, 100_000)? as u32,
            subs_per_request: src.int_in(&SUBS_PER_REQUEST, 0, 100)? as u32,
            seed: src.parse(&SEED)?,
            main_domain: src.required(&MAIN_DOMAIN)?.trim().to_owned(),
            sub_domains,
            max_retries: src.int_in(&MAX_RETRIES, 0, 100)? as u32,
            retry_delay: Duration::from_millis(src.int_in(&RETRY_DELAY_MS, 0, 86_400_000)?),
            faults: faults(src)?,
            maildir_root: src.raw(&MAILDIR_ROOT).map(PathBuf::from),
            mail_users_file: src.raw(&MAIL_USERS_FILE).map(PathBuf::from),
            mail_spam: src.probability(&MAIL_SPAM)?,
        })
    }
}

fn faults(src: &Source) -> Result<SimulatorFaults, ConfigError> {
    Ok(SimulatorFaults {
        error_5xx: src.probability(&FAULT_5XX)?,
        too_many_requests: src.probability(&FAULT_429)?,
        retry_after_secs: src.int_in(&RETRY_AFTER_SECS, 0, 3600)?,
        slow: src.probability(&FAULT_SLOW)?,
        slow_delay: src.millis(&SLOW_MS)?,
        drop_connection: src.probability(&FAULT_DROP)?,
        drop_after_apply: src.probability(&DROP_AFTER_APPLY)?,
        garbage: src.probability(&FAULT_GARBAGE)?,
        duplicate: src.probability(&FAULT_DUPLICATE)?,
        delete: src.probability(&FAULT_DELETE)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_the_key_stays_hidden() {
        let src = Source::from_pairs([("PW_SIM_API_KEY", "sim-key-secret")]);
        let c = SimulatorConfig::from_source(&src).unwrap();
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.sub_domains.len(), 3);
        assert_eq!(c.faults.drop_after_apply, 0.5);
        assert!(!format!("{c:?}").contains("sim-key-secret"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let mut src = Source::from_pairs([("PW_SIM_API_KEY", "k")]);
        src.set("PW_SIM_FAULT_5XX", "1.5");
        let err = SimulatorConfig::from_source(&src).unwrap_err().to_string();
        assert!(err.contains("PW_SIM_FAULT_5XX"), "{err}");
        let err = SimulatorConfig::from_source(&Source::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("PW_SIM_API_KEY is required"), "{err}");
    }
}

//! The simulator's variables ([`VARS`], all `PW_SIM_*`) and its settings. Read the way the fleet reads its
//! own (environment, `PW_CONFIG_FILE`, `<NAME>_FILE` for secrets) but by this crate's code: the simulator
//! shares nothing with the fleet crate. `main.rs` maps [`SimulatorConfig`] onto [`crate::SimulatorOptions`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

mod source;

use source::invalid;
pub use source::{ConfigError, Source};

/// One documented setting of the simulator. [`VARS`] lists them all; the README table is checked against it.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    /// Environment variable name, `PW_SIM_…` (or the shared `PW_LOG…`).
    pub name: &'static str,
    /// Default when unset; `None` means required (or optional where the help says so).
    pub default: Option<&'static str>,
    /// A secret: never echoed in errors; may be read from `<name>_FILE`.
    pub secret: bool,
    /// One line for `--help` and the README.
    pub help: &'static str,
}

/// Declares each variable once: a constant per variable and [`VARS`], the list of all of them in order.
macro_rules! vars {
    ($($id:ident = $name:literal, $default:expr, $secret:literal, $help:literal;)*) => {
        /// The simulator's variables, one constant each (documented by their `help`).
        #[allow(missing_docs)]
        pub mod sim_vars {
            use super::Var;
            $(pub const $id: Var = Var { name: $name, default: $default, secret: $secret, help: $help };)*
        }
        /// Every variable the simulator reads, in README order.
        pub const VARS: &[Var] = &[$(sim_vars::$id),*];
    };
}

vars! {
    LISTEN = "PW_SIM_LISTEN", Some("127.0.0.1:8080"), false, "Simulator listen address (port 0 picks one)";
    PUBLIC_URL = "PW_SIM_PUBLIC_URL", None, false,
        "Base URL clients reach the simulator at; default http://<listen address>";
    API_KEY = "PW_SIM_API_KEY", None, true,
        "The X-API-Key the simulated manager accepts; or PW_SIM_API_KEY_FILE";
    REQUESTS = "PW_SIM_REQUESTS", Some("0"), false,
        "Requests generated at start-up (each a main task plus sub-site tasks)";
    SUBS_PER_REQUEST = "PW_SIM_SUBS_PER_REQUEST", Some("3"), false, "Sub-site tasks per generated request";
    SEED = "PW_SIM_SEED", Some("1"), false, "Seed of generated data and fault dice (same seed, same tasks)";
    MAIN_DOMAINS = "PW_SIM_MAIN_DOMAINS", Some("main.demo.test"), false,
        "Domains of generated main-site tasks, one per request in turn (comma-separated; studio.demo.test is the studio flavour)";
    SUB_DOMAINS = "PW_SIM_SUB_DOMAINS", Some("sub-a.demo.test,sub-b.demo.test,sub-c.demo.test"), false,
        "Domains of generated sub-site tasks, used in turn (comma-separated)";
    MAX_RETRIES = "PW_SIM_MAX_RETRIES", Some("2"), false,
        "Failures the retry manager re-queues before a task is final_failed";
    RETRY_DELAY_MS = "PW_SIM_RETRY_DELAY_MS", Some("0"), false, "Delay before a failed task is queued again";
    FAULT_5XX = "PW_SIM_FAULT_5XX", Some("0"), false, "Probability of a 500/502/503 answer (nothing applied)";
    FAULT_429 = "PW_SIM_FAULT_429", Some("0"), false,
        "Probability of a 429 with Retry-After (nothing applied)";
    RETRY_AFTER_SECS = "PW_SIM_RETRY_AFTER_SECS", Some("1"), false, "Retry-After of a simulated 429";
    FAULT_SLOW = "PW_SIM_FAULT_SLOW", Some("0"), false, "Probability of a slow answer";
    SLOW_MS = "PW_SIM_SLOW_MS", Some("2000"), false, "Delay of a slow answer (before the request is applied)";
    FAULT_DROP = "PW_SIM_FAULT_DROP", Some("0"), false,
        "Probability of closing the connection without an answer";
    DROP_AFTER_APPLY = "PW_SIM_DROP_AFTER_APPLY", Some("0.5"), false,
        "Share of dropped connections whose request was applied before the drop";
    FAULT_GARBAGE = "PW_SIM_FAULT_GARBAGE", Some("0"), false,
        "Probability of a 200 whose body is not JSON (nothing applied)";
    FAULT_DUPLICATE = "PW_SIM_FAULT_DUPLICATE", Some("0"), false,
        "Probability per listing of listing again a task already handed out";
    FAULT_DELETE = "PW_SIM_FAULT_DELETE", Some("0"), false,
        "Probability per listed task of soft-deleting it right after listing (404 after)";
    MAILDIR_ROOT = "PW_SIM_MAILDIR_ROOT", None, false,
        "Maildir root the demo platforms deliver mail into (<root>/<email>/new); unset keeps mail in memory";
    MAIL_USERS_FILE = "PW_SIM_MAIL_USERS_FILE", None, false,
        "Dovecot passwd-file each generated mailbox is added to (<email>:{PLAIN}<app password>)";
    MAIL_SPAM = "PW_SIM_MAIL_SPAM", Some("0"), false, "Probability that a demo mail lands in the Junk folder";
}
use sim_vars::*;

/// The logging variables, read under the same names as the fleet binaries' (documented in their table).
const LOG: Var = Var {
    name: "PW_LOG",
    default: Some("info"),
    secret: false,
    help: "Log filter",
};
const LOG_FORMAT: Var = Var {
    name: "PW_LOG_FORMAT",
    default: Some("auto"),
    secret: false,
    help: "auto, json or pretty",
};

/// Logging: an EnvFilter directive and the line format.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// EnvFilter directive.
    pub filter: String,
    /// `Some(true)` JSON, `Some(false)` human-readable, `None` JSON unless stderr is a terminal.
    pub json: Option<bool>,
}

impl LogSettings {
    fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let json = match src.required(&LOG_FORMAT)?.as_str() {
            "auto" => None,
            "json" => Some(true),
            "pretty" => Some(false),
            other => return Err(invalid(&LOG_FORMAT, other, "auto, json or pretty")),
        };
        Ok(Self {
            filter: src.required(&LOG)?,
            json,
        })
    }
}

/// `--help` and `--version` print to stdout and exit 0; any other argument is refused, since settings (and
/// secrets above all) come only from the environment.
///
/// # Errors
/// [`ConfigError::Argument`] naming the first unexpected argument.
pub fn handle_args() -> Result<(), ConfigError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", help());
        std::process::exit(0);
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("simulator {}", env!("CARGO_PKG_VERSION"));
        std::process::exit(0);
    }
    match args.first() {
        Some(arg) => Err(ConfigError::Argument(arg.chars().take(40).collect())),
        None => Ok(()),
    }
}

/// The `--help` text: every variable with its default.
pub fn help() -> String {
    let mut out = String::from(
        "simulator: stand-in manager API and demo podcast platforms\n\nUsage: simulator [--help] [--version]\n\n\
         All configuration comes from environment variables (or KEY=VALUE lines in the file named by \
         PW_CONFIG_FILE; the environment wins).\nSecrets may be given as <NAME>_FILE.\n\n",
    );
    for var in VARS.iter().chain([&LOG, &LOG_FORMAT]) {
        let default = match (var.secret, var.default) {
            (true, _) => "(secret)".to_owned(),
            (false, Some(d)) => format!("[default: {d}]"),
            (false, None) => "(optional)".to_owned(),
        };
        out.push_str(&format!(
            "  {:<28} {}\n  {:<28} {}\n",
            var.name, var.help, "", default
        ));
    }
    out
}

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
    /// Main-site domains (at least one), one per request in turn.
    pub main_domains: Vec<String>,
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
        let main_domains = src.list(&MAIN_DOMAINS);
        if main_domains.is_empty() {
            return Err(invalid(&MAIN_DOMAINS, "", "at least one domain"));
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
            main_domains,
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

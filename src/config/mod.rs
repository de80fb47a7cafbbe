//! Configuration: every setting is an environment variable with the `PW_` prefix (or a line of the optional
//! `PW_CONFIG_FILE`), parsed once into typed per-role sections and validated at start-up. The only module that
//! reads the environment. Secrets may also come from `<NAME>_FILE`; none can be given on the command line.
//!
//! Each section has its file, and each variable is one line of that file's `vars!` block (`var.rs`): the line
//! gives the constant in [`vars`], the `--help` line, the README table row and the parser. To add a variable,
//! add its line and read it with [`Source::get`] in the section's `from_source`.

#[macro_use]
mod var;

mod api;
mod browser;
mod control;
mod executor;
mod fetcher;
mod image;
mod log;
mod mail;
mod metrics;
mod redis_url;
mod roles;
mod source;
mod streams;
mod totp;

pub use api::{API_VARS, ApiSettings};
pub use browser::{BROWSER_VARS, BrowserSettings};
pub use control::{AdminConfig, CONTROL_VARS, ControlSettings};
pub use executor::{EXECUTOR_VARS, ExecutorSettings, OutboxKey, default_consumer_name};
pub use fetcher::{FETCHER_VARS, FetcherSettings};
pub use image::{IMAGE_VARS, ImageSettings};
pub use log::{LOG_VARS, LogFormat, LogSettings};
pub use mail::{MAIL_VARS, MailSettings};
pub use metrics::{METRICS_VARS, MetricsSettings};
pub use redis_url::{RedisAddress, SENTINEL_PORT, SentinelAddress};
pub use roles::{ExecutorConfig, FetcherConfig, RecipeSettings};
pub use source::{ConfigError, SOURCE_VARS, Source};
pub use streams::{STREAM_VARS, StreamSettings};
pub use totp::{TOTP_VARS, TotpSettings};
pub use var::{Setting, Var};

/// Every variable of the fetcher and executor, by name (`vars::REDIS_URL` is `PW_REDIS_URL`).
pub mod vars {
    pub use super::api::vars::*;
    pub use super::browser::vars::*;
    pub use super::control::vars::*;
    pub use super::executor::vars::*;
    pub use super::fetcher::vars::*;
    pub use super::image::vars::*;
    pub use super::log::vars::*;
    pub use super::mail::vars::*;
    pub use super::metrics::vars::*;
    pub use super::source::vars::*;
    pub use super::streams::vars::*;
    pub use super::totp::vars::*;
}

/// Every section's list of variables, in `--help` and README order.
const SECTIONS: &[&[Var]] = &[
    SOURCE_VARS,
    LOG_VARS,
    STREAM_VARS,
    API_VARS,
    FETCHER_VARS,
    EXECUTOR_VARS,
    CONTROL_VARS,
    METRICS_VARS,
    BROWSER_VARS,
    MAIL_VARS,
    IMAGE_VARS,
    TOTP_VARS,
];

/// Which binary a variable applies to (for `--help` and the README table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `fetcher`.
    Fetcher,
    /// `executor`.
    Executor,
}

/// Help text listing every variable one binary reads, with defaults.
pub fn help(binary: &str, role: Role, about: &str) -> String {
    let mut out = format!(
        "{binary}: {about}\n\nUsage: {binary} [--help | --version]\n\nExit codes: 0 ok, 1 runtime failure, 2 configuration error.\n\nAll configuration comes from environment variables \
         (or KEY=VALUE lines in the file named by PW_CONFIG_FILE; the environment wins).\nSecrets may be given \
         as <NAME>_FILE, a path to a file holding the value.\n\n"
    );
    for var in all_vars().filter(|v| v.roles.contains(&role)) {
        let default = match (var.secret, var.default) {
            (true, _) => "(secret)".to_owned(),
            (false, Some(d)) => format!("[default: {d}]"),
            (false, None) => "(required or optional, see text)".to_owned(),
        };
        out.push_str(&format!(
            "  {:<28} {}\n  {:<28} {}\n",
            var.name, var.help, "", default
        ));
    }
    out
}

/// `<binary> <version> (commit <hash>)`: the package version, and the commit when the build set
/// `PODCAST_WORKER_COMMIT` (e.g. `PODCAST_WORKER_COMMIT=$(git rev-parse --short HEAD) cargo build`).
pub fn version_line(binary: &str) -> String {
    let commit = option_env!("PODCAST_WORKER_COMMIT").unwrap_or("unknown");
    format!("{binary} {} (commit {commit})", env!("CARGO_PKG_VERSION"))
}

/// Prints help (`--help`/`-h`) or the version (`--version`/`-V`) on stdout and exits 0; refuses any other
/// argument, since settings (and secrets above all) are never taken from the command line.
pub(crate) fn handle_args(binary: &str, role: Role, about: &str) -> Result<(), ConfigError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", help(binary, role, about));
        std::process::exit(0);
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("{}", version_line(binary));
        std::process::exit(0);
    }
    match args.first() {
        Some(arg) => Err(ConfigError::Argument(arg.chars().take(40).collect())),
        None => Ok(()),
    }
}

/// Every documented variable of every binary.
pub fn all_vars() -> impl Iterator<Item = &'static Var> {
    SECTIONS.iter().flat_map(|section| section.iter())
}

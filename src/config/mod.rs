//! Configuration: every setting is an environment variable with the `PW_` prefix (or a line of the optional
//! `PW_CONFIG_FILE`), parsed once into typed per-role sections and validated at start-up. The only module that
//! reads the environment. Secrets may also come from `<NAME>_FILE`; none can be given on the command line.

mod browser;
mod control;
mod mail;
mod sections;
mod simulator;
mod source;

pub use browser::*;
pub use control::*;
pub use mail::*;
pub use sections::*;
pub use simulator::*;
pub use source::{ConfigError, Source};

/// Which binary a variable applies to (for `--help` and the README table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `fetcher`.
    Fetcher,
    /// `executor`.
    Executor,
    /// `simulator`.
    Simulator,
}

/// One documented setting. The list of all of them is [`VARS`]; the README table is checked against it.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    /// Environment variable name, `PW_…`.
    pub name: &'static str,
    /// Default when unset; `None` means required (or optional where the help says so).
    pub default: Option<&'static str>,
    /// A secret: never echoed in errors; may be read from `<name>_FILE`.
    pub secret: bool,
    /// Binaries that read it.
    pub roles: &'static [Role],
    /// One line for `--help` and the README.
    pub help: &'static str,
}

/// Help text listing every variable one binary reads, with defaults.
pub fn help(binary: &str, role: Role, about: &str) -> String {
    let mut out = format!(
        "{binary}: {about}\n\nUsage: {binary} [--help]\n\nAll configuration comes from environment variables \
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

/// Prints help and exits when `--help`/`-h` is among the arguments; refuses any other argument, since settings
/// (and secrets above all) are never taken from the command line.
pub fn handle_args(binary: &str, role: Role, about: &str) -> Result<(), ConfigError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", help(binary, role, about));
        std::process::exit(0);
    }
    match args.first() {
        Some(arg) => Err(ConfigError::Argument(arg.chars().take(40).collect())),
        None => Ok(()),
    }
}

/// Every documented variable of every binary.
pub fn all_vars() -> impl Iterator<Item = &'static Var> {
    VARS.iter()
        .chain(SIMULATOR_VARS.iter())
        .chain(BROWSER_VARS.iter())
        .chain(CONTROL_VARS.iter())
        .chain(MAIL_VARS.iter())
}

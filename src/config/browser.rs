//! The browser pool's and recipe runner's variables ([`BROWSER_VARS`]) and their section [`BrowserSettings`].
//! Owned by the browser work; the executor passes the section to `browser` and maps it onto the recipe options.

use std::path::PathBuf;
use std::time::Duration;

use super::source::{ConfigError, Source};
use super::{Role, Var};

const E: Role = Role::Executor;

macro_rules! var {
    ($id:ident, $name:literal, $default:expr, $help:literal) => {
        #[doc = $help]
        pub const $id: Var = Var {
            name: $name,
            default: $default,
            secret: false,
            roles: &[E],
            help: $help,
        };
    };
}

/// Names of the browser variables.
pub mod browser_vars {
    use super::*;
    var!(
        CHROMIUM_PATH,
        "PW_CHROMIUM_PATH",
        Some("/usr/lib/chromium/chromium"),
        "Chromium binary; the real one, not Debian's /usr/bin/chromium wrapper"
    );
    var!(
        CHROMIUM_ARGS,
        "PW_CHROMIUM_ARGS",
        Some(""),
        "Extra Chromium flags without leading --: one per line, or separated by ;;, or a JSON array (commas stay inside values)"
    );
    var!(
        BROWSER_PROFILE_ROOT,
        "PW_BROWSER_PROFILE_ROOT",
        Some("/tmp/podcast-worker-chromium"),
        "Per-host directory of browser profiles; leftovers of killed executors under it are cleaned at start-up"
    );
    var!(
        BROWSER_MAX_TASKS,
        "PW_BROWSER_MAX_TASKS",
        Some("50"),
        "Tasks after which a browser is replaced by a fresh one"
    );
    var!(
        BROWSER_MAX_PSS_MB,
        "PW_BROWSER_MAX_PSS_MB",
        Some("1500"),
        "Summed PSS of a browser's process tree above which it is replaced"
    );
    var!(
        BROWSER_LAUNCH_TIMEOUT_MS,
        "PW_BROWSER_LAUNCH_TIMEOUT_MS",
        Some("20000"),
        "Limit of one Chromium start"
    );
    var!(
        STEP_TIMEOUT_MS,
        "PW_STEP_TIMEOUT_MS",
        Some("30000"),
        "Default limit of one recipe step (a step may set its own timeout_ms)"
    );
    var!(
        RECIPE_TIMEOUT_SECS,
        "PW_RECIPE_TIMEOUT_SECS",
        Some("540"),
        "Limit of one recipe run; keep it under PW_TASK_TIMEOUT_SECS so failure artifacts are still saved"
    );
    var!(
        ARTIFACTS_DIR,
        "PW_ARTIFACTS_DIR",
        Some("artifacts"),
        "Where a failed step's screenshot, HTML and step log go, in a folder per task id"
    );
    var!(
        RECIPES_DIR,
        "PW_RECIPES_DIR",
        Some("recipes"),
        "Directory of recipe files (*.toml), one per platform family; validated at start-up"
    );
}
use browser_vars::*;

/// Every variable of the browser pool and recipe runner.
pub const BROWSER_VARS: &[Var] = &[
    CHROMIUM_PATH,
    CHROMIUM_ARGS,
    BROWSER_PROFILE_ROOT,
    BROWSER_MAX_TASKS,
    BROWSER_MAX_PSS_MB,
    BROWSER_LAUNCH_TIMEOUT_MS,
    STEP_TIMEOUT_MS,
    RECIPE_TIMEOUT_SECS,
    ARTIFACTS_DIR,
    RECIPES_DIR,
];

/// Browser pool and recipe runner settings.
#[derive(Debug, Clone)]
pub struct BrowserSettings {
    /// Chromium binary.
    pub chromium_path: PathBuf,
    /// Extra flags, without the leading `--`.
    pub extra_args: Vec<String>,
    /// Parent of every profile directory of this host's executors.
    pub profile_root: PathBuf,
    /// Tasks per browser before it is replaced.
    pub max_tasks: u32,
    /// PSS limit of one browser's process tree, in bytes.
    pub max_pss_bytes: u64,
    /// Limit of one Chromium launch.
    pub launch_timeout: Duration,
    /// Default limit of one recipe step.
    pub step_timeout: Duration,
    /// Limit of one whole recipe run.
    pub recipe_timeout: Duration,
    /// Failure artifacts directory.
    pub artifacts_dir: PathBuf,
    /// Recipe files directory.
    pub recipes_dir: PathBuf,
}

impl BrowserSettings {
    /// Reads and checks the browser variables.
    ///
    /// # Errors
    /// The first [`ConfigError`], naming the variable.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let raw = src.raw(&CHROMIUM_ARGS).unwrap_or_default();
        let extra_args =
            chromium_args(&raw).map_err(|why| super::source::invalid(&CHROMIUM_ARGS, &raw, why))?;
        if let Some(bad) = extra_args.iter().find(|a| a.starts_with('-')) {
            return Err(super::source::invalid(
                &CHROMIUM_ARGS,
                bad,
                "flags without the leading -- (it is added)",
            ));
        }
        Ok(Self {
            chromium_path: src.required(&CHROMIUM_PATH)?.into(),
            extra_args,
            profile_root: src.required(&BROWSER_PROFILE_ROOT)?.into(),
            max_tasks: src.int_in(&BROWSER_MAX_TASKS, 1, 1_000_000)? as u32,
            max_pss_bytes: src.int_in(&BROWSER_MAX_PSS_MB, 100, 1_000_000)? * 1024 * 1024,
            launch_timeout: src.millis(&BROWSER_LAUNCH_TIMEOUT_MS)?,
            step_timeout: src.millis(&STEP_TIMEOUT_MS)?,
            recipe_timeout: src.secs(&RECIPE_TIMEOUT_SECS)?,
            artifacts_dir: src.required(&ARTIFACTS_DIR)?.into(),
            recipes_dir: src.required(&RECIPES_DIR)?.into(),
        })
    }

    /// Defaults with another Chromium and profile root: for tests and tools that build settings in code.
    pub fn for_test(chromium_path: impl Into<PathBuf>, profile_root: impl Into<PathBuf>) -> Self {
        let mut s = Self::from_source(&Source::default()).unwrap_or_else(|_| Self::fallback());
        s.chromium_path = chromium_path.into();
        s.profile_root = profile_root.into();
        s
    }

    fn fallback() -> Self {
        Self {
            chromium_path: "/usr/lib/chromium/chromium".into(),
            extra_args: Vec::new(),
            profile_root: "/tmp/podcast-worker-chromium".into(),
            max_tasks: 50,
            max_pss_bytes: 1500 * 1024 * 1024,
            launch_timeout: Duration::from_secs(20),
            step_timeout: Duration::from_secs(30),
            recipe_timeout: Duration::from_secs(540),
            artifacts_dir: "artifacts".into(),
            recipes_dir: "recipes".into(),
        }
    }
}

/// `PW_CHROMIUM_ARGS` into flags: a JSON array of strings, or flags one per line and/or separated by `;;`.
/// A single line with a comma and no `;;` is refused: the old comma-separated form and a flag whose value
/// holds commas (`host-resolver-rules=MAP a x, MAP b y`) cannot be told apart.
fn chromium_args(raw: &str) -> Result<Vec<String>, &'static str> {
    let raw = raw.trim();
    if raw.starts_with('[') {
        let flags: Vec<String> =
            serde_json::from_str(raw).map_err(|_| "a JSON array of strings (it starts with [)")?;
        return Ok(flags
            .iter()
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())
            .collect());
    }
    if !raw.contains('\n') && !raw.contains(";;") && raw.contains(',') {
        return Err(
            "flags one per line, separated by ;; or as a JSON array; a comma on a single line is \
                    ambiguous (write a;;b for two flags, or end a flag whose value has commas with ;;)",
        );
    }
    Ok(raw
        .split('\n')
        .flat_map(|line| line.split(";;"))
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_bad_flags_are_refused() {
        let s = BrowserSettings::from_source(&Source::default()).unwrap();
        assert_eq!(s.max_tasks, 50);
        assert_eq!(s.max_pss_bytes, 1500 * 1024 * 1024);
        assert_eq!(s.chromium_path, PathBuf::from("/usr/lib/chromium/chromium"));
        let mut src = Source::default();
        src.set("PW_CHROMIUM_ARGS", "--proxy-server=x");
        let err = BrowserSettings::from_source(&src).unwrap_err().to_string();
        assert!(err.contains("PW_CHROMIUM_ARGS"), "{err}");
    }

    #[test]
    fn chromium_args_keep_commas_inside_values() {
        let rules = "host-resolver-rules=MAP a.test 127.0.0.1:1, MAP b.test 127.0.0.1:2";
        let want = vec![rules.to_owned(), "disable-gpu".to_owned()];
        assert_eq!(
            chromium_args(&format!("{rules};;disable-gpu")).unwrap(),
            want
        );
        assert_eq!(
            chromium_args(&format!("{rules}\n  disable-gpu\n")).unwrap(),
            want
        );
        let json = serde_json::to_string(&want).unwrap();
        assert_eq!(chromium_args(&json).unwrap(), want);
        assert_eq!(chromium_args(&format!("{rules};;")).unwrap(), want[..1]);
        assert_eq!(
            chromium_args("proxy-server=http://p:3128").unwrap(),
            ["proxy-server=http://p:3128"]
        );
        assert!(chromium_args("").unwrap().is_empty());
        // The old comma list and a one-flag value with commas look the same: refused, not guessed.
        assert!(chromium_args("disable-gpu,mute-audio").is_err());
        assert!(chromium_args(rules).is_err());
        assert!(chromium_args("[\"a\", 3]").is_err());
        let mut src = Source::default();
        src.set("PW_CHROMIUM_ARGS", rules);
        let err = BrowserSettings::from_source(&src).unwrap_err().to_string();
        assert!(
            err.contains("PW_CHROMIUM_ARGS") && err.contains("ambiguous"),
            "{err}"
        );
    }
}

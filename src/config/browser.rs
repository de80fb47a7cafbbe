//! The browser pool's and recipe runner's section ([`BrowserSettings`]). The executor passes it to `browser`
//! and maps it onto the recipe options.

use std::path::PathBuf;
use std::time::Duration;

use super::source::{ConfigError, Source, invalid};
use super::var::*;

vars! {
    /// Every browser and recipe runner variable (executor only).
    BROWSER_VARS;
    CHROMIUM_PATH: PathBuf = path().or("/usr/lib/chromium/chromium"), [E], "Chromium binary; the real one, not Debian's /usr/bin/chromium wrapper";
    CHROMIUM_ARGS: Option<String> = optional_text(), [E], "Extra Chromium flags without leading --: one per line, or separated by ;;, or a JSON array (commas stay inside values)";
    BROWSER_PROFILE_ROOT: PathBuf = path().or("/tmp/podcast-worker-chromium"), [E], "Per-host directory of browser profiles; leftovers of killed executors under it are cleaned at start-up";
    BROWSER_MAX_TASKS: u64 = int(1, 1_000_000).or("50"), [E], "Tasks after which a browser is replaced by a fresh one";
    BROWSER_MAX_PSS_MB: u64 = int(100, 1_000_000).or("1500"), [E], "Summed PSS of a browser's process tree above which it is replaced";
    BROWSER_LAUNCH_TIMEOUT_MS: Duration = millis(1, WEEK_MS).or("20000"), [E], "Limit of one Chromium start";
    STEP_TIMEOUT_MS: Duration = millis(1, WEEK_MS).or("30000"), [E], "Default limit of one recipe step (a step may set its own timeout_ms)";
    RECIPE_TIMEOUT_SECS: Duration = secs(1, MONTH_SECS).or("540"), [E], "Limit of one recipe run; keep it under PW_TASK_TIMEOUT_SECS so failure artifacts are still saved";
    ARTIFACTS_DIR: PathBuf = path().or("artifacts"), [E], "Where a failed step's screenshot, HTML and step log go, in a folder per task id";
    RECIPES_DIR: PathBuf = path().or("recipes"), [E], "Directory of recipe files (*.toml), one per platform family; validated at start-up";
}
use vars::*;

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
        let raw = src.get(&CHROMIUM_ARGS)?.unwrap_or_default();
        let extra_args = chromium_args(&raw).map_err(|why| invalid(&CHROMIUM_ARGS, &raw, why))?;
        if let Some(bad) = extra_args.iter().find(|a| a.starts_with('-')) {
            return Err(invalid(
                &CHROMIUM_ARGS,
                bad,
                "flags without the leading -- (it is added)",
            ));
        }
        Ok(Self {
            chromium_path: src.get(&CHROMIUM_PATH)?,
            extra_args,
            profile_root: src.get(&BROWSER_PROFILE_ROOT)?,
            max_tasks: src.get(&BROWSER_MAX_TASKS)? as u32,
            max_pss_bytes: src.get(&BROWSER_MAX_PSS_MB)? * 1024 * 1024,
            launch_timeout: src.get(&BROWSER_LAUNCH_TIMEOUT_MS)?,
            step_timeout: src.get(&STEP_TIMEOUT_MS)?,
            recipe_timeout: src.get(&RECIPE_TIMEOUT_SECS)?,
            artifacts_dir: src.get(&ARTIFACTS_DIR)?,
            recipes_dir: src.get(&RECIPES_DIR)?,
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

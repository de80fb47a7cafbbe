//! The recipe language: one TOML file per platform family (`recipes/*.toml`, documented in `docs/recipes.md`)
//! lists the domains it serves and the steps that register an account. [`parse_recipe`] and [`load_dir`] check
//! recipes without I/O beyond reading the files; [`RecipeDriver`] runs one in a browser session per task.

mod artifacts;
mod check;
mod check_cli;
mod driver;
mod env;
mod import;
mod parse;
mod run;
mod setup;
mod template;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

pub use artifacts::StepLog;
pub use check::{
    CheckError, CheckFiles, CheckPlan, CheckSettings, check, describe, task_file_vars,
};
pub use check_cli::command as check_command;
pub use driver::{RecipeDriver, RunOutcome, StepHook};
pub use env::RecipeEnv;
pub use import::{ImportError, import_recording};
pub use parse::{SECRET_TASK_VARS, TASK_VARS, parse_recipe};
pub use setup::{RecipeSetup, SetupError, setup};
pub use template::{Template, Vars, html_to_text, seed, spin};

use crate::browser::Resource;
use crate::driver::Drivers;
use crate::task::Site;

/// Selectors that mean "a CAPTCHA is shown" when a recipe sets no `captcha_selectors` of its own.
pub(crate) const DEFAULT_CAPTCHA: &[&str] = &[
    "iframe[src*='recaptcha']",
    "iframe[src*='hcaptcha']",
    "iframe[src*='challenges.cloudflare.com']",
    ".g-recaptcha",
    ".h-captcha",
    ".cf-turnstile",
];

/// A recipe that is wrong, named by file and (when it is about a step) step number from 1 and action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", step.as_ref().map(|(i, k)| format!(" step {i} ({k})")).unwrap_or_default())]
pub struct RecipeError {
    /// The recipe file.
    pub file: String,
    /// Step number (from 1) and action, when the problem is in a step.
    pub step: Option<(usize, String)>,
    /// What is wrong.
    pub message: String,
}

/// A checked recipe.
#[derive(Debug, Clone)]
pub struct Recipe {
    /// Name for logs and metrics (the `name` key, else the file stem).
    pub name: String,
    /// File it came from.
    pub file: String,
    /// Main or sub site.
    pub site: Site,
    /// Normalised domains it serves.
    pub domains: Vec<String>,
    /// Selectors whose visible text is a site error (a permanent failure carrying that text).
    pub error_selectors: Vec<String>,
    /// Texts that, shown on the page, are a site error.
    pub error_texts: Vec<String>,
    /// Selectors that mean a CAPTCHA is shown (a permanent failure: "captcha").
    pub captcha_selectors: Vec<String>,
    /// Resource types the pages are not allowed to load (`block`), except during a step that unblocks them.
    pub block: Vec<Resource>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Which variables become the registration's fields.
    pub result: ResultMap,
    /// Where a retry continues when the site shows that an earlier attempt got further.
    pub resume: Vec<Resume>,
}

/// A `[[resume]]` rule: on a retry (attempt 2 or later), a site error containing `when` (case-insensitive)
/// means an earlier attempt already got past it (e.g. "already registered": the account exists with the
/// task's credentials), so the run continues at step `from` instead of failing. Each rule applies once per run.
#[derive(Debug, Clone)]
pub struct Resume {
    /// Text of the site error, matched case-insensitively.
    pub when: String,
    /// Index (from 0) of the step to continue at.
    pub from: usize,
}

/// One step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Position in the file, from 1.
    pub index: usize,
    /// Optional label for the step log, and the target of `then`, `goto_step` and `[[resume]]`.
    pub name: Option<String>,
    /// Own limit instead of the default step timeout.
    pub timeout: Option<Duration>,
    /// A failure of this step is logged and skipped (e.g. a cookie banner that may not show).
    pub optional: bool,
    /// Run the step only if this holds when it is reached (`if_visible`, `if_url`, `if_text`); else skip it.
    pub when: Option<Condition>,
    /// After the step succeeded, continue at this step (an index from 0, always later than this one).
    pub then: Option<usize>,
    /// Resource types of the recipe's `block` list that the page may load while this step runs.
    pub unblock: Vec<Resource>,
    /// What it does.
    pub action: Action,
}

/// A step's condition, checked once when the step is reached (it does not wait).
#[derive(Debug, Clone)]
pub enum Condition {
    /// An element matching the selector is visible.
    Visible(String),
    /// The page URL matches the regex.
    Url(Regex),
    /// The page's visible text contains the text (case-insensitive).
    Text(Template),
}

impl Condition {
    /// The key in the recipe file.
    pub fn key(&self) -> &'static str {
        match self {
            Condition::Visible(_) => "if_visible",
            Condition::Url(_) => "if_url",
            Condition::Text(_) => "if_text",
        }
    }
}

/// Whose mistake a `fail_if` / `fail_if_text` guard reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardKind {
    /// The site refused (`site error: …`), the default.
    Site,
    /// The recipe met a page it was not written for (`recipe error: …`): `kind = "recipe"`.
    Recipe,
}

/// What a step does. Selectors are CSS selectors.
#[derive(Debug, Clone)]
pub enum Action {
    /// Navigate to the URL and wait for the page to load.
    Goto(Template),
    /// Type the value into the field.
    Fill {
        /// The field.
        selector: String,
        /// What to type.
        value: Template,
    },
    /// Click the element.
    Click {
        /// The element.
        selector: String,
        /// Wait for the new page to load after the click.
        navigates: bool,
    },
    /// Choose the option (by value or visible text).
    Select {
        /// The `<select>`.
        selector: String,
        /// The option's value or visible text.
        value: Template,
    },
    /// Set a checkbox or radio on or off.
    Check {
        /// The checkbox or radio.
        selector: String,
        /// Ticked (true) or not.
        on: bool,
    },
    /// Put the task's image (downloaded from `image_url`) into the file input.
    UploadImage(String),
    /// Wait until an element matching the selector is visible.
    WaitFor(String),
    /// Wait until the URL matches the regex.
    WaitUrl(Regex),
    /// Wait until the page's text contains the text.
    WaitText(Template),
    /// Fill a fresh TOTP code for the task's `twofa` secret into the field.
    Totp(String),
    /// Wait for a verification mail and extract a value from it.
    WaitMail(MailStep),
    /// Read a value from the page into a variable.
    Extract(ExtractStep),
    /// Fail permanently when an element matching the selector is visible.
    FailIf {
        /// The element.
        selector: String,
        /// The failure's text instead of the element's text.
        message: Option<String>,
        /// Whose failure it is.
        kind: GuardKind,
    },
    /// Fail permanently when the page's text contains the text.
    FailIfText {
        /// The text looked for (case-insensitive).
        text: Template,
        /// The failure's text instead of the line found.
        message: Option<String>,
        /// Whose failure it is.
        kind: GuardKind,
    },
    /// Store the context's cookies for the current URL (`name=value; …`) in a secret variable.
    Cookies(String),
    /// Do nothing but continue at the named step (the step's `then`); with a condition, a branch.
    GotoStep(String),
}

impl Action {
    /// The action's key in the recipe file.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Goto(_) => "goto",
            Action::Fill { .. } => "fill",
            Action::Click { .. } => "click",
            Action::Select { .. } => "select",
            Action::Check { .. } => "check",
            Action::UploadImage(_) => "upload_image",
            Action::WaitFor(_) => "wait_for",
            Action::WaitUrl(_) => "wait_url",
            Action::WaitText(_) => "wait_text",
            Action::Totp(_) => "totp",
            Action::WaitMail(_) => "wait_mail",
            Action::Extract(_) => "extract",
            Action::FailIf { .. } => "fail_if",
            Action::FailIfText { .. } => "fail_if_text",
            Action::Cookies(_) => "cookies",
            Action::GotoStep(_) => "goto_step",
        }
    }

    /// The variable this step sets, if any.
    pub(crate) fn defines(&self) -> Option<&str> {
        match self {
            Action::WaitMail(m) => Some(&m.into),
            Action::Extract(e) => Some(&e.into),
            Action::Cookies(v) => Some(v),
            _ => None,
        }
    }

    /// The templates the step renders (each must name only variables known when the step runs).
    pub(crate) fn templates(&self) -> Vec<&Template> {
        match self {
            Action::Goto(t) | Action::WaitText(t) => vec![t],
            Action::Fill { value, .. } | Action::Select { value, .. } => vec![value],
            Action::FailIfText { text, .. } => vec![text],
            Action::WaitMail(m) => [&m.from, &m.subject, &m.to].into_iter().flatten().collect(),
            _ => Vec::new(),
        }
    }
}

/// A `wait_mail` step.
#[derive(Debug, Clone)]
pub struct MailStep {
    /// Variable receiving the extracted value.
    pub into: String,
    /// What to extract (first capture group, else the whole match).
    pub pattern: Regex,
    /// Part of the sender.
    pub from: Option<Template>,
    /// Part of the subject.
    pub subject: Option<Template>,
    /// Part of a recipient address; default the task's email.
    pub to: Option<Template>,
}

/// An `extract` step.
#[derive(Debug, Clone)]
pub struct ExtractStep {
    /// Element to read.
    pub selector: String,
    /// Variable receiving the value.
    pub into: String,
    /// Attribute to read instead of the text (`value` reads a field's value).
    pub attribute: Option<String>,
    /// Regex applied to the value: first capture group, else the whole match.
    pub pattern: Option<Regex>,
    /// The value is a secret (a token, a key): kept out of artifacts like a password.
    pub secret: bool,
}

/// Templates giving the registration's fields.
#[derive(Debug, Clone)]
pub struct ResultMap {
    /// Login email (default `{{email}}`).
    pub email: Option<Template>,
    /// Username (default `{{username}}`).
    pub username: Option<Template>,
    /// Password (default `{{password}}`).
    pub password: Option<Template>,
    /// Cookie header (default the last `cookies` step's variable).
    pub cookie: Option<Template>,
    /// The RSS feed (required for main sites).
    pub link_rss: Option<Template>,
    /// Free text for the manager.
    pub note: Option<Template>,
}

/// Reads and checks every `*.toml` in `dir`.
///
/// # Errors
/// The first [`RecipeError`]; also when the directory is unreadable, empty, or two recipes claim a domain.
pub fn load_dir(dir: &Path) -> Result<Vec<Recipe>, RecipeError> {
    let dir_err = |message: String| RecipeError {
        file: dir.display().to_string(),
        step: None,
        message,
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| dir_err(format!("cannot read recipes directory: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut recipes: Vec<Recipe> = Vec::new();
    for path in files {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| RecipeError {
            file: name.clone(),
            step: None,
            message: format!("cannot read: {e}"),
        })?;
        let recipe = parse_recipe(&name, &text)?;
        for d in &recipe.domains {
            if let Some(other) = recipes.iter().find(|r| r.domains.contains(d)) {
                return Err(dir_err(format!(
                    "domain {d} is claimed by both {} and {}",
                    other.file, recipe.file
                )));
            }
        }
        recipes.push(recipe);
    }
    if recipes.is_empty() {
        return Err(dir_err("no *.toml recipes found".into()));
    }
    Ok(recipes)
}

/// One [`RecipeDriver`] per recipe, registered under each of its domains.
pub fn drivers(recipes: Vec<Recipe>, env: &RecipeEnv) -> Drivers {
    let mut drivers = Drivers::new();
    for recipe in recipes {
        let recipe = Arc::new(recipe);
        let driver = Arc::new(RecipeDriver::new(Arc::clone(&recipe), env.clone()));
        for d in &recipe.domains {
            drivers.insert(d, driver.clone());
        }
    }
    drivers
}

#[cfg(test)]
mod tests;

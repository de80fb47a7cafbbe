//! The `Driver` trait: how one platform's account is registered. The executor knows only this trait;
//! recipe drivers (browser) and the tests' own drivers implement it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::task::Registration;
use crate::task::{Task, normalise_domain};

/// Who or what made a registration fail: decides the `fail` message's prefix and the metric's error class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The site showed its own error message (`site error: …`).
    Site,
    /// A guard the recipe's author wrote (`fail_if` with `kind = "recipe"`), or a step that cannot work as
    /// written, e.g. an invalid selector (`recipe error: …`).
    Recipe,
    /// A CAPTCHA is shown (`captcha: …`).
    Captcha,
    /// The task's data cannot work: no `image_url`, a bad image, an unusable TOTP secret.
    Input,
    /// The mailbox: its login was refused, or the mail did not come.
    Mail,
    /// The page is not what the recipe was written for: an element a step acts on is missing, or a step on
    /// the page (not a page load, a mail or a TOTP wait) ran out of time waiting for it. Usually the site
    /// changed its pages (sometimes it is only slow); what the circuit breaker counts, with `Recipe`.
    Structure,
    /// A page load, a mail or TOTP wait, or the whole run ran out of time.
    Timeout,
    /// The browser crashed or misbehaved.
    Browser,
    /// The site could not be reached, failed to load or answered HTTP 5xx.
    Network,
    /// Not classified (drivers that only say permanent or transient).
    Other,
}

impl FailureKind {
    /// The prefix of the failure's message, saying who failed.
    pub fn prefix(self) -> &'static str {
        match self {
            FailureKind::Site => "site error: ",
            FailureKind::Recipe => "recipe error: ",
            FailureKind::Captcha => "captcha: ",
            _ => "",
        }
    }
}

/// Why a registration did not succeed, and therefore what happens next: a transient failure may work on
/// another attempt, a permanent one is reported `fail` at once. Shown as the kind's prefix and the message;
/// the message never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", kind.prefix())]
pub struct DriverError {
    /// Who or what failed.
    pub kind: FailureKind,
    /// May work on another attempt (timeout, network, browser crash, site 5xx, no mail yet).
    pub transient: bool,
    /// What happened, without the kind's prefix.
    pub message: String,
    /// For the `fail` report's `note`, not its `error_message`: e.g. where the failure artifacts are.
    pub note: Option<String>,
}

impl DriverError {
    /// A failure of `kind`.
    pub fn new(kind: FailureKind, transient: bool, message: impl Into<String>) -> Self {
        Self {
            kind,
            transient,
            message: message.into(),
            note: None,
        }
    }

    /// An unclassified failure that retrying cannot help (the site refused, bad input).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Other, false, message)
    }

    /// An unclassified failure that may work on another attempt.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Other, true, message)
    }

    /// The same failure with a note for the `fail` report.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// The failure-artifacts note, for the `fail` report's `note`.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }
}

/// Registers an account on one platform family. Messages in errors must never contain a secret.
#[async_trait::async_trait]
pub trait Driver: Send + Sync {
    /// Short name for logs and metrics (e.g. the recipe name).
    fn name(&self) -> &str;

    /// Runs one registration attempt. The executor applies the timeout and retries.
    async fn register(&self, task: &Task) -> Result<Registration, DriverError>;

    /// Runs attempt `attempt` (from 1) of this executor's attempts at `task`; a driver may continue where an
    /// earlier attempt left off (the recipe driver's `[[resume]]` rules). Default: [`Driver::register`].
    async fn register_attempt(
        &self,
        task: &Task,
        attempt: u32,
    ) -> Result<Registration, DriverError> {
        let _ = attempt;
        self.register(task).await
    }
}

/// Drivers by normalised domain.
#[derive(Clone, Default)]
pub struct Drivers {
    by_domain: HashMap<String, Arc<dyn Driver>>,
}

impl std::fmt::Debug for Drivers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut domains: Vec<_> = self.by_domain.keys().collect();
        domains.sort();
        f.debug_struct("Drivers")
            .field("domains", &domains)
            .finish()
    }
}

impl Drivers {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `domain` with `driver` (replacing any previous one).
    pub fn insert(&mut self, domain: &str, driver: Arc<dyn Driver>) -> &mut Self {
        self.by_domain.insert(normalise_domain(domain), driver);
        self
    }

    /// The driver for a domain, if any.
    pub fn get(&self, domain: &str) -> Option<Arc<dyn Driver>> {
        self.by_domain.get(&normalise_domain(domain)).cloned()
    }

    /// Served domains, sorted.
    pub fn domains(&self) -> Vec<String> {
        let mut d: Vec<_> = self.by_domain.keys().cloned().collect();
        d.sort();
        d
    }
}

//! The `Driver` trait: how one platform's account is registered. The executor knows only this trait;
//! recipe drivers (browser) and the tests' own drivers implement it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::task::Registration;
use crate::task::{Task, normalise_domain};

/// Why a registration did not succeed, and therefore what happens next.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DriverError {
    /// Retrying cannot help (the site refused, bad input, mailbox login refused): report `fail` at once.
    #[error("{0}")]
    Permanent(String),
    /// May work on another attempt (timeout, network, browser crash, site 5xx).
    #[error("{0}")]
    Transient(String),
}

impl DriverError {
    /// The failure-artifacts note a recipe driver appends to its message (`artifacts: <dir>`), for the
    /// `fail` report's `note`.
    pub fn note(&self) -> Option<&str> {
        let (DriverError::Permanent(m) | DriverError::Transient(m)) = self;
        let start = m.rfind("(artifacts: ")?;
        m[start + 1..].strip_suffix(')')
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

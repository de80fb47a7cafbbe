//! Start-up wiring for the executor: load and validate every recipe, make the browser pool and the shared
//! services, and register one driver per recipe domain. An invalid recipe stops start-up here.

use super::env::RecipeEnv;
use super::{RecipeError, drivers, load_dir};
use crate::browser::{BrowserError, BrowserPool};
use crate::config::{RecipeSettings, StreamSettings};
use crate::driver::Drivers;
use crate::mailbox::{MailError, MailObserver, Mailbox};
use crate::totp::TotpError;

/// Why recipe drivers could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A recipe file is invalid (the message names the file and step). Not a `#[source]`: the message
    /// already holds it, and an error chain printed it twice ("X: X").
    #[error("invalid recipe: {0}")]
    Recipe(RecipeError),
    /// The browser pool could not be made (Chromium missing, profile root not writable).
    #[error(transparent)]
    Browser(#[from] BrowserError),
    /// The mailbox TLS settings are unusable.
    #[error(transparent)]
    Mail(#[from] MailError),
    /// The Redis URL cannot hold the fleet-wide TOTP ledger.
    #[error(transparent)]
    Totp(#[from] TotpError),
}

impl From<RecipeError> for SetupError {
    fn from(e: RecipeError) -> Self {
        SetupError::Recipe(e)
    }
}

/// The recipe drivers and the services behind them: the pool (read its [`BrowserPool::stats`] for metrics;
/// call [`BrowserPool::shutdown`] when the executor stops) and the mailbox (see every mail wait of every
/// driver with [`RecipeSetup::observe_mail`]).
#[derive(Debug, Clone)]
pub struct RecipeSetup {
    /// One driver per domain of every recipe.
    pub drivers: Drivers,
    /// The shared browser pool.
    pub pool: BrowserPool,
    /// The mailbox reader every driver shares (clones share their observer).
    mailbox: Mailbox,
}

impl RecipeSetup {
    /// Reports every mail wait of every driver to `observer` (see [`Mailbox::set_observer`]); `false` when
    /// an observer was set already.
    pub fn observe_mail(&self, observer: MailObserver) -> bool {
        self.mailbox.set_observer(observer)
    }
}

/// Loads `browser.recipes_dir`, makes the pool (cleaning up a killed executor's Chromium) and the drivers.
/// With `redis`, TOTP time steps are claimed in that Redis, fleet-wide.
///
/// # Errors
/// [`SetupError`]; an invalid recipe names its file and step.
pub fn setup(
    settings: &RecipeSettings,
    redis: Option<&StreamSettings>,
) -> Result<RecipeSetup, SetupError> {
    let recipes = load_dir(&settings.browser.recipes_dir)?;
    let pool = BrowserPool::new(settings.browser.clone())?;
    let mut env = RecipeEnv::new(
        pool.clone(),
        &settings.mail,
        settings.image.clone(),
        settings.totp,
    )?;
    if let Some(redis) = redis {
        env = env.with_totp_ledger(redis)?;
    }
    for r in &recipes {
        tracing::info!(recipe = %r.name, site = %r.site, domains = ?r.domains, "recipe loaded");
    }
    Ok(RecipeSetup {
        drivers: drivers(recipes, &env),
        mailbox: env.mailbox,
        pool,
    })
}

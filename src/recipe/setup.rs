//! Start-up wiring for the executor: load and validate every recipe, make the browser pool and the shared
//! services, and register one driver per recipe domain. An invalid recipe stops start-up here.

use super::driver::RecipeEnv;
use super::{RecipeError, drivers, load_dir};
use crate::browser::{BrowserError, BrowserPool};
use crate::config::RecipeSettings;
use crate::driver::Drivers;
use crate::mailbox::MailError;

/// Why recipe drivers could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A recipe file is invalid (the message names the file and step).
    #[error("invalid recipe: {0}")]
    Recipe(#[from] RecipeError),
    /// The browser pool could not be made (Chromium missing, profile root not writable).
    #[error(transparent)]
    Browser(#[from] BrowserError),
    /// The mailbox TLS settings are unusable.
    #[error(transparent)]
    Mail(#[from] MailError),
}

/// The recipe drivers and the pool behind them (read its [`BrowserPool::stats`] for metrics; call
/// [`BrowserPool::shutdown`] when the executor stops).
#[derive(Debug, Clone)]
pub struct RecipeSetup {
    /// One driver per domain of every recipe.
    pub drivers: Drivers,
    /// The shared browser pool.
    pub pool: BrowserPool,
}

/// Loads `browser.recipes_dir`, makes the pool (cleaning up a killed executor's Chromium) and the drivers.
///
/// # Errors
/// [`SetupError`]; an invalid recipe names its file and step.
pub fn setup(settings: &RecipeSettings) -> Result<RecipeSetup, SetupError> {
    let recipes = load_dir(&settings.browser.recipes_dir)?;
    let pool = BrowserPool::new(settings.browser.clone())?;
    let env = RecipeEnv::new(
        pool.clone(),
        &settings.mail,
        settings.image.clone(),
        settings.totp,
    )?;
    for r in &recipes {
        tracing::info!(recipe = %r.name, site = %r.site, domains = ?r.domains, "recipe loaded");
    }
    Ok(RecipeSetup {
        drivers: drivers(recipes, &env),
        pool,
    })
}

//! [`RecipeEnv`]: what every recipe run shares (browser pool, mailbox, TOTP, limits). Its own module so the
//! runner (`run.rs`) and the driver (`driver.rs`) both depend on it instead of on each other.

use std::path::PathBuf;
use std::time::Duration;

use crate::browser::BrowserPool;
use crate::config::{ImageSettings, MailSettings, StreamSettings, TotpSettings};
use crate::mailbox::{MailError, Mailbox};
use crate::totp::{TotpError, TotpGenerator, TotpLedger};

/// What every recipe run shares: the browser pool, the mailbox reader, the TOTP generator, image limits.
#[derive(Clone, Debug)]
pub struct RecipeEnv {
    /// Browser pool.
    pub pool: BrowserPool,
    /// Verification mail reader.
    pub mailbox: Mailbox,
    /// TOTP codes (never the same one twice).
    pub totp: TotpGenerator,
    /// `image_url` download limits.
    pub image: ImageSettings,
    /// Default limit of one step.
    pub step_timeout: Duration,
    /// Limit of a whole run.
    pub recipe_timeout: Duration,
    /// Where failure artifacts go.
    pub artifacts_dir: PathBuf,
}

impl RecipeEnv {
    /// Builds the environment; timeouts and the artifacts directory come from the pool's settings.
    ///
    /// # Errors
    /// [`MailError::Config`] when the IMAP TLS settings are unusable.
    pub fn new(
        pool: BrowserPool,
        mail: &MailSettings,
        image: ImageSettings,
        totp: TotpSettings,
    ) -> Result<Self, MailError> {
        let s = pool.settings().clone();
        Ok(Self {
            mailbox: Mailbox::new(mail)?,
            totp: TotpGenerator::new(totp.min_remaining),
            image,
            step_timeout: s.step_timeout,
            recipe_timeout: s.recipe_timeout,
            artifacts_dir: s.artifacts_dir,
            pool,
        })
    }

    /// The same environment with TOTP time steps claimed fleet-wide in the Redis of `redis` (its URL and
    /// key prefix), so no two processes type the same code.
    ///
    /// # Errors
    /// [`TotpError::Ledger`] for an unusable Redis URL.
    pub(crate) fn with_totp_ledger(mut self, redis: &StreamSettings) -> Result<Self, TotpError> {
        let ledger = TotpLedger::new(&redis.redis_url, &redis.key_prefix)?;
        self.totp = self.totp.with_ledger(ledger);
        Ok(self)
    }
}

//! What each binary reads: [`FetcherConfig`], [`ExecutorConfig`] and the recipe runner's [`RecipeSettings`]
//! (shared by the executor and `recipe-check`), with the checks that span sections.

use super::Role;
use super::source::{ConfigError, Source};
use super::vars::{HEALTH_STALL_SECS, RECIPE_TIMEOUT_SECS, TASK_TIMEOUT_SECS};
use super::{
    ApiSettings, BrowserSettings, ExecutorSettings, FetcherSettings, ImageSettings, LogSettings,
    MailSettings, MetricsSettings, StreamSettings, TotpSettings,
};

/// Everything the fetcher binary needs.
#[derive(Debug, Clone)]
pub struct FetcherConfig {
    /// Logging.
    pub log: LogSettings,
    /// Redis streams.
    pub streams: StreamSettings,
    /// Manager API.
    pub api: ApiSettings,
    /// Fetch loop.
    pub fetcher: FetcherSettings,
    /// Metrics endpoint.
    pub metrics: MetricsSettings,
}

impl FetcherConfig {
    /// Parses and validates the fetcher's configuration.
    ///
    /// # Errors
    /// The first [`ConfigError`] found, naming the variable.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            log: LogSettings::from_source(src)?,
            streams: StreamSettings::from_source(src)?,
            api: ApiSettings::from_source(src)?,
            fetcher: FetcherSettings::from_source(src)?,
            metrics: MetricsSettings::from_source(src, Role::Fetcher)?,
        })
    }
}

/// What the recipe runner needs: the browser pool, the mailbox, image downloads and TOTP. The executor
/// and `recipe-check` read the same.
#[derive(Debug, Clone)]
pub struct RecipeSettings {
    /// Browser pool and recipe runner.
    pub browser: BrowserSettings,
    /// IMAP for verification mail (recipes' `wait_mail`).
    pub mail: MailSettings,
    /// `image_url` download limits (recipes' `upload_image`).
    pub image: ImageSettings,
    /// TOTP code use (recipes' `totp`).
    pub totp: TotpSettings,
}

impl RecipeSettings {
    /// Parses the browser, mail, image and TOTP sections.
    ///
    /// # Errors
    /// The first [`ConfigError`] found, naming the variable.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            browser: BrowserSettings::from_source(src)?,
            mail: MailSettings::from_source(src)?,
            image: ImageSettings::from_source(src)?,
            totp: TotpSettings::from_source(src)?,
        })
    }
}

/// Everything the executor binary needs.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Logging.
    pub log: LogSettings,
    /// Redis streams.
    pub streams: StreamSettings,
    /// Manager API.
    pub api: ApiSettings,
    /// Task processing.
    pub executor: ExecutorSettings,
    /// Metrics endpoint.
    pub metrics: MetricsSettings,
    /// Browser, mail, image and TOTP settings of the recipe drivers.
    pub recipe: RecipeSettings,
    /// Paused domains, the circuit breaker and drain requests.
    pub control: super::ControlSettings,
}

impl ExecutorConfig {
    /// Parses and validates the executor's configuration.
    ///
    /// # Errors
    /// The first [`ConfigError`] found, naming the variable.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let c = Self {
            log: LogSettings::from_source(src)?,
            streams: StreamSettings::from_source(src)?,
            api: ApiSettings::from_source(src)?,
            executor: ExecutorSettings::from_source(src)?,
            metrics: MetricsSettings::from_source(src, Role::Executor)?,
            recipe: RecipeSettings::from_source(src)?,
            control: super::ControlSettings::from_source(src)?,
        };
        // The recipe must end first, so a timed-out run still saves its failure artifacts.
        if c.recipe.browser.recipe_timeout >= c.executor.task_timeout {
            return Err(ConfigError::Invalid {
                var: RECIPE_TIMEOUT_SECS.name,
                reason: format!("must be under {}", TASK_TIMEOUT_SECS.name),
            });
        }
        // A task may legitimately run this long without anything finishing.
        if c.metrics.stall_after <= c.executor.task_timeout {
            return Err(ConfigError::Invalid {
                var: HEALTH_STALL_SECS.name,
                reason: format!("must exceed {}", TASK_TIMEOUT_SECS.name),
            });
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OutboxKey;

    fn base() -> Source {
        Source::from_pairs([
            ("PW_API_KEY", "k-123-secret"),
            (
                "PW_OUTBOX_KEY",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            ),
        ])
    }

    #[test]
    fn defaults_parse_for_both_roles() {
        let e = ExecutorConfig::from_source(&base()).unwrap();
        assert_eq!(e.executor.concurrency.get(), 2);
        assert_eq!(e.streams.key_prefix, "{pw}");
        assert_eq!(e.executor.outbox_key.0[31], 31);
        let f = FetcherConfig::from_source(&base()).unwrap();
        assert!(f.fetcher.main_domains.contains(&"anchor.fm".to_owned()));
        assert_eq!(f.metrics.addr.port(), 9101);
    }

    #[test]
    fn errors_name_the_variable_and_hide_secrets() {
        let mut src = base();
        src.set("PW_FETCH_LIMIT", "0");
        let err = FetcherConfig::from_source(&src).unwrap_err().to_string();
        assert!(
            err.contains("PW_FETCH_LIMIT") && err.contains("between 1 and 1000"),
            "{err}"
        );

        let mut src = base();
        src.set("PW_OUTBOX_KEY", "short-secret-value");
        let err = ExecutorConfig::from_source(&src).unwrap_err().to_string();
        assert!(
            err.contains("PW_OUTBOX_KEY") && !err.contains("short-secret-value"),
            "{err}"
        );

        let err = FetcherConfig::from_source(&Source::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("PW_API_KEY is required"), "{err}");
    }

    #[test]
    fn contradictions_are_refused() {
        let mut src = base();
        src.set("PW_LEASE_RENEW_MS", "40000");
        let err = ExecutorConfig::from_source(&src).unwrap_err().to_string();
        assert!(err.contains("PW_LEASE_RENEW_MS"), "{err}");
        let mut src = base();
        src.set("PW_READ_BLOCK_MS", "5000");
        assert!(ExecutorConfig::from_source(&src).is_err());
        let mut src = base();
        src.set("PW_HEALTH_STALL_SECS", "600");
        let err = ExecutorConfig::from_source(&src).unwrap_err().to_string();
        assert!(err.contains("PW_HEALTH_STALL_SECS"), "{err}");
        let mut src = base();
        src.set("PW_DOMAIN_LIMITS", "anchor.fm=0");
        assert!(
            ExecutorConfig::from_source(&src)
                .unwrap_err()
                .to_string()
                .contains("PW_DOMAIN_LIMITS")
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut src = base();
        src.set("PW_REDIS_URL", "redis://:pa55word@localhost:6379");
        let e = ExecutorConfig::from_source(&src).unwrap();
        let shown = format!("{e:?}");
        assert!(
            !shown.contains("k-123-secret")
                && !shown.contains("pa55word")
                && !shown.contains("AAEC"),
            "{shown}"
        );
    }

    #[test]
    fn outbox_key_accepts_hex_and_base64() {
        assert!(OutboxKey::decode(&"ab".repeat(32)).is_some());
        assert!(OutboxKey::decode("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").is_some());
        assert!(OutboxKey::decode("AAEC").is_none());
    }
}

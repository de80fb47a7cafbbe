//! The manager API client ([`ApiSettings`]), used by fetcher and executor.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::source::{ConfigError, Source, invalid};
use super::var::*;

vars! {
    /// Every manager API variable.
    API_VARS;
    API_BASE_URL: String = url().or("https://manager.likepion.com/api/v1/podcast_account"), [F, E], "Manager API base URL";
    API_KEY: SecretString = secret(), [F, E], "Manager API key (X-API-Key); or PW_API_KEY_FILE";
    API_TIMEOUT_MS: Duration = millis(1, WEEK_MS).or("15000"), [F, E], "Timeout of one manager API request";
    API_RETRIES: u64 = int(0, 20).or("4"), [F, E], "Retries of a transient manager API failure before giving up for now";
    API_BACKOFF_MS: Duration = millis(1, WEEK_MS).or("250"), [F, E], "First retry delay; doubles each retry, with full jitter";
    API_BACKOFF_MAX_MS: Duration = millis(1, WEEK_MS).or("10000"), [F, E], "Cap of one retry delay (also of Retry-After)";
}
use vars::*;

/// Manager API client settings.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Base URL, without a trailing slash.
    pub base_url: url::Url,
    /// `X-API-Key`.
    pub api_key: SecretString,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries of transient failures.
    pub retries: u32,
    /// First backoff delay.
    pub backoff: Duration,
    /// Backoff cap.
    pub backoff_max: Duration,
}

impl ApiSettings {
    /// Reads and checks the API variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let raw = src.get(&API_BASE_URL)?;
        let base_url = url::Url::parse(raw.trim_end_matches('/'))
            .map_err(|_| invalid(&API_BASE_URL, &raw, "an http(s) URL"))?;
        if !matches!(base_url.scheme(), "http" | "https") || !base_url.username().is_empty() {
            return Err(invalid(
                &API_BASE_URL,
                &raw,
                "an http(s) URL without credentials",
            ));
        }
        let api_key = src.get(&API_KEY)?;
        let key = api_key.expose_secret();
        if key.trim().is_empty() || key.chars().any(|c| c.is_control()) {
            return Err(ConfigError::Invalid {
                var: API_KEY.name,
                reason: "must be non-empty printable text".into(),
            });
        }
        Ok(Self {
            base_url,
            api_key,
            timeout: src.get(&API_TIMEOUT_MS)?,
            retries: src.get(&API_RETRIES)? as u32,
            backoff: src.get(&API_BACKOFF_MS)?,
            backoff_max: src.get(&API_BACKOFF_MAX_MS)?,
        })
    }
}

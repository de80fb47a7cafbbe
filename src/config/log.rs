//! Logging: the filter and the line format ([`LogSettings`]), read by every binary.

use super::source::{ConfigError, Source};
use super::var::*;

vars! {
    /// Every logging variable.
    LOG_VARS;
    LOG: String = text().or("info"), [F, E], "Log filter (tracing EnvFilter syntax), e.g. info or podcast_worker=debug";
    LOG_FORMAT: LogFormat = parsed().or("auto"), [F, E], "auto (pretty on a terminal, JSON otherwise), json or pretty";
}
use vars::*;

/// Log output settings.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// EnvFilter directive.
    pub filter: String,
    /// `auto`, `json` or `pretty`.
    pub format: LogFormat,
}

/// How log lines are written: telemetry's own type (it parses `auto`, `json`, `pretty`).
pub use crate::telemetry::LogFormat;

impl LogSettings {
    /// Reads `PW_LOG` and `PW_LOG_FORMAT`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            filter: src.get(&LOG)?,
            format: src.get(&LOG_FORMAT)?,
        })
    }
}

//! Logging: the filter and the line format ([`LogSettings`]), read by every binary.

use super::source::{ConfigError, Source};
use super::var::*;

vars! {
    /// Every logging variable.
    LOG_VARS;
    LOG: String = text().or("info"), [F, E, S], "Log filter (tracing EnvFilter syntax), e.g. info or podcast_worker=debug";
    LOG_FORMAT: LogFormat = parsed().or("auto"), [F, E, S], "auto (pretty on a terminal, JSON otherwise), json or pretty";
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

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Pretty on a terminal, JSON otherwise.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Pretty,
}

impl std::str::FromStr for LogFormat {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            _ => Err("auto, json or pretty"),
        }
    }
}

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

//! When a TOTP code may be used ([`TotpSettings`]).

use std::time::Duration;

use super::source::{ConfigError, Source};
use super::var::*;

vars! {
    /// Every TOTP variable (executor only).
    TOTP_VARS;
    TOTP_MIN_REMAINING_SECS: Duration = secs(0, 20).or("5"), [E], "A TOTP code with fewer seconds left in its window is not used; the next window is awaited";
}
use vars::*;

/// When a TOTP code may be used.
#[derive(Debug, Clone, Copy)]
pub struct TotpSettings {
    /// Least time left in a code's 30 s window for it to be used.
    pub min_remaining: Duration,
}

impl TotpSettings {
    /// Reads `PW_TOTP_MIN_REMAINING_SECS` (0..=20).
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            min_remaining: src.get(&TOTP_MIN_REMAINING_SECS)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_the_window_is_bounded() {
        let t = TotpSettings::from_source(&Source::default()).unwrap();
        assert_eq!(t.min_remaining, Duration::from_secs(5));
        let mut src = Source::default();
        src.set("PW_TOTP_MIN_REMAINING_SECS", "29");
        assert!(TotpSettings::from_source(&src).is_err());
    }
}

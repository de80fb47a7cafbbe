//! Fleet-wide control of work ([`CONTROL_VARS`], [`ControlSettings`]): how long a paused domain's tasks are
//! held, the per-domain circuit breaker's thresholds, and how often an executor reads pauses and drain
//! requests. The state itself lives in Redis (`control`); this is only how executors treat it.

use std::time::Duration;

use super::source::{ConfigError, Source};
use super::var::*;

vars! {
    /// Every fleet-control variable.
    CONTROL_VARS;
    PAUSE_HOLD_SECS: Duration = secs(1, 7 * 86_400).or("600"), [E], "How long a paused domain's task waits un-started before it fails with the pause's reason";
    BREAKER_THRESHOLD: u64 = int(0, 100_000).or("5"), [E], "Recipe/structure failures of one domain within PW_BREAKER_WINDOW_SECS that pause it (0 = no breaker)";
    BREAKER_WINDOW_SECS: Duration = secs(1, 7 * 86_400).or("600"), [E], "Window in which the circuit breaker counts a domain's recipe/structure failures";
    BREAKER_COOLDOWN_SECS: Duration = secs(1, 7 * 86_400).or("300"), [E], "How long a domain paused by the breaker waits before one probe task is let through";
    CONTROL_POLL_MS: Duration = millis(50, 60_000).or("1000"), [E], "How often an executor reads paused domains and drain requests from Redis";
}
use vars::*;

/// How an executor honours paused domains, the circuit breaker and drain requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlSettings {
    /// A paused domain's task waits un-started at most this long, then fails.
    pub pause_hold: Duration,
    /// Structural failures within `breaker_window` that open a domain's breaker; `0` turns it off.
    pub breaker_threshold: u32,
    /// Sliding window of the failure count.
    pub breaker_window: Duration,
    /// Time between the breaker opening and its probe task.
    pub breaker_cooldown: Duration,
    /// Interval of the executor's reading of the control state.
    pub poll: Duration,
}

impl Default for ControlSettings {
    fn default() -> Self {
        Self {
            pause_hold: Duration::from_secs(600),
            breaker_threshold: 5,
            breaker_window: Duration::from_secs(600),
            breaker_cooldown: Duration::from_secs(300),
            poll: Duration::from_secs(1),
        }
    }
}

impl ControlSettings {
    /// Reads and checks the control variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            pause_hold: src.get(&PAUSE_HOLD_SECS)?,
            breaker_threshold: src.get(&BREAKER_THRESHOLD)? as u32,
            breaker_window: src.get(&BREAKER_WINDOW_SECS)?,
            breaker_cooldown: src.get(&BREAKER_COOLDOWN_SECS)?,
            poll: src.get(&CONTROL_POLL_MS)?,
        })
    }
}

/// What the admin command (`pwctl`) reads: the fleet's Redis and key prefix like every role, the
/// fetcher's de-duplication TTL (a replayed dead letter is queued the fetcher's way), and the outbox key,
/// needed only to decrypt (`outbox show`, `outbox export`).
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Redis and the task streams.
    pub streams: super::StreamSettings,
    /// Expiry of a replayed task's de-duplication marker (`PW_INFLIGHT_TTL_SECS`).
    pub inflight_ttl: Duration,
    /// `PW_OUTBOX_KEY`, when set.
    pub outbox_key: Option<super::OutboxKey>,
}

impl AdminConfig {
    /// Reads `PW_REDIS_URL`, `PW_KEY_PREFIX` (and the stream variables, all defaulted),
    /// `PW_INFLIGHT_TTL_SECS` and the optional `PW_OUTBOX_KEY`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        use super::vars::{INFLIGHT_TTL_SECS, OUTBOX_KEY};
        let outbox_key = match src.secret(&OUTBOX_KEY)? {
            None => None,
            Some(key) => Some(
                super::OutboxKey::decode(secrecy::ExposeSecret::expose_secret(&key)).ok_or(
                    ConfigError::Invalid {
                        var: OUTBOX_KEY.name,
                        reason: "must be 32 bytes as base64 or 64 hex digits".into(),
                    },
                )?,
            ),
        };
        Ok(Self {
            streams: super::StreamSettings::from_source(src)?,
            inflight_ttl: src.get(&INFLIGHT_TTL_SECS)?,
            outbox_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_declared_defaults() {
        let parsed = ControlSettings::from_source(&Source::default()).unwrap();
        assert_eq!(parsed, ControlSettings::default());
    }

    #[test]
    fn admin_config_needs_no_outbox_key_but_checks_one_given() {
        let c = AdminConfig::from_source(&Source::default()).unwrap();
        assert!(c.outbox_key.is_none());
        assert_eq!(c.streams.key_prefix, "{pw}");
        let bad = Source::from_pairs([("PW_OUTBOX_KEY", "not-a-key-value")]);
        let err = AdminConfig::from_source(&bad).unwrap_err().to_string();
        assert!(
            err.contains("PW_OUTBOX_KEY") && !err.contains("not-a-key-value"),
            "{err}"
        );
    }

    #[test]
    fn out_of_range_values_name_the_variable() {
        let src = Source::from_pairs([("PW_CONTROL_POLL_MS", "5")]);
        let err = ControlSettings::from_source(&src).unwrap_err().to_string();
        assert!(err.contains("PW_CONTROL_POLL_MS"), "{err}");
        let src = Source::from_pairs([("PW_BREAKER_THRESHOLD", "0")]);
        assert_eq!(
            ControlSettings::from_source(&src)
                .unwrap()
                .breaker_threshold,
            0
        );
    }
}

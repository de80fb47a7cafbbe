//! Redis and the task streams ([`StreamSettings`]), shared by fetcher and executor.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::redis_url::RedisAddress;
use super::source::{ConfigError, Source, invalid};
use super::var::*;

vars! {
    /// Every Redis and stream variable.
    STREAM_VARS;
    REDIS_URL: SecretString = secret().or("redis://127.0.0.1:6379"), [F, E], "Redis URL; may carry a password; rediss:// for TLS; redis+sentinel://:PASSWORD@HOST1:PORT1,HOST2:PORT2/MASTER-NAME for Sentinel";
    KEY_PREFIX: String = text().or("{pw}"), [F, E], "Prefix of every Redis key, one {hash tag} (Redis Cluster is not supported)";
    STREAM_MAXLEN: u64 = int(100, 100_000_000).or("100000"), [F, E], "Approximate cap of each task stream (XADD MAXLEN ~)";
    CLAIM_IDLE_MS: Duration = millis(1, WEEK_MS).or("60000"), [F, E], "An entry idle this long belongs to a dead executor and is reclaimed";
    LEASE_RENEW_MS: Duration = millis(1, WEEK_MS).or("10000"), [E], "How often a live executor renews the entries it runs; under half of PW_CLAIM_IDLE_MS";
    MAX_DELIVERIES: u64 = int(1, 1000).or("5"), [E], "Deliveries after which an entry is dead-lettered";
    READ_BLOCK_MS: Duration = millis(1, WEEK_MS).or("2000"), [E], "XREADGROUP BLOCK time; at most 2000 so shutdown is noticed quickly";
}
use vars::*;

/// Redis connection and stream behaviour, shared by fetcher and executor.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Redis URL (may hold a password).
    pub redis_url: SecretString,
    /// Key prefix, e.g. `{pw}`.
    pub key_prefix: String,
    /// Approximate stream cap.
    pub maxlen: usize,
    /// Idle time after which an entry is reclaimed from its consumer.
    pub claim_idle: Duration,
    /// Lease renewal interval of running entries.
    pub lease_renew: Duration,
    /// Deliveries before dead-lettering.
    pub max_deliveries: u64,
    /// Blocking read time.
    pub read_block: Duration,
}

impl StreamSettings {
    /// Reads and checks the stream variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let redis_url = src.get(&REDIS_URL)?;
        RedisAddress::parse(redis_url.expose_secret()).map_err(|reason| ConfigError::Invalid {
            var: REDIS_URL.name,
            reason,
        })?;
        let key_prefix = src.get(&KEY_PREFIX)?;
        if key_prefix.chars().any(|c| c.is_whitespace()) {
            return Err(invalid(&KEY_PREFIX, &key_prefix, "a prefix without spaces"));
        }
        let s = Self {
            redis_url,
            key_prefix,
            maxlen: src.get(&STREAM_MAXLEN)? as usize,
            claim_idle: src.get(&CLAIM_IDLE_MS)?,
            lease_renew: src.get(&LEASE_RENEW_MS)?,
            max_deliveries: src.get(&MAX_DELIVERIES)?,
            read_block: src.get(&READ_BLOCK_MS)?,
        };
        if s.read_block > Duration::from_secs(2) {
            return Err(ConfigError::Invalid {
                var: READ_BLOCK_MS.name,
                reason: "must be at most 2000 so shutdown is noticed quickly".into(),
            });
        }
        if s.lease_renew * 2 >= s.claim_idle {
            return Err(ConfigError::Invalid {
                var: LEASE_RENEW_MS.name,
                reason: format!(
                    "must be under half of {} ({} ms), or live tasks get reclaimed",
                    CLAIM_IDLE_MS.name,
                    s.claim_idle.as_millis()
                ),
            });
        }
        Ok(s)
    }
}

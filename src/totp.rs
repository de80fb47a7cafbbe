//! TOTP second factors: a base32 secret as users paste it (lowercase, spaced, dashed, padded) is normalised,
//! 80-bit Google-style secrets are accepted, and codes are SHA1 / 6 digits / 30 s. [`TotpGenerator`] hands out
//! only codes with enough time left in their window and never the same time step twice for one secret: in
//! this process, and with a [`TotpLedger`] across every process sharing the Redis.
//! It does not submit codes anywhere; the recipe runner does.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder, Secret};

use crate::streams::{RedisConn, RedisTarget};

/// Length of one TOTP window, in seconds.
pub const STEP_SECS: u64 = 30;
/// Digits of a code.
pub(crate) const DIGITS: u8 = 6;
/// Shortest secret accepted, in bytes (80 bits, what Google Authenticator issues).
pub(crate) const MIN_SECRET_BYTES: usize = 10;

/// A secret that cannot be used. The message never contains the secret or any part of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// Not base32 after normalisation (or empty).
    #[error("the TOTP secret is not valid base32")]
    NotBase32,
    /// Decodes to fewer than `MIN_SECRET_BYTES` bytes.
    #[error("the TOTP secret is too short ({bits} bits; at least 80 needed)")]
    TooShort {
        /// Decoded length in bits.
        bits: usize,
    },
    /// The fleet-wide ledger (Redis) could not record the time step: retrying may work.
    #[error("cannot record the TOTP time step in Redis: {0}")]
    Ledger(String),
}

impl TotpError {
    /// Whether retrying cannot help (the secret itself is unusable).
    pub fn is_permanent(&self) -> bool {
        !matches!(self, TotpError::Ledger(_))
    }
}

/// How long a used time step stays recorded in Redis: past its own window and the one after it that many
/// providers still accept, so a code is never reused while it could still be valid.
pub const LEDGER_TTL_SECS: u64 = 4 * STEP_SECS;

/// Time steps tried in Redis before giving up (each taken by another process moves one window on).
const LEDGER_TRIES: u64 = 6;

/// The fleet-wide record of used TOTP time steps: `SET <prefix>:totp:<hash>:<step> 1 NX EX 120` claims a step
/// for a secret for every process sharing the Redis, so two executors (or two `recipe-check` runs, or a
/// main-site and a sub-site task of one account) never submit the same code. The key holds a SHA-256 of the
/// secret's key bytes, never the secret. Connects on first use.
#[derive(Clone)]
pub struct TotpLedger {
    target: RedisTarget,
    prefix: String,
    conn: Arc<tokio::sync::OnceCell<RedisConn>>,
}

impl std::fmt::Debug for TotpLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpLedger")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl TotpLedger {
    /// A ledger on the Redis at `url` (it may hold a password) under the key prefix `prefix`.
    ///
    /// # Errors
    /// [`TotpError::Ledger`] when the URL is unusable (the message does not repeat the URL).
    pub fn new(url: &SecretString, prefix: &str) -> Result<Self, TotpError> {
        let target = RedisTarget::parse(url).map_err(|e| TotpError::Ledger(e.to_string()))?;
        Ok(Self {
            target,
            prefix: prefix.to_owned(),
            conn: Arc::default(),
        })
    }

    /// The Redis key of `step` for the secret with key bytes `key`.
    pub fn key(&self, key: &[u8], step: u64) -> String {
        let digest = Sha256::new()
            .chain_update(b"podcast-worker totp v1\0")
            .chain_update(key)
            .finalize();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}:totp:{hex}:{step}", self.prefix)
    }

    /// Claims `step` for the secret: true when no process had claimed it.
    ///
    /// # Errors
    /// [`TotpError::Ledger`] when Redis cannot be reached.
    pub async fn claim(&self, key: &[u8], step: u64) -> Result<bool, TotpError> {
        let set = redis::cmd("SET")
            .arg(self.key(key, step))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(LEDGER_TTL_SECS)
            .clone();
        let set: Option<String> = self.query(set).await?;
        Ok(set.is_some())
    }

    /// Gives `step` back (a claimed code that was never typed), so another process may use that window.
    ///
    /// # Errors
    /// [`TotpError::Ledger`] when Redis cannot be reached.
    pub async fn release(&self, key: &[u8], step: u64) -> Result<(), TotpError> {
        let _: i64 = self
            .query(redis::cmd("DEL").arg(self.key(key, step)).clone())
            .await?;
        Ok(())
    }

    /// Runs `cmd` on the ledger's connection (made on first use).
    async fn query<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, TotpError> {
        let conn = self
            .conn
            .get_or_try_init(|| self.target.connect(Duration::from_secs(5)))
            .await
            .map_err(|e| TotpError::Ledger(e.to_string()))?;
        (cmd.query_async(&mut conn.clone()).await)
            .map_err(|e: redis::RedisError| TotpError::Ledger(format!("{:?}", e.kind())))
    }
}

/// Uppercases a base32 secret and removes spaces, dashes and `=` padding, as `Secret::try_from_base32` is strict.
pub(crate) fn normalise_secret(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Decodes a secret as users give it into its key bytes.
///
/// # Errors
/// [`TotpError::NotBase32`] or [`TotpError::TooShort`].
pub fn decode_secret(raw: &str) -> Result<Vec<u8>, TotpError> {
    let normalised = normalise_secret(raw);
    if normalised.is_empty() {
        return Err(TotpError::NotBase32);
    }
    let bytes = Secret::try_from_base32(&normalised)
        .map_err(|_| TotpError::NotBase32)?
        .as_bytes()
        .to_vec();
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(TotpError::TooShort {
            bits: bytes.len() * 8,
        });
    }
    Ok(bytes)
}

/// The code of `key` for the window containing `unix_secs`, with `digits` digits (6..=8), SHA1, 30 s steps.
pub(crate) fn code_with_key(key: &[u8], digits: u8, unix_secs: u64) -> String {
    // build_noncompliant: build() refuses secrets under 128 bits, but 80-bit secrets are common.
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(digits.clamp(6, 8))
        .with_step_duration(STEP_SECS)
        .with_secret(key.to_vec())
        .build_noncompliant()
        .generate(unix_secs)
        .to_string()
}

/// The 6-digit code of a base32 secret at a given Unix time.
///
/// # Errors
/// See [`decode_secret`].
pub fn code_at(secret: &SecretString, unix_secs: u64) -> Result<String, TotpError> {
    Ok(code_with_key(
        &decode_secret(secret.expose_secret())?,
        DIGITS,
        unix_secs,
    ))
}

/// The time source of a [`TotpGenerator`]: the system clock, or a controlled one in tests.
pub trait Clock: Send + Sync {
    /// Time since the Unix epoch.
    fn unix_time(&self) -> Duration;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn unix_time(&self) -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }
}

/// A code ready to be typed. `Debug` hides the code.
#[derive(Clone)]
pub struct TotpCode {
    /// The digits.
    pub code: String,
    /// Its time step (Unix time / 30).
    pub step: u64,
    /// Time left in its window when it was handed out.
    pub remaining: Duration,
}

impl std::fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpCode")
            .field("code", &"<redacted>")
            .field("step", &self.step)
            .field("remaining", &self.remaining)
            .finish()
    }
}

/// Hands out fresh codes, shared by every task of an executor (cheap to clone).
///
/// Per secret it remembers the last time step used, so the same code is never handed out twice, even to two
/// tasks running at once; a code with less than `min_remaining` left in its window is skipped for the next one.
/// Secrets are remembered only as a keyed hash.
#[derive(Clone)]
pub struct TotpGenerator {
    min_remaining: Duration,
    clock: Arc<dyn Clock>,
    hasher: std::collections::hash_map::RandomState,
    last_step: Arc<Mutex<HashMap<u64, u64>>>,
    ledger: Option<TotpLedger>,
}

impl std::fmt::Debug for TotpGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpGenerator")
            .field("min_remaining", &self.min_remaining)
            .field("ledger", &self.ledger)
            .finish_non_exhaustive()
    }
}

impl TotpGenerator {
    /// A generator on the system clock. `min_remaining` is capped at 20 s so a window always qualifies.
    pub fn new(min_remaining: Duration) -> Self {
        Self::with_clock(min_remaining, Arc::new(SystemClock))
    }

    /// A generator on a given clock (tests).
    pub fn with_clock(min_remaining: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            min_remaining: min_remaining.min(Duration::from_secs(20)),
            clock,
            hasher: Default::default(),
            last_step: Arc::default(),
            ledger: None,
        }
    }

    /// The same generator also claiming every time step in `ledger`, fleet-wide.
    pub fn with_ledger(mut self, ledger: TotpLedger) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// A code for `secret` that was never handed out before by this generator (nor, with a ledger, by any
    /// process sharing its Redis) and has at least `min_remaining` left; waits for a later window when
    /// needed (about one window per step already taken).
    ///
    /// # Errors
    /// [`TotpError`] when the secret is unusable, or the ledger unreachable or full of claims; the error never
    /// contains the secret.
    pub async fn fresh_code(&self, secret: &SecretString) -> Result<TotpCode, TotpError> {
        let key = decode_secret(secret.expose_secret())?;
        let mut step = self.reserve_step(&key, 0);
        if let Some(ledger) = &self.ledger {
            let mut tries = 1;
            while !ledger.claim(&key, step).await? {
                if tries == LEDGER_TRIES {
                    return Err(TotpError::Ledger(format!(
                        "{LEDGER_TRIES} time steps in a row were taken by other processes"
                    )));
                }
                tries += 1;
                step = self.reserve_step(&key, step + 1);
            }
        }
        let start = Duration::from_secs(step * STEP_SECS);
        let now = self.clock.unix_time();
        if start > now {
            tokio::time::sleep(start - now).await;
        }
        let now = self.clock.unix_time().max(start);
        let end = start + Duration::from_secs(STEP_SECS);
        Ok(TotpCode {
            code: code_with_key(&key, DIGITS, step * STEP_SECS),
            step,
            remaining: end.saturating_sub(now),
        })
    }

    /// Gives back the fleet-wide claim of `step` for `secret` when its code was never typed (the step failed
    /// before the field was filled), so other processes need not wait for the window after it. Best effort: a
    /// claim that cannot be released expires after [`LEDGER_TTL_SECS`]. This process still never uses the step
    /// again.
    pub async fn release(&self, secret: &SecretString, step: u64) {
        let (Some(ledger), Ok(key)) = (&self.ledger, decode_secret(secret.expose_secret())) else {
            return;
        };
        if let Err(error) = ledger.release(&key, step).await {
            tracing::debug!(%error, "TOTP claim not released; it expires");
        }
    }

    /// Picks and records the step to use (at least `at_least`): the current one if it has enough time left and
    /// is unused, else the first later unused one. Recorded before waiting, so concurrent callers get distinct
    /// steps.
    fn reserve_step(&self, key: &[u8], at_least: u64) -> u64 {
        let now = self.clock.unix_time();
        let current = now.as_secs() / STEP_SECS;
        let end = Duration::from_secs((current + 1) * STEP_SECS);
        let mut step = if end.saturating_sub(now) < self.min_remaining {
            current + 1
        } else {
            current
        }
        .max(at_least);
        let id = self.hasher.hash_one(key);
        let mut map = self
            .last_step
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(&last) = map.get(&id) {
            step = step.max(last + 1);
        }
        map.insert(id, step);
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock that follows tokio's (paused) time from a chosen Unix time.
    struct PausedClock {
        base: Duration,
        start: tokio::time::Instant,
    }

    impl Clock for PausedClock {
        fn unix_time(&self) -> Duration {
            self.base + self.start.elapsed()
        }
    }

    fn paused_at(unix: Duration) -> Arc<PausedClock> {
        Arc::new(PausedClock {
            base: unix,
            start: tokio::time::Instant::now(),
        })
    }

    const RFC_KEY: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors() {
        let rows = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (t, want) in rows {
            assert_eq!(code_with_key(RFC_KEY, 8, t), want, "t={t}");
        }
    }

    #[test]
    fn secrets_are_normalised() {
        // base32 of the RFC key, lowercased, spaced, dashed and padded.
        let messy = "gezd gnbv-gy3t qojq gezd gnbv gy3t qojq====";
        assert_eq!(decode_secret(messy).unwrap(), RFC_KEY);
        let code = code_at(&SecretString::from(messy), 59).unwrap();
        assert_eq!(code, "287082");
    }

    #[test]
    fn eighty_bit_secrets_are_accepted_and_short_ones_refused() {
        // 16 base32 characters = 80 bits.
        let google = "JBSW Y3DP EHPK 3PXP";
        assert_eq!(decode_secret(google).unwrap().len(), 10);
        assert_eq!(code_at(&SecretString::from(google), 59).unwrap().len(), 6);
        assert_eq!(
            decode_secret("JBSWY3DP"),
            Err(TotpError::TooShort { bits: 40 })
        );
    }

    #[test]
    fn errors_never_contain_the_secret() {
        for bad in ["not*base32!!", "", "AB"] {
            let err = decode_secret(bad).unwrap_err().to_string();
            assert!(bad.is_empty() || !err.contains(bad), "{err}");
        }
        let err = decode_secret("JBSWY3DP").unwrap_err().to_string();
        assert!(!err.contains("JBSWY3DP"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn code_near_the_end_of_its_window_is_skipped() {
        // 27 s into a window: 3 s left < 5 s, so the generator waits for the next window.
        let clock = paused_at(Duration::from_secs(30 * 1000 + 27));
        let generator = TotpGenerator::with_clock(Duration::from_secs(5), clock.clone());
        let secret = SecretString::from("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let code = generator.fresh_code(&secret).await.unwrap();
        assert_eq!(code.step, 1001);
        assert!(clock.unix_time() >= Duration::from_secs(30 * 1001));
        assert_eq!(code.code, code_with_key(RFC_KEY, 6, 30 * 1001));
        assert!(code.remaining >= Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn code_with_enough_time_left_is_used_at_once() {
        let clock = paused_at(Duration::from_secs(30 * 1000 + 10));
        let generator = TotpGenerator::with_clock(Duration::from_secs(5), clock.clone());
        let secret = SecretString::from("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let code = generator.fresh_code(&secret).await.unwrap();
        assert_eq!(code.step, 1000);
        assert_eq!(clock.unix_time(), Duration::from_secs(30 * 1000 + 10));
        assert_eq!(code.remaining, Duration::from_secs(20));
    }

    #[tokio::test(start_paused = true)]
    async fn same_code_is_never_handed_out_twice() {
        let clock = paused_at(Duration::from_secs(30 * 1000 + 1));
        let generator = TotpGenerator::with_clock(Duration::from_secs(5), clock.clone());
        // The same secret written two ways is one secret.
        let a = SecretString::from("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let b = SecretString::from("gezd gnbv gy3t qojq gezd gnbv gy3t qojq");
        let (first, second) = tokio::join!(generator.fresh_code(&a), generator.fresh_code(&b));
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_ne!(first.step, second.step);
        assert_ne!(first.code, second.code);
        let third = generator.fresh_code(&a).await.unwrap();
        assert_eq!(third.step, first.step.max(second.step) + 1);
        // Another secret is not held back by the first one's history.
        let other = generator
            .fresh_code(&SecretString::from("JBSWY3DPEHPK3PXP"))
            .await
            .unwrap();
        assert_eq!(other.step, clock.unix_time().as_secs() / STEP_SECS);
    }

    #[test]
    fn debug_hides_the_code() {
        let code = TotpCode {
            code: "123456".into(),
            step: 1,
            remaining: Duration::from_secs(9),
        };
        assert!(!format!("{code:?}").contains("123456"));
    }
}

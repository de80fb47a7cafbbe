//! Retries as data: which failures are retried, and after how long. Exponential backoff with full jitter,
//! capped; a 429's `Retry-After` (seconds or an HTTP date) is honoured when it fits under the cap.

use std::time::{Duration, SystemTime};

use rand::Rng;

use super::error::ApiError;

/// How the client retries transient failures of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so at most `retries + 1` requests per call).
    pub retries: u32,
    /// Ceiling of the first delay; each retry doubles it.
    pub base: Duration,
    /// No delay exceeds this; a `Retry-After` above it is handed to the caller instead of waited out.
    pub cap: Duration,
}

impl RetryPolicy {
    /// The predicate: only transient failures (5xx, timeouts, dropped connections, bad bodies, 429) are retried.
    pub(crate) fn should_retry(err: &ApiError) -> bool {
        err.is_transient()
    }

    /// Upper bound of the delay before retry number `retry` (0-based): `min(cap, base × 2^retry)`.
    pub(crate) fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before retry number `retry` after `err`, or `None` to give up and return `err` now:
    /// not transient, retries used up, or a `Retry-After` longer than the cap.
    pub(crate) fn next_delay(
        &self,
        err: &ApiError,
        retry: u32,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        if !Self::should_retry(err) || retry >= self.retries {
            return None;
        }
        match err {
            ApiError::RateLimited {
                retry_after: Some(after),
            } => (*after <= self.cap).then_some(*after),
            _ => Some(full_jitter(self.ceiling(retry), rng)),
        }
    }
}

/// A uniformly random delay in `[0, ceiling]` ("full jitter"), so retrying clients spread out.
pub fn full_jitter(ceiling: Duration, rng: &mut impl Rng) -> Duration {
    let max = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rng.random_range(0..=max))
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date (a date in the past means now).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task_api::TransientReason;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            retries: 4,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        }
    }

    fn server_error() -> ApiError {
        ApiError::transient(TransientReason::ServerError, Some(503))
    }

    #[test]
    fn ceiling_doubles_then_caps() {
        let p = policy();
        let ms: Vec<u128> = (0..6).map(|i| p.ceiling(i).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.ceiling(500), Duration::from_secs(1));
    }

    #[test]
    fn delays_are_jittered_within_the_ceiling_and_stop_after_retries() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = std::collections::HashSet::new();
        for retry in 0..4 {
            for _ in 0..50 {
                let d = p.next_delay(&server_error(), retry, &mut rng).unwrap();
                assert!(d <= p.ceiling(retry));
                seen.insert(d);
            }
        }
        assert!(seen.len() > 20, "no jitter: {seen:?}");
        assert_eq!(p.next_delay(&server_error(), 4, &mut rng), None);
        assert_eq!(p.next_delay(&ApiError::NotFound, 0, &mut rng), None);
        let rejected = ApiError::Rejected {
            status: 409,
            message: String::new(),
            retried: false,
        };
        assert_eq!(p.next_delay(&rejected, 0, &mut rng), None);
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(1);
        let limited = |s| ApiError::RateLimited {
            retry_after: Some(Duration::from_millis(s)),
        };
        assert_eq!(
            p.next_delay(&limited(700), 0, &mut rng),
            Some(Duration::from_millis(700))
        );
        assert_eq!(p.next_delay(&limited(5000), 0, &mut rng), None);
        let bare = ApiError::RateLimited { retry_after: None };
        assert!(p.next_delay(&bare, 3, &mut rng).unwrap() <= p.ceiling(3));
    }

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        // 1_445_412_480 is Wed, 21 Oct 2015 07:28:00 GMT.
        let later = "Wed, 21 Oct 2015 07:28:30 GMT";
        assert_eq!(parse_retry_after(later, now), Some(Duration::from_secs(30)));
        let earlier = "Wed, 21 Oct 2015 07:27:00 GMT";
        assert_eq!(parse_retry_after(earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }
}

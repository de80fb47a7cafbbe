//! When the fetcher calls again: at once after a full page, soon while work flows, doubling to the maximum
//! while idle or failing, slowly (at least [`REFUSED_KEY_DELAY`]) while the API key is refused, and a third
//! of the lease while standing by.
//! Every delay is jittered so a fleet of fetchers does not poll in step. Pure: no clock, no I/O.

use std::time::Duration;

use rand::Rng;

use super::FetchOutcome;

/// The shortest delay between listings while the manager refuses the API key: a wrong key is not fixed in
/// seconds, so it is not asked about at the idle poll rate.
pub(crate) const REFUSED_KEY_DELAY: Duration = Duration::from_secs(15);

/// The adaptive poll delay.
#[derive(Debug, Clone)]
pub struct Pacer {
    min: Duration,
    max: Duration,
    standby: Duration,
    idle: Duration,
}

impl Pacer {
    /// Delays between `min` and `max`; a standby re-checks the lease every `standby`.
    pub fn new(min: Duration, max: Duration, standby: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            standby,
            idle: min,
        }
    }

    /// The delay before the next `fetch_once` after `outcome`.
    pub fn next(&mut self, outcome: &FetchOutcome, rng: &mut impl Rng) -> Duration {
        let base = match outcome {
            FetchOutcome::Enqueued {
                full_page: true, ..
            } => {
                self.idle = self.min;
                return Duration::ZERO;
            }
            FetchOutcome::Enqueued { .. } | FetchOutcome::Backpressure { .. } => {
                self.idle = self.min;
                self.min
            }
            FetchOutcome::Empty
            | FetchOutcome::ApiUnavailable
            | FetchOutcome::ApiRejected
            | FetchOutcome::RedisUnavailable => {
                let d = self.idle;
                self.idle = self.idle.saturating_mul(2).min(self.max);
                d
            }
            FetchOutcome::Unauthorized => self.max.max(REFUSED_KEY_DELAY),
            FetchOutcome::NotLeader => self.standby,
        };
        jitter(base, rng)
    }
}

/// A delay uniformly in `[¾·d, d]`: spread out, never longer than `d`.
fn jitter(d: Duration, rng: &mut impl Rng) -> Duration {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rng.random_range(ms - ms / 4..=ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn enqueued(full_page: bool) -> FetchOutcome {
        FetchOutcome::Enqueued {
            enqueued: 3,
            duplicates: 0,
            full_page,
        }
    }

    #[test]
    fn full_pages_go_at_once_and_idle_doubles_to_the_max() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut p = Pacer::new(ms(100), ms(1000), ms(300));
        assert_eq!(p.next(&enqueued(true), &mut rng), Duration::ZERO);
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            let d = p.next(&FetchOutcome::Empty, &mut rng);
            ceilings.push(d);
        }
        for (d, ceiling) in ceilings.iter().zip([100, 200, 400, 800, 1000, 1000]) {
            assert!(
                *d <= ms(ceiling) && *d >= ms(ceiling * 3 / 4),
                "{d:?} vs {ceiling}"
            );
        }
        // Work again: back to the short delay.
        assert!(p.next(&enqueued(false), &mut rng) <= ms(100));
        assert!(p.next(&FetchOutcome::Empty, &mut rng) <= ms(100));
    }

    #[test]
    fn refused_key_waits_long_and_standby_checks_the_lease() {
        let mut rng = StdRng::seed_from_u64(4);
        let mut p = Pacer::new(ms(100), ms(1000), ms(300));
        assert!(p.next(&FetchOutcome::Unauthorized, &mut rng) >= REFUSED_KEY_DELAY * 3 / 4);
        let mut slow = Pacer::new(ms(100), ms(60_000), ms(300));
        assert!(slow.next(&FetchOutcome::Unauthorized, &mut rng) >= ms(45_000));
        let standby = p.next(&FetchOutcome::NotLeader, &mut rng);
        assert!(standby <= ms(300) && standby >= ms(225));
        let bp = p.next(&FetchOutcome::Backpressure { backlog: 9 }, &mut rng);
        assert!(bp <= ms(100));
    }

    #[test]
    fn delays_are_jittered() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut p = Pacer::new(ms(1000), ms(1000), ms(300));
        let seen: std::collections::HashSet<_> = (0..30)
            .map(|_| p.next(&FetchOutcome::Empty, &mut rng))
            .collect();
        assert!(seen.len() > 10);
    }
}

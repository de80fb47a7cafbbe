//! Liveness and readiness state behind `/healthz` and `/readyz`. Components report progress, whether work
//! is waiting, and what they could reach; this module only judges. It knows nothing about HTTP.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// What is known about a dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// Not tried yet: not held against readiness.
    Unknown,
    /// The last attempt succeeded.
    Up,
    /// The last attempt failed.
    Down,
}

#[derive(Debug)]
struct State {
    last_progress: Instant,
    /// Since when every claim (or measure) against Redis has failed, if it has.
    redis_failing_since: Option<Instant>,
    waiting_since: Option<Instant>,
    redis: Reach,
    manager: Reach,
    api_key_refused: bool,
}

/// Progress and reachability of one process. Cheap to update from hot paths (one short mutex).
#[derive(Debug)]
pub struct Health {
    stall_after: Duration,
    state: Mutex<State>,
}

/// The answer of `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// Progress was made recently, or nothing is waiting.
    Healthy,
    /// Work has been waiting for `waiting` without any progress for at least the stall threshold.
    Stalled {
        /// Since when work has waited, or since the last progress, whichever is later.
        waiting: Duration,
    },
}

/// The answer of `/readyz`: ready when nothing is listed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Readiness {
    /// Short reasons, e.g. `redis unreachable`.
    pub problems: Vec<&'static str>,
}

impl Readiness {
    /// Whether the process can do its work.
    pub fn is_ready(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Health {
    /// A healthy state. `stall_after` must exceed the longest legitimate gap between two progress reports
    /// while work waits (for an executor: the task timeout plus the report time).
    pub fn new(stall_after: Duration) -> Self {
        Self {
            stall_after,
            state: Mutex::new(State {
                last_progress: Instant::now(),
                redis_failing_since: None,
                waiting_since: None,
                redis: Reach::Unknown,
                manager: Reach::Unknown,
                api_key_refused: false,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the plain-data state inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stall threshold.
    pub fn stall_after(&self) -> Duration {
        self.stall_after
    }

    /// Records progress: a task finished, a fetch cycle completed, an idle poll came back empty.
    pub(crate) fn record_progress(&self) {
        self.state().last_progress = Instant::now();
    }

    /// Records whether work is waiting for this process (backlog to fetch into, entries to claim, tasks
    /// running). The waiting clock starts at the first `true` after a `false`.
    pub(crate) fn set_work_waiting(&self, waiting: bool) {
        let mut s = self.state();
        match (waiting, s.waiting_since) {
            (true, None) => s.waiting_since = Some(Instant::now()),
            (false, _) => s.waiting_since = None,
            (true, Some(_)) => {}
        }
    }

    /// Records whether the process's main Redis work (an executor's claims) is failing. Failing for the
    /// stall threshold without a break makes the process unhealthy, so an orchestrator restarts a process
    /// wedged on Redis (the clock starts at the first `true` after a `false`).
    pub(crate) fn set_redis_failing(&self, failing: bool) {
        let mut s = self.state();
        match (failing, s.redis_failing_since) {
            (true, None) => s.redis_failing_since = Some(Instant::now()),
            (false, _) => s.redis_failing_since = None,
            (true, Some(_)) => {}
        }
    }

    /// Unhealthy when work has waited longer than the threshold and nothing progressed in that time, or
    /// when Redis work has failed for that long.
    pub(crate) fn liveness(&self) -> Liveness {
        let s = self.state();
        if let Some(since) = s.redis_failing_since {
            let failing = Instant::now().saturating_duration_since(since);
            if failing >= self.stall_after {
                return Liveness::Stalled { waiting: failing };
            }
        }
        let Some(since) = s.waiting_since else {
            return Liveness::Healthy;
        };
        let waiting = Instant::now().saturating_duration_since(since.max(s.last_progress));
        if waiting >= self.stall_after {
            Liveness::Stalled { waiting }
        } else {
            Liveness::Healthy
        }
    }

    pub(super) fn set_redis(&self, up: bool) {
        self.state().redis = if up { Reach::Up } else { Reach::Down };
    }

    pub(super) fn set_manager(&self, up: bool) {
        self.state().manager = if up { Reach::Up } else { Reach::Down };
    }

    pub(super) fn set_api_key_refused(&self, refused: bool) {
        self.state().api_key_refused = refused;
    }

    /// Not ready while Redis or the manager is known unreachable, or the manager refused the API key.
    pub fn readiness(&self) -> Readiness {
        let s = self.state();
        let mut problems = Vec::new();
        if s.redis == Reach::Down {
            problems.push("redis unreachable");
        }
        if s.manager == Reach::Down {
            problems.push("manager unreachable");
        }
        if s.api_key_refused {
            problems.push("api key refused");
        }
        Readiness { problems }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn idle_process_stays_healthy_however_long() {
        let h = Health::new(STALL);
        tokio::time::advance(STALL * 10).await;
        assert_eq!(h.liveness(), Liveness::Healthy);
        h.set_work_waiting(false);
        tokio::time::advance(STALL * 10).await;
        assert_eq!(h.liveness(), Liveness::Healthy);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_work_without_progress_becomes_unhealthy_after_the_threshold() {
        let h = Health::new(STALL);
        tokio::time::advance(STALL * 3).await;
        h.set_work_waiting(true);
        tokio::time::advance(STALL - Duration::from_secs(1)).await;
        assert_eq!(h.liveness(), Liveness::Healthy);
        h.set_work_waiting(true); // repeating does not restart the clock
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            h.liveness(),
            Liveness::Stalled {
                waiting: STALL + Duration::from_secs(1)
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn progress_while_work_waits_keeps_it_healthy_and_recovers_it() {
        let h = Health::new(STALL);
        h.set_work_waiting(true);
        for _ in 0..10 {
            tokio::time::advance(STALL / 2).await;
            h.record_progress();
            assert_eq!(h.liveness(), Liveness::Healthy);
        }
        tokio::time::advance(STALL * 2).await;
        assert!(matches!(h.liveness(), Liveness::Stalled { .. }));
        h.record_progress();
        assert_eq!(h.liveness(), Liveness::Healthy);
        tokio::time::advance(STALL * 2).await;
        h.set_work_waiting(false);
        assert_eq!(h.liveness(), Liveness::Healthy);
    }

    #[tokio::test(start_paused = true)]
    async fn redis_failing_for_the_threshold_is_unhealthy_until_it_works_again() {
        let h = Health::new(STALL);
        h.set_redis_failing(true);
        tokio::time::advance(STALL - Duration::from_secs(1)).await;
        h.set_redis_failing(true); // repeating does not restart the clock
        assert_eq!(h.liveness(), Liveness::Healthy);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(matches!(h.liveness(), Liveness::Stalled { .. }));
        h.set_redis_failing(false);
        assert_eq!(h.liveness(), Liveness::Healthy);
        h.set_redis_failing(true);
        tokio::time::advance(STALL / 2).await;
        assert_eq!(h.liveness(), Liveness::Healthy, "the clock restarted");
    }

    #[test]
    fn readiness_fails_only_on_known_problems() {
        let h = Health::new(STALL);
        assert!(h.readiness().is_ready());
        h.set_redis(false);
        h.set_api_key_refused(true);
        assert_eq!(
            h.readiness().problems,
            vec!["redis unreachable", "api key refused"]
        );
        h.set_redis(true);
        h.set_api_key_refused(false);
        h.set_manager(false);
        assert_eq!(h.readiness().problems, vec!["manager unreachable"]);
        h.set_manager(true);
        assert!(h.readiness().is_ready());
    }
}

//! One decodable entry's run, top to bottom (DESIGN.md "Executor, per task", steps 3–8): resume from the
//! outbox, a paused domain's expiry, load, validate, the domain slot, start, the driver's attempts, and the
//! report. [`TaskRun::run`] reads in that order; each fate is decided in one place. The run holds its task's
//! run lease ([`Fence`]) throughout: a run whose lease another executor took stops at its next await.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::failure::{Failure, driver_error_class};
use super::validate::{validate_registration, validate_task};
use super::{Inner, Outcome};
use crate::driver::{Driver, DriverError, FailureKind};
use crate::metrics::{Outcome as Finished, Stage};
use crate::outbox::{OutboxError, OutboxRecord, Report, now_ms};
use crate::streams::consumer::Claimed;
use crate::streams::fence::Fence;
use crate::task::{QueueEntry, Registration, Task, truncate_chars};
use crate::task_api::ApiError;

/// API.md: `error_message` is at most 1000 characters.
const ERROR_MESSAGE_MAX: usize = 1000;

/// One claimed, decodable entry whose task's run lease we hold, on its way to one fate.
pub(super) struct TaskRun<'a> {
    pub(super) inner: &'a Inner,
    pub(super) claimed: &'a Claimed,
    pub(super) entry: &'a QueueEntry,
    /// Shutdown past its grace: the driver is abandoned.
    pub(super) stop: &'a CancellationToken,
    pub(super) fence: Fence,
}

impl TaskRun<'_> {
    /// Steps 3–8.
    pub(super) async fn run(&self) -> Outcome {
        if let Some(done) = self.resume_from_outbox().await {
            return done;
        }
        if let Some(paused) = self.inner.gate.take_expired(self.entry.id.as_str()) {
            return self.start_and_fail(paused).await;
        }
        let t0 = Instant::now();
        let task = match self.inner.api.get(&self.entry.id).await {
            Ok(task) => task,
            Err(e) => return self.on_load_error(&e).await,
        };
        self.inner
            .metrics
            .stage_duration(self.entry.site, Stage::Load, t0.elapsed());
        let driver = match validate_task(&task, self.entry, &self.inner.drivers) {
            Ok(driver) => driver,
            Err(msg) => return self.start_and_fail(msg).await,
        };
        let Some(_domain_permit) = self.domain_permit().await else {
            return self.leave();
        };
        if self.fence.is_stolen() {
            tracing::warn!("run lease lost before the start; the other holder runs the task");
            return self.leave();
        }
        let t0 = Instant::now();
        if let Err(e) = self.inner.api.start(&self.entry.id).await {
            return self.on_start_error(&e).await;
        }
        let site = self.entry.site;
        self.inner
            .metrics
            .stage_duration(site, Stage::Start, t0.elapsed());
        let waited = now_ms().saturating_sub(self.entry.fetched_at_ms);
        self.inner
            .metrics
            .fetch_to_start(site, Duration::from_millis(waited));
        self.register_and_report(driver.as_ref(), &task).await
    }

    /// Step 3: a result already waiting in the outbox is reported instead of running anything.
    /// `None` when there is none and the task must run.
    async fn resume_from_outbox(&self) -> Option<Outcome> {
        match self.inner.outbox.get(&self.entry.id).await {
            Ok(Some(record)) => Some(self.inner.resume(self.claimed, record).await),
            Ok(None) => None,
            Err(e @ OutboxError::Tampered { .. }) => {
                tracing::error!(error = %e, "refusing a tampered outbox record");
                let reason = "outbox record failed authentication";
                Some(self.inner.dead_letter(self.claimed, reason).await)
            }
            Err(e) => {
                tracing::warn!(error = %e, "outbox unreadable; the entry will be delivered again");
                Some(self.leave())
            }
        }
    }

    /// Steps 6–8 after `start`: the driver's attempts, then the report of their result.
    async fn register_and_report(&self, driver: &dyn Driver, task: &Task) -> Outcome {
        let t0 = Instant::now();
        let Some((result, attempts)) = self.attempts(driver, task).await else {
            if self.fence.is_stolen() {
                tracing::warn!(
                    "run lease lost (this executor stalled past claim-idle): the run stopped; the executor \
                     now holding the lease runs the task"
                );
            } else {
                tracing::warn!("shutdown: abandoning the running task; its entry stays un-acked");
            }
            return self.leave();
        };
        let entry = self.entry;
        self.inner
            .metrics
            .stage_duration(entry.site, Stage::Register, t0.elapsed());
        self.inner
            .gate
            .finished(&entry.domain, entry.id.as_str(), result.as_ref().map(drop))
            .await;
        let record = match result {
            Ok(reg) => self.record(Report::Complete(reg), attempts),
            Err(e) => {
                let mut record = self.fail_record(e.to_string(), attempts);
                if let Report::Fail { note, .. } = &mut record.report {
                    note.clone_from(&e.note);
                }
                record
            }
        };
        self.inner.deliver(record, Some(self.claimed)).await
    }

    /// The fates a manager API failure before the driver ran shares between loading and starting
    /// (`Outcome::Gone` is the caller's to carry out); `Err(reason)` for a permanent refusal, which the
    /// caller decides.
    fn common_api_fate(&self, err: &ApiError) -> Result<Outcome, String> {
        match Failure::from(err) {
            Failure::Gone => Ok(Outcome::Gone),
            Failure::Retry { after } => {
                tracing::warn!(error = %err, retry_after = ?after, "manager unavailable; the entry will be delivered again");
                Ok(self.leave())
            }
            Failure::Halt => {
                self.inner.halt();
                self.leave();
                Ok(Outcome::Halted)
            }
            Failure::Permanent { reason } => Err(reason),
        }
    }

    /// Loading the task failed: gone, retry later, halt, or (refused) start and fail it.
    async fn on_load_error(&self, err: &ApiError) -> Outcome {
        match self.common_api_fate(err) {
            Ok(Outcome::Gone) => self.drop_gone().await,
            Ok(outcome) => outcome,
            Err(reason) => self.start_and_fail(reason).await,
        }
    }

    /// `start` failed: gone, retry later, halt, or (refused) dropped without a report.
    async fn on_start_error(&self, err: &ApiError) -> Outcome {
        match self.common_api_fate(err) {
            Ok(Outcome::Gone) => self.drop_gone().await,
            Ok(outcome) => outcome,
            Err(reason) => {
                tracing::error!(reason, "the manager refused to start the task; dropping it");
                self.finish_without_report(Finished::Refused, Outcome::Refused)
                    .await
            }
        }
    }

    async fn drop_gone(&self) -> Outcome {
        tracing::info!("the manager no longer has this task; dropping it");
        self.finish_without_report(Finished::Gone, Outcome::Gone)
            .await
    }

    /// Acks the entry and releases its id (the task is no business of ours any more).
    async fn finish_without_report(&self, how: Finished, outcome: Outcome) -> Outcome {
        let entry = self.entry;
        if let Err(e) = self.inner.consumer.ack(self.claimed, Some(&entry.id)).await {
            tracing::warn!(error = %e, "ack failed; the entry will be delivered again");
            return self.leave();
        }
        let claimed_for = Some(self.claimed.claimed_at.elapsed());
        self.inner
            .metrics
            .task_finished(entry.site, &entry.domain, how, claimed_for);
        outcome
    }

    /// Step 5's "invalid": `start`, then `fail` with `msg`.
    async fn start_and_fail(&self, msg: String) -> Outcome {
        tracing::warn!(reason = %msg, "task cannot be run; failing it");
        if let Err(e) = self.inner.api.start(&self.entry.id).await {
            match self.common_api_fate(&e) {
                Err(_) => {} // refused, e.g. already running: fail anyway
                Ok(Outcome::Gone) => return self.drop_gone().await,
                Ok(outcome) => return outcome,
            }
        }
        let record = self.fail_record(msg, 0);
        self.inner.deliver(record, Some(self.claimed)).await
    }

    /// Waits for the domain's slot, if it has a limit. `None` when `stop` fired first.
    async fn domain_permit(&self) -> Option<Option<OwnedSemaphorePermit>> {
        let Some(sem) = self.inner.domain_slots.get(self.entry.domain.as_str()) else {
            return Some(None);
        };
        match self
            .stop
            .run_until_cancelled(Arc::clone(sem).acquire_owned())
            .await
        {
            Some(Ok(permit)) => Some(Some(permit)),
            _ => None,
        }
    }

    /// Runs `fut` until it ends, shutdown past its grace, or another executor takes the run lease. `None`
    /// when the run must stop.
    async fn unless_stopped<F: std::future::Future>(&self, fut: F) -> Option<F::Output> {
        tokio::select! {
            out = fut => Some(out),
            () = self.stop.cancelled() => None,
            () = self.fence.stolen().cancelled() => None,
        }
    }

    /// Runs the driver up to `task_attempts` times (transient failures only), each under the task timeout,
    /// with doubling backoff between attempts. `None` when the run must stop. The driver is told the attempt
    /// number counting an earlier run too (`Outbox::begin_run`): a reclaimed entry may have been run, up to
    /// some step, by an executor that died, and a task run before may be the manager's retry after our
    /// `fail`; either run may have created the account, and the driver may resume
    /// ([`Driver::register_attempt`]).
    async fn attempts(
        &self,
        driver: &dyn Driver,
        task: &Task,
    ) -> Option<(Result<Registration, DriverError>, u32)> {
        let cfg = &self.inner.cfg;
        let limit = cfg.task_attempts.max(1);
        let earlier = match self.inner.outbox.begin_run(&task.id).await {
            Ok(tried) => u32::from(tried),
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell whether this task ran before; assuming not");
                0
            }
        };
        for attempt in 1..=limit {
            let run = tokio::time::timeout(
                cfg.task_timeout,
                driver.register_attempt(task, attempt.saturating_add(earlier)),
            );
            let transient = match self.unless_stopped(run).await? {
                Ok(Ok(reg)) => {
                    let checked = validate_registration(&reg, self.entry.site)
                        .map(|()| reg)
                        .map_err(|m| DriverError::new(FailureKind::Input, false, m));
                    return Some((checked, attempt));
                }
                Ok(Err(e)) => match Failure::from(&e) {
                    Failure::Retry { .. } => e,
                    _ => return Some((Err(e), attempt)),
                },
                Err(_) => DriverError::new(
                    FailureKind::Timeout,
                    true,
                    format!(
                        "attempt timed out after {} s",
                        cfg.task_timeout.as_secs_f32()
                    ),
                ),
            };
            if attempt == limit {
                return Some((Err(transient), attempt));
            }
            self.inner
                .metrics
                .task_retry(self.entry.site, driver_error_class(&transient));
            let delay = cfg.task_backoff * 2u32.saturating_pow(attempt - 1);
            tracing::warn!(attempt, error = %transient, delay_ms = delay.as_millis() as u64, "attempt failed; retrying");
            self.unless_stopped(tokio::time::sleep(delay)).await?;
        }
        None
    }

    fn record(&self, report: Report, attempts: u32) -> OutboxRecord {
        record(self.claimed, self.entry, report, attempts)
    }

    fn fail_record(&self, msg: String, attempts: u32) -> OutboxRecord {
        fail_record(self.claimed, self.entry, msg, attempts)
    }

    /// Leaves the entry for a later delivery: un-acked, no longer renewed, delivered again after claim-idle.
    fn leave(&self) -> Outcome {
        self.inner.leave(self.claimed)
    }
}

/// The outbox record of `entry`'s result.
pub(super) fn record(
    claimed: &Claimed,
    entry: &QueueEntry,
    report: Report,
    attempts: u32,
) -> OutboxRecord {
    OutboxRecord {
        task_id: entry.id.clone(),
        site: entry.site,
        entry_id: Some(claimed.entry_id.clone()),
        domain: entry.domain.to_string(),
        attempts,
        finished_at_ms: now_ms(),
        report,
    }
}

/// The outbox record of a `fail` with `msg` (cut to API.md's 1000 characters).
pub(super) fn fail_record(
    claimed: &Claimed,
    entry: &QueueEntry,
    msg: String,
    attempts: u32,
) -> OutboxRecord {
    let report = Report::Fail {
        error_message: truncate_chars(&msg, ERROR_MESSAGE_MAX),
        note: None,
    };
    record(claimed, entry, report, attempts)
}

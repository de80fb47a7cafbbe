//! One claimed entry, steps 2–8: dead-letter poison, resume from the outbox, load, validate, start, run
//! the driver with retries under a timeout, then hand the result to the report path. Every log line runs
//! inside a `task` span carrying `task_id`; no secret is ever logged.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

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

/// One started task on its way through the driver.
#[derive(Clone, Copy)]
struct Run<'a> {
    claimed: &'a Claimed,
    entry: &'a QueueEntry,
    task: &'a Task,
    stop: &'a CancellationToken,
    fence: &'a Fence,
}

/// Runs `fut` until it ends, `stop` fires (shutdown past its grace) or another executor takes the run
/// lease (`fence`). `None` when the run must stop.
async fn unless_stopped<F: std::future::Future>(
    stop: &CancellationToken,
    fence: &Fence,
    fut: F,
) -> Option<F::Output> {
    tokio::select! {
        out = fut => Some(out),
        () = stop.cancelled() => None,
        () = fence.stolen().cancelled() => None,
    }
}

impl Inner {
    /// Processes one claimed entry to its end. `stop` abandons a driver run (shutdown past its grace).
    pub(super) async fn handle(&self, claimed: Claimed, stop: &CancellationToken) -> Outcome {
        if let Some(reason) = claimed.poison_reason(self.max_deliveries) {
            let span = match claimed.task_id() {
                Some(id) => {
                    tracing::info_span!("task", task_id = %id, entry_id = %claimed.entry_id)
                }
                None => tracing::info_span!("task", task_id = "?", entry_id = %claimed.entry_id),
            };
            return self.poison(&claimed, &reason).instrument(span).await;
        }
        let Ok(entry) = claimed.entry.clone() else {
            return Outcome::Released; // poison_reason covers every undecodable entry
        };
        let span = tracing::info_span!("task", task_id = %entry.id, site = %entry.site, domain = %entry.domain);
        async {
            let fence = match self.consumer.fence(&claimed).await {
                Ok(Some(fence)) => fence,
                Ok(None) => {
                    tracing::info!("another executor holds this task's run lease; leaving the entry to it");
                    return self.release(&claimed);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take the run lease; the entry will be delivered again");
                    return self.release(&claimed);
                }
            };
            self.run_entry(&claimed, &entry, stop, &fence).await
        }
        .instrument(span)
        .await
    }

    /// Step 2: dead-letter; a decodable entry's task is started and failed so it ends with one report.
    async fn poison(&self, claimed: &Claimed, reason: &str) -> Outcome {
        tracing::warn!(
            reason,
            deliveries = claimed.deliveries,
            "dead-lettering entry"
        );
        let Ok(entry) = &claimed.entry else {
            return self.dead_letter(claimed, reason).await;
        };
        match self.outbox.get(&entry.id).await {
            // A finished result is waiting: the outbox loop reports it; do not fail the task.
            Ok(Some(_)) | Err(OutboxError::Tampered { .. }) => {}
            Ok(None) => {
                let msg = format!("could not be processed: {reason}");
                let record = self.fail_record(claimed, entry, msg, 0);
                let _ = self.api.start(&entry.id).await;
                self.deliver(record, None).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "outbox unreadable; dead-lettering without a report")
            }
        }
        self.dead_letter(claimed, reason).await
    }

    async fn dead_letter(&self, claimed: &Claimed, reason: &str) -> Outcome {
        match self.consumer.dead_letter(claimed, reason, None).await {
            Ok(()) => {
                let (site, domain) = match &claimed.entry {
                    Ok(e) => (e.site, e.domain.as_str()),
                    Err(_) => (claimed.site, ""),
                };
                let claimed_for = Some(claimed.claimed_at.elapsed());
                self.metrics
                    .task_finished(site, domain, Finished::DeadLettered, claimed_for);
                Outcome::DeadLettered
            }
            Err(e) => {
                tracing::warn!(error = %e, "dead-lettering failed; the entry stays pending");
                self.release(claimed)
            }
        }
    }

    /// Steps 3–8 for a decodable entry.
    async fn run_entry(
        &self,
        claimed: &Claimed,
        entry: &QueueEntry,
        stop: &CancellationToken,
        fence: &Fence,
    ) -> Outcome {
        if let Some(done) = self.check_outbox(claimed, entry).await {
            return done;
        }
        if let Some(paused) = self.gate.take_expired(entry.id.as_str()) {
            return self.start_and_fail(claimed, entry, paused).await;
        }
        let t0 = Instant::now();
        let task = match self.api.get(&entry.id).await {
            Ok(task) => task,
            Err(e) => return self.on_api_error(claimed, entry, &e, true).await,
        };
        self.metrics
            .stage_duration(entry.site, Stage::Load, t0.elapsed());
        let driver = match validate_task(&task, entry, &self.drivers) {
            Ok(driver) => driver,
            Err(msg) => return self.start_and_fail(claimed, entry, msg).await,
        };
        let Some(_domain_permit) = self.domain_permit(&entry.domain, stop).await else {
            return self.release(claimed);
        };
        if fence.is_stolen() {
            tracing::warn!("run lease lost before the start; the other holder runs the task");
            return self.release(claimed);
        }
        let t0 = Instant::now();
        if let Err(e) = self.api.start(&entry.id).await {
            return self.on_api_error(claimed, entry, &e, false).await;
        }
        self.metrics
            .stage_duration(entry.site, Stage::Start, t0.elapsed());
        let waited = now_ms().saturating_sub(entry.fetched_at_ms);
        self.metrics
            .fetch_to_start(entry.site, Duration::from_millis(waited));
        let run = Run {
            claimed,
            entry,
            task: &task,
            stop,
            fence,
        };
        self.register_and_report(driver.as_ref(), run).await
    }

    /// Step 3: a result already waiting in the outbox is reported instead of running anything.
    /// `None` when there is none and the task must run.
    async fn check_outbox(&self, claimed: &Claimed, entry: &QueueEntry) -> Option<Outcome> {
        match self.outbox.get(&entry.id).await {
            Ok(Some(record)) => Some(self.resume(claimed, record).await),
            Ok(None) => None,
            Err(e @ OutboxError::Tampered { .. }) => {
                tracing::error!(error = %e, "refusing a tampered outbox record");
                let reason = "outbox record failed authentication";
                Some(self.dead_letter(claimed, reason).await)
            }
            Err(e) => {
                tracing::warn!(error = %e, "outbox unreadable; releasing the entry");
                Some(self.release(claimed))
            }
        }
    }

    /// Steps 6–8 after `start`: the driver's attempts, then the report of their result.
    async fn register_and_report(&self, driver: &dyn Driver, run: Run<'_>) -> Outcome {
        let Run { claimed, entry, .. } = run;
        let t0 = Instant::now();
        let Some((result, attempts)) = self.attempts(driver, &run).await else {
            if run.fence.is_stolen() {
                tracing::warn!(
                    "run lease lost (this executor stalled past claim-idle): the run stopped; the executor \
                     now holding the lease runs the task"
                );
            } else {
                tracing::warn!("shutdown: abandoning the running task; its entry stays un-acked");
            }
            return self.release(claimed);
        };
        self.metrics
            .stage_duration(entry.site, Stage::Register, t0.elapsed());
        self.gate
            .finished(&entry.domain, entry.id.as_str(), result.as_ref().map(drop))
            .await;
        let record = match result {
            Ok(reg) => self.record(claimed, entry, Report::Complete(reg), attempts),
            Err(e) => {
                let mut record = self.fail_record(claimed, entry, e.to_string(), attempts);
                if let Report::Fail { note, .. } = &mut record.report {
                    note.clone_from(&e.note);
                }
                record
            }
        };
        self.deliver(record, Some(claimed)).await
    }

    /// Decides what a manager API failure before the driver ran means for the entry.
    async fn on_api_error(
        &self,
        claimed: &Claimed,
        entry: &QueueEntry,
        err: &ApiError,
        loading: bool,
    ) -> Outcome {
        match Failure::from(err) {
            Failure::Gone => {
                tracing::info!("the manager no longer has this task; dropping it");
                self.finish_without_report(claimed, entry, Finished::Gone)
                    .await
            }
            Failure::Retry { after } => {
                tracing::warn!(error = %err, retry_after = ?after, "manager unavailable; the entry will be delivered again");
                self.release(claimed)
            }
            Failure::Halt => {
                self.halt();
                self.release(claimed);
                Outcome::Halted
            }
            Failure::Permanent { reason } if loading => {
                self.start_and_fail(claimed, entry, reason).await
            }
            Failure::Permanent { reason } => {
                tracing::error!(reason, "the manager refused to start the task; dropping it");
                self.finish_without_report(claimed, entry, Finished::Refused)
                    .await;
                Outcome::Refused
            }
        }
    }

    /// Acks the entry and clears its inflight marker (the task is no business of ours any more).
    async fn finish_without_report(
        &self,
        claimed: &Claimed,
        entry: &QueueEntry,
        how: Finished,
    ) -> Outcome {
        if let Err(e) = self.consumer.ack(claimed, Some(&entry.id)).await {
            tracing::warn!(error = %e, "ack failed; the entry will be delivered again");
            return self.release(claimed);
        }
        let claimed_for = Some(claimed.claimed_at.elapsed());
        self.metrics
            .task_finished(entry.site, &entry.domain, how, claimed_for);
        Outcome::Gone
    }

    /// Step 5's "invalid": `start`, then `fail` with `msg`.
    async fn start_and_fail(&self, claimed: &Claimed, entry: &QueueEntry, msg: String) -> Outcome {
        tracing::warn!(reason = %msg, "task cannot be run; failing it");
        if let Err(e) = self.api.start(&entry.id).await {
            match Failure::from(&e) {
                Failure::Permanent { .. } => {} // e.g. already running: fail anyway
                Failure::Gone => {
                    return self
                        .finish_without_report(claimed, entry, Finished::Gone)
                        .await;
                }
                Failure::Retry { .. } => {
                    tracing::warn!(error = %e, "manager unavailable; the entry will be delivered again");
                    return self.release(claimed);
                }
                Failure::Halt => {
                    self.halt();
                    self.release(claimed);
                    return Outcome::Halted;
                }
            }
        }
        let record = self.fail_record(claimed, entry, msg, 0);
        self.deliver(record, Some(claimed)).await
    }

    /// Waits for the domain's slot, if it has a limit. `None` when `stop` fired first.
    async fn domain_permit(
        &self,
        domain: &str,
        stop: &CancellationToken,
    ) -> Option<Option<OwnedSemaphorePermit>> {
        let Some(sem) = self.domain_slots.get(domain) else {
            return Some(None);
        };
        match stop
            .run_until_cancelled(Arc::clone(sem).acquire_owned())
            .await
        {
            Some(Ok(permit)) => Some(Some(permit)),
            _ => None,
        }
    }

    /// Runs the driver up to `task_attempts` times (transient failures only), each under the task timeout,
    /// with doubling backoff between attempts. `None` when `stop` fired. The driver is told the attempt
    /// number counting an earlier run too (`Outbox::begin_run`): a reclaimed entry may have been run, up to
    /// some step, by an executor that died, and a task run before may be the manager's retry after our
    /// `fail`; either run may have created the account, and the driver may resume
    /// ([`Driver::register_attempt`]).
    async fn attempts(
        &self,
        driver: &dyn Driver,
        run: &Run<'_>,
    ) -> Option<(Result<Registration, DriverError>, u32)> {
        let Run {
            entry,
            task,
            stop,
            fence,
            ..
        } = *run;
        let limit = self.cfg.task_attempts.max(1);
        let earlier = match self.outbox.begin_run(&task.id).await {
            Ok(tried) => u32::from(tried),
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell whether this task ran before; assuming not");
                0
            }
        };
        for attempt in 1..=limit {
            let run = tokio::time::timeout(
                self.cfg.task_timeout,
                driver.register_attempt(task, attempt.saturating_add(earlier)),
            );
            let transient = match unless_stopped(stop, fence, run).await? {
                Ok(Ok(reg)) => {
                    let checked = validate_registration(&reg, entry.site)
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
                        self.cfg.task_timeout.as_secs_f32()
                    ),
                ),
            };
            if attempt == limit {
                return Some((Err(transient), attempt));
            }
            self.metrics
                .task_retry(entry.site, driver_error_class(&transient));
            let delay = self.cfg.task_backoff * 2u32.saturating_pow(attempt - 1);
            tracing::warn!(attempt, error = %transient, delay_ms = delay.as_millis() as u64, "attempt failed; retrying");
            unless_stopped(stop, fence, tokio::time::sleep(delay)).await?;
        }
        None
    }

    fn record(
        &self,
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

    fn fail_record(
        &self,
        claimed: &Claimed,
        entry: &QueueEntry,
        msg: String,
        attempts: u32,
    ) -> OutboxRecord {
        let report = Report::Fail {
            error_message: truncate_chars(&msg, ERROR_MESSAGE_MAX),
            note: None,
        };
        self.record(claimed, entry, report, attempts)
    }

    /// Leaves the entry un-acked and stops renewing it: it is delivered again after claim-idle.
    pub(super) fn release(&self, claimed: &Claimed) -> Outcome {
        self.consumer.abandon(claimed);
        Outcome::Released
    }
}

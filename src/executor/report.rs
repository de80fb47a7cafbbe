//! Step 7/8's report path: the result goes to the encrypted outbox first, then `complete`/`fail`; the entry
//! is acked either way, and the outbox record stays until the manager accepted it. The outbox loop
//! re-reports waiting records. A per-task lock keeps two executors from sending the same report at once.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::failure::{Failure, ReportFate, error_class};
use super::{Inner, Outcome};
use crate::metrics::{Outcome as Finished, Stage};
use crate::outbox::{OutboxError, OutboxRecord, Report};
use crate::streams::consumer::Claimed;
use crate::task::TaskId;
use crate::task_api::ApiError;

/// Tries of the outbox steps of one report while Redis is unreachable, one second apart.
const OUTBOX_WRITE_TRIES: u32 = 30;

/// Runs `op` until it succeeds, `budget` tries (shared by the calls given the same budget, one second
/// apart) are spent, or `stop` fires (a drain past its grace: the wait ends at once); each failure is
/// logged as `what`. Returns the last error when it gave up.
async fn retry_outbox<T, F, Fut>(
    stop: &CancellationToken,
    budget: &mut u32,
    what: &str,
    mut op: F,
) -> Result<T, OutboxError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, OutboxError>>,
{
    loop {
        *budget = budget.saturating_sub(1);
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if *budget == 0 || stop.is_cancelled() => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, left = *budget, "{what} failed; retrying");
                stop.run_until_cancelled(tokio::time::sleep(Duration::from_secs(1)))
                    .await;
            }
        }
    }
}

impl Inner {
    /// Writes `record` to the outbox, reports it, and settles the entry (`claimed`, if any) by the answer.
    pub(super) async fn deliver(&self, record: OutboxRecord, claimed: Option<&Claimed>) -> Outcome {
        self.lock_and_write(&record).await;
        self.report_and_settle(record, claimed).await
    }

    /// Step 3: the entry's task already has a result waiting: report it instead of running anything.
    pub(super) async fn resume(&self, claimed: &Claimed, record: OutboxRecord) -> Outcome {
        tracing::info!("result found in the outbox; reporting it without running the task again");
        let owner = self.consumer.name().to_owned();
        match self
            .outbox
            .lock(&record.task_id, &owner, self.lock_ttl)
            .await
        {
            Ok(true) => self.report_and_settle(record, Some(claimed)).await,
            Ok(false) => {
                // Someone is reporting it right now; the record stays until they settle it.
                if let Err(e) = self.consumer.ack(claimed, None).await {
                    self.consumer.abandon(claimed);
                    tracing::warn!(error = %e, "ack failed; the entry will be delivered again");
                }
                Outcome::Deferred
            }
            Err(e) => {
                tracing::warn!(error = %e, "outbox lock unavailable; releasing the entry");
                self.leave(claimed)
            }
        }
    }

    /// Takes the report lock, then writes the record, both retried while Redis is unreachable (one budget of
    /// [`OUTBOX_WRITE_TRIES`] seconds): the outbox loop must never find the record unlocked while this report
    /// is under way (it would send it a second time). When the budget is spent the report goes out without a
    /// saved copy; with nothing in the outbox, nothing can be sent twice.
    async fn lock_and_write(&self, record: &OutboxRecord) {
        let owner = self.consumer.name();
        let mut budget = OUTBOX_WRITE_TRIES;
        let id = &record.task_id;
        // Ok(false) from the lock: another holder, which cannot be reporting a record not written yet.
        let lock = || self.outbox.lock(id, owner, self.lock_ttl);
        let saved = match retry_outbox(&self.stopping, &mut budget, "outbox lock", lock).await {
            Ok(_) => {
                retry_outbox(&self.stopping, &mut budget, "outbox write", || {
                    self.outbox.put(record)
                })
                .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = saved {
            tracing::error!(error = %e, "outbox unavailable; reporting without a saved result");
        }
    }

    async fn send(&self, record: &OutboxRecord) -> Result<(), ApiError> {
        // Late or repeated hand-outs of this id are told apart by what we are reporting: streams::handover.
        if let Err(e) = self.outbox.mark_reporting(record).await {
            tracing::warn!(error = %e, "cannot mark the report as under way");
        }
        match &record.report {
            Report::Complete(reg) => self.api.complete(&record.task_id, reg).await,
            Report::Fail {
                error_message,
                note,
            } => {
                self.api
                    .fail(&record.task_id, error_message, note.as_deref())
                    .await
            }
        }
    }

    /// Reports `record` (whose lock we hold) and settles entry, outbox and inflight by the answer.
    async fn report_and_settle(&self, record: OutboxRecord, claimed: Option<&Claimed>) -> Outcome {
        let t0 = Instant::now();
        let result = self.send(&record).await;
        let site = record.site;
        self.metrics
            .stage_duration(site, Stage::Report, t0.elapsed());
        let fate = ReportFate::of(&result);
        let settled = !matches!(fate, ReportFate::Later { .. });
        let mut released = false;
        if let Some(claimed) = claimed {
            let finished = settled.then_some(&record.task_id);
            match self.consumer.ack(claimed, finished).await {
                Ok(()) => released = settled,
                Err(e) => {
                    // Not renewed any more: settled below (`finish`), or delivered again after claim-idle
                    // and resumed from the outbox.
                    self.consumer.abandon(claimed);
                    tracing::warn!(error = %e, "ack failed; the entry will be delivered again and resume from the outbox");
                }
            }
        }
        // A settled ack already deleted the record and released the id (once: a second release would drop
        // the marker of a hand-out it queued again); only the report lock is left then. A settled record left
        // in the outbox would be reported again by the loop, so its removal is retried while Redis is down.
        let mut budget = if settled { OUTBOX_WRITE_TRIES } else { 1 };
        let cleanup = retry_outbox(&self.stopping, &mut budget, "outbox clean-up", || async {
            let owner = self.consumer.name();
            if settled && !released {
                self.outbox.finish(&record, owner).await
            } else {
                self.outbox.unlock(&record.task_id, owner).await.map(drop)
            }
        })
        .await;
        if let Err(e) = cleanup {
            tracing::warn!(error = %e, "outbox clean-up failed");
        }
        let claimed_for = claimed.map(|c| c.claimed_at.elapsed());
        self.account(&record, fate, result.err(), claimed_for)
    }

    /// Logs and counts a settled (or deferred) report.
    fn account(
        &self,
        record: &OutboxRecord,
        fate: ReportFate,
        err: Option<ApiError>,
        age: Option<Duration>,
    ) -> Outcome {
        let site = record.site;
        match (fate, &record.report) {
            (ReportFate::Accepted, Report::Complete(_)) => {
                tracing::info!(attempts = record.attempts, "registration reported complete");
                self.metrics
                    .task_finished(site, &record.domain, Finished::Completed, age);
                Outcome::Completed
            }
            (ReportFate::Accepted, Report::Fail { error_message, .. }) => {
                tracing::info!(attempts = record.attempts, error = %error_message, "task reported failed");
                self.metrics.task_failure(site, error_class(error_message));
                self.metrics
                    .task_finished(site, &record.domain, Finished::Failed, age);
                Outcome::Failed
            }
            (ReportFate::Later { halt }, _) => {
                let error = err.map(|e| e.to_string()).unwrap_or_default();
                tracing::warn!(%error, "report not accepted yet; the result waits in the outbox");
                if halt {
                    self.halt();
                }
                Outcome::Deferred
            }
            (ReportFate::Dropped { reason }, _) => {
                tracing::error!(%reason, "the manager refused the report; result dropped");
                let how = match err.as_ref().map(Failure::from) {
                    Some(Failure::Gone) => Finished::Gone,
                    _ => Finished::Refused,
                };
                self.metrics.task_finished(site, &record.domain, how, age);
                Outcome::Refused
            }
        }
    }

    /// One pass over the outbox: reports each waiting record whose lock is free. Returns how many settled.
    pub(super) async fn retry_outbox_once(&self) -> usize {
        let ids = match self.outbox.waiting().await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the outbox");
                return 0;
            }
        };
        self.metrics.set_outbox(ids.len() as u64);
        let owner = self.consumer.name().to_owned();
        let mut settled = 0;
        for id in ids {
            if self.halt_remaining().is_some() {
                break;
            }
            let span = tracing::info_span!("task", task_id = %id);
            match self.retry_one(&id, &owner).instrument(span).await {
                Some(true) => settled += 1,
                Some(false) => {}
                None => break,
            }
        }
        settled
    }

    /// Reports one waiting record if its lock is free. `Some(settled)`, or `None` when Redis is down.
    async fn retry_one(&self, id: &TaskId, owner: &str) -> Option<bool> {
        if !self.outbox.lock(id, owner, self.lock_ttl).await.ok()? {
            return Some(false);
        }
        match self.outbox.get(id).await {
            Ok(Some(record)) => {
                let outcome = self.report_and_settle(record, None).await;
                Some(outcome != Outcome::Deferred)
            }
            Ok(None) => {
                let _ = self.outbox.unlock(id, owner).await;
                Some(false)
            }
            Err(e @ OutboxError::Tampered { .. }) => {
                // Left locked until its TTL, so it is not retried at every pass.
                tracing::error!(error = %e, "outbox record refused; an operator must remove it");
                Some(false)
            }
            Err(OutboxError::Unavailable(_)) => None,
        }
    }

    /// Runs [`Inner::retry_outbox_once`] every `outbox_retry` until `cancel`.
    pub(super) async fn run_outbox_loop(&self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.cfg.outbox_retry);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while cancel.run_until_cancelled(tick.tick()).await.is_some() {
            self.retry_outbox_once().await;
        }
    }
}

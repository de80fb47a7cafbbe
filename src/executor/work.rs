//! One claimed entry: poison (undecodable or over-delivered) is dead-lettered here (step 2); a decodable
//! entry takes its task's run lease and goes to [`TaskRun`] (steps 3–8). Every log line runs inside a `task`
//! span carrying `task_id`; no secret is ever logged.

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::run::{TaskRun, fail_record};
use super::{Inner, Outcome};
use crate::metrics::Outcome as Finished;
use crate::outbox::OutboxError;
use crate::streams::consumer::Claimed;

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
                    return self.leave(&claimed);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take the run lease; the entry will be delivered again");
                    return self.leave(&claimed);
                }
            };
            let run = TaskRun {
                inner: self,
                claimed: &claimed,
                entry: &entry,
                stop,
                fence,
            };
            run.run().await
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
                let record = fail_record(claimed, entry, msg, 0);
                let _ = self.api.start(&entry.id).await;
                self.deliver(record, None).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "outbox unreadable; dead-lettering without a report")
            }
        }
        self.dead_letter(claimed, reason).await
    }

    /// Moves the entry to the dead-letter stream (no report: the caller made it, or none can be made).
    pub(super) async fn dead_letter(&self, claimed: &Claimed, reason: &str) -> Outcome {
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
                self.leave(claimed)
            }
        }
    }

    /// Leaves the entry for a later delivery: un-acked and no longer renewed, it is delivered again after
    /// claim-idle.
    pub(super) fn leave(&self, claimed: &Claimed) -> Outcome {
        self.consumer.abandon(claimed);
        Outcome::Released
    }
}

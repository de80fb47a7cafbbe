//! The fence: a task never runs on two executors at once. Before a driver runs, the executor takes the
//! task's run lease (`<prefix>:run:<id>` = its consumer name, TTL claim-idle, `lua/fence.lua`); the lease
//! is renewed with the entries and the heartbeat (`lua/renew.lua`), and `lua/reclaim.lua` never takes an
//! entry whose task's lease another consumer holds. A run whose lease another consumer took (it was
//! frozen longer than claim-idle) is told through `Fence::stolen` and stops before its next step; a
//! result it already has is still kept in the outbox and reported.

use std::collections::HashSet;

use tokio_util::sync::CancellationToken;

use super::consumer::{Claimed, Consumer};
use super::{GROUP, StreamError, TaskKey, scripts};
use crate::task::Site;

/// The run lease of one claimed entry's task, taken.
#[derive(Debug, Clone)]
pub struct Fence {
    stolen: CancellationToken,
}

impl Fence {
    /// Cancelled when another consumer holds the run lease: this run must stop before its next step.
    pub(crate) fn stolen(&self) -> &CancellationToken {
        &self.stolen
    }

    /// Whether another consumer took the lease.
    pub fn is_stolen(&self) -> bool {
        self.stolen.is_cancelled()
    }
}

impl Consumer {
    /// Takes the run lease of `claimed`'s task for this consumer (or keeps it, if ours). `None` when
    /// another consumer holds it: its run may be alive, so this one must not run; the entry is left to it.
    ///
    /// # Errors
    /// [`StreamError`]; nothing was taken.
    pub async fn fence(&self, claimed: &Claimed) -> Result<Option<Fence>, StreamError> {
        let Some(task) = claimed.task_id() else {
            return Ok(None);
        };
        let taken: i64 = scripts::FENCE
            .key(self.keys.run(task))
            .arg(&self.name)
            .arg(self.settings.claim_idle.as_millis().max(1) as u64)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(StreamError::redis("run lease"))?;
        if taken != 1 {
            return Ok(None);
        }
        // A poisoned lock would need a panic while held, which nothing in it can do.
        let Ok(mut held) = self.held.lock() else {
            return Ok(None);
        };
        let Some(h) = held.get_mut(&(claimed.site, claimed.entry_id.clone())) else {
            return Ok(None);
        };
        h.fenced = Some(task.clone());
        Ok(Some(Fence {
            stolen: h.stolen.clone(),
        }))
    }

    /// One renewal (`renew.lua`): our heartbeat, the idle time of every entry we hold and still own, and
    /// the run leases of the tasks we run (re-taken if they vanished). Returns the entries whose run lease
    /// another consumer holds; their runs are told (`Fence::stolen`) and they are no longer renewed. An
    /// entry acked while this ran is not reported.
    ///
    /// # Errors
    /// [`StreamError`].
    pub async fn renew_leases(&self) -> Result<Vec<(Site, String)>, StreamError> {
        let renewed = self.renew_once().await;
        self.noted(renewed)
    }

    async fn renew_once(&self) -> Result<Vec<(Site, String)>, StreamError> {
        let held: Vec<(Site, String, String)> = match self.held.lock() {
            Ok(h) => h
                .iter()
                .map(|((site, id), h)| {
                    let task = h.fenced.as_ref().map_or("", |t| t.as_str()).to_owned();
                    (*site, id.clone(), task)
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        let mut inv = scripts::RENEW.prepare_invoke();
        inv.key(self.keys.tasks(Site::Main))
            .key(self.keys.tasks(Site::Sub))
            .key(self.keys.heartbeat(&self.name))
            .arg(GROUP)
            .arg(&self.name)
            .arg(self.settings.claim_idle.as_millis().max(1) as u64)
            .arg(crate::task::now_ms())
            .arg(self.keys.per_task_prefix(TaskKey::Run));
        for (site, id, task) in &held {
            let stream = if *site == Site::Main { 1 } else { 2 };
            inv.arg(stream).arg(id).arg(task);
        }
        let stolen: Vec<String> = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(StreamError::redis("lease renewal"))?;
        let stolen: HashSet<&String> = stolen.iter().collect();
        let mut lost = Vec::new();
        if let Ok(mut h) = self.held.lock() {
            for (site, id, _) in held.iter().filter(|(_, id, _)| stolen.contains(id)) {
                // Acked (and forgotten) while the script ran: not a loss.
                if let Some(entry) = h.remove(&(*site, id.clone())) {
                    entry.stolen.cancel();
                    lost.push((*site, id.clone()));
                }
            }
        }
        Ok(lost)
    }

    /// Renews every `lease_renew` until `cancel`; errors are logged and retried next tick.
    pub async fn run_lease_renewal(&self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.settings.lease_renew);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while cancel.run_until_cancelled(tick.tick()).await.is_some() {
            match self.renew_leases().await {
                Ok(lost) => {
                    for (site, id) in lost {
                        tracing::warn!(%site, entry_id = %id, "run lease lost: another executor holds this task's lease; the run stops");
                    }
                }
                Err(e) if e.is_group_missing() => {
                    tracing::debug!(error = %e, "lease renewal: group missing; the claim loop recreates it")
                }
                Err(e) => {
                    tracing::warn!(error = %e, code = e.code().unwrap_or(""), "lease renewal failed; will retry")
                }
            }
        }
    }
}

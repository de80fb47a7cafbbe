//! Reclaiming abandoned entries by the heartbeat rule (the module doc of [`super`]), and retiring
//! consumers: on a clean exit, and pruning those gone for a day.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::Value;

use super::{Claimed, Consumer};
use crate::streams::{ENTRY_FIELD, GROUP, StreamError, StreamKeys, TaskKey, scripts};
use crate::task::Site;

/// Reclaim scan state: one XPENDING cursor per stream, when the next pass is due, and what this process
/// knows about other consumers' heartbeats.
#[derive(Debug)]
pub(super) struct ReclaimState {
    cursors: [String; 2],
    next_due: Instant,
    /// Consumer → when this process first saw its heartbeat missing (forgotten when it is seen again).
    missing_since: HashMap<String, Instant>,
    /// When the next prune of long-gone consumers is due.
    prune_due: Instant,
}

impl ReclaimState {
    /// A first pass due at once, a prune in [`PRUNE_EVERY`].
    pub(super) fn new(now: Instant) -> Self {
        Self {
            cursors: ["-".into(), "-".into()],
            next_due: now,
            missing_since: HashMap::new(),
            prune_due: now + PRUNE_EVERY,
        }
    }
}

impl Consumer {
    pub(super) async fn reclaim_if_due(
        &self,
        max: usize,
    ) -> Result<Option<Vec<Claimed>>, StreamError> {
        let due = self.reclaim.lock().await.next_due <= Instant::now();
        if !due {
            return Ok(None);
        }
        self.reclaim(max).await.map(Some)
    }

    /// Reclaims entries idle for at least claim-idle whose owner is alive (it released them) or has been
    /// seen gone for a full claim-idle since Redis came back (module doc), main stream first, up to `max`.
    /// Entries whose task's run lease another consumer holds are left alone; entries deleted meanwhile
    /// leave the pending list.
    ///
    /// # Errors
    /// [`StreamError`].
    pub async fn reclaim(&self, max: usize) -> Result<Vec<Claimed>, StreamError> {
        let reclaimed = self.reclaim_inner(max).await;
        self.noted(reclaimed)
    }

    async fn reclaim_inner(&self, max: usize) -> Result<Vec<Claimed>, StreamError> {
        let mut state = self.reclaim.lock().await;
        let up_since = self
            .reach
            .lock()
            .map_or_else(|_| Instant::now(), |r| r.up_since);
        let mut out = Vec::new();
        let mut pass_done = true;
        for (i, site) in Site::ALL.into_iter().enumerate() {
            if out.len() >= max {
                pass_done = false;
                break;
            }
            let key = self.keys.tasks(site);
            let page = SCAN_PAGE.max(max);
            let idle: Vec<PendingEntry> = redis::cmd("XPENDING")
                .arg(&key)
                .arg(GROUP)
                .arg("IDLE")
                .arg(self.settings.claim_idle.as_millis() as u64)
                .arg(&state.cursors[i])
                .arg("+")
                .arg(page)
                .query_async(&mut self.conn.clone())
                .await
                .map_err(StreamError::redis("XPENDING"))?;
            state.cursors[i] = match idle.last() {
                Some(last) if idle.len() >= page => format!("({}", last.id),
                _ => "-".into(),
            };
            pass_done &= idle.len() < page;
            let gone = self.gone_owners(&mut state, &idle, up_since).await?;
            let candidates: Vec<&PendingEntry> = idle
                .iter()
                .filter(|p| !gone.get(&p.consumer).copied().unwrap_or(false))
                .take(max - out.len())
                .collect();
            if candidates.is_empty() {
                continue;
            }
            let mut inv = scripts::RECLAIM.prepare_invoke();
            inv.key(&key)
                .arg(GROUP)
                .arg(&self.name)
                .arg(self.settings.claim_idle.as_millis() as u64)
                .arg(self.keys.per_task_prefix(TaskKey::Run))
                .arg(ENTRY_FIELD);
            for c in &candidates {
                inv.arg(&c.id);
            }
            let claimed: redis::streams::StreamClaimReply = inv
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(StreamError::redis("reclaim"))?;
            let deliveries: HashMap<&str, u64> = candidates
                .iter()
                .map(|c| (c.id.as_str(), c.deliveries))
                .collect();
            for id in claimed.ids {
                let n = deliveries.get(id.id.as_str()).map_or(1, |d| d + 1);
                out.push(Claimed::from_stream_id(site, id, n, true));
            }
        }
        if pass_done {
            state.next_due = Instant::now() + self.reclaim_period();
        }
        if state.prune_due <= Instant::now() {
            state.prune_due = Instant::now() + PRUNE_EVERY;
            drop(state);
            self.prune().await;
        }
        self.hold(&out);
        Ok(out)
    }

    /// For each owner of `idle` entries other than us: true when its entries must stay where they are
    /// (heartbeat missing, but not yet for a full claim-idle since Redis came back), false when they may be
    /// reclaimed (alive and released them, or gone long enough).
    async fn gone_owners(
        &self,
        state: &mut ReclaimState,
        idle: &[PendingEntry],
        up_since: Instant,
    ) -> Result<HashMap<String, bool>, StreamError> {
        let mut owners: Vec<&str> = idle
            .iter()
            .map(|p| p.consumer.as_str())
            .filter(|c| *c != self.name)
            .collect();
        owners.sort_unstable();
        owners.dedup();
        let mut out = HashMap::new();
        if owners.is_empty() {
            return Ok(out);
        }
        let mut pipe = redis::pipe();
        for o in &owners {
            pipe.exists(self.keys.heartbeat(o));
        }
        let alive: Vec<bool> = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(StreamError::redis("EXISTS heartbeat"))?;
        let now = Instant::now();
        for (owner, alive) in owners.into_iter().zip(alive) {
            let wait = if alive {
                state.missing_since.remove(owner);
                false
            } else {
                let since = *state.missing_since.entry(owner.to_owned()).or_insert(now);
                now.saturating_duration_since(since.max(up_since)) < self.settings.claim_idle
            };
            out.insert(owner.to_owned(), wait);
        }
        Ok(out)
    }

    /// How often a consumer looks for abandoned entries: half claim-idle, between 50 ms and 5 s.
    pub(crate) fn reclaim_period(&self) -> Duration {
        (self.settings.claim_idle / 2).clamp(Duration::from_millis(50), Duration::from_secs(5))
    }

    /// Removes consumers gone for a day (idle in the group for [`PRUNE_AFTER`], no heartbeat) with nothing
    /// pending. Errors are logged: the next prune retries.
    async fn prune(&self) {
        for site in Site::ALL {
            let consumers: Result<redis::streams::StreamInfoConsumersReply, _> =
                redis::cmd("XINFO")
                    .arg("CONSUMERS")
                    .arg(self.keys.tasks(site))
                    .arg(GROUP)
                    .query_async(&mut self.conn.clone())
                    .await;
            let Ok(consumers) = consumers else { return };
            for c in consumers.consumers {
                let alive: bool = redis::AsyncCommands::exists(
                    &mut self.conn.clone(),
                    self.keys.heartbeat(&c.name),
                )
                .await
                .unwrap_or(true);
                if alive
                    || c.pending > 0
                    || c.name == self.name
                    || (c.idle as u128) < PRUNE_AFTER.as_millis()
                {
                    continue;
                }
                match retire(&mut self.conn.clone(), &self.keys, &c.name, PRUNE_AFTER).await {
                    Ok(true) => {
                        tracing::info!(consumer = %c.name, "pruned a consumer gone for a day")
                    }
                    Ok(false) => {}
                    Err(e) => tracing::debug!(error = %e, "consumer prune failed; retried later"),
                }
            }
        }
    }
}

/// A consumer gone (no heartbeat, idle in the group) this long with nothing pending is pruned.
pub const PRUNE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How often the reclaim pass looks for consumers to prune.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Idle entries read per XPENDING page of a reclaim pass.
const SCAN_PAGE: usize = 100;

/// Deletes consumer `name` from the group (and its heartbeat) when nothing is pending for it and it has been
/// idle at least `min_idle` on each stream (`retire.lua`, checked and done atomically). Returns whether it
/// is gone (true also when the group never knew it).
///
/// # Errors
/// [`StreamError`].
pub(crate) async fn retire<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    keys: &StreamKeys,
    name: &str,
    min_idle: Duration,
) -> Result<bool, StreamError> {
    let answer: String = scripts::RETIRE
        .key(keys.tasks(Site::Main))
        .key(keys.tasks(Site::Sub))
        .key(keys.heartbeat(name))
        .arg(GROUP)
        .arg(name)
        .arg(min_idle.as_millis() as u64)
        .invoke_async(conn)
        .await
        .map_err(StreamError::redis("retire consumer"))?;
    Ok(answer != "busy")
}

/// One row of `XPENDING key group IDLE ms start end count`: entry id, owner, idle ms, deliveries.
#[derive(Debug)]
pub(super) struct PendingEntry {
    pub(super) id: String,
    pub(super) consumer: String,
    pub(super) deliveries: u64,
}

impl redis::FromRedisValue for PendingEntry {
    fn from_redis_value(v: Value) -> Result<Self, redis::ParsingError> {
        let (id, consumer, _idle, deliveries): (String, String, u64, u64) =
            redis::FromRedisValue::from_redis_value(v)?;
        Ok(Self {
            id,
            consumer,
            deliveries,
        })
    }
}

//! The executor's side of the task streams: claim new entries (main before sub), reclaim abandoned ones,
//! renew the entries we hold with our heartbeat and run leases ([`super::fence`]), settle (ack, dead-letter)
//! and retire. It does not decide what to do with an entry: the executor does. Blocking reads use their own
//! connection.
//!
//! **Reclaim never mistakes "Redis was down" for "the owner died".** An entry idle for claim-idle is taken
//! from its consumer only when (a) the consumer's heartbeat (`<prefix>:consumer:<name>`, renewed with its
//! entries) exists — it is alive and released the entry — or (b) this reclaimer has seen the heartbeat
//! missing for a full claim-idle, counted from the later of when it first saw it missing and when Redis last
//! came back for this process. After an outage every live owner renews its heartbeat within
//! `PW_LEASE_RENEW_MS`, long before (b) can hold. And `reclaim.lua` skips an entry whose task's run lease
//! another consumer holds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::Value;
use redis::streams::{StreamId, StreamReadOptions, StreamReadReply};
use tokio_util::sync::CancellationToken;

use super::settle::{DeadFields, Released, Settle};
use super::{ENTRY_FIELD, GROUP, RedisConn, StreamError, StreamKeys, connect};
use crate::config::StreamSettings;
use crate::task::{QueueEntry, Site, TaskId};

/// Commands other than blocking reads must answer within this time.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// One entry claimed from a task stream. Until it is acked or dead-lettered it stays in our pending list
/// and its lease is renewed by [`Consumer::renew_leases`].
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The stream it came from.
    pub site: Site,
    /// The stream entry id (`<ms>-<seq>`).
    pub entry_id: String,
    /// How many times it was delivered, this delivery included (1 for a fresh entry).
    pub deliveries: u64,
    /// True when it came from XAUTOCLAIM (another consumer held it too long).
    pub reclaimed: bool,
    /// The raw `task` field, kept as is for the dead-letter stream (it holds no credentials).
    pub raw: Vec<u8>,
    /// The decoded entry, or why it cannot be decoded (a field path, never a value).
    pub entry: Result<QueueEntry, String>,
    /// When this process claimed it (the start of `pw_task_duration_seconds`).
    pub claimed_at: tokio::time::Instant,
}

impl Claimed {
    /// Why this entry must be dead-lettered instead of run, if it must: undecodable, or delivered more
    /// than `max_deliveries` times.
    pub fn poison_reason(&self, max_deliveries: u64) -> Option<String> {
        match &self.entry {
            Err(reason) => Some(reason.clone()),
            Ok(_) if self.deliveries > max_deliveries => Some(format!(
                "delivered {} times (limit {max_deliveries})",
                self.deliveries
            )),
            Ok(_) => None,
        }
    }

    /// The task id, when the entry could be decoded.
    pub fn task_id(&self) -> Option<&TaskId> {
        self.entry.as_ref().ok().map(|e| &e.id)
    }

    fn from_stream_id(site: Site, id: StreamId, deliveries: u64, reclaimed: bool) -> Self {
        let raw = match id.map.get(ENTRY_FIELD) {
            Some(Value::BulkString(b)) => Some(b.clone()),
            Some(Value::SimpleString(s)) => Some(s.clone().into_bytes()),
            _ => None,
        };
        let entry = match &raw {
            Some(bytes) => QueueEntry::decode(bytes).map_err(|e| e.to_string()),
            None => Err(format!("undecodable entry (no `{ENTRY_FIELD}` field)")),
        };
        Self {
            site,
            entry_id: id.id,
            deliveries,
            reclaimed,
            raw: raw.unwrap_or_default(),
            entry,
            claimed_at: tokio::time::Instant::now(),
        }
    }
}

/// What this process knows about Redis being reachable, for the reclaim rule.
#[derive(Debug)]
struct Reach {
    /// When Redis last came back (or this process started): heartbeats seen missing before then prove nothing.
    up_since: Instant,
    /// Whether the last command failed.
    down: bool,
}

/// One entry we hold: its run lease once taken, and the token its run watches.
#[derive(Debug)]
pub(super) struct Held {
    /// The task whose run lease we took (None until [`Consumer::fence`] succeeded).
    pub(super) fenced: Option<TaskId>,
    /// Cancelled when another consumer holds the run lease: the run must stop.
    pub(super) stolen: CancellationToken,
}

/// One consumer of the group [`GROUP`] on both task streams. Cheap to share behind an `Arc`.
pub struct Consumer {
    pub(super) keys: StreamKeys,
    pub(super) settings: StreamSettings,
    pub(super) name: String,
    pub(super) conn: RedisConn,
    blocking: tokio::sync::Mutex<RedisConn>,
    reclaim: tokio::sync::Mutex<ReclaimState>,
    pub(super) held: Mutex<HashMap<(Site, String), Held>>,
    reach: Mutex<Reach>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("prefix", &self.keys.prefix())
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// Connects (two connections: one for blocking reads), creates the groups if missing and writes our
    /// first heartbeat.
    ///
    /// # Errors
    /// [`StreamError`] when Redis is unusable or unreachable.
    pub async fn connect(settings: &StreamSettings, name: &str) -> Result<Self, StreamError> {
        let mut conn = connect(settings, COMMAND_TIMEOUT).await?;
        let blocking = connect(settings, settings.read_block + COMMAND_TIMEOUT).await?;
        let keys = StreamKeys::new(&settings.key_prefix);
        super::ensure_groups(&mut conn, &keys).await?;
        let now = Instant::now();
        let consumer = Self {
            keys,
            settings: settings.clone(),
            name: name.to_owned(),
            conn,
            blocking: tokio::sync::Mutex::new(blocking),
            reclaim: tokio::sync::Mutex::new(ReclaimState::new(now)),
            held: Mutex::new(HashMap::new()),
            reach: Mutex::new(Reach {
                up_since: now,
                down: false,
            }),
        };
        consumer.renew_leases().await?;
        Ok(consumer)
    }

    /// Notes the result of a command for the reclaim rule (see the module doc) and passes it on.
    pub(super) fn noted<T>(&self, result: Result<T, StreamError>) -> Result<T, StreamError> {
        if let Ok(mut reach) = self.reach.lock() {
            match (&result, reach.down) {
                (Err(_), _) => reach.down = true,
                (Ok(_), true) => {
                    *reach = Reach {
                        up_since: Instant::now(),
                        down: false,
                    }
                }
                (Ok(_), false) => {}
            }
        }
        result
    }

    /// Recreates the consumer groups (and streams) after Redis lost them (NOGROUP). Idempotent.
    ///
    /// # Errors
    /// [`StreamError`] when Redis cannot be reached.
    pub(crate) async fn recreate_groups(&self) -> Result<(), StreamError> {
        super::ensure_groups(&mut self.conn.clone(), &self.keys).await
    }

    /// This consumer's name in the group.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key layout in use.
    pub fn keys(&self) -> &StreamKeys {
        &self.keys
    }

    /// A shared (non-blocking) connection, for the outbox and other short commands.
    pub fn connection(&self) -> RedisConn {
        self.conn.clone()
    }

    /// Entries we hold (claimed, not yet acked or dead-lettered).
    pub fn held_count(&self) -> usize {
        self.held.lock().map(|h| h.len()).unwrap_or(0)
    }

    /// The settings in use.
    pub fn settings(&self) -> &StreamSettings {
        &self.settings
    }

    /// Up to `max` entries to work on: abandoned ones first when a reclaim pass is due (every half
    /// claim-idle, at most 5 s), then new main-site entries, then new sub-site entries, then a blocking read
    /// of both (≤ the configured block time). An empty result means nothing arrived in that time.
    ///
    /// # Errors
    /// [`StreamError::Unavailable`]; nothing is claimed then.
    pub async fn claim(&self, max: usize) -> Result<Vec<Claimed>, StreamError> {
        let claimed = self.claim_inner(max).await;
        self.noted(claimed)
    }

    async fn claim_inner(&self, max: usize) -> Result<Vec<Claimed>, StreamError> {
        let max = max.max(1);
        if let Some(got) = self.reclaim_if_due(max).await?
            && !got.is_empty()
        {
            return Ok(got);
        }
        for site in Site::ALL {
            let got = self.read_new(&[site], max, None).await?;
            if !got.is_empty() {
                return Ok(got);
            }
        }
        self.read_new(&Site::ALL, max, Some(self.settings.read_block))
            .await
    }

    /// XREADGROUP `>` on `sites` (in that order). With `block`, uses the blocking connection.
    async fn read_new(
        &self,
        sites: &[Site],
        max: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Claimed>, StreamError> {
        let keys: Vec<String> = sites.iter().map(|s| self.keys.tasks(*s)).collect();
        let ids: Vec<&str> = sites.iter().map(|_| ">").collect();
        let mut opts = StreamReadOptions::default()
            .group(GROUP, &self.name)
            .count(max);
        let reply: Option<StreamReadReply> = match block {
            Some(b) => {
                opts = opts.block(b.as_millis().max(1) as usize);
                let mut conn = self.blocking.lock().await;
                redis::AsyncCommands::xread_options(&mut *conn, &keys, &ids, &opts).await
            }
            None => {
                let mut conn = self.conn.clone();
                redis::AsyncCommands::xread_options(&mut conn, &keys, &ids, &opts).await
            }
        }
        .map_err(StreamError::redis("XREADGROUP"))?;
        let mut out = Vec::new();
        for site in sites {
            let key = self.keys.tasks(*site);
            let found = reply.iter().flat_map(|r| &r.keys).filter(|k| k.key == key);
            for id in found.flat_map(|k| k.ids.iter().cloned()) {
                out.push(Claimed::from_stream_id(*site, id, 1, false));
            }
        }
        self.hold(&out);
        Ok(out)
    }

    fn hold(&self, claimed: &[Claimed]) {
        if let Ok(mut held) = self.held.lock() {
            for c in claimed {
                held.insert(
                    (c.site, c.entry_id.clone()),
                    Held {
                        fenced: None,
                        stolen: CancellationToken::new(),
                    },
                );
            }
        }
    }

    fn release(&self, claimed: &Claimed) {
        if let Ok(mut held) = self.held.lock() {
            held.remove(&(claimed.site, claimed.entry_id.clone()));
        }
    }

    /// Stops renewing an entry without acking it (on shutdown, or a transient failure: it is delivered
    /// again after claim-idle). Its run lease, if taken, expires with it.
    pub(crate) fn abandon(&self, claimed: &Claimed) {
        self.release(claimed);
    }

    /// Acknowledges and deletes the entry, and drops our run lease of its task, in one script
    /// (`settle.lua`). With `finished`, also deletes that task's outbox record and report lock and releases
    /// its id.
    ///
    /// # Errors
    /// [`StreamError`]; the entry then stays pending and is renewed or reclaimed.
    pub async fn ack(
        &self,
        claimed: &Claimed,
        finished: Option<&TaskId>,
    ) -> Result<(), StreamError> {
        self.settle(claimed, finished, None).await.map(drop)
    }

    async fn settle(
        &self,
        claimed: &Claimed,
        finished: Option<&TaskId>,
        dead: Option<DeadFields>,
    ) -> Result<Released, StreamError> {
        let mut settle = Settle::entry(claimed.site, &claimed.entry_id, &self.name)
            .run_lease(claimed.task_id())
            .finished(finished);
        if let Some(fields) = dead {
            settle = settle.dead_letter(self.settings.maxlen, fields);
        }
        let released = settle.run(&mut self.conn.clone(), &self.keys).await?;
        self.release(claimed);
        Ok(released)
    }

    /// Moves the entry to the dead-letter stream with `reason` (fields `stream`, `entry_id`, `reason`,
    /// `payload` as received, `deliveries`, `consumer`, `at_ms`) and acks it, in one script. With
    /// `finished`, the task's inflight marker and outbox record go too.
    ///
    /// # Errors
    /// [`StreamError`]; the entry then stays pending.
    pub async fn dead_letter(
        &self,
        claimed: &Claimed,
        reason: &str,
        finished: Option<&TaskId>,
    ) -> Result<(), StreamError> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let fields = vec![
            ("stream", self.keys.tasks(claimed.site).into_bytes()),
            ("entry_id", claimed.entry_id.clone().into_bytes()),
            ("reason", reason.as_bytes().to_vec()),
            ("payload", claimed.raw.clone()),
            ("deliveries", claimed.deliveries.to_string().into_bytes()),
            ("consumer", self.name.clone().into_bytes()),
            ("at_ms", now_ms.to_string().into_bytes()),
        ];
        self.settle(claimed, finished, Some(fields)).await.map(drop)
    }

    /// Leaves the group on a clean exit: deletes this consumer (and its heartbeat) when nothing is pending
    /// for it (`retire.lua`); with entries pending it stays, and they are reclaimed. Returns whether it left.
    ///
    /// # Errors
    /// [`StreamError`].
    pub(crate) async fn retire(&self) -> Result<bool, StreamError> {
        retire(
            &mut self.conn.clone(),
            &self.keys,
            &self.name,
            Duration::ZERO,
        )
        .await
    }
}

mod reclaim;

use reclaim::ReclaimState;
#[cfg(test)]
mod tests;

pub use reclaim::PRUNE_AFTER;
pub(crate) use reclaim::retire;

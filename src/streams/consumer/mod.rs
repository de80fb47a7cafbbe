//! The executor's side of the task streams: claim new entries (main before sub), reclaim abandoned ones
//! (XAUTOCLAIM), renew the lease of entries we run, ack (XACK + XDEL) and dead-letter. It does not decide
//! what to do with an entry: the executor does. Blocking reads use their own connection.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply};
use redis::{Script, Value};

use super::{ENTRY_FIELD, GROUP, RedisConn, StreamError, StreamKeys, connect, handover};
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
        }
    }
}

/// Reclaim scan state: one XAUTOCLAIM cursor per stream, and when the last full pass ran.
#[derive(Debug)]
struct ReclaimState {
    cursors: [String; 2],
    next_due: Instant,
}

/// One consumer of the group [`GROUP`] on both task streams. Cheap to share behind an `Arc`.
pub struct Consumer {
    keys: StreamKeys,
    settings: StreamSettings,
    name: String,
    conn: RedisConn,
    blocking: tokio::sync::Mutex<RedisConn>,
    reclaim: tokio::sync::Mutex<ReclaimState>,
    held: Mutex<HashSet<(Site, String)>>,
    renew: Script,
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
    /// Connects (two connections: one for blocking reads) and creates the groups if missing.
    ///
    /// # Errors
    /// [`StreamError`] when Redis is unusable or unreachable.
    pub async fn connect(settings: &StreamSettings, name: &str) -> Result<Self, StreamError> {
        let mut conn = connect(settings, COMMAND_TIMEOUT).await?;
        let blocking = connect(settings, settings.read_block + COMMAND_TIMEOUT).await?;
        let keys = StreamKeys::new(&settings.key_prefix);
        super::ensure_groups(&mut conn, &keys).await?;
        Ok(Self {
            keys,
            settings: settings.clone(),
            name: name.to_owned(),
            conn,
            blocking: tokio::sync::Mutex::new(blocking),
            reclaim: tokio::sync::Mutex::new(ReclaimState {
                cursors: ["0-0".into(), "0-0".into()],
                next_due: Instant::now(),
            }),
            held: Mutex::new(HashSet::new()),
            renew: Script::new(lease::RENEW_LUA),
        })
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

    /// Up to `max` entries to work on: abandoned ones first when a reclaim pass is due (every half
    /// claim-idle, at most 5 s), then new main-site entries, then new sub-site entries, then a blocking read
    /// of both (≤ the configured block time). An empty result means nothing arrived in that time.
    ///
    /// # Errors
    /// [`StreamError::Unavailable`]; nothing is claimed then.
    pub async fn claim(&self, max: usize) -> Result<Vec<Claimed>, StreamError> {
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

    async fn reclaim_if_due(&self, max: usize) -> Result<Option<Vec<Claimed>>, StreamError> {
        let due = self.reclaim.lock().await.next_due <= Instant::now();
        if !due {
            return Ok(None);
        }
        self.reclaim(max).await.map(Some)
    }

    /// XAUTOCLAIM of entries idle for at least claim-idle, main stream first, up to `max`. Entries whose
    /// message was deleted meanwhile are dropped from the pending list by Redis and skipped here.
    ///
    /// # Errors
    /// [`StreamError::Unavailable`].
    pub async fn reclaim(&self, max: usize) -> Result<Vec<Claimed>, StreamError> {
        let mut state = self.reclaim.lock().await;
        let mut out = Vec::new();
        let mut pass_done = true;
        for (i, site) in Site::ALL.into_iter().enumerate() {
            if out.len() >= max {
                pass_done = false;
                break;
            }
            let key = self.keys.tasks(site);
            let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(&key)
                .arg(GROUP)
                .arg(&self.name)
                .arg(self.settings.claim_idle.as_millis() as u64)
                .arg(&state.cursors[i])
                .arg("COUNT")
                .arg(max - out.len())
                .query_async(&mut self.conn.clone())
                .await
                .map_err(StreamError::redis("XAUTOCLAIM"))?;
            pass_done &= reply.next_stream_id == "0-0";
            state.cursors[i] = reply.next_stream_id;
            let deliveries = self.delivery_counts(&key, &reply.claimed).await?;
            for (id, n) in reply.claimed.into_iter().zip(deliveries) {
                out.push(Claimed::from_stream_id(site, id, n, true));
            }
        }
        if pass_done {
            state.next_due = Instant::now() + self.reclaim_period();
        }
        self.hold(&out);
        Ok(out)
    }

    /// How often a consumer looks for abandoned entries: half claim-idle, between 50 ms and 5 s.
    pub fn reclaim_period(&self) -> Duration {
        (self.settings.claim_idle / 2).clamp(Duration::from_millis(50), Duration::from_secs(5))
    }

    /// Delivery counts of our pending `ids` on `key`, from XPENDING (1 where it cannot be read).
    async fn delivery_counts(&self, key: &str, ids: &[StreamId]) -> Result<Vec<u64>, StreamError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("XPENDING")
                .arg(key)
                .arg(GROUP)
                .arg(&id.id)
                .arg(&id.id)
                .arg(1);
        }
        let replies: Vec<redis::streams::StreamPendingCountReply> = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(StreamError::redis("XPENDING"))?;
        Ok(replies
            .into_iter()
            .map(|r| r.ids.first().map_or(1, |p| p.times_delivered as u64))
            .collect())
    }

    fn hold(&self, claimed: &[Claimed]) {
        if let Ok(mut held) = self.held.lock() {
            held.extend(claimed.iter().map(|c| (c.site, c.entry_id.clone())));
        }
    }

    fn release(&self, claimed: &Claimed) {
        if let Ok(mut held) = self.held.lock() {
            held.remove(&(claimed.site, claimed.entry_id.clone()));
        }
    }

    /// Stops renewing an entry without acking it (on shutdown: another executor will reclaim it).
    pub fn abandon(&self, claimed: &Claimed) {
        self.release(claimed);
    }

    /// Acknowledges and deletes the entry (XACK + XDEL in one MULTI). With `finished`, also deletes that
    /// task's inflight marker and outbox record in the same transaction.
    ///
    /// # Errors
    /// [`StreamError::Unavailable`]; the entry then stays pending and is renewed or reclaimed.
    pub async fn ack(
        &self,
        claimed: &Claimed,
        finished: Option<&TaskId>,
    ) -> Result<(), StreamError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.ack_commands(&mut pipe, claimed, finished);
        let () = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(StreamError::redis("XACK"))?;
        self.release(claimed);
        Ok(())
    }

    fn ack_commands(
        &self,
        pipe: &mut redis::Pipeline,
        claimed: &Claimed,
        finished: Option<&TaskId>,
    ) {
        let key = self.keys.tasks(claimed.site);
        pipe.cmd("XACK")
            .arg(&key)
            .arg(GROUP)
            .arg(&claimed.entry_id)
            .ignore();
        pipe.cmd("XDEL").arg(&key).arg(&claimed.entry_id).ignore();
        if let Some(id) = finished {
            pipe.cmd("DEL").arg(self.keys.outbox(id)).ignore();
            handover::push_release(pipe, &self.keys, id);
        }
    }

    /// Moves the entry to the dead-letter stream with `reason` (fields `stream`, `entry_id`, `reason`,
    /// `payload` as received, `deliveries`, `consumer`, `at_ms`) and acks it, in one MULTI. With `finished`,
    /// the task's inflight marker and outbox record go too.
    ///
    /// # Errors
    /// [`StreamError::Unavailable`]; the entry then stays pending.
    pub async fn dead_letter(
        &self,
        claimed: &Claimed,
        reason: &str,
        finished: Option<&TaskId>,
    ) -> Result<(), StreamError> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("XADD")
            .arg(self.keys.dead())
            .arg("MAXLEN")
            .arg("~")
            .arg(self.settings.maxlen)
            .arg("*")
            .arg("stream")
            .arg(self.keys.tasks(claimed.site))
            .arg("entry_id")
            .arg(&claimed.entry_id)
            .arg("reason")
            .arg(reason)
            .arg("payload")
            .arg(&claimed.raw)
            .arg("deliveries")
            .arg(claimed.deliveries)
            .arg("consumer")
            .arg(&self.name)
            .arg("at_ms")
            .arg(now_ms)
            .ignore();
        self.ack_commands(&mut pipe, claimed, finished);
        let () = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(StreamError::redis("dead-letter"))?;
        self.release(claimed);
        Ok(())
    }
}

mod lease;
#[cfg(test)]
mod tests;

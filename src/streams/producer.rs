//! The producer side of the task streams: atomic de-duplication with enqueue, and backlog measurement.
//! One Lua script (`lua/enqueue.lua`) sets `<prefix>:inflight:<id>` (NX, with a TTL) and XADDs only if that SET succeeded, so
//! an id already in our hands is never queued twice, whether the API repeats it or a second fetcher runs.
//! Reading, acking and reclaiming are the consumer's (`consumer.rs`).

use std::time::Duration;

use redis::streams::StreamInfoGroupsReply;

use super::handover::Marker;
use super::{
    ENTRY_FIELD, GROUP, RedisConn, StreamError, StreamKeys, connect, ensure_groups, scripts,
};
use crate::config::StreamSettings;
use crate::task::{QueueEntry, Site};

/// Response timeout of producer commands; a whole page is one pipeline.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// What happened to one entry handed to [`Producer::enqueue_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// Added to its stream under this entry id.
    Added(String),
    /// Its id is already in our hands (`inflight` exists): not added again.
    Duplicate,
    /// Its id is in our hands with a `fail` under way: the manager re-queued it, so this hand-out is queued
    /// when the id is released ([`super::handover`]).
    Relisted,
}

/// How much work one stream holds for the executors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    /// Entries not yet delivered to the group.
    pub lag: u64,
    /// Entries delivered and not yet acknowledged.
    pub pending: u64,
}

impl Backlog {
    /// `lag + pending`: what the fetcher's backpressure limits.
    pub fn total(&self) -> u64 {
        self.lag + self.pending
    }
}

/// Writes entries into the task streams. Cheap to clone (a shared reconnecting connection).
#[derive(Clone)]
pub struct Producer {
    conn: RedisConn,
    keys: StreamKeys,
    maxlen: usize,
    inflight_ttl: Duration,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("keys", &self.keys)
            .field("maxlen", &self.maxlen)
            .field("inflight_ttl", &self.inflight_ttl)
            .finish_non_exhaustive()
    }
}

impl Producer {
    /// Connects to Redis and makes sure both streams and their group exist.
    /// `inflight_ttl` bounds how long a de-duplication marker outlives a task that was never finished.
    ///
    /// # Errors
    /// [`StreamError`] when the URL is unusable or Redis cannot be reached.
    pub async fn connect(
        settings: &StreamSettings,
        inflight_ttl: Duration,
    ) -> Result<Self, StreamError> {
        let mut conn = connect(settings, COMMAND_TIMEOUT).await?;
        let keys = StreamKeys::new(&settings.key_prefix);
        ensure_groups(&mut conn, &keys).await?;
        Ok(Self {
            conn,
            keys,
            maxlen: settings.maxlen,
            inflight_ttl,
        })
    }

    /// The key layout in use.
    pub fn keys(&self) -> &StreamKeys {
        &self.keys
    }

    /// A handle on the shared connection (for the leader lease, which lives on the same Redis).
    pub fn connection(&self) -> RedisConn {
        self.conn.clone()
    }

    /// De-duplicates and enqueues entries, each atomically, in one round trip. Results are in input order.
    ///
    /// # Errors
    /// [`StreamError::Unavailable`]; then some entries may have been added (their markers stop a repeat).
    pub async fn enqueue_batch(
        &self,
        entries: &[QueueEntry],
    ) -> Result<Vec<Enqueued>, StreamError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let ttl = self.inflight_ttl.as_secs().max(1);
        let invocations: Vec<_> = entries
            .iter()
            .map(|e| {
                let stream = self.keys.tasks(e.site);
                let mut inv = scripts::ENQUEUE.prepare_invoke();
                inv.key(self.keys.inflight(&e.id))
                    .key(&stream)
                    .key(self.keys.relisted(&e.id))
                    .arg(Marker::Queued.as_str())
                    .arg(ttl)
                    .arg(self.maxlen)
                    .arg(ENTRY_FIELD)
                    .arg(e.encode())
                    .arg(Marker::Failing.as_str())
                    .arg(e.site.as_str());
                inv
            })
            .collect();
        let mut pipe = redis::pipe();
        // Loading first makes the EVALSHAs safe after a Redis restart emptied the script cache.
        pipe.load_script(&scripts::ENQUEUE).ignore();
        for inv in &invocations {
            pipe.invoke_script(inv);
        }
        let mut conn = self.conn.clone();
        let answers: Vec<redis::Value> = pipe
            .query_async(&mut conn)
            .await
            .map_err(StreamError::redis("enqueue"))?;
        Ok(answers
            .into_iter()
            .map(|answer| match answer {
                redis::Value::Int(1) => Enqueued::Relisted,
                other => redis::from_redis_value::<Option<String>>(other)
                    .ok()
                    .flatten()
                    .map_or(Enqueued::Duplicate, Enqueued::Added),
            })
            .collect())
    }

    /// One entry; see [`Producer::enqueue_batch`].
    ///
    /// # Errors
    /// [`StreamError::Unavailable`].
    pub async fn enqueue(&self, entry: &QueueEntry) -> Result<Enqueued, StreamError> {
        let mut out = self.enqueue_batch(std::slice::from_ref(entry)).await?;
        Ok(out.pop().unwrap_or(Enqueued::Duplicate))
    }

    /// The backlog of one stream for the [`GROUP`]: `lag` and `pending` from `XINFO GROUPS`. When Redis cannot
    /// tell the lag (deletions inside the unread range make it nil) it is `XLEN − pending`, which is exact
    /// here because finished entries are deleted.
    ///
    /// # Errors
    /// [`StreamError::Unavailable`].
    pub async fn backlog(&self, site: Site) -> Result<Backlog, StreamError> {
        let key = self.keys.tasks(site);
        let mut conn = self.conn.clone();
        let (info, len): (StreamInfoGroupsReply, u64) = redis::pipe()
            .cmd("XINFO")
            .arg("GROUPS")
            .arg(&key)
            .cmd("XLEN")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(|e| {
                // A stream that vanished answers "no such key": the ledger is gone as with NOGROUP.
                if e.code() == Some("ERR") && e.to_string().contains("no such key") {
                    StreamError::GroupMissing { op: "XINFO GROUPS" }
                } else {
                    StreamError::redis("XINFO GROUPS")(e)
                }
            })?;
        if !info.groups.iter().any(|g| g.name == GROUP) {
            return Err(StreamError::GroupMissing { op: "XINFO GROUPS" });
        }
        Ok(backlog_of(&info, len))
    }

    /// Recreates the consumer groups (and streams) after Redis lost them. Idempotent.
    ///
    /// # Errors
    /// [`StreamError`] when Redis cannot be reached.
    pub(crate) async fn recreate_groups(&self) -> Result<(), StreamError> {
        ensure_groups(&mut self.conn.clone(), &self.keys).await
    }
}

/// The group's backlog from an `XINFO GROUPS` reply and the stream length.
fn backlog_of(info: &StreamInfoGroupsReply, len: u64) -> Backlog {
    match info.groups.iter().find(|g| g.name == GROUP) {
        Some(g) => {
            let pending = g.pending as u64;
            let lag = g
                .lag
                .map_or_else(|| len.saturating_sub(pending), |l| l as u64);
            Backlog { lag, pending }
        }
        // No group (deleted under us): everything in the stream is waiting.
        None => Backlog {
            lag: len,
            pending: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::streams::StreamInfoGroup;

    fn info(lag: Option<usize>, pending: usize) -> StreamInfoGroupsReply {
        StreamInfoGroupsReply {
            groups: vec![StreamInfoGroup {
                name: GROUP.into(),
                pending,
                lag,
                ..StreamInfoGroup::default()
            }],
        }
    }

    #[test]
    fn backlog_uses_lag_and_falls_back_to_xlen() {
        assert_eq!(backlog_of(&info(Some(7), 3), 100).total(), 10);
        assert_eq!(
            backlog_of(&info(None, 3), 12),
            Backlog { lag: 9, pending: 3 }
        );
        assert_eq!(backlog_of(&info(None, 5), 2).lag, 0);
        let none = StreamInfoGroupsReply { groups: vec![] };
        assert_eq!(backlog_of(&none, 4).total(), 4);
    }
}

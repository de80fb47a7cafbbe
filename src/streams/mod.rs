//! The task ledger: Redis Streams as our task queue and every other piece of a task's life in Redis, in
//! this module and nowhere else. The fetcher ([`producer`]), the executor ([`consumer`], [`fence`]) and
//! the outbox call it; none of them builds a key or a script. Each Lua script is its own file in `lua/`
//! (`scripts.rs`). The key table (all under one configurable prefix, which should hold a `{hash tag}` so the
//! scripts stay on one slot):
//!
//! | key | holds | written by | removed by |
//! |---|---|---|---|
//! | `<prefix>:tasks:main`, `<prefix>:tasks:sub` | one entry per task handed to us: field `task` = versioned JSON ([`crate::task::QueueEntry`]), ids and routing only, never credentials | fetcher (`enqueue.lua`, with the marker) | settle (`XACK` + `XDEL`) |
//! | group [`GROUP`] on both | every executor process is one consumer named `<host>-<pid>` | any role, `XGROUP CREATE … MKSTREAM` at start-up and whenever Redis answers NOGROUP | `retire.lua` (clean exit, or gone a day with nothing pending) |
//! | `<prefix>:inflight:<id>` | the id is in our hands ([`handover::Marker`]: `queued`, `failing`, `completing`, `requeued`); TTL `PW_INFLIGHT_TTL_SECS` | fetcher; the executor before a report | settle of a finished task (a `completing` marker is kept until it expires) |
//! | `<prefix>:relisted:<id>` | hash `site`, `payload`: a hand-out of the id seen after our `fail` | fetcher (`enqueue.lua`) | settle, which queues it again |
//! | `<prefix>:tried:<id>` | a driver ran this task (7 days): its next run is a retry | executor, before the driver | expiry |
//! | `<prefix>:run:<id>` | the run lease, the fence: the consumer running the task; TTL claim-idle, renewed with the entries | executor before it runs a task ([`fence`]), `renew.lua` | settle (if ours), expiry |
//! | `<prefix>:consumer:<name>` | the consumer's heartbeat (ms); TTL claim-idle, renewed every `PW_LEASE_RENEW_MS` | `renew.lua` | expiry, `retire.lua` |
//! | `<prefix>:outbox:<id>` | a finished registration's result, encrypted; deleted once the manager accepted it | executor | settle of a finished task, `pwctl outbox drop` |
//! | `<prefix>:outbox-lock:<id>` | who reports that record right now (consumer name); TTL = one report's budget | executor, outbox loop (`SET NX PX`) | its owner only (`unlock.lua`, settle) |
//! | `<prefix>:tasks:dead` | dead-letter stream: entries that could not be processed, each with a reason | settle with a dead-letter copy | `pwctl dead purge` |
//! | `<prefix>:fetcher:leader` | the fetcher's leader lease | fetcher leader | its owner (compare-and-delete) |
//! | `<prefix>:fetcher:listing` | hash, one field per fetcher token: a `GET /links` under way (start, limit, heartbeat), removed once its page is queued; a stale one is a listing lost with its fetcher | fetcher | fetcher |
//! | `<prefix>:fetcher:last_listing` | the last finished listing (JSON: when, limit, how many listed), for `pwctl status` | fetcher | overwritten |
//! | `<prefix>:control:*` | paused domains, breaker state and drain requests (`control` module) | pwctl, executors | pwctl, expiry |
//! | `<prefix>:totp:*` | TOTP codes already typed, fleet-wide (`totp` module) | recipe driver | expiry |
//!
//! Main-site work is read before sub-site work. Finished entries are XACKed and XDELed together.
//!
//! Redis that comes back empty (restarted without persistence, or failed over to a replica that lost
//! writes) answers NOGROUP: [`StreamError::GroupMissing`]. Every role then recreates the groups
//! ([`ensure_groups`]) and carries on, and reports the loss (`pw_redis_data_loss_total`).

use std::time::Duration;

use redis::aio::ConnectionLike;

use crate::config::StreamSettings;
use crate::task::{Site, TaskId};

mod conn;
pub mod consumer;
mod error;
pub mod fence;
pub mod handover;
pub mod producer;
pub(crate) mod scripts;
pub(crate) mod settle;

pub use conn::{RedisConn, RedisTarget};
pub use error::StreamError;

/// The consumer group every executor joins, on both task streams.
pub const GROUP: &str = "executors";

/// Field of a stream entry holding the JSON payload.
pub const ENTRY_FIELD: &str = "task";

/// The per-task keys of the table above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskKey {
    /// `inflight:<id>`.
    Inflight,
    /// `relisted:<id>`.
    Relisted,
    /// `tried:<id>`.
    Tried,
    /// `run:<id>`.
    Run,
    /// `outbox:<id>`.
    Outbox,
    /// `outbox-lock:<id>`.
    OutboxLock,
}

impl TaskKey {
    fn as_str(self) -> &'static str {
        match self {
            Self::Inflight => "inflight",
            Self::Relisted => "relisted",
            Self::Tried => "tried",
            Self::Run => "run",
            Self::Outbox => "outbox",
            Self::OutboxLock => "outbox-lock",
        }
    }
}

/// Builds every Redis key of the table above from the configured prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamKeys {
    prefix: String,
}

impl StreamKeys {
    /// Keys under `prefix` (e.g. `{pw}`).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix itself.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The task stream of one site kind.
    pub fn tasks(&self, site: Site) -> String {
        format!("{}:tasks:{}", self.prefix, site.as_str())
    }

    /// Every task stream, named by its site kind (`main`, `sub`): what the depth sampler watches.
    pub fn task_streams(&self) -> Vec<(String, String)> {
        Site::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), self.tasks(*s)))
            .collect()
    }

    /// The dead-letter stream.
    pub fn dead(&self) -> String {
        format!("{}:tasks:dead", self.prefix)
    }

    /// A per-task key; without a task, one ending in an empty id, which no task has.
    pub(crate) fn per_task(&self, key: TaskKey, id: Option<&TaskId>) -> String {
        let id = id.map_or("", TaskId::as_str);
        format!("{}:{}:{id}", self.prefix, key.as_str())
    }

    /// The prefix of per-task keys of one kind (Lua scripts append the id).
    pub(crate) fn per_task_prefix(&self, key: TaskKey) -> String {
        format!("{}:{}:", self.prefix, key.as_str())
    }

    /// The de-duplication marker of a task in our hands.
    pub fn inflight(&self, id: &TaskId) -> String {
        self.per_task(TaskKey::Inflight, Some(id))
    }

    /// The encrypted result of a finished task awaiting its report.
    pub fn outbox(&self, id: &TaskId) -> String {
        self.per_task(TaskKey::Outbox, Some(id))
    }

    /// Who is reporting `id`'s outbox record right now.
    pub(crate) fn outbox_lock(&self, id: &TaskId) -> String {
        self.per_task(TaskKey::OutboxLock, Some(id))
    }

    /// Pattern matching every outbox key (for SCAN).
    pub fn outbox_pattern(&self) -> String {
        format!("{}:outbox:*", self.prefix)
    }

    /// A hand-out of `id` seen after our `fail` for it was sent, waiting for the id's release.
    pub fn relisted(&self, id: &TaskId) -> String {
        self.per_task(TaskKey::Relisted, Some(id))
    }

    /// Set when a driver starts running `id` (7 days): a later run of it is a retry.
    pub(crate) fn tried(&self, id: &TaskId) -> String {
        self.per_task(TaskKey::Tried, Some(id))
    }

    /// The run lease of `id`: which consumer runs it (the fence).
    pub fn run(&self, id: &TaskId) -> String {
        self.per_task(TaskKey::Run, Some(id))
    }

    /// A consumer's heartbeat.
    pub fn heartbeat(&self, consumer: &str) -> String {
        format!("{}:consumer:{consumer}", self.prefix)
    }

    /// The fetcher's leader lease.
    pub fn leader(&self) -> String {
        format!("{}:fetcher:leader", self.prefix)
    }

    /// The listings under way (a hash: fetcher token → start, limit and heartbeat of its `GET /links`).
    pub fn listing(&self) -> String {
        format!("{}:fetcher:listing", self.prefix)
    }

    /// The last listing a fetcher finished (a string: JSON of its holder, start, end and limit).
    pub fn last_listing(&self) -> String {
        format!("{}:fetcher:last_listing", self.prefix)
    }
}

/// Creates the consumer group [`GROUP`] on both task streams (and the streams themselves). The group starts
/// at `0`, not `$`, so entries written before the group existed are still delivered (finished entries are
/// deleted, so nothing runs twice). Idempotent: a group that already exists (`BUSYGROUP`) is left as it is.
///
/// # Errors
/// [`StreamError::Unavailable`] when Redis refuses or cannot be reached.
pub async fn ensure_groups<C: ConnectionLike>(
    conn: &mut C,
    keys: &StreamKeys,
) -> Result<(), StreamError> {
    for site in Site::ALL {
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(keys.tasks(site))
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(conn)
            .await;
        match created {
            Ok(()) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(StreamError::redis("XGROUP CREATE")(e)),
        }
    }
    Ok(())
}

/// Says at ERROR that Redis lost the task ledger (`e` is a [`StreamError::GroupMissing`]): when, with the
/// Redis error code and what was last known to be in flight (`pending_at_last_sample`, per stream). The
/// caller counts it and recreates the groups ([`ensure_groups`]).
pub(crate) fn log_lost_ledger(e: &StreamError, pending_at_last_sample: &[(&str, i64)]) {
    tracing::error!(
        error = %e,
        code = e.code().unwrap_or(""),
        ?pending_at_last_sample,
        "Redis lost the task ledger (stream or consumer group missing): entries queued or pending then are \
         lost and their tasks stay handed out at the manager; recreating the groups"
    );
}

/// The rest of every key matching `pattern`, a key prefix ending in `*` (e.g. [`StreamKeys::outbox_pattern`]):
/// one SCAN walk with the prefix's glob characters escaped; sorted, each once (SCAN may return a key twice).
///
/// # Errors
/// The Redis error of a failed SCAN call.
pub(crate) async fn keys_under<C>(conn: &mut C, pattern: &str) -> redis::RedisResult<Vec<String>>
where
    C: ConnectionLike + Send + Sync,
{
    use redis::AsyncCommands;
    let cut = pattern.len().saturating_sub(1);
    let mut iter: redis::AsyncIter<String> = conn
        .scan_match(crate::task::escape_glob_prefix(pattern))
        .await?;
    let mut rests = Vec::new();
    while let Some(key) = futures::StreamExt::next(&mut iter).await {
        if let Some(rest) = key?.get(cut..) {
            rests.push(rest.to_owned());
        }
    }
    rests.sort();
    rests.dedup();
    Ok(rests)
}

/// Deletes the lock `key` only if `owner` holds it (compare-and-delete, `unlock.lua`): a holder whose lock
/// expired cannot delete the next holder's. Returns whether it was ours.
///
/// # Errors
/// [`StreamError`].
pub async fn unlock<C: ConnectionLike>(
    conn: &mut C,
    key: &str,
    owner: &str,
) -> Result<bool, StreamError> {
    let gone: i64 = scripts::UNLOCK
        .key(key)
        .arg(owner)
        .invoke_async(conn)
        .await
        .map_err(StreamError::redis("unlock"))?;
    Ok(gone == 1)
}

/// Opens a reconnecting Redis connection ([`RedisConn`]) from the settings' URL.
/// `response_timeout` bounds each command; give blocking reads more than their BLOCK time.
///
/// # Errors
/// [`StreamError::BadUrl`] for an unusable URL, [`StreamError::Unavailable`] when Redis cannot be reached.
pub async fn connect(
    settings: &StreamSettings,
    response_timeout: Duration,
) -> Result<RedisConn, StreamError> {
    RedisTarget::parse(&settings.redis_url)?
        .connect(response_timeout)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_prefix_hash_tag() {
        let k = StreamKeys::new("{pw}");
        let id = TaskId::parse("t-1").unwrap();
        assert_eq!(k.tasks(Site::Main), "{pw}:tasks:main");
        assert_eq!(k.tasks(Site::Sub), "{pw}:tasks:sub");
        assert_eq!(k.dead(), "{pw}:tasks:dead");
        assert_eq!(k.inflight(&id), "{pw}:inflight:t-1");
        assert_eq!(k.outbox(&id), "{pw}:outbox:t-1");
        assert_eq!(k.relisted(&id), "{pw}:relisted:t-1");
        assert_eq!(k.tried(&id), "{pw}:tried:t-1");
        assert_eq!(k.run(&id), "{pw}:run:t-1");
        assert_eq!(k.outbox_lock(&id), "{pw}:outbox-lock:t-1");
        assert_eq!(k.heartbeat("h-1"), "{pw}:consumer:h-1");
        assert_eq!(k.per_task(TaskKey::Inflight, None), "{pw}:inflight:");
        assert_eq!(k.per_task_prefix(TaskKey::Run), "{pw}:run:");
        assert_eq!(k.leader(), "{pw}:fetcher:leader");
        assert_eq!(k.listing(), "{pw}:fetcher:listing");
        assert_eq!(k.last_listing(), "{pw}:fetcher:last_listing");
    }
}

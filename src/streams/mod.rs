//! Redis Streams as our task queue. Key layout (all under one configurable prefix, which should hold a
//! `{hash tag}` so scripts and MULTI stay on one Redis Cluster slot):
//!
//! | key | holds |
//! |---|---|
//! | `<prefix>:tasks:main`, `<prefix>:tasks:sub` | one entry per task handed to us: field `task` = versioned JSON ([`crate::task::QueueEntry`]), ids and routing only, never credentials |
//! | group [`GROUP`] on both | every executor process is one consumer named `<host>-<pid>` |
//! | `<prefix>:inflight:<id>` | set with the XADD, atomically; stops an id from being queued twice; value `failing` while our `fail` is reported (cleared when the task is let go), `completing` once we report `complete` (kept until it expires; see [`handover`]) |
//! | `<prefix>:tried:<id>` | a driver ran this task (7 days): its next run is a retry |
//! | `<prefix>:relisted:<id>` | a hand-out of the id seen after our `fail` (see [`handover`]); queued again when the id is released |
//! | `<prefix>:outbox:<id>` | a finished registration's result, encrypted; deleted once the manager accepted it |
//! | `<prefix>:tasks:dead` | dead-letter stream: entries that could not be processed, each with a reason |
//! | `<prefix>:fetcher:leader` | the fetcher's leader lease |
//! | `<prefix>:fetcher:listing` | hash, one field per fetcher token: a `GET /links` under way (start, limit, heartbeat), removed once its page is queued; a stale one is a listing lost with its fetcher |
//!
//! Main-site work is read before sub-site work. Finished entries are XACKed and XDELed together.

use std::time::Duration;

use redis::aio::ConnectionLike;

use crate::config::StreamSettings;
use crate::task::{Site, TaskId};

mod conn;
pub mod consumer;
mod error;
pub mod handover;
pub mod producer;

pub use conn::{RedisConn, RedisTarget};
pub use error::StreamError;

/// The consumer group every executor joins, on both task streams.
pub const GROUP: &str = "executors";

/// Field of a stream entry holding the JSON payload.
pub const ENTRY_FIELD: &str = "task";

/// Builds every Redis key from the configured prefix.
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

    /// The dead-letter stream.
    pub fn dead(&self) -> String {
        format!("{}:tasks:dead", self.prefix)
    }

    /// The de-duplication marker of a task in our hands.
    pub fn inflight(&self, id: &TaskId) -> String {
        format!("{}:inflight:{id}", self.prefix)
    }

    /// The encrypted result of a finished task awaiting its report.
    pub fn outbox(&self, id: &TaskId) -> String {
        format!("{}:outbox:{id}", self.prefix)
    }

    /// Pattern matching every outbox key (for SCAN).
    pub fn outbox_pattern(&self) -> String {
        format!("{}:outbox:*", self.prefix)
    }

    /// A hand-out of `id` seen after our `fail` for it was sent, waiting for the id's release.
    pub fn relisted(&self, id: &TaskId) -> String {
        format!("{}:relisted:{id}", self.prefix)
    }

    /// Set when a driver starts running `id` (7 days): a later run of it is a retry.
    pub fn tried(&self, id: &TaskId) -> String {
        format!("{}:tried:{id}", self.prefix)
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
        assert_eq!(k.leader(), "{pw}:fetcher:leader");
        assert_eq!(k.listing(), "{pw}:fetcher:listing");
        assert_eq!(k.last_listing(), "{pw}:fetcher:last_listing");
    }
}

//! Stream fixtures: settings for a test prefix, and writing entries the way the fetcher does.

use std::time::Duration;

use podcast_worker::config::StreamSettings;
use podcast_worker::streams::{ENTRY_FIELD, StreamKeys};
use podcast_worker::task::{ENTRY_VERSION, QueueEntry, Site, TaskId};

use super::{redis_conn, redis_url};

/// Stream settings for `prefix`: short blocking reads, long claim idle (tests shorten it where needed).
pub fn stream_settings(prefix: &str) -> StreamSettings {
    StreamSettings {
        redis_url: redis_url().into(),
        key_prefix: prefix.to_owned(),
        maxlen: 100_000,
        claim_idle: Duration::from_secs(60),
        lease_renew: Duration::from_secs(10),
        max_deliveries: 5,
        read_block: Duration::from_millis(100),
    }
}

/// A version-1 entry for task `id` on `domain`.
pub fn entry(id: &str, domain: &str, site: Site) -> QueueEntry {
    QueueEntry {
        v: ENTRY_VERSION,
        id: TaskId::parse(id).unwrap(),
        domain: domain.into(),
        site,
        request_id: "req-1".into(),
        group_id: "grp-1".into(),
        fetched_at_ms: 1,
    }
}

/// XADDs entries to their site's stream (with the inflight marker, as the fetcher does).
pub async fn enqueue(prefix: &str, entries: &[QueueEntry]) {
    let keys = StreamKeys::new(prefix);
    let mut conn = redis_conn().await;
    for chunk in entries.chunks(500) {
        let mut pipe = redis::pipe();
        for e in chunk {
            pipe.cmd("XADD")
                .arg(keys.tasks(e.site))
                .arg("*")
                .arg(ENTRY_FIELD)
                .arg(e.encode())
                .ignore();
            pipe.cmd("SET").arg(keys.inflight(&e.id)).arg(1).ignore();
        }
        let () = pipe.query_async(&mut conn).await.unwrap();
    }
}

/// XADDs a raw field value (for poison entries).
pub async fn enqueue_raw(prefix: &str, site: Site, field: &str, value: &str) -> String {
    let keys = StreamKeys::new(prefix);
    let mut conn = redis_conn().await;
    redis::cmd("XADD")
        .arg(keys.tasks(site))
        .arg("*")
        .arg(field)
        .arg(value)
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// Entries of the dead-letter stream, as field maps.
pub async fn dead_letters(prefix: &str) -> Vec<std::collections::HashMap<String, String>> {
    let keys = StreamKeys::new(prefix);
    let mut conn = redis_conn().await;
    let reply: redis::streams::StreamRangeReply =
        redis::AsyncCommands::xrange_all(&mut conn, keys.dead())
            .await
            .unwrap();
    reply
        .ids
        .into_iter()
        .map(|id| {
            id.map
                .into_iter()
                .map(|(k, v)| (k, redis::from_redis_value::<String>(v).unwrap()))
                .collect()
        })
        .collect()
}

/// Pending entries of the group on one stream.
pub async fn pending(prefix: &str, site: Site) -> usize {
    let keys = StreamKeys::new(prefix);
    let mut conn = redis_conn().await;
    let reply: redis::streams::StreamPendingReply =
        redis::AsyncCommands::xpending(&mut conn, keys.tasks(site), podcast_worker::streams::GROUP)
            .await
            .unwrap();
    reply.count()
}

/// Length of one task stream.
pub async fn stream_len(prefix: &str, site: Site) -> usize {
    let keys = StreamKeys::new(prefix);
    let mut conn = redis_conn().await;
    redis::AsyncCommands::xlen(&mut conn, keys.tasks(site))
        .await
        .unwrap()
}

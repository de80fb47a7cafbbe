//! "Listing under way": a record in Redis, written before `GET /links` and removed once the page is queued,
//! so a listing lost with its fetcher (killed while the answer was in flight, or before its tasks were
//! queued) is never silent. One hash (`<prefix>:fetcher:listing`), one field per fetcher token, holding when
//! the listing started, its `limit` and a heartbeat renewed with the lease. A leader that finds another
//! fetcher's record whose heartbeat is older than `stale_after` reports it (ERROR + metric) and removes it
//! with a compare-and-delete, so two leaders never report one listing twice. Ending a listing also writes it
//! as the last finished one (`<prefix>:fetcher:last_listing`), which `pwctl status` shows.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::streams::RedisConn;

/// One fetcher's listing under way, as stored (JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    /// When `GET /links` was about to be sent, ms since the Unix epoch (the fetcher's clock).
    started_ms: u64,
    /// Last sign of life of the fetcher while it listed or queued, ms since the Unix epoch.
    beat_ms: u64,
    /// Tasks asked for: at most this many were handed out.
    limit: u32,
}

/// The last listing a fetcher finished, as stored (JSON) at `StreamKeys::last_listing`.
#[derive(Debug, Clone, Serialize)]
struct Finished<'a> {
    /// The fetcher's lease token.
    holder: &'a str,
    /// When its `GET /links` was about to be sent, ms since the Unix epoch.
    started_ms: u64,
    /// When its page was queued (or its loss logged), ms since the Unix epoch.
    ended_ms: u64,
    /// Tasks asked for.
    limit: u32,
}

/// A listing whose fetcher died before its page was queued: up to `limit` tasks are possibly handed out
/// to us and will never run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostListing {
    /// The dead fetcher's lease token (`<host>-<pid>-<random>`).
    pub holder: String,
    /// When its `GET /links` was sent.
    pub started: SystemTime,
    /// The heartbeat's age when found.
    pub silent_for: Duration,
    /// Tasks it asked for.
    pub limit: u32,
}

/// This fetcher's view of the listings under way.
#[derive(Clone)]
pub struct ListingRecord {
    conn: RedisConn,
    key: String,
    last_key: Option<String>,
    token: String,
    stale_after: Duration,
    current: Option<Record>,
}

impl std::fmt::Debug for ListingRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListingRecord")
            .field("key", &self.key)
            .field("token", &self.token)
            .field("stale_after", &self.stale_after)
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl ListingRecord {
    /// Records of `token` in the hash `key`; another fetcher's record counts as lost once its heartbeat is
    /// older than `stale_after`.
    pub fn new(conn: RedisConn, key: String, token: String, stale_after: Duration) -> Self {
        Self {
            conn,
            key,
            last_key: None,
            token,
            stale_after,
            current: None,
        }
    }

    /// Also writes every finished listing of ours to `key` (the last one overwrites the one before).
    pub(crate) fn with_last_key(mut self, key: String) -> Self {
        self.last_key = Some(key);
        self
    }

    /// Whether a listing of ours is recorded (begun and not yet ended, or its end could not be written).
    pub(crate) fn is_open(&self) -> bool {
        self.current.is_some()
    }

    /// Records that a listing of `limit` tasks is about to be sent. Call before `GET /links`, and do not
    /// list when it fails.
    ///
    /// # Errors
    /// The Redis error.
    pub(crate) async fn begin(&mut self, limit: u32) -> redis::RedisResult<()> {
        let now = now_ms();
        let record = Record {
            started_ms: now,
            beat_ms: now,
            limit,
        };
        self.write(record).await?;
        self.current = Some(record);
        Ok(())
    }

    /// Renews the heartbeat of our listing under way (no-op when none is).
    ///
    /// # Errors
    /// The Redis error.
    pub(crate) async fn beat(&self) -> redis::RedisResult<()> {
        match self.current {
            Some(record) => {
                self.write(Record {
                    beat_ms: now_ms(),
                    ..record
                })
                .await
            }
            None => Ok(()),
        }
    }

    /// Removes our record: the page is queued (or its loss was logged with the ids).
    ///
    /// # Errors
    /// The Redis error; the record then stays open and the next `ListingRecord::begin` or `end` replaces it.
    pub async fn end(&mut self) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic().hdel(&self.key, &self.token).ignore();
        if let (Some(last_key), Some(record)) = (&self.last_key, self.current) {
            let finished = Finished {
                holder: &self.token,
                started_ms: record.started_ms,
                ended_ms: now_ms(),
                limit: record.limit,
            };
            let value = serde_json::to_string(&finished).unwrap_or_default();
            pipe.set(last_key, value).ignore();
        }
        let () = pipe.query_async(&mut conn).await?;
        self.current = None;
        Ok(())
    }

    /// Finds other fetchers' records whose heartbeat is stale, removes them (only if unchanged since read)
    /// and returns the ones this call removed. An unreadable record is removed and reported with limit 0.
    ///
    /// # Errors
    /// The Redis error.
    pub(crate) async fn take_lost(&self) -> redis::RedisResult<Vec<LostListing>> {
        let mut conn = self.conn.clone();
        let all: Vec<(String, String)> = conn.hgetall(&self.key).await?;
        let now = now_ms();
        let mut lost = Vec::new();
        for (holder, raw) in all {
            if holder == self.token {
                continue;
            }
            let record = serde_json::from_str::<Record>(&raw).unwrap_or(Record {
                started_ms: 0,
                beat_ms: 0,
                limit: 0,
            });
            let silent_for = Duration::from_millis(now.saturating_sub(record.beat_ms));
            if silent_for <= self.stale_after {
                continue;
            }
            let removed: i64 = crate::streams::scripts::HDEL_IF
                .key(&self.key)
                .arg(&holder)
                .arg(&raw)
                .invoke_async(&mut conn)
                .await?;
            if removed == 1 {
                lost.push(LostListing {
                    holder,
                    started: UNIX_EPOCH + Duration::from_millis(record.started_ms),
                    silent_for,
                    limit: record.limit,
                });
            }
        }
        Ok(lost)
    }

    async fn write(&self, record: Record) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let value = serde_json::to_string(&record).unwrap_or_default();
        let _: i64 = conn.hset(&self.key, &self.token, value).await?;
        Ok(())
    }
}

/// `t` as an RFC 3339 UTC timestamp with milliseconds, e.g. `2015-10-21T07:28:00.000Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let (secs, millis) = (ms / 1000, ms % 1000);
    let (days, sod) = (secs / 86_400, secs % 86_400);
    // Days since the epoch to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |ms| rfc3339(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(1_445_412_480_123), "2015-10-21T07:28:00.123Z");
        assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(1_798_761_599_999), "2026-12-31T23:59:59.999Z");
    }
}

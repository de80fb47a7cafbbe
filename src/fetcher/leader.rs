//! The fetcher's leader lease: one Redis key (`<prefix>:fetcher:leader`) holding the leader's token with a
//! TTL. Taken and renewed by a compare-and-extend script (`streams/lua/lease.lua`), released by compare-and-delete
//! (`unlock.lua`), so
//! a fetcher never extends or drops a lease it lost. A leader killed without releasing loses the lease when
//! the TTL runs out; standbys check every third of it, so one takes over within about 4/3 of the TTL.

use std::time::Duration;

use crate::streams::RedisConn;

/// One fetcher's claim on leadership.
#[derive(Clone)]
pub struct LeaderLease {
    conn: RedisConn,
    key: String,
    token: String,
    ttl: Duration,
}

impl std::fmt::Debug for LeaderLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderLease")
            .field("key", &self.key)
            .field("token", &self.token)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl LeaderLease {
    /// A lease on `key` for the holder `token` (unique per process, e.g. `<host>-<pid>-<random>`).
    pub fn new(conn: RedisConn, key: String, token: String, ttl: Duration) -> Self {
        Self {
            conn,
            key,
            token,
            ttl,
        }
    }

    /// This holder's token (what `GET <key>` shows while it leads).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The lease length.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Takes the lease if it is free, extends it if we hold it. Returns whether we hold it now.
    ///
    /// # Errors
    /// The Redis error; leadership is then unknown and the caller must act as a standby.
    pub(crate) async fn acquire_or_renew(&self) -> redis::RedisResult<bool> {
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let mut conn = self.conn.clone();
        let held: i64 = crate::streams::scripts::LEASE
            .key(&self.key)
            .arg(&self.token)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await?;
        Ok(held == 1)
    }

    /// Gives the lease up if we hold it, so a standby takes over at once. Returns whether it was ours.
    ///
    /// # Errors
    /// The Redis error; the lease then simply expires.
    pub async fn release(&self) -> redis::RedisResult<bool> {
        let mut conn = self.conn.clone();
        let deleted: i64 = crate::streams::scripts::UNLOCK
            .key(&self.key)
            .arg(&self.token)
            .invoke_async(&mut conn)
            .await?;
        Ok(deleted == 1)
    }
}

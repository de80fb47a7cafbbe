//! The Sentinel side of [`super::RedisConn`]: finding the master, reconnecting after a failover, and
//! watching the sentinels for a master that was replaced.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::SentinelClient;
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, ErrorKind, IntoConnectionInfo, Pipeline,
    RedisError, RedisResult, Role, Value,
};
use secrecy::ExposeSecret;

use crate::config::SentinelAddress;

use super::*;

/// The master connection of a Sentinel URL, shared by the clones of one [`RedisConn`].
pub(super) struct SentinelConn {
    pub(super) address: Arc<SentinelAddress>,
    pub(super) master_name: String,
    /// Asks the sentinels; held while one caller looks the master up, so the others wait for its answer.
    pub(super) sentinels: tokio::sync::Mutex<SentinelClient>,
    /// The master connection in use, if any.
    pub(super) current: Mutex<Option<Current>>,
    pub(super) generation: AtomicU64,
    /// Look-ups that failed; a caller that waited through a failed one fails too instead of trying again.
    pub(super) failed_lookups: AtomicU64,
    pub(super) last_error: Mutex<Option<RedisError>>,
    pub(super) config: AsyncConnectionConfig,
}

/// The master connection in use.
#[derive(Clone)]
pub(super) struct Current {
    conn: MultiplexedConnection,
    /// Counts connections made; an error on an old one does not drop a newer one.
    generation: u64,
    /// The master's address, as the sentinels name it.
    node: (String, u16),
}

/// `lock` that never panics: the data under these locks is always left consistent.
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The answer of a node that is not (or not yet) a writable master: the command did not run.
pub(super) fn refused_by_non_master(e: &RedisError) -> bool {
    matches!(e.code(), Some("READONLY" | "MASTERDOWN" | "LOADING"))
}

/// An error after which the master connection is not used again.
pub(super) fn drops_connection(e: &RedisError) -> bool {
    refused_by_non_master(e)
        || e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
        // A MULTI/EXEC refused by a replica reports EXECABORT with the READONLY of its commands.
        || (e.code() == Some("EXECABORT") && e.to_string().contains("READONLY"))
}

impl SentinelConn {
    /// The master connection, looked up first if there is none.
    pub(super) async fn master(&self) -> RedisResult<Current> {
        if let Some(current) = lock(&self.current).clone() {
            return Ok(current);
        }
        let failed_before = self.failed_lookups.load(Ordering::SeqCst);
        let mut sentinels = self.sentinels.lock().await;
        if let Some(current) = lock(&self.current).clone() {
            return Ok(current);
        }
        if self.failed_lookups.load(Ordering::SeqCst) != failed_before
            && let Some(e) = lock(&self.last_error).clone()
        {
            return Err(e);
        }
        match self.look_up(&mut sentinels).await {
            Ok((conn, node)) => {
                let current = Current {
                    conn,
                    generation: self.generation.fetch_add(1, Ordering::SeqCst) + 1,
                    node,
                };
                *lock(&self.current) = Some(current.clone());
                Ok(current)
            }
            Err(e) => {
                *lock(&self.last_error) = Some(e.clone());
                self.failed_lookups.fetch_add(1, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    /// Asks the sentinels for the master until one answers with a node that is a master, for at most
    /// [`RESOLVE_BUDGET`].
    pub(super) async fn look_up(
        &self,
        sentinels: &mut SentinelClient,
    ) -> RedisResult<(MultiplexedConnection, (String, u16))> {
        let deadline = Instant::now() + RESOLVE_BUDGET;
        let mut pause = BACKOFF.0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let error = match tokio::time::timeout(left, self.connect_master(sentinels)).await {
                Ok(Ok(found)) => return Ok(found),
                Ok(Err(e)) => e,
                Err(_) => RedisError::from((
                    ErrorKind::Io,
                    "no Redis master found through the sentinels in time",
                )),
            };
            if Instant::now() + pause >= deadline {
                tracing::warn!(
                    master_name = %self.master_name,
                    error_kind = ?error.kind(),
                    error_code = error.code().unwrap_or_default(),
                    "no Redis master found through the sentinels"
                );
                return Err(error);
            }
            tracing::debug!(
                master_name = %self.master_name,
                error_kind = ?error.kind(),
                "Redis master look-up failed; asking the sentinels again"
            );
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(BACKOFF.1);
        }
    }

    /// One look-up: the sentinels' master, connected, and checked to be a master itself.
    pub(super) async fn connect_master(
        &self,
        sentinels: &mut SentinelClient,
    ) -> RedisResult<(MultiplexedConnection, (String, u16))> {
        let node = sentinels.async_get_client().await?;
        let addr = match node.get_connection_info().addr() {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                (host.clone(), *port)
            }
            _ => (String::new(), 0),
        };
        let addr_text = format!("{}:{}", addr.0, addr.1);
        let mut conn = node
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        let role: Role = redis::cmd("ROLE").query_async(&mut conn).await?;
        if !matches!(role, Role::Primary { .. }) {
            tracing::warn!(
                master_name = %self.master_name,
                node = %addr_text,
                "the sentinels named a Redis node that is not a master (a failover under way?)"
            );
            return Err(RedisError::from((
                ErrorKind::MasterNameNotFoundBySentinel,
                "the node the sentinels named is not a master",
            )));
        }
        tracing::info!(master_name = %self.master_name, node = %addr_text, "connected to the Redis master");
        Ok((conn, addr))
    }

    /// Stops using the connection of `generation` after `e` (a later generation is left alone).
    pub(super) fn forget(&self, generation: u64, e: &RedisError) {
        let mut current = lock(&self.current);
        if current.as_ref().is_some_and(|c| c.generation == generation) {
            *current = None;
            tracing::warn!(
                master_name = %self.master_name,
                error_kind = ?e.kind(),
                error_code = e.code().unwrap_or_default(),
                "Redis master connection dropped; asking the sentinels again"
            );
        }
    }

    pub(super) async fn command(&self, cmd: &Cmd) -> RedisResult<Value> {
        let Current {
            mut conn,
            generation,
            ..
        } = self.master().await?;
        match conn.req_packed_command(cmd).await {
            Err(e) if drops_connection(&e) => {
                self.forget(generation, &e);
                if !refused_by_non_master(&e) {
                    return Err(e);
                }
                let Current {
                    mut conn,
                    generation,
                    ..
                } = self.master().await?;
                let again = conn.req_packed_command(cmd).await;
                if let Err(e2) = &again
                    && drops_connection(e2)
                {
                    self.forget(generation, e2);
                }
                again
            }
            other => other,
        }
    }

    pub(super) async fn pipeline(
        &self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let Current {
            mut conn,
            generation,
            ..
        } = self.master().await?;
        let result = conn.req_packed_commands(pipeline, offset, count).await;
        if let Err(e) = &result
            && drops_connection(e)
        {
            self.forget(generation, e);
        }
        result
    }
}

/// How often the sentinels are asked whether the master moved.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Drops the master connection once most sentinels that answer name another master: a master demoted by a
/// manual failover (or cut off by a partition) still answers as a master until Sentinel reconfigures it,
/// which can take seconds; writes there would be lost. Runs until the last clone of the connection is gone.
pub(super) async fn watch(conn: std::sync::Weak<SentinelConn>) {
    let mut sentinels: Vec<Option<MultiplexedConnection>> = Vec::new();
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = conn.upgrade() else {
            return;
        };
        let Some(current) = lock(&shared.current).clone() else {
            continue;
        };
        sentinels.resize(shared.address.sentinels.len(), None);
        let (mut same, mut other) = (0, 0);
        for (i, cached) in sentinels.iter_mut().enumerate() {
            match shared.named_master(i, cached).await {
                Some(node) if node == current.node => same += 1,
                Some(_) => other += 1,
                None => {}
            }
            // With most sentinels agreeing that the master is still ours, the rest need not be asked.
            if same * 2 > shared.address.sentinels.len() {
                break;
            }
        }
        if other > same {
            let e = RedisError::from((
                ErrorKind::MasterNameNotFoundBySentinel,
                "the sentinels name another master",
            ));
            shared.forget(current.generation, &e);
        }
    }
}

impl SentinelConn {
    /// The master sentinel `i` names (`SENTINEL GET-MASTER-ADDR-BY-NAME`), through `cached` (connected on
    /// first use, dropped after an error); `None` when it cannot say.
    pub(super) async fn named_master(
        &self,
        i: usize,
        cached: &mut Option<MultiplexedConnection>,
    ) -> Option<(String, u16)> {
        if cached.is_none() {
            *cached = self.connect_sentinel(i).await.ok();
        }
        let conn = cached.as_mut()?;
        let named: RedisResult<Option<(String, u16)>> = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&self.master_name)
            .query_async(conn)
            .await;
        match named {
            Ok(node) => node,
            Err(_) => {
                *cached = None;
                None
            }
        }
    }

    pub(super) async fn connect_sentinel(&self, i: usize) -> RedisResult<MultiplexedConnection> {
        let (host, port) = self.address.sentinels[i].clone();
        let addr = if self.address.tls {
            ConnectionAddr::TcpTls {
                host,
                port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host, port)
        };
        let mut settings = redis::RedisConnectionInfo::default();
        if let Some(user) = &self.address.sentinel_username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &self.address.sentinel_password {
            settings = settings.set_password(password.expose_secret());
        }
        let info = addr.into_connection_info()?.set_redis_settings(settings);
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_millis(500)));
        redis::Client::open(info)?
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }
}

//! The one Redis connection type of the crate ([`RedisConn`]): every role (fetcher, executor, control,
//! `pwctl`, the TOTP ledger) talks to Redis through it, so every role follows the same reconnect rules.
//!
//! - A plain URL (`redis://`, `rediss://`, `unix://`) is redis-rs's [`ConnectionManager`]: one multiplexed
//!   connection, replaced in the background after an I/O error.
//! - A Sentinel URL (`redis+sentinel://…/<master-name>`, see [`crate::config::RedisAddress`]) asks the
//!   sentinels for the master, connects to it and checks that `ROLE` answers `master` (a sentinel that has
//!   not seen a failover yet can name the demoted node). A connection error, a timeout or a `READONLY` /
//!   `MASTERDOWN` / `LOADING` answer drops that connection; the next command asks the sentinels again, with
//!   backoff, for at most [`RESOLVE_BUDGET`]. A failed command is returned to its caller (which backs off
//!   as it does for any Redis outage), except that a command refused with `READONLY`, `MASTERDOWN` or
//!   `LOADING` (so not run) is sent once more to the new master. A demoted master is noticed without any
//!   command failing: Sentinel disconnects its clients when it reconfigures it.

mod sentinel;

use sentinel::{SentinelConn, watch};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, Pipeline, RedisError, RedisFuture, TlsMode, Value,
};
use secrecy::{ExposeSecret, SecretString};

use super::StreamError;
use crate::config::{RedisAddress, SentinelAddress};

/// How long opening a TCP connection (and its handshake) may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one look-up of the master (asking the sentinels, connecting, checking its role, with backoff
/// between tries) may take before the command waiting for it fails.
pub(crate) const RESOLVE_BUDGET: Duration = Duration::from_secs(5);

/// First and longest pause between two look-ups of the master.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(1));

/// Where the Redis of a URL is, parsed once. Neither `Debug` nor any error shows the URL.
#[derive(Clone)]
pub struct RedisTarget {
    kind: TargetKind,
}

#[derive(Clone)]
enum TargetKind {
    Direct(Box<redis::Client>),
    Sentinel(Arc<SentinelAddress>),
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("RedisTarget");
        if let TargetKind::Sentinel(a) = &self.kind {
            d.field("sentinels", &a.sentinels)
                .field("master", &a.master);
        }
        d.finish_non_exhaustive()
    }
}

impl RedisTarget {
    /// Parses `url` (it may hold a password, which no error repeats).
    ///
    /// # Errors
    /// [`StreamError::BadUrl`] for an unusable URL.
    pub fn parse(url: &SecretString) -> Result<Self, StreamError> {
        let kind = match RedisAddress::parse(url.expose_secret()).map_err(StreamError::bad_url)? {
            RedisAddress::Direct => TargetKind::Direct(Box::new(
                redis::Client::open(url.expose_secret())
                    .map_err(|_| StreamError::bad_url("is not a valid Redis URL"))?,
            )),
            RedisAddress::Sentinel(address) => {
                sentinel_client(&address)?;
                TargetKind::Sentinel(Arc::new(address))
            }
        };
        Ok(Self { kind })
    }

    /// Opens a reconnecting connection; `response_timeout` bounds each command (give blocking reads
    /// more than their BLOCK time).
    ///
    /// # Errors
    /// [`StreamError::Unavailable`] when Redis (or, for a Sentinel URL, every sentinel or the master they
    /// name) cannot be reached.
    pub async fn connect(&self, response_timeout: Duration) -> Result<RedisConn, StreamError> {
        // Boxed: the Sentinel look-up is a deep future, and callers nest this one deep in theirs.
        Box::pin(self.open(response_timeout)).await
    }

    async fn open(&self, response_timeout: Duration) -> Result<RedisConn, StreamError> {
        let inner = match &self.kind {
            TargetKind::Direct(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(response_timeout))
                    .set_connection_timeout(Some(CONNECTION_TIMEOUT))
                    .set_number_of_retries(3);
                let manager = ConnectionManager::new_with_config((**client).clone(), config)
                    .await
                    .map_err(StreamError::redis("connect"))?;
                Inner::Direct(manager)
            }
            TargetKind::Sentinel(address) => {
                let shared = SentinelConn {
                    address: Arc::clone(address),
                    master_name: address.master.clone(),
                    sentinels: tokio::sync::Mutex::new(sentinel_client(address)?),
                    current: Mutex::new(None),
                    generation: AtomicU64::new(0),
                    failed_lookups: AtomicU64::new(0),
                    last_error: Mutex::new(None),
                    config: AsyncConnectionConfig::new()
                        .set_response_timeout(Some(response_timeout))
                        .set_connection_timeout(Some(CONNECTION_TIMEOUT)),
                };
                shared
                    .master()
                    .await
                    .map_err(StreamError::redis("connect"))?;
                let shared = Arc::new(shared);
                tokio::spawn(watch(Arc::downgrade(&shared)));
                Inner::Sentinel(shared)
            }
        };
        Ok(RedisConn { inner })
    }
}

/// The sentinel client of `address`, asking for its master.
fn sentinel_client(address: &SentinelAddress) -> Result<SentinelClient, StreamError> {
    let nodes = address.sentinels.iter().map(|(host, port)| {
        if address.tls {
            ConnectionAddr::TcpTls {
                host: host.clone(),
                port: *port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host.clone(), *port)
        }
    });
    let bad = |_: RedisError| StreamError::bad_url("is not a usable Sentinel address");
    let mut builder =
        SentinelClientBuilder::new(nodes, &address.master, SentinelServerType::Master)
            .map_err(bad)?
            .set_client_to_redis_db(address.db);
    if address.tls {
        builder = builder
            .set_client_to_redis_tls_mode(TlsMode::Secure)
            .set_client_to_sentinel_tls_mode(TlsMode::Secure);
    }
    if let Some(user) = &address.username {
        builder = builder.set_client_to_redis_username(user);
    }
    if let Some(password) = &address.password {
        builder = builder.set_client_to_redis_password(password.expose_secret());
    }
    if let Some(user) = &address.sentinel_username {
        builder = builder.set_client_to_sentinel_username(user);
    }
    if let Some(password) = &address.sentinel_password {
        builder = builder.set_client_to_sentinel_password(password.expose_secret());
    }
    builder.build().map_err(bad)
}

/// A reconnecting Redis connection; cheap to clone (clones share the connection).
#[derive(Clone)]
pub struct RedisConn {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    /// A plain URL: redis-rs's connection manager.
    Direct(ConnectionManager),
    /// The master of a Sentinel-monitored group.
    Sentinel(Arc<SentinelConn>),
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("RedisConn");
        match &self.inner {
            Inner::Direct(_) => d.field("kind", &"direct"),
            Inner::Sentinel(s) => d
                .field("kind", &"sentinel")
                .field("master_name", &s.master_name),
        };
        d.finish_non_exhaustive()
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.inner {
            Inner::Direct(c) => c.req_packed_command(cmd),
            Inner::Sentinel(s) => Box::pin(s.command(cmd)),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.inner {
            Inner::Direct(c) => c.req_packed_commands(pipeline, offset, count),
            Inner::Sentinel(s) => Box::pin(s.pipeline(pipeline, offset, count)),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Direct(c) => c.get_db(),
            Inner::Sentinel(s) => s.address.db,
        }
    }
}

//! The one Redis connection type of the crate ([`RedisConn`]): every role (fetcher, executor, control,
//! `pwctl`, the TOTP ledger) talks to Redis through it, so every role follows the same reconnect rules.
//!
//! For a plain URL (`redis://`, `rediss://`, `unix://`) it is redis-rs's [`ConnectionManager`]: one
//! multiplexed connection, replaced in the background after an I/O error.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisFuture, Value};
use secrecy::{ExposeSecret, SecretString};

use super::StreamError;

/// How long opening a TCP connection (and its handshake) may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the Redis of a URL is, parsed once (the URL is never kept in the clear beyond the client).
#[derive(Clone)]
pub struct RedisTarget {
    client: redis::Client,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTarget").finish_non_exhaustive()
    }
}

impl RedisTarget {
    /// Parses `url` (it may hold a password, which no error repeats).
    ///
    /// # Errors
    /// [`StreamError::BadUrl`] for an unusable URL.
    pub fn parse(url: &SecretString) -> Result<Self, StreamError> {
        let client = redis::Client::open(url.expose_secret()).map_err(StreamError::BadUrl)?;
        Ok(Self { client })
    }

    /// Opens a reconnecting connection; `response_timeout` bounds each command (give blocking reads
    /// more than their BLOCK time).
    ///
    /// # Errors
    /// [`StreamError::Unavailable`] when Redis cannot be reached.
    pub async fn connect(&self, response_timeout: Duration) -> Result<RedisConn, StreamError> {
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(response_timeout))
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_number_of_retries(3);
        let manager = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(StreamError::redis("connect"))?;
        Ok(RedisConn {
            inner: Inner::Direct(manager),
        })
    }
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
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            Inner::Direct(_) => "direct",
        };
        f.debug_struct("RedisConn")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.inner {
            Inner::Direct(c) => c.req_packed_command(cmd),
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
        }
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Direct(c) => c.get_db(),
        }
    }
}

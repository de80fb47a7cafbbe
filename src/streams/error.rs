//! The one error type of the Redis stream adapter. Its variants say what the caller does about them; the
//! Redis error is kept as the source, never echoed in the message (it could hold a value we sent).

/// A Redis stream operation that did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The Redis URL is unusable (bad scheme or syntax). A configuration error: fix it and restart. The
    /// reason never repeats the URL.
    #[error("PW_REDIS_URL is not usable: {0}")]
    BadUrl(String),
    /// Redis could not be reached or a command failed or timed out. Transient: back off and try again;
    /// nothing was acknowledged, so no entry is lost.
    #[error("Redis {op} failed")]
    Unavailable {
        /// The command or step that failed, e.g. `XREADGROUP`.
        op: &'static str,
        /// The cause.
        #[source]
        source: redis::RedisError,
    },
}

impl StreamError {
    /// Wraps a Redis error of the command `op`.
    pub(crate) fn redis(op: &'static str) -> impl FnOnce(redis::RedisError) -> Self {
        move |source| Self::Unavailable { op, source }
    }
}

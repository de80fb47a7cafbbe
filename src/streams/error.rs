//! The one error type of the Redis stream adapter. Its variants say what the caller does about them; the
//! Redis error is kept as the source, never echoed in the message (it could hold a value we sent).

/// A Redis stream operation that did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The Redis URL is unusable (bad scheme or syntax). A configuration error: fix it and restart. The
    /// reason (the source's detail) never repeats the URL.
    #[error("PW_REDIS_URL is not usable: {}", .0.detail().unwrap_or("bad syntax"))]
    BadUrl(#[source] redis::RedisError),
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
    /// Redis answered NOGROUP: the consumer group (or its stream) is gone, so Redis lost its data (restarted
    /// without persistence, or failed over to a replica that missed writes). Recreate the groups
    /// ([`super::ensure_groups`]), report the loss, carry on.
    #[error("Redis {op} failed: the consumer group is missing (NOGROUP); Redis lost its data")]
    GroupMissing {
        /// The command or step that failed.
        op: &'static str,
    },
}

impl StreamError {
    /// An unusable URL, for `reason` (which must not hold any part of the URL).
    pub(crate) fn bad_url(reason: impl Into<String>) -> Self {
        Self::BadUrl(redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "unusable Redis URL",
            reason.into(),
        )))
    }

    /// Wraps a Redis error of the command `op`.
    pub(crate) fn redis(op: &'static str) -> impl FnOnce(redis::RedisError) -> Self {
        move |source| {
            if source.code() == Some("NOGROUP") {
                Self::GroupMissing { op }
            } else {
                Self::Unavailable { op, source }
            }
        }
    }

    /// The Redis error code (`NOGROUP`, `READONLY`, `LOADING`…), for logs: never the message, which could
    /// hold a value we sent.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::BadUrl(e) | Self::Unavailable { source: e, .. } => e.code(),
            Self::GroupMissing { .. } => Some("NOGROUP"),
        }
    }

    /// Whether Redis lost the groups (see [`StreamError::GroupMissing`]).
    pub(crate) fn is_group_missing(&self) -> bool {
        matches!(self, Self::GroupMissing { .. })
    }
}

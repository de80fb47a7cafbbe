//! What a manager API answer means for the caller (API.md, "Errors"): one enum of decisions, and the pure
//! classification of a status + body into it. No I/O here, so every rule is unit-tested.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::lenient::{self, SplitListing};

/// Longest server message kept in an error (characters); the rest is cut.
pub const MESSAGE_MAX_CHARS: usize = 200;

/// A failed manager API call, named by what the caller must do about it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401/403: the API key is wrong. A configuration error: stop pulling, say so loudly, burn no tasks.
    #[error("the manager refused the API key (HTTP {status})")]
    Unauthorized {
        /// 401 or 403.
        status: u16,
    },
    /// 404 (or `success:false` saying "not found"): the task is unknown or soft-deleted. Drop it.
    #[error("task not found")]
    NotFound,
    /// 409, 422, other 4xx, or `success:false` on a 2xx: the request was refused. Log it; do not retry blindly.
    #[error("the manager refused the request (HTTP {status}): {message}")]
    Rejected {
        /// The HTTP status (a 2xx when the envelope said `success:false`).
        status: u16,
        /// The server's `message`, cut to [`MESSAGE_MAX_CHARS`]; empty when there was none.
        message: String,
        /// True when an earlier attempt of this same call failed transiently and may have reached the server:
        /// a 409 on a retried report then most likely means the first attempt was applied.
        retried: bool,
    },
    /// 429 after the client's own retries (or with a `Retry-After` longer than the backoff cap): slow down.
    #[error("rate limited by the manager")]
    RateLimited {
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// 5xx, a timeout, a dropped connection, or a body that is not the JSON envelope; the client's retries
    /// are used up. Try again later; keep any finished result.
    #[error("transient failure: {reason}")]
    Transient {
        /// What went wrong.
        reason: TransientReason,
        /// The HTTP status, when an answer arrived.
        status: Option<u16>,
        /// The transport error, when there was one.
        #[source]
        source: Option<reqwest::Error>,
    },
    /// The envelope was fine but `data` is not a usable task. The task id is known to the caller, so it can be
    /// failed with this message. Holds the field path only, never the serde message (it can echo credentials).
    #[error("the task from the manager could not be decoded (at field `{path}`)")]
    InvalidTask {
        /// Where decoding failed, e.g. `twofa` or `.`.
        path: String,
    },
    /// The client could not be built from its settings (bad header value, TLS set-up).
    #[error("cannot build the manager API client: {reason}")]
    Config {
        /// What is wrong (never the key).
        reason: String,
    },
}

/// Why a call failed transiently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransientReason {
    /// A 5xx answer.
    #[error("server error")]
    ServerError,
    /// No answer within the request timeout.
    #[error("timed out")]
    Timeout,
    /// Connection refused, reset or dropped mid-answer.
    #[error("connection failed")]
    Connection,
    /// A 2xx whose body is not `{"success": …}` JSON.
    #[error("answer is not the JSON envelope")]
    BadBody,
    /// An unexpected 1xx/3xx status.
    #[error("unexpected status")]
    UnexpectedStatus,
}

impl ApiError {
    /// True for failures worth retrying after a delay: [`ApiError::Transient`] and [`ApiError::RateLimited`].
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. } | Self::RateLimited { .. })
    }

    /// The HTTP status behind this error, when an answer arrived.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { status } | Self::Rejected { status, .. } => Some(*status),
            Self::NotFound => Some(404),
            Self::RateLimited { .. } => Some(429),
            Self::Transient { status, .. } => *status,
            Self::InvalidTask { .. } | Self::Config { .. } => None,
        }
    }

    pub(crate) fn transient(reason: TransientReason, status: Option<u16>) -> Self {
        Self::Transient {
            reason,
            status,
            source: None,
        }
    }

    /// Classifies a transport error (no usable answer).
    pub(crate) fn from_transport(err: reqwest::Error) -> Self {
        let reason = if err.is_timeout() {
            TransientReason::Timeout
        } else {
            TransientReason::Connection
        };
        Self::Transient {
            reason,
            status: err.status().map(|s| s.as_u16()),
            source: Some(err.without_url()),
        }
    }
}

/// The JSON envelope every answer is wrapped in.
#[derive(Deserialize)]
struct Envelope {
    success: bool,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    message: Option<Value>,
}

/// A 2xx answer's `data`, as far as it could be read (see [`lenient`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Answer {
    /// The envelope's `data` (`Null` when absent, or when the listing had to be split).
    pub(crate) data: Value,
    /// Spots of damaged text replaced before parsing (invalid UTF-8, lone surrogates, …).
    pub(crate) fixes: usize,
    /// A listing whose JSON is broken, read item by item (only for a listing, only when it had to be).
    pub(crate) split: Option<SplitListing>,
}

/// Turns one HTTP answer into the envelope's `data` (or `Null`) or the error it means (API.md, "Errors").
/// Damaged text is repaired first; a `listing` whose JSON is still broken is read item by item.
pub(crate) fn classify(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    listing: bool,
) -> Result<Answer, ApiError> {
    match status {
        401 | 403 => Err(ApiError::Unauthorized { status }),
        404 => Err(ApiError::NotFound),
        429 => Err(ApiError::RateLimited { retry_after }),
        500..=599 => Err(ApiError::transient(
            TransientReason::ServerError,
            Some(status),
        )),
        400..=499 => Err(ApiError::Rejected {
            status,
            message: server_message(body),
            retried: false,
        }),
        200..=299 => classify_success(status, body, listing),
        _ => Err(ApiError::transient(
            TransientReason::UnexpectedStatus,
            Some(status),
        )),
    }
}

fn classify_success(status: u16, body: &[u8], listing: bool) -> Result<Answer, ApiError> {
    let repaired = lenient::repair(body);
    let bad_body = || ApiError::transient(TransientReason::BadBody, Some(status));
    let envelope: Envelope = match serde_json::from_str(&repaired.text) {
        Ok(envelope) => envelope,
        Err(_) if listing => {
            let split = lenient::split_listing(&repaired.text).ok_or_else(bad_body)?;
            return Ok(Answer {
                data: Value::Null,
                fixes: repaired.fixes,
                split: Some(split),
            });
        }
        Err(_) => return Err(bad_body()),
    };
    if envelope.success {
        return Ok(Answer {
            data: envelope.data,
            fixes: repaired.fixes,
            split: None,
        });
    }
    let message = envelope.message.as_ref().map(text_of).unwrap_or_default();
    if message.to_ascii_lowercase().contains("not found") {
        return Err(ApiError::NotFound);
    }
    Err(ApiError::Rejected {
        status,
        message,
        retried: false,
    })
}

/// The `message` of an error body, cut short; empty when the body holds none.
fn server_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Msg {
        #[serde(default)]
        message: Option<Value>,
    }
    serde_json::from_slice::<Msg>(body)
        .ok()
        .and_then(|m| m.message)
        .map(|m| text_of(&m))
        .unwrap_or_default()
}

fn text_of(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    crate::task::truncate_chars(&clean, MESSAGE_MAX_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, body: &str) -> ApiError {
        classify(status, None, body.as_bytes(), false).unwrap_err()
    }

    #[test]
    fn statuses_map_to_decisions() {
        assert!(matches!(
            err(401, ""),
            ApiError::Unauthorized { status: 401 }
        ));
        assert!(matches!(
            err(403, "{}"),
            ApiError::Unauthorized { status: 403 }
        ));
        assert!(matches!(
            err(404, r#"{"success":false}"#),
            ApiError::NotFound
        ));
        let e = err(409, r#"{"success":false,"message":"task is not running"}"#);
        assert!(
            matches!(&e, ApiError::Rejected { status: 409, message, retried: false } if message == "task is not running")
        );
        assert!(
            matches!(err(422, "not json"), ApiError::Rejected { status: 422, ref message, .. } if message.is_empty())
        );
        assert!(matches!(
            err(400, "{}"),
            ApiError::Rejected { status: 400, .. }
        ));
        for s in [500, 502, 503, 599] {
            let e = err(s, "<html>");
            assert!(e.is_transient() && e.status() == Some(s), "{s}");
        }
        let e = classify(429, Some(Duration::from_secs(3)), b"", false).unwrap_err();
        assert!(matches!(e, ApiError::RateLimited { retry_after: Some(d) } if d.as_secs() == 3));
        assert!(e.is_transient());
        assert!(!err(404, "").is_transient() && !err(401, "").is_transient());
    }

    #[test]
    fn success_bodies_must_be_the_envelope() {
        let data = classify(200, None, br#"{"success":true,"data":[1,2]}"#, true).unwrap();
        assert_eq!(data.data, serde_json::json!([1, 2]));
        assert_eq!((data.fixes, data.split), (0, None));
        assert_eq!(
            classify(200, None, br#"{"success":true}"#, false)
                .unwrap()
                .data,
            Value::Null
        );
        for garbage in [
            "",
            "<html>oops</html>",
            r#"{"data":[]}"#,
            r#"{"success":"yes"}"#,
            "{\"succ",
        ] {
            let e = err(200, garbage);
            assert!(
                matches!(
                    e,
                    ApiError::Transient {
                        reason: TransientReason::BadBody,
                        ..
                    }
                ),
                "{garbage:?} gave {e:?}"
            );
        }
    }

    #[test]
    fn damaged_text_is_repaired_and_a_broken_listing_is_split() {
        let body = b"{\"success\":true,\"data\":{\"about\":\"\\ud83d \xFF\"}}";
        let answer = classify(200, None, body, false).unwrap();
        assert_eq!(answer.data["about"], "\u{FFFD} \u{FFFD}");
        assert_eq!(answer.fixes, 2);
        let broken = br#"{"success":true,"data":[{"id":"t1"},{"id":"t2" x}]}"#;
        let answer = classify(200, None, broken, true).unwrap();
        let split = answer.split.unwrap();
        assert_eq!((split.items.len(), split.broken.len()), (1, 1));
        // Only a listing is split; a broken task detail stays a bad body (retried).
        let e = classify(200, None, broken, false).unwrap_err();
        assert!(matches!(
            e,
            ApiError::Transient {
                reason: TransientReason::BadBody,
                ..
            }
        ));
        let e = classify(200, None, b"<html>", true).unwrap_err();
        assert!(matches!(
            e,
            ApiError::Transient {
                reason: TransientReason::BadBody,
                ..
            }
        ));
    }

    #[test]
    fn success_false_is_treated_like_the_matching_4xx() {
        assert!(matches!(
            err(200, r#"{"success":false,"message":"task not found"}"#),
            ApiError::NotFound
        ));
        let e = err(200, r#"{"success":false,"message":"invalid state"}"#);
        assert!(
            matches!(e, ApiError::Rejected { status: 200, ref message, .. } if message == "invalid state")
        );
        assert!(!e.is_transient());
    }

    #[test]
    fn server_messages_are_cut_short_and_flattened() {
        let long = format!(r#"{{"message":"{}\nnext"}}"#, "é".repeat(500));
        let ApiError::Rejected { message, .. } = err(422, &long) else {
            panic!("not rejected")
        };
        assert_eq!(message.chars().count(), MESSAGE_MAX_CHARS);
        assert!(!message.contains('\n'));
        let e = err(422, r#"{"message":{"field":"link_rss"}}"#);
        assert!(e.to_string().contains("link_rss"), "{e}");
    }
}

//! Fault injection on the manager API: each fault is a probability rolled per request (duplicates and deletions
//! per listing). Refusing faults (5xx, 429, garbage) answer before the handler runs, so nothing is applied.
//! A dropped connection is decided up front: part of the drops (`drop_after_apply`) run the handler first and
//! then close the connection without answering, as a proxy timing out would; the books record that the answer
//! was not delivered, so the client's retry is excused by the audit.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::Shared;

/// Fault probabilities (each `0.0..=1.0`) and their parameters. Changed at runtime with `PUT /admin/faults`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Answer 500, 502 or 503 without applying anything.
    pub error_5xx: f64,
    /// Answer 429 with `Retry-After` without applying anything.
    pub too_many_requests: f64,
    /// The `Retry-After` of a 429, in seconds.
    pub retry_after_secs: u64,
    /// Wait `slow_ms` before handling the request.
    pub slow: f64,
    /// Delay of a slow answer, in milliseconds.
    pub slow_ms: u64,
    /// Close the connection without an answer.
    pub drop_connection: f64,
    /// Share of dropped connections whose request was applied before the drop.
    pub drop_after_apply: f64,
    /// Answer 200 with a body that is not JSON, without applying anything.
    pub garbage: f64,
    /// Per listing: list again a task already handed out (not yet reported).
    pub duplicate: f64,
    /// Per listed task: soft-delete it right after listing it (404 from then on).
    pub delete: f64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            error_5xx: 0.0,
            too_many_requests: 0.0,
            retry_after_secs: 1,
            slow: 0.0,
            slow_ms: 2000,
            drop_connection: 0.0,
            drop_after_apply: 0.5,
            garbage: 0.0,
            duplicate: 0.0,
            delete: 0.0,
        }
    }
}

impl Faults {
    /// Checks that every probability is within `0.0..=1.0`.
    ///
    /// # Errors
    /// The name of the first field out of range.
    pub fn validate(&self) -> Result<(), String> {
        let probabilities = [
            ("error_5xx", self.error_5xx),
            ("too_many_requests", self.too_many_requests),
            ("slow", self.slow),
            ("drop_connection", self.drop_connection),
            ("drop_after_apply", self.drop_after_apply),
            ("garbage", self.garbage),
            ("duplicate", self.duplicate),
            ("delete", self.delete),
        ];
        match probabilities.iter().find(|(_, p)| !(0.0..=1.0).contains(p)) {
            Some((name, p)) => Err(format!("{name} must be between 0 and 1 (got {p})")),
            None => Ok(()),
        }
    }

    /// Rolls the dice for one request.
    pub fn plan(&self, rng: &mut StdRng) -> Plan {
        let drop = rng.random_bool(self.drop_connection);
        let drop_after = drop && rng.random_bool(self.drop_after_apply);
        if drop && !drop_after {
            return Plan::DropBefore;
        }
        if rng.random_bool(self.error_5xx) {
            return Plan::ServerError([500, 502, 503][rng.random_range(0..3)]);
        }
        if rng.random_bool(self.too_many_requests) {
            return Plan::TooMany(self.retry_after_secs);
        }
        if rng.random_bool(self.garbage) {
            return Plan::Garbage;
        }
        let slow = rng
            .random_bool(self.slow)
            .then(|| Duration::from_millis(self.slow_ms));
        Plan::Proceed { slow, drop_after }
    }
}

/// What chaos does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Close the connection before handling.
    DropBefore,
    /// Answer this 5xx status.
    ServerError(u16),
    /// Answer 429 with this `Retry-After` (seconds).
    TooMany(u64),
    /// Answer 200 with an HTML page.
    Garbage,
    /// Handle the request, maybe after a delay, maybe dropping the answer afterwards.
    Proceed {
        /// Delay before handling.
        slow: Option<Duration>,
        /// Close the connection instead of sending the (applied) answer.
        drop_after: bool,
    },
}

/// Response marker: the connection layer closes the connection instead of sending this response.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

/// Request marker for handlers: whether their answer will reach the client.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// The answer will be dropped after the handler applied the request.
    pub dropped: bool,
}

/// A response the connection layer turns into a closed connection.
pub fn dropped_response() -> Response {
    let mut response = Response::new(Body::empty());
    response.extensions_mut().insert(DropConnection);
    response
}

/// The middleware in front of the API routes.
pub async fn layer(State(sim): State<Shared>, mut request: Request, next: Next) -> Response {
    let plan = {
        let faults = *sim.faults();
        faults.plan(&mut sim.rng())
    };
    match plan {
        Plan::DropBefore => dropped_response(),
        Plan::ServerError(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let page = format!(
                "<html><body><h1>{code} {}</h1></body></html>",
                status.canonical_reason().unwrap_or("error")
            );
            (status, [(header::CONTENT_TYPE, "text/html")], page).into_response()
        }
        Plan::TooMany(secs) => {
            let body = r#"{"success":false,"message":"too many requests"}"#;
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
        Plan::Garbage => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body>Service temporarily in maintenance mode</body></html>",
        )
            .into_response(),
        Plan::Proceed { slow, drop_after } => {
            if let Some(delay) = slow {
                tokio::time::sleep(delay).await;
            }
            request.extensions_mut().insert(Delivery {
                dropped: drop_after,
            });
            let mut response = next.run(request).await;
            if drop_after {
                response.extensions_mut().insert(DropConnection);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn no_faults_always_proceed_and_certain_faults_always_fire() {
        let mut rng = StdRng::seed_from_u64(9);
        let none = Faults::default();
        assert!((0..100).all(|_| none.plan(&mut rng)
            == Plan::Proceed {
                slow: None,
                drop_after: false
            }));
        let garbage = Faults {
            garbage: 1.0,
            ..Faults::default()
        };
        assert_eq!(garbage.plan(&mut rng), Plan::Garbage);
        let drop_all = Faults {
            drop_connection: 1.0,
            drop_after_apply: 0.0,
            ..Faults::default()
        };
        assert_eq!(drop_all.plan(&mut rng), Plan::DropBefore);
        assert!(
            Faults {
                slow: 2.0,
                ..Faults::default()
            }
            .validate()
            .is_err()
        );
    }
}

//! The simulator's own Prometheus metrics (one registry per simulator, so tests can run many in one process):
//! requests by endpoint and status, and tasks by state. The fleet's metrics live elsewhere.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use super::Shared;
use super::chaos::DropConnection;
use super::state::TaskState;

/// Requests answered, by `endpoint` (a bounded set: list, detail, start, complete, fail, admin, …) and `status` (code or `dropped`).
pub const REQUESTS_TOTAL: &str = "pw_sim_requests_total";
/// Live tasks by `state` (plus `deleted`), sampled at scrape time.
pub const TASKS: &str = "pw_sim_tasks";

/// The registry and handles.
#[derive(Debug, Clone)]
pub struct SimMetrics {
    registry: Registry,
    requests: IntCounterVec,
    tasks: IntGaugeVec,
}

impl SimMetrics {
    /// Registers the metrics in a fresh registry.
    ///
    /// # Errors
    /// A registration error (only on a programming mistake such as a bad name).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(REQUESTS_TOTAL, "Simulator requests by endpoint and status"),
            &["endpoint", "status"],
        )?;
        let tasks = IntGaugeVec::new(Opts::new(TASKS, "Simulator tasks by state"), &["state"])?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(tasks.clone()))?;
        Ok(Self {
            registry,
            requests,
            tasks,
        })
    }
}

/// A bounded label for a request path.
pub fn endpoint(path: &str) -> &'static str {
    let Some(rest) = path.strip_prefix(super::api::BASE_PATH) else {
        return match path.split('/').nth(1).unwrap_or("") {
            "audit" => "audit",
            "metrics" => "metrics",
            "admin" => "admin",
            "assets" => "assets",
            "demo" => "demo",
            _ => "other",
        };
    };
    let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["links"] => "list",
        ["links", _] => "detail",
        ["links", _, "start"] => "start",
        ["links", _, "complete"] => "complete",
        ["links", _, "fail"] => "fail",
        _ => "api_other",
    }
}

/// Middleware counting every answer.
pub async fn track(State(sim): State<Shared>, request: Request, next: Next) -> Response {
    let endpoint = endpoint(request.uri().path());
    let response = next.run(request).await;
    let status = if response.extensions().get::<DropConnection>().is_some() {
        "dropped".to_owned()
    } else {
        response.status().as_u16().to_string()
    };
    sim.metrics
        .requests
        .with_label_values(&[endpoint, status.as_str()])
        .inc();
    response
}

/// `GET /metrics` in the Prometheus text format.
pub async fn serve(State(sim): State<Shared>) -> Response {
    let audit = super::audit::audit(&mut sim.state());
    for state in TaskState::ALL {
        let n = audit.counts.get(state.name()).copied().unwrap_or(0);
        sim.metrics
            .tasks
            .with_label_values(&[state.name()])
            .set(n as i64);
    }
    sim.metrics
        .tasks
        .with_label_values(&["deleted"])
        .set(audit.deleted as i64);
    let mut out = Vec::new();
    if TextEncoder::new()
        .encode(&sim.metrics.registry.gather(), &mut out)
        .is_err()
    {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_a_bounded_set() {
        let base = super::super::api::BASE_PATH;
        assert_eq!(endpoint(&format!("{base}/links")), "list");
        assert_eq!(endpoint(&format!("{base}/links/abc")), "detail");
        assert_eq!(endpoint(&format!("{base}/links/abc/complete")), "complete");
        assert_eq!(endpoint("/admin/tasks/x"), "admin");
        assert_eq!(endpoint("/whatever/x"), "other");
    }
}

//! The HTTP endpoints of every binary: `/metrics` (Prometheus text), `/healthz` (liveness: 503 when work
//! waits without progress) and `/readyz` (503 when Redis or the manager is unreachable or the key refused).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Liveness, Metrics};

/// The router serving the three endpoints from `metrics`.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(metrics)
}

/// Serves [`router`] on `listener` until `cancel` fires.
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics))
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
}

async fn metrics_page(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        m.render(),
    )
}

async fn healthz(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    match m.health().liveness() {
        Liveness::Healthy => (StatusCode::OK, "ok\n".to_owned()),
        Liveness::Stalled { waiting } => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "stalled: work has waited {}s without progress\n",
                waiting.as_secs()
            ),
        ),
    }
}

async fn readyz(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    let r = m.health().readiness();
    if r.is_ready() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", r.problems.join(", ")),
        )
    }
}

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

use super::{Liveness, Metrics, MetricsOptions};

/// Why a service's metrics endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The metrics address could not be bound.
    #[error("cannot listen on {addr} (PW_METRICS_ADDR)")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
    /// The metrics registry refused a metric (a programming error).
    #[error("cannot register metrics")]
    Registry(#[from] prometheus::Error),
}

/// A service's metrics and the bound listener of its endpoints (serve it with [`serve`]).
///
/// # Errors
/// [`EndpointError`] when a metric cannot be registered or `addr` cannot be bound.
pub async fn bind(
    options: MetricsOptions,
    addr: std::net::SocketAddr,
) -> Result<(Arc<Metrics>, TcpListener), EndpointError> {
    let metrics = Arc::new(Metrics::new(options)?);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| EndpointError::Bind { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!(addr = %bound, "metrics and health endpoints listening");
    Ok((metrics, listener))
}

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

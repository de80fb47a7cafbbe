//! The HTTP side: the router (API under [`super::api::BASE_PATH`], admin, audit, metrics, assets) and an accept
//! loop on hyper directly, because a dropped-connection fault must close a connection without any answer,
//! which axum's `serve` cannot do. Shutdown stops accepting and gives open connections a short grace.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::chaos::DropConnection;
use super::{Shared, admin, api, assets, chaos, demo, metrics};

/// How long open connections may finish their request after shutdown began.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Largest request body of the demo platforms (cover uploads are checked against 5 MB inside).
const DEMO_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// The whole application.
pub fn router(sim: Shared) -> Router {
    let api_routes = Router::new()
        .route("/links", get(api::list))
        .route("/links/{id}", get(api::detail))
        .route("/links/{id}/start", post(api::start))
        .route("/links/{id}/complete", post(api::complete))
        .route("/links/{id}/fail", post(api::fail))
        .layer(from_fn_with_state(sim.clone(), api::require_key))
        .layer(from_fn_with_state(sim.clone(), chaos::layer));
    let admin_routes = Router::new()
        .route("/scenario", post(admin::post_scenario))
        .route("/faults", get(admin::get_faults).put(admin::put_faults))
        .route("/tasks", get(admin::list_tasks))
        .route("/tasks/{id}", get(admin::get_task))
        .route("/tasks/{id}/delete", post(admin::delete_task))
        .merge(demo::admin_routes());
    Router::new()
        .nest(api::BASE_PATH, api_routes)
        .nest("/admin", admin_routes)
        .route("/audit", get(admin::audit))
        .route("/metrics", get(metrics::serve))
        .route("/assets/cover/{file}", get(assets::cover))
        .route("/assets/broken.png", get(assets::broken))
        .merge(demo::routes().layer(DefaultBodyLimit::max(DEMO_BODY_LIMIT)))
        .layer(from_fn_with_state(sim.clone(), metrics::track))
        .with_state(sim)
}

/// The error that makes hyper close a connection without answering.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
struct Dropped;

/// Serves `app` on `listener` until `cancel` fires, then drains connections for a short grace. Requests whose
/// `Host` is a demo platform's name (not `own_host`) are routed to that platform.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    own_host: String,
    cancel: CancellationToken,
) {
    let own_host: std::sync::Arc<str> = own_host.into();
    let connections = TaskTracker::new();
    loop {
        let stream = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "simulator accept failed");
                    let pause = tokio::time::sleep(Duration::from_millis(50));
                    if cancel.run_until_cancelled(pause).await.is_none() { break; }
                    continue;
                }
            },
        };
        connections.spawn(connection(
            stream,
            app.clone(),
            own_host.clone(),
            cancel.clone(),
        ));
    }
    connections.close();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, connections.wait()).await;
}

async fn connection(
    stream: tokio::net::TcpStream,
    app: Router,
    own_host: std::sync::Arc<str>,
    cancel: CancellationToken,
) {
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let app = app.clone();
        demo::route_by_host(&mut request, &own_host);
        async move {
            let response = match app.oneshot(request.map(Body::new)).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if response.extensions().get::<DropConnection>().is_some() {
                Err(Dropped)
            } else {
                Ok(response)
            }
        }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

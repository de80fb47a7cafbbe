//! The fetcher as a service, for the binary: metrics and health endpoints, the stream sampler, the fetch
//! loop, and an orderly stop on cancellation (current page queued, lease released, server drained).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Fetcher;
use crate::config::FetcherConfig;
use crate::metrics::{self, Metrics, MetricsOptions, SamplerSpec};
use crate::streams::{self, GROUP, StreamError, StreamKeys};
use crate::task::Site;
use crate::task_api::{ApiError, ApiRequest, Observer};

/// Why the fetcher could not start (or had to stop).
#[derive(Debug, thiserror::Error)]
pub enum FetcherError {
    /// Redis is unusable: bad URL or unreachable at start-up.
    #[error("Redis is not usable (PW_REDIS_URL)")]
    Redis(#[from] StreamError),
    /// The manager API client could not be built.
    #[error("the manager API client cannot be built")]
    Api(#[from] ApiError),
    /// The metrics address could not be bound.
    #[error("cannot listen on {addr} (PW_METRICS_ADDR)")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The metrics registry refused a metric (a programming error).
    #[error("cannot register metrics")]
    Metrics(#[from] prometheus::Error),
}

/// An [`Observer`] counting every manager API request (and retry) in `metrics`.
pub fn observer(metrics: Arc<Metrics>) -> Observer {
    Arc::new(move |r: &ApiRequest| {
        metrics.api_request(r.endpoint, r.status, r.elapsed);
        if r.unreadable && r.endpoint == metrics::Endpoint::List {
            metrics.listing_lost("unreadable");
        }
        if r.retry > 0 {
            metrics.api_retry(r.endpoint);
        }
    })
}

/// Runs the fetcher until `cancel` fires: `/metrics`, `/healthz`, `/readyz` on the metrics address, the
/// stream sampler, and the fetch loop.
///
/// # Errors
/// [`FetcherError`] when a start-up step fails; once running, failures are retried, never fatal.
pub async fn run_service(
    config: FetcherConfig,
    cancel: CancellationToken,
) -> Result<(), FetcherError> {
    let metrics = Arc::new(Metrics::new(MetricsOptions {
        role: "fetcher",
        version: env!("CARGO_PKG_VERSION"),
        domains: config.fetcher.main_domains.clone(),
        stall_after: config.metrics.stall_after,
    })?);
    let addr = config.metrics.addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| FetcherError::Bind { addr, source })?;
    tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "metrics and health endpoints listening");
    let fetcher = Fetcher::connect(
        &config.streams,
        &config.api,
        config.fetcher.clone(),
        metrics.clone(),
    )
    .await?;
    let sampler_conn = streams::connect(&config.streams, std::time::Duration::from_secs(5)).await?;

    let background = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(metrics::serve(
        listener,
        metrics.clone(),
        background.clone(),
    ));
    tracker.spawn(metrics::run_sampler(
        sampler_conn,
        sampler_spec(&StreamKeys::new(&config.streams.key_prefix), &config),
        metrics.clone(),
        background.clone(),
    ));
    tracing::info!(token = fetcher.lease().token(), "fetcher started");
    fetcher.run(cancel).await;
    background.cancel();
    tracker.close();
    tracker.wait().await;
    tracing::info!("fetcher stopped");
    Ok(())
}

fn sampler_spec(keys: &StreamKeys, config: &FetcherConfig) -> SamplerSpec {
    SamplerSpec {
        task_streams: Site::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), keys.tasks(*s)))
            .collect(),
        dead_stream: keys.dead(),
        group: GROUP.to_owned(),
        outbox_pattern: Some(keys.outbox_pattern()),
        interval: config.metrics.sample_interval,
    }
}

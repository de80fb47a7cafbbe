//! The fetcher as a service, for the binary: metrics and health endpoints, the stream sampler, the fetch
//! loop, and an orderly stop on cancellation (current page queued, lease released, server drained).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::Fetcher;
use crate::config::FetcherConfig;
use crate::metrics::{self, EndpointError, Metrics, MetricsOptions, SamplerSpec};
use crate::shutdown::Background;
use crate::streams::{self, GROUP, StreamError, StreamKeys};
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
    /// The metrics endpoint could not be set up.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
}

/// An `Observer` counting every manager API request (and retry) in `metrics`.
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
    let options = MetricsOptions {
        role: "fetcher",
        version: env!("CARGO_PKG_VERSION"),
        domains: config.fetcher.main_domains.clone(),
        stall_after: config.metrics.stall_after,
    };
    let (metrics, listener) = metrics::bind(options, config.metrics.addr).await?;
    let fetcher = Fetcher::connect(
        &config.streams,
        &config.api,
        config.fetcher.clone(),
        metrics.clone(),
    )
    .await?;
    let sampler_conn = streams::connect(&config.streams, std::time::Duration::from_secs(5)).await?;

    let background = Background::new();
    background.spawn(metrics::serve(
        listener,
        metrics.clone(),
        background.token(),
    ));
    let spec = sampler_spec(&StreamKeys::new(&config.streams.key_prefix), &config);
    background.spawn(metrics::run_sampler(
        sampler_conn,
        spec,
        metrics.clone(),
        background.token(),
    ));
    tracing::info!(token = fetcher.lease().token(), "fetcher started");
    fetcher.run(cancel).await;
    background.stop().await;
    tracing::info!("fetcher stopped");
    Ok(())
}

fn sampler_spec(keys: &StreamKeys, config: &FetcherConfig) -> SamplerSpec {
    SamplerSpec {
        task_streams: keys.task_streams(),
        dead_stream: keys.dead(),
        group: GROUP.to_owned(),
        outbox_pattern: Some(keys.outbox_pattern()),
        interval: config.metrics.sample_interval,
    }
}

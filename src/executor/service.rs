//! The executor as a service, for the binary: drivers from configuration, metrics and health endpoints,
//! the stream sampler, the browser pool sampler and mail observer, the claim loop, and an orderly drain on
//! cancellation.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Executor, ExecutorError, drivers_from_config, observe_mail, run_pool_sampler};
use crate::config::ExecutorConfig;
use crate::driver::Drivers;
use crate::metrics::{self, EndpointError, MetricsOptions, SamplerSpec};
use crate::recipe::{RecipeSetup, SetupError};
use crate::shutdown::Background;
use crate::streams::{self, GROUP, StreamKeys};

/// Why the executor service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Redis or the API client.
    #[error(transparent)]
    Executor(#[from] ExecutorError),
    /// The metrics endpoint could not be set up.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// Redis is unusable for the sampler.
    #[error("Redis is not usable (PW_REDIS_URL)")]
    Redis(#[from] streams::StreamError),
    /// The recipes, browser pool or mailbox settings are unusable (an invalid recipe stops start-up).
    #[error("cannot set up the recipe drivers")]
    Recipes(#[from] SetupError),
}

/// Runs the executor until `cancel` fires, then drains (running tasks finish up to the grace period).
///
/// # Errors
/// [`ServiceError`] when a start-up step fails; once running, failures are retried, never fatal.
pub async fn run_service(
    config: ExecutorConfig,
    cancel: CancellationToken,
) -> Result<(), ServiceError> {
    let (drivers, recipes) = build_drivers(&config)?;
    let mut domains = config.executor.main_domains.clone();
    domains.extend(drivers.domains());
    let options = MetricsOptions {
        role: "executor",
        version: env!("CARGO_PKG_VERSION"),
        domains,
        stall_after: config.metrics.stall_after,
    };
    let (metrics, listener) = metrics::bind(options, config.metrics.addr).await?;
    if drivers.domains().is_empty() {
        tracing::warn!(
            "no driver configured: every task will be failed with \"no driver for domain\""
        );
    }
    let executor = Executor::new(&config, drivers, metrics.clone()).await?;
    let sampler_conn = streams::connect(&config.streams, Duration::from_secs(5)).await?;
    let spec = sampler_spec(&config);
    let background = Background::new();
    background.spawn(metrics::serve(
        listener,
        metrics.clone(),
        background.token(),
    ));
    if let Some(recipes) = &recipes {
        observe_mail(recipes, metrics.clone());
        let interval = config.metrics.sample_interval;
        let pool = recipes.pool.clone();
        background.spawn(run_pool_sampler(
            pool,
            metrics.clone(),
            interval,
            background.token(),
        ));
    }
    background.spawn(metrics::run_sampler(
        sampler_conn,
        spec,
        metrics,
        background.token(),
    ));
    executor.run(cancel).await;
    if let Some(recipes) = recipes {
        recipes.pool.shutdown().await;
    }
    background.stop().await;
    Ok(())
}

/// The drivers the binary serves: one per recipe domain from `PW_RECIPES_DIR` (browser), plus the
/// synthetic driver on `PW_SYNTHETIC_DOMAINS`, which wins over a recipe for the same domain. With synthetic
/// domains configured and no recipes directory, no browser is set up (benchmarks on machines without
/// Chromium); otherwise a missing or invalid recipe stops start-up. Returns the recipes' pool and mailbox too.
fn build_drivers(config: &ExecutorConfig) -> Result<(Drivers, Option<RecipeSetup>), ServiceError> {
    let synthetic = drivers_from_config(&config.executor);
    if !synthetic.domains().is_empty() && !config.recipe.browser.recipes_dir.is_dir() {
        tracing::info!(domains = ?synthetic.domains(), "synthetic driver only (no recipes directory)");
        return Ok((synthetic, None));
    }
    let recipes = crate::recipe::setup(&config.recipe, Some(&config.streams))?;
    let mut drivers = Drivers::new();
    for domain in recipes.drivers.domains().iter().chain(&synthetic.domains()) {
        if let Some(d) = synthetic
            .get(domain)
            .or_else(|| recipes.drivers.get(domain))
        {
            drivers.insert(domain, d);
        }
    }
    Ok((drivers, Some(recipes)))
}

fn sampler_spec(config: &ExecutorConfig) -> SamplerSpec {
    let keys = StreamKeys::new(&config.streams.key_prefix);
    SamplerSpec {
        task_streams: keys.task_streams(),
        dead_stream: keys.dead(),
        group: GROUP.to_owned(),
        outbox_pattern: None, // the outbox loop sets the outbox gauge
        interval: config.metrics.sample_interval,
    }
}

//! Feeds the metrics of the recipe drivers' shared services: every mail wait (`pw_mail_wait_seconds`, through
//! the mailbox's observer) and samples of the browser pool (open contexts, PSS, restarts by reason). The pool
//! and the mailbox know nothing of the registry; only this module, in the executor, joins them.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::browser::{BrowserPool, PoolStats, RestartReason};
use crate::metrics::Metrics;
use crate::recipe::RecipeSetup;

/// Reports every mail wait of the recipe drivers (they share one mailbox) to `pw_mail_wait_seconds`.
/// Returns `false` when the mailbox already had an observer (it keeps that one).
pub fn observe_mail(recipes: &RecipeSetup, metrics: Arc<Metrics>) -> bool {
    recipes.observe_mail(Arc::new(move |outcome, waited| {
        metrics.mail_wait(outcome, waited);
    }))
}

/// Turns [`BrowserPool::stats`] samples into the browser metrics: `pw_browser_contexts` and
/// `pw_browser_memory_bytes` are set to the sample, `pw_browser_restarts_total` grows by the restarts since
/// the previous sample.
#[derive(Debug, Default)]
pub struct PoolSampler {
    last: PoolStats,
}

impl PoolSampler {
    /// Reads the pool once (PSS from `/proc`) and updates `metrics`.
    pub fn sample(&mut self, pool: &BrowserPool, metrics: &Metrics) {
        let now = pool.stats();
        metrics.set_browser(now.open_contexts, now.pss_bytes);
        for (reason, was, is) in [
            (
                RestartReason::Recycle,
                self.last.restarts_recycle,
                now.restarts_recycle,
            ),
            (
                RestartReason::Memory,
                self.last.restarts_memory,
                now.restarts_memory,
            ),
            (
                RestartReason::Crash,
                self.last.restarts_crash,
                now.restarts_crash,
            ),
        ] {
            metrics.browser_restarts(reason, is.saturating_sub(was));
        }
        self.last = now;
    }
}

/// Samples `pool` every `interval` until `cancel`, then once more (the last restarts are not lost).
pub async fn run_pool_sampler(
    pool: BrowserPool,
    metrics: Arc<Metrics>,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut sampler = PoolSampler::default();
    loop {
        sampler.sample(&pool, &metrics);
        if cancel
            .run_until_cancelled(tokio::time::sleep(interval))
            .await
            .is_none()
        {
            break;
        }
    }
    sampler.sample(&pool, &metrics);
}

//! Every metric of the fetcher and executor: names (an API, see `docs/metrics.md`), handles on one
//! per-process [`Registry`], the `/metrics` + health server ([`serve`]) and the Redis stream sampler
//! ([`run_sampler`]). Imports only the ground floor, `task` (for [`Site`] and the one domain normaliser);
//! owns the label enums in [`labels`], which the adapters use as their own types. Each role exports only
//! the families it sets (`exported_by`); labels are bounded and every combination exists (at 0) from
//! construction on.

mod control;
mod health;
pub mod labels;
mod names;
mod sampler;
mod server;

use std::time::Duration;

use prometheus::{Encoder, IntGaugeVec, Opts, Registry, TextEncoder};

pub use control::{
    BREAKER_OPENED, BREAKER_STATE, ControlMetrics, DOMAIN_PAUSED, DomainControl, TASKS_HELD,
};
pub use health::{Health, Liveness, Readiness};
pub use labels::{Endpoint, ErrorClass, MailOutcome, Outcome, RestartReason, Stage, StatusClass};
pub use names::*;
pub use sampler::{SamplerSpec, run_sampler, sample_once};
pub use server::{EndpointError, bind, router, serve};

use crate::task::{Site, normalise_domain};
use labels::OTHER_DOMAIN;
use names::{Counters, Gauges, Histograms};

/// What a process tells [`Metrics::new`] about itself.
#[derive(Debug, Clone)]
pub struct MetricsOptions {
    /// `fetcher` or `executor` (the `role` label of `pw_build_info`). A process exports only the families its
    /// role sets (`exported_by`); any other value (a test's) exports every family.
    pub role: &'static str,
    /// The crate version (`env!("CARGO_PKG_VERSION")`).
    pub version: &'static str,
    /// Domains that get their own `domain` label value (main domains and every driver's domains);
    /// every other domain is counted as `other`.
    pub domains: Vec<String>,
    /// How long work may wait without progress before `/healthz` fails.
    pub stall_after: Duration,
}

/// Every metric handle of one process, plus its [`Health`]. Built once per binary, shared as `Arc<Metrics>`.
/// Recording never fails and never allocates a new series after construction (unknown values fold).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    domains: Vec<String>,
    counters: Counters,
    histograms: Histograms,
    gauges: Gauges,
    health: Health,
}

impl Metrics {
    /// Registers every metric the role exports (and the process collector on Linux) on a fresh registry and
    /// sets every label combination to 0.
    ///
    /// # Errors
    /// Only on a programming error in the metric definitions (a duplicate or invalid name).
    pub fn new(opts: MetricsOptions) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let role_registry = names::RoleRegistry {
            registry: &registry,
            role: opts.role,
        };
        let mut domains: Vec<String> = opts.domains.iter().map(|d| normalise_domain(d)).collect();
        domains.retain(|d| !d.is_empty() && d != OTHER_DOMAIN);
        domains.sort();
        domains.dedup();
        let (counters, histograms, gauges) = (
            names::counters(&role_registry)?,
            names::histograms(&role_registry)?,
            names::gauges(&role_registry)?,
        );
        let metrics = Self {
            counters,
            histograms,
            gauges,
            health: Health::new(opts.stall_after),
            domains,
            registry,
        };
        let info = IntGaugeVec::new(
            Opts::new(BUILD_INFO, names::BUILD_INFO_HELP),
            &["role", "version"],
        )?;
        info.with_label_values(&[opts.role, opts.version]).set(1);
        metrics.registry.register(Box::new(info))?;
        #[cfg(target_os = "linux")]
        metrics.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        metrics.preinitialise();
        Ok(metrics)
    }

    fn preinitialise(&self) {
        let (c, h, g) = (&self.counters, &self.histograms, &self.gauges);
        let domains: Vec<&str> = self
            .domains
            .iter()
            .map(String::as_str)
            .chain([OTHER_DOMAIN])
            .collect();
        for s in Site::ALL.map(Site::as_str) {
            c.fetched.with_label_values(&[s]);
            c.deduplicated.with_label_values(&[s]);
            h.fetch_to_start.with_label_values(&[s]);
            for d in &domains {
                c.enqueued.with_label_values(&[s, d]);
                for o in Outcome::ALL {
                    c.finished.with_label_values(&[s, d, o.as_str()]);
                }
            }
            for o in Outcome::ALL {
                h.task.with_label_values(&[s, o.as_str()]);
            }
            for st in Stage::ALL {
                h.stage.with_label_values(&[s, st.as_str()]);
            }
            for e in ErrorClass::ALL {
                c.failures.with_label_values(&[s, e.as_str()]);
                c.task_retries.with_label_values(&[s, e.as_str()]);
            }
            g.stream_lag.with_label_values(&[s]);
            g.stream_pending.with_label_values(&[s]);
        }
        for st in STREAMS {
            g.stream_length.with_label_values(&[st]);
        }
        for e in Endpoint::ALL {
            h.api.with_label_values(&[e.as_str()]);
            c.api_retries.with_label_values(&[e.as_str()]);
            for sc in StatusClass::ALL {
                c.api_requests.with_label_values(&[e.as_str(), sc.as_str()]);
            }
        }
        for r in RestartReason::ALL {
            c.browser_restarts.with_label_values(&[r.as_str()]);
        }
        for m in MailOutcome::ALL {
            h.mail_wait.with_label_values(&[m.as_str()]);
        }
        for r in LISTING_LOSS_REASONS {
            c.listings_lost.with_label_values(&[r]);
        }
        for f in UNDECODABLE_FATES {
            c.listed_undecodable.with_label_values(&[f]);
        }
        for op in DATA_LOSS_OPS {
            c.data_loss.with_label_values(&[op]);
        }
    }

    /// The registry (for tests and for adding process-specific collectors).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Liveness and readiness state.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding our own well-formed families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Domains with their own `domain` label value (sorted; every other is `other`).
    pub(crate) fn known_domains(&self) -> &[String] {
        &self.domains
    }

    /// The `domain` label value of `domain`: itself (normalised) when known, else `other`.
    pub(crate) fn domain_label(&self, domain: &str) -> &str {
        let d = normalise_domain(domain);
        match self.domains.binary_search(&d) {
            Ok(i) => &self.domains[i],
            Err(_) => OTHER_DOMAIN,
        }
    }

    /// A listing whose tasks are possibly handed out to us and will never run; `reason` is one of
    /// [`LISTING_LOSS_REASONS`] (anything else folds into `unreadable`).
    pub(crate) fn listing_lost(&self, reason: &str) {
        let reason = LISTING_LOSS_REASONS
            .into_iter()
            .find(|r| *r == reason)
            .unwrap_or("unreadable");
        self.counters
            .listings_lost
            .with_label_values(&[reason])
            .inc();
    }

    /// Redis lost the task ledger (NOGROUP), noticed at `op` (one of [`DATA_LOSS_OPS`]; anything else folds
    /// into `claim`).
    pub(crate) fn redis_data_loss(&self, op: &str) {
        let op = DATA_LOSS_OPS
            .into_iter()
            .find(|o| *o == op)
            .unwrap_or("claim");
        self.counters.data_loss.with_label_values(&[op]).inc();
    }

    /// The last sampled `pending` of each task stream (what a loss of the ledger may have cost).
    pub(crate) fn last_pending(&self) -> Vec<(&'static str, i64)> {
        Site::ALL
            .iter()
            .map(|s| {
                let v = self
                    .gauges
                    .stream_pending
                    .with_label_values(&[s.as_str()])
                    .get();
                (s.as_str(), v)
            })
            .collect()
    }

    /// Listed items that could not be decoded: `queued` by a salvaged id, or `dropped` without one.
    pub(crate) fn listed_undecodable(&self, queued: u64, dropped: u64) {
        let c = &self.counters.listed_undecodable;
        c.with_label_values(&["queued"]).inc_by(queued);
        c.with_label_values(&["dropped"]).inc_by(dropped);
    }

    /// A task listed by `GET /links`.
    pub(crate) fn task_fetched(&self, site: Site) {
        self.counters
            .fetched
            .with_label_values(&[site.as_str()])
            .inc();
    }

    /// A task written to its stream.
    pub(crate) fn task_enqueued(&self, site: Site, domain: &str) {
        let d = self.domain_label(domain);
        self.counters
            .enqueued
            .with_label_values(&[site.as_str(), d])
            .inc();
    }

    /// A listed task skipped because it is already in our hands.
    pub(crate) fn task_deduplicated(&self, site: Site) {
        self.counters
            .deduplicated
            .with_label_values(&[site.as_str()])
            .inc();
    }

    /// A task left our hands. Also counts as progress for `/healthz`.
    /// `claimed_for` is the time from this process's claim of the entry to its ack (`None` for a result
    /// reported from the outbox alone: no claim to measure from).
    pub(crate) fn task_finished(
        &self,
        site: Site,
        domain: &str,
        outcome: Outcome,
        claimed_for: Option<Duration>,
    ) {
        let (s, d) = (site.as_str(), self.domain_label(domain));
        self.counters
            .finished
            .with_label_values(&[s, d, outcome.as_str()])
            .inc();
        if let Some(elapsed) = claimed_for {
            self.histograms
                .task
                .with_label_values(&[s, outcome.as_str()])
                .observe(elapsed.as_secs_f64());
        }
        self.health.record_progress();
    }

    /// The class of the last error of a task reported with `fail`.
    pub(crate) fn task_failure(&self, site: Site, class: ErrorClass) {
        self.counters
            .failures
            .with_label_values(&[site.as_str(), class.as_str()])
            .inc();
    }

    /// A failed attempt that will be tried again.
    pub(crate) fn task_retry(&self, site: Site, class: ErrorClass) {
        self.counters
            .task_retries
            .with_label_values(&[site.as_str(), class.as_str()])
            .inc();
    }

    /// Time one stage of a task took.
    pub(crate) fn stage_duration(&self, site: Site, stage: Stage, elapsed: Duration) {
        let h = self
            .histograms
            .stage
            .with_label_values(&[site.as_str(), stage.as_str()]);
        h.observe(elapsed.as_secs_f64());
    }

    /// Time from the fetcher's XADD (the entry's fetch time) to the executor's start of work.
    pub(crate) fn fetch_to_start(&self, site: Site, elapsed: Duration) {
        let h = self
            .histograms
            .fetch_to_start
            .with_label_values(&[site.as_str()]);
        h.observe(elapsed.as_secs_f64());
    }

    /// Tasks running now and free browser slots.
    pub(crate) fn set_slots(&self, in_flight: usize, free: usize) {
        self.gauges.in_flight.set(in_flight as i64);
        self.gauges.free_slots.set(free as i64);
    }

    /// One manager API request; `status` is `None` when no HTTP response came. Also updates readiness:
    /// a response under 500 means the manager is reachable, 401/403 means the API key is refused, and a
    /// 2xx means it is accepted.
    pub(crate) fn api_request(&self, endpoint: Endpoint, status: Option<u16>, elapsed: Duration) {
        self.api_class(endpoint, StatusClass::of(status), elapsed);
        match status {
            Some(401 | 403) => self.set_api_key_refused(true),
            Some(200..=299) => self.set_api_key_refused(false),
            _ => {}
        }
    }

    fn api_class(&self, endpoint: Endpoint, class: StatusClass, elapsed: Duration) {
        let e = endpoint.as_str();
        self.counters
            .api_requests
            .with_label_values(&[e, class.as_str()])
            .inc();
        self.histograms
            .api
            .with_label_values(&[e])
            .observe(elapsed.as_secs_f64());
        let reachable = !matches!(class, StatusClass::ServerError | StatusClass::NoAnswer);
        self.set_manager_reachable(reachable);
    }

    /// A transient manager API failure about to be retried.
    pub(crate) fn api_retry(&self, endpoint: Endpoint) {
        self.counters
            .api_retries
            .with_label_values(&[endpoint.as_str()])
            .inc();
    }

    /// Whether the last Redis command succeeded (readiness and `pw_redis_up`).
    pub(crate) fn set_redis_reachable(&self, up: bool) {
        self.gauges.redis_up.set(i64::from(up));
        self.health.set_redis(up);
    }

    /// Whether the manager answered the last request (readiness and `pw_manager_up`).
    pub(crate) fn set_manager_reachable(&self, up: bool) {
        self.gauges.manager_up.set(i64::from(up));
        self.health.set_manager(up);
    }

    /// Whether the manager refuses our API key (readiness and `pw_api_key_refused`).
    pub(crate) fn set_api_key_refused(&self, refused: bool) {
        self.gauges.api_key_refused.set(i64::from(refused));
        self.health.set_api_key_refused(refused);
    }

    /// Whether this fetcher holds the leader lease.
    pub(crate) fn set_fetcher_leader(&self, leader: bool) {
        self.gauges.leader.set(i64::from(leader));
    }

    /// Whether this fetcher stopped pulling because a stream's backlog reached its cap.
    pub(crate) fn set_fetcher_backpressure(&self, paused: bool) {
        self.gauges.backpressure.set(i64::from(paused));
    }

    /// `count` browser restarts for `reason` (the pool's counters since the last sample).
    pub(crate) fn browser_restarts(&self, reason: RestartReason, count: u64) {
        self.counters
            .browser_restarts
            .with_label_values(&[reason.as_str()])
            .inc_by(count);
    }

    /// Browser contexts open now and the browser's memory (PSS of its process tree, bytes).
    pub(crate) fn set_browser(&self, contexts: usize, memory_bytes: u64) {
        self.gauges.browser_contexts.set(contexts as i64);
        self.gauges
            .browser_memory
            .set(i64::try_from(memory_bytes).unwrap_or(i64::MAX));
    }

    /// One wait for a verification mail.
    pub fn mail_wait(&self, outcome: MailOutcome, elapsed: Duration) {
        let h = self
            .histograms
            .mail_wait
            .with_label_values(&[outcome.as_str()]);
        h.observe(elapsed.as_secs_f64());
    }

    /// One sample of a stream (`stream` is `main`, `sub` or `dead`); lag and pending only for task streams.
    pub(crate) fn set_stream(&self, stream: &str, length: u64, lag_pending: Option<(u64, u64)>) {
        let s = names::stream_label(stream);
        let g = &self.gauges;
        g.stream_length.with_label_values(&[s]).set(clamp(length));
        if let Some((lag, pending)) = lag_pending {
            g.stream_lag.with_label_values(&[s]).set(clamp(lag));
            g.stream_pending.with_label_values(&[s]).set(clamp(pending));
        }
    }

    /// Results waiting in the outbox.
    pub(crate) fn set_outbox(&self, entries: u64) {
        self.gauges.outbox.set(clamp(entries));
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;

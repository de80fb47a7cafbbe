//! The fleet-control families of an executor: tasks it holds because their domain is paused, which domains
//! are paused, the state of each domain's circuit breaker, and breaker openings. Registered on the process's
//! registry by the executor only ([`ControlMetrics::register`]); `domain` folds through
//! [`Metrics::domain_label`], so labels stay bounded.

use prometheus::{IntCounterVec, IntGaugeVec, Opts};

use super::Metrics;
use super::labels::OTHER_DOMAIN;

/// Tasks this executor holds un-started because their domain is paused, by `domain`.
pub const TASKS_HELD: &str = "pw_tasks_held";
/// 1 while a domain is paused (by an operator or the breaker), by `domain`, `by`.
pub const DOMAIN_PAUSED: &str = "pw_domain_paused";
/// A domain's circuit breaker: 0 closed, 1 open, 2 half-open (its probe runs), by `domain`.
pub const BREAKER_STATE: &str = "pw_breaker_state";
/// Times a domain's breaker opened (or re-opened after a failed probe) here, by `domain`.
pub const BREAKER_OPENED: &str = "pw_breaker_opened_total";

/// Who paused a domain, as the `by` label.
pub(crate) const PAUSED_BY: [&str; 2] = ["operator", "breaker"];

/// One domain's control state as an executor sees it, for [`ControlMetrics::set`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainControl {
    /// Normalised domain.
    pub domain: String,
    /// Tasks held here.
    pub held: u64,
    /// `operator` or `breaker` while paused.
    pub paused_by: Option<&'static str>,
    /// 0 closed, 1 open, 2 half-open.
    pub breaker: i64,
}

/// Handles on the control families.
#[derive(Debug, Clone)]
pub struct ControlMetrics {
    held: IntGaugeVec,
    paused: IntGaugeVec,
    breaker: IntGaugeVec,
    opened: IntCounterVec,
    domains: Vec<String>,
}

impl ControlMetrics {
    /// Registers the families on `metrics`' registry, every known domain (and `other`) at 0.
    ///
    /// # Errors
    /// When registered twice on one registry.
    pub fn register(metrics: &Metrics) -> Result<Self, prometheus::Error> {
        let held = IntGaugeVec::new(
            Opts::new(
                TASKS_HELD,
                "Tasks held un-started because their domain is paused",
            ),
            &["domain"],
        )?;
        let paused = IntGaugeVec::new(
            Opts::new(
                DOMAIN_PAUSED,
                "1 while the domain is paused (by operator or breaker)",
            ),
            &["domain", "by"],
        )?;
        let breaker = IntGaugeVec::new(
            Opts::new(
                BREAKER_STATE,
                "Circuit breaker of the domain: 0 closed, 1 open, 2 half-open",
            ),
            &["domain"],
        )?;
        let opened = IntCounterVec::new(
            Opts::new(
                BREAKER_OPENED,
                "Times the domain's circuit breaker opened here",
            ),
            &["domain"],
        )?;
        let registry = metrics.registry();
        registry.register(Box::new(held.clone()))?;
        registry.register(Box::new(paused.clone()))?;
        registry.register(Box::new(breaker.clone()))?;
        registry.register(Box::new(opened.clone()))?;
        let mut domains: Vec<String> = metrics.known_domains().to_vec();
        domains.push(OTHER_DOMAIN.to_owned());
        let m = Self {
            held,
            paused,
            breaker,
            opened,
            domains,
        };
        for d in &m.domains {
            m.held.with_label_values(&[d]);
            m.breaker.with_label_values(&[d]);
            m.opened.with_label_values(&[d]);
            for by in PAUSED_BY {
                m.paused.with_label_values(&[d, by]);
            }
        }
        Ok(m)
    }

    /// Sets every gauge from `rows` (domains not in it are at 0); unknown domains fold into `other`
    /// (held summed, paused and breaker the highest).
    pub fn set(&self, metrics: &Metrics, rows: &[DomainControl]) {
        let mut held = std::collections::HashMap::<&str, i64>::new();
        let mut breaker = std::collections::HashMap::<&str, i64>::new();
        let mut paused = std::collections::HashSet::<(&str, &str)>::new();
        for r in rows {
            let d = metrics.domain_label(&r.domain);
            *held.entry(d).or_default() += r.held as i64;
            let b = breaker.entry(d).or_default();
            *b = (*b).max(r.breaker);
            if let Some(by) = r.paused_by {
                paused.insert((d, by));
            }
        }
        for d in &self.domains {
            let d = d.as_str();
            self.held
                .with_label_values(&[d])
                .set(held.get(d).copied().unwrap_or(0));
            self.breaker
                .with_label_values(&[d])
                .set(breaker.get(d).copied().unwrap_or(0));
            for by in PAUSED_BY {
                self.paused
                    .with_label_values(&[d, by])
                    .set(i64::from(paused.contains(&(d, by))));
            }
        }
    }

    /// A breaker opened (or re-opened) here.
    pub(crate) fn breaker_opened(&self, metrics: &Metrics, domain: &str) {
        self.opened
            .with_label_values(&[metrics.domain_label(domain)])
            .inc();
    }
}

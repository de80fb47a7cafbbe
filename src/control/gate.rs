//! The executor's side of fleet control. Before a claimed task starts, [`Gate::sort`] holds it when its
//! domain is paused (it keeps its stream entry and lease, but no concurrency slot); [`Gate::release_next`]
//! gives held tasks back once their domain is resumed, when one may run as the breaker's probe, or when
//! they waited `PW_PAUSE_HOLD_SECS` (then [`Gate::take_expired`] has the `fail` message). [`Gate::finished`]
//! feeds each run's end to the breaker. [`Gate::run`] re-reads the pauses and this executor's drain request
//! every `PW_CONTROL_POLL_MS`; a task therefore starts at most one poll after its domain was paused.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::breaker::{Verdict, verdict};
use super::{Breaker, BreakerState, Control, DomainTask, FailureCount, Pause, PausedBy, now_ms};
use crate::config::ControlSettings;
use crate::driver::DriverError;
use crate::metrics::{ControlMetrics, DomainControl, Metrics};
use crate::streams::StreamError;

/// What may happen to a task of a domain now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Start it.
    Run,
    /// Start it as the probe of its domain's half-open breaker.
    Probe,
    /// Keep it un-started.
    Hold,
}

/// A task given back by `Gate::release_next`.
#[derive(Debug)]
pub struct Released<T> {
    /// The held item.
    pub item: T,
    /// Why it is given back.
    pub reason: ReleaseReason,
}

/// Why a held task is given back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseReason {
    /// Its domain was resumed (or it runs as the probe).
    Admitted,
    /// It waited too long: fail it with this message.
    Expired(String),
}

struct Held<T> {
    item: T,
    domain: String,
    task_id: String,
    since: Instant,
}

/// What the last poll read.
#[derive(Debug, Default, Clone)]
struct View {
    paused: BTreeMap<String, Pause>,
    breakers: BTreeMap<String, Breaker>,
}

/// Fleet control as one executor applies it. `T` is the executor's claimed entry.
pub struct Gate<T> {
    control: Control,
    settings: ControlSettings,
    owner: String,
    probe_ttl: Duration,
    metrics: Arc<Metrics>,
    families: Option<ControlMetrics>,
    view: Mutex<View>,
    held: Mutex<Vec<Held<T>>>,
    probes: Mutex<HashSet<String>>,
    expired: Mutex<HashMap<String, String>>,
}

impl<T> std::fmt::Debug for Gate<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("owner", &self.owner)
            .field("held", &self.held_count())
            .finish_non_exhaustive()
    }
}

fn lock<X>(m: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<T> Gate<T> {
    /// The gate of the executor `owner` (its consumer name). `probe_ttl`: how long a probe may run before
    /// another task may probe instead (its executor may have died): longer than a task's whole run.
    pub fn new(
        control: Control,
        settings: ControlSettings,
        owner: &str,
        probe_ttl: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        let families = match ControlMetrics::register(&metrics) {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!(error = %e, "control metrics not registered");
                None
            }
        };
        Self {
            control,
            settings,
            owner: owner.to_owned(),
            probe_ttl,
            metrics,
            families,
            view: Mutex::new(View::default()),
            held: Mutex::new(Vec::new()),
            probes: Mutex::new(HashSet::new()),
            expired: Mutex::new(HashMap::new()),
        }
    }

    /// Tasks held now.
    pub fn held_count(&self) -> usize {
        lock(&self.held).len()
    }

    /// What may happen now to `task_id` of `domain` (normalised), from the last poll; asks Redis only
    /// when a breaker's probe is due.
    pub(crate) async fn admit(&self, domain: &str, task_id: &str) -> Admission {
        let pause = lock(&self.view).paused.get(domain).cloned();
        let Some(pause) = pause else {
            return Admission::Run;
        };
        let due = pause.probe_due_ms.unwrap_or(u64::MAX);
        if pause.by == PausedBy::Operator || now_ms() < due {
            return Admission::Hold;
        }
        let asked = self
            .control
            .try_probe(
                DomainTask { domain, task_id },
                &self.owner,
                self.probe_ttl,
                now_ms(),
            )
            .await;
        match asked {
            Ok(Admission::Probe) => {
                tracing::info!(%domain, %task_id, "circuit breaker half-open: this task is the probe");
                lock(&self.probes).insert(task_id.to_owned());
                self.refresh_quietly().await;
                Admission::Probe
            }
            Ok(other) => other,
            Err(e) => {
                tracing::warn!(%domain, error = %e, "cannot ask for the breaker's probe; holding");
                Admission::Hold
            }
        }
    }

    /// Keeps the items whose domain may run, holds the others. `key` gives an item's (domain, task id);
    /// items without one (undecodable) always pass.
    pub(crate) async fn sort(
        &self,
        items: Vec<T>,
        key: impl Fn(&T) -> Option<(String, String)>,
    ) -> Vec<T> {
        let mut pass = Vec::with_capacity(items.len());
        for item in items {
            let Some((domain, task_id)) = key(&item) else {
                pass.push(item);
                continue;
            };
            if self.admit(&domain, &task_id).await == Admission::Hold {
                tracing::info!(%domain, %task_id, "domain paused: task held un-started");
                lock(&self.held).push(Held {
                    item,
                    domain,
                    task_id,
                    since: Instant::now(),
                });
                self.publish();
            } else {
                pass.push(item);
            }
        }
        pass
    }

    /// A held item that may go now: its domain was resumed, it may probe, or it waited past the hold time.
    pub(crate) async fn release_next(&self) -> Option<Released<T>> {
        let candidates: Vec<(String, String, bool)> = {
            let held = lock(&self.held);
            let mut seen = HashSet::new();
            held.iter()
                .filter(|h| {
                    seen.insert(h.domain.clone()) || h.since.elapsed() >= self.settings.pause_hold
                })
                .map(|h| {
                    let expired = h.since.elapsed() >= self.settings.pause_hold;
                    (h.domain.clone(), h.task_id.clone(), expired)
                })
                .collect()
        };
        for (domain, task_id, expired) in candidates {
            let admission = if expired {
                let reason = lock(&self.view).paused.get(&domain).map_or_else(
                    || "domain paused by operator".to_owned(),
                    Pause::fail_message,
                );
                ReleaseReason::Expired(reason)
            } else if self.admit(&domain, &task_id).await == Admission::Hold {
                continue;
            } else {
                ReleaseReason::Admitted
            };
            let item = {
                let mut held = lock(&self.held);
                match held.iter().position(|h| h.task_id == task_id) {
                    Some(i) => held.remove(i).item,
                    None => continue,
                }
            };
            if let ReleaseReason::Expired(reason) = &admission {
                tracing::warn!(%domain, %task_id, %reason, "held past PW_PAUSE_HOLD_SECS; failing it");
                lock(&self.expired).insert(task_id, reason.clone());
            } else {
                tracing::info!(%domain, %task_id, "domain resumed: held task released");
            }
            self.publish();
            return Some(Released {
                item,
                reason: admission,
            });
        }
        None
    }

    /// The `fail` message of a task released because it was held too long (once).
    pub(crate) fn take_expired(&self, task_id: &str) -> Option<String> {
        lock(&self.expired).remove(task_id)
    }

    /// Every held item (on shutdown or drain: they go back un-acked for another executor).
    pub(crate) fn take_all(&self) -> Vec<T> {
        let items: Vec<T> = lock(&self.held).drain(..).map(|h| h.item).collect();
        self.publish();
        items
    }

    /// A run of `task_id` of `domain` ended (`Err`: the driver's error): recipe/structure failures (by the
    /// error's kind) count towards the domain's breaker, and a probe's end closes or re-opens it.
    pub async fn finished(&self, domain: &str, task_id: &str, result: Result<(), &DriverError>) {
        let probe = lock(&self.probes).remove(task_id);
        if self.settings.breaker_threshold == 0 && !probe {
            return;
        }
        let v = verdict(result);
        let now = now_ms();
        let changed = match v {
            Verdict::Structural => {
                let message = result.err().map(ToString::to_string).unwrap_or_default();
                match self
                    .control
                    .record_failure(
                        &self.settings,
                        DomainTask { domain, task_id },
                        &message,
                        now,
                    )
                    .await
                {
                    Ok(FailureCount::Opened(n)) => {
                        tracing::error!(%domain, failures = n, window_secs = self.settings.breaker_window.as_secs(), "circuit breaker opened: domain paused fleet-wide");
                        self.opened(domain);
                        true
                    }
                    Ok(FailureCount::Reopened) => {
                        tracing::error!(%domain, "circuit breaker probe failed: domain stays paused");
                        self.opened(domain);
                        true
                    }
                    Ok(_) => false,
                    Err(e) => {
                        tracing::warn!(%domain, error = %e, "cannot count the failure for the breaker");
                        false
                    }
                }
            }
            _ if probe => {
                let close = matches!(v, Verdict::Worked | Verdict::SiteVerdict);
                match self.control.end_probe(domain, task_id, close, now).await {
                    Ok(true) => {
                        tracing::info!(%domain, "circuit breaker closed: the probe worked; domain resumed");
                        true
                    }
                    Ok(false) => true,
                    Err(e) => {
                        tracing::warn!(%domain, error = %e, "cannot end the breaker's probe");
                        false
                    }
                }
            }
            _ => false,
        };
        if changed {
            self.refresh_quietly().await;
        }
    }

    fn opened(&self, domain: &str) {
        if let Some(f) = &self.families {
            f.breaker_opened(&self.metrics, domain);
        }
    }

    /// Reads the pauses and breakers, and whether this executor is asked to drain.
    ///
    /// # Errors
    /// [`StreamError::Unavailable`]; the last view stays.
    pub(crate) async fn refresh(&self) -> Result<bool, StreamError> {
        let keys = self.control.keys();
        let (paused, breakers, drain): (
            BTreeMap<String, String>,
            BTreeMap<String, String>,
            Option<u64>,
        ) = redis::pipe()
            .hgetall(keys.paused())
            .hgetall(keys.breakers())
            .get(keys.drain(&self.owner))
            .query_async(&mut self.control.conn())
            .await
            .map_err(StreamError::redis("control poll"))?;
        {
            let mut view = lock(&self.view);
            view.paused = super::decode_all(paused, "paused");
            view.breakers = super::decode_all(breakers, "breaker");
        }
        self.publish();
        Ok(drain.is_some())
    }

    async fn refresh_quietly(&self) {
        if let Err(e) = self.refresh().await {
            tracing::debug!(error = %e, "control refresh failed");
        }
    }

    /// Re-reads the control state every poll until `cancel`; cancels `drain` when this executor is asked
    /// to drain.
    pub async fn run(&self, cancel: CancellationToken, drain: CancellationToken) {
        let mut tick = tokio::time::interval(self.settings.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        while cancel.run_until_cancelled(tick.tick()).await.is_some() {
            match self.refresh().await {
                Ok(asked) => {
                    failing = false;
                    if asked && !drain.is_cancelled() {
                        tracing::warn!(consumer = %self.owner, "drain requested: stop claiming, finish what runs, exit");
                        drain.cancel();
                    }
                }
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "cannot read paused domains and drain requests; keeping the last view");
                }
                Err(_) => {}
            }
        }
    }

    /// Forgets this executor's drain request (it has drained).
    pub async fn drained(&self) {
        if let Err(e) = self.control.clear_drain(&self.owner).await {
            tracing::warn!(error = %e, "cannot clear the drain request");
        }
    }

    /// Publishes the held counts, pauses and breaker states as metrics.
    fn publish(&self) {
        let Some(families) = &self.families else {
            return;
        };
        let mut rows: BTreeMap<String, DomainControl> = BTreeMap::new();
        fn row<'a>(
            rows: &'a mut BTreeMap<String, DomainControl>,
            d: &str,
        ) -> &'a mut DomainControl {
            rows.entry(d.to_owned()).or_insert_with(|| DomainControl {
                domain: d.to_owned(),
                held: 0,
                paused_by: None,
                breaker: 0,
            })
        }
        {
            let view = lock(&self.view);
            for (d, p) in &view.paused {
                row(&mut rows, d).paused_by = Some(p.by.as_str());
            }
            for (d, b) in &view.breakers {
                row(&mut rows, d).breaker = match b.state {
                    BreakerState::Open => 1,
                    BreakerState::HalfOpen => 2,
                };
            }
        }
        for h in lock(&self.held).iter() {
            row(&mut rows, &h.domain).held += 1;
        }
        let rows: Vec<DomainControl> = rows.into_values().collect();
        families.set(&self.metrics, &rows);
    }
}

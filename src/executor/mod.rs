//! The executor: claims task entries from the streams, runs each through its platform's [`Driver`] and
//! reports back, one bounded slot per task (DESIGN.md "Executor, per task", steps 1–9). Knows no site: the
//! drivers do. [`Executor::process_next`] is one step (for tests); [`Executor::run`] is the loop.
//!
//! [`Driver`]: crate::driver::Driver

mod failure;
mod recipe_metrics;
mod report;
mod run;
mod service;
mod synthetic;
mod validate;
mod work;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{ApiSettings, ExecutorConfig, ExecutorSettings};
use crate::control::{Control, Gate};
use crate::driver::Drivers;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::streams::StreamError;
use crate::streams::consumer::{Claimed, Consumer};
use crate::task_api::{ApiError, ApiRequest, TaskApiClient};

pub use failure::{Failure, ReportFate, driver_error_class, error_class};
pub use recipe_metrics::{PoolSampler, observe_mail, run_pool_sampler};
pub use service::{ServiceError, run_service};
pub use synthetic::{SyntheticDriver, drivers_from_config};
pub use validate::{validate_registration, validate_task};

/// How long a drain waits for abandoned runs after the grace period ran out.
const HARD_STOP_WAIT: Duration = Duration::from_secs(3);

/// How long a clean exit tries to leave the consumer group.
const RETIRE_WAIT: Duration = Duration::from_secs(1);

/// How long claiming pauses after the manager refused our API key (401/403) before trying again.
pub(crate) const HALT_PAUSE: Duration = Duration::from_secs(30);

/// How one claimed entry ended (from this executor's point of view).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to claim within the read block time.
    Idle,
    /// Registered; `complete` accepted; entry acked, outbox and inflight cleared.
    Completed,
    /// `fail` accepted (invalid task, permanent failure, or attempts used up).
    Failed,
    /// The result is in the (encrypted) outbox because the manager did not accept the report yet; the
    /// entry is acked and the outbox loop reports it later. The driver is never run again for it.
    Deferred,
    /// The manager no longer has the task (404): acked and dropped.
    Gone,
    /// The manager refused the report or the start (4xx): dropped, logged as an error.
    Refused,
    /// Undecodable, over-delivered or unusable: moved to the dead-letter stream.
    DeadLettered,
    /// Left un-acked for a later delivery (a transient failure before the driver ran, or shutdown).
    Released,
    /// The manager refused our API key: the entry is released and claiming pauses for `HALT_PAUSE`.
    Halted,
}

/// Why the executor could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// Redis is unusable.
    #[error("cannot use Redis")]
    Redis(#[from] StreamError),
    /// The manager API client cannot be built.
    #[error("cannot build the manager API client")]
    Api(#[from] ApiError),
}

/// Everything one task's processing needs, shared by the running tasks.
pub(crate) struct Inner {
    cfg: ExecutorSettings,
    max_deliveries: u64,
    consumer: Consumer,
    outbox: Outbox,
    api: TaskApiClient,
    drivers: Drivers,
    metrics: Arc<Metrics>,
    slots: Arc<Semaphore>,
    domain_slots: HashMap<String, Arc<Semaphore>>,
    /// How long a report may hold the outbox lock of its task.
    lock_ttl: Duration,
    /// Entries claimed beyond what was asked (a blocking read can return both streams), run next.
    buffered: Mutex<VecDeque<Claimed>>,
    halted_until: Mutex<Option<Instant>>,
    /// Paused domains, the circuit breaker and drain requests (`control`).
    gate: Gate<Claimed>,
    /// Cancelled when a drain runs past its grace: retry waits (the outbox's) end at once.
    stopping: CancellationToken,
}

/// One executor process's engine. Cheap to clone.
#[derive(Clone)]
pub struct Executor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("consumer", &self.inner.consumer.name())
            .field("drivers", &self.inner.drivers)
            .finish_non_exhaustive()
    }
}

impl Executor {
    /// Connects to Redis (creating the consumer groups if missing) and builds the API client, which
    /// reports every request to `metrics`.
    ///
    /// # Errors
    /// [`ExecutorError`] when Redis is unreachable or the client cannot be built.
    pub async fn new(
        config: &ExecutorConfig,
        drivers: Drivers,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ExecutorError> {
        let cfg = config.executor.clone();
        let consumer = Consumer::connect(&config.streams, &cfg.consumer_name).await?;
        let outbox = Outbox::new(
            consumer.connection(),
            consumer.keys().clone(),
            &cfg.outbox_key,
        );
        let observed = metrics.clone();
        let api = TaskApiClient::new(&config.api)?.with_observer(Arc::new(move |r| {
            observe(&observed, r);
        }));
        let domain_slots = cfg
            .domain_limits
            .iter()
            .map(|(d, n)| (d.clone(), Arc::new(Semaphore::new(n.get()))))
            .collect();
        let control = Control::new(consumer.connection(), &config.streams.key_prefix);
        // A probe may run all its attempts; after that another task may probe in its place.
        let probe_ttl = cfg.task_timeout * cfg.task_attempts + Duration::from_secs(60);
        let gate = Gate::new(
            control,
            config.control.clone(),
            &cfg.consumer_name,
            probe_ttl,
            metrics.clone(),
        );
        let inner = Inner {
            gate,
            slots: Arc::new(Semaphore::new(cfg.concurrency.get())),
            max_deliveries: config.streams.max_deliveries,
            lock_ttl: report_budget(&config.api),
            cfg,
            consumer,
            outbox,
            api,
            drivers,
            metrics,
            domain_slots,
            buffered: Mutex::new(VecDeque::new()),
            halted_until: Mutex::new(None),
            stopping: CancellationToken::new(),
        };
        // Pauses in force before the first claim, so a fresh executor never starts a paused domain's task.
        if let Err(e) = inner.gate.refresh().await {
            tracing::warn!(error = %e, "cannot read paused domains yet; the control poll retries");
        }
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// This executor's consumer name.
    pub(crate) fn consumer_name(&self) -> &str {
        self.inner.consumer.name()
    }

    /// One step: claims one entry (abandoned ones first, then main, then sub, blocking up to the read
    /// time) and processes it to the end, inline. Uses one concurrency slot.
    ///
    /// # Errors
    /// [`StreamError`] when claiming failed (nothing was claimed).
    pub async fn process_next(&self) -> Result<Outcome, StreamError> {
        let permit = self.inner.slots.clone().acquire_owned().await;
        let Some(claimed) = self.inner.next_claimed(1).await? else {
            return Ok(Outcome::Idle);
        };
        let outcome = self.inner.handle(claimed, &CancellationToken::new()).await;
        drop(permit);
        Ok(outcome)
    }

    /// One pass of the outbox loop: reports every waiting result nobody else is reporting right now.
    /// Returns how many were settled (accepted or dropped).
    pub async fn retry_outbox_once(&self) -> usize {
        self.inner.retry_outbox_once().await
    }

    /// Renews the leases of every entry this executor holds (also done by [`Executor::run`]).
    ///
    /// # Errors
    /// [`StreamError`].
    pub async fn renew_leases(&self) -> Result<(), StreamError> {
        self.inner.consumer.renew_leases().await.map(drop)
    }

    /// Claims and runs tasks until `cancel`, then drains (step 9): stops claiming, lets running tasks
    /// finish up to `shutdown_grace`, and leaves unfinished entries un-acked for another executor.
    /// Lease renewal and the outbox loop run alongside until the drain ends.
    pub async fn run(&self, cancel: CancellationToken) {
        let background_stop = CancellationToken::new();
        let hard_stop = CancellationToken::new();
        let background = TaskTracker::new();
        let tasks = TaskTracker::new();
        let inner = self.inner.clone();
        let bg = background_stop.clone();
        background.spawn(async move { inner.consumer.run_lease_renewal(bg).await });
        let inner = self.inner.clone();
        let bg = background_stop.clone();
        background.spawn(async move { inner.run_outbox_loop(bg).await });
        // `pwctl drain` cancels `claiming` only: this executor drains and returns as on SIGTERM.
        let claiming = cancel.child_token();
        let (inner, bg, drain) = (
            self.inner.clone(),
            background_stop.clone(),
            claiming.clone(),
        );
        background.spawn(async move { inner.gate.run(bg, drain).await });
        tracing::info!(consumer = %self.consumer_name(), drivers = ?self.inner.drivers.domains(), "executor started");
        self.dispatch(&claiming, &tasks, &hard_stop).await;
        tracing::info!("stopped claiming; draining running tasks");
        if !crate::shutdown::drain(&tasks, self.inner.cfg.shutdown_grace).await {
            tracing::warn!(
                "grace period over; unfinished entries stay un-acked for another executor"
            );
            hard_stop.cancel();
            self.inner.stopping.cancel();
            // Abandoned runs end at their next await; a report under way gets a short bound, so a drain
            // during a Redis outage does not overrun the grace period by the outbox's retry budget.
            if tokio::time::timeout(HARD_STOP_WAIT, tasks.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    "tasks still finishing after the hard stop; exiting anyway (their entries stay un-acked)"
                );
            }
        }
        self.inner.abandon_buffered();
        background_stop.cancel();
        background.close();
        background.wait().await;
        // A clean exit leaves the group when nothing is pending for us (else the entries are reclaimed and
        // the reclaim pass prunes us a day later).
        // Bounded: during a Redis outage the exit must not wait for reconnects.
        match tokio::time::timeout(RETIRE_WAIT, self.inner.consumer.retire()).await {
            Ok(Ok(true)) => tracing::info!("left the consumer group"),
            Ok(Ok(false)) => tracing::info!(
                "entries still pending for us: staying in the group for their reclaim"
            ),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot leave the consumer group; it is pruned later")
            }
            Err(_) => {
                tracing::warn!("Redis too slow to leave the consumer group; it is pruned later")
            }
        }
        if !cancel.is_cancelled() {
            self.inner.gate.drained().await;
        }
        tracing::info!("executor stopped");
    }

    /// The claim loop: one permit per slot, then one entry per permit, each run in `tasks`.
    async fn dispatch(
        &self,
        cancel: &CancellationToken,
        tasks: &TaskTracker,
        hard_stop: &CancellationToken,
    ) {
        let inner = &self.inner;
        while !cancel.is_cancelled() {
            if let Some(wait) = inner.halt_remaining() {
                cancel.run_until_cancelled(tokio::time::sleep(wait)).await;
                continue;
            }
            let Some(Ok(permit)) = cancel
                .run_until_cancelled(inner.slots.clone().acquire_owned())
                .await
            else {
                break;
            };
            let want = 1 + inner.slots.available_permits();
            match cancel.run_until_cancelled(inner.next_claimed(want)).await {
                None => break,
                Some(Ok(Some(claimed))) => self.spawn_task(tasks, claimed, permit, hard_stop),
                Some(Ok(None)) => inner.metrics.health().record_progress(),
                Some(Err(e)) if e.is_group_missing() => inner.recover_lost_ledger(&e).await,
                Some(Err(e)) => {
                    inner.metrics.set_redis_reachable(false);
                    inner.metrics.health().set_redis_failing(true);
                    tracing::warn!(error = %e, code = e.code().unwrap_or(""), "claiming failed; will retry");
                    cancel
                        .run_until_cancelled(tokio::time::sleep(Duration::from_secs(1)))
                        .await;
                }
            }
        }
    }

    fn spawn_task(
        &self,
        tasks: &TaskTracker,
        claimed: Claimed,
        permit: OwnedSemaphorePermit,
        hard_stop: &CancellationToken,
    ) {
        let inner = self.inner.clone();
        let stop = hard_stop.clone();
        inner.update_slots();
        tasks.spawn(async move {
            inner.handle(claimed, &stop).await;
            drop(permit);
            inner.update_slots();
        });
    }
}

impl Inner {
    /// The next entry to work on: a buffered one, else up to `want` newly claimed (extras are buffered).
    async fn next_claimed(&self, want: usize) -> Result<Option<Claimed>, StreamError> {
        if let Some(released) = self.gate.release_next().await {
            return Ok(Some(released.item));
        }
        if let Some(c) = self.buffered.lock().ok().and_then(|mut b| b.pop_front()) {
            return Ok(Some(c));
        }
        let claimed = self.consumer.claim(want).await?;
        self.metrics.health().set_redis_failing(false);
        // A paused domain's entries are held by the gate (still ours, leases renewed) until released.
        let key = |c: &Claimed| {
            c.entry
                .as_ref()
                .ok()
                .map(|e| (e.domain.as_str().to_owned(), e.id.to_string()))
        };
        let mut got: VecDeque<Claimed> = self.gate.sort(claimed, key).await.into();
        self.metrics.set_redis_reachable(true);
        let first = got.pop_front();
        if !got.is_empty()
            && let Ok(mut b) = self.buffered.lock()
        {
            b.extend(got);
        }
        Ok(first)
    }

    /// Redis lost the task ledger (NOGROUP: restarted empty, or failed over to a replica that missed
    /// writes): says so at ERROR with what was last known to be pending, counts it, recreates the groups.
    /// Claiming carries on at once; a failed recreation is retried by the next claim.
    async fn recover_lost_ledger(&self, e: &StreamError) {
        crate::streams::log_lost_ledger(e, &self.metrics.last_pending());
        tracing::info!(
            held_here = self.consumer.held_count(),
            "entries this executor was running"
        );
        self.metrics.redis_data_loss("claim");
        if let Err(e) = self.consumer.recreate_groups().await {
            self.metrics.health().set_redis_failing(true);
            tracing::warn!(error = %e, "cannot recreate the consumer groups yet; will retry");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    fn abandon_buffered(&self) {
        let mut left: Vec<Claimed> = match self.buffered.lock() {
            Ok(mut b) => b.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        left.extend(self.gate.take_all());
        for c in &left {
            self.consumer.abandon(c);
        }
    }

    fn update_slots(&self) {
        let free = self.slots.available_permits();
        let in_flight = self.cfg.concurrency.get().saturating_sub(free);
        self.metrics.set_slots(in_flight, free);
        self.metrics.health().set_work_waiting(in_flight > 0);
    }

    /// Pauses claiming for [`HALT_PAUSE`] (the manager refused our API key).
    fn halt(&self) {
        tracing::error!(
            pause_secs = HALT_PAUSE.as_secs(),
            "the manager refuses the API key (401/403): claiming paused; check PW_API_KEY"
        );
        if let Ok(mut h) = self.halted_until.lock() {
            *h = Some(Instant::now() + HALT_PAUSE);
        }
    }

    fn halt_remaining(&self) -> Option<Duration> {
        let until = (*self.halted_until.lock().ok()?)?;
        let now = Instant::now();
        (until > now).then(|| until - now)
    }
}

/// Longest time one report may take with the client's retries: the lock TTL of the outbox.
fn report_budget(api: &ApiSettings) -> Duration {
    let attempts = api.retries + 1;
    api.timeout * attempts + api.backoff_max * api.retries + Duration::from_secs(5)
}

fn observe(metrics: &Metrics, r: &ApiRequest) {
    metrics.api_request(r.endpoint, r.status, r.elapsed);
    if r.retry > 0 {
        metrics.api_retry(r.endpoint);
    }
}

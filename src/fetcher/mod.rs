//! The fetcher: pulls tasks from the manager API (`GET /links`) into the Redis task streams, routed main or
//! sub, de-duplicated atomically, never past the backlog cap, only while it holds the leader lease.
//! [`Fetcher::fetch_once`] is one step (tests drive it); [`Fetcher::run`] loops it with adaptive pacing.
//! It never calls `start`: the executor that begins the work does (API.md, "who calls it").

mod leader;
mod listing;
mod pacing;
mod service;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

pub use leader::LeaderLease;
pub use listing::{ListingRecord, LostListing};
pub use pacing::Pacer;
pub use service::{FetcherError, observer, run_service};

use crate::config::{ApiSettings, FetcherSettings, StreamSettings};
use crate::metrics::Metrics;
use crate::streams::StreamError;
use crate::streams::producer::{Enqueued, Producer};
use crate::task::{QueueEntry, Site, route};
use crate::task_api::{ApiError, TaskApiClient, full_jitter};

/// Attempts at writing a listed page to Redis before its tasks are given up (they are already ours).
const ENQUEUE_ATTEMPTS: u32 = 12;

/// Another fetcher's listing under way whose heartbeat (renewed every third of the lease) is older than this
/// many lease lengths was lost with its fetcher.
const LISTING_STALE_LEASES: u32 = 2;

/// What one [`Fetcher::fetch_once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// A page was listed and queued.
    Enqueued {
        /// Tasks added to a stream.
        enqueued: usize,
        /// Tasks already in our hands, not added again.
        duplicates: usize,
        /// The page was as long as asked for: more is likely waiting, call again at once.
        full_page: bool,
    },
    /// The manager has no task for us.
    Empty,
    /// A stream holds `max_backlog` or more: nothing was asked for.
    Backpressure {
        /// The fuller stream's backlog (lag + pending).
        backlog: u64,
    },
    /// The manager refused the API key (401/403): nothing is pulled until it accepts it.
    Unauthorized,
    /// Another fetcher holds the leader lease.
    NotLeader,
    /// The manager is unreachable or failing (after the client's retries).
    ApiUnavailable,
    /// The manager refused the listing itself (4xx other than 401/403/429).
    ApiRejected,
    /// Redis is unreachable; if a page had been listed, its tasks could not all be queued (logged by id).
    RedisUnavailable,
}

/// How much the task streams can take now, against `max_backlog` (measured on the fuller stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Room {
    /// This many more tasks fit (more than zero).
    Fits(u64),
    /// The fuller stream's backlog (lag + pending) has reached `max_backlog`.
    Full {
        /// That backlog.
        backlog: u64,
    },
}

/// The fetch loop's state. Not `Clone`: one per process.
#[derive(Debug)]
pub struct Fetcher {
    api: TaskApiClient,
    producer: Producer,
    lease: LeaderLease,
    listing: ListingRecord,
    settings: FetcherSettings,
    metrics: Arc<Metrics>,
    key_refused: bool,
    leading: bool,
    cancel: CancellationToken,
}

impl Fetcher {
    /// Connects to Redis (creating the streams and group) and builds the API client, reporting its requests
    /// to `metrics`.
    ///
    /// # Errors
    /// [`FetcherError`] when Redis is unusable or the client cannot be built.
    pub async fn connect(
        streams: &StreamSettings,
        api: &ApiSettings,
        settings: FetcherSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Self, FetcherError> {
        let producer = Producer::connect(streams, settings.inflight_ttl).await?;
        let api = TaskApiClient::new(api)?.with_observer(observer(metrics.clone()));
        let token = format!(
            "{}-{}",
            crate::config::default_consumer_name(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let listing = ListingRecord::new(
            producer.connection(),
            producer.keys().listing(),
            token.clone(),
            settings.leader_ttl * LISTING_STALE_LEASES,
        )
        .with_last_key(producer.keys().last_listing());
        let lease = LeaderLease::new(
            producer.connection(),
            producer.keys().leader(),
            token,
            settings.leader_ttl,
        );
        Ok(Self {
            api,
            producer,
            lease,
            listing,
            settings,
            metrics,
            key_refused: false,
            leading: false,
            cancel: CancellationToken::new(),
        })
    }

    /// The leader lease (its token names this process).
    pub fn lease(&self) -> &LeaderLease {
        &self.lease
    }

    /// Whether the last step held the lease.
    pub fn is_leader(&self) -> bool {
        self.leading
    }

    /// One step: hold the lease, report listings lost with a dead fetcher, measure the backlog, record the
    /// listing under way, list what fits, route, de-duplicate, enqueue, clear the record.
    pub async fn fetch_once(&mut self) -> FetchOutcome {
        match self.hold_lease().await {
            Some(true) => {}
            Some(false) => return FetchOutcome::NotLeader,
            None => return FetchOutcome::RedisUnavailable,
        }
        if self.listing.is_open() {
            // Our last listing's record could not be cleared (Redis failed); its page was handled.
            self.end_listing().await;
        }
        self.report_lost_listings().await;
        let room = match self.room().await {
            Ok(Room::Fits(room)) => room,
            Ok(Room::Full { backlog }) => {
                self.metrics.set_fetcher_backpressure(true);
                self.metrics.health().record_progress();
                return FetchOutcome::Backpressure { backlog };
            }
            Err(e) if e.is_group_missing() => {
                self.recover_lost_ledger(&e).await;
                return FetchOutcome::RedisUnavailable;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot measure the backlog; not pulling");
                self.metrics.set_redis_reachable(false);
                return FetchOutcome::RedisUnavailable;
            }
        };
        self.metrics.set_fetcher_backpressure(false);
        let ask = u32::try_from(room)
            .unwrap_or(u32::MAX)
            .min(self.settings.limit);
        if let Err(e) = self.listing.begin(ask).await {
            tracing::warn!(error = %e, "cannot record the listing under way; not pulling");
            self.metrics.set_redis_reachable(false);
            return FetchOutcome::RedisUnavailable;
        }
        let outcome = self.list_and_enqueue(ask).await;
        self.end_listing().await;
        outcome
    }

    /// The listing itself, between the record's begin and end.
    async fn list_and_enqueue(&mut self, ask: u32) -> FetchOutcome {
        let listed = self.keep_lease_while(self.api.list(ask)).await;
        let page = match listed {
            Ok(page) => page,
            Err(e) => return self.list_failed(&e),
        };
        self.key_accepted();
        self.metrics.health().record_progress();
        self.metrics
            .listed_undecodable(page.malformed as u64, page.skipped as u64);
        if page.returned == 0 {
            return FetchOutcome::Empty;
        }
        let full_page = page.returned >= ask as usize;
        let entries = self.entries(&page.tasks);
        self.keep_lease_while(self.enqueue(&entries, full_page))
            .await
    }

    async fn end_listing(&mut self) {
        if let Err(e) = self.listing.end().await {
            tracing::warn!(error = %e, "cannot clear the record of our listing; cleared at the next step");
        }
    }

    /// Logs and counts every listing lost with a dead fetcher (its record's heartbeat went stale), once.
    async fn report_lost_listings(&self) {
        let lost = match self.listing.take_lost().await {
            Ok(lost) => lost,
            Err(e) => {
                tracing::warn!(error = %e, "cannot check for listings lost with a dead fetcher");
                return;
            }
        };
        for l in lost {
            tracing::error!(
                holder = %l.holder,
                started_at = %listing::rfc3339(l.started),
                silent_for_secs = l.silent_for.as_secs(),
                limit = l.limit,
                "a fetcher died with a listing under way: up to `limit` tasks are possibly handed out to us and will never run (docs/fetcher.md, \"Lost listings\")"
            );
            self.metrics.listing_lost("interrupted");
        }
    }

    /// Loops [`Fetcher::fetch_once`] until `cancel` fires, then releases the lease. A step in progress is
    /// finished first, so a listed page is always queued.
    pub async fn run(mut self, cancel: CancellationToken) {
        self.api = self.api.clone().with_cancel(cancel.clone());
        self.cancel = cancel.clone();
        let standby = self.settings.leader_ttl / 3;
        let mut pacer = Pacer::new(self.settings.poll_min, self.settings.poll_max, standby);
        while !cancel.is_cancelled() {
            let outcome = self.fetch_once().await;
            tracing::debug!(?outcome, "fetch step");
            let delay = pacer.next(&outcome, &mut rand::rng());
            self.idle(delay, &cancel).await;
        }
        self.shutdown().await;
    }

    /// Releases the lease (if held) so a standby takes over at once.
    pub async fn shutdown(&mut self) {
        match self.lease.release().await {
            Ok(true) => tracing::info!("leader lease released"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not release the leader lease; it will expire")
            }
        }
        self.leading = false;
        self.metrics.set_fetcher_leader(false);
    }

    /// Sleeps `delay` (or until cancelled), renewing the lease in between so an idle leader keeps it.
    async fn idle(&mut self, delay: Duration, cancel: &CancellationToken) {
        let step = self.settings.leader_ttl / 3;
        let mut left = delay;
        while !left.is_zero() {
            let nap = left.min(step);
            if cancel
                .run_until_cancelled(tokio::time::sleep(nap))
                .await
                .is_none()
            {
                return;
            }
            left -= nap;
            if self.leading && !left.is_zero() {
                self.hold_lease().await;
            }
        }
    }

    /// Takes or renews the lease; logs and records changes of leadership. `None` when Redis failed (then
    /// this fetcher acts as a standby).
    async fn hold_lease(&mut self) -> Option<bool> {
        let checked = self.lease.acquire_or_renew().await;
        self.metrics.set_redis_reachable(checked.is_ok());
        if let Err(e) = &checked {
            tracing::warn!(error = %e, "leader lease check failed; standing by");
        }
        let held = matches!(checked, Ok(true));
        if held != self.leading {
            if held {
                tracing::info!(token = self.lease.token(), "became the leader fetcher");
            } else {
                tracing::warn!(
                    token = self.lease.token(),
                    "lost the leader lease; standing by"
                );
            }
        }
        self.leading = held;
        self.metrics.set_fetcher_leader(held);
        checked.ok()
    }

    /// Runs `fut` (a listing or an enqueue that may retry for a while), renewing the lease and the heartbeat
    /// of the listing under way every third of the lease.
    async fn keep_lease_while<T>(&self, fut: impl Future<Output = T>) -> T {
        let mut fut = std::pin::pin!(fut);
        let mut tick = tokio::time::interval(self.settings.leader_ttl / 3);
        tick.tick().await;
        loop {
            tokio::select! {
                out = &mut fut => return out,
                _ = tick.tick() => {
                    if let Err(e) = self.lease.acquire_or_renew().await {
                        tracing::warn!(error = %e, "leader lease renewal failed during a listing");
                    }
                    if let Err(e) = self.listing.beat().await {
                        tracing::debug!(error = %e, "heartbeat of the listing under way failed");
                    }
                }
            }
        }
    }

    /// Redis lost the task streams or their group (restarted empty, or failed over to a replica that missed
    /// writes): says so at ERROR with what was last known to be waiting, counts it, recreates the groups.
    async fn recover_lost_ledger(&self, e: &StreamError) {
        crate::streams::log_lost_ledger(e, &self.metrics.last_pending());
        self.metrics.redis_data_loss("backlog");
        if let Err(e) = self.producer.recreate_groups().await {
            tracing::warn!(error = %e, "cannot recreate the consumer groups yet; retried at the next cycle");
        }
    }

    /// How many tasks fit under `max_backlog`, measured on the fuller stream.
    async fn room(&self) -> Result<Room, StreamError> {
        let mut fullest = 0;
        for site in Site::ALL {
            fullest = fullest.max(self.producer.backlog(site).await?.total());
        }
        self.metrics.set_redis_reachable(true);
        let cap = self.settings.max_backlog;
        Ok(if fullest >= cap {
            Room::Full { backlog: fullest }
        } else {
            Room::Fits(cap - fullest)
        })
    }

    fn list_failed(&mut self, err: &ApiError) -> FetchOutcome {
        match err {
            ApiError::Unauthorized { status } => {
                if !self.key_refused {
                    tracing::error!(
                        status,
                        "the manager refuses our API key (PW_API_KEY): not pulling tasks until it is accepted"
                    );
                }
                self.key_refused = true;
                FetchOutcome::Unauthorized
            }
            e if e.is_transient() => {
                tracing::warn!(error = %e, "listing tasks failed; will poll again");
                FetchOutcome::ApiUnavailable
            }
            e => {
                tracing::error!(error = %e, "the manager refused the listing");
                FetchOutcome::ApiRejected
            }
        }
    }

    fn key_accepted(&mut self) {
        if self.key_refused {
            tracing::info!("the manager accepts our API key again; pulling tasks");
        }
        self.key_refused = false;
    }

    /// Routes each listed task and builds its stream entry (ids and routing only).
    fn entries(&self, tasks: &[crate::task::ListedTask]) -> Vec<QueueEntry> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        tasks
            .iter()
            .map(|t| {
                let site = route(&t.domain, t.link_rss.is_some(), &self.settings.main_domains);
                self.metrics.task_fetched(site);
                QueueEntry::new(t, site, now_ms)
            })
            .collect()
    }

    /// Writes a listed page, retrying while Redis is down: these tasks are already handed to us.
    async fn enqueue(&self, entries: &[QueueEntry], full_page: bool) -> FetchOutcome {
        let mut ceiling = Duration::from_millis(100);
        for attempt in 1..=ENQUEUE_ATTEMPTS {
            match self.producer.enqueue_batch(entries).await {
                Ok(results) => {
                    self.metrics.set_redis_reachable(true);
                    return self.count(entries, &results, full_page);
                }
                // On shutdown the pauses are skipped: one more attempt, then the page is given up (logged).
                Err(e) if attempt < ENQUEUE_ATTEMPTS && !self.cancel.is_cancelled() => {
                    tracing::warn!(error = %e, attempt, "queueing a listed page failed; retrying");
                    self.metrics.set_redis_reachable(false);
                    let pause = full_jitter(ceiling, &mut rand::rng());
                    let _ = self
                        .cancel
                        .run_until_cancelled(tokio::time::sleep(pause))
                        .await;
                    ceiling = (ceiling * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
                    tracing::error!(error = %e, ?ids, "listed tasks could not be queued; the manager counts them as handed out");
                    self.metrics.listing_lost("unqueued");
                    break;
                }
            }
        }
        FetchOutcome::RedisUnavailable
    }

    fn count(&self, entries: &[QueueEntry], results: &[Enqueued], full_page: bool) -> FetchOutcome {
        let (mut enqueued, mut duplicates) = (0, 0);
        for (entry, result) in entries.iter().zip(results) {
            match result {
                Enqueued::Added(_) => {
                    enqueued += 1;
                    self.metrics.task_enqueued(entry.site, &entry.domain);
                }
                Enqueued::Duplicate | Enqueued::Relisted => {
                    duplicates += 1;
                    let fate = if *result == Enqueued::Relisted {
                        "listed again after our fail; queued once that report settles"
                    } else {
                        "listed task is already in our hands; not queued again"
                    };
                    tracing::info!(task_id = %entry.id, "{fate}");
                    self.metrics.task_deduplicated(entry.site);
                }
            }
        }
        tracing::debug!(enqueued, duplicates, "page queued");
        FetchOutcome::Enqueued {
            enqueued,
            duplicates,
            full_page,
        }
    }
}

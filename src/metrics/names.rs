//! Metric names (an API: dashboards and alerts use them; `docs/metrics.md` documents each) and the
//! construction of their families with help text, label names and buckets.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Counter families (all `_total`).
#[derive(Debug)]
pub(super) struct Counters {
    pub(super) fetched: IntCounterVec,
    pub(super) enqueued: IntCounterVec,
    pub(super) deduplicated: IntCounterVec,
    pub(super) finished: IntCounterVec,
    pub(super) failures: IntCounterVec,
    pub(super) task_retries: IntCounterVec,
    pub(super) api_requests: IntCounterVec,
    pub(super) api_retries: IntCounterVec,
    pub(super) browser_restarts: IntCounterVec,
    pub(super) listings_lost: IntCounterVec,
    pub(super) listed_undecodable: IntCounterVec,
    pub(super) data_loss: IntCounterVec,
}

/// Histogram families (all `_seconds`).
#[derive(Debug)]
pub(super) struct Histograms {
    pub(super) task: HistogramVec,
    pub(super) stage: HistogramVec,
    pub(super) fetch_to_start: HistogramVec,
    pub(super) api: HistogramVec,
    pub(super) mail_wait: HistogramVec,
}

/// Gauges.
#[derive(Debug)]
pub(super) struct Gauges {
    pub(super) in_flight: IntGauge,
    pub(super) free_slots: IntGauge,
    pub(super) stream_length: IntGaugeVec,
    pub(super) stream_lag: IntGaugeVec,
    pub(super) stream_pending: IntGaugeVec,
    pub(super) outbox: IntGauge,
    pub(super) browser_contexts: IntGauge,
    pub(super) browser_memory: IntGauge,
    pub(super) leader: IntGauge,
    pub(super) backpressure: IntGauge,
    pub(super) api_key_refused: IntGauge,
    pub(super) redis_up: IntGauge,
    pub(super) manager_up: IntGauge,
}

/// Tasks listed by `GET /links`, by `site`.
pub(crate) const TASKS_FETCHED: &str = "pw_tasks_fetched_total";
/// Tasks written to a task stream, by `site`, `domain`.
pub(crate) const TASKS_ENQUEUED: &str = "pw_tasks_enqueued_total";
/// Listed tasks skipped because they were already in our hands, by `site`.
pub(crate) const TASKS_DEDUPLICATED: &str = "pw_tasks_deduplicated_total";
/// Tasks that left our hands, by `site`, `domain`, `outcome`.
pub(crate) const TASKS_FINISHED: &str = "pw_tasks_finished_total";
/// Tasks reported with `fail`, by `site` and the `error_class` of their last error.
pub(crate) const TASK_FAILURES: &str = "pw_task_failures_total";
/// Failed attempts that were retried, by `site`, `error_class`.
pub(crate) const TASK_RETRIES: &str = "pw_task_retries_total";
/// Claim-to-ack time of a task, by `site`, `outcome`.
pub(crate) const TASK_DURATION: &str = "pw_task_duration_seconds";
/// Time of one stage of a task, by `site`, `stage`.
pub(crate) const TASK_STAGE_DURATION: &str = "pw_task_stage_duration_seconds";
/// Time from the fetcher's enqueue to the executor's start of work, by `site`.
pub(crate) const FETCH_TO_START: &str = "pw_fetch_to_start_seconds";
/// Tasks running in this executor.
pub(crate) const TASKS_IN_FLIGHT: &str = "pw_tasks_in_flight";
/// Free browser slots in this executor.
pub(crate) const SLOTS_FREE: &str = "pw_slots_free";
/// Entries in a stream (XLEN), by `stream` (`main`, `sub`, `dead`).
pub(crate) const STREAM_LENGTH: &str = "pw_stream_length";
/// Entries not yet delivered to the consumer group, by `stream`.
pub(crate) const STREAM_LAG: &str = "pw_stream_lag";
/// Entries delivered but not yet acknowledged, by `stream`.
pub(crate) const STREAM_PENDING: &str = "pw_stream_pending";
/// Results waiting in the outbox for the manager to accept their report.
pub(crate) const OUTBOX_ENTRIES: &str = "pw_outbox_entries";
/// Manager API requests, by `endpoint`, `status_class`.
pub(crate) const API_REQUESTS: &str = "pw_api_requests_total";
/// Manager API request latency, by `endpoint`.
pub(crate) const API_REQUEST_DURATION: &str = "pw_api_request_duration_seconds";
/// Manager API requests retried after a transient failure, by `endpoint`.
pub(crate) const API_RETRIES: &str = "pw_api_retries_total";
/// Browser restarts, by `reason`.
pub(crate) const BROWSER_RESTARTS: &str = "pw_browser_restarts_total";
/// Browser contexts open now.
pub(crate) const BROWSER_CONTEXTS: &str = "pw_browser_contexts";
/// Memory of the browser's process tree (sum of PSS), bytes.
pub(crate) const BROWSER_MEMORY: &str = "pw_browser_memory_bytes";
/// Time spent waiting for a verification mail, by `outcome`.
pub(crate) const MAIL_WAIT: &str = "pw_mail_wait_seconds";
/// Listings whose tasks are possibly handed out to us and will never run, by `reason`
/// ([`LISTING_LOSS_REASONS`]).
pub(crate) const FETCHER_LISTINGS_LOST: &str = "pw_fetcher_listings_lost_total";
/// Listed items that could not be decoded, by `fate`: `queued` (an id was salvaged; the executor reads the
/// task again or fails it) or `dropped` (no usable id: cannot be queued or reported).
pub(crate) const LISTED_ITEMS_UNDECODABLE: &str = "pw_listed_items_undecodable_total";
/// Times this process found that Redis had lost the task ledger (the consumer group or a stream gone:
/// NOGROUP), by `op` ([`DATA_LOSS_OPS`]: an executor's claim, a fetcher's backlog measure); the groups were recreated.
pub(crate) const REDIS_DATA_LOSS: &str = "pw_redis_data_loss_total";
/// `op` values of [`REDIS_DATA_LOSS`]: where the loss was noticed.
pub(crate) const DATA_LOSS_OPS: [&str; 2] = ["claim", "backlog"];
/// `reason` values of [`FETCHER_LISTINGS_LOST`]: `interrupted` (a fetcher died with a listing under way,
/// found by the next leader), `unreadable` (a listing answer could not be read at all), `unqueued` (listed
/// but Redis refused the page until the fetcher gave up; the ids are logged).
pub(crate) const LISTING_LOSS_REASONS: [&str; 3] = ["interrupted", "unreadable", "unqueued"];
/// `fate` values of [`LISTED_ITEMS_UNDECODABLE`].
pub(crate) const UNDECODABLE_FATES: [&str; 2] = ["queued", "dropped"];
/// 1 while this fetcher holds the leader lease.
pub(crate) const FETCHER_LEADER: &str = "pw_fetcher_leader";
/// 1 while this fetcher holds back because a stream's backlog reached its cap.
pub(crate) const FETCHER_BACKPRESSURE: &str = "pw_fetcher_backpressure";
/// 1 while the manager refuses our API key (401/403).
pub(crate) const API_KEY_REFUSED: &str = "pw_api_key_refused";
/// 1 when the last Redis command succeeded.
pub(crate) const REDIS_UP: &str = "pw_redis_up";
/// 1 when the manager answered the last request (any status under 500).
pub(crate) const MANAGER_UP: &str = "pw_manager_up";
/// Always 1, labelled with `role` and `version`.
pub(crate) const BUILD_INFO: &str = "pw_build_info";
pub(super) const BUILD_INFO_HELP: &str = "Always 1; labels name the binary's role and version.";

/// The `stream` label values of the stream gauges.
pub(crate) const STREAMS: [&str; 3] = ["main", "sub", "dead"];

/// Every metric family this module registers (process_* families come from the process collector).
pub const ALL: &[&str] = &[
    TASKS_FETCHED,
    TASKS_ENQUEUED,
    TASKS_DEDUPLICATED,
    TASKS_FINISHED,
    TASK_FAILURES,
    TASK_RETRIES,
    TASK_DURATION,
    TASK_STAGE_DURATION,
    FETCH_TO_START,
    TASKS_IN_FLIGHT,
    SLOTS_FREE,
    STREAM_LENGTH,
    STREAM_LAG,
    STREAM_PENDING,
    OUTBOX_ENTRIES,
    API_REQUESTS,
    API_REQUEST_DURATION,
    API_RETRIES,
    BROWSER_RESTARTS,
    FETCHER_LISTINGS_LOST,
    LISTED_ITEMS_UNDECODABLE,
    REDIS_DATA_LOSS,
    BROWSER_CONTEXTS,
    BROWSER_MEMORY,
    MAIL_WAIT,
    FETCHER_LEADER,
    FETCHER_BACKPRESSURE,
    API_KEY_REFUSED,
    REDIS_UP,
    MANAGER_UP,
    BUILD_INFO,
];

/// Families only a fetcher sets: an executor does not export them.
pub(crate) const FETCHER_ONLY: &[&str] = &[
    TASKS_FETCHED,
    TASKS_ENQUEUED,
    TASKS_DEDUPLICATED,
    FETCHER_LISTINGS_LOST,
    LISTED_ITEMS_UNDECODABLE,
    FETCHER_LEADER,
    FETCHER_BACKPRESSURE,
];

/// Families only an executor sets: a fetcher does not export them. (The control families,
/// [`super::ControlMetrics`], are registered by executors alone, too.)
pub(crate) const EXECUTOR_ONLY: &[&str] = &[
    TASKS_FINISHED,
    TASK_FAILURES,
    TASK_RETRIES,
    TASK_DURATION,
    TASK_STAGE_DURATION,
    FETCH_TO_START,
    TASKS_IN_FLIGHT,
    SLOTS_FREE,
    BROWSER_RESTARTS,
    BROWSER_CONTEXTS,
    BROWSER_MEMORY,
    MAIL_WAIT,
];

/// Whether a process of `role` exports `family`: a `fetcher` everything but [`EXECUTOR_ONLY`], an
/// `executor` everything but [`FETCHER_ONLY`]; any other role (a test's) every family. A family a role never
/// sets would show a constant 0 that `max()` or `min()` over the fleet mistakes for a value.
pub(crate) fn exported_by(role: &str, family: &str) -> bool {
    match role {
        "fetcher" => !EXECUTOR_ONLY.contains(&family),
        "executor" => !FETCHER_ONLY.contains(&family),
        _ => true,
    }
}

/// The registry of one process, registering only the families its role exports. The handles of the others
/// still record (nothing reads them), so recording code needs no role checks.
pub(super) struct RoleRegistry<'a> {
    pub(super) registry: &'a Registry,
    pub(super) role: &'a str,
}

impl RoleRegistry<'_> {
    fn register(
        &self,
        name: &str,
        collector: Box<dyn prometheus::core::Collector>,
    ) -> prometheus::Result<()> {
        if exported_by(self.role, name) {
            self.registry.register(collector)?;
        }
        Ok(())
    }
}

const TASK_BUCKETS: &[f64] = &[
    1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0,
];
const STAGE_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
const QUEUE_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0,
];
const API_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0,
];
const MAIL_BUCKETS: &[f64] = &[1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0];

pub(super) fn stream_label(value: &str) -> &'static str {
    STREAMS.into_iter().find(|s| *s == value).unwrap_or("other")
}

fn counter(
    r: &RoleRegistry<'_>,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(name, Box::new(c.clone()))?;
    Ok(c)
}

fn histogram(
    r: &RoleRegistry<'_>,
    (name, help): (&str, &str),
    labels: &[&str],
    buckets: &[f64],
) -> prometheus::Result<HistogramVec> {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let h = HistogramVec::new(opts, labels)?;
    r.register(name, Box::new(h.clone()))?;
    Ok(h)
}

fn gauge(r: &RoleRegistry<'_>, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    r.register(name, Box::new(g.clone()))?;
    Ok(g)
}

fn gauge_vec(
    r: &RoleRegistry<'_>,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    r.register(name, Box::new(g.clone()))?;
    Ok(g)
}

pub(super) fn counters(r: &RoleRegistry<'_>) -> prometheus::Result<Counters> {
    Ok(Counters {
        fetched: counter(r, TASKS_FETCHED, "Tasks listed by GET /links.", &["site"])?,
        enqueued: counter(
            r,
            TASKS_ENQUEUED,
            "Tasks written to a task stream.",
            &["site", "domain"],
        )?,
        deduplicated: counter(
            r,
            TASKS_DEDUPLICATED,
            "Listed tasks skipped: already in our hands.",
            &["site"],
        )?,
        finished: counter(
            r,
            TASKS_FINISHED,
            "Tasks that left our hands.",
            &["site", "domain", "outcome"],
        )?,
        failures: counter(
            r,
            TASK_FAILURES,
            "Tasks reported failed, by last error class.",
            &["site", "error_class"],
        )?,
        task_retries: counter(
            r,
            TASK_RETRIES,
            "Failed task attempts that were retried.",
            &["site", "error_class"],
        )?,
        api_requests: counter(
            r,
            API_REQUESTS,
            "Manager API requests.",
            &["endpoint", "status_class"],
        )?,
        api_retries: counter(
            r,
            API_RETRIES,
            "Manager API requests retried.",
            &["endpoint"],
        )?,
        browser_restarts: counter(r, BROWSER_RESTARTS, "Browser restarts.", &["reason"])?,
        listings_lost: counter(
            r,
            FETCHER_LISTINGS_LOST,
            "Listings whose tasks are possibly handed out to us and will never run.",
            &["reason"],
        )?,
        listed_undecodable: counter(
            r,
            LISTED_ITEMS_UNDECODABLE,
            "Listed items that could not be decoded.",
            &["fate"],
        )?,
        data_loss: counter(
            r,
            REDIS_DATA_LOSS,
            "Times Redis was found to have lost the task ledger (consumer group or stream gone); recreated.",
            &["op"],
        )?,
    })
}

pub(super) fn histograms(r: &RoleRegistry<'_>) -> prometheus::Result<Histograms> {
    Ok(Histograms {
        task: histogram(
            r,
            (TASK_DURATION, "Claim-to-ack time of a task."),
            &["site", "outcome"],
            TASK_BUCKETS,
        )?,
        stage: histogram(
            r,
            (TASK_STAGE_DURATION, "Time of one stage of a task."),
            &["site", "stage"],
            STAGE_BUCKETS,
        )?,
        fetch_to_start: histogram(
            r,
            (
                FETCH_TO_START,
                "Time from enqueue by the fetcher to start of work.",
            ),
            &["site"],
            QUEUE_BUCKETS,
        )?,
        api: histogram(
            r,
            (API_REQUEST_DURATION, "Manager API request latency."),
            &["endpoint"],
            API_BUCKETS,
        )?,
        mail_wait: histogram(
            r,
            (MAIL_WAIT, "Time waiting for a verification mail."),
            &["outcome"],
            MAIL_BUCKETS,
        )?,
    })
}

pub(super) fn gauges(r: &RoleRegistry<'_>) -> prometheus::Result<Gauges> {
    Ok(Gauges {
        in_flight: gauge(r, TASKS_IN_FLIGHT, "Tasks running in this executor.")?,
        free_slots: gauge(r, SLOTS_FREE, "Free browser slots in this executor.")?,
        stream_length: gauge_vec(r, STREAM_LENGTH, "Entries in a stream (XLEN).", &["stream"])?,
        stream_lag: gauge_vec(
            r,
            STREAM_LAG,
            "Entries not yet delivered to the group.",
            &["stream"],
        )?,
        stream_pending: gauge_vec(
            r,
            STREAM_PENDING,
            "Entries delivered, not yet acknowledged.",
            &["stream"],
        )?,
        outbox: gauge(r, OUTBOX_ENTRIES, "Results waiting in the outbox.")?,
        browser_contexts: gauge(r, BROWSER_CONTEXTS, "Browser contexts open now.")?,
        browser_memory: gauge(
            r,
            BROWSER_MEMORY,
            "Browser process tree memory (PSS), bytes.",
        )?,
        leader: gauge(
            r,
            FETCHER_LEADER,
            "1 while this fetcher holds the leader lease.",
        )?,
        backpressure: gauge(
            r,
            FETCHER_BACKPRESSURE,
            "1 while the fetcher holds back on a full backlog.",
        )?,
        api_key_refused: gauge(
            r,
            API_KEY_REFUSED,
            "1 while the manager refuses the API key.",
        )?,
        redis_up: gauge(r, REDIS_UP, "1 when the last Redis command succeeded.")?,
        manager_up: gauge(
            r,
            MANAGER_UP,
            "1 when the manager answered the last request.",
        )?,
    })
}

//! The simulator's bookkeeping: every task's state, its history of hand-outs and reports, and the protocol
//! violations seen. The state machine of API.md lives in [`super::reports`]; hand-out order lives here.
//! Faults never reach this module except as "the answer will be dropped", so the books stay right.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;
use rand::rngs::StdRng;
use serde::Serialize;

use super::generate::{GeneratedTask, ScenarioSpec, TaskData, scenario};

/// Where a task is in API.md's life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting to be handed out.
    Queued,
    /// Listed to a worker, not started yet.
    HandedOut,
    /// Started (`POST /start`).
    Running,
    /// Completed (`POST /complete`).
    Completed,
    /// Failed; the retry manager puts it back in the queue after the retry delay.
    Failed,
    /// Failed with no retries left.
    FinalFailed,
}

impl TaskState {
    /// Every state, in life-cycle order.
    pub const ALL: [TaskState; 6] = [
        Self::Queued,
        Self::HandedOut,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::FinalFailed,
    ];

    /// The snake_case name used in JSON and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::HandedOut => "handed_out",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::FinalFailed => "final_failed",
        }
    }
}

/// The credentials and feed a worker reported with `complete`.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct CompleteReport {
    /// Reported email.
    pub email: Option<String>,
    /// Reported username.
    pub username: Option<String>,
    /// Reported password.
    pub password: Option<String>,
    /// Reported cookie.
    pub cookie: Option<String>,
    /// Reported RSS feed (required for main-site tasks).
    pub link_rss: Option<String>,
    /// Free text.
    pub note: Option<String>,
}

/// One line of a task's history: a hand-out, a report (applied or refused) or a retry-manager move.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    /// Milliseconds since the simulator started.
    pub at_ms: u64,
    /// `handed_out`, `start`, `complete`, `fail`, `requeued`, `deleted`.
    pub action: &'static str,
    /// HTTP status answered (200 for hand-outs and internal moves).
    pub status: u16,
    /// Whether it changed the task.
    pub applied: bool,
    /// False when the simulator dropped the connection instead of answering.
    pub delivered: bool,
    /// Why it was refused, or what else is worth knowing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A report the worker should not have made (or, for `sub_before_main`, a self-check of the simulator).
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    /// The task concerned (may be an unknown id).
    pub task_id: String,
    /// Machine-readable kind, e.g. `double_complete`.
    pub kind: &'static str,
    /// Human-readable detail.
    pub detail: String,
    /// Milliseconds since the simulator started.
    pub at_ms: u64,
}

/// One task and everything the simulator knows about it.
#[derive(Debug, Clone)]
pub struct TaskRecord {
    /// The wire fields (without `link_rss`).
    pub data: TaskData,
    /// Main-site task of its request.
    pub is_main: bool,
    /// Its request's number (1, 2, … across scenarios).
    pub request: u64,
    /// Life-cycle state.
    pub state: TaskState,
    /// Soft-deleted: 404 everywhere, not counted as lost.
    pub deleted: bool,
    /// `link_rss` as handed out: the main's reported feed on sub-site tasks, empty on main-site tasks.
    pub link_rss: String,
    /// Failures re-queued so far.
    pub retry_count: u32,
    /// Unix milliseconds of the first `start` of the current attempt.
    pub started_at: Option<u64>,
    /// When a `failed` task goes back to the queue.
    pub requeue_at: Option<Instant>,
    /// A report that was applied but whose answer was dropped: a retry of the same report is excused.
    pub undelivered: Option<&'static str>,
    /// Listed again at the next listing (its hand-out's answer was dropped after being applied).
    pub redeliver: bool,
    /// The accepted `complete` body.
    pub report: Option<CompleteReport>,
    /// The last accepted `fail` message.
    pub last_error: Option<String>,
    /// Everything that happened to it.
    pub history: Vec<HistoryEntry>,
}

impl TaskRecord {
    /// The task as API.md's JSON object.
    pub fn wire(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(&self.data).unwrap_or_default();
        if let Some(obj) = value.as_object_mut() {
            obj.insert("link_rss".into(), self.link_rss.clone().into());
        }
        value
    }
}

/// All tasks and findings of one simulator.
#[derive(Debug)]
pub struct State {
    /// Tasks in creation order (main of each request before its subs).
    pub tasks: Vec<TaskRecord>,
    index: HashMap<String, usize>,
    main_of: HashMap<String, usize>,
    /// Protocol violations, in order.
    pub violations: Vec<Violation>,
    next_request: u64,
    /// Failures re-queued before a task becomes `final_failed`.
    pub max_retries: u32,
    /// Delay before a failed task is queued again.
    pub retry_delay: Duration,
    started: Instant,
}

impl State {
    /// An empty store.
    pub fn new(max_retries: u32, retry_delay: Duration) -> Self {
        Self {
            tasks: Vec::new(),
            index: HashMap::new(),
            main_of: HashMap::new(),
            violations: Vec::new(),
            next_request: 1,
            max_retries,
            retry_delay,
            started: Instant::now(),
        }
    }

    /// Milliseconds since start, for history lines.
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Adds a generated scenario; returns the new tasks' indexes.
    pub fn add_scenario(&mut self, spec: &ScenarioSpec, public_url: &str) -> Vec<usize> {
        let generated = scenario(spec, self.next_request, public_url);
        self.next_request += u64::from(spec.requests);
        generated.into_iter().map(|t| self.insert(t)).collect()
    }

    fn insert(&mut self, task: GeneratedTask) -> usize {
        let i = self.tasks.len();
        self.index.insert(task.data.id.clone(), i);
        if task.is_main {
            self.main_of.insert(task.data.request_id.clone(), i);
        }
        self.tasks.push(TaskRecord {
            data: task.data,
            is_main: task.is_main,
            request: task.request,
            state: TaskState::Queued,
            deleted: false,
            link_rss: String::new(),
            retry_count: 0,
            started_at: None,
            requeue_at: None,
            undelivered: None,
            redeliver: false,
            report: None,
            last_error: None,
            history: Vec::new(),
        });
        i
    }

    /// Index of a task by id, deleted ones included.
    pub fn find(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Appends a history line to task `i`.
    pub fn record(&mut self, i: usize, mut entry: HistoryEntry) {
        entry.at_ms = self.now_ms();
        self.tasks[i].history.push(entry);
    }

    /// Notes a protocol violation.
    pub fn violate(&mut self, task_id: &str, kind: &'static str, detail: String) {
        let at_ms = self.now_ms();
        self.violations.push(Violation {
            task_id: task_id.to_owned(),
            kind,
            detail,
            at_ms,
        });
    }

    /// Moves failed tasks whose retry delay has passed back to the queue.
    pub fn requeue_due(&mut self) {
        let now = Instant::now();
        for i in 0..self.tasks.len() {
            let t = &self.tasks[i];
            if t.state == TaskState::Failed && t.requeue_at.is_none_or(|at| at <= now) {
                self.tasks[i].state = TaskState::Queued;
                self.tasks[i].requeue_at = None;
                self.tasks[i].started_at = None;
                self.record(i, entry("requeued", 200, true, true, None));
            }
        }
    }

    /// Index of the main-site task of a request.
    pub fn main_index(&self, request_id: &str) -> Option<usize> {
        self.main_of.get(request_id).copied()
    }

    /// Whether the request's main task has completed (so its subs may be handed out).
    fn main_completed(&self, request_id: &str) -> bool {
        self.main_of
            .get(request_id)
            .is_some_and(|&m| self.tasks[m].state == TaskState::Completed)
    }

    /// Tasks to hand out now, in order: re-deliveries, then queued main-site tasks, then queued sub-site tasks
    /// whose main has completed.
    fn eligible(&self, limit: usize) -> Vec<usize> {
        let live = |t: &&TaskRecord| !t.deleted;
        let redeliver = self
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| live(t) && t.redeliver && t.state == TaskState::HandedOut);
        let mains = self
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| live(t) && t.is_main && t.state == TaskState::Queued);
        let subs = self.tasks.iter().enumerate().filter(|(_, t)| {
            live(t)
                && !t.is_main
                && t.state == TaskState::Queued
                && self.main_completed(&t.data.request_id)
        });
        redeliver
            .chain(mains)
            .chain(subs)
            .map(|(i, _)| i)
            .take(limit)
            .collect()
    }

    /// Hands out up to `limit` tasks (API.md §1) and returns their indexes in listing order. `faults` adds a
    /// duplicate hand-out and soft-deletes listed tasks; `dropped` means the answer will not arrive, so the
    /// tasks are re-delivered at the next listing.
    pub fn hand_out(&mut self, limit: usize, faults: ListFaults, rng: &mut StdRng) -> Vec<usize> {
        self.requeue_due();
        let mut out = self.eligible(limit);
        for &i in &out {
            if !self.tasks[i].is_main
                && !self.main_completed(&self.tasks[i].data.request_id.clone())
            {
                let id = self.tasks[i].data.id.clone();
                self.violate(
                    &id,
                    "sub_before_main",
                    "sub-site task handed out before its main completed".into(),
                );
            }
            self.tasks[i].state = TaskState::HandedOut;
            self.tasks[i].redeliver = faults.dropped;
            self.record(i, entry("handed_out", 200, true, !faults.dropped, None));
        }
        if out.len() < limit
            && rng.random_bool(faults.duplicate)
            && let Some(dup) = self.duplicate_candidate(&out, rng)
        {
            self.record(
                dup,
                entry(
                    "handed_out",
                    200,
                    false,
                    !faults.dropped,
                    Some("duplicate hand-out"),
                ),
            );
            out.push(dup);
        }
        for &i in &out {
            let untouched = self.tasks[i].state == TaskState::HandedOut;
            if untouched && !self.tasks[i].deleted && rng.random_bool(faults.delete) {
                self.tasks[i].deleted = true;
                self.record(i, entry("deleted", 200, true, true, Some("deletion fault")));
            }
        }
        out
    }

    fn duplicate_candidate(&self, listed: &[usize], rng: &mut StdRng) -> Option<usize> {
        let held: Vec<usize> = (0..self.tasks.len())
            .filter(|i| !listed.contains(i))
            .filter(|&i| {
                let t = &self.tasks[i];
                !t.deleted && matches!(t.state, TaskState::HandedOut | TaskState::Running)
            })
            .collect();
        (!held.is_empty()).then(|| held[rng.random_range(0..held.len())])
    }

    /// Gives the sub-site tasks of `request_id` the feed reported by their main task.
    pub fn hand_feed_to_subs(&mut self, request_id: &str, link_rss: &str) {
        for t in self.tasks.iter_mut() {
            if !t.is_main && t.data.request_id == request_id {
                t.link_rss = link_rss.to_owned();
            }
        }
    }

    /// Soft-deletes task `i` (404 from now on).
    pub fn delete(&mut self, i: usize, note: &str) {
        self.tasks[i].deleted = true;
        self.record(i, entry("deleted", 200, true, true, Some(note)));
    }

    /// Unix milliseconds now.
    pub fn unix_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default()
    }
}

/// Fault probabilities that act inside a listing.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListFaults {
    /// Probability that a task already handed out is listed again.
    pub duplicate: f64,
    /// Probability, per listed task, that it is soft-deleted right after being listed.
    pub delete: f64,
    /// The answer will be dropped after being applied.
    pub dropped: bool,
}

/// A history line (its time is set by [`State::record`]).
pub fn entry(
    action: &'static str,
    status: u16,
    applied: bool,
    delivered: bool,
    note: Option<&str>,
) -> HistoryEntry {
    HistoryEntry {
        at_ms: 0,
        action,
        status,
        applied,
        delivered,
        note: note.map(str::to_owned),
    }
}

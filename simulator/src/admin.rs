//! Admin endpoints for tests and operators (no API key; the simulator is a local tool): add a scenario,
//! read and change the fault flags, inspect a task with its report history, soft-delete a task, the audit.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::Shared;
use super::api::failure;
use super::audit::audit as compute_audit;
use super::chaos::Faults;
use super::generate::ScenarioSpec;
use super::state::{CompleteReport, HistoryEntry, State as Books, TaskRecord};

/// One task of a newly added scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioTask {
    /// Task id.
    pub id: String,
    /// Request id.
    pub request_id: String,
    /// Domain.
    pub domain: String,
    /// `main` or `sub`.
    pub site: &'static str,
    /// The request's email address.
    pub email: String,
    /// The request's number (1, 2, … across scenarios).
    pub request: u64,
}

/// A task with everything the simulator knows about it, for `GET /admin/tasks/{id}`.
#[derive(Debug, Clone, Serialize)]
pub struct TaskView {
    /// The task as the API shows it.
    pub task: Value,
    /// `main` or `sub`.
    pub site: &'static str,
    /// State name.
    pub state: &'static str,
    /// Soft-deleted.
    pub deleted: bool,
    /// Failures re-queued so far.
    pub retry_count: u32,
    /// Unix milliseconds of the current attempt's start.
    pub started_at: Option<u64>,
    /// The accepted `complete` body.
    pub report: Option<CompleteReport>,
    /// The last accepted `fail` message.
    pub last_error: Option<String>,
    /// Hand-outs, reports and moves, in order.
    pub history: Vec<HistoryEntry>,
}

impl TaskView {
    /// The view of one record.
    pub fn of(t: &TaskRecord) -> Self {
        Self {
            task: t.wire(),
            site: site(t),
            state: t.state.name(),
            deleted: t.deleted,
            retry_count: t.retry_count,
            started_at: t.started_at,
            report: t.report.clone(),
            last_error: t.last_error.clone(),
            history: t.history.clone(),
        }
    }
}

fn site(t: &TaskRecord) -> &'static str {
    if t.is_main { "main" } else { "sub" }
}

/// Adds a scenario to the books and describes its tasks.
pub fn add_scenario(books: &mut Books, spec: &ScenarioSpec, public_url: &str) -> Vec<ScenarioTask> {
    books
        .add_scenario(spec, public_url)
        .into_iter()
        .map(|i| {
            let t = &books.tasks[i];
            ScenarioTask {
                id: t.data.id.clone(),
                request_id: t.data.request_id.clone(),
                domain: t.data.domain.clone(),
                site: site(t),
                email: t.data.email.clone(),
                request: t.request,
            }
        })
        .collect()
}

/// `POST /admin/scenario` with a (partial) [`ScenarioSpec`]: adds tasks and lists them.
pub async fn post_scenario(State(sim): State<Shared>, body: Bytes) -> Response {
    let spec: ScenarioSpec = if body.is_empty() {
        ScenarioSpec::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(spec) => spec,
            Err(e) => return failure(StatusCode::BAD_REQUEST, &format!("bad scenario: {e}")),
        }
    };
    if spec.requests > 100_000 || spec.subs_per_request > 100 {
        return failure(
            StatusCode::BAD_REQUEST,
            "at most 100000 requests and 100 sub-sites each",
        );
    }
    let tasks = sim.add_scenario(&spec);
    Json(json!({"success": true, "tasks": tasks})).into_response()
}

/// `GET /admin/faults`: the current fault flags.
pub async fn get_faults(State(sim): State<Shared>) -> Response {
    Json(*sim.faults()).into_response()
}

/// `PUT /admin/faults` with some fields of [`Faults`]: changes only those, answers the result.
pub async fn put_faults(State(sim): State<Shared>, body: Bytes) -> Response {
    let Ok(Value::Object(changes)) = serde_json::from_slice::<Value>(&body) else {
        return failure(
            StatusCode::BAD_REQUEST,
            "body must be a JSON object of fault fields",
        );
    };
    let mut current = serde_json::to_value(*sim.faults()).unwrap_or_default();
    if let Some(obj) = current.as_object_mut() {
        obj.extend(changes);
    }
    let faults: Faults = match serde_json::from_value(current) {
        Ok(f) => f,
        Err(e) => return failure(StatusCode::BAD_REQUEST, &format!("bad faults: {e}")),
    };
    if let Err(e) = faults.validate() {
        return failure(StatusCode::BAD_REQUEST, &e);
    }
    *sim.faults() = faults;
    Json(faults).into_response()
}

/// `GET /admin/tasks`: every task's id, site, domain, state.
pub async fn list_tasks(State(sim): State<Shared>) -> Response {
    let books = sim.state();
    let tasks: Vec<Value> = books
        .tasks
        .iter()
        .map(|t| {
            json!({"id": t.data.id, "request_id": t.data.request_id, "domain": t.data.domain,
                   "site": site(t), "state": t.state.name(), "deleted": t.deleted, "retry_count": t.retry_count})
        })
        .collect();
    Json(json!({"success": true, "tasks": tasks})).into_response()
}

/// `GET /admin/tasks/{id}`: the task, its accepted report and its history.
pub async fn get_task(State(sim): State<Shared>, Path(id): Path<String>) -> Response {
    match sim.task(&id) {
        Some(view) => Json(view).into_response(),
        None => failure(StatusCode::NOT_FOUND, "task not found"),
    }
}

/// `POST /admin/tasks/{id}/delete`: soft-delete (404 on the API from now on).
pub async fn delete_task(State(sim): State<Shared>, Path(id): Path<String>) -> Response {
    let mut books = sim.state();
    match books.find(&id) {
        Some(i) => {
            books.delete(i, "deleted by admin");
            Json(json!({"success": true})).into_response()
        }
        None => failure(StatusCode::NOT_FOUND, "task not found"),
    }
}

/// `GET /audit`: see [`super::audit::Audit`].
pub async fn audit(State(sim): State<Shared>) -> Response {
    Json(compute_audit(&mut sim.state())).into_response()
}

//! The five endpoints of API.md under `/api/v1/podcast_account`, written from the document (not from the
//! client's types): the `X-API-Key` check, the JSON envelope, `limit` handling and body parsing. The state
//! changes themselves are in [`super::reports`] and [`super::state`].

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Shared;
use super::chaos::Delivery;
use super::reports::{self, FailBody, Refusal};
use super::state::{CompleteReport, ListFaults};

/// Where the API is mounted.
pub const BASE_PATH: &str = "/api/v1/podcast_account";
/// `limit` when the query has none.
pub const DEFAULT_LIMIT: usize = 5;
/// Largest `limit` honoured; larger values are capped.
pub const MAX_LIMIT: usize = 1000;

/// `{"success": false, "message": …}` with a status.
pub fn failure(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"success": false, "message": message}))).into_response()
}

fn refusal(r: Refusal) -> Response {
    failure(
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST),
        &r.message,
    )
}

fn ok() -> Response {
    Json(json!({"success": true})).into_response()
}

/// Refuses requests without the right `X-API-Key` (401), before anything is applied.
pub async fn require_key(State(sim): State<Shared>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok());
    if given != Some(sim.api_key.as_str()) {
        return failure(StatusCode::UNAUTHORIZED, "invalid or missing X-API-Key");
    }
    next.run(request).await
}

fn delivered(delivery: Option<Extension<Delivery>>) -> bool {
    delivery.is_none_or(|Extension(d)| !d.dropped)
}

/// `GET /links?limit=N`: hands out tasks (main-site first; sub-site tasks after their main completed).
pub async fn list(
    State(sim): State<Shared>,
    delivery: Option<Extension<Delivery>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let limit = match query.get("limit").map(|l| l.trim().parse::<usize>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if n >= 1 => n.min(MAX_LIMIT),
        Some(_) => {
            return failure(
                StatusCode::BAD_REQUEST,
                "limit must be a number from 1 to 1000",
            );
        }
    };
    let faults = {
        let f = sim.faults();
        ListFaults {
            duplicate: f.duplicate,
            delete: f.delete,
            dropped: !delivered(delivery),
        }
    };
    let data: Vec<Value> = {
        let mut rng = sim.rng();
        let mut state = sim.state();
        let listed = state.hand_out(limit, faults, &mut rng);
        listed.iter().map(|&i| state.tasks[i].wire()).collect()
    };
    Json(json!({"success": true, "data": data})).into_response()
}

/// `GET /links/{id}`: one task; changes nothing; 404 for unknown or soft-deleted ids.
pub async fn detail(State(sim): State<Shared>, Path(id): Path<String>) -> Response {
    let state = sim.state();
    match state.find(&id).map(|i| &state.tasks[i]) {
        Some(task) if !task.deleted => {
            Json(json!({"success": true, "data": task.wire()})).into_response()
        }
        _ => failure(StatusCode::NOT_FOUND, "task not found"),
    }
}

/// `POST /links/{id}/start`: idempotent; handed_out → running.
pub async fn start(
    State(sim): State<Shared>,
    delivery: Option<Extension<Delivery>>,
    Path(id): Path<String>,
) -> Response {
    let result = reports::start(&mut sim.state(), &id, delivered(delivery));
    result.map_or_else(refusal, |()| ok())
}

/// `POST /links/{id}/complete`: running → completed; 400 for a body without credentials (or a main-site task
/// without `link_rss`), 409 in any other state.
pub async fn complete(
    State(sim): State<Shared>,
    delivery: Option<Extension<Delivery>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(report) = serde_json::from_slice::<CompleteReport>(&body) else {
        return bad_json(&sim, &id, "complete");
    };
    let result = reports::complete(&mut sim.state(), &id, report, delivered(delivery));
    result.map_or_else(refusal, |()| ok())
}

/// `POST /links/{id}/fail`: running → failed (re-queued or final_failed); 400 without a usable `error_message`.
pub async fn fail(
    State(sim): State<Shared>,
    delivery: Option<Extension<Delivery>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(report) = serde_json::from_slice::<FailBody>(&body) else {
        return bad_json(&sim, &id, "fail");
    };
    let result = reports::fail(&mut sim.state(), &id, report, delivered(delivery));
    result.map_or_else(refusal, |()| ok())
}

/// A report body that is not a JSON object of strings: 400, and a violation when the task exists.
fn bad_json(sim: &Shared, id: &str, report: &str) -> Response {
    let mut state = sim.state();
    if let Some(i) = state.find(id) {
        state.record(
            i,
            super::state::entry(
                if report == "fail" { "fail" } else { "complete" },
                400,
                false,
                true,
                Some("body is not valid JSON"),
            ),
        );
        state.violate(
            id,
            "bad_report_body",
            format!("{report} body is not a valid JSON object"),
        );
    }
    failure(
        StatusCode::BAD_REQUEST,
        "body must be a JSON object with string fields",
    )
}

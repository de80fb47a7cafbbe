//! API.md's report state machine: `start` (idempotent, handed_out → running), `complete` (running → completed,
//! credentials and, for main-site tasks, `link_rss` required) and `fail` (running → failed → re-queued or
//! final_failed). Each call either applies or is refused with a status and message; refusals that a correct
//! worker would not provoke are recorded as violations. A retry of a report whose answer the simulator itself
//! dropped is excused.

use serde::Deserialize;

use super::state::{CompleteReport, State, TaskState, entry};

/// Longest `error_message` accepted, in characters.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 1000;

/// A refused call: HTTP status and the message for `{"success": false, "message": …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status (400, 404, 409).
    pub status: u16,
    /// Message for the envelope.
    pub message: String,
}

fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

/// Body of `POST /fail`.
#[derive(Debug, Default, Deserialize)]
pub struct FailBody {
    /// Why it failed (required, at most 1000 characters).
    pub error_message: Option<String>,
    /// Free text.
    pub note: Option<String>,
}

/// Which report a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// `POST /links/{id}/start`.
    Start,
    /// `POST /links/{id}/complete`.
    Complete,
    /// `POST /links/{id}/fail`.
    Fail,
}

impl Report {
    /// Lowercase name, as in the URL.
    pub fn name(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Complete => "complete",
            Self::Fail => "fail",
        }
    }
}

/// Finds a live task for a report: 404 for unknown (a violation: the id was never handed out) and deleted ids.
fn live_task(
    state: &mut State,
    id: &str,
    report: Report,
    delivered: bool,
) -> Result<usize, Refusal> {
    let Some(i) = state.find(id) else {
        state.violate(
            id,
            "unknown_task",
            format!("{} for an id never handed out", report.name()),
        );
        return Err(refuse(404, "task not found"));
    };
    if state.tasks[i].deleted {
        state.record(
            i,
            entry(report.name(), 404, false, delivered, Some("deleted")),
        );
        return Err(refuse(404, "task not found"));
    }
    Ok(i)
}

/// A report refused for the task's state: 409, and a violation unless it retries an answer we dropped.
fn wrong_state(
    state: &mut State,
    i: usize,
    report: Report,
    kind: &'static str,
    delivered: bool,
) -> Refusal {
    let current = state.tasks[i].state.name();
    let excused = state.tasks[i].undelivered == Some(report.name());
    let note = if excused {
        "retry after a dropped answer"
    } else {
        current
    };
    state.record(i, entry(report.name(), 409, false, delivered, Some(note)));
    if !excused {
        let id = state.tasks[i].data.id.clone();
        state.violate(&id, kind, format!("{} while {current}", report.name()));
    }
    refuse(409, format!("task is {current}"))
}

/// Marks an applied report; if its answer will be dropped, remembers it so that the retry is excused.
fn applied(state: &mut State, i: usize, report: Report, delivered: bool, note: Option<&str>) {
    state.tasks[i].undelivered = (!delivered).then_some(report.name());
    state.record(i, entry(report.name(), 200, true, delivered, note));
}

/// `POST /start`: handed_out → running; again while running changes nothing.
pub fn start(state: &mut State, id: &str, delivered: bool) -> Result<(), Refusal> {
    let i = live_task(state, id, Report::Start, delivered)?;
    match state.tasks[i].state {
        TaskState::HandedOut => {
            state.tasks[i].state = TaskState::Running;
            state.tasks[i].started_at = Some(State::unix_ms());
            applied(state, i, Report::Start, delivered, None);
            Ok(())
        }
        TaskState::Running => {
            state.record(
                i,
                entry("start", 200, false, delivered, Some("already running")),
            );
            Ok(())
        }
        TaskState::Completed | TaskState::FinalFailed => Err(wrong_state(
            state,
            i,
            Report::Start,
            "start_after_final",
            delivered,
        )),
        TaskState::Queued | TaskState::Failed => Err(wrong_state(
            state,
            i,
            Report::Start,
            "not_handed_out",
            delivered,
        )),
    }
}

/// Checks a `complete` body: at least one credential, and `link_rss` (an http(s) URL) on main-site tasks.
fn check_complete(body: &CompleteReport, is_main: bool) -> Result<(), (&'static str, String)> {
    let filled = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
    if ![&body.email, &body.username, &body.password, &body.cookie]
        .into_iter()
        .any(filled)
    {
        return Err((
            "complete_without_credentials",
            "one of email, username, password, cookie is required".into(),
        ));
    }
    if is_main {
        let rss = body.link_rss.as_deref().unwrap_or("").trim();
        if rss.is_empty() {
            return Err((
                "main_complete_without_link_rss",
                "link_rss is required for a main-site task".into(),
            ));
        }
        if !(rss.starts_with("http://") || rss.starts_with("https://")) {
            return Err(("bad_link_rss", "link_rss must be an http(s) URL".into()));
        }
    }
    Ok(())
}

/// `POST /complete`: running → completed; a main task's feed goes to its request's sub-site tasks.
pub fn complete(
    state: &mut State,
    id: &str,
    body: CompleteReport,
    delivered: bool,
) -> Result<(), Refusal> {
    let i = live_task(state, id, Report::Complete, delivered)?;
    if let Err((kind, message)) = check_complete(&body, state.tasks[i].is_main) {
        state.record(i, entry("complete", 400, false, delivered, Some(&message)));
        let id = state.tasks[i].data.id.clone();
        state.violate(&id, kind, message.clone());
        return Err(refuse(400, message));
    }
    match state.tasks[i].state {
        TaskState::Running => {
            let t = &mut state.tasks[i];
            t.state = TaskState::Completed;
            if t.is_main {
                let request_id = t.data.request_id.clone();
                let rss = body.link_rss.clone().unwrap_or_default();
                state.hand_feed_to_subs(&request_id, rss.trim());
            }
            state.tasks[i].report = Some(body);
            applied(state, i, Report::Complete, delivered, None);
            Ok(())
        }
        TaskState::Completed => Err(wrong_state(
            state,
            i,
            Report::Complete,
            "double_complete",
            delivered,
        )),
        TaskState::HandedOut => Err(wrong_state(
            state,
            i,
            Report::Complete,
            "complete_not_started",
            delivered,
        )),
        _ => Err(wrong_state(
            state,
            i,
            Report::Complete,
            "complete_in_wrong_state",
            delivered,
        )),
    }
}

/// `POST /fail`: running → failed (re-queued after the retry delay while retries remain) or final_failed.
pub fn fail(state: &mut State, id: &str, body: FailBody, delivered: bool) -> Result<(), Refusal> {
    let i = live_task(state, id, Report::Fail, delivered)?;
    let message = body.error_message.unwrap_or_default();
    let problem = if message.trim().is_empty() {
        Some("error_message is required")
    } else if message.chars().count() > MAX_ERROR_MESSAGE_CHARS {
        Some("error_message is longer than 1000 characters")
    } else {
        None
    };
    if let Some(problem) = problem {
        state.record(i, entry("fail", 400, false, delivered, Some(problem)));
        let id = state.tasks[i].data.id.clone();
        state.violate(&id, "bad_fail_body", problem.into());
        return Err(refuse(400, problem));
    }
    match state.tasks[i].state {
        TaskState::Running => {
            let retry = state.tasks[i].retry_count < state.max_retries;
            let t = &mut state.tasks[i];
            t.last_error = Some(message);
            if retry {
                t.retry_count += 1;
                t.state = TaskState::Failed;
                t.requeue_at = Some(std::time::Instant::now() + state.retry_delay);
            } else {
                t.state = TaskState::FinalFailed;
            }
            applied(state, i, Report::Fail, delivered, body.note.as_deref());
            if retry && state.retry_delay.is_zero() {
                state.requeue_due();
            }
            Ok(())
        }
        TaskState::HandedOut => Err(wrong_state(
            state,
            i,
            Report::Fail,
            "fail_not_started",
            delivered,
        )),
        TaskState::Completed => Err(wrong_state(
            state,
            i,
            Report::Fail,
            "fail_after_complete",
            delivered,
        )),
        _ => Err(wrong_state(
            state,
            i,
            Report::Fail,
            "fail_in_wrong_state",
            delivered,
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::super::generate::ScenarioSpec;
    use super::super::state::ListFaults;
    use super::*;

    fn one_request(max_retries: u32) -> (State, String, String) {
        let mut s = State::new(max_retries, Duration::ZERO);
        let spec = ScenarioSpec {
            requests: 1,
            subs_per_request: 1,
            ..ScenarioSpec::default()
        };
        let ids = s.add_scenario(&spec, "http://x");
        let main = s.tasks[ids[0]].data.id.clone();
        let sub = s.tasks[ids[1]].data.id.clone();
        (s, main, sub)
    }

    fn creds(rss: Option<&str>) -> CompleteReport {
        CompleteReport {
            email: Some("a@b".into()),
            link_rss: rss.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn main_feed_reaches_sub_and_double_complete_is_a_violation() {
        let (mut s, main, sub) = one_request(0);
        let mut rng = StdRng::seed_from_u64(1);
        let listed = s.hand_out(10, ListFaults::default(), &mut rng);
        assert_eq!(listed.len(), 1, "only the main task before it completes");
        start(&mut s, &main, true).unwrap();
        start(&mut s, &main, true).unwrap();
        assert_eq!(
            complete(&mut s, &main, creds(None), true)
                .unwrap_err()
                .status,
            400
        );
        complete(&mut s, &main, creds(Some("http://feed/rss")), true).unwrap();
        let listed = s.hand_out(10, ListFaults::default(), &mut rng);
        assert_eq!(s.tasks[listed[0]].data.id, sub);
        assert_eq!(s.tasks[listed[0]].wire()["link_rss"], "http://feed/rss");
        assert_eq!(
            complete(&mut s, &main, creds(Some("http://f")), true)
                .unwrap_err()
                .status,
            409
        );
        let kinds: Vec<_> = s.violations.iter().map(|v| v.kind).collect();
        assert_eq!(kinds, ["main_complete_without_link_rss", "double_complete"]);
    }

    #[test]
    fn retry_after_dropped_answer_is_excused_and_retries_run_out() {
        let (mut s, main, _) = one_request(1);
        let mut rng = StdRng::seed_from_u64(1);
        s.hand_out(1, ListFaults::default(), &mut rng);
        start(&mut s, &main, true).unwrap();
        let fail_body = || FailBody {
            error_message: Some("boom".into()),
            note: None,
        };
        fail(&mut s, &main, fail_body(), true).unwrap();
        assert_eq!(s.tasks[0].state, TaskState::Queued);
        s.hand_out(1, ListFaults::default(), &mut rng);
        start(&mut s, &main, true).unwrap();
        fail(&mut s, &main, fail_body(), false).unwrap();
        assert_eq!(s.tasks[0].state, TaskState::FinalFailed);
        assert_eq!(
            fail(&mut s, &main, fail_body(), true).unwrap_err().status,
            409
        );
        assert!(s.violations.is_empty(), "{:?}", s.violations);
    }
}

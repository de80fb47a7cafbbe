//! The audit: tasks by state, protocol violations, and tasks handed out but never finally reported ("lost").
//! `clean` means no violation and nothing lost. Soft-deleted tasks are counted apart and never lost; sub-site
//! tasks whose main task can no longer complete are "blocked", not lost (they were never handed out).

use std::collections::BTreeMap;

use serde::Serialize;

use super::state::{State, TaskState, Violation};

/// The verdict of `GET /audit`.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    /// No violations and no lost tasks.
    pub clean: bool,
    /// Every task ever created, deleted ones included.
    pub total: usize,
    /// Live (not deleted) tasks by state name; every state is present.
    pub counts: BTreeMap<&'static str, usize>,
    /// Soft-deleted tasks.
    pub deleted: usize,
    /// Queued sub-site tasks whose main task is final_failed or deleted.
    pub blocked: usize,
    /// Handed out or running, with no final report.
    pub lost: Vec<LostTask>,
    /// Protocol violations, in order.
    pub violations: Vec<Violation>,
    /// Report calls seen, by kind and outcome.
    pub reports: ReportCounts,
}

/// A task handed out and never finished.
#[derive(Debug, Clone, Serialize)]
pub struct LostTask {
    /// Task id.
    pub id: String,
    /// Its domain.
    pub domain: String,
    /// `handed_out` or `running`.
    pub state: &'static str,
    /// Its hand-out answer was dropped and it waits for re-delivery at the next listing.
    pub awaiting_redelivery: bool,
}

/// How many report calls were applied, refused, or answered with a dropped connection.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReportCounts {
    /// Hand-outs (including duplicates and re-deliveries).
    pub handed_out: usize,
    /// Applied `start` calls (first start of an attempt).
    pub started: usize,
    /// Applied `complete` calls.
    pub completed: usize,
    /// Applied `fail` calls.
    pub failed: usize,
    /// Report calls refused with 4xx.
    pub refused: usize,
    /// History lines whose answer was dropped.
    pub undelivered: usize,
}

/// Computes the audit (moving failed tasks whose retry delay has passed back to the queue first).
pub fn audit(state: &mut State) -> Audit {
    state.requeue_due();
    let mut counts: BTreeMap<&'static str, usize> =
        TaskState::ALL.iter().map(|s| (s.name(), 0)).collect();
    let mut lost = Vec::new();
    let mut deleted = 0;
    let mut blocked = 0;
    for t in &state.tasks {
        if t.deleted {
            deleted += 1;
            continue;
        }
        *counts.entry(t.state.name()).or_default() += 1;
        if matches!(t.state, TaskState::HandedOut | TaskState::Running) {
            lost.push(LostTask {
                id: t.data.id.clone(),
                domain: t.data.domain.clone(),
                state: t.state.name(),
                awaiting_redelivery: t.redeliver,
            });
        }
        if !t.is_main && t.state == TaskState::Queued && main_is_dead(state, &t.data.request_id) {
            blocked += 1;
        }
    }
    let reports = report_counts(state);
    Audit {
        clean: lost.is_empty() && state.violations.is_empty(),
        total: state.tasks.len(),
        counts,
        deleted,
        blocked,
        lost,
        violations: state.violations.clone(),
        reports,
    }
}

fn main_is_dead(state: &State, request_id: &str) -> bool {
    state
        .main_index(request_id)
        .map(|m| &state.tasks[m])
        .is_some_and(|m| m.deleted || m.state == TaskState::FinalFailed)
}

fn report_counts(state: &State) -> ReportCounts {
    let mut c = ReportCounts::default();
    for h in state.tasks.iter().flat_map(|t| &t.history) {
        match (h.action, h.applied) {
            ("handed_out", _) => c.handed_out += 1,
            ("start", true) => c.started += 1,
            ("complete", true) => c.completed += 1,
            ("fail", true) => c.failed += 1,
            ("start" | "complete" | "fail", false) if h.status >= 400 => c.refused += 1,
            _ => {}
        }
        if !h.delivered {
            c.undelivered += 1;
        }
    }
    c
}

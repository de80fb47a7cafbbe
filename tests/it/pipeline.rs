//! End to end under faults: simulator → fetcher → Redis → three executors → reports, for each fault of
//! the simulator alone and all together. Every task ends with exactly one report, none is registered
//! twice, and the simulator's audit shows no lost task and no protocol violation.

use std::time::Duration;

use pw_simulator::Faults;

use crate::helpers::pipeline::{CountingDriver, Pipeline};

const REQUESTS: u32 = 6;
const SUBS: u32 = 2;

/// Runs the pipeline to the end under `faults`, checks the audit and the reports, and returns the
/// (stopped) pipeline's evidence that the fault happened.
async fn run_clean(faults: Faults) -> Evidence {
    let p = Pipeline::start(REQUESTS, SUBS, faults, 3).await;
    let audit = p.settled(Duration::from_secs(90)).await;
    assert!(
        audit.clean,
        "lost {:?}, violations {:?}",
        audit.lost, audit.violations
    );
    assert_eq!(audit.total, (REQUESTS * (1 + SUBS)) as usize);
    assert_eq!(audit.counts["final_failed"], 0, "{audit:?}");
    let runs = p.driver.runs();
    assert!(runs.values().all(|n| *n == 1), "registered twice: {runs:?}");
    let mut completed = 0;
    for id in runs.keys() {
        let view = p.sim.task(id).unwrap();
        let applied = |action: &str| {
            view.history
                .iter()
                .filter(|h| h.action == action && h.applied)
                .count()
        };
        if view.deleted {
            assert_eq!(
                applied("complete") + applied("fail"),
                0,
                "{id} reported after deletion"
            );
            continue;
        }
        assert_eq!(view.state, "completed", "{id}: {view:?}");
        assert_eq!(
            (applied("complete"), applied("fail")),
            (1, 0),
            "{id}: {:?}",
            view.history
        );
        completed += 1;
    }
    assert_eq!(completed, audit.counts["completed"]);
    assert_eq!(
        audit.counts["completed"] + audit.deleted + audit.blocked,
        audit.total,
        "{audit:?}"
    );
    let evidence = Evidence {
        answers_5xx: p.sim_answers("500").await
            + p.sim_answers("502").await
            + p.sim_answers("503").await,
        answers_429: p.sim_answers("429").await,
        dropped: p.sim_answers("dropped").await,
        retries: p.total("pw_api_retries_total"),
        deduplicated: p.total("pw_tasks_deduplicated_total"),
        deleted: audit.deleted,
    };
    p.stop().await;
    evidence
}

/// What the faults did, to prove each test exercised its fault.
#[derive(Debug)]
struct Evidence {
    answers_5xx: f64,
    answers_429: f64,
    dropped: f64,
    retries: f64,
    deduplicated: f64,
    deleted: usize,
}

fn only(f: impl FnOnce(&mut Faults)) -> Faults {
    let mut faults = Faults {
        slow_ms: 300,
        retry_after_secs: 1,
        ..Faults::default()
    };
    f(&mut faults);
    faults
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_without_faults_completes_every_task_once() {
    let e = run_clean(only(|_| {})).await;
    assert_eq!((e.retries, e.dropped, e.deleted), (0.0, 0.0, 0), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_survives_server_errors() {
    let e = run_clean(only(|f| f.error_5xx = 0.25)).await;
    assert!(e.answers_5xx > 0.0 && e.retries > 0.0, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_honours_rate_limits() {
    let e = run_clean(only(|f| f.too_many_requests = 0.15)).await;
    assert!(e.answers_429 > 0.0 && e.retries > 0.0, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_survives_slow_answers() {
    let started = std::time::Instant::now();
    run_clean(only(|f| f.slow = 0.3)).await;
    assert!(
        started.elapsed() > Duration::from_millis(300),
        "nothing was slow"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_survives_dropped_connections() {
    let e = run_clean(only(|f| f.drop_connection = 0.2)).await;
    assert!(e.dropped > 0.0 && e.retries > 0.0, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_survives_garbage_bodies() {
    let e = run_clean(only(|f| f.garbage = 0.25)).await;
    assert!(e.retries > 0.0, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_ignores_duplicate_hand_outs() {
    let e = run_clean(only(|f| f.duplicate = 0.5)).await;
    assert!(e.deduplicated > 0.0, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_drops_deleted_tasks() {
    let e = run_clean(only(|f| f.delete = 0.3)).await;
    assert!(e.deleted > 0, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_survives_every_fault_at_once() {
    let e = run_clean(only(|f| {
        f.error_5xx = 0.1;
        f.too_many_requests = 0.05;
        f.slow = 0.1;
        f.drop_connection = 0.1;
        f.garbage = 0.1;
        f.duplicate = 0.3;
        f.delete = 0.1;
    }))
    .await;
    assert!(e.retries > 0.0, "{e:?}");
}

/// The manager re-queues a task on our `fail` and hands it out again, often while the executor still retries
/// the `fail` whose answer was dropped: that new hand-out must be run once the `fail` settles, not be dropped
/// as a duplicate of the id still in our hands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_runs_a_task_the_manager_hands_out_again_after_our_fail() {
    let faults = only(|f| {
        f.drop_connection = 0.3;
        f.drop_after_apply = 1.0;
    });
    let p = Pipeline::start_with(REQUESTS, SUBS, faults, 3, CountingDriver::failing_first()).await;
    let audit = p.settled(Duration::from_secs(90)).await;
    assert!(
        audit.clean,
        "lost {:?}, violations {:?}",
        audit.lost, audit.violations
    );
    let total = (REQUESTS * (1 + SUBS)) as usize;
    assert_eq!(audit.counts["completed"], total, "{audit:?}");
    let runs = p.driver.runs();
    assert!(
        runs.len() == total && runs.values().all(|n| *n == 2),
        "each task runs once, fails, and runs once more: {runs:?}"
    );
    // The manager's retry of a task we failed is a retry for the driver too (it may resume).
    let attempts = p.driver.attempts();
    assert!(
        attempts
            .values()
            .all(|a| a.len() == 2 && a[0] == 1 && a[1] >= 2),
        "{attempts:?}"
    );
    assert!(p.sim_answers("dropped").await > 0.0, "nothing was dropped");
    p.stop().await;
}

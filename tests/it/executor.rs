//! The executor against a real Redis and the in-process simulated manager: exactly-once across a fleet,
//! reclaim after SIGKILL, lease renewal, dead-letters, deleted tasks, the outbox while the manager is
//! down, SIGTERM drain of the real binary, unknown domains, and secrets kept out of logs and Redis.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use podcast_worker::executor::{Executor, Outcome};
use podcast_worker::streams::StreamKeys;
use podcast_worker::streams::consumer::Consumer;
use podcast_worker::task::{Site, TaskId};
use pw_simulator::Faults;
use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;

use crate::helpers::executor::{
    Behaviour, TestDriver, TestEnv, drivers, metrics, signal, spawn_binary,
};
use crate::helpers::streams::{dead_letters, enqueue_raw, pending, stream_len, stream_settings};
use crate::helpers::{cleanup, eventually, redis_conn};

type Calls = Arc<Mutex<Vec<(String, String)>>>;

async fn executor(
    env: &TestEnv,
    name: &str,
    extra: &[(&str, &str)],
    domains: &[&str],
    (calls, b): (&Calls, Behaviour),
) -> Executor {
    let cfg = env.executor_config(name, extra);
    let driver = TestDriver::new(name, calls, b);
    Executor::new(&cfg, drivers(domains, driver), metrics())
        .await
        .unwrap()
}

/// Runs `fetch_once` until something was queued.
async fn fetch(env: &TestEnv) {
    let mut f = env.fetcher().await;
    for _ in 0..50 {
        if let podcast_worker::fetcher::FetchOutcome::Enqueued { enqueued, .. } =
            f.fetch_once().await
            && enqueued > 0
        {
            return;
        }
    }
    panic!("nothing was fetched");
}

/// A background fetch loop with a fixed 50 ms pace (quicker than `Fetcher::run`'s adaptive polling).
async fn run_fetcher(env: &TestEnv, cancel: &CancellationToken) -> tokio::task::JoinHandle<()> {
    let mut f = env.fetcher().await;
    let cancel = cancel.clone();
    tokio::spawn(async move {
        while !cancel.is_cancelled() {
            f.fetch_once().await;
            let pace = tokio::time::sleep(Duration::from_millis(50));
            cancel.run_until_cancelled(pace).await;
        }
    })
}

/// Calls `process_next` until it returns something other than `Idle`.
async fn next_outcome(ex: &Executor) -> Outcome {
    eventually(
        Duration::from_secs(20),
        "an entry to process",
        || async move {
            match ex.process_next().await.unwrap() {
                Outcome::Idle => None,
                other => Some(other),
            }
        },
    )
    .await
}

async fn keys_left(prefix: &str, what: &str) -> usize {
    keys_of(prefix, what).await.len()
}

async fn keys_of(prefix: &str, what: &str) -> Vec<String> {
    let mut conn = redis_conn().await;
    let pattern = format!(
        "{}:{what}:*",
        prefix.replace('{', "\\{").replace('}', "\\}")
    );
    conn.keys(pattern).await.unwrap()
}

/// Inflight markers still there that are not a completed task's (kept on purpose until they expire, so a
/// late duplicate hand-out is not run; see `streams::handover`).
async fn markers_left(prefix: &str) -> usize {
    let mut conn = redis_conn().await;
    let mut left = 0;
    for key in keys_of(prefix, "inflight").await {
        let value: Option<String> = conn.get(&key).await.unwrap();
        if value.as_deref() != Some(podcast_worker::streams::handover::Marker::Completing.as_str())
        {
            left += 1;
        }
    }
    left
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn executor_fleet_reports_every_task_exactly_once_without_starvation() {
    let env = TestEnv::new().await;
    let domains = ["main.test", "sub1.test", "sub2.test"];
    let ids = env.add(8, 2, "main.test", &["sub1.test", "sub2.test"]);
    let calls: Calls = Arc::default();
    let cancel = CancellationToken::new();
    let mut running = Vec::new();
    for i in 0..4 {
        let b = Behaviour::Succeed(Duration::from_millis(40));
        let ex = executor(&env, &format!("ex{i}"), &[], &domains, (&calls, b)).await;
        let c = cancel.clone();
        running.push(tokio::spawn(async move { ex.run(c).await }));
    }
    running.push(run_fetcher(&env, &cancel).await);
    let (e, i) = (&env, &ids);
    eventually(
        Duration::from_secs(60),
        "every task completed",
        || async move { e.all_in(i, "completed").then_some(()) },
    )
    .await;
    cancel.cancel();
    for r in running {
        r.await.unwrap();
    }
    let per_task = TestDriver::per_task(&calls);
    assert_eq!(per_task.len(), ids.len(), "a task was never run");
    assert!(
        per_task.values().all(|n| *n == 1),
        "a task ran twice: {per_task:?}"
    );
    let labels: HashSet<String> = calls
        .lock()
        .unwrap()
        .iter()
        .map(|(l, _)| l.clone())
        .collect();
    assert_eq!(labels.len(), 4, "an executor starved: {labels:?}");
    let audit = env.sim.audit();
    assert!(audit.clean, "{:?}", audit.violations);
    assert_eq!(audit.reports.completed, ids.len());
    assert_eq!(
        stream_len(&env.prefix, Site::Main).await + stream_len(&env.prefix, Site::Sub).await,
        0
    );
    assert_eq!(
        keys_left(&env.prefix, "outbox").await + markers_left(&env.prefix).await,
        0
    );
    cleanup(&env.prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_killed_mid_task_is_reclaimed_and_finished_by_another() {
    let env = TestEnv::new().await;
    let ids = env.add(1, 0, "slow.test", &[]);
    let lease = [("PW_CLAIM_IDLE_MS", "1500"), ("PW_LEASE_RENEW_MS", "300")];
    let dir = tempfile::tempdir().unwrap();
    let mut extra = vec![
        ("PW_SYNTHETIC_DOMAINS", "slow.test"),
        ("PW_SYNTHETIC_DELAY_MS", "600000"),
    ];
    extra.extend(lease);
    let mut child = spawn_binary(&env, "doomed", &extra, &dir.path().join("doomed.log"));
    fetch(&env).await;
    let (e, id) = (&env, &ids[0]);
    eventually(
        Duration::from_secs(30),
        "the binary to start the task",
        || async move { (e.state(id) == "running").then_some(()) },
    )
    .await;
    signal(&child, "-KILL");
    child.wait().await.unwrap();

    let calls: Calls = Arc::default();
    let driver = TestDriver::new("rescuer", &calls, Behaviour::Succeed(Duration::ZERO));
    let attempts = driver.attempts.clone();
    let cfg = env.executor_config("rescuer", &lease);
    let rescuer = Executor::new(&cfg, drivers(&["slow.test"], driver), metrics())
        .await
        .unwrap();
    let outcome = next_outcome(&rescuer).await;
    assert_eq!(outcome, Outcome::Completed);
    assert_eq!(env.state(id), "completed");
    assert_eq!(TestDriver::per_task(&calls)[id], 1);
    // The dead executor may have got part of the way: the driver is told this is not a first attempt.
    assert_eq!(*attempts.lock().unwrap(), vec![2]);
    assert!(env.sim.audit().clean);
    assert_eq!(pending(&env.prefix, Site::Main).await, 0);
    cleanup(&env.prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn executor_keeps_a_task_running_longer_than_claim_idle() {
    let env = TestEnv::new().await;
    let ids = env.add(1, 0, "long.test", &[]);
    let lease = [("PW_CLAIM_IDLE_MS", "600"), ("PW_LEASE_RENEW_MS", "150")];
    let calls: Calls = Arc::default();
    let cancel = CancellationToken::new();
    let mut running = Vec::new();
    for name in ["first", "second"] {
        // Four claim-idle periods long: without renewal the other executor would reclaim it.
        let b = Behaviour::Succeed(Duration::from_millis(2400));
        let ex = executor(&env, name, &lease, &["long.test"], (&calls, b)).await;
        let c = cancel.clone();
        running.push(tokio::spawn(async move { ex.run(c).await }));
    }
    fetch(&env).await;
    let (e, i) = (&env, &ids);
    eventually(
        Duration::from_secs(30),
        "the long task completed",
        || async move { e.all_in(i, "completed").then_some(()) },
    )
    .await;
    cancel.cancel();
    for r in running {
        r.await.unwrap();
    }
    assert_eq!(
        calls.lock().unwrap().len(),
        1,
        "the task ran twice: {:?}",
        calls.lock().unwrap()
    );
    assert!(env.sim.audit().clean);
    cleanup(&env.prefix).await;
}

#[tokio::test]
async fn executor_dead_letters_poison_entries_with_their_reason() {
    let env = TestEnv::new().await;
    let ids = env.add(1, 0, "main.test", &[]);
    let extra = [
        ("PW_MAX_DELIVERIES", "1"),
        ("PW_CLAIM_IDLE_MS", "300"),
        ("PW_LEASE_RENEW_MS", "100"),
    ];
    let calls: Calls = Arc::default();
    let ex = executor(
        &env,
        "ex",
        &extra,
        &["main.test"],
        (&calls, Behaviour::Succeed(Duration::ZERO)),
    )
    .await;
    enqueue_raw(&env.prefix, Site::Main, "task", "{not json").await;
    assert_eq!(next_outcome(&ex).await, Outcome::DeadLettered);

    // A real task whose first delivery went to a consumer that died: its second delivery is one too many.
    fetch(&env).await;
    let ghost = Consumer::connect(&stream_settings(&env.prefix), "ghost")
        .await
        .unwrap();
    assert_eq!(ghost.claim(1).await.unwrap().len(), 1);
    assert_eq!(next_outcome(&ex).await, Outcome::DeadLettered);

    let dead = dead_letters(&env.prefix).await;
    assert_eq!(dead.len(), 2);
    assert!(dead[0]["reason"].contains("undecodable"), "{:?}", dead[0]);
    assert_eq!(dead[0]["payload"], "{not json");
    assert_eq!(dead[1]["reason"], "delivered 2 times (limit 1)");
    let view = env.sim.task(&ids[0]).unwrap();
    assert!(
        view.last_error
            .as_deref()
            .unwrap_or("")
            .contains("could not be processed: delivered 2 times"),
        "{:?}",
        view.last_error
    );
    assert!(calls.lock().unwrap().is_empty(), "a poison entry was run");
    assert_eq!(pending(&env.prefix, Site::Main).await, 0);
    cleanup(&env.prefix).await;
}

#[tokio::test]
async fn executor_drops_a_deleted_task_without_running_it() {
    let env = TestEnv::new().await;
    let ids = env.add(1, 0, "main.test", &[]);
    let calls: Calls = Arc::default();
    let ex = executor(
        &env,
        "ex",
        &[],
        &["main.test"],
        (&calls, Behaviour::Succeed(Duration::ZERO)),
    )
    .await;
    fetch(&env).await;
    assert!(env.sim.delete_task(&ids[0]));
    assert_eq!(next_outcome(&ex).await, Outcome::Gone);
    assert!(calls.lock().unwrap().is_empty());
    assert_eq!(stream_len(&env.prefix, Site::Main).await, 0);
    assert_eq!(keys_left(&env.prefix, "inflight").await, 0);
    cleanup(&env.prefix).await;
}

#[tokio::test]
async fn executor_keeps_a_result_in_the_outbox_while_the_manager_is_down() {
    let env = TestEnv::new().await;
    let ids = env.add(1, 0, "main.test", &[]);
    let sim = env.sim.clone();
    let down = Behaviour::Hook(Arc::new(move || {
        let faults = Faults {
            error_5xx: 1.0,
            ..Faults::default()
        };
        sim.set_faults(faults).unwrap();
    }));
    let calls: Calls = Arc::default();
    let ex = executor(&env, "ex", &[], &["main.test"], (&calls, down)).await;
    fetch(&env).await;
    assert_eq!(next_outcome(&ex).await, Outcome::Deferred);
    assert_eq!(env.state(&ids[0]), "running");
    let id = TaskId::parse(&ids[0]).unwrap();
    let raw: Vec<u8> = redis_conn()
        .await
        .get(StreamKeys::new(&env.prefix).outbox(&id))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&raw);
    for secret in [format!("sid=ck-{id}"), "R3al!".to_owned()] {
        assert!(!text.contains(&secret), "outbox holds {secret} in clear");
    }
    assert_eq!(
        ex.retry_outbox_once().await,
        0,
        "reported while the manager is down"
    );

    env.sim.set_faults(Faults::default()).unwrap();
    assert_eq!(ex.retry_outbox_once().await, 1);
    let view = env.sim.task(&ids[0]).unwrap();
    assert_eq!(view.state, "completed");
    assert_eq!(
        view.report.unwrap().cookie.as_deref(),
        Some(format!("sid=ck-{id}").as_str())
    );
    assert_eq!(calls.lock().unwrap().len(), 1, "the driver ran again");
    assert_eq!(
        keys_left(&env.prefix, "outbox").await + markers_left(&env.prefix).await,
        0
    );
    assert_eq!(stream_len(&env.prefix, Site::Main).await, 0);
    assert!(env.sim.audit().clean);
    cleanup(&env.prefix).await;
}

#[tokio::test]
async fn executor_starts_and_fails_a_task_without_a_driver() {
    let env = TestEnv::new().await;
    let ids = env.add(1, 0, "nodriver.test", &[]);
    let calls: Calls = Arc::default();
    let ex = executor(
        &env,
        "ex",
        &[],
        &["main.test"],
        (&calls, Behaviour::Succeed(Duration::ZERO)),
    )
    .await;
    fetch(&env).await;
    assert_eq!(next_outcome(&ex).await, Outcome::Failed);
    let view = env.sim.task(&ids[0]).unwrap();
    assert_eq!(
        view.last_error.as_deref(),
        Some("no driver for domain nodriver.test")
    );
    let actions: Vec<_> = view
        .history
        .iter()
        .filter(|h| h.applied)
        .map(|h| h.action)
        .collect();
    assert!(
        actions.ends_with(&["start", "fail"]) || actions.contains(&"fail"),
        "{actions:?}"
    );
    assert!(actions.contains(&"start"));
    assert!(env.sim.audit().clean);
    cleanup(&env.prefix).await;
}

#[tokio::test]
async fn executor_retries_transient_failures_then_fails_with_the_last_error() {
    let env = TestEnv::new().await;
    let ids = env.add(2, 0, "flaky.test", &[]);
    let calls: Calls = Arc::default();
    let ex = executor(
        &env,
        "ex",
        &[("PW_TASK_ATTEMPTS", "3")],
        &["flaky.test"],
        (&calls, Behaviour::Transient("site 503")),
    )
    .await;
    fetch(&env).await;
    assert_eq!(next_outcome(&ex).await, Outcome::Failed);
    let perm = executor(
        &env,
        "perm",
        &[],
        &["flaky.test"],
        (&calls, Behaviour::Permanent("username taken")),
    )
    .await;
    assert_eq!(next_outcome(&perm).await, Outcome::Failed);
    let per_task = TestDriver::per_task(&calls);
    let errors: Vec<_> = ids
        .iter()
        .map(|i| env.sim.task(i).unwrap().last_error.unwrap())
        .collect();
    for (id, err) in ids.iter().zip(&errors) {
        match err.as_str() {
            "site 503" => assert_eq!(per_task[id], 3, "transient: all attempts"),
            "username taken" => assert_eq!(per_task[id], 1, "permanent: no retry"),
            other => panic!("unexpected error {other}"),
        }
    }
    cleanup(&env.prefix).await;
}

//! Fleet control against a real Redis: the breaker's scripts step by step (times passed in, no sleeps), then
//! the real `executor` binaries honouring a pause (held, released, expired) and a breaker that stops a
//! broken domain after N failures while another domain keeps flowing, and closes after a probe.

use std::time::Duration;

use podcast_worker::config::ControlSettings;
use podcast_worker::control::{
    Admission, BreakerState, Control, DomainTask, FailureCount, PausedBy,
};
use tokio_util::sync::CancellationToken;

use crate::helpers::executor::{TestEnv, signal, spawn_binary};
use crate::helpers::monitoring::free_addr;
use crate::helpers::streams::stream_settings;
use crate::helpers::{cleanup, eventually, unique_prefix};

async fn control(prefix: &str) -> Control {
    Control::connect(&stream_settings(prefix))
        .await
        .expect("control")
}

fn t<'a>(domain: &'a str, task_id: &'a str) -> DomainTask<'a> {
    DomainTask { domain, task_id }
}

fn settings(threshold: u32) -> ControlSettings {
    ControlSettings {
        breaker_threshold: threshold,
        breaker_window: Duration::from_secs(60),
        breaker_cooldown: Duration::from_secs(30),
        ..ControlSettings::default()
    }
}

#[tokio::test]
async fn breaker_opens_at_the_threshold_probes_once_after_the_cooldown_and_closes() {
    let prefix = unique_prefix();
    let c = control(&prefix).await;
    let s = settings(3);
    let t0 = 1_000_000_000_000u64;
    // Failures outside the window do not add up.
    assert_eq!(
        c.record_failure(&s, t("a.test", "t1"), "no element matches \"#x\"", t0)
            .await
            .unwrap(),
        FailureCount::Counted(1)
    );
    let later = t0 + 61_000;
    assert_eq!(
        c.record_failure(&s, t("a.test", "t2"), "recipe error: x", later)
            .await
            .unwrap(),
        FailureCount::Counted(1)
    );
    assert_eq!(
        c.record_failure(&s, t("a.test", "t3"), "recipe error: x", later + 1)
            .await
            .unwrap(),
        FailureCount::Counted(2)
    );
    assert_eq!(
        c.record_failure(&s, t("a.test", "t4"), "recipe error: last one", later + 2)
            .await
            .unwrap(),
        FailureCount::Opened(3)
    );
    let paused = c.paused().await.unwrap();
    let p = &paused["a.test"];
    assert_eq!(p.by, PausedBy::Breaker);
    assert!(
        p.reason.contains("3 recipe/structure failures in 60 s")
            && p.reason.contains("recipe error: last one"),
        "{}",
        p.reason
    );
    assert_eq!(
        c.breakers().await.unwrap()["a.test"].state,
        BreakerState::Open
    );
    // Another domain is untouched.
    assert!(!paused.contains_key("b.test"));
    // Before the cool-down nobody probes; after it exactly one task does.
    let ttl = Duration::from_secs(600);
    let opened = later + 2;
    assert_eq!(
        c.try_probe(t("a.test", "t5"), "e1", ttl, opened + 29_000)
            .await
            .unwrap(),
        Admission::Hold
    );
    assert_eq!(
        c.try_probe(t("a.test", "t5"), "e1", ttl, opened + 30_000)
            .await
            .unwrap(),
        Admission::Probe
    );
    assert_eq!(
        c.try_probe(t("a.test", "t6"), "e2", ttl, opened + 30_001)
            .await
            .unwrap(),
        Admission::Hold
    );
    let b = &c.breakers().await.unwrap()["a.test"];
    assert_eq!(b.state, BreakerState::HalfOpen);
    assert_eq!(b.probe_task.as_deref(), Some("t5"));
    // The probe fails structurally: open again for a new cool-down.
    assert_eq!(
        c.record_failure(
            &s,
            t("a.test", "t5"),
            "step 2 (click) timed out after 5 ms",
            opened + 31_000
        )
        .await
        .unwrap(),
        FailureCount::Reopened
    );
    assert_eq!(
        c.try_probe(t("a.test", "t6"), "e2", ttl, opened + 31_001)
            .await
            .unwrap(),
        Admission::Hold
    );
    // Next probe works: closed, the domain runs again, the failure window is empty.
    let again = opened + 31_000 + 30_000;
    assert_eq!(
        c.try_probe(t("a.test", "t6"), "e2", ttl, again)
            .await
            .unwrap(),
        Admission::Probe
    );
    assert!(
        !c.end_probe("a.test", "t-not-the-probe", true, again)
            .await
            .unwrap()
    );
    assert!(c.end_probe("a.test", "t6", true, again + 1).await.unwrap());
    assert!(c.paused().await.unwrap().is_empty());
    assert!(c.breakers().await.unwrap().is_empty());
    assert_eq!(
        c.record_failure(&s, t("a.test", "t7"), "recipe error: x", again + 2)
            .await
            .unwrap(),
        FailureCount::Counted(1)
    );
    cleanup(&prefix).await;
}

#[tokio::test]
async fn operator_pause_wins_over_the_breaker_and_resume_clears_both() {
    let prefix = unique_prefix();
    let c = control(&prefix).await;
    let s = settings(1);
    let now = 2_000_000_000_000u64;
    c.pause("a.test", "maintenance", now).await.unwrap();
    assert_eq!(
        c.record_failure(&s, t("a.test", "t1"), "recipe error: x", now)
            .await
            .unwrap(),
        FailureCount::Opened(1)
    );
    // The breaker opened, but the operator's pause (and reason) stays, and no probe runs past it.
    let p = &c.paused().await.unwrap()["a.test"];
    assert_eq!(
        (p.by, p.reason.as_str()),
        (PausedBy::Operator, "maintenance")
    );
    let ttl = Duration::from_secs(60);
    assert_eq!(
        c.try_probe(t("a.test", "t2"), "e1", ttl, now + 3_600_000)
            .await
            .unwrap(),
        Admission::Hold
    );
    let r = c.resume("a.test").await.unwrap();
    assert!(r.was_paused && r.had_breaker);
    assert!(c.paused().await.unwrap().is_empty() && c.breakers().await.unwrap().is_empty());
    cleanup(&prefix).await;
}

/// A background fetch loop stepping `fetch_once`.
pub(crate) async fn run_fetcher(
    env: &TestEnv,
    cancel: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
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

fn count(env: &TestEnv, ids: &[String], action: &str) -> usize {
    ids.iter()
        .map(|id| {
            env.sim
                .task(id)
                .expect("task")
                .history
                .iter()
                .filter(|h| h.action == action && h.applied)
                .count()
        })
        .sum()
}

async fn scrape(addr: &str) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics text")
}

fn gauge(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_a_domain_on_every_executor_while_others_flow_and_resume_releases_it() {
    let env = TestEnv::new().await;
    let c = control(&env.prefix).await;
    let now = podcast_worker::control::now_ms();
    c.pause("held.test", "form changed", now).await.unwrap();
    let held = env.add(3, 0, "held.test", &[]);
    let free = env.add(3, 0, "free.test", &[]);
    let dir = tempfile::tempdir().unwrap();
    let addrs = [free_addr(), free_addr()];
    let mut children = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let extra = [
            ("PW_SYNTHETIC_DOMAINS", "held.test,free.test"),
            ("PW_SYNTHETIC_DELAY_MS", "50"),
            ("PW_CONTROL_POLL_MS", "200"),
            ("PW_METRICS_ADDR", addr.as_str()),
        ];
        let name = format!("pauser-{i}");
        let log = dir.path().join(format!("{name}.log"));
        children.push(spawn_binary(&env, &name, &extra, &log));
    }
    let cancel = CancellationToken::new();
    let fetcher = run_fetcher(&env, &cancel).await;
    eventually(Duration::from_secs(30), "free.test completed", || async {
        env.all_in(&free, "completed").then_some(())
    })
    .await;
    // Every held.test task was claimed by one of the two executors and is held there, un-started.
    eventually(
        Duration::from_secs(15),
        "3 tasks held across the fleet",
        || async {
            let mut total = 0.0;
            for a in &addrs {
                total += gauge(&scrape(a).await, "pw_tasks_held{domain=\"held.test\"}");
            }
            (total == 3.0).then_some(())
        },
    )
    .await;
    assert_eq!(
        count(&env, &held, "start"),
        0,
        "a paused domain's task was started"
    );
    let text = scrape(&addrs[0]).await;
    assert_eq!(
        gauge(
            &text,
            "pw_domain_paused{by=\"operator\",domain=\"held.test\"}"
        ),
        1.0
    );
    // Resumed: the held tasks run within seconds.
    c.resume("held.test").await.unwrap();
    eventually(
        Duration::from_secs(15),
        "held.test completed after resume",
        || async { env.all_in(&held, "completed").then_some(()) },
    )
    .await;
    for a in &addrs {
        assert_eq!(
            gauge(&scrape(a).await, "pw_tasks_held{domain=\"held.test\"}"),
            0.0
        );
    }
    cancel.cancel();
    fetcher.await.unwrap();
    for child in &children {
        signal(child, "-TERM");
    }
    for mut child in children {
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("executor exit")
            .unwrap();
        assert!(status.success(), "{status:?}");
    }
    cleanup(&env.prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_held_past_the_hold_time_fails_with_the_pause_reason() {
    let env = TestEnv::new().await;
    let c = control(&env.prefix).await;
    c.pause(
        "hold.test",
        "site maintenance",
        podcast_worker::control::now_ms(),
    )
    .await
    .unwrap();
    let ids = env.add(1, 0, "hold.test", &[]);
    let dir = tempfile::tempdir().unwrap();
    let extra = [
        ("PW_SYNTHETIC_DOMAINS", "hold.test"),
        ("PW_PAUSE_HOLD_SECS", "1"),
        ("PW_CONTROL_POLL_MS", "200"),
    ];
    let mut child = spawn_binary(&env, "holder", &extra, &dir.path().join("holder.log"));
    let cancel = CancellationToken::new();
    let fetcher = run_fetcher(&env, &cancel).await;
    let message = eventually(Duration::from_secs(20), "the held task's fail", || async {
        env.sim.task(&ids[0]).and_then(|t| t.last_error)
    })
    .await;
    assert_eq!(message, "domain paused by operator: site maintenance");
    assert_eq!(count(&env, &ids, "complete"), 0);
    cancel.cancel();
    fetcher.await.unwrap();
    signal(&child, "-TERM");
    let status = child.wait().await.unwrap();
    assert!(status.success());
    cleanup(&env.prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_stops_a_broken_domain_after_n_failures_while_another_keeps_flowing() {
    let env = TestEnv::new().await;
    let broken = env.add(6, 0, "broken.test", &[]);
    let healthy = env.add(6, 0, "healthy.test", &[]);
    let dir = tempfile::tempdir().unwrap();
    let common = [
        ("PW_SYNTHETIC_DELAY_MS", "30"),
        ("PW_CONTROL_POLL_MS", "200"),
        ("PW_CONCURRENCY", "1"),
        ("PW_BREAKER_THRESHOLD", "3"),
        ("PW_BREAKER_WINDOW_SECS", "600"),
        ("PW_BREAKER_COOLDOWN_SECS", "6"),
        ("PW_CLAIM_IDLE_MS", "3000"),
        ("PW_LEASE_RENEW_MS", "1000"),
    ];
    // The recipe of broken.test no longer fits its site: every run fails with "recipe error: …".
    let mut first: Vec<(&str, &str)> = common.to_vec();
    first.push(("PW_SYNTHETIC_DOMAINS", "healthy.test"));
    first.push(("PW_SYNTHETIC_FAIL_DOMAINS", "broken.test"));
    let mut e1 = spawn_binary(&env, "breaker-1", &first, &dir.path().join("e1.log"));
    let cancel = CancellationToken::new();
    let fetcher = run_fetcher(&env, &cancel).await;
    let c = control(&env.prefix).await;
    eventually(
        Duration::from_secs(20),
        "broken.test's breaker open",
        || async {
            c.breakers()
                .await
                .ok()
                .and_then(|b| b.get("broken.test").cloned())
        },
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "healthy.test completed",
        || async { env.all_in(&healthy, "completed").then_some(()) },
    )
    .await;
    // Exactly N runs failed; the rest of broken.test's tasks are held, not run.
    assert_eq!(
        count(&env, &broken, "fail"),
        3,
        "runs after the breaker opened"
    );
    let p = &c.paused().await.unwrap()["broken.test"];
    assert_eq!(p.by, PausedBy::Breaker);
    assert!(
        p.reason.contains("3 recipe/structure failures")
            && p.reason.contains("recipe error: synthetic broken recipe"),
        "{}",
        p.reason
    );
    // The recipe is fixed: a new executor serves broken.test with a working driver. After the cool-down its
    // probe succeeds, which closes the breaker, and the held tasks run.
    signal(&e1, "-TERM");
    assert!(e1.wait().await.unwrap().success());
    assert_eq!(
        count(&env, &broken, "fail"),
        3,
        "a run before the cool-down"
    );
    let mut second: Vec<(&str, &str)> = common.to_vec();
    second.push(("PW_SYNTHETIC_DOMAINS", "healthy.test,broken.test"));
    let mut e2 = spawn_binary(&env, "breaker-2", &second, &dir.path().join("e2.log"));
    eventually(
        Duration::from_secs(40),
        "broken.test completed after the probe",
        || async { env.all_in(&broken, "completed").then_some(()) },
    )
    .await;
    assert!(c.breakers().await.unwrap().is_empty(), "breaker still open");
    assert!(c.paused().await.unwrap().is_empty(), "domain still paused");
    cancel.cancel();
    fetcher.await.unwrap();
    signal(&e2, "-TERM");
    assert!(e2.wait().await.unwrap().success());
    cleanup(&env.prefix).await;
}

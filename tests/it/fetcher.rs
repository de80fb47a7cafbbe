//! The fetcher against a real Redis and the in-process simulator: routing, de-duplication, backpressure,
//! a refused key, the leader lease (in-process and with real processes killed), bad configuration.

use std::time::{Duration, Instant};

use podcast_worker::fetcher::FetchOutcome;
use podcast_worker::streams::{GROUP, StreamKeys};
use podcast_worker::task::{Registration, Site};
use podcast_worker::task_api::TaskApiClient;
use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;

use crate::helpers::fetcher::{
    KillOnDrop, SIM_KEY, api_settings, fetcher, fetcher_command, fetcher_settings, sample,
    simulator,
};
use crate::helpers::{cleanup, eventually, redis_conn, unique_prefix};

async fn stream_len(prefix: &str, site: Site) -> u64 {
    let mut conn = redis_conn().await;
    conn.xlen(StreamKeys::new(prefix).tasks(site))
        .await
        .unwrap()
}

fn enqueued(outcome: &FetchOutcome) -> usize {
    match outcome {
        FetchOutcome::Enqueued { enqueued, .. } => *enqueued,
        other => panic!("expected Enqueued, got {other:?}"),
    }
}

#[tokio::test]
async fn fetcher_routes_main_tasks_then_their_sub_tasks() {
    let sim = simulator(2, 3).await;
    let prefix = unique_prefix();
    let (mut f, m) = fetcher(&sim, &prefix, SIM_KEY, fetcher_settings(50, 100)).await;
    // Only main-site tasks are handed out before their main task completes.
    let first = f.fetch_once().await;
    assert_eq!(enqueued(&first), 2);
    assert_eq!(
        (
            stream_len(&prefix, Site::Main).await,
            stream_len(&prefix, Site::Sub).await
        ),
        (2, 0)
    );
    assert_eq!(f.fetch_once().await, FetchOutcome::Empty);

    // Complete both main tasks as an executor would; their sub-site tasks then carry link_rss.
    let api = TaskApiClient::new(&api_settings(&sim.api_base_url(), SIM_KEY)).unwrap();
    let mut conn = redis_conn().await;
    let read: redis::streams::StreamRangeReply = conn
        .xrange_all(StreamKeys::new(&prefix).tasks(Site::Main))
        .await
        .unwrap();
    for entry in &read.ids {
        let payload: String = entry.get("task").unwrap();
        let e = podcast_worker::task::QueueEntry::decode(payload.as_bytes()).unwrap();
        api.start(&e.id).await.unwrap();
        let reg = Registration {
            email: Some("x@demo.test".into()),
            link_rss: Some(format!("http://feeds.test/{}/rss", e.id)),
            ..Registration::default()
        };
        api.complete(&e.id, &reg).await.unwrap();
    }
    assert_eq!(enqueued(&f.fetch_once().await), 6);
    assert_eq!(stream_len(&prefix, Site::Sub).await, 6);
    assert_eq!(sample(&m, "pw_tasks_fetched_total{site=\"sub\"}"), 6.0);
    assert_eq!(sample(&m, "pw_tasks_fetched_total{site=\"main\"}"), 2.0);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn fetcher_does_not_enqueue_a_duplicate_hand_out() {
    let sim = simulator(4, 0).await;
    let prefix = unique_prefix();
    let (mut f, m) = fetcher(&sim, &prefix, SIM_KEY, fetcher_settings(2, 100)).await;
    let mut faults = sim.faults();
    faults.duplicate = 1.0;
    sim.set_faults(faults).unwrap();
    let mut duplicates = 0;
    for _ in 0..6 {
        if let FetchOutcome::Enqueued { duplicates: d, .. } = f.fetch_once().await {
            duplicates += d;
        }
    }
    assert!(duplicates > 0, "the simulator handed out no duplicate");
    assert_eq!(stream_len(&prefix, Site::Main).await, 4);
    assert_eq!(
        sample(&m, "pw_tasks_deduplicated_total{site=\"main\"}"),
        duplicates as f64
    );
    cleanup(&prefix).await;
}

#[tokio::test]
async fn fetcher_backpressure_holds_the_backlog_at_the_cap() {
    let sim = simulator(20, 0).await;
    let prefix = unique_prefix();
    let (mut f, _) = fetcher(&sim, &prefix, SIM_KEY, fetcher_settings(50, 5)).await;
    let first = f.fetch_once().await;
    assert_eq!(
        first,
        FetchOutcome::Enqueued {
            enqueued: 5,
            duplicates: 0,
            full_page: true
        }
    );
    assert_eq!(
        f.fetch_once().await,
        FetchOutcome::Backpressure { backlog: 5 }
    );
    let handed_out = sim.audit().counts["handed_out"];
    assert_eq!(handed_out, 5, "the fetcher asked for more than fits");

    // An executor takes two entries and finishes them (ack + delete): exactly two more fit.
    let key = StreamKeys::new(&prefix).tasks(Site::Main);
    let mut conn = redis_conn().await;
    let opts = redis::streams::StreamReadOptions::default()
        .group(GROUP, "exec-1")
        .count(2);
    let read: redis::streams::StreamReadReply =
        conn.xread_options(&[&key], &[">"], &opts).await.unwrap();
    let ids: Vec<String> = read.keys[0].ids.iter().map(|e| e.id.clone()).collect();
    let _: u64 = conn.xack(&key, GROUP, &ids).await.unwrap();
    let _: u64 = conn.xdel(&key, &ids).await.unwrap();
    assert_eq!(enqueued(&f.fetch_once().await), 2);
    assert_eq!(
        f.fetch_once().await,
        FetchOutcome::Backpressure { backlog: 5 }
    );
    assert_eq!(stream_len(&prefix, Site::Main).await, 5);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn fetcher_stops_pulling_when_the_key_is_refused() {
    let sim = simulator(3, 0).await;
    let prefix = unique_prefix();
    let mut settings = fetcher_settings(50, 100);
    settings.poll_max = Duration::from_secs(60);
    let (mut f, m) = fetcher(&sim, &prefix, "wrong-key", settings).await;
    assert_eq!(f.fetch_once().await, FetchOutcome::Unauthorized);
    assert!(!m.health().readiness().is_ready());
    assert_eq!(sample(&m, "pw_api_key_refused"), 1.0);

    // The loop does not spin: after the refusal it waits (up to PW_POLL_MAX_MS) before asking again.
    let cancel = CancellationToken::new();
    let run = tokio::spawn(f.run(cancel.clone()));
    let list_4xx = "pw_api_requests_total{endpoint=\"list\",status_class=\"4xx\"}";
    eventually(
        Duration::from_secs(5),
        "the loop's first refused listing",
        || async { (sample(&m, list_4xx) >= 2.0).then_some(()) },
    )
    .await;
    cancel.cancel();
    run.await.unwrap();
    assert_eq!(sample(&m, list_4xx), 2.0);
    assert_eq!(sim.audit().counts["queued"], 3, "tasks were handed out");
    cleanup(&prefix).await;
}

#[tokio::test]
async fn fetcher_standby_takes_over_when_the_leader_dies() {
    let sim = simulator(6, 0).await;
    let prefix = unique_prefix();
    let settings = fetcher_settings(2, 100);
    let ttl = settings.leader_ttl;
    let (mut a, _) = fetcher(&sim, &prefix, SIM_KEY, settings.clone()).await;
    let (b, mb) = fetcher(&sim, &prefix, SIM_KEY, settings).await;
    let b = std::sync::Arc::new(tokio::sync::Mutex::new(b));
    assert_eq!(enqueued(&a.fetch_once().await), 2);
    assert_eq!(b.lock().await.fetch_once().await, FetchOutcome::NotLeader);
    assert_eq!(sample(&mb, "pw_fetcher_leader"), 0.0);
    assert_eq!(sim.audit().counts["handed_out"], 2, "the standby pulled");

    // The leader dies without releasing its lease: the standby leads within the lease time.
    drop(a);
    let died = Instant::now();
    eventually(ttl * 3, "the standby to take over", || {
        let b = b.clone();
        async move { (b.lock().await.fetch_once().await != FetchOutcome::NotLeader).then_some(()) }
    })
    .await;
    let took = died.elapsed();
    // The lease runs out at most `ttl` after the last renewal, which came before `died`.
    assert!(
        took <= ttl + Duration::from_secs(1),
        "takeover took {took:?}"
    );
    assert!(b.lock().await.is_leader());
    assert_eq!(sample(&mb, "pw_fetcher_leader"), 1.0);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn fetcher_releases_the_lease_on_shutdown_so_a_standby_leads_at_once() {
    let sim = simulator(2, 0).await;
    let prefix = unique_prefix();
    let (mut a, _) = fetcher(&sim, &prefix, SIM_KEY, fetcher_settings(1, 100)).await;
    let (mut b, _) = fetcher(&sim, &prefix, SIM_KEY, fetcher_settings(1, 100)).await;
    assert_eq!(enqueued(&a.fetch_once().await), 1);
    assert_eq!(b.fetch_once().await, FetchOutcome::NotLeader);
    a.shutdown().await;
    assert_eq!(enqueued(&b.fetch_once().await), 1);
    assert_eq!(stream_len(&prefix, Site::Main).await, 2);
    cleanup(&prefix).await;
}

async fn leader_token(prefix: &str) -> Option<String> {
    let mut conn = redis_conn().await;
    conn.get(StreamKeys::new(prefix).leader()).await.unwrap()
}

#[tokio::test]
async fn fetcher_process_killed_with_sigkill_is_replaced_by_the_standby() {
    let sim = simulator(0, 0).await;
    let prefix = unique_prefix();
    let mut a = KillOnDrop(
        fetcher_command(&sim.api_base_url(), &prefix)
            .spawn()
            .unwrap(),
    );
    let a_pid = format!("-{}-", a.0.id());
    eventually(
        Duration::from_secs(20),
        "the first fetcher to lead",
        || async { leader_token(&prefix).await.filter(|t| t.contains(&a_pid)) },
    )
    .await;
    let b = KillOnDrop(
        fetcher_command(&sim.api_base_url(), &prefix)
            .spawn()
            .unwrap(),
    );
    let b_pid = format!("-{}-", b.0.id());
    a.0.kill().unwrap(); // SIGKILL: no release, the lease must expire.
    a.0.wait().unwrap();
    let killed = Instant::now();
    eventually(
        Duration::from_secs(10),
        "the standby process to lead",
        || async { leader_token(&prefix).await.filter(|t| t.contains(&b_pid)) },
    )
    .await;
    // Lease 1.5 s, standby checks every 0.5 s, plus the standby's own start-up on a loaded machine.
    assert!(
        killed.elapsed() < Duration::from_secs(8),
        "took {:?}",
        killed.elapsed()
    );
    sim.add_scenario(&pw_simulator::ScenarioSpec {
        requests: 3,
        subs_per_request: 0,
        ..Default::default()
    });
    eventually(
        Duration::from_secs(10),
        "the new leader to pull",
        || async { (stream_len(&prefix, Site::Main).await == 3).then_some(()) },
    )
    .await;
    drop(b);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn fetcher_process_exits_cleanly_on_sigterm_and_releases_the_lease() {
    let sim = simulator(0, 0).await;
    let prefix = unique_prefix();
    let mut child = KillOnDrop(
        fetcher_command(&sim.api_base_url(), &prefix)
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    let tag = format!("-{pid}-");
    eventually(Duration::from_secs(20), "the fetcher to lead", || async {
        leader_token(&prefix).await.filter(|t| t.contains(&tag))
    })
    .await;
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = eventually(Duration::from_secs(10), "the fetcher to exit", || {
        let exited = child.0.try_wait().unwrap();
        async move { exited }
    })
    .await;
    assert_eq!(status.code(), Some(0));
    assert_eq!(leader_token(&prefix).await, None, "lease not released");
    cleanup(&prefix).await;
}

#[test]
fn fetcher_binary_names_the_bad_variable() {
    let out = fetcher_command("http://127.0.0.1:9/api", &unique_prefix())
        .env("PW_MAX_BACKLOG", "lots")
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PW_MAX_BACKLOG"), "{err}");

    let out = fetcher_command("http://127.0.0.1:9/api", &unique_prefix())
        .env_remove("PW_API_KEY")
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PW_API_KEY is required"), "{err}");
    assert!(!err.contains(SIM_KEY));
}

#[test]
fn fetcher_binary_refuses_secrets_on_the_command_line() {
    let out = fetcher_command("http://127.0.0.1:9/api", &unique_prefix())
        .arg("--api-key=abc")
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PW_*"));
}

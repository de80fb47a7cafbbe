//! The real `executor` binary (synthetic driver) against Redis and the simulator: SIGTERM drain, entries
//! left un-acked past the grace period, and secrets absent from debug logs and from Redis.

use std::time::Duration;

use podcast_worker::task::Site;
use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;

use crate::helpers::executor::{TestEnv, signal, spawn_binary};
use crate::helpers::streams::pending;
use crate::helpers::{cleanup, eventually, redis_conn};

/// A background fetch loop stepping `fetch_once`.
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

async fn wait_for_states(env: &TestEnv, ids: &[String], state: &str) {
    eventually(Duration::from_secs(30), state, || async move {
        env.all_in(ids, state).then_some(())
    })
    .await;
}

async fn exit_status(child: &mut tokio::process::Child) -> std::process::ExitStatus {
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the executor did not exit")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_binary_drains_running_tasks_on_sigterm_and_exits_zero() {
    let env = TestEnv::new().await;
    let ids = env.add(2, 0, "drain.test", &[]);
    let dir = tempfile::tempdir().unwrap();
    let extra = [
        ("PW_SYNTHETIC_DOMAINS", "drain.test"),
        ("PW_SYNTHETIC_DELAY_MS", "1500"),
        ("PW_SHUTDOWN_GRACE_SECS", "30"),
        ("PW_CONCURRENCY", "2"),
    ];
    let mut child = spawn_binary(&env, "drainer", &extra, &dir.path().join("drain.log"));
    let cancel = CancellationToken::new();
    let fetcher = run_fetcher(&env, &cancel).await;
    wait_for_states(&env, &ids, "running").await;
    signal(&child, "-TERM");
    // Work arriving after SIGTERM is not claimed.
    let late = env.add(1, 0, "drain.test", &[]);
    let status = exit_status(&mut child).await;
    assert!(status.success(), "exit status {status:?}");
    cancel.cancel();
    fetcher.await.unwrap();
    assert!(
        env.all_in(&ids, "completed"),
        "running tasks were not finished"
    );
    assert_ne!(env.state(&late[0]), "running", "claimed after SIGTERM");
    assert_ne!(env.state(&late[0]), "completed", "claimed after SIGTERM");
    cleanup(&env.prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_binary_leaves_unfinished_entries_unacked_after_the_grace_period() {
    let env = TestEnv::new().await;
    let ids = env.add(1, 0, "stuck.test", &[]);
    let dir = tempfile::tempdir().unwrap();
    let extra = [
        ("PW_SYNTHETIC_DOMAINS", "stuck.test"),
        ("PW_SYNTHETIC_DELAY_MS", "600000"),
        ("PW_SHUTDOWN_GRACE_SECS", "1"),
    ];
    let mut child = spawn_binary(&env, "stuck", &extra, &dir.path().join("stuck.log"));
    let cancel = CancellationToken::new();
    let fetcher = run_fetcher(&env, &cancel).await;
    wait_for_states(&env, &ids, "running").await;
    cancel.cancel();
    fetcher.await.unwrap();
    signal(&child, "-TERM");
    let status = exit_status(&mut child).await;
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(env.state(&ids[0]), "running");
    assert_eq!(
        pending(&env.prefix, Site::Main).await,
        1,
        "the entry must stay un-acked"
    );
    cleanup(&env.prefix).await;
}

/// Every string value, stream field and value, and hash field under `prefix`.
async fn redis_values(prefix: &str) -> Vec<Vec<u8>> {
    let mut conn = redis_conn().await;
    let pattern = format!("{}*", prefix.replace('{', "\\{").replace('}', "\\}"));
    let keys: Vec<String> = conn.keys(pattern).await.unwrap();
    let mut out = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let dump: Vec<redis::Value> = match kind.as_str() {
            "string" => vec![conn.get(&key).await.unwrap()],
            "stream" => vec![
                redis::cmd("XRANGE")
                    .arg(&key)
                    .arg("-")
                    .arg("+")
                    .query_async(&mut conn)
                    .await
                    .unwrap(),
            ],
            "hash" => vec![conn.hgetall(&key).await.unwrap()],
            _ => Vec::new(),
        };
        out.extend(dump.into_iter().map(|v| format!("{v:?}").into_bytes()));
        out.push(key.into_bytes());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_binary_keeps_secrets_out_of_debug_logs_and_redis() {
    let env = TestEnv::new().await;
    let ids = env.add(2, 1, "main.test", &["sub.test"]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("debug.log");
    let extra = [
        ("PW_SYNTHETIC_DOMAINS", "main.test,sub.test"),
        ("PW_SYNTHETIC_DELAY_MS", "100"),
        ("PW_LOG", "debug"),
    ];
    let mut child = spawn_binary(&env, "talkative", &extra, &log);
    let cancel = CancellationToken::new();
    let fetcher = run_fetcher(&env, &cancel).await;
    // While the main tasks run, look at Redis too.
    let main_ids: Vec<String> = ids
        .iter()
        .filter(|i| env.sim.task(i).unwrap().site == "main")
        .cloned()
        .collect();
    wait_for_states(&env, &main_ids, "completed").await;
    let early = redis_values(&env.prefix).await;
    wait_for_states(&env, &ids, "completed").await;
    let late = redis_values(&env.prefix).await;
    cancel.cancel();
    fetcher.await.unwrap();
    signal(&child, "-TERM");
    assert!(exit_status(&mut child).await.success());

    let secrets = env.secrets(&ids);
    assert!(
        secrets.len() >= ids.len() * 4,
        "fixtures hold secrets: {}",
        secrets.len()
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("DEBUG"), "debug logging was not on");
    assert!(text.contains("registration reported complete"));
    for line in text
        .lines()
        .filter(|l| l.contains("registration reported complete"))
    {
        assert!(
            line.contains("\"task_id\""),
            "a task log line without task_id: {line}"
        );
    }
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "a secret reached the log");
        for v in early.iter().chain(&late) {
            let hay = String::from_utf8_lossy(v);
            assert!(
                !hay.contains(secret.as_str()),
                "a secret is stored in clear in Redis"
            );
        }
    }
    assert!(env.sim.audit().clean);
    cleanup(&env.prefix).await;
}

#[tokio::test]
async fn executor_binary_refuses_bad_configuration_and_missing_recipes_clearly() {
    let env = TestEnv::new().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("config.log");
    let bad_key = [("PW_OUTBOX_KEY", "not-a-key-but-a-secret-77")];
    let mut child = spawn_binary(&env, "misconfigured", &bad_key, &log);
    assert_eq!(exit_status(&mut child).await.code(), Some(2));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("PW_OUTBOX_KEY"), "{text}");
    assert!(
        !text.contains("not-a-key-but-a-secret-77"),
        "the bad secret was echoed"
    );

    // No synthetic domains and no recipes: nothing could ever be run, so start-up fails.
    let mut child = spawn_binary(&env, "driverless", &[], &log);
    assert_eq!(exit_status(&mut child).await.code(), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("recipe"), "{text}");
    cleanup(&env.prefix).await;
}

//! The real `pwctl` binary against a real Redis (and the real `executor` binary where work must run):
//! status (with the real fetcher's listings), dead letters (replayed through the fetcher's de-duplicating enqueue), the outbox (masked show,
//! export before drop), consumers, drain, pause and resume; `--json`, exit codes 0/1/2.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use podcast_worker::config::OutboxKey;
use podcast_worker::outbox::{Outbox, OutboxRecord, Report};
use podcast_worker::streams::consumer::Consumer;
use podcast_worker::streams::{RedisTarget, StreamKeys};
use podcast_worker::task::{Registration, Site, TaskId};
use redis::AsyncCommands;
use secrecy::SecretString;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::control::run_fetcher;
use crate::helpers::executor::{OUTBOX_KEY_HEX, TestEnv, signal, spawn_binary};
use crate::helpers::monitoring::{Proc, free_addr};
use crate::helpers::streams::{enqueue, enqueue_raw, entry, stream_settings};
use crate::helpers::{cleanup, eventually, redis_conn, redis_url, unique_prefix};

/// What one `pwctl` run printed and returned.
struct Run {
    code: i32,
    json: Value,
    stdout: String,
    stderr: String,
}

/// Runs `pwctl --json ARGS` for `prefix` (with the outbox key when `key`).
async fn pwctl_with(prefix: &str, key: bool, json: bool, args: &[&str]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pwctl"));
    cmd.env_clear()
        .env("PW_REDIS_URL", redis_url())
        .env("PW_KEY_PREFIX", prefix);
    if key {
        cmd.env("PW_OUTBOX_KEY", OUTBOX_KEY_HEX);
    }
    if json {
        cmd.arg("--json");
    }
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.args(args).output())
        .await
        .expect("pwctl hung")
        .expect("run pwctl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Run {
        code: out.status.code().unwrap_or(-1),
        json: serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn pwctl(prefix: &str, args: &[&str]) -> Run {
    pwctl_with(prefix, true, true, args).await
}

fn ok(r: &Run) -> &Value {
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    &r.json
}

/// Claims the next entry of `prefix` as consumer `name` and dead-letters it, the consumer's own way;
/// `release` lets go of the task id too (what the executor does after reporting a poisoned task's fail).
async fn dead_letter_next(prefix: &str, name: &str, release: bool) {
    let consumer = Consumer::connect(&stream_settings(prefix), name)
        .await
        .unwrap();
    let claimed = consumer.claim(1).await.unwrap().pop().expect("an entry");
    let id = claimed.task_id().cloned();
    let finished = if release { id.as_ref() } else { None };
    consumer
        .dead_letter(&claimed, "test poison", finished)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pwctl_dead_letters_are_listed_shown_replayed_once_and_purged() {
    let env = TestEnv::new().await;
    let prefix = env.prefix.clone();
    let ids = env.add(1, 0, "dead.test", &[]);
    let mut fetcher = env.fetcher().await;
    fetcher.fetch_once().await;
    dead_letter_next(&prefix, "poisoner", true).await;
    enqueue_raw(&prefix, Site::Main, "task", "{not json").await;
    dead_letter_next(&prefix, "poisoner", false).await;
    // A dead letter whose task is still in our hands (its inflight marker stays).
    enqueue(&prefix, &[entry("held-1", "dead.test", Site::Sub)]).await;
    dead_letter_next(&prefix, "poisoner", false).await;

    let status = pwctl(&prefix, &["status"]).await;
    assert_eq!(ok(&status)["dead_letters"], 3);
    let ls = pwctl(&prefix, &["dead", "ls"]).await;
    let letters = ok(&ls)["dead_letters"].as_array().unwrap().clone();
    assert_eq!(letters.len(), 3);
    let id_of = |task: &str| {
        letters
            .iter()
            .find(|d| d["task_id"] == task)
            .map(|d| d["id"].as_str().unwrap().to_owned())
    };
    let replayable = id_of(&ids[0]).expect("the task's dead letter");
    let in_hands = id_of("held-1").expect("held-1's dead letter");
    let undecodable = letters
        .iter()
        .find(|d| d["task_id"].is_null())
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .unwrap();
    let show = pwctl(&prefix, &["dead", "show", &replayable]).await;
    assert_eq!(ok(&show)["payload"]["id"], ids[0].as_str());
    assert_eq!(show.json["reason"], "test poison");

    // Replay: one queued again and removed; the one still in our hands and the undecodable one are kept.
    let replay = pwctl(
        &prefix,
        &["dead", "replay", &replayable, &in_hands, &undecodable],
    )
    .await;
    assert_eq!(replay.code, 1, "{}", replay.stdout);
    let outcomes: Vec<&str> = replay.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["replayed", "in_our_hands", "undecodable"]);
    assert_eq!(ok(&pwctl(&prefix, &["status"]).await)["dead_letters"], 2);
    // Replaying the same id again finds nothing to replay.
    assert_eq!(
        pwctl(&prefix, &["dead", "replay", &replayable]).await.code,
        1
    );

    // The replayed task runs on a real executor and completes.
    let dir = tempfile::tempdir().unwrap();
    let extra = [("PW_SYNTHETIC_DOMAINS", "dead.test")];
    let mut exec = spawn_binary(&env, "replayer", &extra, &dir.path().join("e.log"));
    eventually(
        Duration::from_secs(30),
        "replayed task completed",
        || async { env.all_in(&ids, "completed").then_some(()) },
    )
    .await;
    signal(&exec, "-TERM");
    assert!(exec.wait().await.unwrap().success());

    let purge = pwctl(&prefix, &["dead", "purge", "--all"]).await;
    assert_eq!(ok(&purge)["removed"], 2);
    assert_eq!(ok(&pwctl(&prefix, &["status"]).await)["dead_letters"], 0);

    // Usage errors exit 2, with a JSON error under --json.
    let bad = pwctl(&prefix, &["dead", "show", "not-an-id"]).await;
    assert_eq!(bad.code, 2);
    assert!(bad.json["error"].as_str().unwrap().contains("stream id"));
    assert_eq!(pwctl(&prefix, &["no-such-command"]).await.code, 2);
    assert_eq!(pwctl(&prefix, &["dead", "replay"]).await.code, 2);
    cleanup(&prefix).await;
}

fn record(id: &str, password: &str) -> OutboxRecord {
    OutboxRecord {
        task_id: TaskId::parse(id).unwrap(),
        site: Site::Sub,
        entry_id: None,
        domain: "outbox.test".into(),
        attempts: 1,
        finished_at_ms: podcast_worker::control::now_ms(),
        report: Report::Complete(Registration {
            email: Some("owner@example.test".into()),
            username: Some("owner".into()),
            password: Some(SecretString::from(password.to_owned())),
            cookie: Some(SecretString::from("sid=cookie-secret-77".to_owned())),
            link_rss: None,
            note: None,
        }),
    }
}

#[tokio::test]
async fn pwctl_outbox_masks_secrets_and_drops_only_what_was_exported() {
    let prefix = unique_prefix();
    let mut conn = redis_conn().await;
    let manager = RedisTarget::parse(&SecretString::from(redis_url()))
        .unwrap()
        .connect(Duration::from_secs(5))
        .await
        .unwrap();
    let keys = StreamKeys::new(&prefix);
    let outbox = Outbox::new(
        manager,
        keys.clone(),
        &OutboxKey::decode(OUTBOX_KEY_HEX).unwrap(),
    );
    let secret = "S3cret-pass-for-drop";
    outbox.put(&record("ob-1", secret)).await.unwrap();
    let id = TaskId::parse("ob-1").unwrap();
    let _: () = conn.set(keys.inflight(&id), "completing").await.unwrap();

    let ls = pwctl(&prefix, &["outbox", "ls"]).await;
    let recs = ok(&ls)["records"].as_array().unwrap().clone();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["kind"], "complete");
    assert!(!ls.stdout.contains(secret));
    let show = pwctl(&prefix, &["outbox", "show", "ob-1"]).await;
    assert_eq!(ok(&show)["email"], "owner@example.test");
    assert!(!show.stdout.contains(secret) && !show.stdout.contains("cookie-secret-77"));
    let text = pwctl_with(&prefix, true, false, &["outbox", "show", "ob-1"]).await;
    assert!(text.code == 0 && !text.stdout.contains(secret) && text.stdout.contains("••••"));
    let reveal = pwctl(&prefix, &["outbox", "show", "ob-1", "--reveal"]).await;
    assert_eq!(ok(&reveal)["password"], secret);
    // Decrypting needs the key: a configuration error.
    assert_eq!(
        pwctl_with(&prefix, false, true, &["outbox", "show", "ob-1"])
            .await
            .code,
        2
    );

    // Not exported: drop refuses and the record stays.
    let refused = pwctl(&prefix, &["outbox", "drop", "ob-1"]).await;
    assert_eq!(refused.code, 1);
    assert_eq!(refused.json["results"][0]["outcome"], "not_exported");
    assert!(outbox.get(&id).await.unwrap().is_some());

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accounts.jsonl");
    let path = file.to_str().unwrap();
    let export = pwctl(&prefix, &["outbox", "export", path, "--all"]).await;
    assert_eq!(ok(&export)["exported"][0], "ob-1");
    assert!(!export.stdout.contains(secret));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["password"], secret);
    assert_eq!(line["cookie"], "sid=cookie-secret-77");
    // An existing file is never overwritten.
    assert_eq!(
        pwctl(&prefix, &["outbox", "export", path, "--all"])
            .await
            .code,
        1
    );
    assert_eq!(
        ok(&pwctl(&prefix, &["outbox", "ls"]).await)["records"][0]["exported"],
        true
    );

    // A record changed after its export is not dropped.
    outbox
        .put(&record("ob-1", "another-password-1"))
        .await
        .unwrap();
    assert_eq!(pwctl(&prefix, &["outbox", "drop", "ob-1"]).await.code, 1);
    outbox.put(&record("ob-1", secret)).await.unwrap();
    let file2 = dir.path().join("again.jsonl");
    ok(&pwctl(
        &prefix,
        &["outbox", "export", file2.to_str().unwrap(), "ob-1"],
    )
    .await);
    let dropped = pwctl(&prefix, &["outbox", "drop", "ob-1"]).await;
    assert_eq!(ok(&dropped)["results"][0]["outcome"], "dropped");
    assert!(outbox.get(&id).await.unwrap().is_none());
    let marker: Option<String> = conn.get(keys.inflight(&id)).await.unwrap();
    assert_eq!(
        marker.as_deref(),
        Some("completing"),
        "a completed task's marker is kept"
    );

    // Retry frees a lock left by a consumer that is gone, never one of a live consumer without --force.
    outbox.put(&record("ob-2", secret)).await.unwrap();
    let lock = format!("{prefix}:outbox-lock:ob-2");
    let _: () = conn.set(&lock, "ghost-consumer").await.unwrap();
    let retry = pwctl(&prefix, &["outbox", "retry", "ob-2"]).await;
    assert_eq!(ok(&retry)["results"][0]["outcome"], "queued");
    assert!(!conn.exists::<_, bool>(&lock).await.unwrap());
    // Redis creates a consumer when it first delivers it an entry.
    let live = Consumer::connect(&stream_settings(&prefix), "live-1")
        .await
        .unwrap();
    enqueue(&prefix, &[entry("live-task", "outbox.test", Site::Main)]).await;
    assert_eq!(live.claim(1).await.unwrap().len(), 1);
    let _: () = conn.set(&lock, "live-1").await.unwrap();
    assert_eq!(pwctl(&prefix, &["outbox", "retry", "ob-2"]).await.code, 1);
    assert!(conn.exists::<_, bool>(&lock).await.unwrap());
    ok(&pwctl(&prefix, &["outbox", "retry", "ob-2", "--force"]).await);
    assert!(!conn.exists::<_, bool>(&lock).await.unwrap());
    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pwctl_drain_stops_one_executor_after_its_tasks_and_prune_removes_its_consumer() {
    let env = TestEnv::new().await;
    let prefix = env.prefix.clone();
    let ids = env.add(2, 0, "drain.test", &[]);
    let dir = tempfile::tempdir().unwrap();
    let extra = [
        ("PW_SYNTHETIC_DOMAINS", "drain.test"),
        ("PW_SYNTHETIC_DELAY_MS", "1500"),
        ("PW_CONCURRENCY", "2"),
        ("PW_CONTROL_POLL_MS", "200"),
    ];
    let mut child = spawn_binary(&env, "drainee", &extra, &dir.path().join("d.log"));
    let cancel = CancellationToken::new();
    let fetcher = run_fetcher(&env, &cancel).await;
    eventually(Duration::from_secs(30), "running", || async {
        env.all_in(&ids, "running").then_some(())
    })
    .await;
    assert_eq!(
        pwctl(&prefix, &["drain", "nobody-by-this-name"]).await.code,
        1
    );
    let drain = pwctl(&prefix, &["drain", "drainee"]).await;
    assert_eq!(ok(&drain)["drain_requested"], true);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the drained executor did not exit")
        .unwrap();
    assert!(status.success(), "{status:?}");
    // What ran was finished; work arriving after the drain was not claimed.
    assert!(env.all_in(&ids, "completed"));
    let late = env.add(1, 0, "drain.test", &[]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_ne!(env.state(&late[0]), "running");
    cancel.cancel();
    fetcher.await.unwrap();
    // The request is cleared once drained.
    let st = pwctl(&prefix, &["status"]).await;
    assert_eq!(ok(&st)["drains"], serde_json::json!({}));

    let ls = pwctl(&prefix, &["consumers", "ls"]).await;
    let names: Vec<&str> = ok(&ls)["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // A clean exit with nothing pending leaves the group (and deletes the heartbeat).
    assert!(!names.contains(&"drainee"), "{names:?}");
    let mut conn = crate::helpers::redis_conn().await;
    let keys = StreamKeys::new(&prefix);
    assert!(
        !redis::AsyncCommands::exists::<_, bool>(&mut conn, keys.heartbeat("drainee"))
            .await
            .unwrap()
    );
    // A consumer that vanished without leaving (SIGKILL) is pruned by hand.
    for site in [Site::Main, Site::Sub] {
        let _: () = redis::cmd("XGROUP")
            .arg("CREATECONSUMER")
            .arg(keys.tasks(site))
            .arg("executors")
            .arg("gone-1")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    // A consumer holding an entry is never pruned, however idle.
    let busy = Consumer::connect(&stream_settings(&prefix), "busy-1")
        .await
        .unwrap();
    enqueue(&prefix, &[entry("busy-task", "drain.test", Site::Main)]).await;
    let got = busy.claim(5).await.unwrap();
    assert!(!got.is_empty());
    let dry = pwctl(
        &prefix,
        &["consumers", "prune", "--idle-secs", "0", "--dry-run"],
    )
    .await;
    assert!(
        ok(&dry)["pruned"]
            .as_array()
            .unwrap()
            .contains(&"gone-1".into())
    );
    let prune = pwctl(&prefix, &["consumers", "prune", "--idle-secs", "0"]).await;
    let pruned = ok(&prune)["pruned"].as_array().unwrap().clone();
    assert!(pruned.contains(&"gone-1".into()), "{pruned:?}");
    assert!(!pruned.contains(&"busy-1".into()), "{pruned:?}");
    let after = pwctl(&prefix, &["consumers", "ls"]).await;
    let left: Vec<&str> = ok(&after)["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        left.contains(&"busy-1") && !left.contains(&"gone-1"),
        "{left:?}"
    );
    cleanup(&prefix).await;
}

#[tokio::test]
async fn pwctl_pause_and_resume_show_in_status() {
    let prefix = unique_prefix();
    let paused = pwctl(
        &prefix,
        &["pause", "WWW.Podbean.com", "--reason", "new sign-up form"],
    )
    .await;
    assert_eq!(ok(&paused)["domain"], "podbean.com");
    let st = pwctl(&prefix, &["status"]).await;
    let p = &ok(&st)["paused"][0];
    assert_eq!(p["domain"], "podbean.com");
    assert_eq!(p["by"], "operator");
    assert_eq!(p["reason"], "new sign-up form");
    let text = pwctl_with(&prefix, true, false, &["status"]).await;
    assert!(
        text.stdout.contains("podbean.com  by operator"),
        "{}",
        text.stdout
    );
    assert_eq!(pwctl(&prefix, &["pause", "not a domain"]).await.code, 2);
    let resumed = pwctl(&prefix, &["resume", "podbean.com"]).await;
    assert_eq!(ok(&resumed)["was_paused"], true);
    assert_eq!(
        ok(&pwctl(&prefix, &["status"]).await)["paused"],
        serde_json::json!([])
    );
    // Redis unreachable: a runtime failure, exit 1.
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pwctl"));
    let out = cmd
        .env_clear()
        .env("PW_REDIS_URL", "redis://127.0.0.1:1")
        .args(["status"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let bad_url = tokio::process::Command::new(env!("CARGO_BIN_EXE_pwctl"))
        .env_clear()
        .env("PW_REDIS_URL", "http://nope")
        .args(["status"])
        .output()
        .await
        .unwrap();
    assert_eq!(bad_url.status.code(), Some(2));
    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pwctl_status_shows_the_listing_under_way_and_then_the_last_listing() {
    let sim = crate::helpers::fetcher::simulator(2, 0).await;
    // Every answer waits 3 s: the real fetcher's GET /links is seen under way first.
    let mut faults = sim.faults();
    faults.slow = 1.0;
    faults.slow_ms = 3_000;
    sim.set_faults(faults).unwrap();
    let prefix = unique_prefix();
    let fetcher = Proc::spawn(
        "fetcher",
        env!("CARGO_BIN_EXE_fetcher"),
        &[
            ("PW_API_BASE_URL", sim.api_base_url()),
            ("PW_API_KEY", crate::helpers::fetcher::SIM_KEY.to_owned()),
            ("PW_REDIS_URL", redis_url()),
            ("PW_KEY_PREFIX", prefix.clone()),
            ("PW_METRICS_ADDR", free_addr()),
            ("PW_FETCH_LIMIT", "7".to_owned()),
            ("PW_POLL_MIN_MS", "50".to_owned()),
            ("PW_POLL_MAX_MS", "200".to_owned()),
            ("PW_API_TIMEOUT_MS", "30000".to_owned()),
            ("PW_LOG", "warn".to_owned()),
        ],
    );
    let tag = format!("-{}-", fetcher.pid());
    let under_way = eventually(Duration::from_secs(20), "a listing under way", || {
        fetcher.assert_running();
        let (prefix, tag) = (prefix.clone(), tag.clone());
        async move {
            let st = pwctl(&prefix, &["status"]).await;
            let first = ok(&st)["listings_under_way"].get(0)?.clone();
            first["holder"].as_str()?.contains(&tag).then_some(first)
        }
    })
    .await;
    assert_eq!(under_way["limit"], 7, "{under_way}");
    let holder = under_way["holder"].as_str().unwrap().to_owned();
    let text = pwctl_with(&prefix, true, false, &["status"]).await;
    assert!(
        text.stdout
            .contains(&format!("Listing under way: {holder} for ")),
        "{}",
        text.stdout
    );
    faults.slow = 0.0;
    sim.set_faults(faults).unwrap();
    let last = eventually(Duration::from_secs(20), "the listing finished", || {
        let prefix = prefix.clone();
        async move {
            let st = pwctl(&prefix, &["status"]).await;
            let last = ok(&st)["last_listing"].clone();
            (!last.is_null()).then_some(last)
        }
    })
    .await;
    assert_eq!(last["holder"], holder.as_str(), "{last}");
    assert_eq!(last["limit"], 7, "{last}");
    let (started, ended) = (
        last["started_ms"].as_u64().unwrap(),
        last["ended_ms"].as_u64().unwrap(),
    );
    assert!(started <= ended, "{last}");
    let text = pwctl_with(&prefix, true, false, &["status"]).await;
    assert!(
        text.stdout.contains(&format!(" ago by {holder}, took ")),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains("not recorded"), "{}", text.stdout);
    drop(fetcher);
    cleanup(&prefix).await;
}

//! Shared test fixtures: a real Redis with a per-test key prefix, and waiting without bare sleeps.

#![allow(dead_code)]

pub mod compose;
pub mod compose_policy;
pub mod executor;
pub mod kubernetes_policy;
pub mod mail;
pub mod monitoring;
pub mod own_redis;
pub mod streams;

use std::future::Future;
use std::time::{Duration, Instant};

/// The Redis the tests use: `REDIS_URL`, default the local one. Panics with instructions when unreachable.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A connection to the test Redis.
pub async fn redis_conn() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(redis_url()).expect("REDIS_URL is not a valid Redis URL");
    client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach Redis at {} ({e}); run scripts/test, which installs and starts it",
                redis_url()
            )
        })
}

/// A fresh key prefix with a hash tag, unique to one test.
pub fn unique_prefix() -> String {
    format!("{{pwtest-{}}}", uuid::Uuid::new_v4().simple())
}

/// Deletes every key under `prefix` (SCAN, never FLUSHDB).
pub async fn cleanup(prefix: &str) {
    let mut conn = redis_conn().await;
    let pattern = format!("{}*", prefix.replace('{', "\\{").replace('}', "\\}"));
    let keys: Vec<String> = {
        let mut iter: redis::AsyncIter<String> =
            redis::AsyncCommands::scan_match(&mut conn, &pattern)
                .await
                .expect("SCAN");
        let mut keys = Vec::new();
        while let Some(k) = futures::StreamExt::next(&mut iter).await {
            keys.push(k.expect("SCAN item"));
        }
        keys
    };
    if !keys.is_empty() {
        let _: () = redis::AsyncCommands::del(&mut conn, keys)
            .await
            .expect("DEL");
    }
}

/// Polls `check` until it returns `Some` or `deadline` passes (then panics with `what`).
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
pub mod browser;
pub mod demo_stack;

pub mod fetcher;
pub mod fixture_site;
pub mod pipeline;
pub mod scripted_http;

/// The simulator binary, from the `pw-simulator` workspace crate (a binary of another package has no
/// `CARGO_BIN_EXE_*`). Built once per test process with the profile of this test binary, so a filtered run
/// never starts a stale one.
pub fn simulator_bin() -> std::path::PathBuf {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target/<profile>/deps");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        build.args([
            "build",
            "--quiet",
            "-p",
            "pw-simulator",
            "--bin",
            "simulator",
        ]);
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build for the simulator");
        assert!(status.success(), "cargo build -p pw-simulator failed");
        profile_dir.join("simulator")
    })
    .clone()
}

/// A variable some binary reads: the fleet's (`podcast_worker::config::all_vars`) or the simulator's
/// (`pw_simulator::config::VARS`), which are declared in two crates that share no code.
#[derive(Debug, Clone, Copy)]
pub struct KnownVar {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub secret: bool,
    pub help: &'static str,
}

/// Every variable of every binary: the fleet's, then the simulator's.
pub fn every_var() -> impl Iterator<Item = KnownVar> {
    let fleet = podcast_worker::config::all_vars().map(|v| KnownVar {
        name: v.name,
        default: v.default,
        secret: v.secret,
        help: v.help,
    });
    let simulator = pw_simulator::config::VARS.iter().map(|v| KnownVar {
        name: v.name,
        default: v.default,
        secret: v.secret,
        help: v.help,
    });
    fleet.chain(simulator)
}

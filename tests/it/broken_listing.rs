//! One task's `about` arrives with an escaped lone surrogate (`\ud83d`) and a raw 0xFF byte, in its listing
//! and its detail, with the real fetcher and executor binaries (synthetic driver) and a real Redis: the rest
//! of the page is not lost with it. A byte-rewriting proxy in front of the simulator damages the text (no
//! JSON library can write these bytes, so the simulator, which writes its answers with one, cannot either).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use pw_simulator::ScenarioSpec;

use crate::helpers::eventually;
use crate::helpers::fetcher::{SIM_KEY, simulator};
use crate::helpers::monitoring::{Proc, free_addr};
use crate::helpers::{cleanup, redis_url, unique_prefix};

const DOMAIN: &str = "main.demo.test";

/// Forwards every request to `upstream` and replaces `find` with `replace` in every answer body.
struct Damage {
    upstream: String,
    find: Vec<u8>,
    replace: Vec<u8>,
    http: reqwest::Client,
}

async fn forward(State(d): State<Arc<Damage>>, req: Request) -> Response {
    let url = format!("{}{}", d.upstream, req.uri());
    let method = req.method().clone();
    let key = req.headers().get("x-api-key").cloned();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let mut out = d.http.request(method, url).body(body);
    if let Some(key) = key {
        out = out.header("x-api-key", key);
    }
    let Ok(answer) = out.send().await else {
        return axum::http::StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    let bytes = answer.bytes().await.unwrap_or_default();
    let damaged = replace_all(&bytes, &d.find, &d.replace);
    (
        status,
        [("content-type", "application/json")],
        Bytes::from(damaged),
    )
        .into_response()
}

fn replace_all(hay: &[u8], find: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(find) {
            out.extend_from_slice(with);
            i += find.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_with_a_lone_surrogate_and_a_raw_ff_byte_loses_no_task() {
    let sim = simulator(0, 0).await;
    let tasks = sim.add_scenario(&ScenarioSpec {
        requests: 6,
        subs_per_request: 0,
        main_domains: vec![DOMAIN.into()],
        ..ScenarioSpec::default()
    });
    let ids: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
    let broken = &ids[2];
    let about = sim.task(broken).unwrap().task["about"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!about.is_empty());
    // The about text as the simulator's JSON writes it, and the same with the damage spliced in.
    let find = serde_json::to_string(&about).unwrap().into_bytes();
    let mut replace = b"\"broken \\ud83d text \xFF end ".to_vec();
    replace.extend_from_slice(&find[1..]);
    let damage = Arc::new(Damage {
        upstream: sim.url().trim_end_matches('/').to_owned(),
        find,
        replace,
        http: reqwest::Client::new(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(forward).with_state(damage);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let api = format!(
        "http://{proxy}{}",
        sim.api_base_url()
            .trim_start_matches(sim.url().trim_end_matches('/'))
    );

    let prefix = unique_prefix();
    let common = |addr: &str| {
        vec![
            ("PW_API_BASE_URL", api.clone()),
            ("PW_API_KEY", SIM_KEY.to_owned()),
            ("PW_REDIS_URL", redis_url()),
            ("PW_KEY_PREFIX", prefix.clone()),
            ("PW_METRICS_ADDR", addr.to_owned()),
            ("PW_MAIN_DOMAINS", DOMAIN.to_owned()),
            ("PW_POLL_MIN_MS", "50".to_owned()),
            ("PW_POLL_MAX_MS", "200".to_owned()),
            ("PW_LOG", "info".to_owned()),
            ("PW_LOG_FORMAT", "json".to_owned()),
        ]
    };
    let fetcher = Proc::spawn(
        "fetcher",
        env!("CARGO_BIN_EXE_fetcher"),
        &common(&free_addr()),
    );
    let mut vars = common(&free_addr());
    vars.extend([
        ("PW_OUTBOX_KEY", "ef".repeat(32)),
        ("PW_CONSUMER_NAME", "broken-e1".to_owned()),
        ("PW_READ_BLOCK_MS", "200".to_owned()),
        ("PW_SYNTHETIC_DOMAINS", DOMAIN.to_owned()),
    ]);
    let executor = Proc::spawn("executor", env!("CARGO_BIN_EXE_executor"), &vars);
    let logs = || format!("{}\n{}", fetcher.log_text(), executor.log_text());

    let others: Vec<&String> = ids.iter().filter(|id| *id != broken).collect();
    eventually(
        Duration::from_secs(60),
        "every other task completed",
        || {
            fetcher.assert_running();
            executor.assert_running();
            let done = others
                .iter()
                .all(|id| sim.task(id).is_some_and(|t| t.state == "completed"));
            async move { done.then_some(()) }
        },
    )
    .await;
    // The damaged one is read leniently too (U+FFFD in place of the damage) and runs like the others.
    eventually(
        Duration::from_secs(30),
        "the damaged task completed",
        || {
            let done = sim.task(broken).is_some_and(|t| t.state == "completed");
            async move { done.then_some(()) }
        },
    )
    .await;
    let audit = sim.audit();
    assert!(
        audit.clean,
        "{}\n{}",
        serde_json::to_string_pretty(&audit).unwrap(),
        logs()
    );
    let repaired = fetcher
        .log_text()
        .lines()
        .filter(|l| l.contains("badly encoded text") && l.contains("\"WARN\""))
        .count();
    assert!(repaired >= 1, "no WARN about the damage:\n{}", logs());
    let named = executor
        .log_text()
        .lines()
        .any(|l| l.contains("badly encoded text") && l.contains(broken.as_str()));
    assert!(named, "the executor's WARN names the task:\n{}", logs());
    cleanup(&prefix).await;
}

//! Tasks possibly handed out to us are never silent, with the real fetcher binary and a real Redis: a
//! fetcher SIGKILLed while its `GET /links` is in flight is reported by its successor (ERROR with the time
//! and limit, `pw_fetcher_listings_lost_total{reason="interrupted"}`), once.

use std::collections::HashMap;
use std::time::Duration;

use podcast_worker::streams::StreamKeys;
use podcast_worker::task::Site;
use redis::AsyncCommands;

use crate::helpers::fetcher::{SIM_KEY, simulator};
use crate::helpers::monitoring::{Proc, free_addr};
use crate::helpers::{cleanup, eventually, redis_conn, redis_url, unique_prefix};

const REPORT: &str = "a fetcher died with a listing under way";

fn fetcher_vars(api: &str, prefix: &str, addr: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PW_API_BASE_URL", api.to_owned()),
        ("PW_API_KEY", SIM_KEY.to_owned()),
        ("PW_REDIS_URL", redis_url()),
        ("PW_KEY_PREFIX", prefix.to_owned()),
        ("PW_METRICS_ADDR", addr.to_owned()),
        ("PW_LEADER_TTL_MS", "1500".to_owned()),
        ("PW_POLL_MIN_MS", "20".to_owned()),
        ("PW_POLL_MAX_MS", "200".to_owned()),
        ("PW_FETCH_LIMIT", "7".to_owned()),
        ("PW_API_TIMEOUT_MS", "30000".to_owned()),
        ("PW_LOG", "info".to_owned()),
        ("PW_LOG_FORMAT", "json".to_owned()),
    ]
}

/// Listing answers B received (`pw_api_requests_total{endpoint="list",status_class="2xx"}`).
async fn list_requests(addr: &str) -> f64 {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("pw_api_requests_total{endpoint=\"list\",status_class=\"2xx\"}")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

fn report_lines(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter(|l| l.contains(REPORT))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetcher_killed_mid_listing_is_reported_by_its_successor() {
    let sim = simulator(3, 0).await;
    // Every answer waits 10 s before the listing is applied: the kill lands while GET /links is in flight.
    let mut faults = sim.faults();
    faults.slow = 1.0;
    faults.slow_ms = 10_000;
    sim.set_faults(faults).unwrap();
    let prefix = unique_prefix();
    let listing = StreamKeys::new(&prefix).listing();
    let a = Proc::spawn(
        "fetcher A",
        env!("CARGO_BIN_EXE_fetcher"),
        &fetcher_vars(&sim.api_base_url(), &prefix, &free_addr()),
    );
    let a_tag = format!("-{}-", a.pid());
    let mut conn = redis_conn().await;
    let record = eventually(Duration::from_secs(20), "A's listing under way", || {
        a.assert_running();
        let (mut conn, listing, a_tag) = (conn.clone(), listing.clone(), a_tag.clone());
        async move {
            let all: HashMap<String, String> = conn.hgetall(&listing).await.unwrap();
            all.into_iter().find(|(holder, _)| holder.contains(&a_tag))
        }
    })
    .await;
    let value: serde_json::Value = serde_json::from_str(&record.1).unwrap();
    assert_eq!(value["limit"], 7, "{value}");
    a.kill();
    faults.slow = 0.0;
    sim.set_faults(faults).unwrap();

    let b_addr = free_addr();
    let b = Proc::spawn(
        "fetcher B",
        env!("CARGO_BIN_EXE_fetcher"),
        &fetcher_vars(&sim.api_base_url(), &prefix, &b_addr),
    );
    let line = eventually(Duration::from_secs(20), "B to report A's listing", || {
        b.assert_running();
        let found = report_lines(&b.log_text()).into_iter().next();
        async move { found }
    })
    .await;
    assert_eq!(line["level"], "ERROR", "{line}");
    assert_eq!(line["holder"], record.0.as_str(), "{line}");
    assert_eq!(line["limit"], 7, "{line}");
    assert!(
        line["started_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{line}"
    );
    let metrics = reqwest::get(format!("http://{b_addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("pw_fetcher_listings_lost_total{reason=\"interrupted\"} 1"),
        "{metrics}"
    );
    // A's record is gone (B's own comes and goes with each step); B carries on and queues the tasks.
    let stream = StreamKeys::new(&prefix).tasks(Site::Main);
    eventually(Duration::from_secs(20), "B to queue the tasks", || {
        let (mut conn, stream) = (conn.clone(), stream.clone());
        async move { (conn.xlen::<_, u64>(&stream).await.unwrap() == 3).then_some(()) }
    })
    .await;
    let left: Vec<String> = conn.hkeys(&listing).await.unwrap();
    assert!(!left.contains(&record.0), "{left:?}");
    // Reported once, not at every step: B lists five more times, and still one report.
    let listings = || async { list_requests(&b_addr).await };
    let before = listings().await;
    eventually(
        Duration::from_secs(20),
        "five more listings by B",
        || async { (listings().await >= before + 5.0).then_some(()) },
    )
    .await;
    assert_eq!(report_lines(&b.log_text()).len(), 1, "{}", b.log_text());
    drop(b);
    cleanup(&prefix).await;
}

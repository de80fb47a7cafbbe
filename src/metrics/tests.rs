//! Unit tests of the metric definitions, label folding, health wiring and the HTTP endpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use prometheus::proto::MetricType;

use super::*;
use crate::task::Site;

/// A registry with every family (a role other than `fetcher` or `executor`).
fn metrics() -> Metrics {
    metrics_of("test")
}

fn metrics_of(role: &'static str) -> Metrics {
    Metrics::new(MetricsOptions {
        role,
        version: "0.0.0-test",
        domains: vec!["Anchor.fm".into(), "www.podbean.com".into()],
        stall_after: Duration::from_secs(60),
    })
    .unwrap()
}

/// family name -> (type, set of label maps)
fn families(m: &Metrics) -> BTreeMap<String, (MetricType, Vec<BTreeMap<String, String>>)> {
    m.registry()
        .gather()
        .iter()
        .map(|f| {
            let series = f
                .get_metric()
                .iter()
                .map(|s| {
                    s.get_label()
                        .iter()
                        .map(|l| (l.name().to_owned(), l.value().to_owned()))
                        .collect()
                })
                .collect();
            (f.name().to_owned(), (f.get_field_type(), series))
        })
        .collect()
}

#[test]
fn names_follow_prometheus_conventions() {
    let m = metrics();
    let fams = families(&m);
    for name in ALL {
        assert!(fams.contains_key(*name), "{name} not registered");
    }
    for (name, (kind, _)) in &fams {
        if name.starts_with("process_") {
            continue;
        }
        assert!(ALL.contains(&name.as_str()), "{name} missing from ALL");
        assert!(name.starts_with("pw_"), "{name}");
        assert!(
            name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{name}"
        );
        match kind {
            MetricType::COUNTER => assert!(name.ends_with("_total"), "{name}"),
            MetricType::HISTOGRAM => assert!(name.ends_with("_seconds"), "{name}"),
            MetricType::GAUGE => assert!(!name.ends_with("_total"), "{name}"),
            other => panic!("{name}: unexpected type {other:?}"),
        }
    }
}

#[test]
fn label_combinations_exist_at_zero_from_the_start() {
    let m = metrics();
    let fams = families(&m);
    let finished = &fams[TASKS_FINISHED].1;
    // 2 sites x (2 known domains + other) x 4 outcomes
    assert_eq!(finished.len(), 2 * 3 * Outcome::ALL.len());
    let domains: BTreeSet<&str> = finished.iter().map(|l| l["domain"].as_str()).collect();
    assert_eq!(
        domains,
        BTreeSet::from(["anchor.fm", "other", "podbean.com"])
    );
    let api = &fams[API_REQUESTS].1;
    assert_eq!(api.len(), Endpoint::ALL.len() * StatusClass::ALL.len());
    assert_eq!(fams[TASK_STAGE_DURATION].1.len(), 2 * Stage::ALL.len());
    assert_eq!(fams[STREAM_LENGTH].1.len(), 3);
    assert_eq!(fams[STREAM_LAG].1.len(), 2);
    let text = m.render();
    assert!(
        text.contains(r#"pw_tasks_finished_total{domain="other",outcome="gone",site="sub"} 0"#),
        "{text}"
    );
    assert!(text.contains(r#"pw_build_info{role="test",version="0.0.0-test"} 1"#));
}

#[test]
fn each_role_exports_only_the_families_it_sets() {
    let fetcher = families(&metrics_of("fetcher"));
    let executor = families(&metrics_of("executor"));
    for name in ALL {
        let (f, e) = (fetcher.contains_key(*name), executor.contains_key(*name));
        assert!(f || e, "{name} exported by no role");
        assert_eq!(f, !EXECUTOR_ONLY.contains(name), "{name} in a fetcher");
        assert_eq!(e, !FETCHER_ONLY.contains(name), "{name} in an executor");
    }
    for shared in [
        API_REQUESTS,
        REDIS_UP,
        STREAM_LAG,
        OUTBOX_ENTRIES,
        BUILD_INFO,
    ] {
        assert!(fetcher.contains_key(shared) && executor.contains_key(shared));
    }
    assert!(!executor.contains_key(FETCHER_LEADER) && !executor.contains_key(TASKS_ENQUEUED));
    assert!(!fetcher.contains_key(TASKS_FINISHED) && !fetcher.contains_key(BROWSER_MEMORY));
    // Recording into a family the role does not export is harmless and invisible.
    let m = metrics_of("executor");
    m.set_fetcher_leader(true);
    m.task_enqueued(Site::Main, "anchor.fm");
    let text = m.render();
    assert!(
        !text.contains(FETCHER_LEADER) && !text.contains(TASKS_ENQUEUED),
        "{text}"
    );
}

#[test]
fn unknown_domains_fold_into_other_without_new_series() {
    let m = metrics();
    let before = families(&m)[TASKS_ENQUEUED].1.len();
    m.task_enqueued(Site::Main, "WWW.ANCHOR.FM");
    m.task_enqueued(Site::Sub, "someone-private.example");
    m.task_enqueued(Site::Sub, "another.example:8080");
    m.task_finished(
        Site::Sub,
        "x.example",
        Outcome::Failed,
        Some(Duration::from_secs(3)),
    );
    assert_eq!(families(&m)[TASKS_ENQUEUED].1.len(), before);
    let text = m.render();
    assert!(text.contains(r#"pw_tasks_enqueued_total{domain="anchor.fm",site="main"} 1"#));
    assert!(text.contains(r#"pw_tasks_enqueued_total{domain="other",site="sub"} 2"#));
    assert!(!text.contains("example"), "a domain leaked into a label");
    assert_eq!(m.domain_label("podbean.com"), "podbean.com");
    assert_eq!(m.domain_label("other"), "other");
}

#[test]
fn api_responses_drive_readiness_and_the_key_gauge() {
    let m = metrics();
    assert!(m.health().readiness().is_ready());
    m.api_request(Endpoint::List, Some(401), Duration::from_millis(5));
    assert_eq!(m.health().readiness().problems, vec!["api key refused"]);
    assert!(m.render().contains("pw_api_key_refused 1"));
    m.api_request(Endpoint::List, None, Duration::from_millis(5));
    assert!(
        m.health()
            .readiness()
            .problems
            .contains(&"manager unreachable")
    );
    m.api_request(Endpoint::List, Some(200), Duration::from_millis(5));
    assert!(m.health().readiness().is_ready());
    let text = m.render();
    assert!(text.contains(r#"pw_api_requests_total{endpoint="list",status_class="4xx"} 1"#));
    assert!(text.contains(r#"pw_api_requests_total{endpoint="list",status_class="none"} 1"#));
    m.api_request(Endpoint::Start, Some(503), Duration::from_millis(5));
    assert!(!m.health().readiness().is_ready());
    m.api_request(Endpoint::Start, Some(200), Duration::from_millis(5));
    assert!(m.health().readiness().is_ready());
    let text = m.render();
    assert!(text.contains(r#"pw_api_requests_total{endpoint="start",status_class="2xx"} 1"#));
    assert!(text.contains("pw_api_key_refused 0") && text.contains("pw_manager_up 1"));
}

#[test]
fn two_instances_in_one_process_do_not_share_state() {
    let (a, b) = (metrics(), metrics());
    a.set_fetcher_leader(true);
    assert!(a.render().contains("pw_fetcher_leader 1"));
    assert!(b.render().contains("pw_fetcher_leader 0"));
}

#[tokio::test]
async fn endpoints_answer_over_http() {
    let m = Arc::new(metrics());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(serve(listener, m.clone(), cancel.clone()));
    let get = |path: &'static str| async move {
        let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    let (status, body) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE pw_tasks_finished_total counter"));
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/readyz").await.0, 200);
    m.set_redis_reachable(false);
    let (status, body) = get("/readyz").await;
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: redis unreachable\n")
    );
    cancel.cancel();
    server.await.unwrap().unwrap();
}

#[test]
fn browser_restarts_count_by_reason_and_gauges_follow_the_pool() {
    let m = metrics();
    m.browser_restarts(RestartReason::Recycle, 1);
    m.browser_restarts(RestartReason::Recycle, 1);
    m.browser_restarts(RestartReason::Crash, 1);
    m.browser_restarts(RestartReason::Memory, 0);
    m.set_browser(3, 400_000_000);
    m.set_browser(1, 400_000_000);
    let text = m.render();
    assert!(
        text.contains(r#"pw_browser_restarts_total{reason="recycle"} 2"#),
        "{text}"
    );
    assert!(text.contains(r#"pw_browser_restarts_total{reason="crash"} 1"#));
    assert!(text.contains(r#"pw_browser_restarts_total{reason="memory"} 0"#));
    assert!(
        text.contains("pw_browser_contexts 1")
            && text.contains("pw_browser_memory_bytes 400000000")
    );
}

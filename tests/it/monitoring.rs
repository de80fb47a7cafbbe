//! The monitoring files are true: every metric the dashboard and the alert rules read exists, promtool accepts
//! the config and rules and their unit tests cover every alert, and a real Prometheus scraping running
//! processes evaluates every dashboard query (with data) and every alert expression (well-formed).

use std::collections::BTreeSet;
use std::time::Duration;

use podcast_worker::metrics::{Metrics, MetricsOptions};
use podcast_worker::simulator;
use serde_json::Value;

use crate::helpers::monitoring::{
    Proc, Prometheus, alert_rules, dashboard_exprs, dashboard_variable_selectors,
    expand_grafana_vars, free_addr, metric_names, promtool, repo_file,
};
use crate::helpers::{cleanup, eventually, redis_url, unique_prefix};

fn registry_names() -> BTreeSet<String> {
    let m = Metrics::new(MetricsOptions {
        role: "executor",
        version: "test",
        domains: vec![],
        stall_after: Duration::from_secs(60),
    })
    .unwrap();
    // Registered by executors only (their control gate).
    podcast_worker::metrics::ControlMetrics::register(&m).unwrap();
    m.registry()
        .gather()
        .iter()
        .map(|f| f.name().to_owned())
        // The demo simulator's own metrics, scraped as job `simulator`.
        .chain([simulator::REQUESTS_TOTAL, simulator::TASKS].map(str::to_owned))
        .collect()
}

#[test]
fn monitoring_dashboard_and_rules_read_only_metrics_that_exist() {
    let known = registry_names();
    let mut used = BTreeSet::new();
    let exprs = dashboard_exprs()
        .into_iter()
        .map(|(_, e)| e)
        .chain(alert_rules().into_iter().map(|(_, e)| e))
        .chain(dashboard_variable_selectors());
    for expr in exprs {
        for name in metric_names(&expr) {
            assert!(
                known.contains(&name),
                "{name} (in `{expr}`) is not in the registry"
            );
            used.insert(name);
        }
    }
    // The panels cover the brief: throughput, durations, queue, API, outbox, dead letters, browser.
    for name in [
        "pw_tasks_finished_total",
        "pw_task_duration_seconds",
        "pw_fetch_to_start_seconds",
        "pw_stream_lag",
        "pw_stream_pending",
        "pw_api_requests_total",
        "pw_outbox_entries",
        "pw_browser_memory_bytes",
    ] {
        assert!(used.contains(name), "nothing shows {name}");
    }
}

#[test]
fn monitoring_dashboard_uses_the_provisioned_datasource() {
    let ds = std::fs::read_to_string(repo_file("grafana/provisioning/datasources/prometheus.yml"))
        .unwrap();
    let ds: serde_yaml_ng::Value = serde_yaml_ng::from_str(&ds).unwrap();
    let uid = ds["datasources"][0]["uid"].as_str().unwrap().to_owned();
    let text =
        std::fs::read_to_string(repo_file("grafana/dashboards/podcast-worker.json")).unwrap();
    let dash: Value = serde_json::from_str(&text).unwrap();
    for panel in dash["panels"].as_array().unwrap() {
        if panel["type"] != "row" {
            assert_eq!(
                panel["datasource"]["uid"],
                uid.as_str(),
                "{}",
                panel["title"]
            );
        }
    }
    let provider =
        std::fs::read_to_string(repo_file("grafana/provisioning/dashboards/provider.yml")).unwrap();
    let provider: serde_yaml_ng::Value = serde_yaml_ng::from_str(&provider).unwrap();
    assert_eq!(
        provider["providers"][0]["options"]["path"].as_str(),
        Some("/var/lib/grafana/dashboards")
    );
}

#[test]
fn monitoring_promtool_accepts_config_rules_and_rule_tests() {
    promtool(&["check", "config", "prometheus.yml"]);
    let out = promtool(&["check", "rules", "alerts.yml"]);
    assert!(
        out.contains(&format!("{} rules found", alert_rules().len())),
        "{out}"
    );
    let out = promtool(&["test", "rules", "alerts_test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn monitoring_every_alert_has_a_unit_test_where_it_fires() {
    let text = std::fs::read_to_string(repo_file("prometheus/alerts_test.yml")).unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let mut fired = BTreeSet::new();
    for test in doc["tests"].as_sequence().unwrap() {
        for case in test["alert_rule_test"].as_sequence().unwrap() {
            let expected = case["exp_alerts"].as_sequence().map_or(0, |a| a.len());
            if expected > 0 {
                fired.insert(case["alertname"].as_str().unwrap().to_owned());
            }
        }
    }
    let alerts: BTreeSet<String> = alert_rules().into_iter().map(|(n, _)| n).collect();
    let untested: Vec<_> = alerts.difference(&fired).collect();
    assert!(
        untested.is_empty(),
        "alerts never shown firing in alerts_test.yml: {untested:?}"
    );
}

/// Checks one query against the live Prometheus; returns how many series it gave.
async fn evaluate(prom: &Prometheus, expr: &str) -> Result<usize, String> {
    let data = prom.query(expr).await?;
    Ok(data["result"].as_array().map_or(0, Vec::len))
}

/// Waits until every target of every job is up and has been scraped long enough for 10 s rates.
pub async fn wait_for_scrapes(prom: &Prometheus, targets: usize) {
    eventually(
        Duration::from_secs(30),
        "every target scraped for 10 s",
        || async {
            let up = evaluate(prom, "count_over_time(up[15s]) >= 4 and up == 1")
                .await
                .ok()?;
            (up == targets).then_some(())
        },
    )
    .await;
}

/// Every dashboard query returns data and every alert expression is accepted; the rules loaded healthy.
pub async fn check_queries_against(prom: &Prometheus) {
    let mut empty = Vec::new();
    for (title, expr) in dashboard_exprs() {
        let expr = expand_grafana_vars(&expr);
        match evaluate(prom, &expr).await {
            Ok(0) => empty.push(format!("{title}: {expr}")),
            Ok(_) => {}
            Err(e) => panic!("dashboard query of `{title}` refused: {e}\n{expr}"),
        }
    }
    assert!(
        empty.is_empty(),
        "dashboard queries without data:\n{}",
        empty.join("\n")
    );
    for selector in dashboard_variable_selectors() {
        assert!(
            evaluate(prom, &selector).await.unwrap() > 0,
            "variable {selector}"
        );
    }
    for (name, expr) in alert_rules() {
        evaluate(prom, &expr)
            .await
            .unwrap_or_else(|e| panic!("alert {name} refused: {e}"));
    }
    let rules = prom.api("rules", &[]).await.unwrap();
    let loaded: Vec<&Value> = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert_eq!(loaded.len(), alert_rules().len(), "{}", prom.log());
    eventually(Duration::from_secs(10), "every rule evaluated", || async {
        let rules = prom.api("rules", &[]).await.ok()?;
        let all_ok = rules["groups"].as_array()?.iter().all(|g| {
            g["rules"].as_array().into_iter().flatten().all(|r| {
                assert!(r["lastError"].as_str().unwrap_or("").is_empty(), "{r}");
                r["health"] == "ok"
            })
        });
        all_ok.then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitoring_live_prometheus_evaluates_every_dashboard_query_and_alert() {
    const KEY: &str = "monitoring-test-key";
    const DEMO_DOMAINS: &str = "main.demo.test,sub-a.demo.test,sub-b.demo.test,sub-c.demo.test";
    let prefix = unique_prefix();
    let sim_addr = free_addr();
    let sim = Proc::spawn(
        "simulator",
        env!("CARGO_BIN_EXE_simulator"),
        &[
            ("PW_SIM_LISTEN", sim_addr.clone()),
            ("PW_SIM_API_KEY", KEY.into()),
            ("PW_SIM_REQUESTS", "2".into()),
            ("PW_SIM_SUBS_PER_REQUEST", "3".into()),
            ("PW_LOG", "warn".into()),
        ],
    );
    sim.wait_http_ok(&sim_addr, "/metrics").await;
    let fetcher_addr = free_addr();
    let fetcher = Proc::spawn(
        "fetcher",
        env!("CARGO_BIN_EXE_fetcher"),
        &[
            (
                "PW_API_BASE_URL",
                format!("http://{sim_addr}{}", simulator::BASE_PATH),
            ),
            ("PW_API_KEY", KEY.into()),
            ("PW_REDIS_URL", redis_url()),
            ("PW_KEY_PREFIX", prefix.clone()),
            ("PW_METRICS_ADDR", fetcher_addr.clone()),
            ("PW_SAMPLE_INTERVAL_MS", "200".into()),
            ("PW_POLL_MIN_MS", "200".into()),
            ("PW_POLL_MAX_MS", "1000".into()),
            ("PW_MAIN_DOMAINS", "main.demo.test".into()),
            ("PW_LOG", "warn".into()),
        ],
    );
    fetcher.wait_http_ok(&fetcher_addr, "/metrics").await;
    let mut executors = Vec::new();
    for name in ["e1", "e2"] {
        let addr = free_addr();
        let exe = Proc::spawn(
            name,
            env!("CARGO_BIN_EXE_executor"),
            &[
                (
                    "PW_API_BASE_URL",
                    format!("http://{sim_addr}{}", simulator::BASE_PATH),
                ),
                ("PW_API_KEY", KEY.into()),
                ("PW_REDIS_URL", redis_url()),
                ("PW_KEY_PREFIX", prefix.clone()),
                ("PW_METRICS_ADDR", addr.clone()),
                ("PW_OUTBOX_KEY", "ab".repeat(32)),
                ("PW_CONSUMER_NAME", format!("monitoring-{name}")),
                ("PW_SAMPLE_INTERVAL_MS", "200".into()),
                ("PW_READ_BLOCK_MS", "200".into()),
                ("PW_SYNTHETIC_DOMAINS", DEMO_DOMAINS.into()),
                ("PW_SYNTHETIC_DELAY_MS", "300".into()),
                ("PW_MAIN_DOMAINS", "main.demo.test".into()),
                ("PW_LOG", "warn".into()),
            ],
        );
        exe.wait_http_ok(&addr, "/metrics").await;
        executors.push((exe, addr));
    }
    let prom = Prometheus::start(&[
        ("simulator", sim_addr),
        ("fetcher", fetcher_addr.clone()),
        ("executor", executors[0].1.clone()),
        ("executor", executors[1].1.clone()),
    ])
    .await;
    wait_for_scrapes(&prom, 4).await;
    // The fetcher queued the simulator's tasks and the executors finished them.
    let done = r#"sum(pw_tasks_finished_total{outcome="completed"}) >= 8"#;
    eventually(
        Duration::from_secs(60),
        "tasks completed in Prometheus",
        || async {
            let n = prom.query(done).await.ok()?;
            (!n["result"].as_array()?.is_empty()).then_some(())
        },
    )
    .await;
    check_queries_against(&prom).await;
    fetcher.wait_http_ok(&fetcher_addr, "/healthz").await;
    fetcher.wait_http_ok(&fetcher_addr, "/readyz").await;
    for (exe, addr) in &executors {
        exe.wait_http_ok(addr, "/healthz").await;
        exe.wait_http_ok(addr, "/readyz").await;
    }
    sim.assert_running();
    drop((executors, fetcher, sim));
    cleanup(&prefix).await;
}

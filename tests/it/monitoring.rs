//! The monitoring files are true: every metric the dashboard and the alert rules read exists, promtool accepts
//! the config and rules and their unit tests cover every alert, every runbook link has its section, and a
//! real Prometheus scraping running processes evaluates every dashboard query (with data) and every alert
//! expression (well-formed), and every panel not described "Zero when healthy" shows a change during a run of
//! the real recipes (`scripts/demo-report dashboard-changes`, whose self-test proves it rejects flat series).

use std::collections::BTreeSet;
use std::time::Duration;

use podcast_worker::metrics::{Metrics, MetricsOptions};
use pw_simulator as simulator;
use serde_json::Value;

use crate::helpers::monitoring::{
    Proc, Prometheus, alert_annotations, alert_rules, dashboard, dashboard_exprs,
    dashboard_variable_selectors, demo_report, expand_grafana_vars, free_addr, metric_names,
    promtool, repo_file,
};
use crate::helpers::{cleanup, eventually, redis_url, unique_prefix};

/// The families a process of `role` exports.
fn families_of(role: &'static str) -> BTreeSet<String> {
    let m = Metrics::new(MetricsOptions {
        role,
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
        .collect()
}

fn registry_names() -> BTreeSet<String> {
    let mut names = families_of("executor");
    names.extend(families_of("fetcher"));
    // The demo simulator's own metrics.
    names.extend([simulator::REQUESTS_TOTAL, simulator::TASKS].map(str::to_owned));
    names
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
    // The panels cover the brief: throughput, durations, queue, API, outbox, dead letters, browser, and
    // fleet control (paused domains, breakers).
    for name in [
        "pw_tasks_finished_total",
        "pw_task_duration_seconds",
        "pw_fetch_to_start_seconds",
        "pw_stream_lag",
        "pw_stream_pending",
        "pw_api_requests_total",
        "pw_outbox_entries",
        "pw_browser_memory_bytes",
        "pw_tasks_held",
        "pw_domain_paused",
        "pw_breaker_state",
        "pw_breaker_opened_total",
    ] {
        assert!(used.contains(name), "nothing shows {name}");
    }
}

#[test]
fn monitoring_dashboard_reads_the_datasource_variable_defaulting_to_the_provisioned_one() {
    let ds = std::fs::read_to_string(repo_file("grafana/provisioning/datasources/prometheus.yml"))
        .unwrap();
    let ds: serde_yaml_ng::Value = serde_yaml_ng::from_str(&ds).unwrap();
    let uid = ds["datasources"][0]["uid"].as_str().unwrap().to_owned();
    let dash = dashboard();
    let vars = dash["templating"]["list"].as_array().unwrap();
    let var = vars.iter().find(|v| v["name"] == "datasource").unwrap();
    assert_eq!(var["type"], "datasource");
    assert_eq!(var["query"], "prometheus");
    assert_eq!(var["current"]["value"], uid.as_str());
    for name in ["role", "domain", "instance"] {
        assert!(vars.iter().any(|v| v["name"] == name), "no {name} variable");
    }
    for panel in dash["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
        for target in panel["targets"].as_array().unwrap() {
            assert_eq!(
                target["datasource"]["uid"], "${datasource}",
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
fn monitoring_every_panel_has_a_unit_and_no_query_or_alert_names_a_scrape_job() {
    let dash = dashboard();
    for panel in dash["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        let unit = panel["fieldConfig"]["defaults"]["unit"]
            .as_str()
            .unwrap_or("");
        assert!(!unit.is_empty(), "panel {} has no unit", panel["title"]);
    }
    // Neither the dashboard nor an alert names a scrape job: roles come from `pw_build_info{role}`.
    let exprs = dashboard_exprs()
        .into_iter()
        .map(|(_, e)| e)
        .chain(dashboard_variable_selectors())
        .chain(alert_rules().into_iter().map(|(_, e)| e));
    for expr in exprs {
        assert!(!expr.contains("job="), "hard-coded job in `{expr}`");
    }
}

/// The anchor GitHub gives a Markdown heading: lowercase, punctuation dropped, spaces as hyphens.
fn heading_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn monitoring_runbook_links_point_at_sections_of_the_operations_guide() {
    let doc = std::fs::read_to_string(repo_file("docs/operations.md")).unwrap();
    let anchors: BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| heading_anchor(l.trim_start_matches('#')))
        .collect();
    let mut linked = BTreeSet::new();
    for (name, annotations) in alert_annotations() {
        let Some(url) = annotations["runbook_url"].as_str() else {
            continue;
        };
        let anchor = url
            .strip_prefix("docs/operations.md#")
            .unwrap_or_else(|| panic!("{name}: runbook_url {url} is not in docs/operations.md"));
        assert!(anchors.contains(anchor), "{name}: no heading for #{anchor}");
        linked.insert(name);
    }
    for name in [
        "PwRedisDown",
        "PwNoExecutorAlive",
        "PwDomainFailureRatioHigh",
    ] {
        assert!(linked.contains(name), "{name} has no runbook_url");
    }
    assert_eq!(
        heading_anchor(" Runbook: PwRedisDown"),
        "runbook-pwredisdown"
    );
}

#[test]
fn monitoring_dashboard_check_rejects_flat_nan_and_empty_series() {
    let (ok, out) = demo_report(&["selftest"]);
    assert!(ok, "{out}");
    assert!(out.contains("flat, NaN and empty series rejected"), "{out}");
    assert!(
        out.contains("zero-when-healthy panels need a series"),
        "{out}"
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
/// (The strict check, every panel changing, is `scripts/demo-report dashboard-changes`.)
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
        let selector = expand_grafana_vars(&selector);
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

/// The executor's variables for the real recipes of `recipes/` in the real Chromium against the simulator's
/// demo platforms (`*.demo.test` mapped to it), mail from the test Dovecot; a browser is replaced after 2 tasks
/// so the browser restarts panel moves.
fn recipe_executor_vars(sim_addr: &str, dir: &std::path::Path) -> Vec<(&'static str, String)> {
    let imap = crate::helpers::mail::dovecot();
    let sim_port = sim_addr.rsplit(':').next().unwrap().to_owned();
    vec![
        (
            "PW_RECIPES_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/recipes").to_owned(),
        ),
        (
            "PW_CHROMIUM_PATH",
            crate::helpers::browser::chromium_path()
                .display()
                .to_string(),
        ),
        (
            "PW_CHROMIUM_ARGS",
            format!(
                "host-resolver-rules=MAP *.demo.test 127.0.0.1:{sim_port}, EXCLUDE localhost;;"
            ),
        ),
        (
            "PW_BROWSER_PROFILE_ROOT",
            dir.join("profiles").display().to_string(),
        ),
        (
            "PW_ARTIFACTS_DIR",
            dir.join("artifacts").display().to_string(),
        ),
        ("PW_BROWSER_MAX_TASKS", "2".into()),
        ("PW_IMAGE_ALLOW_PRIVATE", "true".into()),
        ("PW_IMAP_HOST", "localhost".into()),
        ("PW_IMAP_PORT", imap.port.to_string()),
        ("PW_IMAP_CA_FILE", imap.ca.display().to_string()),
        ("PW_MAIL_POLL_MS", "250".into()),
        ("PW_CONCURRENCY", "2".into()),
    ]
}

/// A real Prometheus scrapes the real simulator (mail into the test Dovecot), fetcher and executor binaries
/// while the executor registers through the real recipes in Chromium. Every dashboard query returns data and
/// every alert evaluates; then the strict check: every panel query not described "Zero when healthy" shows a
/// change during the run (`scripts/demo-report dashboard-changes`), so a family that is never fed fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitoring_live_prometheus_sees_every_dashboard_panel_change_and_evaluates_every_alert() {
    const KEY: &str = "monitoring-test-key";
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let prefix = unique_prefix();
    let dir = tempfile::tempdir().unwrap();
    let imap = crate::helpers::mail::dovecot();
    let (sim_addr, fetcher_addr, exe_addr) = (free_addr(), free_addr(), free_addr());
    // Prometheus scrapes from the start, and the fetcher starts last, once the others are scraped: every
    // counter's increase during the run is seen (one that already stood at its total at the first scrape
    // would look flat).
    let prom = Prometheus::start(&[
        ("simulator", sim_addr.clone()),
        ("fetcher", fetcher_addr.clone()),
        ("executor", exe_addr.clone()),
    ])
    .await;
    // A seed of its own, so its demo mailboxes are not those of another test sharing the Dovecot.
    let seed = u64::from(uuid::Uuid::new_v4().as_u128() as u32);
    let sim = Proc::spawn(
        "simulator",
        crate::helpers::simulator_bin(),
        &[
            ("PW_SIM_LISTEN", sim_addr.clone()),
            ("PW_SIM_API_KEY", KEY.into()),
            ("PW_SIM_REQUESTS", "2".into()),
            ("PW_SIM_SUBS_PER_REQUEST", "3".into()),
            ("PW_SIM_SEED", seed.to_string()),
            ("PW_SIM_MAILDIR_ROOT", imap.root.display().to_string()),
            ("PW_SIM_MAIL_USERS_FILE", imap.users.display().to_string()),
            ("PW_LOG", "warn".into()),
        ],
    );
    sim.wait_http_ok(&sim_addr, "/metrics").await;
    let api = format!("http://{sim_addr}{}", simulator::BASE_PATH);
    let mut vars = vec![
        ("PW_API_BASE_URL", api.clone()),
        ("PW_API_KEY", KEY.into()),
        ("PW_REDIS_URL", redis_url()),
        ("PW_KEY_PREFIX", prefix.clone()),
        ("PW_METRICS_ADDR", exe_addr.clone()),
        ("PW_OUTBOX_KEY", "ab".repeat(32)),
        ("PW_CONSUMER_NAME", "monitoring-e1".into()),
        ("PW_SAMPLE_INTERVAL_MS", "200".into()),
        ("PW_READ_BLOCK_MS", "200".into()),
        ("PW_MAIN_DOMAINS", "main.demo.test".into()),
        ("PW_LOG", "warn".into()),
    ];
    vars.extend(recipe_executor_vars(&sim_addr, dir.path()));
    let exe = Proc::spawn("e1", env!("CARGO_BIN_EXE_executor"), &vars);
    exe.wait_http_ok(&exe_addr, "/metrics").await;
    eventually(
        Duration::from_secs(30),
        "the simulator and executor scraped",
        || async {
            let up = evaluate(&prom, "up == 1").await.ok()?;
            (up == 2).then_some(())
        },
    )
    .await;
    let fetcher = Proc::spawn(
        "fetcher",
        env!("CARGO_BIN_EXE_fetcher"),
        &[
            ("PW_API_BASE_URL", api),
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
    wait_for_scrapes(&prom, 3).await;
    // The fetcher queued the simulator's 8 tasks (2 main, 6 sub) and the executor registered them all.
    let done = r#"sum(pw_tasks_finished_total{outcome="completed"}) >= 8"#;
    eventually(
        Duration::from_secs(240),
        "every registration completed in Prometheus",
        || async {
            let n = prom.query(done).await.ok()?;
            (!n["result"].as_array()?.is_empty()).then_some(())
        },
    )
    .await;
    // Two more scrapes after the last report, so the last changes are in Prometheus.
    tokio::time::sleep(Duration::from_secs(3)).await;
    check_queries_against(&prom).await;
    let dashboard = repo_file("grafana/dashboards/podcast-worker.json");
    let (ok, out) = demo_report(&[
        "dashboard-changes",
        prom.url(),
        &dashboard.display().to_string(),
        &format!("{since:.3}"),
    ]);
    assert!(
        ok,
        "panels that did not change during the run:\n{out}\n{}",
        exe.log_text()
    );
    assert!(
        out.contains("zero-when-healthy queries well-formed"),
        "{out}"
    );
    fetcher.wait_http_ok(&fetcher_addr, "/healthz").await;
    fetcher.wait_http_ok(&fetcher_addr, "/readyz").await;
    exe.wait_http_ok(&exe_addr, "/healthz").await;
    exe.wait_http_ok(&exe_addr, "/readyz").await;
    sim.assert_running();
    drop((exe, fetcher, sim));
    cleanup(&prefix).await;
}

//! Monitoring fixtures: the repository's Prometheus and Grafana files, `promtool`, and a real Prometheus
//! started on a free port with its own storage dir, scraping targets the test names, killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::eventually;

/// A file of the repository.
pub fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Runs `promtool` with `args` in `prometheus/`, panicking with its output unless it succeeds.
pub fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(repo_file("prometheus"))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}); install it: apt-get install prometheus (scripts/test does)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// Every PromQL expression of the dashboard, with its panel title.
pub fn dashboard_exprs() -> Vec<(String, String)> {
    let dash = dashboard();
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or_default().to_owned();
            out.push((title, target["expr"].as_str().unwrap().to_owned()));
        }
    }
    out
}

/// The dashboard's template variable queries (`label_values(...)` stripped to their selector); the
/// `datasource` variable has none.
pub fn dashboard_variable_selectors() -> Vec<String> {
    dashboard()["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| {
            let def = v["definition"].as_str()?;
            let inner = def
                .trim_start_matches("label_values(")
                .trim_end_matches(')');
            Some(inner.rsplit_once(',').unwrap().0.trim().to_owned())
        })
        .collect()
}

/// The committed dashboard JSON.
pub fn dashboard() -> Value {
    let text =
        std::fs::read_to_string(repo_file("grafana/dashboards/podcast-worker.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `annotations` of every rule in `prometheus/alerts.yml`, by alert name.
pub fn alert_annotations() -> Vec<(String, serde_yaml_ng::Value)> {
    let text = std::fs::read_to_string(repo_file("prometheus/alerts.yml")).unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let mut out = Vec::new();
    for group in doc["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            if let Some(name) = rule["alert"].as_str() {
                out.push((name.to_owned(), rule["annotations"].clone()));
            }
        }
    }
    out
}

/// Runs `python3 scripts/demo-report <args>`; returns (success, stdout + stderr).
pub fn demo_report(args: &[&str]) -> (bool, String) {
    let out = Command::new("python3")
        .arg(repo_file("scripts/demo-report"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 scripts/demo-report ({e})"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// (alert name, expression) of every rule in `prometheus/alerts.yml`.
pub fn alert_rules() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_file("prometheus/alerts.yml")).unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let mut out = Vec::new();
    for group in doc["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let name = rule["alert"].as_str().or(rule["record"].as_str()).unwrap();
            out.push((name.to_owned(), rule["expr"].as_str().unwrap().to_owned()));
        }
    }
    out
}

/// Grafana's variables replaced by values that suit a 1 s scrape interval; selectors match everything.
pub fn expand_grafana_vars(expr: &str) -> String {
    ["$instance", "$domain", "$role"].into_iter().fold(
        expr.replace("$__rate_interval", "10s")
            .replace("$__range", "1m"),
        |e, var| e.replace(var, ".*"),
    )
}

/// Metric names (`pw_*`, `process_*`) an expression reads, with histogram suffixes removed.
pub fn metric_names(expr: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\b(?:pw|process)_[a-z0-9_]+").unwrap();
    re.find_iter(expr)
        .map(|m| {
            let name = m.as_str();
            ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|n| n.ends_with("_seconds")))
                .unwrap_or(name)
                .to_owned()
        })
        .collect()
}

/// A Prometheus process of the test.
pub struct Prometheus {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Prometheus {
    /// Starts `/usr/bin/prometheus` scraping every `(job, host:port)` each second and evaluating
    /// `prometheus/alerts.yml` each second; waits until it is ready.
    pub async fn start(targets: &[(&str, String)]) -> Self {
        let bin = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "/usr/bin/prometheus".into());
        assert!(
            Path::new(&bin).exists(),
            "{bin} not found; install it: apt-get install prometheus (scripts/test does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, scrape_config(targets)).unwrap();
        let port = free_port();
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let prom = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
            http: reqwest::Client::new(),
        };
        let ready = format!("{}/-/ready", prom.base);
        let http = prom.http.clone();
        eventually(Duration::from_secs(20), "prometheus to be ready", || {
            let (http, ready) = (http.clone(), ready.clone());
            async move {
                let r = http.get(ready).send().await.ok()?;
                r.status().is_success().then_some(())
            }
        })
        .await;
        prom
    }

    /// Its base URL (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The `data` of `GET /api/v1/query?query=expr`, or the error Prometheus gave.
    pub async fn query(&self, expr: &str) -> Result<Value, String> {
        self.api("query", &[("query", expr)]).await
    }

    /// The `data` of one API call (`rules`, `targets`, `query`...).
    pub async fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let r = self
            .http
            .get(format!("{}/api/v1/{path}", self.base))
            .query(params)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = r.json().await.map_err(|e| e.to_string())?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }

    /// The log Prometheus wrote (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

fn scrape_config(targets: &[(&str, String)]) -> String {
    let mut jobs: Vec<&str> = targets.iter().map(|(j, _)| *j).collect();
    jobs.sort_unstable();
    jobs.dedup();
    let mut out = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n",
        repo_file("prometheus/alerts.yml").display()
    );
    for job in jobs {
        let list: Vec<String> = targets
            .iter()
            .filter(|(j, _)| *j == job)
            .map(|(_, a)| format!("\"{a}\""))
            .collect();
        out.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        ));
    }
    out
}

/// The variables every fleet binary of a test fleet gets: the simulator's API, `redis_url`, its metrics
/// address, fast sampling, the demo main domain, JSON logs at info.
pub fn fleet_env(api: &str, redis_url: &str, metrics_addr: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PW_API_BASE_URL", api.to_owned()),
        ("PW_API_KEY", super::fetcher::SIM_KEY.to_owned()),
        ("PW_REDIS_URL", redis_url.to_owned()),
        ("PW_METRICS_ADDR", metrics_addr.to_owned()),
        ("PW_SAMPLE_INTERVAL_MS", "200".to_owned()),
        ("PW_MAIN_DOMAINS", "main.demo.test".to_owned()),
        ("PW_LOG", "info".to_owned()),
        ("PW_LOG_FORMAT", "json".to_owned()),
    ]
}

/// A binary of this package run by a test, with its stderr in a temp file; killed on drop.
pub struct Proc {
    child: std::sync::Mutex<Child>,
    name: String,
    log: tempfile::NamedTempFile,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Proc {
    /// Starts `bin` with only `PATH`, `HOME` and `envs` in its environment.
    pub fn spawn(name: &str, bin: impl AsRef<std::path::Path>, envs: &[(&str, String)]) -> Self {
        let bin = bin.as_ref();
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "HOME",
                std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()),
            )
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        Self {
            child: std::sync::Mutex::new(child),
            name: name.to_owned(),
            log,
        }
    }

    /// Panics with the process's log if it has exited.
    pub fn assert_running(&self) {
        if let Ok(Some(status)) = self.child.lock().unwrap().try_wait() {
            panic!("{} exited with {status}:\n{}", self.name, self.log_text());
        }
    }

    /// Its exit status, once it has exited.
    pub fn exited(&self) -> Option<std::process::ExitStatus> {
        self.child.lock().unwrap().try_wait().ok().flatten()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    /// SIGKILL (no clean-up of any kind), and reaps it.
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// What the process wrote to stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Waits until `GET http://addr/path` answers 200, checking that the process stays alive.
    pub async fn wait_http_ok(&self, addr: &str, path: &str) {
        let url = format!("http://{addr}{path}");
        let what = format!("{url} to answer 200 ({})", self.name);
        eventually(Duration::from_secs(30), &what, || {
            self.assert_running();
            let url = url.clone();
            async move {
                let r = reqwest::get(&url).await.ok()?;
                r.status().is_success().then_some(())
            }
        })
        .await;
    }
}

/// A `127.0.0.1:<port>` nobody listens on right now.
pub fn free_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

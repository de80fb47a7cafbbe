//! The deployable stack, checked without a Docker engine: docker-compose.yml, the Dockerfile and the
//! Kubernetes manifests parse; mounted files exist; environment names and values are ones the binaries
//! accept; ports agree with the binaries' defaults and with Prometheus; executors can be scaled.

use std::collections::BTreeSet;

use podcast_worker::config::{
    ExecutorConfig, FetcherConfig, MetricsSettings, Role, Source, all_vars,
};
use podcast_worker::streams::{GROUP, StreamKeys};
use podcast_worker::task::Site;
use pw_simulator::config::SimulatorConfig;
use serde_yaml_ng::Value;

use crate::helpers::compose::{DemoMail, port_of, service_env, strings, yaml, yaml_docs};
use crate::helpers::monitoring::repo_file;

const OUR_IMAGE: &str = "podcast-worker:local";

/// Variable names the binaries read: each name, and `<NAME>_FILE` for secrets.
fn known_vars() -> BTreeSet<String> {
    let fleet = all_vars().map(|v| (v.name, v.secret));
    let simulator = pw_simulator::config::VARS
        .iter()
        .map(|v| (v.name, v.secret));
    fleet
        .chain(simulator)
        .flat_map(|(name, secret)| {
            let file = secret.then(|| format!("{name}_FILE"));
            std::iter::once(name.to_owned()).chain(file)
        })
        .collect()
}

fn source(env: &std::collections::BTreeMap<String, String>) -> Source {
    Source::from_pairs(env.iter().map(|(k, v)| (k.clone(), v.clone())))
}

#[test]
fn compose_mounts_only_files_that_exist() {
    let compose = yaml("docker-compose.yml");
    let services = compose["services"].as_mapping().unwrap();
    let named: BTreeSet<&str> = compose["volumes"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    for (name, svc) in services {
        let name = name.as_str().unwrap();
        for volume in strings(&svc["volumes"]) {
            let source = volume.split(':').next().unwrap();
            if source.starts_with('.') || source.starts_with('/') {
                assert!(
                    repo_file(source).exists(),
                    "{name} mounts {source}, which does not exist"
                );
            } else {
                assert!(named.contains(source), "{name}: undeclared volume {source}");
            }
        }
        if svc["build"].as_str() == Some(".") {
            assert!(repo_file("Dockerfile").exists());
        }
    }
}

#[test]
fn compose_environment_names_and_values_are_accepted_by_the_binaries() {
    let compose = yaml("docker-compose.yml");
    let known = known_vars();
    for (name, svc) in compose["services"].as_mapping().unwrap() {
        if svc["image"].as_str() != Some(OUR_IMAGE) || svc["environment"].is_null() {
            continue;
        }
        let name = name.as_str().unwrap();
        for var in service_env(&compose, name).keys() {
            assert!(known.contains(var), "{name}: {var} is read by no binary");
        }
    }
    // The defaults form a configuration each binary accepts.
    FetcherConfig::from_source(&source(&service_env(&compose, "fetcher")))
        .unwrap_or_else(|e| panic!("fetcher: {e}"));
    ExecutorConfig::from_source(&source(&service_env(&compose, "executor")))
        .unwrap_or_else(|e| panic!("executor: {e}"));
    let sim_env = service_env(&compose, "simulator");
    SimulatorConfig::from_source(&pw_simulator::config::Source::from_pairs(sim_env))
        .unwrap_or_else(|e| panic!("simulator: {e}"));
}

#[test]
fn compose_ports_agree_with_the_binaries_and_prometheus() {
    let compose = yaml("docker-compose.yml");
    let prom = yaml("prometheus/prometheus.yml");
    let scrape_port = |job: &str| -> u16 {
        let jobs = prom["scrape_configs"].as_sequence().unwrap();
        let j = jobs.iter().find(|j| j["job_name"] == job).unwrap();
        match j["dns_sd_configs"][0]["port"].as_u64() {
            Some(p) => p as u16,
            None => port_of(j["static_configs"][0]["targets"][0].as_str().unwrap()),
        }
    };
    for (service, role) in [("fetcher", Role::Fetcher), ("executor", Role::Executor)] {
        let env = service_env(&compose, service);
        let port = port_of(&env["PW_METRICS_ADDR"]);
        let default = MetricsSettings::from_source(&Source::default(), role).unwrap();
        assert_eq!(
            port,
            default.addr.port(),
            "{service}: not the binary's default port"
        );
        assert_eq!(
            port,
            scrape_port(service),
            "{service}: Prometheus scrapes another port"
        );
        assert!(strings(&compose["services"][service]["expose"]).contains(&port.to_string()));
        let names = prom["scrape_configs"].as_sequence().unwrap();
        let job = names.iter().find(|j| j["job_name"] == service).unwrap();
        assert_eq!(
            strings(&job["dns_sd_configs"][0]["names"]),
            vec![service.to_owned()]
        );
    }
    let sim = service_env(&compose, "simulator");
    let sim_port = port_of(&sim["PW_SIM_LISTEN"]);
    assert_eq!(sim_port, scrape_port("simulator"));
    let api = &service_env(&compose, "executor")["PW_API_BASE_URL"];
    assert_eq!(
        api,
        &format!("http://simulator:{sim_port}{}", pw_simulator::BASE_PATH)
    );
    assert_eq!(
        service_env(&compose, "executor")["PW_API_KEY"],
        sim["PW_SIM_API_KEY"],
        "the demo workers and simulator must share the API key"
    );
}

#[test]
fn compose_executor_scales_and_redis_is_durable() {
    let compose = yaml("docker-compose.yml");
    let executor = &compose["services"]["executor"];
    assert!(
        executor["container_name"].is_null(),
        "a fixed name stops --scale"
    );
    assert!(executor["ports"].is_null(), "a host port stops --scale");
    assert_eq!(
        executor["init"].as_bool(),
        Some(true),
        "Chromium needs an init"
    );
    assert_eq!(
        compose["services"]["fetcher"]["deploy"]["replicas"].as_u64(),
        Some(2)
    );
    let redis = strings(&compose["services"]["redis"]["command"]).join(" ");
    for flag in [
        "--appendonly yes",
        "--appendfsync everysec",
        "--maxmemory-policy noeviction",
    ] {
        assert!(redis.contains(flag), "redis lacks {flag}: {redis}");
    }
    assert!(
        strings(&compose["services"]["redis"]["volumes"])
            .iter()
            .any(|v| v.ends_with(":/data"))
    );
    for demo in ["simulator", "mail", "demo-init"] {
        assert_eq!(
            strings(&compose["services"][demo]["profiles"]),
            vec!["demo"]
        );
    }
    for core in ["redis", "fetcher", "executor", "prometheus", "grafana"] {
        assert!(
            compose["services"][core]["profiles"].is_null(),
            "{core} must run by default"
        );
    }
    let grafana = strings(&compose["services"]["grafana"]["volumes"]);
    assert!(grafana.contains(&"./grafana/provisioning:/etc/grafana/provisioning:ro".to_owned()));
    let provider = yaml("grafana/provisioning/dashboards/provider.yml");
    let path = provider["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    assert!(grafana.contains(&format!("./grafana/dashboards:{path}:ro")));
}

#[test]
fn compose_dockerfile_is_multi_stage_with_chromium_and_an_init() {
    let text = std::fs::read_to_string(repo_file("Dockerfile")).unwrap();
    assert!(text.contains("FROM rust:1.95-bookworm AS build"));
    assert!(text.contains("FROM debian:bookworm-slim"));
    for needed in ["chromium", "tini", "ENTRYPOINT [\"/usr/bin/tini\""] {
        assert!(text.contains(needed), "Dockerfile lacks {needed}");
    }
    for line in text
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for src in &parts[1..parts.len() - 1] {
            assert!(repo_file(src).exists(), "Dockerfile copies missing {src}");
        }
    }
    for var in text
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, _)| k)
    {
        if var.starts_with("PW_") {
            assert!(known_vars().contains(var), "Dockerfile sets unknown {var}");
        }
    }
}

#[test]
fn compose_kubernetes_manifests_parse_and_scale_on_the_task_streams() {
    let dir = repo_file("deploy/kubernetes");
    let kustomization = yaml("deploy/kubernetes/kustomization.yaml");
    let known = known_vars();
    let mut kinds = Vec::new();
    for file in strings(&kustomization["resources"]) {
        assert!(
            dir.join(&file).exists(),
            "kustomization lists missing {file}"
        );
        for doc in yaml_docs(&format!("deploy/kubernetes/{file}")) {
            let kind = doc["kind"].as_str().unwrap().to_owned();
            if kind == "Deployment" {
                let c = &doc["spec"]["template"]["spec"]["containers"][0];
                for env in c["env"].as_sequence().unwrap() {
                    let var = env["name"].as_str().unwrap();
                    assert!(known.contains(var), "{file}: {var} is read by no binary");
                }
            }
            if kind == "ConfigMap" {
                for var in doc["data"].as_mapping().unwrap().keys() {
                    assert!(known.contains(var.as_str().unwrap()), "{file}: {var:?}");
                }
            }
            kinds.push((kind, doc));
        }
    }
    let find = |kind: &str, name: &str| {
        kinds
            .iter()
            .find(|(k, d)| k == kind && d["metadata"]["name"] == name)
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    let fetcher = find("Deployment", "podcast-worker-fetcher");
    assert_eq!(fetcher["spec"]["replicas"].as_u64(), Some(2));
    find("Deployment", "podcast-worker-executor");
    let scaled = find("ScaledObject", "podcast-worker-executor");
    assert_eq!(
        scaled["spec"]["scaleTargetRef"]["name"],
        "podcast-worker-executor"
    );
    let keys = StreamKeys::new("{pw}");
    let triggers = scaled["spec"]["triggers"].as_sequence().unwrap();
    for site in Site::ALL {
        for mode in ["lagCount", "pendingEntriesCount"] {
            assert!(
                triggers.iter().any(|t| t["type"] == "redis-streams"
                    && t["metadata"]["stream"] == keys.tasks(site).as_str()
                    && t["metadata"]["consumerGroup"] == GROUP
                    && !t["metadata"][mode].is_null()),
                "no {mode} trigger on {}",
                keys.tasks(site)
            );
        }
    }
    let _: &Value = &find("TriggerAuthentication", "podcast-worker-redis");
}

#[tokio::test]
async fn compose_demo_mail_server_serves_the_simulators_mailboxes_over_imaps() {
    use podcast_worker::config::MailSettings;
    use podcast_worker::mailbox::{MailLogin, MailQuery, Mailbox};

    let demo = DemoMail::start().await;
    let status = std::process::Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(demo.ca())
        .arg(demo.dir.path().join("certs/mail.pem"))
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the demo certificate does not chain to the demo CA"
    );
    demo.deliver(
        "u1.1@demo.test",
        "abcdefghijklmnop",
        "Confirm your account",
        "Your code is 424242.",
    );
    let mailbox = Mailbox::new(&MailSettings::for_test(demo.port, demo.ca())).unwrap();
    let query = MailQuery {
        from: Some("main.demo.test".into()),
        subject: Some("confirm".into()),
        to: Some("u1.1@demo.test".into()),
        since: std::time::SystemTime::UNIX_EPOCH,
        pattern: regex::Regex::new(r"code is (\d{6})").unwrap(),
    };
    let login = |password: &str| MailLogin {
        user: "u1.1@demo.test".into(),
        password: password.to_owned().into(),
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let found = mailbox
        .wait_for(&login("abcd efgh ijkl mnop"), &query, deadline)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", demo.log()));
    assert_eq!(found.value, "424242");
    let refused = mailbox.wait_for(&login("wrong"), &query, deadline).await;
    assert!(
        refused.unwrap_err().is_permanent(),
        "a wrong password must be refused"
    );
}

//! The compose stack's moving parts, run for real without a Docker engine: deploy/compose/make-secrets.sh,
//! Redis started by deploy/compose/redis-start.sh with the compose flags, the binaries' configuration
//! parsers on each service's environment (production and demo), mounts and secrets that exist, ports that
//! agree with Prometheus, and the demo mail server.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use podcast_worker::config::{ExecutorConfig, FetcherConfig, MetricsSettings, Role, Source};
use pw_simulator::config::SimulatorConfig;
use serde_yaml_ng::Value;

use crate::helpers::compose::{DemoMail, port_of, service_env, stack, strings, yaml};
use crate::helpers::compose_policy::{
    BASE, OUR_IMAGE, demo, known_vars, production_env, read_repo, services,
};
use crate::helpers::monitoring::repo_file;

/// Secret files a stack's services read, by secret name: the `file:` of each declared secret.
fn secret_files(compose: &Value, base: &Path) -> BTreeMap<String, PathBuf> {
    compose["secrets"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let file = v["file"].as_str().unwrap();
            (k.as_str().unwrap().to_owned(), base.join(file))
        })
        .collect()
}

/// A service's environment as the binaries see it in the container: `/run/secrets/<name>` read from
/// `secrets` (name → file on this machine).
fn container_source(compose: &Value, service: &str, secrets: &BTreeMap<String, PathBuf>) -> Source {
    Source::from_pairs(container_env(compose, service, secrets))
}

/// A service's environment as its container sees it: `/run/secrets/<name>` mapped to the local secret file.
fn container_env(
    compose: &Value,
    service: &str,
    secrets: &BTreeMap<String, PathBuf>,
) -> Vec<(String, String)> {
    let env = service_env(compose, service);
    env.into_iter()
        .map(|(k, v)| {
            let v = match v.strip_prefix("/run/secrets/") {
                Some(name) => secrets[name].display().to_string(),
                None => v,
            };
            (k, v)
        })
        .collect()
}

/// Runs deploy/compose/make-secrets.sh in `dir` with `api_key` on stdin.
fn make_secrets(dir: &Path, api_key: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new("sh")
        .arg(repo_file("deploy/compose/make-secrets.sh"))
        .arg(dir.join("secrets"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(api_key.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn compose_make_secrets_writes_every_secret_once_and_prints_none() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = make_secrets(dir.path(), "the-manager-key");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secrets = dir.path().join("secrets");
    let declared = secret_files(&yaml(BASE), dir.path());
    for (name, path) in &declared {
        assert!(path.exists(), "make-secrets.sh did not write {name}");
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{name}");
    }
    let mode = std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the secrets directory must be private");
    let read = |f: &str| std::fs::read_to_string(secrets.join(f)).unwrap();
    let password = read("redis_password");
    assert_eq!(
        read("redis_url").trim(),
        format!("redis://:{}@redis:6379", password.trim())
    );
    assert_eq!(read("api_key").trim(), "the-manager-key");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!printed.contains(password.trim()), "a secret was printed");
    // Run again: nothing is replaced (a new Redis password would lock the workers out).
    let again = make_secrets(dir.path(), "");
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(read("redis_password"), password);
    // No API key on stdin and none on disk: refused.
    let other = tempfile::tempdir().unwrap();
    let refused = make_secrets(other.path(), "");
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn compose_binaries_accept_the_production_and_demo_environments() {
    let dir = tempfile::tempdir().unwrap();
    let out = make_secrets(dir.path(), "the-manager-key");
    assert!(out.status.success());
    let prod = stack(&[BASE], &production_env()).unwrap();
    let prod_secrets = secret_files(&prod, dir.path());
    let demo = demo();
    let demo_secrets = secret_files(&demo, &repo_file("."));
    let known = known_vars();
    for (compose, secrets) in [(&prod, &prod_secrets), (&demo, &demo_secrets)] {
        for (name, svc) in services(compose) {
            if svc["image"].as_str() != Some(OUR_IMAGE) {
                continue;
            }
            for var in service_env(compose, &name).keys() {
                assert!(known.contains(var), "{name}: {var} is read by no binary");
            }
        }
        let src = |svc| container_source(compose, svc, secrets);
        FetcherConfig::from_source(&src("fetcher")).unwrap_or_else(|e| panic!("fetcher: {e}"));
        ExecutorConfig::from_source(&src("executor")).unwrap_or_else(|e| panic!("executor: {e}"));
    }
    let sim_env = container_env(&demo, "simulator", &demo_secrets);
    SimulatorConfig::from_source(&pw_simulator::config::Source::from_pairs(sim_env))
        .unwrap_or_else(|e| panic!("simulator: {e}"));
    let demo_env = service_env(&demo, "executor");
    assert_eq!(demo_env["PW_IMAP_CA_FILE"], "/demo-certs/ca.pem");
    assert!(!service_env(&prod, "executor").contains_key("PW_IMAP_CA_FILE"));
}

#[test]
fn compose_files_mount_only_what_exists_and_declare_what_they_use() {
    for compose in [stack(&[BASE], &production_env()).unwrap(), demo()] {
        let named: BTreeSet<&str> = compose["volumes"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap())
            .collect();
        for (name, svc) in services(&compose) {
            for volume in strings(&svc["volumes"]) {
                let source = volume.split(':').next().unwrap();
                if source.starts_with('.') || source.starts_with('/') {
                    assert!(repo_file(source).exists(), "{name} mounts missing {source}");
                } else {
                    assert!(named.contains(source), "{name}: undeclared volume {source}");
                }
            }
            for secret in strings(&svc["secrets"]) {
                assert!(
                    !compose["secrets"][secret.as_str()].is_null(),
                    "{name}: undeclared secret {secret}"
                );
            }
        }
    }
    for (name, path) in secret_files(&demo(), &repo_file(".")) {
        assert!(path.exists(), "demo secret {name} missing");
    }
    let gitignore = read_repo(".gitignore").unwrap();
    assert!(
        gitignore.lines().any(|l| l == "/secrets/"),
        "./secrets/ must be gitignored"
    );
}

#[test]
fn compose_ports_agree_with_the_binaries_and_prometheus() {
    let compose = demo();
    let prom = yaml("prometheus/prometheus.yml");
    let jobs = prom["scrape_configs"].as_sequence().unwrap();
    let job = |name: &str| jobs.iter().find(|j| j["job_name"] == name).unwrap();
    for (service, role) in [("fetcher", Role::Fetcher), ("executor", Role::Executor)] {
        let port = port_of(&service_env(&compose, service)["PW_METRICS_ADDR"]);
        let default = MetricsSettings::from_source(&Source::default(), role).unwrap();
        assert_eq!(
            port,
            default.addr.port(),
            "{service}: not the binary's default port"
        );
        let sd = &job(service)["dns_sd_configs"][0];
        assert_eq!(
            sd["port"].as_u64(),
            Some(u64::from(port)),
            "{service}: Prometheus scrapes another port"
        );
        assert_eq!(strings(&sd["names"]), vec![service.to_owned()]);
        assert!(strings(&compose["services"][service]["expose"]).contains(&port.to_string()));
    }
    let sim = service_env(&compose, "simulator");
    let sim_port = port_of(&sim["PW_SIM_LISTEN"]);
    let target = job("simulator")["static_configs"][0]["targets"][0]
        .as_str()
        .unwrap();
    assert_eq!(sim_port, port_of(target));
    assert_eq!(
        service_env(&compose, "executor")["PW_API_BASE_URL"],
        format!("http://simulator:{sim_port}{}", pw_simulator::BASE_PATH)
    );
    assert_eq!(
        sim["PW_SIM_API_KEY_FILE"],
        service_env(&compose, "executor")["PW_API_KEY_FILE"]
    );
    let grafana = strings(&compose["services"]["grafana"]["volumes"]);
    assert!(grafana.contains(&"./grafana/provisioning:/etc/grafana/provisioning:ro".to_owned()));
    let provider = yaml("grafana/provisioning/dashboards/provider.yml");
    let path = provider["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    assert!(grafana.contains(&format!("./grafana/dashboards:{path}:ro")));
    assert_eq!(
        compose["services"]["fetcher"]["deploy"]["replicas"].as_u64(),
        Some(2)
    );
}

/// Redis started the way the compose file starts it: deploy/compose/redis-start.sh with the `command:`
/// flags, here on a free port with a local redis-server. Killed on drop.
struct ComposeRedis {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for ComposeRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn compose_redis_demands_the_secret_password_and_never_evicts() {
    let compose = stack(&[BASE], &production_env()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let password = "s3cret-from-the-file";
    std::fs::write(dir.path().join("redis_password"), format!("{password}\n")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("sh")
        .arg(repo_file("deploy/compose/redis-start.sh"))
        .args(strings(&compose["services"]["redis"]["command"]))
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
        .arg(dir.path())
        .env("REDIS_PASSWORD_FILE", dir.path().join("redis_password"))
        .env("REDIS_AUTH_CONF", dir.path().join("auth.conf"))
        .env("REDIS_ENTRYPOINT", "env")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("sh");
    let redis = ComposeRedis {
        child,
        port,
        _dir: dir,
    };
    let url = |auth: &str| format!("redis://{auth}127.0.0.1:{}", redis.port);
    let mut conn =
        crate::helpers::eventually(std::time::Duration::from_secs(10), "redis to start", || {
            let url = url(&format!(":{password}@"));
            async move {
                let client = redis::Client::open(url).ok()?;
                client.get_multiplexed_async_connection().await.ok()
            }
        })
        .await;
    let config = |key: &'static str| redis::cmd("CONFIG").arg("GET").arg(key).clone();
    for (key, want) in [
        ("maxmemory-policy", "noeviction"),
        ("appendonly", "yes"),
        ("appendfsync", "everysec"),
        ("maxmemory", "536870912"),
    ] {
        let got: Vec<String> = config(key).query_async(&mut conn).await.unwrap();
        assert_eq!(got[1], want, "{key}");
    }
    let anonymous = redis::Client::open(url("")).unwrap();
    let refused = match anonymous.get_multiplexed_async_connection().await {
        Err(e) => e,
        Ok(mut plain) => redis::cmd("PING")
            .query_async::<String>(&mut plain)
            .await
            .expect_err("Redis answered without the password"),
    };
    assert!(refused.to_string().contains("NOAUTH"), "{refused}");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", redis.child.id())).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains(password),
        "the password is on redis-server's command line"
    );
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

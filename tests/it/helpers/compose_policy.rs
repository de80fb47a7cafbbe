//! What production needs of the compose stack, as a function over the files: `compose_policy` returns one
//! line per violated rule (secrets as files, no demo value, Redis password and limits, memory limits, log
//! rotation, UIs on loopback, the executor's drain and memory headroom, the image's build context). Used by
//! tests/it/compose.rs, which also shows each rule rejecting a file broken on purpose.

use std::collections::{BTreeMap, BTreeSet};

use crate::helpers::every_var as all_vars;
use serde_yaml_ng::Value;

use super::compose::{env_file, interpolate_tree, mebibytes, seconds, service_env, stack, strings};
use super::monitoring::repo_file;

pub const OUR_IMAGE: &str = "podcast-worker:local";
pub const BASE: &str = "docker-compose.yml";
pub const DEMO: &str = "docker-compose.demo.yml";
pub const DEMO_ENV: &str = "deploy/compose/demo.env";
/// The services `docker compose up` starts; everything else is the demo's.
pub const CORE: [&str; 5] = ["redis", "fetcher", "executor", "prometheus", "grafana"];
/// Memory of the executor and a fresh browser beside the one being replaced (BENCHMARKS.md, "Browser
/// registrations": ~450 MB for the executor and one browser).
pub const BROWSER_SPARE_MB: u64 = 450;
/// Time after the drain for the last reports and Chromium's shutdown.
pub const STOP_MARGIN_SECS: u64 = 30;
/// Strings only the demo uses.
pub const DEMO_MARKERS: [&str; 4] = ["demo", "simulator", "/demo-certs", "ZGVtby"];

/// The `.env` of docs/operations.md, including the empty `PW_IMAP_CA_FILE=` that once became a demo path.
pub fn production_env() -> BTreeMap<String, String> {
    [
        (
            "PW_API_BASE_URL",
            "https://manager.example/api/v1/podcast_account",
        ),
        ("PW_IMAP_CA_FILE", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub fn demo() -> Value {
    stack(&[BASE, DEMO], &env_file(DEMO_ENV)).unwrap()
}

/// Names the binaries read: each name, and `<NAME>_FILE` for secrets.
pub fn known_vars() -> BTreeSet<String> {
    all_vars()
        .flat_map(|v| {
            let file = v.secret.then(|| format!("{}_FILE", v.name));
            std::iter::once(v.name.to_owned()).chain(file)
        })
        .collect()
}

/// A value set in `env`, else the binaries' default.
pub fn setting(env: &BTreeMap<String, String>, name: &str) -> Option<u64> {
    let default = all_vars().find(|v| v.name == name).and_then(|v| v.default);
    env.get(name).map(String::as_str).or(default)?.parse().ok()
}

pub fn services(compose: &Value) -> Vec<(String, &Value)> {
    compose["services"]
        .as_mapping()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), v))
        .collect()
}

pub fn memory_limit(svc: &Value) -> Option<u64> {
    let limit = &svc["deploy"]["resources"]["limits"]["memory"];
    svc["mem_limit"]
        .as_str()
        .or(limit.as_str())
        .and_then(mebibytes)
}

/// What production needs of `raw` (docker-compose.yml as written), the Dockerfile and .dockerignore; one
/// line per violation. `read` gives a repository file's text (the scripts the compose file mounts).
pub fn compose_policy(
    raw: &Value,
    dockerfile: &str,
    dockerignore: &str,
    read: &dyn Fn(&str) -> Option<String>,
) -> Vec<String> {
    let mut v = Vec::new();
    match interpolate_tree(raw, &BTreeMap::new()) {
        Ok(_) => {
            v.push("starts without PW_API_BASE_URL: it must be ${PW_API_BASE_URL:?...}".into())
        }
        Err(e) if !e.contains("PW_API_BASE_URL") => v.push(format!("unexpected refusal: {e}")),
        Err(_) => {}
    }
    let compose = match interpolate_tree(raw, &production_env()) {
        Ok(c) => c,
        Err(e) => return vec![format!("the documented .env does not resolve: {e}")],
    };
    no_demo_values(&compose, &mut v);
    secrets_are_files(&compose, &mut v);
    for (name, svc) in services(&compose) {
        resources_and_logs(&name, svc, &mut v);
    }
    redis_policy(&compose["services"]["redis"], read, &mut v);
    executor_policy(&compose["services"]["executor"], &mut v);
    let grafana = service_env(&compose, "grafana");
    if !grafana
        .get("GF_SECURITY_ADMIN_PASSWORD__FILE")
        .is_some_and(|p| p.starts_with("/run/secrets/"))
    {
        v.push("grafana: the admin password must come from a secret (GF_SECURITY_ADMIN_PASSWORD__FILE)".into());
    }
    image_policy(dockerfile, dockerignore, &mut v);
    v
}

pub fn no_demo_values(compose: &Value, v: &mut Vec<String>) {
    let names: BTreeSet<String> = services(compose).into_iter().map(|(n, _)| n).collect();
    let core: BTreeSet<String> = CORE.iter().map(|s| s.to_string()).collect();
    if names != core {
        v.push(format!(
            "production services must be {core:?}, not {names:?}"
        ));
    }
    let text = serde_yaml_ng::to_string(compose).unwrap();
    for marker in DEMO_MARKERS {
        if text.contains(marker) {
            v.push(format!("a demo value ({marker}) in the production file"));
        }
    }
    for (name, svc) in services(compose) {
        let env = service_env(compose, &name);
        for (var, bad) in [
            ("PW_IMAGE_ALLOW_PRIVATE", "true"),
            ("GF_AUTH_ANONYMOUS_ENABLED", "true"),
        ] {
            if env.get(var).is_some_and(|x| x == bad) {
                v.push(format!("{name}: {var}={bad} is for the demo only"));
            }
        }
        if env.get("PW_IMAP_CA_FILE").is_some_and(|x| !x.is_empty()) {
            v.push(format!("{name}: PW_IMAP_CA_FILE= in .env must stay empty"));
        }
        if !svc["profiles"].is_null() {
            v.push(format!("{name}: profiles belong in the demo override"));
        }
    }
}

pub fn secrets_are_files(compose: &Value, v: &mut Vec<String>) {
    let secret_vars: BTreeSet<&str> = all_vars().filter(|x| x.secret).map(|x| x.name).collect();
    let secretish = regex::Regex::new(r"(?i)(PASSWORD|SECRET|TOKEN|_KEY)$").unwrap();
    let url_login = regex::Regex::new(r"://[^/\s]*:[^/\s]*@").unwrap();
    let declared = &compose["secrets"];
    for (name, svc) in services(compose) {
        let mounted = strings(&svc["secrets"]);
        for (var, value) in service_env(compose, &name) {
            if secret_vars.contains(var.as_str()) || secretish.is_match(&var) {
                v.push(format!(
                    "{name}: {var} is a secret in the environment; use {var}_FILE"
                ));
            }
            if url_login.is_match(&value) {
                v.push(format!("{name}: {var} carries a password in a URL"));
            }
            let is_secret_file = var.ends_with("__FILE")
                || var
                    .strip_suffix("_FILE")
                    .is_some_and(|base| secret_vars.contains(base));
            if !is_secret_file {
                continue;
            }
            let Some(secret) = value.strip_prefix("/run/secrets/") else {
                v.push(format!(
                    "{name}: {var}={value} is not a compose secret (/run/secrets/...)"
                ));
                continue;
            };
            if !mounted.iter().any(|m| m == secret) {
                v.push(format!(
                    "{name}: {var} reads secret {secret}, not given to the service"
                ));
            }
            if declared[secret]["file"].as_str().is_none() {
                v.push(format!(
                    "{name}: secret {secret} is not declared with a file"
                ));
            }
        }
    }
}

pub fn resources_and_logs(name: &str, svc: &Value, v: &mut Vec<String>) {
    if memory_limit(svc).is_none() {
        v.push(format!("{name}: no memory limit (mem_limit)"));
    }
    let logging = &svc["logging"];
    if logging["driver"] != "json-file"
        || logging["options"]["max-size"].is_null()
        || logging["options"]["max-file"].is_null()
    {
        v.push(format!(
            "{name}: logs not rotated (json-file with max-size and max-file)"
        ));
    }
    for port in strings(&svc["ports"]) {
        if !port.starts_with("127.0.0.1:") {
            v.push(format!("{name}: port {port} listens beyond 127.0.0.1"));
        }
    }
}

pub fn redis_policy(redis: &Value, read: &dyn Fn(&str) -> Option<String>, v: &mut Vec<String>) {
    let command = strings(&redis["command"]).join(" ");
    for flag in [
        "--appendonly yes",
        "--appendfsync everysec",
        "--maxmemory-policy noeviction",
    ] {
        if !command.contains(flag) {
            v.push(format!("redis: {flag} missing"));
        }
    }
    let args = strings(&redis["command"]);
    let maxmemory = args
        .iter()
        .position(|a| a == "--maxmemory")
        .and_then(|i| args.get(i + 1))
        .and_then(|m| mebibytes(m))
        .filter(|m| *m > 0);
    match (maxmemory, memory_limit(redis)) {
        (None, _) => v.push("redis: no --maxmemory, so noeviction never applies".into()),
        (Some(max), Some(limit)) if limit * 2 < max * 3 => {
            v.push(format!("redis: mem_limit {limit} MiB leaves no room above maxmemory {max} MiB for the AOF rewrite"));
        }
        _ => {}
    }
    let secrets = strings(&redis["secrets"]);
    let script = strings(&redis["entrypoint"])
        .iter()
        .find_map(|e| {
            strings(&redis["volumes"]).into_iter().find_map(|m| {
                let (src, dst) = m.split_once(':')?;
                dst.starts_with(e.as_str()).then(|| read(src)).flatten()
            })
        })
        .unwrap_or_default();
    let from_secret = secrets
        .iter()
        .any(|s| script.contains(&format!("/run/secrets/{s}")));
    if !(command.contains("--requirepass") || script.contains("requirepass") && from_secret) {
        v.push("redis: no password (requirepass from a secret)".into());
    }
}

pub fn executor_policy(executor: &Value, v: &mut Vec<String>) {
    let env: BTreeMap<String, String> = executor["environment"]
        .as_mapping()
        .into_iter()
        .flatten()
        .filter_map(|(k, x)| {
            let x = x
                .as_str()
                .map(str::to_owned)
                .or_else(|| x.as_u64().map(|n| n.to_string()));
            Some((k.as_str()?.to_owned(), x?))
        })
        .collect();
    if executor["init"].as_bool() != Some(true) {
        v.push("executor: needs init: true (Chromium's orphans)".into());
    }
    let pss = setting(&env, "PW_BROWSER_MAX_PSS_MB").unwrap_or(0);
    if memory_limit(executor).is_none_or(|l| l < pss + BROWSER_SPARE_MB) {
        v.push(format!(
            "executor: memory limit under PW_BROWSER_MAX_PSS_MB ({pss}) + {BROWSER_SPARE_MB} MiB"
        ));
    }
    let grace = setting(&env, "PW_SHUTDOWN_GRACE_SECS").unwrap_or(0);
    let timeout = setting(&env, "PW_TASK_TIMEOUT_SECS").unwrap_or(u64::MAX);
    if grace < timeout {
        v.push(format!("executor: PW_SHUTDOWN_GRACE_SECS {grace} cuts off registrations (PW_TASK_TIMEOUT_SECS {timeout})"));
    }
    let stop = executor["stop_grace_period"]
        .as_str()
        .and_then(seconds)
        .unwrap_or(10);
    if stop < grace + STOP_MARGIN_SECS {
        v.push(format!(
            "executor: stop_grace_period {stop} s under the drain {grace} s + {STOP_MARGIN_SECS} s"
        ));
    }
    if !executor["ports"].is_null() || !executor["container_name"].is_null() {
        v.push("executor: a host port or container_name stops --scale".into());
    }
}

pub fn image_policy(dockerfile: &str, dockerignore: &str, v: &mut Vec<String>) {
    let ignored: BTreeSet<&str> = dockerignore.lines().map(str::trim).collect();
    for needed in [".env", "secrets"] {
        if !ignored.contains(needed) {
            v.push(format!(
                ".dockerignore lets {needed} into the build context"
            ));
        }
    }
    let installs = |bin: &str| {
        dockerfile
            .lines()
            .any(|l| l.contains(&format!("target/release/{bin}")) && l.contains("/out"))
    };
    if !installs("recipe-check") || !dockerfile.contains("COPY --from=build /out/ /usr/local/bin/")
    {
        v.push("Dockerfile: recipe-check is not in the image".into());
    }
}

pub fn read_repo(rel: &str) -> Option<String> {
    std::fs::read_to_string(repo_file(rel)).ok()
}

pub fn real_policy(raw: &Value) -> Vec<String> {
    compose_policy(
        raw,
        &read_repo("Dockerfile").unwrap(),
        &read_repo(".dockerignore").unwrap(),
        &read_repo,
    )
}

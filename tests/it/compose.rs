//! The compose stack, checked without a Docker engine: the production file meets
//! `helpers::compose_policy` and each of its rules rejects a file broken on purpose; the image installs every
//! binary. Scripts, environments and mounts: compose_stack.rs. docker-compose 1.29's `config`:
//! scripts/deploy-check.

use serde_yaml_ng::Value;

use crate::helpers::compose::{strings, yaml};
use crate::helpers::compose_policy::{BASE, compose_policy, known_vars, read_repo, real_policy};
use crate::helpers::monitoring::repo_file;

#[test]
fn compose_production_file_meets_the_policy() {
    let violations = real_policy(&yaml(BASE));
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn compose_policy_rejects_each_production_mistake() {
    type Mutation = fn(&mut Value);
    let cases: &[(&str, Mutation)] = &[
        ("starts without PW_API_BASE_URL", |c| {
            let defaulted: Value = "${PW_API_BASE_URL:-https://manager.example/api}".into();
            c["x-worker-env"]["PW_API_BASE_URL"] = defaulted.clone();
            for svc in ["fetcher", "executor"] {
                c["services"][svc]["environment"]["PW_API_BASE_URL"] = defaulted.clone();
            }
        }),
        ("PW_OUTBOX_KEY is a secret in the environment", |c| {
            c["services"]["executor"]["environment"]["PW_OUTBOX_KEY"] = "x".into();
        }),
        ("PW_REDIS_URL carries a password in a URL", |c| {
            c["services"]["executor"]["environment"]["PW_REDIS_URL"] =
                "redis://:pw@redis:6379".into();
        }),
        ("reads secret outbox_key, not given", |c| {
            c["services"]["executor"]["secrets"] =
                Value::Sequence(vec!["api_key".into(), "redis_url".into()]);
        }),
        ("a demo value (/demo-certs)", |c| {
            c["services"]["executor"]["environment"]["PW_IMAP_CA_FILE"] =
                "${PW_IMAP_CA_FILE:-/demo-certs/ca.pem}".into();
        }),
        ("PW_IMAGE_ALLOW_PRIVATE=true is for the demo only", |c| {
            c["services"]["executor"]["environment"]["PW_IMAGE_ALLOW_PRIVATE"] = "true".into();
        }),
        ("production services must be", |c| {
            c["services"]["mail"] = c["services"]["redis"].clone();
        }),
        ("redis: no --maxmemory", |c| {
            let cmd = strings(&c["services"]["redis"]["command"]);
            let i = cmd.iter().position(|a| a == "--maxmemory").unwrap();
            let kept: Vec<Value> = cmd
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i && *j != i + 1)
                .map(|(_, a)| a.as_str().into())
                .collect();
            c["services"]["redis"]["command"] = Value::Sequence(kept);
        }),
        ("redis: --maxmemory-policy noeviction missing", |c| {
            let cmd: Vec<Value> = strings(&c["services"]["redis"]["command"])
                .iter()
                .map(|a| a.replace("noeviction", "allkeys-lru").into())
                .collect();
            c["services"]["redis"]["command"] = Value::Sequence(cmd);
        }),
        ("redis: no password", |c| {
            c["services"]["redis"]["secrets"] = Value::Sequence(vec![]);
        }),
        ("grafana: no memory limit", |c| {
            c["services"]["grafana"]
                .as_mapping_mut()
                .unwrap()
                .remove("mem_limit");
        }),
        ("prometheus: logs not rotated", |c| {
            c["services"]["prometheus"]
                .as_mapping_mut()
                .unwrap()
                .remove("logging");
        }),
        ("grafana: port 3000:3000 listens beyond 127.0.0.1", |c| {
            c["services"]["grafana"]["ports"] = Value::Sequence(vec!["3000:3000".into()]);
        }),
        ("grafana: the admin password must come from a secret", |c| {
            c["services"]["grafana"]["environment"]
                .as_mapping_mut()
                .unwrap()
                .remove("GF_SECURITY_ADMIN_PASSWORD__FILE");
        }),
        ("executor: memory limit under PW_BROWSER_MAX_PSS_MB", |c| {
            c["services"]["executor"]["mem_limit"] = "1g".into();
        }),
        (
            "executor: PW_SHUTDOWN_GRACE_SECS 60 cuts off registrations",
            |c| {
                c["services"]["executor"]["environment"]["PW_SHUTDOWN_GRACE_SECS"] = 60.into();
            },
        ),
        ("executor: stop_grace_period 90 s under the drain", |c| {
            c["services"]["executor"]["stop_grace_period"] = "90s".into();
        }),
        ("executor: needs init: true", |c| {
            c["services"]["executor"]["init"] = false.into();
        }),
    ];
    for (expected, mutate) in cases {
        let mut raw = yaml(BASE);
        mutate(&mut raw);
        let violations = real_policy(&raw);
        assert!(
            violations.iter().any(|v| v.contains(expected)),
            "a file with \"{expected}\" passed: {violations:#?}"
        );
    }
    let raw = yaml(BASE);
    let dockerfile = read_repo("Dockerfile").unwrap();
    let ignore = read_repo(".dockerignore").unwrap();
    let without_env = ignore.replace(".env\n", "");
    let v = compose_policy(&raw, &dockerfile, &without_env, &read_repo);
    assert!(v.iter().any(|x| x.contains("lets .env into")), "{v:#?}");
    let v = compose_policy(
        &raw,
        &dockerfile.replace(" target/release/recipe-check", ""),
        &ignore,
        &read_repo,
    );
    assert!(
        v.iter()
            .any(|x| x.contains("recipe-check is not in the image")),
        "{v:#?}"
    );
}

#[test]
fn compose_dockerfile_is_multi_stage_with_chromium_and_an_init() {
    let text = read_repo("Dockerfile").unwrap();
    assert!(text.contains("FROM rust:1.95-bookworm AS build"));
    assert!(text.contains("FROM debian:bookworm-slim"));
    for needed in ["chromium", "tini", "ENTRYPOINT [\"/usr/bin/tini\""] {
        assert!(text.contains(needed), "Dockerfile lacks {needed}");
    }
    // `--version` reads PODCAST_WORKER_COMMIT at compile time: the build argument precedes the cargo build.
    let arg = text
        .find("ARG PODCAST_WORKER_COMMIT")
        .expect("Dockerfile lacks ARG PODCAST_WORKER_COMMIT");
    let build = text
        .find("cargo build --release")
        .expect("Dockerfile builds nothing");
    assert!(
        arg < build,
        "ARG PODCAST_WORKER_COMMIT comes after the cargo build"
    );
    for line in text
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for src in &parts[1..parts.len() - 1] {
            assert!(repo_file(src).exists(), "Dockerfile copies missing {src}");
        }
    }
    let bins = toml_bins();
    for bin in &bins {
        assert!(
            text.contains(&format!("target/release/{bin}")),
            "the image lacks {bin}"
        );
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

/// The `[[bin]]` names of Cargo.toml.
fn toml_bins() -> Vec<String> {
    let manifest = read_repo("Cargo.toml").unwrap();
    let re = regex::Regex::new(r#"\[\[bin\]\]\s*name\s*=\s*"([^"]+)""#).unwrap();
    let bins: Vec<String> = re
        .captures_iter(&manifest)
        .map(|c| c[1].to_owned())
        .collect();
    assert!(bins.len() >= 3, "no [[bin]] found in Cargo.toml");
    bins
}

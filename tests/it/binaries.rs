//! Every service binary, run for real: `--version` and `--help` on stdout with exit 0, one exit-code
//! convention (2 for configuration, 1 for a runtime failure), configuration errors naming the variable for
//! empty or malformed values, and unknown `PW_*` names warned about with the closest known one.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BINARIES: &[(&str, &str)] = &[
    ("fetcher", env!("CARGO_BIN_EXE_fetcher")),
    ("executor", env!("CARGO_BIN_EXE_executor")),
    ("recipe-check", env!("CARGO_BIN_EXE_recipe-check")),
];

/// A binary, its environment and the variable its configuration error must name.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

const OUTBOX_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn run(path: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(path)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("binary runs");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn binaries_print_version_and_help_on_stdout_and_exit_0() {
    for (name, path) in BINARIES {
        for flag in ["--version", "-V"] {
            let (code, stdout, stderr) = run(path, &[flag], &[]);
            assert_eq!(code, 0, "{name} {flag}: {stderr}");
            assert!(
                stdout.starts_with(&format!("{name} {} (commit ", env!("CARGO_PKG_VERSION"))),
                "{name} {flag}: {stdout}"
            );
        }
        let (code, stdout, stderr) = run(path, &["--help"], &[]);
        assert_eq!(code, 0, "{name} --help: {stderr}");
        assert!(stdout.contains("Exit codes"), "{name} --help: {stdout}");
        assert!(stderr.is_empty(), "{name} --help wrote to stderr: {stderr}");
    }
}

#[test]
fn binaries_refuse_empty_or_malformed_values_with_exit_2_naming_the_variable() {
    let fetcher = env!("CARGO_BIN_EXE_fetcher");
    let executor = env!("CARGO_BIN_EXE_executor");
    let key = ("PW_API_KEY", "k-secret-1");
    let cases: &[Case] = &[
        (fetcher, &[key, ("PW_API_BASE_URL", "")], "PW_API_BASE_URL"),
        (
            fetcher,
            &[key, ("PW_API_BASE_URL", "not a url")],
            "PW_API_BASE_URL",
        ),
        (fetcher, &[key, ("PW_REDIS_URL", "")], "PW_REDIS_URL"),
        (fetcher, &[key, ("PW_FETCH_LIMIT", "")], "PW_FETCH_LIMIT"),
        (fetcher, &[key, ("PW_FETCH_LIMIT", "ten")], "PW_FETCH_LIMIT"),
        (
            fetcher,
            &[key, ("PW_CLAIM_IDLE_MS", " ")],
            "PW_CLAIM_IDLE_MS",
        ),
        (fetcher, &[("PW_API_KEY", "")], "PW_API_KEY"),
        (executor, &[key, ("PW_OUTBOX_KEY", "")], "PW_OUTBOX_KEY"),
        (
            executor,
            &[key, ("PW_OUTBOX_KEY", OUTBOX_KEY), ("PW_CONCURRENCY", "")],
            "PW_CONCURRENCY",
        ),
    ];
    for (path, env, var) in cases {
        let (code, _, stderr) = run(path, &[], env);
        assert_eq!(code, 2, "{env:?}: {stderr}");
        assert!(
            stderr.contains("configuration error") && stderr.contains(var),
            "{env:?}: {stderr}"
        );
        assert!(!stderr.contains("k-secret-1"), "{stderr}");
    }
    let (code, _, stderr) = run(fetcher, &["--verbose"], &[]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = run(env!("CARGO_BIN_EXE_recipe-check"), &["only-one-arg"], &[]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn binaries_exit_1_when_start_up_fails_at_run_time() {
    // A valid configuration, but nothing listens where Redis should be.
    let env = [
        ("PW_API_KEY", "k"),
        ("PW_REDIS_URL", "redis://127.0.0.1:1"),
        ("PW_METRICS_ADDR", "127.0.0.1:0"),
    ];
    let (code, _, stderr) = run(env!("CARGO_BIN_EXE_fetcher"), &[], &env);
    assert_eq!(code, 1, "{stderr}");
}

#[test]
fn binaries_warn_about_unknown_variables_with_the_closest_name() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fetcher"))
        .env_clear()
        .envs([
            ("PW_API_KEY", "k"),
            ("PW_API_BASE_URL", "http://127.0.0.1:9/api"),
            ("PW_REDIS_URL", "redis://127.0.0.1:1"),
            ("PW_METRICS_ADDR", "127.0.0.1:0"),
            ("PW_LOG_FORMAT", "json"),
            ("PW_MAX_BACKLOGG", "5"),
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("fetcher starts");
    let stderr = child.stderr.take().expect("stderr");
    let started = Instant::now();
    let mut seen = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("stderr line");
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("PW_MAX_BACKLOGG") || started.elapsed() > Duration::from_secs(20) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.contains("unknown configuration variable PW_MAX_BACKLOGG")
            && seen.contains("did you mean PW_MAX_BACKLOG?"),
        "{seen}"
    );
}

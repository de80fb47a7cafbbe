//! STYLE.md §3 as a test: which module may `use crate::` which, checked by scanning `src/` and `bin/`.
//!
//! Since issue 8 ("one type per concept") the table below supersedes STYLE.md §3 in four rows, which
//! STYLE.md has not caught up with yet:
//!
//! | module | may import | why |
//! | --- | --- | --- |
//! | `task` | nothing from the crate | the ground floor: `Site`, `Domain` + `normalise_domain`, ids, entries |
//! | `metrics` | `task` | the `site` label is `task::Site`, domains fold through `task::normalise_domain` |
//! | `telemetry` | nothing | owns `LogFormat`, which `config` parses into |
//! | `config` | `task`, `telemetry` | `LogSettings::format` is `telemetry::LogFormat` |
//! | `task_api`, `browser` | `task`, `config`, and **only** `metrics::labels` | their label types *are* the metric label enums (`Endpoint`, `StatusClass`, `RestartReason`); they never touch the registry |
//! | `mailbox` | `config`, and **only** `metrics::labels` | how a wait ended is the `MailOutcome` label enum; it reports waits to an observer, never to the registry |
//! | `totp` | `config`, `streams` | its ledger connects through `streams::RedisTarget`, the one Redis connection path (Sentinel included) |
//!
//! The other rows are STYLE.md's, as [`ALLOWED`] spells them. The label enums live in `metrics::labels`
//! rather than in `task` because they name observations (how a request ended, why a browser restarted),
//! not task data; an adapter reporting one depends on the vocabulary, not on the metrics registry.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// (module, modules it may import). A module missing here may import anything but the rules below.
const ALLOWED: &[(&str, &[&str])] = &[
    ("task", &[]),
    ("config", &["task", "telemetry"]),
    ("driver", &["task"]),
    ("task_api", &["task", "config", "metrics"]),
    ("streams", &["task", "config"]),
    ("browser", &["task", "config", "metrics"]),
    ("totp", &["config", "streams"]),
    ("image", &["config"]),
    ("mailbox", &["config", "metrics"]),
    ("outbox", &["task", "config", "streams"]),
    (
        "recipe",
        &[
            "browser", "mailbox", "totp", "image", "task", "driver", "config",
        ],
    ),
    (
        "fetcher",
        &[
            "task_api", "streams", "task", "metrics", "config", "shutdown",
        ],
    ),
    (
        "executor",
        &[
            "streams", "recipe", "browser", "outbox", "task_api", "task", "metrics", "driver",
            "config", "shutdown", "control",
        ],
    ),
    (
        "control",
        &["task", "config", "streams", "metrics", "driver"],
    ),
    (
        "admin",
        &["task", "config", "streams", "control", "outbox", "cli"],
    ),
    ("metrics", &["task"]),
    ("shutdown", &[]),
    ("telemetry", &[]),
    ("cli", &["config", "telemetry", "shutdown"]),
];

/// Modules that may import `crate::metrics` only through `crate::metrics::labels` (the label enums).
const LABELS_ONLY: &[&str] = &["task_api", "browser", "mailbox"];

/// Modules named in `use crate::<module>` (and `crate::<module>::` paths) of a file.
fn crate_imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let before = text[..i].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `podcast_worker::` or `$crate::`
        }
        let rest = &text[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if let Some(group) = rest.strip_prefix('{') {
            let group: String = group.chars().take_while(|c| *c != '}').collect();
            for part in group.split(',') {
                let m: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !m.is_empty() {
                    found.insert(m);
                }
            }
        } else if !name.is_empty() {
            found.insert(name);
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel
        .components()
        .next()
        .expect("component")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_owned()
}

#[test]
fn modules_import_only_what_style_md_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read source");
        for import in crate_imports(&text) {
            if import == module || import == "self" || import == "super" {
                continue;
            }
            let allowed = ALLOWED
                .iter()
                .find(|(m, _)| *m == module)
                .map(|(_, a)| a.contains(&import.as_str()));
            let forbidden_pair = matches!(
                (module.as_str(), import.as_str()),
                ("fetcher", "executor") | ("executor", "fetcher")
            );
            if allowed == Some(false) || forbidden_pair {
                violations.push(format!(
                    "{}: `{module}` imports `crate::{import}`",
                    file.display()
                ));
            }
        }
    }
    for file in &files {
        let module = module_of(&src, file);
        if !LABELS_ONLY.contains(&module.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read source");
        if let Some(bad) = beyond_labels(&text) {
            violations.push(format!(
                "{}: `{module}` may use only `crate::metrics::labels`, found `{bad}`",
                file.display()
            ));
        }
    }
    assert!(
        violations.is_empty(),
        "layering violations (STYLE.md §3):\n{}",
        violations.join("\n")
    );
}

#[test]
fn binaries_use_only_config_telemetry_shutdown_cli_and_their_role() {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("bin");
    let mut files = Vec::new();
    rust_files(&bin, &mut files);
    assert!(
        files.len() >= 3,
        "expected the fetcher, executor and recipe-check binaries"
    );
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read binary");
        let lines = text.lines().count();
        assert!(
            lines <= 60,
            "{} has {lines} lines; binaries only wire the library up (≤ 60)",
            file.display()
        );
        assert!(
            !text.contains("unwrap()"),
            "{} unwraps; report errors with context instead",
            file.display()
        );
    }
}

/// The first `crate::metrics…` path in `text` that does not go through `crate::metrics::labels`.
fn beyond_labels(text: &str) -> Option<String> {
    text.match_indices("crate::metrics").find_map(|(i, _)| {
        let rest = &text[i..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        (!path.starts_with("crate::metrics::labels")).then_some(path)
    })
}

#[test]
fn labels_only_rule_rejects_the_registry() {
    assert_eq!(
        beyond_labels("pub use crate::metrics::labels::{Endpoint, StatusClass};"),
        None
    );
    assert_eq!(
        beyond_labels("use crate::metrics::Metrics;").as_deref(),
        Some("crate::metrics::Metrics")
    );
    assert!(beyond_labels("use crate::metrics::{labels::Endpoint, Metrics};").is_some());
}

#[test]
fn crate_imports_parser_sees_grouped_and_plain_paths() {
    let found = crate_imports(
        "use crate::{task::Task, config::X};\nuse crate::streams::Keys;\nlet x = podcast_worker::crate_like;",
    );
    assert_eq!(
        found,
        ["config", "streams", "task"]
            .into_iter()
            .map(String::from)
            .collect()
    );
}

#[test]
fn simulator_crate_depends_on_nothing_of_the_fleet_crate() {
    // With no dependency on `podcast-worker`, the compiler keeps the simulator from sharing its code, so a
    // wire-format mistake cannot hide on both sides.
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("simulator/Cargo.toml"))
            .expect("simulator/Cargo.toml");
    let manifest: toml::Table = manifest.parse().expect("simulator/Cargo.toml parses");
    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(deps) = manifest.get(section).and_then(|d| d.as_table()) {
            assert!(
                !deps.contains_key("podcast-worker"),
                "simulator/Cargo.toml [{section}] depends on the fleet crate"
            );
        }
    }
}

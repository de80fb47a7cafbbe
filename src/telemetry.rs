//! Tracing subscriber set-up: JSON lines in production, human format on a terminal.
//! Does not decide what is logged; secrets are kept out by their types, not filtered here.
//!
//! A JSON line carries the event's fields at the top level and every enclosing span's fields under `spans`
//! (outermost first), so a `task{task_id=…}` span opened around a task's work tags every line logged inside
//! it, however deeply nested (`jq 'select(.spans[]?.task_id == "…")'`).

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written (`PW_LOG_FORMAT`); the config section parses into this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Pretty on a terminal, JSON otherwise.
    Auto,
    /// JSON lines.
    Json,
    /// Human-readable.
    Pretty,
}

impl std::str::FromStr for LogFormat {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            _ => Err("auto, json or pretty"),
        }
    }
}

/// What chromiumoxide may log unless the filter says otherwise: its handler warns about every DevTools
/// message it cannot decode (~100 `WS Invalid message` lines per recipe run, harmless), while a dead
/// connection is logged at ERROR (and the pool's own `chromium process is gone` warning is ours).
const CHROMIUMOXIDE_DEFAULT: &str = "chromiumoxide=error";

/// `filter` with chromiumoxide held at ERROR, unless the filter names chromiumoxide itself.
fn with_quiet_browser(filter: &str) -> String {
    match filter.contains("chromiumoxide") || filter.trim().is_empty() {
        true => filter.to_owned(),
        false => format!("{filter},{CHROMIUMOXIDE_DEFAULT}"),
    }
}

/// Installs the global subscriber writing to stderr. Safe to call twice (the second call does nothing).
/// An invalid `filter` falls back to `info`. chromiumoxide's protocol noise is kept below WARN unless the
/// filter names `chromiumoxide` (e.g. `info,chromiumoxide=debug`).
pub fn init(filter: &str, format: LogFormat) {
    let terminal = std::io::stderr().is_terminal();
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !terminal,
    };
    let _ = subscriber(filter, json, terminal, std::io::stderr).try_init();
}

/// The subscriber `init` installs, writing to `writer` (tests pass a buffer).
fn subscriber<W>(
    filter: &str,
    json: bool,
    ansi: bool,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync + 'static>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(with_quiet_browser(filter))
        .unwrap_or_else(|_| EnvFilter::new(with_quiet_browser("info")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if json {
        Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(true)
                .finish(),
        )
    } else {
        Box::new(builder.compact().with_ansi(ansi).finish())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use secrecy::SecretString;
    use tracing::{info, info_span, warn};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture(json: bool, work: impl FnOnce()) -> String {
        capture_with("info", json, work)
    }

    fn capture_with(filter: &str, json: bool, work: impl FnOnce()) -> String {
        let buf = Buffer::default();
        let sink = buf.clone();
        let sub = subscriber(filter, json, false, move || sink.clone());
        tracing::subscriber::with_default(sub, work);
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    fn task_work() {
        let password = SecretString::from("hunter2-secret");
        let task = info_span!("task", task_id = "t-42", site = "main");
        let _task = task.enter();
        info!("claimed");
        let step = info_span!("step", step = "fill");
        let _step = step.enter();
        warn!(password = ?password, error = "selector missing", "step failed");
    }

    #[test]
    fn json_lines_carry_the_task_id_inside_nested_spans() {
        let out = capture(true, task_work);
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{out}");
        for line in &lines {
            assert_eq!(line["spans"][0]["task_id"], "t-42", "{line}");
            assert!(line["timestamp"].is_string() && line["level"].is_string());
        }
        assert_eq!(lines[1]["message"], "step failed");
        assert_eq!(lines[1]["error"], "selector missing");
        assert_eq!(lines[1]["spans"][1]["step"], "fill");
        assert!(!out.contains("hunter2"), "{out}");
    }

    #[test]
    fn human_format_names_the_task_and_hides_secrets() {
        let out = capture(false, task_work);
        assert!(
            out.contains("task_id=\"t-42\"") || out.contains("task_id=t-42"),
            "{out}"
        );
        assert!(
            out.contains("step failed") && !out.contains("hunter2"),
            "{out}"
        );
        assert!(serde_json::from_str::<serde_json::Value>(out.lines().next().unwrap()).is_err());
    }

    fn browser_noise() {
        warn!(target: "chromiumoxide::handler", "WS Invalid message: data did not match any variant");
        tracing::error!(target: "chromiumoxide::handler", "WS Connection error: reset");
        warn!(target: "podcast_worker::browser::instance", pid = 7, "chromium process is gone");
    }

    #[test]
    fn chromiumoxide_noise_stays_below_warn_but_a_crash_is_logged() {
        let out = capture(false, browser_noise);
        assert!(!out.contains("WS Invalid message"), "{out}");
        assert!(out.contains("WS Connection error"), "{out}");
        assert!(out.contains("chromium process is gone"), "{out}");
        // Asked for by name, it is shown.
        let out = capture_with("info,chromiumoxide=warn", false, browser_noise);
        assert!(out.contains("WS Invalid message"), "{out}");
    }
}

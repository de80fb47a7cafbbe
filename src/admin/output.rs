//! What a subcommand prints: the same result as text for a person or as one JSON document (`--json`).

use serde_json::Value;

/// One subcommand's result.
#[derive(Debug, Clone)]
pub struct Out {
    /// The `--json` document.
    pub json: Value,
    /// The text shown otherwise.
    pub text: String,
    /// Set when part of the work could not be done: printed after the result, exit code 1.
    pub failure: Option<String>,
}

impl Out {
    /// A result with both forms.
    pub fn new(json: Value, text: String) -> Self {
        Self {
            json,
            text,
            failure: None,
        }
    }

    /// The same result, marked as partly failed (exit code 1) with `why`.
    pub fn failed(mut self, why: String) -> Self {
        self.failure = Some(why);
        self
    }

    /// Prints it to stdout.
    pub fn print(&self, json: bool) {
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&self.json).unwrap_or_default()
            );
        } else {
            println!("{}", self.text.trim_end());
        }
    }
}

/// A duration in milliseconds as `1h02m`, `3m05s`, `4.2s` or `120ms`.
pub(crate) fn human_ms(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 if ms < 1000 => format!("{ms}ms"),
        0..=59 => format!("{:.1}s", ms as f64 / 1000.0),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A secret as `•••• (12 chars)`: its presence and length, not its value.
pub(crate) fn mask(secret: &str) -> String {
    format!("•••• ({} chars)", secret.chars().count())
}

/// Milliseconds since the epoch of a stream id `<ms>-<seq>`.
pub(crate) fn stream_id_ms(id: &str) -> Option<u64> {
    id.split('-').next()?.parse().ok()
}

/// A table: a header row and rows, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(w.saturating_sub(c.chars().count()) + 2));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_masks_read_well() {
        assert_eq!(human_ms(120), "120ms");
        assert_eq!(human_ms(4_200), "4.2s");
        assert_eq!(human_ms(185_000), "3m05s");
        assert_eq!(human_ms(3_720_000), "1h02m");
        assert_eq!(human_ms(90_000_000), "1d01h");
        assert_eq!(mask("hunter22"), "•••• (8 chars)");
        assert!(!mask("hunter22").contains("hunter"));
        assert_eq!(stream_id_ms("1733100000000-3"), Some(1_733_100_000_000));
        let t = table(&["a", "bb"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "a    bb\nxxx  y\n");
    }
}

//! Where values come from: the environment, an optional `PW_CONFIG_FILE`, and `<NAME>_FILE` for secrets;
//! typed parsing with errors that name the variable and what is wrong (never a secret's value).

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

use super::Var;
use super::var::*;

vars! {
    /// The variable naming the optional config file.
    SOURCE_VARS;
    CONFIG_FILE: Option<std::path::PathBuf> = optional_path(), [F, E], "Optional file of KEY=VALUE lines read before the environment";
}

/// A configuration problem found at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable has a value that cannot be used.
    #[error("{var}: {reason}")]
    Invalid {
        /// Variable name.
        var: &'static str,
        /// What is wrong, with the value shown unless it is a secret.
        reason: String,
    },
    /// A required variable is missing.
    #[error("{var} is required: {help}")]
    Missing {
        /// Variable name.
        var: &'static str,
        /// What it is for.
        help: &'static str,
    },
    /// The config file or a `_FILE` secret could not be read.
    #[error("{var}: cannot read {path}")]
    File {
        /// Variable naming the file.
        var: String,
        /// The path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A command-line argument was given.
    #[error(
        "unexpected argument {0:?}: configuration comes from PW_* environment variables; see --help"
    )]
    Argument(String),
}

/// Raw values by name, from the environment and the optional config file.
#[derive(Default, Clone)]
pub struct Source {
    values: HashMap<String, String>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.values.keys().collect();
        names.sort();
        f.debug_struct("Source").field("names", &names).finish()
    }
}

impl Source {
    /// Reads `PW_*` variables from the process environment, under those of `PW_CONFIG_FILE` if set.
    ///
    /// # Errors
    /// [`ConfigError::File`] when the config file cannot be read.
    pub fn from_env() -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("PW_"))
            .collect();
        let mut values = HashMap::new();
        if let Some(path) = env.get(vars::CONFIG_FILE.name) {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::File {
                var: vars::CONFIG_FILE.name.into(),
                path: path.clone(),
                source,
            })?;
            values.extend(parse_env_file(&text));
        }
        values.extend(env);
        Ok(Self { values })
    }

    /// Builds a source from pairs, for tests and embedding.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Sets one value (tests).
    pub fn set(&mut self, name: &str, value: &str) {
        self.values.insert(name.to_owned(), value.to_owned());
    }

    /// Whether the variable (or its `_FILE` form) was given, rather than left to its default.
    pub(crate) fn is_set(&self, var: &Var) -> bool {
        let given = |name: &str| self.values.get(name).is_some_and(|v| !v.is_empty());
        given(var.name) || given(&format!("{}_FILE", var.name))
    }

    /// Whether `name` is present with an empty (or blank) value.
    pub(crate) fn is_set_but_empty(&self, name: &str) -> bool {
        self.values.get(name).is_some_and(|v| v.trim().is_empty())
    }

    /// `PW_*` names given that no binary reads, each with the closest known name (a likely typo).
    pub(crate) fn unknown_names(&self) -> Vec<(String, Option<&'static str>)> {
        let known: Vec<(&'static str, bool)> =
            super::all_vars().map(|v| (v.name, v.secret)).collect();
        let is_known = |name: &str| {
            known
                .iter()
                .any(|(k, secret)| *k == name || (*secret && name.strip_suffix("_FILE") == Some(k)))
        };
        let mut unknown: Vec<(String, Option<&'static str>)> = self
            .values
            .keys()
            .filter(|name| name.starts_with("PW_") && !is_known(name))
            .map(|name| {
                let closest = known
                    .iter()
                    .map(|(k, _)| (edit_distance(name, k), *k))
                    .min()
                    .filter(|(d, _)| *d <= 3)
                    .map(|(_, k)| k);
                (name.clone(), closest)
            })
            .collect();
        unknown.sort();
        unknown
    }

    /// The raw value or the default; empty strings count as unset.
    pub fn raw(&self, var: &Var) -> Option<String> {
        match self.values.get(var.name).filter(|v| !v.is_empty()) {
            Some(v) => Some(v.clone()),
            None => var.default.map(str::to_owned),
        }
    }

    /// A required plain value.
    pub fn required(&self, var: &Var) -> Result<String, ConfigError> {
        self.raw(var).ok_or(ConfigError::Missing {
            var: var.name,
            help: var.help,
        })
    }

    /// Parses a value with `FromStr`, naming the variable on failure.
    pub fn parse<T: FromStr>(&self, var: &Var) -> Result<T, ConfigError> {
        let raw = self.required(var)?;
        raw.trim().parse().map_err(|_| {
            invalid(
                var,
                &raw,
                std::any::type_name::<T>()
                    .rsplit("::")
                    .next()
                    .unwrap_or("value"),
            )
        })
    }

    /// An integer within `min..=max`.
    pub(crate) fn int_in(&self, var: &Var, min: u64, max: u64) -> Result<u64, ConfigError> {
        let n: u64 = self.parse(var)?;
        if (min..=max).contains(&n) {
            Ok(n)
        } else {
            Err(ConfigError::Invalid {
                var: var.name,
                reason: format!("must be between {min} and {max} (got {n})"),
            })
        }
    }

    /// A duration in seconds (the variable ends in `_SECS`), at least 1 s.
    pub fn secs(&self, var: &Var) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.int_in(var, 1, 86_400 * 30)?))
    }

    /// A comma-separated list, trimmed, empty items dropped.
    pub fn list(&self, var: &Var) -> Vec<String> {
        self.raw(var)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A secret from `<NAME>` or the file named by `<NAME>_FILE` (trailing newline removed); `None` when neither.
    ///
    /// # Errors
    /// [`ConfigError::File`] when the `_FILE` cannot be read.
    pub fn secret(&self, var: &Var) -> Result<Option<SecretString>, ConfigError> {
        if let Some(v) = self.values.get(var.name).filter(|v| !v.is_empty()) {
            return Ok(Some(SecretString::from(v.clone())));
        }
        let file_var = format!("{}_FILE", var.name);
        if let Some(path) = self.values.get(&file_var).filter(|v| !v.is_empty()) {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::File {
                var: file_var.clone(),
                path: path.clone(),
                source,
            })?;
            return Ok(Some(SecretString::from(
                text.trim_end_matches(['\n', '\r']).to_owned(),
            )));
        }
        Ok(var.default.map(|d| SecretString::from(d.to_owned())))
    }

    /// A required secret.
    pub(crate) fn required_secret(&self, var: &Var) -> Result<SecretString, ConfigError> {
        self.secret(var)?.ok_or(ConfigError::Missing {
            var: var.name,
            help: var.help,
        })
    }
}

/// An "invalid value" error; the value is shown only for non-secrets, and cut short.
pub fn invalid(var: &Var, raw: &str, expected: &str) -> ConfigError {
    let shown = if var.secret {
        "<redacted>".to_owned()
    } else {
        format!("{:?}", raw.chars().take(80).collect::<String>())
    };
    ConfigError::Invalid {
        var: var.name,
        reason: format!("expected {expected}, got {shown}"),
    }
}

/// Levenshtein distance (insertions, deletions, substitutions), for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Parses `KEY=VALUE` lines; `#` comments, blank lines and an optional `export ` are allowed; quotes are stripped.
fn parse_env_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or(v);
            (k.trim().to_owned(), v.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_come_with_the_closest_known_one() {
        assert_eq!(edit_distance("PW_MAX_BACKLOGG", "PW_MAX_BACKLOG"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        let src = Source::from_pairs([
            ("PW_MAX_BACKLOGG", "1"),
            ("PW_API_KEY_FILE", "/k"),
            ("PW_LOG", "info"),
            ("PW_ZZZZZZZZZZZZZZZZ", "1"),
        ]);
        assert_eq!(
            src.unknown_names(),
            vec![
                ("PW_MAX_BACKLOGG".to_owned(), Some("PW_MAX_BACKLOG")),
                ("PW_ZZZZZZZZZZZZZZZZ".to_owned(), None),
            ]
        );
    }

    #[test]
    fn env_file_lines_are_parsed() {
        let m = parse_env_file("# c\nexport PW_A=1\nPW_B=\"x y\"\n\nbad line\n");
        assert_eq!(m.get("PW_A").map(String::as_str), Some("1"));
        assert_eq!(m.get("PW_B").map(String::as_str), Some("x y"));
        assert_eq!(m.len(), 2);
    }
}

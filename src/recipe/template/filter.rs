//! The filters of a placeholder (`{{username | lower | truncate:13}}`): their names and arguments, parsed
//! once with the template, and what each does to a value. Pure.

use regex::Regex;

use super::Vars;

/// Length of the suffix `unique:N` appends: 5 base-36 characters (about 60 million values).
pub(super) const UNIQUE_SUFFIX_LEN: usize = 5;

/// The filter names, for error messages.
const FILTERS: &str = "lower, upper, slug[:SEP], truncate:N, replace:REGEX:WITH, digits, default:TEXT, \
                       short:N, unique:N";

/// One filter of a placeholder, applied left to right.
#[derive(Debug, Clone)]
pub(super) enum Filter {
    /// Lowercase.
    Lower,
    /// Uppercase.
    Upper,
    /// Lowercase ASCII letters and digits; every other run of characters becomes the separator (default
    /// `-`), none at either end.
    Slug(String),
    /// At most N characters.
    Truncate(usize),
    /// Every match of the regex replaced (`$1` refers to a group).
    Replace(Regex, String),
    /// Only the digits.
    Digits,
    /// The text when the value is empty (or only spaces).
    Default(String),
    /// N base-36 characters hashed from the value: stable, and different for different values.
    Short(usize),
    /// At most N characters: the value cut to leave room for a suffix hashed from the task id, so two tasks
    /// never type the same value and a retry of one task types the same one.
    Unique(usize),
}

impl Filter {
    pub(super) fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let (name, arg) = match raw.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a)),
            None => (raw, None),
        };
        let number = |what: &str, min: usize, max: usize| -> Result<usize, String> {
            let a = arg.ok_or_else(|| format!("filter {name:?} needs a number ({what})"))?;
            match a.trim().parse::<usize>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(format!(
                    "filter {name:?}: {a:?} is not a number from {min} to {max} ({what})"
                )),
            }
        };
        let none = |f: Filter| match arg {
            None => Ok(f),
            Some(a) => Err(format!("filter {name:?} takes no argument (got {a:?})")),
        };
        match name {
            "lower" => none(Filter::Lower),
            "upper" => none(Filter::Upper),
            "digits" => none(Filter::Digits),
            "slug" => match arg {
                None => Ok(Filter::Slug("-".into())),
                Some(sep)
                    if sep.chars().count() <= 1 && !sep.chars().any(char::is_alphanumeric) =>
                {
                    Ok(Filter::Slug(sep.to_owned()))
                }
                Some(sep) => Err(format!(
                    "filter \"slug\": separator {sep:?} must be one character that is not a letter or digit (or empty)"
                )),
            },
            "truncate" => number("the most characters kept", 1, 10_000).map(Filter::Truncate),
            "short" => number("characters of the hash", 1, 12).map(Filter::Short),
            "unique" => {
                number("the most characters", UNIQUE_SUFFIX_LEN + 1, 10_000).map(Filter::Unique)
            }
            "default" => match arg {
                Some(text) => Ok(Filter::Default(text.to_owned())),
                None => Err("filter \"default\" needs a text (default:TEXT)".into()),
            },
            "replace" => {
                let spec = arg.ok_or("filter \"replace\" needs replace:REGEX:WITH")?;
                let (re, with) = spec
                    .rsplit_once(':')
                    .ok_or("filter \"replace\" needs replace:REGEX:WITH")?;
                let re = Regex::new(re)
                    .map_err(|e| format!("filter \"replace\": {re:?} is not a regex: {e}"))?;
                Ok(Filter::Replace(re, with.to_owned()))
            }
            _ => Err(format!("unknown filter {name:?} (filters: {FILTERS})")),
        }
    }

    pub(super) fn apply(&self, value: String, vars: &Vars) -> String {
        match self {
            Filter::Lower => value.to_lowercase(),
            Filter::Upper => value.to_uppercase(),
            Filter::Digits => value.chars().filter(char::is_ascii_digit).collect(),
            Filter::Slug(sep) => slug(&value, sep),
            Filter::Truncate(n) => value.chars().take(*n).collect(),
            Filter::Replace(re, with) => re.replace_all(&value, with.as_str()).into_owned(),
            Filter::Default(text) if value.trim().is_empty() => text.clone(),
            Filter::Default(_) => value,
            Filter::Short(n) => base36(hash(&value), *n),
            Filter::Unique(n) => {
                let id = vars.get("task_id").unwrap_or_default();
                let suffix = base36(hash(&format!("unique:{id}")), UNIQUE_SUFFIX_LEN);
                let keep = n - UNIQUE_SUFFIX_LEN;
                let head: String = value.chars().take(keep).collect();
                format!("{head}{suffix}")
            }
        }
    }
}

fn slug(value: &str, sep: &str) -> String {
    let mut out = String::new();
    let mut pending = false;
    for c in value.chars() {
        if c.is_ascii_alphanumeric() {
            if pending && !out.is_empty() {
                out.push_str(sep);
            }
            pending = false;
            out.push(c.to_ascii_lowercase());
        } else {
            pending = true;
        }
    }
    out
}

/// A 64-bit hash of text, stable across builds and machines (the first 8 bytes of its SHA-256).
fn hash(text: &str) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// `n` base-36 digits (lowercase) of `h`, most significant last; `n` at most 12.
fn base36(mut h: u64, n: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..n)
        .map(|_| {
            let d = DIGITS[(h % 36) as usize] as char;
            h /= 36;
            d
        })
        .collect()
}

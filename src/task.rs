//! The task as the manager API hands it out, and as it travels through our queue.
//! Pure data and validation: no I/O. Credentials are typed secrets whose `Debug` is redacted.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};

/// Version of the stream entry payload written by the fetcher (`"v": 1`).
pub const ENTRY_VERSION: u32 = 1;

/// A task id as the manager issues it (a uuid). Restricted to `[A-Za-z0-9_-]`, 1..=64 chars, so it is safe
/// inside Redis keys, URLs and log lines.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TaskId(String);

/// A value that cannot be a task id.
#[derive(Debug, thiserror::Error)]
#[error("task id must be 1..=64 characters of [A-Za-z0-9_-]")]
pub struct InvalidTaskId;

impl TaskId {
    /// Checks and wraps an id.
    ///
    /// # Errors
    /// [`InvalidTaskId`] when it is empty, too long or holds other characters.
    pub fn parse(raw: &str) -> Result<Self, InvalidTaskId> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidTaskId)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for TaskId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        TaskId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskId({})", self.0)
    }
}

/// Which kind of platform a task registers on: the main site yields the RSS feed, sub-sites import it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Site {
    /// Spotify for Creators / anchor.fm: registered first, produces `link_rss`.
    Main,
    /// Buzzsprout, Podbean, …: import the main site's feed.
    Sub,
}

impl Site {
    /// Both kinds, main first (the order executors read them in).
    pub const ALL: [Site; 2] = [Site::Main, Site::Sub];

    /// Lowercase name, used in stream keys and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Site::Main => "main",
            Site::Sub => "sub",
        }
    }
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Decides main or sub (API.md, "main or sub"): a domain on the configured main list is main; otherwise a task
/// with an empty `link_rss` is main and one with a feed is sub.
pub fn route(domain: &str, has_link_rss: bool, main_domains: &[String]) -> Site {
    let domain = normalise_domain(domain);
    if main_domains.iter().any(|d| normalise_domain(d) == domain) {
        Site::Main
    } else if has_link_rss {
        Site::Sub
    } else {
        Site::Main
    }
}

/// Normalises a platform domain: trimmed, lowercase, without a trailing dot, a leading `www.` or a `:port`
/// suffix, so `WWW.Anchor.fm.:443` matches `anchor.fm`. This is the one normalisation of the crate: routing,
/// driver lookup, per-domain limits and the `domain` metric label all compare domains through it. A port is
/// dropped because a domain names a platform, not an endpoint (no recipe or limit is per port); a bracketed
/// IPv6 literal keeps its colons.
pub fn normalise_domain(domain: &str) -> String {
    let d = domain.trim().to_ascii_lowercase();
    let d = match d.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => d.as_str(),
    };
    let d = d.trim_end_matches('.');
    d.strip_prefix("www.").unwrap_or(d).to_owned()
}

/// A platform domain, normalised once when it is made ([`normalise_domain`]); what a stream entry carries.
/// Deserialising normalises too, so an entry written by an older fetcher compares like a new one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
#[serde(transparent)]
pub struct Domain(String);

impl Domain {
    /// Normalises `raw` ([`normalise_domain`]). An empty result is allowed: a task may come without one.
    pub fn new(raw: &str) -> Self {
        Self(normalise_domain(raw))
    }

    /// The normalised domain.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Domain {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Domain {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Domain {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl From<&str> for Domain {
    fn from(raw: &str) -> Self {
        Domain::new(raw)
    }
}

impl<'de> Deserialize<'de> for Domain {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Domain::new(&String::deserialize(d)?))
    }
}

/// The routing part of a listed task: what the fetcher keeps. Credentials in the listing are never read into it.
#[derive(Debug, Clone, Deserialize)]
pub struct ListedTask {
    /// Task id.
    pub id: TaskId,
    /// Parent request id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub request_id: String,
    /// Podcast platform domain.
    #[serde(default, deserialize_with = "lenient_string")]
    pub domain: String,
    /// Batch group id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub group_id: String,
    /// The main site's feed; only whether it is present matters here. `None` when the listing has none
    /// (absent, `null` or blank).
    #[serde(default, deserialize_with = "non_blank_text")]
    pub link_rss: Option<String>,
}

/// One entry of a task stream: ids and routing only, never credentials (DESIGN.md, "Redis layout").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// Payload version, [`ENTRY_VERSION`].
    pub v: u32,
    /// Task id.
    pub id: TaskId,
    /// Platform domain, normalised.
    pub domain: Domain,
    /// Main or sub.
    pub site: Site,
    /// Parent request id.
    pub request_id: String,
    /// Batch group id.
    pub group_id: String,
    /// When the fetcher pulled it, milliseconds since the Unix epoch.
    pub fetched_at_ms: u64,
}

/// Why a stream payload could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// Not JSON of the expected shape. Holds the field path only, never the serde message (it can echo values).
    #[error("undecodable entry (at {path})")]
    Undecodable {
        /// Where decoding failed, e.g. `id` or `.`.
        path: String,
    },
    /// A version this build does not understand.
    #[error("unsupported entry version {0}")]
    UnsupportedVersion(u32),
}

impl QueueEntry {
    /// Builds a version-1 entry for a listed task.
    pub fn new(task: &ListedTask, site: Site, fetched_at_ms: u64) -> Self {
        Self {
            v: ENTRY_VERSION,
            id: task.id.clone(),
            domain: Domain::new(&task.domain),
            site,
            request_id: task.request_id.clone(),
            group_id: task.group_id.clone(),
            fetched_at_ms,
        }
    }

    /// Serialises the entry as its stream field value.
    pub fn encode(&self) -> String {
        // A struct of strings and integers always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a stream field value.
    ///
    /// # Errors
    /// [`EntryError`] for bad JSON, a missing field or an unknown version.
    pub fn decode(raw: &[u8]) -> Result<Self, EntryError> {
        #[derive(Deserialize)]
        struct Version {
            v: u32,
        }
        let version: Version = serde_json::from_slice(raw)
            .map_err(|_| EntryError::Undecodable { path: "v".into() })?;
        if version.v != ENTRY_VERSION {
            return Err(EntryError::UnsupportedVersion(version.v));
        }
        let de = &mut serde_json::Deserializer::from_slice(raw);
        serde_path_to_error::deserialize(de).map_err(|e| EntryError::Undecodable {
            path: e.path().to_string(),
        })
    }
}

/// The full task from `GET /links/{id}`, with credentials.
#[derive(Debug, Clone, Deserialize)]
pub struct Task {
    /// Task id.
    pub id: TaskId,
    /// Parent request id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub request_id: String,
    /// Flow type; `register` in this phase.
    #[serde(default, deserialize_with = "lenient_string")]
    pub type_request: String,
    /// Podcast platform domain.
    #[serde(default, deserialize_with = "lenient_string")]
    pub domain: String,
    /// The customer's website.
    #[serde(default, deserialize_with = "lenient_string")]
    pub website: String,
    /// Email to register with (also the IMAP user).
    #[serde(default, deserialize_with = "lenient_string")]
    pub email: String,
    /// Username to register with; may hold Spintax.
    #[serde(default, deserialize_with = "lenient_string")]
    pub username: String,
    /// The Gmail account's password.
    #[serde(default, deserialize_with = "secret_string")]
    pub pass_mail: SecretString,
    /// Base32 TOTP secret.
    #[serde(default, deserialize_with = "secret_string")]
    pub twofa: SecretString,
    /// Gmail app password (IMAP).
    #[serde(default, deserialize_with = "secret_string")]
    pub app_password: SecretString,
    /// The account password to register with.
    #[serde(default, deserialize_with = "secret_string")]
    pub password: SecretString,
    /// Channel description, HTML; may hold Spintax.
    #[serde(default, deserialize_with = "lenient_string")]
    pub about: String,
    /// Channel cover image (`None` when absent or blank).
    #[serde(default, deserialize_with = "non_blank_text")]
    pub image_url: Option<String>,
    /// The main site's RSS feed (sub-site tasks only; `None` when absent or blank).
    #[serde(default, deserialize_with = "non_blank_text")]
    pub link_rss: Option<String>,
    /// Batch group id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub group_id: String,
    /// Accounts the parent request must create.
    #[serde(default)]
    pub target: Option<serde_json::Value>,
}

/// Deserialises a string that may be `null` or absent (as empty).
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// Deserialises a text that may be `null`, absent or blank (all as `None`); a present one is trimmed.
fn non_blank_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(non_blank(Option::<String>::deserialize(d)?.as_deref()))
}

/// `text` trimmed, or `None` when it is absent or blank: how a listing's optional text is read.
pub(crate) fn non_blank(text: Option<&str>) -> Option<String> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// Deserialises a secret that may be `null` or absent (as empty).
fn secret_string<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    Ok(SecretString::from(
        Option::<String>::deserialize(d)?.unwrap_or_default(),
    ))
}

/// What a finished registration produced: the account's real credentials, reported with `complete`.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// Login email of the created account.
    pub email: Option<String>,
    /// Username of the created account.
    pub username: Option<String>,
    /// Password of the created account.
    pub password: Option<SecretString>,
    /// Session cookie header (`name=value; …`).
    pub cookie: Option<SecretString>,
    /// The show's RSS feed (required for main-site tasks).
    pub link_rss: Option<String>,
    /// Free text for the manager.
    pub note: Option<String>,
}

impl Registration {
    /// True when it carries at least one credential, as `complete` requires.
    pub(crate) fn has_credentials(&self) -> bool {
        let present = |s: &Option<String>| s.as_deref().is_some_and(|v| !v.is_empty());
        let secret =
            |s: &Option<SecretString>| s.as_ref().is_some_and(|v| !v.expose_secret().is_empty());
        present(&self.email)
            || present(&self.username)
            || secret(&self.password)
            || secret(&self.cookie)
    }
}

/// Cuts `text` to at most `max` characters on a character boundary (API.md: `error_message` ≤ 1000).
pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => text[..cut].to_owned(),
        None => text.to_owned(),
    }
}

/// Milliseconds since the Unix epoch (0 for a clock before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `pattern` (ending in `*`) with the glob characters of its fixed part escaped, for `SCAN … MATCH` over
/// keys under a prefix (a `{hash tag}` prefix holds none, but a prefix may). Braces are literal in Redis's
/// glob, so a hash tag stays as it is.
pub(crate) fn escape_glob_prefix(pattern: &str) -> String {
    let (fixed, star) = pattern.split_at(pattern.len().saturating_sub(1));
    let mut out = String::with_capacity(pattern.len() + 4);
    for c in fixed.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push_str(star);
    out
}

#[cfg(test)]
mod tests;

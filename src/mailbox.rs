//! Verification mail over IMAP (TLS): [`Mailbox::wait_for`] polls a task's inbox and spam folder until a
//! message from the expected sender/subject/recipient that arrived after the task started shows up, and
//! extracts a link or a code from it by a regular expression (a server that keeps refusing or failing the
//! connection ends the wait early). A message is never used twice in this process.
//! Every wait is reported to an optional [`MailObserver`] (the executor's metrics). It does not send mail, and
//! knows nothing about sites or recipes.

mod imap;
mod matching;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use regex::Regex;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::config::MailSettings;
/// How a wait ended: the `outcome` label enum of the metrics module (one type per concept).
pub use crate::metrics::labels::MailOutcome;
use imap::Session;
use matching::evaluate;

/// Told of every finished [`Mailbox::wait_for`]: how it ended and how long it waited (for a found mail, how
/// long the mail took to arrive, as seen by polling). Called on the waiting task; must not block.
pub type MailObserver = Arc<dyn Fn(MailOutcome, Duration) + Send + Sync>;

/// The mailbox to read: the task's email and its (app) password.
#[derive(Debug, Clone)]
pub struct MailLogin {
    /// IMAP user name, normally the task's email address.
    pub user: String,
    /// Password or app password; whitespace is removed (Gmail shows app passwords in groups of four).
    pub password: SecretString,
}

/// Which message to wait for and what to take from it. Text filters are case-insensitive substrings.
#[derive(Debug, Clone)]
pub struct MailQuery {
    /// Part of the sender's address or display name.
    pub from: Option<String>,
    /// Part of the subject.
    pub subject: Option<String>,
    /// Part of a recipient address (To, Cc, Delivered-To, X-Original-To).
    pub to: Option<String>,
    /// Only messages that arrived at this time or later (whole seconds) count: normally the task's start.
    pub since: SystemTime,
    /// What to extract: the first capture group if the pattern has one, else the whole match. Searched in
    /// the plain-text parts first, then in the HTML source.
    pub pattern: Regex,
}

/// A message that matched, and the value extracted from it. `Debug` hides the value.
#[derive(Clone)]
pub struct MailMatch {
    /// The extracted link or code.
    pub value: String,
    /// Folder it was found in, e.g. `INBOX` or `Junk`.
    pub folder: String,
    /// Its UID in that folder.
    pub uid: u32,
    /// Its Message-ID, when it has one.
    pub message_id: Option<String>,
    /// Its subject.
    pub subject: String,
    /// When it arrived (INTERNALDATE, else the Date header).
    pub received: SystemTime,
}

impl std::fmt::Debug for MailMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailMatch")
            .field("value", &"<redacted>")
            .field("folder", &self.folder)
            .field("uid", &self.uid)
            .field("message_id", &self.message_id)
            .field("subject", &self.subject)
            .finish()
    }
}

/// Why no value was found. Messages never contain the password.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MailError {
    /// The server refused the user name or password (permanent: retrying will not help).
    #[error("mailbox login refused ({0})")]
    LoginRefused(String),
    /// The deadline passed without a matching message.
    #[error("no matching mail arrived within {waited:?} (searched {folders})")]
    Timeout {
        /// How long it waited.
        waited: Duration,
        /// The folders searched.
        folders: String,
    },
    /// Connection, TLS or protocol failure (transient).
    #[error("mailbox unreachable: {0}")]
    Network(String),
    /// Bad settings, such as an unreadable CA file (permanent).
    #[error("mailbox configuration: {0}")]
    Config(String),
}

impl MailError {
    /// The `outcome` of a wait that ended with this error: `timeout` when no mail came, else `error`.
    pub fn outcome(&self) -> MailOutcome {
        match self {
            MailError::Timeout { .. } => MailOutcome::Timeout,
            _ => MailOutcome::Error,
        }
    }

    /// Whether retrying the task cannot help: a refused login or bad settings. Network failures and a
    /// timeout (the mail may still come, or come on a new attempt) are transient.
    pub fn is_permanent(&self) -> bool {
        matches!(self, MailError::LoginRefused(_) | MailError::Config(_))
    }
}

/// Pause before the one retry of a refused login.
const LOGIN_RETRY_PAUSE: Duration = Duration::from_millis(1200);

/// Network failures in a row (at the poll interval) after which a wait gives up before its deadline: a
/// server that refuses or drops every connection will not deliver the mail in time either, and the task's
/// retry comes back later.
const NETWORK_ATTEMPTS: u32 = 3;

/// What this process has already used: keys `(user, folder, uidvalidity, uid)` and `(user, message-id)`.
#[derive(Default)]
struct Used {
    uids: HashSet<(String, String, u32, u32)>,
    message_ids: HashSet<(String, String)>,
}

/// Reads verification mail; one per executor, shared by its tasks (cheap to clone).
#[derive(Clone)]
pub struct Mailbox {
    settings: MailSettings,
    tls: TlsConnector,
    used: Arc<Mutex<Used>>,
    /// Shared by every clone, so an observer set after the drivers were built still sees their waits.
    observer: Arc<OnceLock<MailObserver>>,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// State of one `wait_for` call.
struct Search<'a> {
    user: String,
    query: &'a MailQuery,
    folders: Vec<String>,
    /// Messages already looked at in this call: `(folder, uidvalidity, uid)`.
    checked: HashSet<(String, u32, u32)>,
}

impl Search<'_> {
    fn timeout(&self, waited: Duration) -> MailError {
        MailError::Timeout {
            waited,
            folders: if self.folders.is_empty() {
                "nothing".into()
            } else {
                self.folders.join(", ")
            },
        }
    }
}

impl Mailbox {
    /// Prepares the TLS client (system roots plus `settings.ca_file`).
    ///
    /// # Errors
    /// [`MailError::Config`] when the CA file cannot be used.
    pub fn new(settings: &MailSettings) -> Result<Self, MailError> {
        Ok(Self {
            settings: settings.clone(),
            tls: imap::tls_connector(settings)?,
            used: Arc::default(),
            observer: Arc::default(),
        })
    }

    /// Reports every later wait of this mailbox and of all its clones to `observer`. Only the first
    /// observer set is kept; returns `false` (and drops `observer`) when one was set already.
    pub fn set_observer(&self, observer: MailObserver) -> bool {
        self.observer.set(observer).is_ok()
    }

    /// Polls the inbox and the spam folder every `poll_interval` until a message matches `query`, and
    /// returns the value extracted from it; the message is then remembered as used (and marked `\Seen` when
    /// configured), so no later call returns it again.
    ///
    /// # Errors
    /// [`MailError::LoginRefused`] when the credentials are refused twice, 1.2 s apart (or once, when the
    /// deadline leaves no time for a retry); [`MailError::Timeout`] at the
    /// deadline; [`MailError::Network`] after 3 network failures in a row (a refused connection, a TLS or
    /// protocol failure, a command timing out; `poll_interval` apart), or at the deadline when the last
    /// attempt failed so.
    pub async fn wait_for(
        &self,
        login: &MailLogin,
        query: &MailQuery,
        deadline: Instant,
    ) -> Result<MailMatch, MailError> {
        let started = Instant::now();
        let result = self.wait(login, query, deadline, started).await;
        if let Some(observe) = self.observer.get() {
            let outcome = result
                .as_ref()
                .map_or_else(MailError::outcome, |_| MailOutcome::Found);
            observe(outcome, started.elapsed());
        }
        result
    }

    async fn wait(
        &self,
        login: &MailLogin,
        query: &MailQuery,
        deadline: Instant,
        started: Instant,
    ) -> Result<MailMatch, MailError> {
        let mut search = Search {
            user: login.user.trim().to_ascii_lowercase(),
            query,
            folders: Vec::new(),
            checked: HashSet::new(),
        };
        let mut session: Option<Session> = None;
        let mut last_error = None;
        let mut refusals = 0;
        let mut network_failures = 0;
        loop {
            let attempt = self.attempt(&mut session, login, &mut search);
            let Ok(outcome) = tokio::time::timeout_at(deadline, attempt).await else {
                // The deadline cut this attempt short: a refusal it was retrying is unconfirmed.
                last_error = last_error.filter(|e| !matches!(e, MailError::LoginRefused(_)));
                break;
            };
            let mut pause = self.settings.poll_interval;
            match outcome {
                Ok(Some(found)) => {
                    self.logout(session).await;
                    return Ok(found);
                }
                Ok(None) => {
                    last_error = None;
                    network_failures = 0;
                }
                // One refused login is retried after a pause: a mailbox created moments ago may not be
                // known yet (Dovecot re-reads its passwd-file at most once a second; Gmail right after an
                // app password is made). A second refusal is final.
                Err(e @ MailError::LoginRefused(_)) if refusals == 0 => {
                    refusals += 1;
                    pause = LOGIN_RETRY_PAUSE;
                    last_error = Some(e);
                }
                Err(e) if e.is_permanent() => return Err(e),
                Err(e) => {
                    session = None;
                    network_failures += 1;
                    if network_failures >= NETWORK_ATTEMPTS {
                        return Err(MailError::Network(format!(
                            "{} ({network_failures} attempts in a row, {:.1} s)",
                            network_detail(&e),
                            started.elapsed().as_secs_f64()
                        )));
                    }
                    tracing::warn!(error = %e, "mailbox search failed; will retry");
                    last_error = Some(e);
                }
            }
            if Instant::now() + pause >= deadline {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        self.logout(session).await;
        Err(last_error.unwrap_or_else(|| search.timeout(started.elapsed())))
    }

    /// One poll: log in when needed, then search every folder.
    async fn attempt(
        &self,
        session: &mut Option<Session>,
        login: &MailLogin,
        search: &mut Search<'_>,
    ) -> Result<Option<MailMatch>, MailError> {
        let t = self.settings.timeout;
        let s = match session {
            Some(s) => s,
            None => {
                let password: String = login
                    .password
                    .expose_secret()
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                let mut s =
                    imap::login(&self.settings, &self.tls, login.user.trim(), &password).await?;
                search.folders = imap::search_folders(&mut s, t).await?;
                session.insert(s)
            }
        };
        imap::drain(s);
        for folder in search.folders.clone() {
            if let Some(found) = self.search_folder(s, search, &folder).await? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    async fn search_folder(
        &self,
        s: &mut Session,
        search: &mut Search<'_>,
        folder: &str,
    ) -> Result<Option<MailMatch>, MailError> {
        let t = self.settings.timeout;
        let skip = |validity: u32, uid: u32| {
            search.checked.contains(&(folder.to_owned(), validity, uid))
                || self.lock().uids.contains(&(
                    search.user.clone(),
                    folder.to_owned(),
                    validity,
                    uid,
                ))
        };
        let (validity, messages) =
            imap::fetch_recent(s, t, folder, search.query.since, skip).await?;
        for m in messages {
            search.checked.insert((folder.to_owned(), validity, m.uid));
            let Some(mut found) = evaluate(&m, search.query) else {
                continue;
            };
            if !self.claim(&search.user, folder, validity, &found) {
                continue;
            }
            if self.settings.mark_seen {
                // Best effort: the message is already remembered as used.
                if let Err(e) = imap::mark_seen(s, t, m.uid).await {
                    tracing::debug!(error = %e, "could not mark a verification mail seen");
                }
            }
            found.folder = folder.to_owned();
            return Ok(Some(found));
        }
        Ok(None)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Used> {
        self.used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a message as used; false when this process used it before (by UID or Message-ID).
    fn claim(&self, user: &str, folder: &str, validity: u32, found: &MailMatch) -> bool {
        let mut used = self.lock();
        let uid_key = (user.to_owned(), folder.to_owned(), validity, found.uid);
        let id_key = found
            .message_id
            .as_ref()
            .map(|id| (user.to_owned(), id.clone()));
        if used.uids.contains(&uid_key)
            || id_key
                .as_ref()
                .is_some_and(|k| used.message_ids.contains(k))
        {
            return false;
        }
        used.uids.insert(uid_key);
        if let Some(k) = id_key {
            used.message_ids.insert(k);
        }
        true
    }

    async fn logout(&self, session: Option<Session>) {
        if let Some(mut s) = session {
            let _ = tokio::time::timeout(Duration::from_secs(2), s.logout()).await;
        }
    }
}

/// The text of a network error without its `mailbox unreachable: ` prefix (it is added again).
fn network_detail(e: &MailError) -> String {
    match e {
        MailError::Network(detail) => detail.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_classify_and_debug_hides_password() {
        assert!(MailError::LoginRefused("x".into()).is_permanent());
        assert!(!MailError::Network("x".into()).is_permanent());
        let timeout = MailError::Timeout {
            waited: Duration::from_secs(1),
            folders: "INBOX".into(),
        };
        assert_eq!(timeout.outcome(), MailOutcome::Timeout);
        assert_eq!(MailError::Network("x".into()).outcome(), MailOutcome::Error);
        assert_eq!(
            MailError::LoginRefused("x".into()).outcome(),
            MailOutcome::Error
        );
        let login = MailLogin {
            user: "a@b".into(),
            password: SecretString::from("abcd efgh ijkl mnop"),
        };
        assert!(!format!("{login:?}").contains("abcd"));
    }
}

//! Results waiting for the manager to accept their report, kept in Redis at `<prefix>:outbox:<id>` and
//! encrypted with ChaCha20-Poly1305 (random 96-bit nonce per write, stored as nonce || ciphertext, the task id
//! as associated data so a value cannot be moved to another task's key). Does not report anything itself.

use std::time::Duration;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use redis::AsyncCommands;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::config::OutboxKey;
use crate::streams::settle::Settle;
use crate::streams::{RedisConn, StreamError, StreamKeys, handover};
use crate::task::{Registration, Site, TaskId};

const NONCE_LEN: usize = 12;
/// Associated-data prefix: binds a value to this format as well as to its task id.
const AAD_PREFIX: &str = "pw-outbox-v1:";

/// How long `<prefix>:tried:<id>` remembers that a driver ran a task: longer than a manager's retry delay.
pub(crate) const TRIED_TTL_SECS: u64 = 7 * 24 * 3600;

/// Why the outbox could not be used.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// Redis could not be reached or refused: try again later; nothing was lost.
    #[error("outbox storage unavailable")]
    Unavailable(#[source] redis::RedisError),
    /// The stored value failed authentication: tampered with, moved from another key, or written with
    /// another key. It is never reported; an operator must look at it.
    #[error(
        "outbox record of task {task_id} failed authentication (tampered, moved or another key)"
    )]
    Tampered {
        /// The task whose key held the value.
        task_id: TaskId,
    },
}

impl From<StreamError> for OutboxError {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::BadUrl(source) | StreamError::Unavailable { source, .. } => {
                Self::Unavailable(source)
            }
            StreamError::GroupMissing { op } => Self::Unavailable(redis::RedisError::from((
                redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
                op,
            ))),
        }
    }
}

/// The report a finished task is waiting to make.
#[derive(Debug, Clone)]
pub enum Report {
    /// `complete` with the new account's credentials.
    Complete(Registration),
    /// `fail` with a message (no secrets, at most 1000 characters) and an optional note.
    Fail {
        /// The `error_message`.
        error_message: String,
        /// The `note`.
        note: Option<String>,
    },
}

/// One outbox record: what to report for a task, and where it came from.
#[derive(Debug, Clone)]
pub struct OutboxRecord {
    /// The task.
    pub task_id: TaskId,
    /// Main or sub.
    pub site: Site,
    /// The stream entry the task came in (acked with the record's removal by [`Outbox::finish`]).
    pub entry_id: Option<String>,
    /// Normalised platform domain (for metrics).
    pub domain: String,
    /// Driver attempts made.
    pub attempts: u32,
    /// When the result was ready, ms since the Unix epoch.
    pub finished_at_ms: u64,
    /// What to report.
    pub report: Report,
}

/// Serialised form, only ever written encrypted.
#[derive(Serialize, Deserialize)]
struct Stored {
    site: Site,
    entry_id: Option<String>,
    domain: String,
    attempts: u32,
    finished_at_ms: u64,
    kind: String,
    email: Option<String>,
    username: Option<String>,
    password: Option<String>,
    cookie: Option<String>,
    link_rss: Option<String>,
    note: Option<String>,
    error_message: Option<String>,
}

/// The encrypted outbox. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    conn: RedisConn,
    keys: StreamKeys,
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("prefix", &self.keys.prefix())
            .finish_non_exhaustive()
    }
}

pub use crate::task::now_ms;

impl Outbox {
    /// An outbox under `keys` on `conn`, encrypting with `key`.
    pub fn new(conn: RedisConn, keys: StreamKeys, key: &OutboxKey) -> Self {
        Self {
            conn,
            keys,
            cipher: ChaCha20Poly1305::new(&key.0.into()),
        }
    }

    /// Encrypts a record: nonce || ciphertext, with the task id as associated data.
    pub fn seal(&self, record: &OutboxRecord) -> Vec<u8> {
        let plain = serde_json::to_vec(&to_stored(record)).unwrap_or_default();
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let aad = format!("{AAD_PREFIX}{}", record.task_id);
        let payload = Payload {
            msg: &plain,
            aad: aad.as_bytes(),
        };
        // Encryption of an in-memory buffer fails only past ChaCha20's 256 GiB message limit.
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce_bytes), payload)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts the value stored under `task_id`'s key.
    ///
    /// # Errors
    /// [`OutboxError::Tampered`] when the value does not authenticate for this task and key.
    pub fn open(&self, task_id: &TaskId, value: &[u8]) -> Result<OutboxRecord, OutboxError> {
        let tampered = || OutboxError::Tampered {
            task_id: task_id.clone(),
        };
        if value.len() <= NONCE_LEN {
            return Err(tampered());
        }
        let (nonce, sealed) = value.split_at(NONCE_LEN);
        let aad = format!("{AAD_PREFIX}{task_id}");
        let payload = Payload {
            msg: sealed,
            aad: aad.as_bytes(),
        };
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| tampered())?;
        let stored: Stored = serde_json::from_slice(&plain).map_err(|_| tampered())?;
        Ok(from_stored(task_id.clone(), stored))
    }

    /// Stores (or replaces) a record. Written before the report is sent.
    ///
    /// # Errors
    /// [`OutboxError::Unavailable`].
    pub async fn put(&self, record: &OutboxRecord) -> Result<(), OutboxError> {
        let value = self.seal(record);
        let () = self
            .conn
            .clone()
            .set(self.keys.outbox(&record.task_id), value)
            .await
            .map_err(OutboxError::Unavailable)?;
        Ok(())
    }

    /// The record waiting for `task_id`, if any.
    ///
    /// # Errors
    /// [`OutboxError::Unavailable`], or [`OutboxError::Tampered`] for a value that does not authenticate.
    pub async fn get(&self, task_id: &TaskId) -> Result<Option<OutboxRecord>, OutboxError> {
        let value: Option<Vec<u8>> = self
            .conn
            .clone()
            .get(self.keys.outbox(task_id))
            .await
            .map_err(OutboxError::Unavailable)?;
        value.map(|v| self.open(task_id, &v)).transpose()
    }

    /// Forgets a reported task: deletes its record and its report lock (if `owner` holds it), and
    /// releases its id (the one settle: the inflight marker goes, unless the task was handed out again after
    /// our `fail`, which is then queued).
    ///
    /// # Errors
    /// [`OutboxError::Unavailable`].
    pub async fn remove(&self, task_id: &TaskId, owner: &str) -> Result<(), OutboxError> {
        Settle::task(task_id, owner)
            .run(&mut self.conn.clone(), &self.keys)
            .await
            .map_err(OutboxError::from)?;
        Ok(())
    }

    /// Records on the task's inflight marker which report is about to be sent (`handover::mark_reporting`).
    ///
    /// # Errors
    /// [`OutboxError::Unavailable`].
    pub async fn mark_reporting(&self, record: &OutboxRecord) -> Result<(), OutboxError> {
        let completing = matches!(record.report, Report::Complete(_));
        let _: Option<String> = handover::mark_reporting(&self.keys, &record.task_id, completing)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(OutboxError::Unavailable)?;
        Ok(())
    }

    /// Records that a driver is about to run `task_id` and tells whether one ran it before (within
    /// [`TRIED_TTL_SECS`]): then this run is a retry, whoever ran the first (an executor that died, or the run
    /// whose `fail` the manager is retrying). One `SET <prefix>:tried:<id> 1 EX … GET`.
    ///
    /// # Errors
    /// [`OutboxError::Unavailable`].
    pub(crate) async fn begin_run(&self, task_id: &TaskId) -> Result<bool, OutboxError> {
        let before: Option<String> = redis::cmd("SET")
            .arg(self.keys.tried(task_id))
            .arg(1)
            .arg("EX")
            .arg(TRIED_TTL_SECS)
            .arg("GET")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(OutboxError::Unavailable)?;
        Ok(before.is_some())
    }

    /// Forgets a task reported from the outbox alone, in one script (the one settle): acks and deletes its
    /// stream entry (if still there, e.g. left by an executor that died after writing the record), and
    /// deletes its record, inflight marker, run lease and report lock (those two only if `owner`'s). So a
    /// later reclaim of the entry cannot run the task again.
    ///
    /// # Errors
    /// [`OutboxError::Unavailable`].
    pub async fn finish(&self, record: &OutboxRecord, owner: &str) -> Result<(), OutboxError> {
        let id = &record.task_id;
        let settle = match &record.entry_id {
            Some(entry_id) => Settle::entry(record.site, entry_id, owner).finished(Some(id)),
            None => Settle::task(id, owner),
        };
        settle
            .run(&mut self.conn.clone(), &self.keys)
            .await
            .map_err(OutboxError::from)?;
        Ok(())
    }

    /// Ids of every task with a record waiting (SCAN over `<prefix>:outbox:*`).
    ///
    /// # Errors
    /// [`OutboxError::Unavailable`].
    pub async fn waiting(&self) -> Result<Vec<TaskId>, OutboxError> {
        let pattern = self.keys.outbox_pattern();
        let rests = crate::streams::keys_under(&mut self.conn.clone(), &pattern)
            .await
            .map_err(OutboxError::Unavailable)?;
        Ok(rests
            .iter()
            .filter_map(|id| TaskId::parse(id).ok())
            .collect())
    }

    /// Takes the right to report `task_id` for `ttl` (`SET NX PX`), so two executors never send the same
    /// report at once. Returns false when someone else holds it.
    ///
    /// # Errors
    /// [`OutboxError::Unavailable`].
    pub async fn lock(
        &self,
        task_id: &TaskId,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, OutboxError> {
        let set: Option<String> = redis::cmd("SET")
            .arg(self.keys.outbox_lock(task_id))
            .arg(owner)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(OutboxError::Unavailable)?;
        Ok(set.is_some())
    }

    /// Gives the report right back (the record stays), if `owner` holds it (compare-and-delete, so a
    /// holder whose lock expired cannot delete the next holder's). Returns whether it was ours.
    ///
    /// # Errors
    /// [`OutboxError::Unavailable`].
    pub async fn unlock(&self, task_id: &TaskId, owner: &str) -> Result<bool, OutboxError> {
        crate::streams::unlock(
            &mut self.conn.clone(),
            &self.keys.outbox_lock(task_id),
            owner,
        )
        .await
        .map_err(OutboxError::from)
    }
}

fn to_stored(r: &OutboxRecord) -> Stored {
    let secret = |s: &Option<SecretString>| s.as_ref().map(|v| v.expose_secret().to_owned());
    let mut s = Stored {
        site: r.site,
        entry_id: r.entry_id.clone(),
        domain: r.domain.clone(),
        attempts: r.attempts,
        finished_at_ms: r.finished_at_ms,
        kind: "fail".into(),
        email: None,
        username: None,
        password: None,
        cookie: None,
        link_rss: None,
        note: None,
        error_message: None,
    };
    match &r.report {
        Report::Complete(reg) => {
            s.kind = "complete".into();
            s.email.clone_from(&reg.email);
            s.username.clone_from(&reg.username);
            s.password = secret(&reg.password);
            s.cookie = secret(&reg.cookie);
            s.link_rss.clone_from(&reg.link_rss);
            s.note.clone_from(&reg.note);
        }
        Report::Fail {
            error_message,
            note,
        } => {
            s.error_message = Some(error_message.clone());
            s.note.clone_from(note);
        }
    }
    s
}

fn from_stored(task_id: TaskId, s: Stored) -> OutboxRecord {
    let report = if s.kind == "complete" {
        Report::Complete(Registration {
            email: s.email,
            username: s.username,
            password: s.password.map(SecretString::from),
            cookie: s.cookie.map(SecretString::from),
            link_rss: s.link_rss,
            note: s.note,
        })
    } else {
        Report::Fail {
            error_message: s.error_message.unwrap_or_default(),
            note: s.note,
        }
    };
    OutboxRecord {
        task_id,
        site: s.site,
        entry_id: s.entry_id,
        domain: s.domain,
        attempts: s.attempts,
        finished_at_ms: s.finished_at_ms,
        report,
    }
}

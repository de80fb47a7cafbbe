//! Fleet-wide control of work, shared in Redis: domains paused by an operator or by the per-domain circuit
//! breaker, and drain requests for one executor. [`Control`] reads and changes that state (the admin command
//! and the executors use it); [`Gate`] is the executor's side: it holds a paused domain's tasks un-started,
//! lets one probe through a half-open breaker, and counts recipe/structure failures. Task state (inflight,
//! outbox, streams) is not here.
//!
//! # Keys
//! All under the fleet's prefix (`PW_KEY_PREFIX`, so on the same Redis Cluster slot as the task keys):
//!
//! | key | type | holds | written by | ends |
//! |---|---|---|---|---|
//! | `<prefix>:control:paused` | hash | domain → JSON `{by: "operator"\|"breaker", reason, at_ms, probe_due_ms?}`: the domain's tasks are not started | `pwctl pause`, the breaker (`failure.lua`) | `pwctl resume`, a probe that succeeds |
//! | `<prefix>:control:breaker` | hash | domain → JSON `{state: "open"\|"half_open", opened_at_ms, probe_due_ms, failures, reason, probe_task?, probe_owner?, probe_at_ms?}`; a closed breaker has no field | executors (`failure.lua`, `probe.lua`, `probe_end.lua`) | a probe that succeeds, `pwctl resume` |
//! | `<prefix>:control:failures:<domain>` | zset | the domain's recent recipe/structure failures (`<task id>:<ms>`, score ms) | executors (`failure.lua`) | PEXPIRE window; deleted when the breaker opens or closes |
//! | `<prefix>:control:drain:<consumer>` | string | a drain request for that executor (ms since the epoch, 1 day TTL): it stops claiming, finishes what runs, exits 0 | `pwctl drain` | the executor, when it has drained; TTL |
//! | `<prefix>:control:exported:<id>` | string | SHA-1 of an outbox record's stored value when `pwctl outbox export` wrote it to a file (30 days): `outbox drop` deletes only records exported unchanged | `pwctl outbox export` | `pwctl outbox drop`; TTL |
//!
//! Every script is a `.lua` file in `lua/`, run with EVALSHA.

mod breaker;
mod gate;
mod keys;

use std::collections::BTreeMap;
use std::time::Duration;

use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

use crate::config::{ControlSettings, StreamSettings};
use crate::streams::{RedisConn, StreamError, connect};
use crate::task::normalise_domain;

pub use breaker::{Verdict, verdict};
pub use gate::{Admission, Gate, ReleaseReason, Released};
pub use keys::{Breaker, BreakerState, ControlKeys, Pause, PausedBy};

/// Response timeout of control commands.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Expiry of a drain request nobody acted on.
pub(crate) const DRAIN_TTL_SECS: u64 = 86_400;

/// Expiry of an outbox export mark.
pub(crate) const EXPORT_MARK_TTL_SECS: u64 = 30 * 86_400;

/// Longest pause reason kept (characters).
pub(crate) const REASON_MAX: usize = 300;

/// A domain name as an operator may type it: normalised, 1..=253 characters of `[a-z0-9.-]` (it becomes part
/// of a Redis key and of a metric label).
///
/// # Errors
/// A message saying what is wrong.
pub(crate) fn parse_domain(raw: &str) -> Result<String, String> {
    let d = normalise_domain(raw);
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if ok {
        Ok(d)
    } else {
        Err(format!(
            "{raw:?} is not a domain (letters, digits, dots and dashes)"
        ))
    }
}

/// The fleet's control state in Redis. Cheap to clone.
#[derive(Clone)]
pub struct Control {
    conn: RedisConn,
    keys: ControlKeys,
    scripts: std::sync::Arc<Scripts>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

struct Scripts {
    failure: Script,
    probe: Script,
    probe_end: Script,
    resume: Script,
}

/// One task of one domain, as the breaker's scripts need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainTask<'a> {
    /// Normalised domain.
    pub domain: &'a str,
    /// The task id.
    pub task_id: &'a str,
}

/// What [`Control::record_failure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCount {
    /// Counted; the breaker stays closed. The failures now in the window.
    Counted(u64),
    /// This failure opened the breaker (and paused the domain).
    Opened(u64),
    /// The probe failed: open again for another cool-down.
    Reopened,
    /// The breaker was already open; not counted.
    AlreadyOpen,
}

/// What [`Control::resume`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Resumed {
    /// The domain was paused.
    pub was_paused: bool,
    /// It had an open or half-open breaker (now closed).
    pub had_breaker: bool,
}

impl Control {
    /// A control handle on an existing connection.
    pub fn new(conn: RedisConn, prefix: &str) -> Self {
        Self {
            conn,
            keys: ControlKeys::new(prefix),
            scripts: std::sync::Arc::new(Scripts {
                failure: Script::new(include_str!("lua/failure.lua")),
                probe: Script::new(include_str!("lua/probe.lua")),
                probe_end: Script::new(include_str!("lua/probe_end.lua")),
                resume: Script::new(include_str!("lua/resume.lua")),
            }),
        }
    }

    /// Connects to the fleet's Redis.
    ///
    /// # Errors
    /// [`StreamError`] when the URL is unusable or Redis cannot be reached.
    pub async fn connect(settings: &StreamSettings) -> Result<Self, StreamError> {
        let conn = connect(settings, COMMAND_TIMEOUT).await?;
        Ok(Self::new(conn, &settings.key_prefix))
    }

    /// The key layout.
    pub fn keys(&self) -> &ControlKeys {
        &self.keys
    }

    fn conn(&self) -> RedisConn {
        self.conn.clone()
    }

    /// Pauses `domain` (already `parse_domain`d) fleet-wide; replaces an earlier pause, a breaker's too.
    ///
    /// # Errors
    /// [`StreamError::Unavailable`].
    pub async fn pause(&self, domain: &str, reason: &str, now_ms: u64) -> Result<(), StreamError> {
        let pause = Pause {
            by: PausedBy::Operator,
            reason: crate::task::truncate_chars(reason, REASON_MAX),
            at_ms: now_ms,
            probe_due_ms: None,
        };
        let json = serde_json::to_string(&pause).unwrap_or_default();
        let () = self
            .conn()
            .hset(self.keys.paused(), domain, json)
            .await
            .map_err(StreamError::redis("HSET paused"))?;
        Ok(())
    }

    /// Resumes `domain`: its pause and its breaker (if any) go, and held tasks start.
    ///
    /// # Errors
    /// [`StreamError::Unavailable`].
    pub async fn resume(&self, domain: &str) -> Result<Resumed, StreamError> {
        let mut inv = self.scripts.resume.prepare_invoke();
        inv.key(self.keys.paused())
            .key(self.keys.breakers())
            .key(self.keys.failures(domain))
            .arg(domain);
        let (paused, breaker): (u64, u64) = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(StreamError::redis("resume"))?;
        Ok(Resumed {
            was_paused: paused > 0,
            had_breaker: breaker > 0,
        })
    }

    /// Every paused domain. Entries that cannot be read are skipped (and logged).
    ///
    /// # Errors
    /// [`StreamError::Unavailable`].
    pub async fn paused(&self) -> Result<BTreeMap<String, Pause>, StreamError> {
        let raw: BTreeMap<String, String> = self
            .conn()
            .hgetall(self.keys.paused())
            .await
            .map_err(StreamError::redis("HGETALL paused"))?;
        Ok(decode_all(raw, "paused"))
    }

    /// Every breaker that is not closed.
    ///
    /// # Errors
    /// [`StreamError::Unavailable`].
    pub async fn breakers(&self) -> Result<BTreeMap<String, Breaker>, StreamError> {
        let raw: BTreeMap<String, String> = self
            .conn()
            .hgetall(self.keys.breakers())
            .await
            .map_err(StreamError::redis("HGETALL breaker"))?;
        Ok(decode_all(raw, "breaker"))
    }

    /// Counts one recipe/structure failure of a domain's task (`message`: the failure, no secrets),
    /// opening the breaker when `settings`' threshold is reached within its window.
    ///
    /// # Errors
    /// [`StreamError::Unavailable`].
    pub async fn record_failure(
        &self,
        settings: &ControlSettings,
        task: DomainTask<'_>,
        message: &str,
        now_ms: u64,
    ) -> Result<FailureCount, StreamError> {
        let DomainTask { domain, task_id } = task;
        let mut inv = self.scripts.failure.prepare_invoke();
        inv.key(self.keys.failures(domain))
            .key(self.keys.breakers())
            .key(self.keys.paused())
            .arg(domain)
            .arg(now_ms)
            .arg(settings.breaker_window.as_millis() as u64)
            .arg(settings.breaker_threshold.max(1))
            .arg(settings.breaker_cooldown.as_millis() as u64)
            .arg(task_id)
            .arg(crate::task::truncate_chars(message, 200));
        let (verdict, count): (String, u64) = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(StreamError::redis("breaker failure"))?;
        Ok(match verdict.as_str() {
            "opened" => FailureCount::Opened(count),
            "reopened" => FailureCount::Reopened,
            "open" => FailureCount::AlreadyOpen,
            _ => FailureCount::Counted(count),
        })
    }

    /// Asks to run the task as the probe of its domain's breaker. `probe_ttl` is how long a probe may run
    /// before another task may take its place (its executor may have died).
    ///
    /// # Errors
    /// [`StreamError::Unavailable`].
    pub async fn try_probe(
        &self,
        task: DomainTask<'_>,
        owner: &str,
        probe_ttl: Duration,
        now_ms: u64,
    ) -> Result<Admission, StreamError> {
        let DomainTask { domain, task_id } = task;
        let mut inv = self.scripts.probe.prepare_invoke();
        inv.key(self.keys.breakers())
            .key(self.keys.paused())
            .arg(domain)
            .arg(now_ms)
            .arg(task_id)
            .arg(owner)
            .arg(probe_ttl.as_millis() as u64);
        let answer: String = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(StreamError::redis("breaker probe"))?;
        Ok(match answer.as_str() {
            "probe" => Admission::Probe,
            "run" => Admission::Run,
            _ => Admission::Hold,
        })
    }

    /// The probe `task_id` of `domain` ended without a recipe/structure failure: `close` when it worked
    /// (or the site gave its own verdict), else it is released and the next task probes. True when this
    /// closed the breaker.
    ///
    /// # Errors
    /// [`StreamError::Unavailable`].
    pub async fn end_probe(
        &self,
        domain: &str,
        task_id: &str,
        close: bool,
        now_ms: u64,
    ) -> Result<bool, StreamError> {
        let mut inv = self.scripts.probe_end.prepare_invoke();
        inv.key(self.keys.breakers())
            .key(self.keys.paused())
            .key(self.keys.failures(domain))
            .arg(domain)
            .arg(task_id)
            .arg(if close { "close" } else { "release" })
            .arg(now_ms);
        let answer: String = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(StreamError::redis("breaker probe end"))?;
        Ok(answer == "closed")
    }

    /// Asks the executor named `consumer` to drain: stop claiming, finish what runs, exit 0.
    ///
    /// # Errors
    /// [`StreamError::Unavailable`].
    pub(crate) async fn request_drain(
        &self,
        consumer: &str,
        now_ms: u64,
    ) -> Result<(), StreamError> {
        let () = self
            .conn()
            .set_ex(self.keys.drain(consumer), now_ms, DRAIN_TTL_SECS)
            .await
            .map_err(StreamError::redis("SET drain"))?;
        Ok(())
    }

    /// When a drain of `consumer` was requested (ms since the epoch), if it was.
    ///
    /// # Errors
    /// [`StreamError::Unavailable`].
    pub async fn drain_requested(&self, consumer: &str) -> Result<Option<u64>, StreamError> {
        self.conn()
            .get(self.keys.drain(consumer))
            .await
            .map_err(StreamError::redis("GET drain"))
    }

    /// Forgets the drain request of `consumer` (the executor, once drained; or an operator cancelling it).
    /// True when there was one.
    ///
    /// # Errors
    /// [`StreamError::Unavailable`].
    pub(crate) async fn clear_drain(&self, consumer: &str) -> Result<bool, StreamError> {
        let n: u64 = self
            .conn()
            .del(self.keys.drain(consumer))
            .await
            .map_err(StreamError::redis("DEL drain"))?;
        Ok(n > 0)
    }

    /// Every pending drain request: consumer → requested at (ms).
    ///
    /// # Errors
    /// [`StreamError::Unavailable`].
    pub async fn drains(&self) -> Result<BTreeMap<String, u64>, StreamError> {
        let pattern = self.keys.drain_pattern();
        let mut conn = self.conn();
        let names = crate::streams::keys_under(&mut conn, &pattern)
            .await
            .map_err(StreamError::redis("SCAN drain"))?;
        let mut out = BTreeMap::new();
        for name in names {
            let key = format!("{}{name}", &pattern[..pattern.len() - 1]);
            let at: Option<u64> = conn
                .get(&key)
                .await
                .map_err(StreamError::redis("GET drain"))?;
            if let Some(at) = at {
                out.insert(name, at);
            }
        }
        Ok(out)
    }
}

pub use crate::task::now_ms;

fn decode_all<T: for<'de> Deserialize<'de>>(
    raw: BTreeMap<String, String>,
    what: &str,
) -> BTreeMap<String, T> {
    raw.into_iter()
        .filter_map(|(domain, json)| match serde_json::from_str(&json) {
            Ok(v) => Some((domain, v)),
            Err(e) => {
                tracing::warn!(%domain, error = %e, "unreadable {what} entry in Redis; ignored");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;

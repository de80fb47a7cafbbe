//! The one settle of a stream entry and its task (`lua/settle.lua`, one round trip): used by the
//! consumer's ack and dead-letter, the outbox's finish and the admin command's release. Whoever finishes
//! with a task id releases it here and nowhere else ([`super::handover`] says why the release is not a
//! plain `DEL`).

use redis::aio::ConnectionLike;

use super::handover::Marker;
use super::{ENTRY_FIELD, GROUP, StreamError, StreamKeys, TaskKey, scripts};
use crate::task::{Site, TaskId};

/// The fields of a dead-letter entry, in order.
pub(crate) type DeadFields = Vec<(&'static str, Vec<u8>)>;

/// What one settle does. Build it with [`Settle::entry`] or [`Settle::task`], then add parts.
#[derive(Debug, Clone)]
pub(crate) struct Settle<'a> {
    site: Site,
    entry_id: Option<&'a str>,
    finished: Option<&'a TaskId>,
    run_lease_of: Option<&'a TaskId>,
    owner: &'a str,
    dead_letter: Option<(usize, DeadFields)>,
}

/// How a finished task's id was let go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Released {
    /// Nothing finished, or the inflight marker was deleted.
    LetGo,
    /// A hand-out listed after our `fail` was queued again (the marker stays, for that run).
    Requeued,
    /// A completed task's marker was kept until it expires (late duplicate hand-outs are dropped).
    KeptCompleted,
}

impl<'a> Settle<'a> {
    /// Acks and deletes the stream entry `entry_id` of `site`'s stream; `owner` is our consumer name (a run
    /// lease or report lock is dropped only when it is ours).
    pub(crate) fn entry(site: Site, entry_id: &'a str, owner: &'a str) -> Self {
        Self {
            site,
            entry_id: Some(entry_id),
            finished: None,
            run_lease_of: None,
            owner,
            dead_letter: None,
        }
    }

    /// Settles a task without an entry to ack (reported from the outbox alone, or by an operator).
    pub(crate) fn task(id: &'a TaskId, owner: &'a str) -> Self {
        Self {
            // No entry: the stream key is not used.
            site: Site::Main,
            entry_id: None,
            finished: Some(id),
            run_lease_of: Some(id),
            owner,
            dead_letter: None,
        }
    }

    /// The task is finished: its outbox record, report lock (if ours) and run lease (if ours) go, and its
    /// id is released.
    pub(crate) fn finished(mut self, id: Option<&'a TaskId>) -> Self {
        self.finished = id;
        if id.is_some() {
            self.run_lease_of = id;
        }
        self
    }

    /// Drops the run lease of `id` (if ours) even when the task is not finished.
    pub(crate) fn run_lease(mut self, id: Option<&'a TaskId>) -> Self {
        if id.is_some() {
            self.run_lease_of = id;
        }
        self
    }

    /// Also copies the entry to the dead-letter stream (capped at `maxlen`) with these fields.
    pub(crate) fn dead_letter(
        mut self,
        maxlen: usize,
        fields: Vec<(&'static str, Vec<u8>)>,
    ) -> Self {
        self.dead_letter = Some((maxlen, fields));
        self
    }

    /// Runs it.
    ///
    /// # Errors
    /// [`StreamError`] when Redis refuses or cannot be reached; nothing was settled then.
    pub(crate) async fn run<C: ConnectionLike>(
        &self,
        conn: &mut C,
        keys: &StreamKeys,
    ) -> Result<Released, StreamError> {
        // Keys of a task not involved are still passed (a script names every key it may touch): without a
        // task they end in an empty id, which no task has.
        let task = self.finished.or(self.run_lease_of);
        let mut inv = scripts::SETTLE.prepare_invoke();
        inv.key(keys.tasks(self.site))
            .key(keys.per_task(TaskKey::Inflight, task))
            .key(keys.per_task(TaskKey::Relisted, task))
            .key(keys.tasks(Site::Main))
            .key(keys.tasks(Site::Sub))
            .key(keys.per_task(TaskKey::Outbox, task))
            .key(keys.per_task(TaskKey::OutboxLock, task))
            .key(keys.per_task(TaskKey::Run, self.run_lease_of))
            .key(keys.dead())
            .arg(GROUP)
            .arg(self.entry_id.unwrap_or(""))
            .arg(if self.finished.is_some() { "1" } else { "0" })
            .arg(ENTRY_FIELD)
            .arg(Marker::Completing.as_str())
            .arg(Marker::Requeued.as_str())
            .arg(self.owner);
        match &self.dead_letter {
            Some((maxlen, fields)) => {
                inv.arg(*maxlen);
                for (name, value) in fields {
                    inv.arg(*name).arg(value.as_slice());
                }
            }
            None => {
                inv.arg("");
            }
        }
        let answer: i64 = inv
            .invoke_async(conn)
            .await
            .map_err(StreamError::redis("settle"))?;
        Ok(match answer {
            1 => Released::Requeued,
            2 => Released::KeptCompleted,
            _ => Released::LetGo,
        })
    }
}

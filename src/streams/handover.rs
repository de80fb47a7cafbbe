//! A task handed out again while its id is still in our hands. API.md: the manager's retry manager re-queues
//! a task on our `fail`, and may hand it out again before we let go of the id (the `fail`'s answer was lost
//! and we are retrying it, or the moment between the answer and the ack). That hand-out is new work, but the
//! `inflight` marker would drop it as a duplicate, leaving it "handed out" at the manager for ever.
//!
//! So: before sending a `fail`, the executor sets the marker's value to [`Marker::Failing`]. The fetcher's enqueue
//! script, meeting a marker with that value, records the listed entry under `<prefix>:relisted:<id>` instead
//! of dropping it. Whoever finishes with the id releases it with the one settle (`settle.lua`): when a re-listed entry is
//! waiting it goes back on its stream (the marker stays, for the new run), else the marker is deleted. A
//! duplicate hand-out of a task we are still running (no `fail` sent) stays dropped: running it again would
//! `start` a task we are finishing.
//!
//! The other way round, a duplicate hand-out listed while we were finishing a task may reach the fetcher just
//! after we let go of the id, and would `start` a completed task. So before sending a `complete` the marker
//! is set to [`Marker::Completing`], and the release keeps such a marker until it expires (`PW_INFLIGHT_TTL_SECS`):
//! a completed task is final at the manager, never handed out again for real.

use super::StreamKeys;
use crate::task::TaskId;

/// The value of a task's `inflight` marker: what we are doing with the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Queued by the fetcher (or running): a duplicate hand-out is dropped.
    Queued,
    /// Our `fail` is being reported: a hand-out seen now is the manager's retry, kept for later.
    Failing,
    /// Our `complete` is being reported or was accepted: kept after the release until it expires.
    Completing,
    /// A hand-out re-listed after our `fail` was queued again by the release: the id is ours again.
    Requeued,
}

impl Marker {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Failing => "failing",
            Self::Completing => "completing",
            Self::Requeued => "requeued",
        }
    }
}

/// The command recording on `id`'s inflight marker which report is under way ([`Marker::Completing`] or
/// [`Marker::Failing`]): `SET inflight <value> XX KEEPTTL`, only while we still hold the id, keeping its
/// expiry.
pub(crate) fn mark_reporting(keys: &StreamKeys, id: &TaskId, completing: bool) -> redis::Cmd {
    let marker = if completing {
        Marker::Completing
    } else {
        Marker::Failing
    };
    let mut cmd = redis::cmd("SET");
    cmd.arg(keys.inflight(id))
        .arg(marker.as_str())
        .arg("XX")
        .arg("KEEPTTL");
    cmd
}

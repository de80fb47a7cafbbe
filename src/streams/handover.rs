//! A task handed out again while its id is still in our hands. API.md: the manager's retry manager re-queues
//! a task on our `fail`, and may hand it out again before we let go of the id (the `fail`'s answer was lost
//! and we are retrying it, or the moment between the answer and the ack). That hand-out is new work, but the
//! `inflight` marker would drop it as a duplicate, leaving it "handed out" at the manager for ever.
//!
//! So: before sending a `fail`, the executor sets the marker's value to [`FAILING`]. The fetcher's enqueue
//! script, meeting a marker with that value, records the listed entry under `<prefix>:relisted:<id>` instead
//! of dropping it. Whoever finishes with the id releases it with `push_release`: when a re-listed entry is
//! waiting it goes back on its stream (the marker stays, for the new run), else the marker is deleted. A
//! duplicate hand-out of a task we are still running (no `fail` sent) stays dropped: running it again would
//! `start` a task we are finishing.
//!
//! The other way round, a duplicate hand-out listed while we were finishing a task may reach the fetcher just
//! after we let go of the id, and would `start` a completed task. So before sending a `complete` the marker
//! is set to [`COMPLETING`], and the release keeps such a marker until it expires (`PW_INFLIGHT_TTL_SECS`):
//! a completed task is final at the manager, never handed out again for real.

use super::{ENTRY_FIELD, StreamKeys};
use crate::task::{Site, TaskId};

/// Value of an `inflight` marker while a `fail` for its task is being reported.
pub const FAILING: &str = "failing";

/// Value of an `inflight` marker once a `complete` for its task is being reported; kept after the release.
pub const COMPLETING: &str = "completing";

/// `KEYS`: inflight, relisted, main stream, sub stream; `ARGV[1]`: entry field, `ARGV[2]`: [`COMPLETING`].
/// Returns 1 when a re-listed entry was queued again, 2 when a completed task's marker was kept, 0 when the
/// id was let go.
const RELEASE_LUA: &str = r"
local again = redis.call('HMGET', KEYS[2], 'site', 'payload')
if again[2] then
  redis.call('DEL', KEYS[2])
  redis.call('SET', KEYS[1], 'requeued', 'KEEPTTL')
  local stream = KEYS[4]
  if again[1] == 'main' then stream = KEYS[3] end
  redis.call('XADD', stream, '*', ARGV[1], again[2])
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[2] then
  return 2
end
redis.call('DEL', KEYS[1])
return 0
";

/// Adds to `pipe` (usually a MULTI) the release of `id`: its `inflight` marker is deleted, unless the manager
/// handed the task out again after our `fail` (that hand-out is queued again) or we reported it complete
/// (the marker stays until it expires, stopping late duplicate hand-outs).
pub(crate) fn push_release(pipe: &mut redis::Pipeline, keys: &StreamKeys, id: &TaskId) {
    pipe.cmd("EVAL")
        .arg(RELEASE_LUA)
        .arg(4)
        .arg(keys.inflight(id))
        .arg(keys.relisted(id))
        .arg(keys.tasks(Site::Main))
        .arg(keys.tasks(Site::Sub))
        .arg(ENTRY_FIELD)
        .arg(COMPLETING)
        .ignore();
}

/// The command recording on `id`'s inflight marker which report is under way ([`COMPLETING`] or [`FAILING`]):
/// `SET inflight <value> XX KEEPTTL`, only while we still hold the id, keeping its expiry.
pub(crate) fn mark_reporting(keys: &StreamKeys, id: &TaskId, completing: bool) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(keys.inflight(id))
        .arg(if completing { COMPLETING } else { FAILING })
        .arg("XX")
        .arg("KEEPTTL");
    cmd
}

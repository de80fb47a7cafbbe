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

use super::{ENTRY_FIELD, StreamKeys};
use crate::task::{Site, TaskId};

/// Value of an `inflight` marker while a `fail` for its task is being reported.
pub const FAILING: &str = "failing";

/// `KEYS`: inflight, relisted, main stream, sub stream; `ARGV[1]`: entry field. Returns 1 when a re-listed
/// entry was queued again, 0 when the id was let go.
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
redis.call('DEL', KEYS[1])
return 0
";

/// Adds to `pipe` (usually a MULTI) the release of `id`: its `inflight` marker is deleted, unless the manager
/// handed the task out again after our `fail`, in which case that hand-out is queued again.
pub(crate) fn push_release(pipe: &mut redis::Pipeline, keys: &StreamKeys, id: &TaskId) {
    pipe.cmd("EVAL")
        .arg(RELEASE_LUA)
        .arg(4)
        .arg(keys.inflight(id))
        .arg(keys.relisted(id))
        .arg(keys.tasks(Site::Main))
        .arg(keys.tasks(Site::Sub))
        .arg(ENTRY_FIELD)
        .ignore();
}

/// The command marking `id` as having a `fail` under way: `SET inflight failing XX KEEPTTL` (only while we
/// still hold the id; its expiry is kept).
pub(crate) fn mark_failing(keys: &StreamKeys, id: &TaskId) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(keys.inflight(id))
        .arg(FAILING)
        .arg("XX")
        .arg("KEEPTTL");
    cmd
}

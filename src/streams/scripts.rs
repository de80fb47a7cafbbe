//! The ledger's Lua scripts, one `.lua` file each (in `lua/`), loaded once per process and run by EVALSHA
//! (`redis::Script` loads a script again when a restarted Redis answers NOSCRIPT). Each file's header
//! says its KEYS, ARGV and reply; the Rust callers live next to the data they change.

use std::sync::LazyLock;

use redis::Script;

/// De-duplicated enqueue of one entry (the fetcher's side): [`super::producer`].
pub(crate) static ENQUEUE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/enqueue.lua")));

/// The one settle: dead-letter copy, ack, run lease, and the finished task's release: [`super::settle`].
pub(crate) static SETTLE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/settle.lua")));

/// Compare-and-delete of a lock held by a named owner.
pub(crate) static UNLOCK: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/unlock.lua")));

/// Takes a task's run lease (the fence).
pub(crate) static FENCE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/fence.lua")));

/// Heartbeat, entry idle times and run leases of one live consumer.
pub(crate) static RENEW: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/renew.lua")));

/// XCLAIM of abandoned entries whose run lease is free.
pub(crate) static RECLAIM: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/reclaim.lua")));

/// Removes a consumer with nothing pending (and idle long enough) from the group, with its heartbeat.
pub(crate) static RETIRE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/retire.lua")));

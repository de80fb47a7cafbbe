//! Redis Streams as our task queue. Key layout (all under one configurable prefix, which should hold a
//! `{hash tag}` so scripts and MULTI stay on one Redis Cluster slot):
//!
//! | key | holds |
//! |---|---|
//! | `<prefix>:tasks:main`, `<prefix>:tasks:sub` | one entry per task handed to us: field `task` = versioned JSON ([`crate::task::QueueEntry`]), ids and routing only, never credentials |
//! | group [`GROUP`] on both | every executor process is one consumer named `<host>-<pid>` |
//! | `<prefix>:inflight:<id>` | set with the XADD, atomically; cleared when the task is finished; stops an id from being queued twice |
//! | `<prefix>:outbox:<id>` | a finished registration's result, encrypted; deleted once the manager accepted it |
//! | `<prefix>:tasks:dead` | dead-letter stream: entries that could not be processed, each with a reason |
//! | `<prefix>:fetcher:leader` | the fetcher's leader lease |
//!
//! Main-site work is read before sub-site work. Finished entries are XACKed and XDELed together.

use crate::task::{Site, TaskId};

/// The consumer group every executor joins, on both task streams.
pub const GROUP: &str = "executors";

/// Field of a stream entry holding the JSON payload.
pub const ENTRY_FIELD: &str = "task";

/// Builds every Redis key from the configured prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamKeys {
    prefix: String,
}

impl StreamKeys {
    /// Keys under `prefix` (e.g. `{pw}`).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix itself.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The task stream of one site kind.
    pub fn tasks(&self, site: Site) -> String {
        format!("{}:tasks:{}", self.prefix, site.as_str())
    }

    /// The dead-letter stream.
    pub fn dead(&self) -> String {
        format!("{}:tasks:dead", self.prefix)
    }

    /// The de-duplication marker of a task in our hands.
    pub fn inflight(&self, id: &TaskId) -> String {
        format!("{}:inflight:{id}", self.prefix)
    }

    /// The encrypted result of a finished task awaiting its report.
    pub fn outbox(&self, id: &TaskId) -> String {
        format!("{}:outbox:{id}", self.prefix)
    }

    /// Pattern matching every outbox key (for SCAN).
    pub fn outbox_pattern(&self) -> String {
        format!("{}:outbox:*", self.prefix)
    }

    /// The fetcher's leader lease.
    pub fn leader(&self) -> String {
        format!("{}:fetcher:leader", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_prefix_hash_tag() {
        let k = StreamKeys::new("{pw}");
        let id = TaskId::parse("t-1").unwrap();
        assert_eq!(k.tasks(Site::Main), "{pw}:tasks:main");
        assert_eq!(k.tasks(Site::Sub), "{pw}:tasks:sub");
        assert_eq!(k.dead(), "{pw}:tasks:dead");
        assert_eq!(k.inflight(&id), "{pw}:inflight:t-1");
        assert_eq!(k.outbox(&id), "{pw}:outbox:t-1");
        assert_eq!(k.leader(), "{pw}:fetcher:leader");
    }
}

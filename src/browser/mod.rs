//! Chromium mechanics: a pool that launches headless Chromium, gives every task a fresh browser context
//! ([`Session`]), replaces the browser after N tasks, above a memory (PSS) limit and after a crash, and cleans up
//! the leftovers of a killed executor at start-up. It knows nothing about sites: recipes drive the sessions.

mod blocking;
mod instance;
mod process;
mod session;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use tokio_util::task::TaskTracker;

use crate::config::BrowserSettings;
/// Why a browser was replaced: the `reason` label enum of the metrics module (one type per concept).
pub use crate::metrics::labels::RestartReason;
pub use blocking::Resource;
use instance::Instance;
pub use session::{LoadEvents, Session};

/// What went wrong in the browser; every variant is worth a retry on a fresh attempt.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BrowserError {
    /// Chromium could not be started (bad path, launch timeout).
    #[error("browser launch failed: {0}")]
    Launch(String),
    /// The browser process died or its DevTools connection ended.
    #[error("browser crashed")]
    Crashed,
    /// A page command or navigation failed.
    #[error("{0}")]
    Page(String),
    /// No element matches the selector a command acts on (the page is not what the caller expected).
    #[error("no element matches {0:?}")]
    NoElement(String),
    /// A step did not finish in time.
    #[error("timed out after {ms} ms: {what}")]
    Timeout {
        /// What was being waited for (never a secret).
        what: String,
        /// The limit, in milliseconds.
        ms: u128,
    },
}

/// Counters and gauges for metrics; read with [`BrowserPool::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Chromium processes started since the pool was made.
    pub launches: u64,
    /// Browsers replaced after their task budget ([`RestartReason::Recycle`]).
    pub restarts_recycle: u64,
    /// Browsers replaced for memory.
    pub restarts_memory: u64,
    /// Browsers replaced after a crash.
    pub restarts_crash: u64,
    /// Browser contexts (tasks) open now.
    pub open_contexts: usize,
    /// Chromium instances alive now (a retiring one finishes its tasks first).
    pub browsers: usize,
    /// Summed PSS of every live browser's process tree, in bytes.
    pub pss_bytes: u64,
    /// Leftover Chromium processes of killed executors killed at start-up.
    pub leftovers_killed: usize,
}

struct Inner {
    settings: BrowserSettings,
    owner_dir: PathBuf,
    tracker: TaskTracker,
    current: tokio::sync::Mutex<Option<Arc<Instance>>>,
    all: Mutex<Vec<Weak<Instance>>>,
    stats: Mutex<PoolStats>,
}

/// A pool of (one at a time) headless Chromium browsers. Cheap to clone; share one per executor.
#[derive(Clone)]
pub struct BrowserPool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BrowserPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserPool")
            .field("owner_dir", &self.inner.owner_dir)
            .finish()
    }
}

impl BrowserPool {
    /// Makes a pool; kills the Chromium trees of dead executors under the profile root first. Launches lazily.
    ///
    /// # Errors
    /// [`BrowserError::Launch`] when the Chromium binary is missing or the profile root cannot be made.
    pub fn new(settings: BrowserSettings) -> Result<Self, BrowserError> {
        if !settings.chromium_path.is_file() {
            return Err(BrowserError::Launch(format!(
                "no Chromium at {} (set PW_CHROMIUM_PATH; apt-get install chromium)",
                settings.chromium_path.display()
            )));
        }
        let leftovers = process::clean_leftovers(&settings.profile_root);
        if leftovers > 0 {
            tracing::warn!(
                processes = leftovers,
                "killed Chromium left over by a dead executor"
            );
        }
        let owner_dir = settings.profile_root.join(process::own_tag());
        std::fs::create_dir_all(&owner_dir).map_err(|e| {
            BrowserError::Launch(format!("cannot create {}: {e}", owner_dir.display()))
        })?;
        let stats = PoolStats {
            leftovers_killed: leftovers,
            ..PoolStats::default()
        };
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                owner_dir,
                tracker: TaskTracker::new(),
                current: tokio::sync::Mutex::new(None),
                all: Mutex::new(Vec::new()),
                stats: Mutex::new(stats),
            }),
        })
    }

    /// The settings the pool runs with.
    pub fn settings(&self) -> &BrowserSettings {
        &self.inner.settings
    }

    /// Opens a fresh browser context with one page for one task; launches or replaces the browser as needed.
    ///
    /// # Errors
    /// [`BrowserError`] when no browser could be started or the context could not be made.
    pub async fn open_session(&self) -> Result<Session, BrowserError> {
        let instance = self.instance_for_task().await?;
        match Session::open(Arc::clone(&instance), self.inner.tracker.clone()).await {
            Ok(session) => Ok(session),
            Err(err) => {
                instance.end();
                if instance.is_dead() {
                    return Err(BrowserError::Crashed);
                }
                Err(err)
            }
        }
    }

    async fn instance_for_task(&self) -> Result<Arc<Instance>, BrowserError> {
        let mut current = self.inner.current.lock().await;
        if let Some(inst) = current.as_ref()
            && let Some(reason) = self.restart_reason(inst)
        {
            tracing::info!(pid = inst.pid, ?reason, "replacing chromium");
            self.count_restart(reason);
            inst.retire(reason == RestartReason::Crash);
            *current = None;
        }
        let inst = match current.as_ref() {
            Some(inst) => Arc::clone(inst),
            None => {
                let inst = Instance::launch(
                    &self.inner.settings,
                    &self.inner.owner_dir,
                    &self.inner.tracker,
                )
                .await?;
                self.lock_stats().launches += 1;
                let mut all = self.inner.all.lock().unwrap_or_else(|p| p.into_inner());
                all.retain(|w| w.strong_count() > 0);
                all.push(Arc::downgrade(&inst));
                *current = Some(Arc::clone(&inst));
                inst
            }
        };
        inst.begin();
        Ok(inst)
    }

    fn restart_reason(&self, inst: &Instance) -> Option<RestartReason> {
        if inst.is_dead() {
            Some(RestartReason::Crash)
        } else if inst.started() >= self.inner.settings.max_tasks {
            Some(RestartReason::Recycle)
        } else if process::tree_pss_bytes(inst.pid) > self.inner.settings.max_pss_bytes {
            Some(RestartReason::Memory)
        } else {
            None
        }
    }

    fn count_restart(&self, reason: RestartReason) {
        let mut s = self.lock_stats();
        match reason {
            RestartReason::Recycle => s.restarts_recycle += 1,
            RestartReason::Memory => s.restarts_memory += 1,
            RestartReason::Crash => s.restarts_crash += 1,
        }
    }

    fn lock_stats(&self) -> std::sync::MutexGuard<'_, PoolStats> {
        self.inner.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn live(&self) -> Vec<Arc<Instance>> {
        let all = self.inner.all.lock().unwrap_or_else(|p| p.into_inner());
        all.iter()
            .filter_map(Weak::upgrade)
            .filter(|i| !i.is_dead())
            .collect()
    }

    /// Current counters and gauges (reads `/proc` for PSS: call it from a sampler, not a hot loop).
    pub fn stats(&self) -> PoolStats {
        let live = self.live();
        let mut s = self.lock_stats().clone();
        s.browsers = live.len();
        s.open_contexts = live.iter().map(|i| i.open()).sum();
        s.pss_bytes = live.iter().map(|i| process::tree_pss_bytes(i.pid)).sum();
        s
    }

    /// Pids of the live browsers' main processes (tests kill one to prove crash recovery).
    pub fn browser_pids(&self) -> Vec<u32> {
        self.live().iter().map(|i| i.pid).collect()
    }

    /// Stops every browser (open sessions fail) and waits for the background work to end.
    pub async fn shutdown(&self) {
        // Held until every browser was shut down: dropping the last handle of a browser kills it (chromiumoxide),
        // which its connection reports as an ERROR, what a crash looks like.
        let _current = self.inner.current.lock().await.take();
        let all: Vec<Arc<Instance>> = {
            let all = self.inner.all.lock().unwrap_or_else(|p| p.into_inner());
            all.iter().filter_map(Weak::upgrade).collect()
        };
        for inst in all {
            inst.retire(true);
        }
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
        let _ = std::fs::remove_dir(&self.inner.owner_dir);
    }
}

//! One running Chromium: its launch flags, its own profile directory, the handler task that drives the
//! DevTools connection (and notices when the process dies), and its retirement once idle.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chromiumoxide::{Browser, BrowserConfig};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{BrowserError, process};
use crate::config::BrowserSettings;

/// Flags every browser gets, without the leading `--` (chromiumoxide adds it). Headless and no-sandbox are
/// set through the builder.
const FLAGS: &[&str] = &[
    "disable-gpu",
    "disable-quic",
    "no-first-run",
    "disable-background-networking",
    "disable-component-update",
    "disable-sync",
    "disable-dev-shm-usage",
    "disable-crash-reporter",
    "disable-breakpad",
    "no-default-browser-check",
    "password-store=basic",
];

/// Task accounting of one browser.
#[derive(Debug, Default)]
struct Usage {
    started: u32,
    open: usize,
    retiring: bool,
    shut: bool,
}

/// A launched Chromium. Shared by the sessions running in it; shut down once retired and idle.
pub(crate) struct Instance {
    pub(crate) browser: Browser,
    pub(crate) pid: u32,
    profile_dir: PathBuf,
    /// Cancelled when the process died or the DevTools connection ended.
    dead: CancellationToken,
    /// Cancelled to stop the handler task.
    stop: CancellationToken,
    usage: Mutex<Usage>,
    tracker: TaskTracker,
}

impl Instance {
    /// Starts Chromium with its own profile under `owner_dir` and spawns its handler task on `tracker`.
    pub(crate) async fn launch(
        settings: &BrowserSettings,
        owner_dir: &Path,
        tracker: &TaskTracker,
    ) -> Result<Arc<Self>, BrowserError> {
        let profile_dir = owner_dir.join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::create_dir_all(&profile_dir)
            .map_err(|e| BrowserError::Launch(format!("cannot create profile dir: {e}")))?;
        let config = config(settings, &profile_dir)?;
        let (mut browser, mut handler) = match Browser::launch(config).await {
            Ok(pair) => pair,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&profile_dir);
                return Err(BrowserError::Launch(format!(
                    "cannot start {}: {e}",
                    settings.chromium_path.display()
                )));
            }
        };
        let pid = browser
            .get_mut_child()
            .and_then(|c| c.as_mut_inner().id())
            .unwrap_or(0);
        let dead = CancellationToken::new();
        let stop = CancellationToken::new();
        let (dead2, stop2) = (dead.clone(), stop.clone());
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    biased;
                    _ = stop2.cancelled() => break,
                    event = handler.next() => match event {
                        Some(Ok(())) => {}
                        Some(Err(err)) => tracing::debug!(pid, error = %err, "chromium connection error"),
                        None => break,
                    },
                    _ = tick.tick() => if !process::is_alive(pid) {
                        tracing::warn!(pid, "chromium process is gone");
                        break;
                    },
                }
            }
            // Dropping the handler fails every pending command at once instead of at its timeout.
            drop(handler);
            dead2.cancel();
        });
        tracing::info!(pid, "chromium started");
        Ok(Arc::new(Self {
            browser,
            pid,
            profile_dir,
            dead,
            stop,
            usage: Mutex::new(Usage::default()),
            tracker: tracker.clone(),
        }))
    }

    /// True once the process died or its connection ended.
    pub(crate) fn is_dead(&self) -> bool {
        self.dead.is_cancelled() || !process::is_alive(self.pid)
    }

    /// Tasks started in this browser so far.
    pub(crate) fn started(&self) -> u32 {
        self.lock().started
    }

    /// Contexts open right now.
    pub(crate) fn open(&self) -> usize {
        self.lock().open
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Usage> {
        self.usage.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a task starting in this browser.
    pub(crate) fn begin(&self) {
        let mut u = self.lock();
        u.started += 1;
        u.open += 1;
    }

    /// Counts a task ending; shuts the browser down when it was retired and this was its last task.
    pub(crate) fn end(self: &Arc<Self>) {
        let shut_now = {
            let mut u = self.lock();
            u.open = u.open.saturating_sub(1);
            u.retiring && u.open == 0 && !std::mem::replace(&mut u.shut, true)
        };
        if shut_now {
            self.spawn_shutdown();
        }
    }

    /// Takes no new tasks; shuts down once idle (at once when `force`, e.g. after a crash).
    pub(crate) fn retire(self: &Arc<Self>, force: bool) {
        let shut_now = {
            let mut u = self.lock();
            u.retiring = true;
            (force || u.open == 0) && !std::mem::replace(&mut u.shut, true)
        };
        if shut_now {
            self.spawn_shutdown();
        }
    }

    fn spawn_shutdown(self: &Arc<Self>) {
        let this = Arc::clone(self);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                self.tracker
                    .spawn_on(async move { this.shutdown().await }, &rt);
            }
            // No runtime (dropped at exit): kill the tree now; the profile goes at the next start-up.
            Err(_) => process::kill_all(&process::tree(self.pid)),
        }
    }

    /// Closes Chromium politely, then kills whatever of its tree is left and removes the profile.
    pub(crate) async fn shutdown(&self) {
        let pids = process::tree(self.pid);
        if !self.is_dead() {
            // Stop reading the connection first (the handler task has ended), then let Chromium exit on SIGTERM: its connection ending is
            // expected now, and chromiumoxide would log it as an ERROR ("WS Connection error"), what a crash
            // looks like.
            self.stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(1), self.dead.cancelled()).await;
            process::terminate(self.pid);
            let exited = async {
                while process::is_alive(self.pid) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(3), exited).await;
        }
        let left: Vec<u32> = pids.into_iter().filter(|&p| process::is_alive(p)).collect();
        process::kill_all(&left);
        self.stop.cancel();
        let dir = self.profile_dir.clone();
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
        tracing::info!(pid = self.pid, "chromium stopped");
    }
}

fn config(settings: &BrowserSettings, profile_dir: &Path) -> Result<BrowserConfig, BrowserError> {
    let mut builder = BrowserConfig::builder()
        .chrome_executable(&settings.chromium_path)
        .new_headless_mode()
        .user_data_dir(profile_dir)
        .launch_timeout(settings.launch_timeout)
        .request_timeout(settings.step_timeout)
        .window_size(1280, 900)
        .viewport(None)
        .args(FLAGS.iter().copied())
        .args(settings.extra_args.iter().map(String::as_str));
    if running_as_root() {
        builder = builder.no_sandbox();
    }
    builder.build().map_err(BrowserError::Launch)
}

/// Chromium refuses its sandbox as root; read the uid from `/proc` (no libc: `unsafe` is forbidden).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next().map(|u| u == "0"))
        })
        .unwrap_or(false)
}

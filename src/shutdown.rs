//! Turning SIGINT/SIGTERM into one `CancellationToken`, and draining spawned work with a deadline.
//! Knows nothing about what is being drained.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A token cancelled on the first SIGINT or SIGTERM. The binary calls this once and passes the token down.
pub(crate) fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown signal received");
        trigger.cancel();
    });
    token
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

/// A service's background work (endpoints, samplers): spawned on one tracker, stopped together by
/// [`Self::stop`] after the main loop returned.
#[derive(Debug, Default)]
pub(crate) struct Background {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Background {
    /// No work yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The token the work must stop on.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Runs `work` in the background until [`Self::stop`].
    pub fn spawn<F>(&self, work: F)
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(work);
    }

    /// Cancels the token and waits for every spawned task.
    pub async fn stop(self) {
        self.token.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Closes `tracker` and waits for its tasks up to `grace`. Returns whether everything finished in time.
pub async fn drain(tracker: &TaskTracker, grace: Duration) -> bool {
    tracker.close();
    tokio::time::timeout(grace, tracker.wait()).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn drain_reports_tasks_that_outlive_the_grace_period() {
        let tracker = TaskTracker::new();
        tracker.spawn(tokio::time::sleep(Duration::from_secs(5)));
        assert!(!drain(&tracker, Duration::from_secs(1)).await);
        assert!(drain(&tracker, Duration::from_secs(10)).await);
    }
}

//! Benchmark/test only: a driver that registers nothing. It waits `PW_SYNTHETIC_DELAY_MS`, then returns
//! plausible credentials (and a feed for main-site tasks), so the real `executor` binary can be driven
//! end to end without a browser. Also the seam where the binary's drivers are assembled from config.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::config::ExecutorSettings;
use crate::driver::{Driver, DriverError, Drivers};
use crate::task::{Registration, Task, normalise_domain};

/// Waits, then "registers" the task's own email and username. Never use in production.
#[derive(Debug, Clone)]
pub struct SyntheticDriver {
    delay: Duration,
    broken: bool,
}

impl SyntheticDriver {
    /// A driver whose every registration takes `delay`.
    pub fn new(delay: Duration) -> Self {
        Self {
            delay,
            broken: false,
        }
    }

    /// A driver whose every registration fails after `delay` as a recipe that no longer fits its site
    /// (`recipe error: …`, permanent): what the circuit breaker counts (`PW_SYNTHETIC_FAIL_DOMAINS`).
    pub fn broken(delay: Duration) -> Self {
        Self {
            delay,
            broken: true,
        }
    }
}

#[async_trait::async_trait]
impl Driver for SyntheticDriver {
    fn name(&self) -> &str {
        "synthetic"
    }

    async fn register(&self, task: &Task) -> Result<Registration, DriverError> {
        tracing::debug!(
            delay_ms = self.delay.as_millis() as u64,
            "synthetic registration"
        );
        tokio::time::sleep(self.delay).await;
        let domain = normalise_domain(&task.domain);
        if self.broken {
            return Err(DriverError::new(
                crate::driver::FailureKind::Recipe,
                false,
                format!("synthetic broken recipe for {domain} (PW_SYNTHETIC_FAIL_DOMAINS)"),
            ));
        }
        let username = if task.username.is_empty() {
            format!("user-{}", task.id)
        } else {
            task.username.clone()
        };
        Ok(Registration {
            email: Some(task.email.clone()),
            username: Some(username),
            password: Some(SecretString::from(task.password.expose_secret().to_owned())),
            cookie: Some(SecretString::from(format!("sid=synthetic-{}", task.id))),
            link_rss: task
                .link_rss
                .is_none()
                .then(|| format!("https://{domain}/s/{}/podcast/rss", task.id)),
            note: Some("synthetic driver".into()),
        })
    }
}

/// The drivers the executor binary serves, from its configuration. Today: the synthetic driver on
/// `PW_SYNTHETIC_DOMAINS` (and its broken variant on `PW_SYNTHETIC_FAIL_DOMAINS`). Recipe (browser) drivers are added here when they exist; a synthetic domain
/// wins over a recipe one, so a benchmark never opens a browser.
pub fn drivers_from_config(settings: &ExecutorSettings) -> Drivers {
    let mut drivers = Drivers::new();
    let synthetic: Arc<dyn Driver> = Arc::new(SyntheticDriver::new(settings.synthetic_delay));
    for domain in &settings.synthetic_domains {
        drivers.insert(domain, synthetic.clone());
    }
    let broken: Arc<dyn Driver> = Arc::new(SyntheticDriver::broken(settings.synthetic_delay));
    for domain in &settings.synthetic_fail_domains {
        drivers.insert(domain, broken.clone());
    }
    drivers
}

//! Executor limits against a real Redis and the simulator: per-domain concurrency caps, and claiming paused
//! (entry left un-acked, readiness false) while the manager refuses the API key.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use podcast_worker::driver::{Driver, DriverError, Drivers};
use podcast_worker::executor::{Executor, Outcome};
use podcast_worker::metrics::Metrics;
use podcast_worker::task::{Registration, Site, Task};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::helpers::executor::{TestEnv, metrics};
use crate::helpers::streams::pending;
use crate::helpers::{cleanup, eventually};

/// Records how many registrations overlap.
#[derive(Default)]
struct Overlap {
    now: AtomicUsize,
    max: AtomicUsize,
    runs: AtomicUsize,
}

#[async_trait::async_trait]
impl Driver for Overlap {
    fn name(&self) -> &str {
        "overlap"
    }

    async fn register(&self, task: &Task) -> Result<Registration, DriverError> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        self.runs.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(150)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        Ok(Registration {
            username: Some(format!("u-{}", task.id)),
            cookie: Some(SecretString::from("sid=x".to_owned())),
            link_rss: Some(format!("https://feeds.test/{}", task.id)),
            ..Default::default()
        })
    }
}

/// Sum of a counter's samples whose line contains every `labels` fragment.
fn counter(m: &Metrics, name: &str, labels: &[&str]) -> f64 {
    m.render()
        .lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|f| l.contains(f)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_respects_per_domain_limits() {
    let env = TestEnv::new().await;
    let ids = env.add(4, 0, "capped.test", &[]);
    let extra = [
        ("PW_CONCURRENCY", "4"),
        ("PW_DOMAIN_LIMITS", "capped.test=1"),
    ];
    let cfg = env.executor_config("capped", &extra);
    let driver = Arc::new(Overlap::default());
    let mut drivers = Drivers::new();
    drivers.insert("capped.test", driver.clone());
    let m = metrics();
    let ex = Executor::new(&cfg, drivers, m.clone()).await.unwrap();
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    let run = tokio::spawn(async move { ex.run(c).await });
    let mut fetcher = env.fetcher().await;
    fetcher.fetch_once().await;
    let (e, i) = (&env, &ids);
    eventually(
        Duration::from_secs(30),
        "every capped task completed",
        || async move { e.all_in(i, "completed").then_some(()) },
    )
    .await;
    cancel.cancel();
    run.await.unwrap();
    assert_eq!(driver.runs.load(Ordering::SeqCst), 4);
    assert_eq!(
        driver.max.load(Ordering::SeqCst),
        1,
        "the domain cap was exceeded"
    );
    let finished = counter(&m, "pw_tasks_finished_total", &["outcome=\"completed\""]);
    assert_eq!(finished, 4.0);
    cleanup(&env.prefix).await;
}

#[tokio::test]
async fn executor_pauses_when_the_manager_refuses_the_api_key() {
    let env = TestEnv::new().await;
    let ids = env.add(1, 0, "main.test", &[]);
    let mut fetcher = env.fetcher().await;
    fetcher.fetch_once().await;
    let cfg = env.executor_config("unauthorised", &[("PW_API_KEY", "wrong-key-123")]);
    let mut drivers = Drivers::new();
    let driver = Arc::new(Overlap::default());
    drivers.insert("main.test", driver.clone());
    let m = metrics();
    let ex = Executor::new(&cfg, drivers, m.clone()).await.unwrap();
    assert_eq!(ex.process_next().await.unwrap(), Outcome::Halted);
    assert_eq!(driver.runs.load(Ordering::SeqCst), 0);
    assert_eq!(
        pending(&env.prefix, Site::Main).await,
        1,
        "the entry stays for a later delivery"
    );
    assert_eq!(env.state(&ids[0]), "handed_out");
    let ready = m.health().readiness();
    assert!(
        !ready.is_ready() && ready.problems.iter().any(|p| p.contains("key")),
        "{ready:?}"
    );
    assert_eq!(counter(&m, "pw_api_key_refused", &[]), 1.0);
    cleanup(&env.prefix).await;
}

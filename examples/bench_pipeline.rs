//! Benchmark of the whole pipeline in one process: simulator → fetcher → Redis → executors (a driver that
//! returns at once) → reports, until the simulator has every task completed. Not a test: prints a Markdown
//! table row. Uses `REDIS_URL` (default redis://127.0.0.1:6379) and its own key prefix, deleted at the end.
//!
//! `cargo run --release --example bench_pipeline -- --tasks 2000 --executors 4 --concurrency 8`

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use podcast_worker::config::{ExecutorConfig, FetcherConfig, Source};
use podcast_worker::driver::{Driver, DriverError, Drivers};
use podcast_worker::executor::Executor;
use podcast_worker::fetcher::Fetcher;
use podcast_worker::metrics::{Metrics, MetricsOptions};
use podcast_worker::task::{Registration, Task};
use pw_simulator::{
    self as simulator, DEFAULT_MAIN_DOMAIN, DEFAULT_SUB_DOMAINS, ScenarioSpec, SimulatorHandle,
    SimulatorOptions,
};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
struct Args {
    /// Tasks in total (rounded down to whole requests of 1 main + `subs` sub-site tasks).
    #[arg(long, default_value_t = 2000)]
    tasks: u32,
    /// Sub-site tasks per request.
    #[arg(long, default_value_t = 3)]
    subs: u32,
    /// Executors (each one consumer, as separate processes would be).
    #[arg(long, default_value_t = 4)]
    executors: usize,
    /// Tasks each executor runs at once (PW_CONCURRENCY).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Page size of the fetcher (PW_FETCH_LIMIT).
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Backlog cap per stream (PW_MAX_BACKLOG).
    #[arg(long, default_value_t = 400)]
    backlog: u32,
}

const KEY: &str = "bench-key";

/// Registers nothing, at once.
struct InstantDriver;

#[async_trait::async_trait]
impl Driver for InstantDriver {
    fn name(&self) -> &str {
        "instant"
    }

    async fn register(&self, task: &Task) -> Result<Registration, DriverError> {
        Ok(Registration {
            email: Some(task.email.clone()),
            password: Some(SecretString::from("Bench!pw123")),
            link_rss: task
                .link_rss
                .is_none()
                .then(|| format!("https://feeds.test/{}/rss", task.id)),
            ..Registration::default()
        })
    }
}

fn source(args: &Args, prefix: &str, sim: &SimulatorHandle, consumer: &str) -> Source {
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    Source::from_pairs([
        ("PW_REDIS_URL", redis),
        ("PW_KEY_PREFIX", prefix.to_owned()),
        ("PW_API_BASE_URL", sim.api_base_url()),
        ("PW_API_KEY", KEY.to_owned()),
        ("PW_OUTBOX_KEY", "ab".repeat(32)),
        ("PW_CONSUMER_NAME", consumer.to_owned()),
        ("PW_CONCURRENCY", args.concurrency.to_string()),
        ("PW_READ_BLOCK_MS", "100".to_owned()),
        ("PW_POLL_MIN_MS", "20".to_owned()),
        ("PW_POLL_MAX_MS", "200".to_owned()),
        ("PW_FETCH_LIMIT", args.limit.to_string()),
        ("PW_MAX_BACKLOG", args.backlog.to_string()),
        ("PW_METRICS_ADDR", "127.0.0.1:0".to_owned()),
        ("PW_LOG", "warn".to_owned()),
    ])
}

fn metrics(role: &'static str) -> anyhow::Result<Arc<Metrics>> {
    Ok(Arc::new(Metrics::new(MetricsOptions {
        role,
        version: "bench",
        domains: vec![],
        stall_after: Duration::from_secs(3600),
    })?))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let requests = args.tasks / (1 + args.subs);
    let mut opts = SimulatorOptions::for_test(KEY);
    opts.scenario = ScenarioSpec {
        requests,
        subs_per_request: args.subs,
        ..ScenarioSpec::default()
    };
    let sim = simulator::spawn(opts).await?;
    let total = sim.audit().total;
    let prefix = format!("{{pwbench-{}}}", uuid::Uuid::new_v4().simple());
    let mut drivers = Drivers::new();
    let driver: Arc<dyn Driver> = Arc::new(InstantDriver);
    for d in std::iter::once(DEFAULT_MAIN_DOMAIN).chain(DEFAULT_SUB_DOMAINS.iter().copied()) {
        drivers.insert(d, driver.clone());
    }
    let cancel = CancellationToken::new();
    let mut running = tokio::task::JoinSet::new();
    let started = Instant::now();
    let cfg = FetcherConfig::from_source(&source(&args, &prefix, &sim, "fetcher"))?;
    let fetcher = Fetcher::connect(&cfg.streams, &cfg.api, cfg.fetcher, metrics("fetcher")?)
        .await
        .context("while connecting the fetcher to Redis")?;
    running.spawn(fetcher.run(cancel.clone()));
    for i in 0..args.executors {
        let cfg =
            ExecutorConfig::from_source(&source(&args, &prefix, &sim, &format!("bench-{i}")))?;
        let exec = Executor::new(&cfg, drivers.clone(), metrics("executor")?).await?;
        let cancel = cancel.clone();
        running.spawn(async move { exec.run(cancel).await });
    }
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let audit = loop {
        tick.tick().await;
        let a = sim.audit();
        if a.counts["completed"] == total {
            break a;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "no progress: {a:?}"
        );
    };
    let took = started.elapsed().as_secs_f64();
    cancel.cancel();
    while running.join_next().await.is_some() {}
    println!(
        "| tasks | executors × concurrency | seconds | tasks/s | API requests (hand-outs, starts, completes) | audit |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {total} | {} × {} | {took:.2} | {:.0} | {}, {}, {} | {} |",
        args.executors,
        args.concurrency,
        total as f64 / took,
        audit.reports.handed_out,
        audit.reports.started,
        audit.reports.completed,
        if audit.clean { "clean" } else { "NOT clean" }
    );
    let mut conn = podcast_worker::streams::connect(&cfg.streams, Duration::from_secs(30)).await?;
    let pattern = format!("{}*", prefix.replace('{', "\\{").replace('}', "\\}"));
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut conn)
        .await?;
    if !keys.is_empty() {
        let () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
    }
    Ok(())
}

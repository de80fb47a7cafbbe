//! Benchmark of the Redis layer alone: de-duplicated enqueue (the fetcher's script), then claim + ack
//! (the executor's XREADGROUP and XACK+XDEL+DEL), then both at once with end-to-end latency.
//! Not a test: prints a Markdown table. Uses `REDIS_URL` (default redis://127.0.0.1:6379) and its own key
//! prefix, deleted at the end.
//!
//! `cargo run --release --example bench_redis -- --tasks 20000 --consumers 4 --batch 200`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser;
use podcast_worker::config::StreamSettings;
use podcast_worker::streams::consumer::Consumer;
use podcast_worker::streams::producer::{Enqueued, Producer};
use podcast_worker::task::{ListedTask, QueueEntry, Site, TaskId};

#[derive(Parser, Debug)]
struct Args {
    /// Tasks per phase.
    #[arg(long, default_value_t = 20_000)]
    tasks: usize,
    /// Concurrent consumers (executor processes).
    #[arg(long, default_value_t = 4)]
    consumers: usize,
    /// Entries per enqueue pipeline and per claim.
    #[arg(long, default_value_t = 200)]
    batch: usize,
}

fn settings(prefix: &str) -> StreamSettings {
    StreamSettings {
        redis_url: std::env::var("REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
            .into(),
        key_prefix: prefix.to_owned(),
        maxlen: 10_000_000,
        claim_idle: Duration::from_secs(600),
        lease_renew: Duration::from_secs(60),
        max_deliveries: 5,
        read_block: Duration::from_millis(50),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn entries(phase: &str, n: usize) -> anyhow::Result<Vec<QueueEntry>> {
    (0..n)
        .map(|i| {
            let task = ListedTask {
                id: TaskId::parse(&format!("{phase}-{i}"))?,
                request_id: format!("r{}", i / 4),
                domain: if i % 4 == 0 {
                    "anchor.fm"
                } else {
                    "podbean.com"
                }
                .into(),
                group_id: "g".into(),
                link_rss: None,
            };
            let site = if i % 4 == 0 { Site::Main } else { Site::Sub };
            Ok(QueueEntry::new(&task, site, now_ms()))
        })
        .collect()
}

async fn enqueue_all(p: &Producer, all: &[QueueEntry], batch: usize) -> anyhow::Result<usize> {
    let mut added = 0;
    for chunk in all.chunks(batch) {
        let out = p.enqueue_batch(chunk).await?;
        added += out
            .iter()
            .filter(|r| matches!(r, Enqueued::Added(_)))
            .count();
    }
    Ok(added)
}

/// Consumers claim and ack until `target` entries are done; returns end-to-end latencies (ms).
async fn drain(
    consumers: &[Arc<Consumer>],
    target: usize,
    batch: usize,
) -> anyhow::Result<Vec<u64>> {
    let done = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for c in consumers {
        let (c, done) = (c.clone(), done.clone());
        set.spawn(async move {
            let mut lat = Vec::new();
            while done.load(Ordering::Relaxed) < target {
                for claimed in c.claim(batch).await? {
                    let entry = claimed.entry.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
                    // As the executor does: the run lease (the fence) before any work, then the one settle.
                    c.fence(&claimed)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("run lease held by another consumer"))?;
                    c.ack(&claimed, Some(&entry.id)).await?;
                    lat.push(now_ms().saturating_sub(entry.fetched_at_ms));
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            anyhow::Ok(lat)
        });
    }
    let mut all = Vec::new();
    while let Some(r) = set.join_next().await {
        all.extend(r??);
    }
    Ok(all)
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let prefix = format!("{{pwbench-{}}}", uuid::Uuid::new_v4().simple());
    let s = settings(&prefix);
    let producer = Producer::connect(&s, Duration::from_secs(3600))
        .await
        .context("while connecting to Redis")?;
    let mut consumers = Vec::new();
    for i in 0..args.consumers {
        consumers.push(Arc::new(
            Consumer::connect(&s, &format!("bench-{i}")).await?,
        ));
    }
    println!("| phase | tasks | seconds | tasks/s | notes |\n|---|---|---|---|---|");

    let first = entries("a", args.tasks)?;
    let t = Instant::now();
    let added = enqueue_all(&producer, &first, args.batch).await?;
    report(
        "enqueue (SET NX + XADD script, pipelined)",
        added,
        t.elapsed(),
        "",
    );
    let t = Instant::now();
    let dups = enqueue_all(&producer, &first, args.batch).await?;
    report(
        "enqueue of duplicates (all refused)",
        args.tasks,
        t.elapsed(),
        &format!("{dups} added"),
    );
    let t = Instant::now();
    drain(&consumers, args.tasks, args.batch).await?;
    let note = format!(
        "{} consumers, claim ≤ {} per read",
        args.consumers, args.batch
    );
    report(
        "claim + fence + ack (XREADGROUP; fence.lua; settle.lua)",
        args.tasks,
        t.elapsed(),
        &note,
    );

    let second = entries("b", args.tasks)?;
    let t = Instant::now();
    let (fed, lat) = tokio::join!(
        async {
            let mut n = 0;
            for chunk in second.chunks(args.batch) {
                let stamped: Vec<QueueEntry> = chunk
                    .iter()
                    .cloned()
                    .map(|mut e| {
                        e.fetched_at_ms = now_ms();
                        e
                    })
                    .collect();
                n += enqueue_all(&producer, &stamped, args.batch).await?;
            }
            anyhow::Ok(n)
        },
        drain(&consumers, args.tasks, args.batch)
    );
    let (fed, mut lat) = (fed?, lat?);
    lat.sort_unstable();
    let note = format!(
        "enqueue→ack latency p50 {} ms, p99 {} ms, max {} ms",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(0)
    );
    report("both at once (end to end)", fed, t.elapsed(), &note);
    cleanup(&s, &prefix).await
}

fn report(phase: &str, n: usize, took: Duration, note: &str) {
    let secs = took.as_secs_f64();
    println!(
        "| {phase} | {n} | {secs:.2} | {:.0} | {note} |",
        n as f64 / secs
    );
}

async fn cleanup(s: &StreamSettings, prefix: &str) -> anyhow::Result<()> {
    let mut conn = podcast_worker::streams::connect(s, Duration::from_secs(30)).await?;
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

//! Samples queue depth from Redis into the stream gauges: XLEN of every stream, lag and pending of the
//! consumer group on the task streams (XINFO GROUPS), and the outbox size (SCAN). Key names arrive as
//! plain strings so this module stays independent of `streams`.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionLike;
use tokio_util::sync::CancellationToken;

use super::Metrics;

/// What to sample and how often.
#[derive(Debug, Clone)]
pub struct SamplerSpec {
    /// Task streams as (`stream` label, key), e.g. `("main", "{pw}:tasks:main")`.
    pub task_streams: Vec<(String, String)>,
    /// The dead-letter stream's key (label `dead`).
    pub dead_stream: String,
    /// The consumer group whose lag and pending are reported.
    pub group: String,
    /// SCAN pattern of outbox keys (e.g. `{pw}:outbox:*`); `None` to not sample the outbox. Prefer one
    /// sampling process (the fetcher) for it: SCAN walks the whole keyspace.
    pub outbox_pattern: Option<String>,
    /// Time between samples.
    pub interval: Duration,
}

/// Takes one sample of everything in `spec`.
///
/// # Errors
/// The first failing Redis command; gauges already set stay set.
pub async fn sample_once<C: ConnectionLike + Send>(
    conn: &mut C,
    spec: &SamplerSpec,
    metrics: &Metrics,
) -> redis::RedisResult<()> {
    for (label, key) in &spec.task_streams {
        let length: u64 = redis::cmd("XLEN").arg(key).query_async(conn).await?;
        let exists: bool = redis::cmd("EXISTS").arg(key).query_async(conn).await?;
        let group = if exists {
            let groups: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(key)
                .query_async(conn)
                .await?;
            groups.groups.into_iter().find(|g| g.name == spec.group)
        } else {
            None
        };
        let (lag, pending) = match group {
            // Acked entries are deleted, so the stream holds pending + undelivered: a good fallback when
            // Redis cannot compute the lag.
            Some(g) => (
                g.lag
                    .map_or(length.saturating_sub(g.pending as u64), |l| l as u64),
                g.pending as u64,
            ),
            None => (length, 0),
        };
        metrics.set_stream(label, length, Some((lag, pending)));
    }
    let dead: u64 = redis::cmd("XLEN")
        .arg(&spec.dead_stream)
        .query_async(conn)
        .await?;
    metrics.set_stream("dead", dead, None);
    if let Some(pattern) = &spec.outbox_pattern {
        metrics.set_outbox(count_keys(conn, pattern).await?);
    }
    Ok(())
}

async fn count_keys<C: ConnectionLike + Send>(
    conn: &mut C,
    pattern: &str,
) -> redis::RedisResult<u64> {
    let mut cursor: u64 = 0;
    let mut count = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        count += keys.len() as u64;
        if next == 0 {
            return Ok(count);
        }
        cursor = next;
    }
}

/// Samples every `spec.interval` until `cancel` fires, setting `pw_redis_up` and Redis readiness from the
/// result of each sample. A failure is logged when the state changes, not at every interval.
pub async fn run_sampler<C: ConnectionLike + Send>(
    mut conn: C,
    spec: SamplerSpec,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(spec.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_up = true;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let sample = tokio::time::timeout(
            spec.interval.max(Duration::from_secs(1)),
            sample_once(&mut conn, &spec, &metrics),
        )
        .await;
        let up = matches!(sample, Ok(Ok(())));
        metrics.set_redis_reachable(up);
        if was_up && !up {
            match sample {
                Ok(Err(e)) => tracing::warn!(error = %e, "stream sampling failed"),
                _ => tracing::warn!("stream sampling timed out"),
            }
        } else if !was_up && up {
            tracing::info!("stream sampling recovered");
        }
        was_up = up;
    }
}

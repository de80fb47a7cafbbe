//! The metrics module against a real Redis: the stream sampler reports lag, pending, dead letters and the
//! outbox size of one key prefix.

use std::sync::Arc;
use std::time::Duration;

use podcast_worker::metrics::{Metrics, MetricsOptions, SamplerSpec, run_sampler, sample_once};
use podcast_worker::streams::{GROUP, StreamKeys};
use podcast_worker::task::Site;
use redis::AsyncCommands;

use crate::helpers::{cleanup, eventually, redis_conn, unique_prefix};

fn metrics() -> Arc<Metrics> {
    Arc::new(
        Metrics::new(MetricsOptions {
            role: "fetcher",
            version: "test",
            domains: vec![],
            stall_after: Duration::from_secs(60),
        })
        .unwrap(),
    )
}

fn spec(keys: &StreamKeys) -> SamplerSpec {
    SamplerSpec {
        task_streams: Site::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), keys.tasks(*s)))
            .collect(),
        dead_stream: keys.dead(),
        group: GROUP.to_owned(),
        outbox_pattern: Some(keys.outbox_pattern()),
        interval: Duration::from_millis(100),
    }
}

#[tokio::test]
async fn metrics_sampler_reports_lag_pending_dead_letters_and_outbox() {
    let prefix = unique_prefix();
    let keys = StreamKeys::new(&prefix);
    let mut conn = redis_conn().await;
    let main = keys.tasks(Site::Main);
    for i in 0..3 {
        let _: String = conn.xadd(&main, "*", &[("task", i)]).await.unwrap();
    }
    let _: () = redis::cmd("XGROUP")
        .arg(&["CREATE", main.as_str(), GROUP, "0"])
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: redis::streams::StreamReadReply = conn
        .xread_options(
            &[&main],
            &[">"],
            &redis::streams::StreamReadOptions::default()
                .group(GROUP, "c1")
                .count(1),
        )
        .await
        .unwrap();
    let _: String = conn
        .xadd(keys.dead(), "*", &[("reason", "x")])
        .await
        .unwrap();
    for i in 0..2 {
        let _: () = conn
            .set(format!("{prefix}:outbox:t-{i}"), "sealed")
            .await
            .unwrap();
    }

    let m = metrics();
    sample_once(&mut conn, &spec(&keys), &m).await.unwrap();
    let text = m.render();
    for line in [
        r#"pw_stream_length{stream="main"} 3"#,
        r#"pw_stream_lag{stream="main"} 2"#,
        r#"pw_stream_pending{stream="main"} 1"#,
        r#"pw_stream_length{stream="sub"} 0"#,
        r#"pw_stream_lag{stream="sub"} 0"#,
        r#"pw_stream_length{stream="dead"} 1"#,
        "pw_outbox_entries 2",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }

    // The loop keeps sampling and marks Redis reachable.
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(run_sampler(
        conn.clone(),
        spec(&keys),
        m.clone(),
        cancel.clone(),
    ));
    let _: String = conn.xadd(&main, "*", &[("task", 9)]).await.unwrap();
    eventually(
        Duration::from_secs(5),
        "the sampler to see the new entry",
        || {
            let text = m.render();
            async move {
                (text.contains(r#"pw_stream_lag{stream="main"} 3"#)
                    && text.contains("pw_redis_up 1"))
                .then_some(())
            }
        },
    )
    .await;
    cancel.cancel();
    task.await.unwrap();
    cleanup(&prefix).await;
}

//! The producer against a real Redis: atomic de-duplication, marker TTL, routing to streams, backlog.

use std::time::Duration;

use podcast_worker::config::OutboxKey;
use podcast_worker::outbox::{Outbox, OutboxRecord, Report};
use podcast_worker::streams::consumer::Consumer;
use podcast_worker::streams::producer::{Enqueued, Producer};
use podcast_worker::streams::{ENTRY_FIELD, GROUP, StreamKeys, connect};
use podcast_worker::task::{ListedTask, QueueEntry, Registration, Site, TaskId};
use redis::AsyncCommands;

use crate::helpers::streams::stream_settings;
use crate::helpers::{cleanup, redis_conn, unique_prefix};

fn entry(id: &str, site: Site) -> QueueEntry {
    let task = ListedTask {
        id: TaskId::parse(id).unwrap(),
        request_id: "r1".into(),
        domain: "anchor.fm".into(),
        group_id: "g1".into(),
        link_rss: None,
    };
    QueueEntry::new(&task, site, 1)
}

#[tokio::test]
async fn producer_enqueues_an_id_once_and_routes_by_site() {
    let prefix = unique_prefix();
    let p = Producer::connect(&stream_settings(&prefix), Duration::from_secs(300))
        .await
        .unwrap();
    let batch = [
        entry("a", Site::Main),
        entry("b", Site::Sub),
        entry("a", Site::Main),
    ];
    let out = p.enqueue_batch(&batch).await.unwrap();
    assert!(matches!(out[0], Enqueued::Added(_)) && matches!(out[1], Enqueued::Added(_)));
    assert_eq!(out[2], Enqueued::Duplicate);
    // A second producer (a second fetcher) cannot queue it either.
    let p2 = Producer::connect(&stream_settings(&prefix), Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(
        p2.enqueue(&entry("a", Site::Sub)).await.unwrap(),
        Enqueued::Duplicate
    );

    let mut conn = redis_conn().await;
    let keys = p.keys();
    let main_len: u64 = conn.xlen(keys.tasks(Site::Main)).await.unwrap();
    let sub_len: u64 = conn.xlen(keys.tasks(Site::Sub)).await.unwrap();
    assert_eq!((main_len, sub_len), (1, 1));
    let ttl: i64 = conn
        .ttl(keys.inflight(&TaskId::parse("a").unwrap()))
        .await
        .unwrap();
    assert!((290..=300).contains(&ttl), "{ttl}");
    let marker: String = conn
        .get(keys.inflight(&TaskId::parse("b").unwrap()))
        .await
        .unwrap();
    assert_eq!(marker, "queued");
    let read: redis::streams::StreamRangeReply =
        conn.xrange_all(keys.tasks(Site::Main)).await.unwrap();
    let payload: String = read.ids[0].get(ENTRY_FIELD).unwrap();
    assert_eq!(
        QueueEntry::decode(payload.as_bytes()).unwrap(),
        entry("a", Site::Main)
    );
    cleanup(&prefix).await;
}

#[tokio::test]
async fn producer_backlog_counts_lag_and_pending() {
    let prefix = unique_prefix();
    let p = Producer::connect(&stream_settings(&prefix), Duration::from_secs(300))
        .await
        .unwrap();
    let batch: Vec<_> = (0..5)
        .map(|i| entry(&format!("t{i}"), Site::Main))
        .collect();
    p.enqueue_batch(&batch).await.unwrap();
    let mut conn = redis_conn().await;
    let key = p.keys().tasks(Site::Main);
    let opts = redis::streams::StreamReadOptions::default()
        .group(GROUP, "c1")
        .count(2);
    let _: redis::streams::StreamReadReply =
        conn.xread_options(&[&key], &[">"], &opts).await.unwrap();
    let b = p.backlog(Site::Main).await.unwrap();
    assert_eq!((b.lag, b.pending, b.total()), (3, 2, 5));
    // Deleting an unread entry makes Redis report lag as nil; the fallback still counts right.
    let reply: redis::streams::StreamRangeReply = conn.xrange_all(&key).await.unwrap();
    let _: u64 = conn.xdel(&key, &[&reply.ids[4].id]).await.unwrap();
    let b = p.backlog(Site::Main).await.unwrap();
    assert_eq!(b.total(), 4, "{b:?}");
    assert_eq!(p.backlog(Site::Sub).await.unwrap().total(), 0);
    cleanup(&prefix).await;
}

/// A producer (marker TTL 300 s), a consumer and an outbox on `prefix`: the parts that hand an id over.
async fn handover_parts(prefix: &str) -> (Producer, Consumer, Outbox) {
    let settings = stream_settings(prefix);
    let p = Producer::connect(&settings, Duration::from_secs(300))
        .await
        .unwrap();
    let c = Consumer::connect(&settings, "c").await.unwrap();
    let outbox = Outbox::new(
        connect(&settings, Duration::from_secs(5)).await.unwrap(),
        StreamKeys::new(prefix),
        &OutboxKey([3; 32]),
    );
    (p, c, outbox)
}

/// A result of `id` about to be reported: a `complete` or a `fail`.
fn report(id: &TaskId, complete: bool) -> OutboxRecord {
    let report = if complete {
        Report::Complete(Registration {
            email: Some("a@b.test".into()),
            ..Registration::default()
        })
    } else {
        Report::Fail {
            error_message: "refused".into(),
            note: None,
        }
    };
    OutboxRecord {
        task_id: id.clone(),
        site: Site::Sub,
        entry_id: None,
        domain: "anchor.fm".into(),
        attempts: 1,
        finished_at_ms: 0,
        report,
    }
}

/// A hand-out of an id whose `fail` is under way is kept and queued again when the id is released, exactly
/// once, with the marker kept for the new run; a plain duplicate (no `fail` under way) stays dropped.
#[tokio::test]
async fn producer_keeps_a_hand_out_seen_after_our_fail_and_queues_it_on_release() {
    let prefix = unique_prefix();
    let (p, c, outbox) = handover_parts(&prefix).await;
    let keys = p.keys().clone();
    let (a, b) = (TaskId::parse("a").unwrap(), TaskId::parse("b").unwrap());
    let mut conn = redis_conn().await;

    for e in [entry("a", Site::Sub), entry("b", Site::Sub)] {
        assert!(matches!(p.enqueue(&e).await.unwrap(), Enqueued::Added(_)));
    }
    let claimed = c.claim(10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    // Listed again while running: a duplicate. Listed again after our fail was sent: kept for later.
    assert_eq!(
        p.enqueue(&entry("a", Site::Sub)).await.unwrap(),
        Enqueued::Duplicate
    );
    outbox.mark_reporting(&report(&a, false)).await.unwrap();
    assert_eq!(
        p.enqueue(&entry("a", Site::Sub)).await.unwrap(),
        Enqueued::Relisted
    );
    assert_eq!(
        p.enqueue(&entry("b", Site::Sub)).await.unwrap(),
        Enqueued::Duplicate
    );
    let ttl: i64 = conn.ttl(keys.inflight(&a)).await.unwrap();
    assert!((290..=300).contains(&ttl), "marking kept the expiry: {ttl}");

    for cl in &claimed {
        let id = cl.entry.as_ref().unwrap().id.clone();
        c.ack(cl, Some(&id)).await.unwrap();
    }
    // b is let go; a's second hand-out is queued once more, its marker kept for that run.
    assert!(!conn.exists::<_, bool>(keys.inflight(&b)).await.unwrap());
    assert!(conn.exists::<_, bool>(keys.inflight(&a)).await.unwrap());
    assert!(!conn.exists::<_, bool>(keys.relisted(&a)).await.unwrap());
    let again = c.claim(10).await.unwrap();
    assert_eq!(again.len(), 1, "{again:?}");
    let entry_again = again[0].entry.as_ref().unwrap();
    assert_eq!(
        (entry_again.id.as_str(), entry_again.site),
        ("a", Site::Sub)
    );
    assert_eq!(
        p.enqueue(&entry("a", Site::Sub)).await.unwrap(),
        Enqueued::Duplicate,
        "the new run holds the id"
    );
    c.ack(&again[0], Some(&a)).await.unwrap();
    assert!(!conn.exists::<_, bool>(keys.inflight(&a)).await.unwrap());
    assert!(c.claim(10).await.unwrap().is_empty());
    cleanup(&prefix).await;
}

/// A task we reported complete keeps its marker after the release, so a duplicate hand-out listed while we
/// were finishing it (and arriving after) is not queued: it would `start` a completed task.
#[tokio::test]
async fn producer_drops_a_late_duplicate_of_a_completed_task() {
    let prefix = unique_prefix();
    let (p, c, outbox) = handover_parts(&prefix).await;
    let id = TaskId::parse("done").unwrap();
    assert!(matches!(
        p.enqueue(&entry("done", Site::Main)).await.unwrap(),
        Enqueued::Added(_)
    ));
    let claimed = c.claim(1).await.unwrap();
    outbox.mark_reporting(&report(&id, true)).await.unwrap();
    c.ack(&claimed[0], Some(&id)).await.unwrap();
    assert_eq!(
        p.enqueue(&entry("done", Site::Main)).await.unwrap(),
        Enqueued::Duplicate
    );
    let mut conn = redis_conn().await;
    let ttl: i64 = conn.ttl(p.keys().inflight(&id)).await.unwrap();
    assert!((1..=300).contains(&ttl), "kept until its expiry: {ttl}");
    assert!(c.claim(1).await.unwrap().is_empty());
    cleanup(&prefix).await;
}

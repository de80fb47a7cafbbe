//! The consumer side of the task streams against a real Redis: exactly-once claiming across consumers,
//! main before sub, reclaim of abandoned entries, lease renewal, dead-lettering.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use podcast_worker::streams::consumer::{Claimed, Consumer};
use podcast_worker::task::Site;
use tokio_util::sync::CancellationToken;

use crate::helpers::streams::{
    dead_letters, enqueue, enqueue_raw, entry, pending, stream_len, stream_settings,
};
use crate::helpers::{cleanup, eventually, unique_prefix};

fn ids(claimed: &[Claimed]) -> Vec<String> {
    claimed
        .iter()
        .map(|c| c.task_id().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_claim_each_entry_exactly_once_across_consumers_without_starvation() {
    const CONSUMERS: usize = 8;
    const TASKS: usize = 2000;
    let prefix = unique_prefix();
    let settings = stream_settings(&prefix);
    let mut consumers = Vec::new();
    for i in 0..CONSUMERS {
        consumers.push(Arc::new(
            Consumer::connect(&settings, &format!("c{i}"))
                .await
                .unwrap(),
        ));
    }
    let entries: Vec<_> = (0..TASKS)
        .map(|i| {
            let site = if i % 4 == 0 { Site::Sub } else { Site::Main };
            entry(&format!("t{i}"), "a.test", site)
        })
        .collect();
    enqueue(&prefix, &entries).await;

    let seen: Arc<Mutex<Vec<(usize, String)>>> = Arc::default();
    let mut handles = Vec::new();
    for (n, c) in consumers.iter().enumerate() {
        let (c, seen) = (c.clone(), seen.clone());
        handles.push(tokio::spawn(async move {
            while seen.lock().unwrap().len() < TASKS {
                for claimed in c.claim(5).await.unwrap() {
                    c.ack(&claimed, claimed.task_id()).await.unwrap();
                    seen.lock()
                        .unwrap()
                        .push((n, claimed.task_id().unwrap().to_string()));
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    for h in handles {
        tokio::time::timeout(Duration::from_secs(60), h)
            .await
            .unwrap()
            .unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    let unique: HashSet<_> = seen.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(seen.len(), TASKS, "some entry was claimed twice");
    assert_eq!(unique.len(), TASKS, "some entry was lost");
    let mut per_consumer: HashMap<usize, usize> = HashMap::new();
    for (n, _) in &seen {
        *per_consumer.entry(*n).or_default() += 1;
    }
    assert_eq!(
        per_consumer.len(),
        CONSUMERS,
        "a consumer starved: {per_consumer:?}"
    );
    assert_eq!(
        stream_len(&prefix, Site::Main).await + stream_len(&prefix, Site::Sub).await,
        0
    );
    assert_eq!(pending(&prefix, Site::Main).await, 0);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn streams_read_main_entries_before_sub_entries() {
    let prefix = unique_prefix();
    let c = Consumer::connect(&stream_settings(&prefix), "c")
        .await
        .unwrap();
    enqueue(
        &prefix,
        &[
            entry("s1", "b.test", Site::Sub),
            entry("s2", "b.test", Site::Sub),
        ],
    )
    .await;
    enqueue(
        &prefix,
        &[
            entry("m1", "a.test", Site::Main),
            entry("m2", "a.test", Site::Main),
        ],
    )
    .await;
    let first = c.claim(10).await.unwrap();
    assert_eq!(ids(&first), ["m1", "m2"]);
    assert!(
        first
            .iter()
            .all(|c| c.site == Site::Main && c.deliveries == 1 && !c.reclaimed)
    );
    let second = c.claim(10).await.unwrap();
    assert_eq!(ids(&second), ["s1", "s2"]);
    assert_eq!(c.held_count(), 4);
    assert!(
        c.claim(10).await.unwrap().is_empty(),
        "empty streams yield nothing after the block time"
    );
    cleanup(&prefix).await;
}

#[tokio::test]
async fn streams_reclaim_an_entry_idle_past_claim_idle_and_count_its_delivery() {
    let prefix = unique_prefix();
    let mut settings = stream_settings(&prefix);
    settings.claim_idle = Duration::from_millis(300);
    settings.lease_renew = Duration::from_millis(100);
    let dead = Consumer::connect(&settings, "dead").await.unwrap();
    let live = Consumer::connect(&settings, "live").await.unwrap();
    enqueue(&prefix, &[entry("t1", "a.test", Site::Main)]).await;
    let mine = dead.claim(1).await.unwrap();
    assert_eq!(ids(&mine), ["t1"]);
    let fence = dead
        .fence(&mine[0])
        .await
        .unwrap()
        .expect("a free run lease");
    let start = Instant::now();
    let got = eventually(
        Duration::from_secs(5),
        "the idle entry to be reclaimed",
        || async {
            let got = live.claim(1).await.unwrap();
            (!got.is_empty()).then_some(got)
        },
    )
    .await;
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "reclaimed before claim idle"
    );
    assert_eq!(ids(&got), ["t1"]);
    assert!(got[0].reclaimed);
    assert_eq!(got[0].deliveries, 2);
    assert!(
        live.fence(&got[0]).await.unwrap().is_some(),
        "the dead owner's lease expired"
    );
    // The dead consumer's renewal must not steal it back: it learns that its run must stop.
    assert!(!fence.is_stolen());
    let lost = dead.renew_leases().await.unwrap();
    assert_eq!(lost, vec![(Site::Main, got[0].entry_id.clone())]);
    assert!(fence.is_stolen(), "the run is told");
    assert!(live.renew_leases().await.unwrap().is_empty());
    cleanup(&prefix).await;
}

/// The fence: while a live run holds its task's lease, a reclaim of its entry (its consumer's heartbeat
/// looks alive, its entry idle) skips it, so the task never runs twice.
#[tokio::test]
async fn streams_reclaim_skips_an_entry_whose_run_lease_another_consumer_holds() {
    let prefix = unique_prefix();
    let mut settings = stream_settings(&prefix);
    settings.claim_idle = Duration::from_millis(300);
    settings.lease_renew = Duration::from_millis(100);
    let owner = Consumer::connect(&settings, "owner").await.unwrap();
    let other = Consumer::connect(&settings, "other").await.unwrap();
    enqueue(&prefix, &[entry("t1", "a.test", Site::Main)]).await;
    let mine = owner.claim(1).await.unwrap();
    let fence = owner.fence(&mine[0]).await.unwrap().unwrap();
    // The owner stops renewing its entry (as if stalled) but its lease is refreshed by hand, longer than
    // claim-idle: the entry is idle, the lease held.
    let mut conn = crate::helpers::redis_conn().await;
    let lease = podcast_worker::streams::StreamKeys::new(&prefix).run(mine[0].task_id().unwrap());
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1200) {
        let _: () = redis::AsyncCommands::pset_ex(&mut conn, &lease, "owner", 300)
            .await
            .unwrap();
        assert!(
            other.claim(1).await.unwrap().is_empty(),
            "a fenced entry was reclaimed"
        );
    }
    assert!(!fence.is_stolen());
    assert!(
        other.fence(&mine[0]).await.unwrap().is_none(),
        "the lease is the owner's"
    );
    cleanup(&prefix).await;
}

/// Redis down longer than claim-idle must not look like a dead owner: heartbeats missing after an outage
/// are waited for a full claim-idle after Redis came back, and a live owner renews first.
#[tokio::test]
async fn streams_reclaim_waits_a_full_claim_idle_for_a_missing_heartbeat() {
    let prefix = unique_prefix();
    let mut settings = stream_settings(&prefix);
    settings.claim_idle = Duration::from_millis(800);
    settings.lease_renew = Duration::from_millis(100);
    let owner = Consumer::connect(&settings, "owner").await.unwrap();
    enqueue(&prefix, &[entry("t1", "a.test", Site::Main)]).await;
    assert_eq!(owner.claim(1).await.unwrap().len(), 1);
    // As after an outage: the entry idle past claim-idle, the heartbeat expired.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let other = Consumer::connect(&settings, "other").await.unwrap();
    let seen = Instant::now();
    assert!(
        other.claim(1).await.unwrap().is_empty(),
        "reclaimed at first sight of a missing heartbeat"
    );
    // The owner comes back within claim-idle: its renewal keeps the entry.
    owner.renew_leases().await.unwrap();
    while seen.elapsed() < Duration::from_millis(1600) {
        assert!(
            other.claim(1).await.unwrap().is_empty(),
            "a live owner's entry was reclaimed"
        );
        owner.renew_leases().await.unwrap();
    }
    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_lease_renewal_keeps_a_live_entry_then_reclaim_follows_when_it_stops() {
    let prefix = unique_prefix();
    let mut settings = stream_settings(&prefix);
    settings.claim_idle = Duration::from_millis(400);
    settings.lease_renew = Duration::from_millis(100);
    let owner = Arc::new(Consumer::connect(&settings, "owner").await.unwrap());
    let other = Consumer::connect(&settings, "other").await.unwrap();
    enqueue(&prefix, &[entry("t1", "a.test", Site::Main)]).await;
    assert_eq!(owner.claim(1).await.unwrap().len(), 1);
    let cancel = CancellationToken::new();
    let renewal = tokio::spawn({
        let (owner, cancel) = (owner.clone(), cancel.clone());
        async move { owner.run_lease_renewal(cancel).await }
    });
    // Three claim-idle periods: each claim blocks for the read time, so this loop does not spin.
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1200) {
        assert!(
            other.claim(1).await.unwrap().is_empty(),
            "a live entry was reclaimed"
        );
    }
    cancel.cancel();
    renewal.await.unwrap();
    let got = eventually(
        Duration::from_secs(5),
        "reclaim once renewal stopped",
        || async {
            let got = other.claim(1).await.unwrap();
            (!got.is_empty()).then_some(got)
        },
    )
    .await;
    assert_eq!(ids(&got), ["t1"]);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn streams_dead_letter_undecodable_entries_with_reason_and_ack_them() {
    let prefix = unique_prefix();
    let c = Consumer::connect(&stream_settings(&prefix), "c")
        .await
        .unwrap();
    let garbage = enqueue_raw(&prefix, Site::Main, "task", "not json {").await;
    let no_field = enqueue_raw(&prefix, Site::Main, "other", "x").await;
    let bad_version = enqueue_raw(&prefix, Site::Main, "task", r#"{"v":9,"id":"x"}"#).await;
    let claimed = c.claim(10).await.unwrap();
    assert_eq!(claimed.len(), 3);
    for cl in &claimed {
        let reason = cl.poison_reason(5).expect("poison");
        c.dead_letter(cl, &reason, None).await.unwrap();
    }
    let dead = dead_letters(&prefix).await;
    assert_eq!(dead.len(), 3);
    let by_id: HashMap<_, _> = dead.iter().map(|d| (d["entry_id"].clone(), d)).collect();
    assert!(
        by_id[&garbage]["reason"].contains("undecodable"),
        "{:?}",
        by_id[&garbage]
    );
    assert_eq!(by_id[&garbage]["payload"], "not json {");
    assert!(by_id[&no_field]["reason"].contains("no `task` field"));
    assert!(by_id[&bad_version]["reason"].contains("unsupported entry version 9"));
    for d in &dead {
        assert!(
            d["stream"].ends_with(":tasks:main") && d["consumer"] == "c" && d["deliveries"] == "1"
        );
        assert!(d["at_ms"].parse::<u64>().unwrap() > 0);
    }
    assert_eq!(stream_len(&prefix, Site::Main).await, 0);
    assert_eq!(pending(&prefix, Site::Main).await, 0);
    assert_eq!(c.held_count(), 0);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn streams_dead_letter_an_entry_delivered_more_than_max_deliveries() {
    let prefix = unique_prefix();
    let mut settings = stream_settings(&prefix);
    settings.claim_idle = Duration::from_millis(100);
    settings.lease_renew = Duration::from_millis(40);
    settings.max_deliveries = 2;
    enqueue(&prefix, &[entry("t1", "a.test", Site::Main)]).await;
    let mut last = None;
    for n in 1..=3u64 {
        let c = Consumer::connect(&settings, &format!("c{n}"))
            .await
            .unwrap();
        let got = eventually(Duration::from_secs(5), "a delivery", || async {
            let got = c.claim(1).await.unwrap();
            (!got.is_empty()).then_some(got)
        })
        .await;
        assert_eq!(got[0].deliveries, n);
        assert_eq!(got[0].poison_reason(2).is_some(), n > 2);
        last = Some((c, got.into_iter().next().unwrap()));
    }
    let (c, claimed) = last.unwrap();
    let reason = claimed.poison_reason(2).unwrap();
    c.dead_letter(&claimed, &reason, claimed.task_id())
        .await
        .unwrap();
    let dead = dead_letters(&prefix).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["reason"], "delivered 3 times (limit 2)");
    assert_eq!(dead[0]["deliveries"], "3");
    assert!(dead[0]["payload"].contains("\"id\":\"t1\""));
    assert_eq!(pending(&prefix, Site::Main).await, 0);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn streams_ensure_groups_is_idempotent_and_keeps_earlier_entries() {
    let prefix = unique_prefix();
    enqueue(&prefix, &[entry("early", "a.test", Site::Main)]).await;
    let keys = podcast_worker::streams::StreamKeys::new(&prefix);
    let mut conn = crate::helpers::redis_conn().await;
    podcast_worker::streams::ensure_groups(&mut conn, &keys)
        .await
        .unwrap();
    podcast_worker::streams::ensure_groups(&mut conn, &keys)
        .await
        .unwrap();
    let c = Consumer::connect(&stream_settings(&prefix), "c")
        .await
        .unwrap();
    assert_eq!(ids(&c.claim(5).await.unwrap()), ["early"]);
    cleanup(&prefix).await;
}

/// The false `lease lost` race: an entry acked while a renewal is under way is not reported lost (the
/// renewal's list of held entries is older than the ack). Nothing here is ever taken by another consumer,
/// so any loss reported is false.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_renewal_racing_acks_reports_no_false_loss() {
    let prefix = unique_prefix();
    let mut settings = stream_settings(&prefix);
    settings.lease_renew = Duration::from_millis(1);
    let c = Arc::new(Consumer::connect(&settings, "racer").await.unwrap());
    let entries: Vec<_> = (0..300)
        .map(|i| entry(&format!("r{i}"), "a.test", Site::Main))
        .collect();
    enqueue(&prefix, &entries).await;
    let stop = CancellationToken::new();
    let renewer = tokio::spawn({
        let (c, stop) = (c.clone(), stop.clone());
        async move {
            let mut lost = Vec::new();
            let mut rounds = 0;
            while !stop.is_cancelled() {
                lost.extend(c.renew_leases().await.unwrap());
                rounds += 1;
            }
            (lost, rounds)
        }
    });
    let mut acked = 0;
    while acked < entries.len() {
        for claimed in c.claim(10).await.unwrap() {
            assert!(c.fence(&claimed).await.unwrap().is_some());
            c.ack(&claimed, claimed.task_id()).await.unwrap();
            acked += 1;
        }
    }
    stop.cancel();
    let (lost, rounds) = renewer.await.unwrap();
    assert!(rounds > 10, "the renewal raced the acks ({rounds} rounds)");
    assert!(lost.is_empty(), "false losses: {lost:?}");
    let mut conn = crate::helpers::redis_conn().await;
    let keys = podcast_worker::streams::StreamKeys::new(&prefix);
    for e in &entries {
        let lease: bool = redis::AsyncCommands::exists(&mut conn, keys.run(&e.id))
            .await
            .unwrap();
        assert!(
            !lease,
            "a settled task's run lease was taken again: {}",
            e.id
        );
    }
    cleanup(&prefix).await;
}

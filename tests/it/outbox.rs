//! The encrypted outbox against a real Redis: secrets never stored in clear, tampered or moved values refused.

use std::time::Duration;

use podcast_worker::config::OutboxKey;
use podcast_worker::outbox::{Outbox, OutboxError, OutboxRecord, Report};
use podcast_worker::streams::{StreamKeys, connect};
use podcast_worker::task::{Registration, Site, TaskId};
use redis::AsyncCommands;
use secrecy::{ExposeSecret, SecretString};

use crate::helpers::streams::stream_settings;
use crate::helpers::{cleanup, redis_conn, unique_prefix};

const PASSWORD: &str = "Zq9!outbox-pass-771";
const COOKIE: &str = "sid=cookie-secret-8812";

async fn outbox(prefix: &str, key: u8) -> Outbox {
    let conn = connect(&stream_settings(prefix), Duration::from_secs(5))
        .await
        .unwrap();
    Outbox::new(conn, StreamKeys::new(prefix), &OutboxKey([key; 32]))
}

fn record(id: &str) -> OutboxRecord {
    OutboxRecord {
        task_id: TaskId::parse(id).unwrap(),
        site: Site::Main,
        entry_id: Some("1-0".into()),
        domain: "a.test".into(),
        attempts: 2,
        finished_at_ms: 7,
        report: Report::Complete(Registration {
            email: Some("show@a.test".into()),
            username: Some("user1".into()),
            password: Some(SecretString::from(PASSWORD)),
            cookie: Some(SecretString::from(COOKIE)),
            link_rss: Some("https://a.test/rss/1".into()),
            note: None,
        }),
    }
}

#[tokio::test]
async fn outbox_stores_only_ciphertext_and_round_trips() {
    let prefix = unique_prefix();
    let ob = outbox(&prefix, 7).await;
    let rec = record("t1");
    ob.put(&rec).await.unwrap();
    let raw: Vec<u8> = redis_conn()
        .await
        .get(format!("{prefix}:outbox:t1"))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&raw);
    for secret in [PASSWORD, COOKIE, "cookie-secret", "show@a.test", "rss"] {
        assert!(!text.contains(secret), "{secret} stored in clear");
    }
    // Two writes of the same record use different nonces.
    assert_ne!(ob.seal(&rec), ob.seal(&rec));
    let back = ob.get(&rec.task_id).await.unwrap().unwrap();
    assert_eq!(
        (back.site, back.attempts, back.domain.as_str()),
        (Site::Main, 2, "a.test")
    );
    let Report::Complete(reg) = back.report else {
        panic!("kind lost")
    };
    assert_eq!(reg.password.unwrap().expose_secret(), PASSWORD);
    assert_eq!(reg.cookie.unwrap().expose_secret(), COOKIE);
    assert_eq!(reg.link_rss.as_deref(), Some("https://a.test/rss/1"));
    assert_eq!(ob.waiting().await.unwrap(), vec![rec.task_id.clone()]);
    ob.remove(&rec.task_id, "c").await.unwrap();
    assert!(ob.get(&rec.task_id).await.unwrap().is_none());
    assert!(ob.waiting().await.unwrap().is_empty());
    cleanup(&prefix).await;
}

#[tokio::test]
async fn outbox_refuses_tampered_moved_and_foreign_key_values() {
    let prefix = unique_prefix();
    let ob = outbox(&prefix, 7).await;
    let mut conn = redis_conn().await;
    ob.put(&record("t1")).await.unwrap();
    let raw: Vec<u8> = conn.get(format!("{prefix}:outbox:t1")).await.unwrap();

    // Moved to another task's key: the associated data no longer matches.
    let () = conn
        .set(format!("{prefix}:outbox:t2"), raw.clone())
        .await
        .unwrap();
    let err = ob.get(&TaskId::parse("t2").unwrap()).await.unwrap_err();
    assert!(matches!(err, OutboxError::Tampered { .. }));
    assert!(
        err.to_string().contains("task t2 failed authentication"),
        "{err}"
    );

    // One flipped bit.
    let mut flipped = raw.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let () = conn
        .set(format!("{prefix}:outbox:t1"), flipped)
        .await
        .unwrap();
    assert!(matches!(
        ob.get(&TaskId::parse("t1").unwrap()).await,
        Err(OutboxError::Tampered { .. })
    ));

    // Another key cannot read it; a truncated value is refused too.
    let () = conn.set(format!("{prefix}:outbox:t1"), raw).await.unwrap();
    let other = outbox(&prefix, 8).await;
    assert!(matches!(
        other.get(&TaskId::parse("t1").unwrap()).await,
        Err(OutboxError::Tampered { .. })
    ));
    let () = conn
        .set(format!("{prefix}:outbox:t3"), b"short".to_vec())
        .await
        .unwrap();
    assert!(matches!(
        ob.get(&TaskId::parse("t3").unwrap()).await,
        Err(OutboxError::Tampered { .. })
    ));
    cleanup(&prefix).await;
}

#[tokio::test]
async fn outbox_report_lock_is_exclusive_until_released() {
    let prefix = unique_prefix();
    let ob = outbox(&prefix, 7).await;
    let id = TaskId::parse("t1").unwrap();
    assert!(ob.lock(&id, "a", Duration::from_secs(30)).await.unwrap());
    assert!(!ob.lock(&id, "b", Duration::from_secs(30)).await.unwrap());
    assert!(ob.unlock(&id, "a").await.unwrap());
    assert!(ob.lock(&id, "b", Duration::from_secs(30)).await.unwrap());
    cleanup(&prefix).await;
}

/// A slow holder whose lock expired must not delete the next holder's lock (compare-and-delete).
#[tokio::test]
async fn outbox_lock_is_released_only_by_its_owner() {
    let prefix = unique_prefix();
    let ob = outbox(&prefix, 7).await;
    let id = TaskId::parse("t1").unwrap();
    assert!(
        ob.lock(&id, "slow", Duration::from_millis(50))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(
        ob.lock(&id, "next", Duration::from_secs(30)).await.unwrap(),
        "the expired lock is free"
    );
    assert!(
        !ob.unlock(&id, "slow").await.unwrap(),
        "the slow holder's unlock is refused"
    );
    assert!(
        !ob.lock(&id, "third", Duration::from_secs(30))
            .await
            .unwrap(),
        "next still holds it"
    );
    assert!(ob.unlock(&id, "next").await.unwrap());
    cleanup(&prefix).await;
}

//! The test environment itself: Redis reachable, prefixes isolated and cleaned.

use crate::helpers::{cleanup, redis_conn, unique_prefix};

#[tokio::test]
async fn cleanup_removes_only_keys_under_the_test_prefix() {
    let (mine, other) = (unique_prefix(), unique_prefix());
    let mut conn = redis_conn().await;
    let _: () = redis::AsyncCommands::set(&mut conn, format!("{mine}:a"), 1)
        .await
        .unwrap();
    let _: () = redis::AsyncCommands::set(&mut conn, format!("{other}:a"), 1)
        .await
        .unwrap();
    cleanup(&mine).await;
    let gone: bool = redis::AsyncCommands::exists(&mut conn, format!("{mine}:a"))
        .await
        .unwrap();
    let kept: bool = redis::AsyncCommands::exists(&mut conn, format!("{other}:a"))
        .await
        .unwrap();
    assert!(!gone && kept);
    cleanup(&other).await;
}

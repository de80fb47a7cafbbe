//! Unit tests of claimed-entry decoding and reply parsing.

use super::*;
use crate::task::ENTRY_VERSION;

fn stream_id(id: &str, field: &str, value: &str) -> StreamId {
    StreamId {
        id: id.into(),
        map: [(
            field.to_owned(),
            Value::BulkString(value.as_bytes().to_vec()),
        )]
        .into(),
        ..Default::default()
    }
}

#[test]
fn poison_reason_covers_undecodable_and_over_delivered_entries() {
    let good = QueueEntry {
        v: ENTRY_VERSION,
        id: TaskId::parse("t1").unwrap(),
        domain: "a.test".into(),
        site: Site::Main,
        request_id: String::new(),
        group_id: String::new(),
        fetched_at_ms: 0,
    };
    let ok = Claimed::from_stream_id(
        Site::Main,
        stream_id("1-0", ENTRY_FIELD, &good.encode()),
        5,
        true,
    );
    assert_eq!(ok.poison_reason(5), None);
    assert_eq!(ok.task_id().map(TaskId::as_str), Some("t1"));
    let over = Claimed {
        deliveries: 6,
        ..ok
    };
    assert_eq!(
        over.poison_reason(5).unwrap(),
        "delivered 6 times (limit 5)"
    );
    let bad = Claimed::from_stream_id(Site::Sub, stream_id("2-0", ENTRY_FIELD, "{"), 1, false);
    assert!(bad.poison_reason(5).unwrap().contains("undecodable"));
    assert_eq!(bad.raw, b"{");
    let missing = Claimed::from_stream_id(Site::Sub, stream_id("3-0", "other", "x"), 1, false);
    assert!(
        missing
            .poison_reason(5)
            .unwrap()
            .contains("no `task` field")
    );
}

#[test]
fn autoclaim_replies_of_redis_6_and_7_both_parse() {
    let entry = Value::Array(vec![
        Value::BulkString(b"5-0".to_vec()),
        Value::Array(vec![
            Value::BulkString(ENTRY_FIELD.as_bytes().to_vec()),
            Value::BulkString(b"{}".to_vec()),
        ]),
    ]);
    let v6 = Value::Array(vec![
        Value::BulkString(b"0-0".to_vec()),
        Value::Array(vec![entry.clone()]),
    ]);
    let v7 = Value::Array(vec![
        Value::BulkString(b"0-0".to_vec()),
        Value::Array(vec![entry]),
        Value::Array(vec![Value::BulkString(b"4-0".to_vec())]),
    ]);
    let r6: StreamAutoClaimReply = redis::from_redis_value(v6).unwrap();
    let r7: StreamAutoClaimReply = redis::from_redis_value(v7).unwrap();
    assert_eq!(r6.claimed[0].id, "5-0");
    assert_eq!(r7.claimed[0].id, "5-0");
    assert_eq!(r7.deleted_ids, ["4-0"]);
}

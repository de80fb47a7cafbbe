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
fn extended_xpending_rows_parse() {
    let row = Value::Array(vec![
        Value::BulkString(b"5-0".to_vec()),
        Value::BulkString(b"host-1".to_vec()),
        Value::Int(61_000),
        Value::Int(2),
    ]);
    let rows: Vec<PendingEntry> = redis::from_redis_value(Value::Array(vec![row])).unwrap();
    assert_eq!(rows[0].id, "5-0");
    assert_eq!(rows[0].consumer, "host-1");
    assert_eq!(rows[0].deliveries, 2);
}

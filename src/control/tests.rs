//! Unit tests of the control keys, records and domain parsing.

use super::*;
use crate::task::escape_glob_prefix;

#[test]
fn keys_share_the_prefix() {
    let k = ControlKeys::new("{pw}");
    assert_eq!(k.paused(), "{pw}:control:paused");
    assert_eq!(k.breakers(), "{pw}:control:breaker");
    assert_eq!(k.failures("a.test"), "{pw}:control:failures:a.test");
    assert_eq!(k.drain("h-1"), "{pw}:control:drain:h-1");
    assert_eq!(k.exported("t-1"), "{pw}:control:exported:t-1");
    assert_eq!(
        escape_glob_prefix("{p*}:control:drain:*"),
        "{p\\*}:control:drain:*"
    );
}

#[test]
fn pause_json_reads_numbers_as_text_or_numbers() {
    let p: Pause = serde_json::from_str(
        r#"{"by":"breaker","reason":"r","at_ms":"1733100000000","probe_due_ms":1733100300000}"#,
    )
    .unwrap();
    assert_eq!(p.at_ms, 1_733_100_000_000);
    assert_eq!(p.probe_due_ms, Some(1_733_100_300_000));
    assert_eq!(p.fail_message(), "domain paused by circuit breaker: r");
    let b: Breaker = serde_json::from_str(
        r#"{"state":"half_open","opened_at_ms":"5","probe_due_ms":"9","failures":"3","reason":"x","probe_task":"t"}"#,
    )
    .unwrap();
    assert_eq!(b.state, BreakerState::HalfOpen);
    assert_eq!(b.failures, Some(3));
}

#[test]
fn domains_are_checked_and_normalised() {
    assert_eq!(parse_domain("WWW.Podbean.com.").unwrap(), "podbean.com");
    assert!(parse_domain("a b").is_err());
    assert!(parse_domain("").is_err());
    assert!(parse_domain("x:y").is_err());
}

//! Unit tests of the client's pure parts: page decoding, request bodies, redaction.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;

use super::*;

fn settings() -> ApiSettings {
    ApiSettings {
        base_url: url::Url::parse("http://127.0.0.1:9/api/v1/podcast_account/").unwrap(),
        api_key: SecretString::from("key-S3CRET-123"),
        timeout: Duration::from_secs(1),
        retries: 2,
        backoff: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
    }
}

#[test]
fn debug_never_shows_the_api_key() {
    let client = TaskApiClient::new(&settings()).unwrap();
    let shown = format!("{client:?}");
    assert!(!shown.contains("S3CRET"), "{shown}");
    assert!(
        shown.contains("127.0.0.1:9/api/v1/podcast_account"),
        "{shown}"
    );
    assert!(!client.base.ends_with('/'));
}

#[test]
fn a_key_that_cannot_be_a_header_is_a_config_error_without_the_key() {
    let mut s = settings();
    s.api_key = SecretString::from("bad\u{7f}key-S3CRET");
    let err = TaskApiClient::new(&s).unwrap_err();
    assert!(matches!(err, ApiError::Config { .. }));
    assert!(!err.to_string().contains("S3CRET"));
}

#[test]
fn page_decoding_keeps_good_items_and_salvages_usable_ids() {
    let items = vec![
        json!({"id": "t1", "domain": "anchor.fm", "link_rss": "", "password": "pw-1"}),
        json!({"id": "t2", "domain": 42, "request_id": "r2", "twofa": "SEED"}),
        json!({"id": "bad id!", "domain": "podbean.com"}),
        json!({"domain": "podbean.com"}),
        json!("not an object"),
        json!({"id": "t3", "domain": "podbean.com", "link_rss": "https://f/rss", "request_id": null}),
    ];
    let page = decode_page(items.into_iter().enumerate(), &[]);
    let ids: Vec<&str> = page.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["t1", "t2", "t3"]);
    assert_eq!((page.malformed, page.skipped, page.returned), (1, 3, 6));
    assert_eq!(page.tasks[1].domain, "");
    assert_eq!(page.tasks[1].request_id, "r2");
    assert_eq!(page.tasks[0].link_rss, None, "an empty link_rss is no feed");
    assert_eq!(page.tasks[2].link_rss.as_deref(), Some("https://f/rss"));
}

#[test]
fn fail_body_cuts_the_message_to_1000_characters() {
    let body = fail_body(&"ừ".repeat(1500), Some("see artifacts"));
    let msg = body["error_message"].as_str().unwrap();
    assert_eq!(msg.chars().count(), ERROR_MESSAGE_MAX_CHARS);
    assert_eq!(body["note"], "see artifacts");
    let body = fail_body("short", None);
    assert_eq!(body, json!({"error_message": "short"}));
}

#[test]
fn complete_body_sends_only_what_is_present() {
    let reg = Registration {
        email: Some("pod@x.test".into()),
        password: Some(SecretString::from("realPwd!")),
        cookie: Some(SecretString::from("session=abc")),
        link_rss: Some("https://x.test/rss".into()),
        ..Registration::default()
    };
    assert_eq!(
        complete_body(&reg),
        json!({"email": "pod@x.test", "password": "realPwd!", "cookie": "session=abc",
               "link_rss": "https://x.test/rss"})
    );
}

#[test]
fn labels_are_bounded() {
    assert_eq!(StatusClass::of(Some(200)).as_str(), "2xx");
    assert_eq!(StatusClass::of(Some(409)).as_str(), "4xx");
    assert_eq!(StatusClass::of(Some(502)).as_str(), "5xx");
    assert_eq!(StatusClass::of(Some(302)), StatusClass::Other);
    assert_eq!(Endpoint::Complete.as_str(), "complete");
}

#[test]
fn rejected_after_a_retry_is_marked() {
    let e = ApiError::Rejected {
        status: 409,
        message: "not running".into(),
        retried: false,
    };
    assert!(matches!(
        mark_retried(e, true),
        ApiError::Rejected { retried: true, .. }
    ));
    assert!(matches!(
        mark_retried(ApiError::NotFound, true),
        ApiError::NotFound
    ));
}

//! Unit tests of the task types: routing, domains, ids, entries, redaction, text helpers.

use super::*;

fn listed(domain: &str, rss: &str) -> ListedTask {
    ListedTask {
        id: TaskId::parse("a1").unwrap(),
        request_id: "r".into(),
        domain: domain.into(),
        group_id: "g".into(),
        link_rss: non_blank(Some(rss)),
    }
}

#[test]
fn route_uses_main_list_then_link_rss() {
    let mains = vec!["anchor.fm".to_owned()];
    assert_eq!(route("WWW.Anchor.FM", true, &mains), Site::Main);
    assert_eq!(route("buzzsprout.com", true, &mains), Site::Sub);
    assert_eq!(route("buzzsprout.com", false, &mains), Site::Main);
}

#[test]
fn domains_normalise_once_without_www_dot_or_port() {
    assert_eq!(normalise_domain(" WWW.Anchor.FM.:443 "), "anchor.fm");
    assert_eq!(normalise_domain("anchor.fm:"), "anchor.fm");
    assert_eq!(normalise_domain("[::1]"), "[::1]");
    assert_eq!(Domain::new("Sub-A.Demo.Test"), "sub-a.demo.test");
    let d: Domain = serde_json::from_str(r#""www.Podbean.com""#).unwrap();
    assert_eq!(d.as_str(), "podbean.com");
    assert_eq!(serde_json::to_string(&d).unwrap(), r#""podbean.com""#);
}

#[test]
fn task_id_rejects_unsafe_characters() {
    assert!(TaskId::parse("6f1c-aa_9").is_ok());
    for bad in ["", "a b", "a:b", "x\n", &"a".repeat(65)] {
        assert!(TaskId::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn entry_round_trips_and_rejects_bad_payloads() {
    let e = QueueEntry::new(&listed("Podbean.com", "http://f"), Site::Sub, 42);
    assert_eq!(e.domain, "podbean.com");
    assert_eq!(QueueEntry::decode(e.encode().as_bytes()).unwrap(), e);
    assert!(matches!(
        QueueEntry::decode(b"nope"),
        Err(EntryError::Undecodable { .. })
    ));
    assert!(matches!(
        QueueEntry::decode(br#"{"v":2}"#),
        Err(EntryError::UnsupportedVersion(2))
    ));
    let missing = QueueEntry::decode(br#"{"v":1,"id":"x"}"#).unwrap_err();
    assert!(missing.to_string().contains("undecodable"), "{missing}");
}

#[test]
fn task_debug_redacts_credentials() {
    let raw = r#"{"id":"t1","email":"a@b.c","password":"Hunter2!pass","pass_mail":"mailpw-77",
        "twofa":"JBSWY3DPEHPK3PXP","app_password":"abcd efgh ijkl mnop","link_rss":null,"target":3}"#;
    let task: Task = serde_json::from_str(raw).unwrap();
    let shown = format!("{task:?}");
    for secret in ["Hunter2!pass", "mailpw-77", "JBSWY3DPEHPK3PXP", "abcd efgh"] {
        assert!(!shown.contains(secret), "{secret} leaked in {shown}");
    }
    assert_eq!(task.link_rss, None);
    let reg = Registration {
        cookie: Some("sid=s3cr3t".to_owned().into()),
        ..Default::default()
    };
    assert!(!format!("{reg:?}").contains("s3cr3t"));
    assert!(reg.has_credentials());
    assert!(!Registration::default().has_credentials());
}

#[test]
fn glob_prefixes_escape_their_fixed_part_and_keep_the_hash_tag() {
    assert_eq!(escape_glob_prefix("{pw}:outbox:*"), "{pw}:outbox:*");
    assert_eq!(
        escape_glob_prefix("{p*}:control:drain:*"),
        "{p\\*}:control:drain:*"
    );
    assert_eq!(escape_glob_prefix("a?[b]\\:*"), "a\\?\\[b\\]\\\\:*");
    assert_eq!(escape_glob_prefix(""), "");
}

#[test]
fn truncate_chars_respects_char_boundaries() {
    assert_eq!(truncate_chars("ééé", 2), "éé");
    assert_eq!(truncate_chars("ab", 1000), "ab");
    assert_eq!(
        truncate_chars(&"ừ".repeat(1500), 1000).chars().count(),
        1000
    );
}

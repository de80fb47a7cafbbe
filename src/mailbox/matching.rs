//! Which fetched message answers a [`MailQuery`](super::MailQuery): arrived after `since`, from the sender,
//! about the subject and to the recipient asked for; and the value its pattern extracts. Pure: no IMAP here.

use std::time::{Duration, UNIX_EPOCH};

use mail_parser::{Message, MessageParser};
use regex::Regex;

use super::imap;
use super::{MailMatch, MailQuery};

/// Whether `m` matches the query, and if so the value extracted from it (folder left empty).
pub(super) fn evaluate(m: &imap::Fetched, query: &MailQuery) -> Option<MailMatch> {
    let message = MessageParser::default().parse(&m.raw)?;
    let received = m
        .internal_date
        .or_else(|| message.date().and_then(|d| imap::unix(d.to_timestamp())))?;
    let since_secs = query
        .since
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if received < UNIX_EPOCH + Duration::from_secs(since_secs) {
        return None;
    }
    let subject = message.subject().unwrap_or_default().to_owned();
    let ok = query
        .from
        .as_deref()
        .is_none_or(|f| from_matches(&message, f))
        && query
            .subject
            .as_deref()
            .is_none_or(|s| contains_ci(&subject, s))
        && query.to.as_deref().is_none_or(|t| to_matches(&message, t));
    if !ok {
        return None;
    }
    Some(MailMatch {
        value: extract(&message, &query.pattern)?,
        folder: String::new(),
        uid: m.uid,
        message_id: message.message_id().map(str::to_owned),
        subject,
        received,
    })
}

fn contains_ci(haystack: &str, needle: &str) -> bool {
    haystack
        .to_lowercase()
        .contains(&needle.trim().to_lowercase())
}

fn from_matches(message: &Message<'_>, needle: &str) -> bool {
    message.from().is_some_and(|from| {
        from.iter().any(|a| {
            a.address().is_some_and(|x| contains_ci(x, needle))
                || a.name().is_some_and(|x| contains_ci(x, needle))
        })
    })
}

fn to_matches(message: &Message<'_>, needle: &str) -> bool {
    let listed = message
        .all_to()
        .chain(message.all_cc())
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address())
        .any(|x| contains_ci(x, needle));
    listed
        || ["Delivered-To", "X-Original-To"].iter().any(|h| {
            message
                .header_raw(*h)
                .is_some_and(|x| contains_ci(x, needle))
        })
}

/// The pattern's value from the plain-text parts, else from the HTML source (entities `&amp;` decoded).
fn extract(message: &Message<'_>, pattern: &Regex) -> Option<String> {
    let pick = |text: &str| {
        pattern
            .captures(text)
            .and_then(|c| c.get(1).or_else(|| c.get(0)).map(|m| m.as_str().to_owned()))
    };
    let from_text = message
        .text_bodies()
        .filter(|p| !p.is_text_html())
        .filter_map(|p| p.text_contents())
        .find_map(pick);
    from_text.or_else(|| {
        message
            .html_bodies()
            .filter_map(|p| p.text_contents())
            .find_map(|html| pick(html).map(|v| v.replace("&amp;", "&")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetched(raw: &str, secs: u64) -> imap::Fetched {
        imap::Fetched {
            uid: 7,
            internal_date: Some(UNIX_EPOCH + Duration::from_secs(secs)),
            raw: raw.as_bytes().to_vec(),
        }
    }

    fn query(pattern: &str) -> MailQuery {
        MailQuery {
            from: Some("noreply@demo".into()),
            subject: Some("verify".into()),
            to: Some("alice@example.org".into()),
            since: UNIX_EPOCH + Duration::from_millis(1_000_500),
            pattern: Regex::new(pattern).unwrap(),
        }
    }

    const ALTERNATIVE: &str = "From: Demo <noreply@demo.test>\r\nTo: Alice@Example.org\r\n\
        Subject: Please VERIFY\r\nMessage-ID: <m1@demo>\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
        Your code is 482913.\r\n--b\r\nContent-Type: text/html\r\n\r\n\
        <p>Code <b>111111</b> <a href=\"https://demo.test/v?a=1&amp;b=2\">go</a></p>\r\n--b--\r\n";

    #[test]
    fn code_comes_from_the_text_part_and_link_from_html() {
        let m = evaluate(&fetched(ALTERNATIVE, 1_000), &query(r"\b(\d{6})\b")).unwrap();
        assert_eq!(m.value, "482913");
        assert_eq!(m.message_id.as_deref(), Some("m1@demo"));
        let m = evaluate(&fetched(ALTERNATIVE, 1_000), &query(r#"href="([^"]+)""#)).unwrap();
        assert_eq!(m.value, "https://demo.test/v?a=1&b=2");
        assert!(!format!("{m:?}").contains("demo.test/v"));
    }

    #[test]
    fn filters_and_since_are_applied_precisely() {
        // Arrived in the same second as `since` (whole seconds compare): counts; a second earlier: not.
        assert!(evaluate(&fetched(ALTERNATIVE, 1_000), &query(r"\d{6}")).is_some());
        assert!(evaluate(&fetched(ALTERNATIVE, 999), &query(r"\d{6}")).is_none());
        let mut q = query(r"\d{6}");
        q.from = Some("someone-else".into());
        assert!(evaluate(&fetched(ALTERNATIVE, 1_000), &q).is_none());
        let mut q = query(r"\d{6}");
        q.to = Some("bob@example.org".into());
        assert!(evaluate(&fetched(ALTERNATIVE, 1_000), &q).is_none());
        assert!(evaluate(&fetched(ALTERNATIVE, 1_000), &query(r"nomatch\d{9}")).is_none());
    }
}

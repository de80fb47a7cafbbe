//! The mailbox against a real Dovecot over TLS (started by scripts/test): inbox and Junk searched, `since`
//! applied to the second, no message used twice, a refused login is permanent, no mail means a timeout, a
//! server refusing connections ends the wait in seconds; every wait reaches the executor's
//! `pw_mail_wait_seconds` through the mailbox observer.

use std::time::{Duration, SystemTime};

use podcast_worker::mailbox::{MailError, MailLogin, MailObserver, MailQuery, Mailbox};
use regex::Regex;
use secrecy::SecretString;
use tokio::time::Instant;

use crate::helpers::mail::dovecot;

fn login(email: &str, password: &str) -> MailLogin {
    MailLogin {
        user: email.to_owned(),
        password: SecretString::from(password.to_owned()),
    }
}

fn query(to: &str, since: SystemTime, pattern: &str) -> MailQuery {
    MailQuery {
        from: Some("noreply@demo-podcasts.test".into()),
        subject: Some("verify".into()),
        to: Some(to.to_owned()),
        since,
        pattern: Regex::new(pattern).unwrap(),
    }
}

fn code_mail(to: &str, code: &str) -> String {
    format!(
        "From: Demo Podcasts <noreply@demo-podcasts.test>\nTo: {to}\nSubject: Verify your account\n\
         Message-ID: <{}@demo-podcasts.test>\nDate: Thu, 1 Jan 2026 10:00:00 +0000\n\
         Content-Type: text/plain; charset=utf-8\n\nYour verification code is {code}.\n",
        uuid::Uuid::new_v4()
    )
}

fn link_mail(to: &str, token: &str) -> String {
    format!(
        "From: noreply@demo-podcasts.test\nTo: {to}\nSubject: Please verify your email\n\
         Message-ID: <{}@demo-podcasts.test>\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n\
         <html><body><p>Welcome!</p><a href=\"https://sub.demo.test/confirm?t={token}&amp;u=1\">Confirm</a>\
         </body></html>\n",
        uuid::Uuid::new_v4()
    )
}

fn soon(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

#[tokio::test]
async fn mailbox_finds_a_code_in_the_inbox() {
    let d = dovecot();
    let (email, password) = d.add_user();
    let since = SystemTime::now();
    d.deliver(
        &email,
        None,
        &code_mail(&email, "482913"),
        SystemTime::now(),
    );
    let mailbox = Mailbox::new(&d.settings()).unwrap();
    let found = mailbox
        .wait_for(
            &login(&email, &password),
            &query(&email, since, r"code is (\d{6})"),
            soon(20),
        )
        .await
        .unwrap();
    assert_eq!(found.value, "482913");
    assert_eq!(found.folder, "INBOX");
    // Marked \Seen on the server: Dovecot records it as the S flag of the file in cur/.
    let files = d.cur_files(&email, None);
    assert!(files.iter().any(|f| f.ends_with(",S")), "{files:?}");
}

#[tokio::test]
async fn mailbox_finds_a_link_in_junk_that_arrives_while_waiting() {
    let d = dovecot();
    let (email, password) = d.add_user();
    let since = SystemTime::now();
    let mailbox = Mailbox::new(&d.settings()).unwrap();
    let waiter = {
        let (mailbox, email, password) = (mailbox.clone(), email.clone(), password.clone());
        tokio::spawn(async move {
            mailbox
                .wait_for(
                    &login(&email, &password),
                    &query(&email, since, r#"href="(https://[^"]+)""#),
                    soon(20),
                )
                .await
        })
    };
    d.deliver(
        &email,
        Some("Junk"),
        &link_mail(&email, "tok42"),
        SystemTime::now(),
    );
    let found = waiter.await.unwrap().unwrap();
    assert_eq!(found.value, "https://sub.demo.test/confirm?t=tok42&u=1");
    assert_eq!(found.folder, "Junk");
}

#[tokio::test]
async fn mailbox_ignores_mail_older_than_since() {
    let d = dovecot();
    let (email, password) = d.add_user();
    let since = SystemTime::now();
    // Arrived a minute before the task started (same day, so IMAP SEARCH SINCE alone would not drop it).
    let before = since - Duration::from_secs(60);
    d.deliver(&email, None, &code_mail(&email, "111111"), before);
    let observed = Mailbox::new(&d.settings()).unwrap();
    // The observer is set on the original after the clone was made, as the executor does after its drivers.
    let mailbox = observed.clone();
    let metrics = crate::helpers::executor::metrics();
    let observer = |m: std::sync::Arc<podcast_worker::metrics::Metrics>| {
        std::sync::Arc::new(move |outcome, waited| m.mail_wait(outcome, waited)) as MailObserver
    };
    assert!(observed.set_observer(observer(metrics.clone())));
    assert!(
        !observed.set_observer(observer(metrics.clone())),
        "a second observer"
    );
    let q = query(&email, since, r"code is (\d{6})");
    // Long enough for the one login retry, should Dovecot not have re-read its users file yet.
    let err = mailbox
        .wait_for(&login(&email, &password), &q, soon(3))
        .await
        .unwrap_err();
    assert!(matches!(err, MailError::Timeout { .. }), "{err}");
    d.deliver(
        &email,
        None,
        &code_mail(&email, "222222"),
        SystemTime::now(),
    );
    let found = mailbox
        .wait_for(&login(&email, &password), &q, soon(20))
        .await
        .unwrap();
    assert_eq!(found.value, "222222");
    let text = metrics.render();
    let count = |outcome: &str| {
        let name = format!("pw_mail_wait_seconds_count{{outcome=\"{outcome}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&name)?.parse::<f64>().ok())
    };
    assert_eq!(count("timeout"), Some(1.0), "{text}");
    assert_eq!(count("found"), Some(1.0), "{text}");
    assert_eq!(count("error"), Some(0.0), "{text}");
    let timed = "pw_mail_wait_seconds_sum{outcome=\"timeout\"} ";
    let waited: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(timed)?.parse().ok())
        .unwrap();
    assert!((1.0..10.0).contains(&waited), "timeout wait {waited} s");
}

#[tokio::test]
async fn mailbox_never_returns_the_same_message_twice() {
    let d = dovecot();
    let (email, password) = d.add_user();
    let since = SystemTime::now();
    d.deliver(
        &email,
        None,
        &code_mail(&email, "333333"),
        SystemTime::now(),
    );
    let mailbox = Mailbox::new(&d.settings()).unwrap();
    let q = query(&email, since, r"code is (\d{6})");
    let first = mailbox
        .wait_for(&login(&email, &password), &q, soon(20))
        .await
        .unwrap();
    assert_eq!(first.value, "333333");
    // A clone shares the memory of used messages, as the tasks of one executor do.
    let again = mailbox
        .clone()
        .wait_for(&login(&email, &password), &q, soon(2))
        .await;
    assert!(matches!(again, Err(MailError::Timeout { .. })), "{again:?}");
    d.deliver(
        &email,
        None,
        &code_mail(&email, "444444"),
        SystemTime::now(),
    );
    let second = mailbox
        .wait_for(&login(&email, &password), &q, soon(20))
        .await
        .unwrap();
    assert_eq!(second.value, "444444");
}

#[tokio::test]
async fn mailbox_wrong_password_is_a_permanent_login_refusal() {
    let d = dovecot();
    let (email, _) = d.add_user();
    let mailbox = Mailbox::new(&d.settings()).unwrap();
    let started = Instant::now();
    let err = mailbox
        .wait_for(
            &login(&email, "wrong-secret-pw"),
            &query(&email, SystemTime::now(), r"\d{6}"),
            soon(30),
        )
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "{err}");
    let text = err.to_string();
    assert!(text.starts_with("mailbox login refused"), "{text}");
    assert!(!text.contains("wrong-secret-pw"), "{text}");
    // Refused at once, not retried until the deadline.
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn mailbox_without_mail_times_out_at_the_deadline() {
    let d = dovecot();
    let (email, password) = d.add_user();
    let mailbox = Mailbox::new(&d.settings()).unwrap();
    let started = Instant::now();
    let err = mailbox
        .wait_for(
            &login(&email, &password),
            &query(&email, SystemTime::now(), r"\d{6}"),
            soon(10),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, MailError::Timeout { .. }) && !err.is_permanent(),
        "{err}"
    );
    // Logged in and searched both folders meanwhile (10 s leaves room for Dovecot's slow first login
    // after another test's failed one, and for the one retry of a refused login).
    assert!(err.to_string().contains("INBOX, Junk"), "{err}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(9500) && waited < Duration::from_secs(14),
        "{waited:?}"
    );
}

#[tokio::test]
async fn mailbox_refusing_connections_fails_fast_and_transient() {
    let d = dovecot();
    let mut settings = d.settings();
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    settings.port = listener.local_addr().unwrap().port();
    drop(listener);
    settings.poll_interval = Duration::from_millis(500);
    let mailbox = Mailbox::new(&settings).unwrap();
    let started = Instant::now();
    let err = mailbox
        .wait_for(
            &login("a@example.org", "pw"),
            &query("a@example.org", SystemTime::now(), r"\d{6}"),
            soon(180),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, MailError::Network(_)) && !err.is_permanent(),
        "{err}"
    );
    // Three refused connections, 500 ms apart: given up in about a second, not at the 180 s deadline.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("mailbox unreachable: connect: ")
            && text.to_lowercase().contains("connection refused")
            && text.contains("3 attempts in a row"),
        "{text}"
    );
}

//! Demo mail through a real Dovecot: the simulator adds the task's mailbox to the users file and writes the
//! message into the Maildir; the crate's IMAP mailbox logs in with the task's email and app password and finds it
//! (inbox, and Junk when the simulator files it as spam).

use std::time::{Duration, SystemTime};

use podcast_worker::mailbox::{MailLogin, MailQuery, Mailbox};
use pw_simulator::{self as simulator, MailOptions, ScenarioSpec, SimulatorOptions};
use regex::Regex;
use secrecy::SecretString;

use crate::helpers::mail::dovecot;

/// Signs up on the demo main site as the task's address with mail going to the test Dovecot (Junk when `spam`),
/// then reads the code over IMAP. Returns (code mailed, code read, folder).
async fn mailed_code_over_imap(spam: f64) -> (String, String, String) {
    let dovecot = dovecot();
    let mut options = SimulatorOptions::for_test("k");
    options.mail = MailOptions {
        maildir_root: Some(dovecot.root.clone()),
        users_file: Some(dovecot.users.clone()),
        spam,
    };
    let sim = simulator::spawn(options).await.unwrap();
    let seed = u64::from(uuid::Uuid::new_v4().as_u128() as u32);
    let tasks = sim.add_scenario(&ScenarioSpec {
        requests: 1,
        subs_per_request: 0,
        seed,
        ..ScenarioSpec::default()
    });
    let task = sim.task(&tasks[0].id).unwrap().task;
    let field = |n: &str| task[n].as_str().unwrap().to_owned();
    let started = SystemTime::now() - Duration::from_secs(1);
    let form = [
        ("email", field("email")),
        ("username", "imapuser1".to_owned()),
        ("password", field("password")),
    ];
    let web = reqwest::Client::new();
    let r = web
        .post(format!("{}/demo/main.demo.test/signup", sim.url()))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mailed = sim.mail(Some(&field("email")));
    let code = Regex::new(r"code is (\d{6})")
        .unwrap()
        .captures(&mailed[0].text)
        .unwrap()[1]
        .to_owned();

    let mailbox = Mailbox::new(&dovecot.settings()).unwrap();
    let login = MailLogin {
        user: field("email"),
        password: SecretString::from(field("app_password")),
    };
    let query = MailQuery {
        from: Some("no-reply@main.demo.test".into()),
        subject: Some("verification code".into()),
        to: Some(field("email")),
        since: started,
        pattern: Regex::new(r"code is (\d{6})").unwrap(),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let found = mailbox
        .wait_for(&login, &query, deadline)
        .await
        .expect("the demo mail reaches Dovecot");
    (code, found.value, found.folder)
}

#[tokio::test]
async fn demo_mail_reaches_the_dovecot_inbox_of_the_task_mailbox() {
    let (mailed, read, folder) = mailed_code_over_imap(0.0).await;
    assert_eq!(read, mailed);
    assert_eq!(folder, "INBOX");
}

#[tokio::test]
async fn demo_mail_filed_as_spam_is_found_in_dovecot_junk() {
    let (mailed, read, folder) = mailed_code_over_imap(1.0).await;
    assert_eq!(read, mailed);
    assert_eq!(folder, "Junk");
}

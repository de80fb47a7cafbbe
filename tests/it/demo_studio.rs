//! The studio flavour of the demo main site, end to end with `recipes/demo-studio.toml` in the real Chromium:
//! a consent overlay, "Continue with DemoMail" through the simulator's identity provider (e-mail, the mailbox's
//! password, a TOTP code that is refused when reused), an onboarding form rendered late by a script, a username
//! rule stricter than the task's usernames with taken usernames, and a landing page that depends on how far the
//! account got. Also the provider alone, over HTTP, refusing a wrong mail password and a reused code.

use std::time::Duration;

use pw_simulator::{DemoFaults, STUDIO_DOMAIN, ScenarioTask};
use serde_json::{Value, json};
use totp_rs::{Builder, Secret};

use crate::helpers::demo_stack::{DemoStack, StackOptions};

const SETTLE: Duration = Duration::from_secs(150);

/// The current TOTP code of a task's `twofa` (as customers paste it: maybe lowercase or spaced).
fn totp_now(twofa: &str) -> String {
    let plain: String = twofa
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let secret = Secret::try_from_base32(&plain).expect("base32 secret");
    let totp = Builder::new().with_secret(secret).build_noncompliant();
    totp.generate_current().to_string()
}

/// The username rule of the studio: 3 to 12 letters, digits or underscores.
fn follows_the_rule(name: &str) -> bool {
    (3..=12).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The plain 12-character cuts a generated username can come out as (each alternative of its Spintax group).
fn plain_cuts(username: &str) -> Vec<String> {
    let alternatives: Vec<String> = match username.strip_prefix('{').and_then(|u| u.split_once('}'))
    {
        Some((group, rest)) => group.split('|').map(|a| format!("{a}{rest}")).collect(),
        None => vec![username.to_owned()],
    };
    let cut = |s: &String| s.to_lowercase().chars().take(12).collect();
    alternatives.iter().map(cut).collect()
}

/// A browser-like client: cookies kept, redirects followed.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// Walks the provider from the studio's front door to the TOTP page; returns the provider's base URL.
async fn to_totp_page(
    web: &reqwest::Client,
    stack: &DemoStack,
    task: &ScenarioTask,
    mail_password: &str,
) -> String {
    let home = web
        .get(format!("{}/demo/{STUDIO_DOMAIN}/", stack.sim.url()))
        .send()
        .await
        .expect("front door");
    let home = home.text().await.expect("front door page");
    assert!(
        home.contains(r#"id="consent""#),
        "the overlay is there: {home}"
    );
    let href = regex::Regex::new(r#"id="continue-demomail"[^>]*href="([^"]+)""#)
        .expect("regex")
        .captures(&home)
        .map(|c| c[1].replace("&amp;", "&"))
        .unwrap_or_else(|| panic!("no Continue link: {home}"));
    let page = web.get(&href).send().await.expect("authorize");
    assert_eq!(page.status(), 200);
    let idp = format!("{}/demo/{}", stack.sim.url(), pw_simulator::IDP_DOMAIN);
    let page = web
        .post(format!("{idp}/o/identifier"))
        .form(&[("identifier", task.email.as_str())])
        .send()
        .await
        .expect("identifier");
    assert!(page.text().await.unwrap_or_default().contains("Passwd"));
    let page = web
        .post(format!("{idp}/o/password"))
        .form(&[("Passwd", mail_password)])
        .send()
        .await
        .expect("password");
    let status = page.status();
    let text = page.text().await.unwrap_or_default();
    if mail_password.starts_with("wrong") {
        assert_eq!(status, 422, "{text}");
        assert!(text.contains("Wrong password"), "{text}");
    } else {
        assert!(text.contains("totpPin"), "{status}: {text}");
    }
    idp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn studio_provider_refuses_a_wrong_mail_password_and_a_reused_code() {
    let stack = DemoStack::new(StackOptions::default()).await;
    let task = stack.add_requests_on(STUDIO_DOMAIN, 1, 0).remove(0);
    let pass_mail = stack.field(&task.id, "pass_mail");
    let code = totp_now(&stack.field(&task.id, "twofa"));

    to_totp_page(&client(), &stack, &task, "wrong-password").await;

    let first = client();
    let idp = to_totp_page(&first, &stack, &task, &pass_mail).await;
    let landed = first
        .post(format!("{idp}/o/totp"))
        .form(&[("totpPin", code.as_str())])
        .send()
        .await
        .expect("totp");
    assert!(
        landed.url().path().ends_with("/onboarding"),
        "{}",
        landed.url()
    );
    let page = landed.text().await.unwrap_or_default();
    assert!(page.contains("onboarding-template"), "{page}");

    let second = client();
    let idp = to_totp_page(&second, &stack, &task, &pass_mail).await;
    let refused = second
        .post(format!("{idp}/o/totp"))
        .form(&[("totpPin", code.as_str())])
        .send()
        .await
        .expect("totp again");
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.unwrap_or_default();
    assert!(page.contains("already used"), "{page}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn studio_e2e_registers_through_the_provider_fitting_the_username_rule() {
    let mut stack = DemoStack::new(StackOptions::default()).await;
    let tasks = stack.add_requests_on(STUDIO_DOMAIN, 2, 1);
    let ids: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
    stack.start_pipeline().await;
    stack.settle(&ids, SETTLE).await;
    let evidence = || stack.evidence(&ids);
    for id in &ids {
        assert_eq!(
            stack.view(id).state,
            "completed",
            "task {id}: {}",
            evidence()
        );
    }
    let site = stack.site(STUDIO_DOMAIN).await;
    let mains: Vec<&ScenarioTask> = tasks.iter().filter(|t| t.site == "main").collect();
    assert_eq!(mains.len(), 2);
    for (n, main) in mains.into_iter().enumerate() {
        let report = stack.view(&main.id).report.expect("report");
        let reported = report.username.clone().unwrap_or_default();
        let cuts = plain_cuts(&stack.field(&main.id, "username"));
        assert!(follows_the_rule(&reported), "{reported}: {}", evidence());
        if n == 0 {
            // The scenario's first studio task has its plain username taken: the recipe's branch retyped it.
            assert!(
                !cuts.contains(&reported),
                "taken username typed: {reported}: {site}"
            );
            assert!(
                cuts.iter().any(|c| c[..7] == reported[..7]),
                "{reported} vs {cuts:?}"
            );
        } else {
            assert!(
                cuts.contains(&reported),
                "{reported} vs {cuts:?}: {}",
                evidence()
            );
        }
        let users = site["users"].as_array().expect("users");
        let account = users.iter().find(|u| u["email"] == main.email.as_str());
        assert_eq!(
            account.map(|u| u["username"].clone()),
            Some(json!(reported)),
            "{site}"
        );
        let login =
            json!({"domain": STUDIO_DOMAIN, "login": reported, "password": report.password});
        let answer = stack.admin("check-login", login).await;
        assert!(answer["ok"] == true, "reported credentials: {answer}");
        let cookie = json!({"domain": STUDIO_DOMAIN, "cookie": report.cookie.unwrap_or_default()});
        let answer = stack.admin("check-cookie", cookie).await;
        assert!(
            answer["email"] == main.email.as_str(),
            "reported cookie: {answer}"
        );
        let rss = report.link_rss.unwrap_or_default();
        assert!(
            rss.starts_with(&format!("http://{STUDIO_DOMAIN}/feeds/")),
            "{rss}"
        );
        let sub = tasks
            .iter()
            .find(|t| t.site == "sub" && t.request_id == main.request_id)
            .expect("the request's sub-site task");
        let sub_site = stack.site(&sub.domain).await;
        let imported: Vec<Value> = sub_site["shows"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s["imported_from"].clone())
            .collect();
        assert!(imported.contains(&json!(rss)), "{sub_site}");
    }
    assert!(stack.sim.audit().clean, "{}", evidence());
    stack.stop().await;
}

/// A registration that fails at the show step (503 once) is retried inside the executor: the retry signs in
/// through the provider again (a fresh TOTP code: the one used is refused there) and lands on the show form,
/// not on the onboarding: one account, one show, one `complete`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn studio_e2e_retry_lands_where_the_account_stopped() {
    let options = StackOptions {
        max_retries: 0,
        executor_vars: vec![
            ("PW_TASK_ATTEMPTS", "3".to_owned()),
            ("PW_TASK_BACKOFF_MS", "200".to_owned()),
        ],
    };
    let mut stack = DemoStack::new(options).await;
    let task = stack.add_requests_on(STUDIO_DOMAIN, 1, 0).remove(0);
    let ids = vec![task.id.clone()];
    stack.sim.set_demo_faults(DemoFaults {
        fail_step: Some("create_show".into()),
        fail_times: 1,
        ..DemoFaults::default()
    });
    stack.start_pipeline().await;
    stack.settle(&ids, SETTLE).await;
    let evidence = || stack.evidence(&ids);
    assert_eq!(
        stack.demo_faults().await.fail_times,
        0,
        "the fault was not reached"
    );
    assert_eq!(stack.view(&task.id).state, "completed", "{}", evidence());
    assert_eq!(stack.count(&task.id, "start"), 1, "{}", evidence());
    assert_eq!(stack.count(&task.id, "fail"), 0, "{}", evidence());
    let site = stack.site(STUDIO_DOMAIN).await;
    let mine = |key: &str, field: &str| -> usize {
        site[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v[field] == task.email.as_str())
            .count()
    };
    assert_eq!(
        (mine("users", "email"), mine("shows", "owner")),
        (1, 1),
        "{site}"
    );
    assert!(stack.sim.audit().clean, "{}", evidence());
    stack.stop().await;
}

//! End to end through the real pipeline: simulator → fetcher → Redis → executor running the real recipes of
//! `recipes/` in the real headless Chromium against the simulator's demo platforms, verification mail read from
//! the real Dovecot over IMAP. Main site then sub-sites with the feed and working credentials; a site's own
//! "already registered" as one permanent failure; a slow step timed out and retried by the executor itself; a
//! retry after sign-up resuming by logging in.

use std::time::Duration;

use podcast_worker::metrics::Metrics;
use pw_simulator::{DEFAULT_MAIN_DOMAIN, DemoFaults, ScenarioTask};
use serde_json::{Value, json};

use crate::helpers::demo_stack::{DemoStack, StackOptions};

/// How long the tasks of one test may take before the assertions run (and show the evidence).
const SETTLE: Duration = Duration::from_secs(100);

/// Applied `complete` reports of a task.
fn completes(stack: &DemoStack, id: &str) -> usize {
    let view = stack.view(id);
    let applied = view
        .history
        .iter()
        .filter(|h| h.action == "complete" && h.applied);
    applied.count()
}

/// The sum of every series of a counter family.
fn counter_sum(metrics: &Metrics, family: &str) -> f64 {
    metrics
        .render()
        .lines()
        .filter(|l| {
            l.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_e2e_main_then_subs_complete_with_the_feed_and_working_credentials() {
    let mut stack = DemoStack::new(StackOptions::default()).await;
    let tasks = stack.add_request(3);
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
        assert_eq!(completes(&stack, id), 1, "task {id}: {}", evidence());
    }

    let main = &tasks[0];
    assert_eq!(main.site, "main", "{}", evidence());
    let rss = stack.view(&main.id).report.and_then(|r| r.link_rss);
    let rss = rss.unwrap_or_else(|| panic!("main report without link_rss: {}", evidence()));
    let feed_prefix = format!("http://{DEFAULT_MAIN_DOMAIN}/feeds/");
    assert!(rss.starts_with(&feed_prefix), "{rss}: {}", evidence());
    for sub in &tasks[1..] {
        let view = stack.view(&sub.id);
        assert_eq!(view.site, "sub", "{}", evidence());
        assert_eq!(
            view.task["link_rss"],
            rss.as_str(),
            "handed-out feed of {}: {}",
            sub.id,
            evidence()
        );
        if let Some(reported) = view.report.as_ref().and_then(|r| r.link_rss.as_deref()) {
            assert_eq!(reported, rss, "reported feed of {}: {}", sub.id, evidence());
        }
        let site = stack.site(&sub.domain).await;
        let imported = site["shows"].as_array().into_iter().flatten();
        let imported: Vec<_> = imported.map(|s| s["imported_from"].clone()).collect();
        assert_eq!(
            imported,
            [json!(rss)],
            "{}: {site}\n{}",
            sub.domain,
            evidence()
        );
    }

    for task in &tasks {
        let view = stack.view(&task.id);
        let report = view
            .report
            .clone()
            .expect("a completed task has its report");
        let password = report.password.clone().unwrap_or_default();
        let logins = [report.username.clone(), report.email.clone()];
        let logins: Vec<String> = logins.into_iter().flatten().collect();
        assert!(!logins.is_empty() && !password.is_empty(), "{}", evidence());
        for login in &logins {
            let body = json!({"domain": task.domain, "login": login, "password": password});
            let answer = stack.admin("check-login", body).await;
            let ok = answer["ok"] == true && answer["verified"] == true;
            assert!(ok, "{login} on {}: {answer}\n{}", task.domain, evidence());
        }
        let cookie = report.cookie.clone().unwrap_or_default();
        let answer = stack
            .admin(
                "check-cookie",
                json!({"domain": task.domain, "cookie": cookie}),
            )
            .await;
        let ok = answer["ok"] == true && answer["email"] == task.email.as_str();
        assert!(ok, "cookie on {}: {answer}\n{}", task.domain, evidence());
    }
    let audit = stack.sim.audit();
    assert!(audit.clean, "{}", evidence());
    assert_eq!(audit.counts["completed"], 4, "{}", evidence());
    stack.stop().await;
}

/// Demo faults that only count: the sign-up step "waits" 0 ms for each of the next 1000 sign-ups.
const COUNTING_SIGNUPS: u32 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_e2e_already_registered_fails_permanently_with_the_sites_message() {
    let options = StackOptions {
        max_retries: 0,
        executor_vars: vec![("PW_TASK_ATTEMPTS", "3".to_owned())],
    };
    let mut stack = DemoStack::new(options).await;
    let tasks = stack.add_request(0);
    let ids = vec![tasks[0].id.clone()];
    let email = stack.field(&ids[0], "email");
    let form = [
        ("email", email.as_str()),
        ("username", "someone1"),
        ("password", "Already-here-42"),
    ];
    let (status, page) = stack.post_form(DEFAULT_MAIN_DOMAIN, "/signup", &form).await;
    assert_eq!(status, 200, "pre-registration: {page}");
    stack.sim.set_demo_faults(DemoFaults {
        slow_step: Some("signup".into()),
        slow_ms: 0,
        slow_times: COUNTING_SIGNUPS,
        ..DemoFaults::default()
    });
    stack.start_pipeline().await;
    stack.settle(&ids, SETTLE).await;
    let evidence = || stack.evidence(&ids);

    let view = stack.view(&ids[0]);
    assert_eq!(view.state, "final_failed", "{}", evidence());
    assert_eq!(
        stack.count(&ids[0], "fail"),
        1,
        "one fail report: {}",
        evidence()
    );
    assert_eq!(
        stack.count(&ids[0], "start"),
        1,
        "one start: {}",
        evidence()
    );
    let message = view.last_error.clone().unwrap_or_default();
    assert!(
        message.contains("This email is already registered"),
        "{message}: {}",
        evidence()
    );
    let signups = COUNTING_SIGNUPS - stack.demo_faults().await.slow_times;
    assert_eq!(
        signups,
        1,
        "sign-up attempts by the executor: {}",
        evidence()
    );
    let retries = counter_sum(&stack.metrics, "pw_task_retries_total");
    assert_eq!(
        retries,
        0.0,
        "the executor retried a permanent failure: {}",
        evidence()
    );
    assert!(stack.sim.audit().clean, "{}", evidence());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_e2e_slow_step_times_out_and_is_retried() {
    let step_timeout_ms = 4000;
    // A timed-out sign-up is cancelled with the page, so the account does not exist yet when the retry signs
    // up again (a failure at a later step is resumed by logging in: see the next test).
    let faults = DemoFaults {
        slow_step: Some("signup".into()),
        slow_ms: step_timeout_ms * 5 / 2,
        slow_times: 1,
        ..DemoFaults::default()
    };
    let timeout = ("PW_STEP_TIMEOUT_MS", step_timeout_ms.to_string());
    let (stack, task) = one_main_task_under(faults, vec![timeout]).await;
    completed_once_after_a_retry(&stack, &task.id).await;
    stack.stop().await;
}

/// A registration that fails after sign-up (the show step answers 503 once) is retried; the retry's sign-up
/// meets "already registered", and the recipe's `[[resume]]` rule continues by logging in (password, TOTP)
/// instead of failing: the account that was created is completed and reported, not forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_e2e_retry_after_sign_up_resumes_by_logging_in() {
    let faults = DemoFaults {
        fail_step: Some("create_show".into()),
        fail_times: 1,
        ..DemoFaults::default()
    };
    let (stack, task) = one_main_task_under(faults, Vec::new()).await;
    completed_once_after_a_retry(&stack, &task.id).await;
    let site = stack.site(DEFAULT_MAIN_DOMAIN).await;
    let email = task.email.clone();
    let users: Vec<&Value> = site["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["email"] == email.as_str())
        .collect();
    assert_eq!(users.len(), 1, "one account: {site}");
    let shows: Vec<&Value> = site["shows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["owner"] == email.as_str())
        .collect();
    assert_eq!(
        shows.len(),
        1,
        "one show, made by the resumed attempt: {site}"
    );
    let report = stack.view(&task.id).report.expect("report");
    assert!(
        report
            .link_rss
            .as_deref()
            .is_some_and(|l| l.contains(".xml")),
        "{report:?}"
    );
    stack.stop().await;
}

/// One main-site task run by a stack whose executor makes 3 attempts (200 ms backoff) and `extra` variables,
/// with the demo site's `faults` armed; returns once the task settled, after checking the fault was used up.
async fn one_main_task_under(
    faults: DemoFaults,
    extra: Vec<(&'static str, String)>,
) -> (DemoStack, ScenarioTask) {
    let mut executor_vars = vec![
        ("PW_TASK_ATTEMPTS", "3".to_owned()),
        ("PW_TASK_BACKOFF_MS", "200".to_owned()),
    ];
    executor_vars.extend(extra);
    let options = StackOptions {
        max_retries: 0,
        executor_vars,
    };
    let mut stack = DemoStack::new(options).await;
    let task = stack.add_request(0).remove(0);
    let ids = vec![task.id.clone()];
    stack.sim.set_demo_faults(faults);
    stack.start_pipeline().await;
    stack.settle(&ids, SETTLE).await;
    let left = stack.demo_faults().await;
    assert!(
        left.slow_times == 0 && left.fail_times == 0,
        "the faulty step was not reached: {left:?}\n{}",
        stack.evidence(&ids)
    );
    (stack, task)
}

/// The main-site task `id` completed with one `start`, one `complete` and no `fail`, after at least one retry
/// inside the executor; the reported credentials open the account; the audit is clean.
async fn completed_once_after_a_retry(stack: &DemoStack, id: &str) {
    let ids = [id.to_owned()];
    let evidence = || stack.evidence(&ids);
    assert_eq!(stack.view(id).state, "completed", "{}", evidence());
    assert_eq!(completes(stack, id), 1, "{}", evidence());
    assert_eq!(
        stack.count(id, "start"),
        1,
        "retried inside the executor: {}",
        evidence()
    );
    assert_eq!(stack.count(id, "fail"), 0, "{}", evidence());
    let retries = counter_sum(&stack.metrics, "pw_task_retries_total");
    assert!(
        retries >= 1.0,
        "no retry counted ({retries}): {}",
        evidence()
    );
    let report = stack.view(id).report.expect("report");
    let body =
        json!({"domain": DEFAULT_MAIN_DOMAIN, "login": report.email, "password": report.password});
    let answer = stack.admin("check-login", body).await;
    assert!(answer["ok"] == true, "{answer}: {}", evidence());
    assert!(stack.sim.audit().clean, "{}", evidence());
}

//! A recipe recorded rather than written: `tests/fixtures/demo-main-signup.recording.json` is a Chrome DevTools
//! Recorder export (the `@puppeteer/replay` user-flow schema) of a sign-up on the demo main site, made with the
//! task in the same folder's terms. `recipe-check import` turns it into a draft; the draft gets what
//! docs/recipes.md tells the operator to add (the mail wait its comment points at, `site = "main"` and the feed's
//! extract) and then registers a new task through the whole pipeline in Chromium.

use std::time::Duration;

use serde_json::json;

use crate::helpers::demo_stack::{DemoStack, StackOptions};

const RECORDING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/demo-main-signup.recording.json"
);

/// The task the operator recorded with (its values are what the recording typed).
fn recorded_task() -> serde_json::Value {
    json!({"id": "rec-1", "domain": "main.demo.test", "email": "u1.4242@demo.test",
        "username": "shopcast1abcd", "password": "Rec0rded!pass", "about": "<p>Coffee talk from shop 1.</p>"})
}

/// What the operator adds to the draft, following its comments and docs/recipes.md.
fn finish_draft(draft: &str) -> String {
    let typed_code = "[[steps]]\nfill = \"#code\"\nvalue = \"483920\"\n";
    assert!(
        draft.contains(typed_code),
        "the recorded code step: {draft}"
    );
    let mail = "[[steps]]\nwait_mail = \"code\"\nfrom = \"no-reply@{{domain}}\"\nsubject = \"verification code\"\n\
                pattern = 'verification code is (\\d{6})'\n[[steps]]\nfill = \"#code\"\nvalue = \"{{code}}\"\n";
    let extract = "[[steps]]\nextract = \"#rss-url\"\nattribute = \"href\"\ninto = \"link_rss\"\n\n\
                   [result]\nlink_rss = \"{{link_rss}}\"\n";
    let finished = draft
        .replace(
            "site = \"sub\"",
            "site = \"main\"\nerror_selectors = [\"#error\"]",
        )
        .replace(typed_code, mail);
    format!("{finished}{extract}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_recording_imports_into_a_draft_that_registers_once_finished() {
    let dir = tempfile::tempdir().expect("temp dir");
    let task_file = dir.path().join("task.json");
    std::fs::write(&task_file, recorded_task().to_string()).expect("task file");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_recipe-check"))
        .args(["import", RECORDING])
        .arg(&task_file)
        .output()
        .await
        .expect("recipe-check import");
    let draft = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{draft}");
    for expected in [
        "domains = [\"main.demo.test\"]",
        "goto = \"http://{{domain}}/signup\"",
        "fill = \"#email\"\nvalue = \"{{email}}\"",
        "fill = \"#username\"\nvalue = \"{{username}}\"",
        "fill = \"#password\"\nvalue = \"{{password}}\"",
        "click = \"#signup-submit\"\nnavigates = true",
        "# wait_mail = \"code\"",
        "totp = \"#totp\"",
        "upload_image = \"#cover\"",
        "fill = \"#about\"\nvalue = \"{{about_text}}\"",
        "extract = \"<selector of its link>\"",
    ] {
        assert!(
            draft.contains(expected),
            "{expected:?} missing from the draft:\n{draft}"
        );
    }
    assert!(
        !draft.contains("Rec0rded!pass"),
        "the recorded password stays out: {draft}"
    );

    let recipes = dir.path().join("recipes");
    std::fs::create_dir_all(&recipes).expect("recipes dir");
    std::fs::write(recipes.join("recorded.toml"), finish_draft(&draft)).expect("recipe");
    let options = StackOptions {
        max_retries: 0,
        executor_vars: vec![("PW_RECIPES_DIR", recipes.display().to_string())],
    };
    let mut stack = DemoStack::new(options).await;
    let task = stack.add_request(0).remove(0);
    let ids = vec![task.id.clone()];
    stack.start_pipeline().await;
    stack.settle(&ids, Duration::from_secs(110)).await;
    let evidence = stack.evidence(&ids);
    assert_eq!(stack.view(&task.id).state, "completed", "{evidence}");
    let report = stack.view(&task.id).report.expect("report");
    let login = json!({"domain": task.domain, "login": report.email, "password": report.password});
    let answer = stack.admin("check-login", login).await;
    assert!(
        answer["ok"] == true && answer["verified"] == true,
        "{answer}: {evidence}"
    );
    let rss = report.link_rss.unwrap_or_default();
    assert!(
        rss.starts_with("http://main.demo.test/feeds/"),
        "{rss}: {evidence}"
    );
    stack.stop().await;
}

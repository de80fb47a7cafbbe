//! The recipe language's branches and secrets in the real Chromium against a fixture site: conditional steps
//! (`if_visible`, `if_url`, `if_text`), forward jumps (`then`, `goto_step`), filters typed into a form,
//! `fail_if` guards of the recipe's own (`kind = "recipe"`), and secret task variables (`pass_mail`)
//! scrubbed from the artifacts of a page that echoes them.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::Query;
use axum::response::Html;
use axum::routing::get;
use podcast_worker::browser::BrowserPool;
use podcast_worker::driver::FailureKind;
use podcast_worker::recipe::{RecipeDriver, parse_recipe};
use podcast_worker::task::Task;

use super::env;
use crate::helpers::browser::{serve, settings};

const PASS_MAIL: &str = "Mail-Pa55word&<x>";

fn page(body: &str) -> Html<String> {
    Html(format!("<!doctype html><html><body>{body}</body></html>"))
}

/// `/landing?state=new|old`: a consent banner that must be accepted, then "Create your show" (a title form)
/// or "Settings", as a real site lands differently depending on how far the account got. `/echo?pw=…`
/// shows what was typed, as some sites do.
fn site() -> Router {
    let landing = |Query(q): Query<HashMap<String, String>>| async move {
        let banner = r#"<div id="consent">We use cookies <button id="accept"
            onclick="document.getElementById('consent').remove()">Accept</button></div>"#;
        let body = match q.get("state").map(String::as_str) {
            Some("old") => r#"<h1>Settings</h1><p id="plan">Plan: free</p>"#.to_owned(),
            _ => r#"<h1>Create your show</h1><input id="title">"#.to_owned(),
        };
        page(&format!("{banner}{body}"))
    };
    let form = || async {
        page(
            r#"<form action="/echo"><input id="pw" name="pw" type="password"><button id="go">Go</button></form>"#,
        )
    };
    let echo = |Query(q): Query<HashMap<String, String>>| async move {
        let pw = q.get("pw").cloned().unwrap_or_default();
        let escaped = pw
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        page(&format!(r#"<p class="oops">Wrong password {escaped}</p>"#))
    };
    Router::new()
        .route("/landing", get(landing))
        .route("/form", get(form))
        .route("/echo", get(echo))
}

async fn driver(recipe: &str) -> (tempfile::TempDir, RecipeDriver, String) {
    let dir = tempfile::tempdir().unwrap();
    let pool = BrowserPool::new(settings(dir.path())).unwrap();
    let base = serve(site()).await;
    let recipe = parse_recipe("branches.toml", recipe).unwrap();
    (dir, RecipeDriver::new(Arc::new(recipe), env(pool)), base)
}

fn task(website: &str, id: &str) -> Task {
    serde_json::from_value(serde_json::json!({
        "id": id, "domain": "fixture.test", "website": website, "email": "ann@example.test",
        "username": "Jean-Luc Picard", "password": "Sup3r-Secret-PW!", "pass_mail": PASS_MAIL,
    }))
    .unwrap()
}

const BRANCHES: &str = r##"
site = "sub"
domains = ["fixture.test"]

[[steps]]
goto = "{{website}}"
[[steps]]
name = "cookie banner"
if_visible = "#consent"
click = "#accept"
[[steps]]
name = "another banner"
if_visible = "#newsletter"
click = "#newsletter button"
[[steps]]
if_text = "Settings"
goto_step = "settings"

[[steps]]
name = "create show"
fill = "#title"
value = "{{username | slug:_ | unique:13}}"
[[steps]]
extract = "#title"
attribute = "value"
into = "seen"
then = "done"

[[steps]]
name = "settings"
if_url = "state=old"
extract = "#plan"
into = "plan"
[[steps]]
extract = "h1"
into = "seen"

[[steps]]
name = "done"
wait_for = "h1"
fail_if = "#consent"
kind = "recipe"
message = "the consent banner is still there"

[result]
note = "{{seen}}"
"##;

#[tokio::test]
async fn recipe_branches_follow_the_page_state() {
    let recipe = BRANCHES.replace("wait_for = \"h1\"\nfail_if", "fail_if");
    let (_dir, driver, base) = driver(&recipe).await;

    // A new account: the banner is accepted, the absent one skipped, the show created with a username cut
    // to the site's 13 characters; the settings branch is jumped over.
    let t = task(&format!("{base}/landing?state=new"), "task-new-1");
    let out = driver.run(&t, None).await;
    let log = out.log.to_string();
    let reg = out.result.unwrap_or_else(|e| panic!("{e}\n{log}"));
    let typed = reg.note.unwrap();
    assert_eq!(typed.chars().count(), 13, "{typed}");
    assert!(typed.starts_with("jean_lu"), "{typed}");
    assert!(
        log.contains("step 2 click [cookie banner] #accept: ok"),
        "{log}"
    );
    assert!(
        log.contains(
            "step 3 click [another banner] #newsletter button: skipped (if_visible is false)"
        ),
        "{log}"
    );
    assert!(
        log.contains("step 4 goto_step -> \"settings\": skipped (if_text is false)"),
        "{log}"
    );
    assert!(log.contains("step 6: continuing at step 9"), "{log}");
    assert!(!log.contains("step 7 "), "{log}");

    // A retry of the same task types the same username.
    let again = driver.run(&t, None).await.result.unwrap();
    assert_eq!(again.note.as_deref(), Some(typed.as_str()));

    // An account that got further lands on settings: the create steps are jumped over.
    let t = task(&format!("{base}/landing?state=old"), "task-old-1");
    let out = driver.run(&t, None).await;
    let log = out.log.to_string();
    let reg = out.result.unwrap_or_else(|e| panic!("{e}\n{log}"));
    assert_eq!(reg.note.as_deref(), Some("Settings"));
    assert!(log.contains("step 4: continuing at step 7"), "{log}");
    assert!(!log.contains("step 5 "), "{log}");
    assert!(
        log.contains("step 7 extract [settings] #plan -> plan: ok"),
        "{log}"
    );
}

#[tokio::test]
async fn recipe_guard_of_kind_recipe_is_a_recipe_error() {
    // The banner is never accepted (its step is gone), so the recipe's own guard fires.
    let recipe = BRANCHES.replace(
        "if_visible = \"#consent\"\nclick = \"#accept\"",
        "wait_for = \"#consent\"",
    );
    let (_dir, driver, base) =
        driver(&recipe.replace("wait_for = \"h1\"\nfail_if", "fail_if")).await;
    let t = task(&format!("{base}/landing?state=new"), "task-guard-1");
    let e = driver.run(&t, None).await.result.unwrap_err();
    assert_eq!(e.kind, FailureKind::Recipe, "{e:?}");
    assert!(!e.transient);
    assert_eq!(
        e.to_string(),
        "recipe error: the consent banner is still there"
    );
}

#[tokio::test]
async fn recipe_secret_variables_are_typed_and_scrubbed_from_artifacts() {
    let recipe = r##"
site = "sub"
domains = ["fixture.test"]
error_selectors = [".oops"]
[[steps]]
goto = "{{website}}/form"
[[steps]]
fill = "#pw"
value = "{{pass_mail}}"
[[steps]]
click = "#go"
navigates = true
"##;
    let (dir, driver, base) = driver(recipe).await;
    let t = task(&base, "task-echo-1");
    let out = driver.run(&t, None).await;
    let e = out.result.unwrap_err();
    // The page echoed the typed mail password: neither the site error (the page's text) nor the artifacts
    // carry it.
    assert_eq!(e.kind, FailureKind::Site, "{e:?}");
    assert_eq!(e.to_string(), "site error: Wrong password [secret]");
    let art = dir.path().join("artifacts").join("task-echo-1");
    let html = std::fs::read_to_string(art.join("page.html")).unwrap();
    assert!(html.contains("Wrong password [secret]"), "{html}");
    let steps = std::fs::read_to_string(art.join("steps.log")).unwrap();
    for text in [&html, &steps] {
        assert!(!text.contains("Mail-Pa55word"), "{text}");
    }
    assert!(steps.contains("Wrong password [secret]"), "{steps}");
}

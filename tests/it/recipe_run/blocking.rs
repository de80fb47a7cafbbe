//! Resource blocking in the real Chromium: a recipe's `block` list keeps the page's images and stylesheets
//! from ever reaching the site, a step's `unblock` lets its page load them, and the next step blocks again
//! (after a navigating click, and on another site, too). The fixture site counts every request it answers.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use podcast_worker::browser::BrowserPool;
use podcast_worker::recipe::{RecipeDriver, parse_recipe};
use podcast_worker::task::Task;

use super::env;
use crate::helpers::browser::{serve, settings};
use crate::helpers::fixture_site::png;

/// Paths of the images and stylesheets the site served, in order.
type Served = Arc<Mutex<Vec<String>>>;

/// `/page/N`: an image, a stylesheet and a link `#next` to page N+1; each resource under its own URL, so
/// no cache hides a request.
fn site(served: Served) -> Router {
    let page = |Path(n): Path<u32>| async move {
        Html(format!(
            r#"<!doctype html><html><head><link rel="stylesheet" href="/style/{n}.css"></head><body>
            <img id="pic" src="/img/{n}.png"><a id="next" href="/page/{}">next</a></body></html>"#,
            n + 1
        ))
    };
    let img = |State(s): State<Served>, Path(name): Path<String>| async move {
        s.lock().unwrap().push(format!("/img/{name}"));
        ([("content-type", "image/png")], png()).into_response()
    };
    let css = |State(s): State<Served>, Path(name): Path<String>| async move {
        s.lock().unwrap().push(format!("/style/{name}"));
        ([("content-type", "text/css")], "body { margin: 3px }").into_response()
    };
    Router::new()
        .route("/page/{n}", get(page))
        .route("/img/{name}", get(img))
        .route("/style/{name}", get(css))
        .with_state(served)
}

/// Runs the recipe; `{{other_site}}` in it is the site under another host name (`localhost`), which
/// Chromium puts in another renderer process.
async fn run(recipe: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let pool = BrowserPool::new(settings(dir.path())).unwrap();
    let served = Served::default();
    let base = serve(site(served.clone())).await;
    let other = base.replace("127.0.0.1", "localhost");
    let recipe = parse_recipe("blocking.toml", &recipe.replace("{{other_site}}", &other)).unwrap();
    let driver = RecipeDriver::new(Arc::new(recipe), env(pool.clone()));
    let task: Task = serde_json::from_value(serde_json::json!({
        "id": format!("t-{}", uuid::Uuid::new_v4().simple()), "domain": "fixture.test",
        "website": base, "email": "ann@example.test", "username": "ann", "password": "pw",
    }))
    .unwrap();
    let out = driver.run(&task, None).await;
    assert!(out.result.is_ok(), "{:?}\n{}", out.result, out.log);
    pool.shutdown().await;
    let mut seen = served.lock().unwrap().clone();
    seen.sort();
    seen
}

const STEPS: &str = r##"
[[steps]]
goto = "{{website}}/page/1"
[[steps]]
wait_for = "#next"
[[steps]]
name = "cover page"
goto = "{{website}}/page/2"
unblock = ["image"]
[[steps]]
click = "#next"
navigates = true
[[steps]]
wait_for = "#pic"
[[steps]]
goto = "{{other_site}}/page/4"
"##;

#[tokio::test]
async fn recipe_block_keeps_resources_from_the_site_except_where_a_step_unblocks_them() {
    let head = "site = \"sub\"\ndomains = [\"fixture.test\"]\n";
    // Without a block list, every page loads its image and stylesheet: the site sees them all.
    let open = run(&format!(
        "{head}{}",
        STEPS.replace("unblock = [\"image\"]\n", "")
    ))
    .await;
    assert_eq!(
        open,
        [
            "/img/1.png",
            "/img/2.png",
            "/img/3.png",
            "/img/4.png",
            "/style/1.css",
            "/style/2.css",
            "/style/3.css",
            "/style/4.css"
        ],
        "{open:?}"
    );
    let text = format!("{head}block = [\"image\", \"stylesheet\"]\n{STEPS}");
    let blocked = run(&text).await;
    // Page 1 blocked; the unblocked step's page 2 loads its image (its stylesheet stays blocked); page 3,
    // reached by the next step's click, is blocked again, and so is page 4 on another site (another
    // renderer process behind the same page).
    assert_eq!(blocked, ["/img/2.png"], "{blocked:?}");
}

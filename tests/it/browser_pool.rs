//! The browser pool against the real Chromium: isolated contexts, recycling after N tasks, crash recovery,
//! leftover cleanup and stats.

use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use podcast_worker::browser::BrowserPool;

use crate::helpers::browser::{chromium_path, serve, settings};
use crate::helpers::eventually;

fn site() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async {
                Html(
                    r#"<html><body><form><input id="name"><select id="s"><option value="a">Alpha</option>
                <option value="b">Beta</option></select><input type="checkbox" id="c">
                <button type="button" id="go" onclick="document.getElementById('out').textContent =
                  document.getElementById('name').value + '/' + document.getElementById('s').value + '/' +
                  document.getElementById('c').checked">Go</button></form><p id="out"></p></body></html>"#,
                )
            }),
        )
        .route(
            "/set",
            get(|| async {
                (
                    [("set-cookie", "sid=abc123; Path=/")],
                    Html("<p>cookie set</p>"),
                )
            }),
        )
}

#[tokio::test]
async fn browser_pool_sessions_fill_click_and_keep_cookies_apart() {
    let dir = tempfile::tempdir().unwrap();
    let pool = BrowserPool::new(settings(dir.path())).unwrap();
    let base = serve(site()).await;

    let a = pool.open_session().await.unwrap();
    a.goto(&format!("{base}/")).await.unwrap();
    a.fill("#name", "Zoë Smith").await.unwrap();
    a.select("#s", "Beta").await.unwrap();
    a.check("#c", true).await.unwrap();
    a.click("#go").await.unwrap();
    let out = a
        .eval("document.getElementById('out').textContent")
        .await
        .unwrap();
    assert_eq!(out, "Zoë Smith/b/true");
    assert!(a.click("#missing").await.is_err());

    a.goto(&format!("{base}/set")).await.unwrap();
    assert_eq!(a.cookie_header().await.unwrap(), "sid=abc123");
    let b = pool.open_session().await.unwrap();
    b.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(
        b.cookie_header().await.unwrap(),
        "",
        "contexts share cookies"
    );
    assert_eq!(pool.stats().open_contexts, 2);
    assert!(pool.stats().pss_bytes > 50 * 1024 * 1024);
    assert!(!a.screenshot().await.unwrap().is_empty());
    a.close().await;
    b.close().await;
    assert_eq!(pool.stats().open_contexts, 0);
    pool.shutdown().await;
    assert_eq!(pool.stats().browsers, 0);
}

#[tokio::test]
async fn browser_pool_replaces_the_browser_after_max_tasks_and_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.max_tasks = 2;
    let pool = BrowserPool::new(s).unwrap();
    let first = pool.open_session().await.unwrap();
    let pid1 = first.browser_pid();
    first.close().await;
    pool.open_session().await.unwrap().close().await;
    let third = pool.open_session().await.unwrap();
    let pid2 = third.browser_pid();
    assert_ne!(pid1, pid2);
    assert_eq!(pool.stats().restarts_recycle, 1);
    // The retired browser exits once idle, and its profile goes with it.
    eventually(Duration::from_secs(10), "old browser to exit", || async {
        (!std::path::Path::new(&format!("/proc/{pid1}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid1}/stat"))
                .is_ok_and(|s| s.contains(") Z")))
        .then_some(())
    })
    .await;

    std::process::Command::new("kill")
        .args(["-KILL", &pid2.to_string()])
        .status()
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "session to see the crash",
        || async { third.browser_dead().then_some(()) },
    )
    .await;
    assert!(third.goto("about:blank").await.is_err());
    drop(third);
    let fourth = pool.open_session().await.unwrap();
    assert_ne!(fourth.browser_pid(), pid2);
    fourth.goto("about:blank").await.unwrap();
    assert_eq!(pool.stats().restarts_crash, 1);
    fourth.close().await;
    pool.shutdown().await;
}

#[tokio::test]
async fn browser_pool_kills_chromium_left_by_a_dead_executor() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path());
    // A profile under an owner tag whose process does not exist: what a SIGKILLed executor leaves.
    let profile = s.profile_root.join("4000000000.1").join("x");
    std::fs::create_dir_all(&profile).unwrap();
    let mut orphan = std::process::Command::new(chromium_path())
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = orphan.id();
    eventually(
        Duration::from_secs(10),
        "orphan chromium to start",
        || async {
            std::fs::read_dir(&profile)
                .is_ok_and(|mut d| d.next().is_some())
                .then_some(())
        },
    )
    .await;
    let pool = BrowserPool::new(s.clone()).unwrap();
    assert!(pool.stats().leftovers_killed >= 1);
    let status = orphan.wait().unwrap();
    assert!(!status.success(), "pid {pid} should have been killed");
    assert!(!s.profile_root.join("4000000000.1").exists());
    pool.shutdown().await;
}

#[tokio::test]
async fn browser_pool_replaces_a_browser_over_its_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.max_pss_bytes = 1024 * 1024; // any real Chromium is far above 1 MiB
    let pool = BrowserPool::new(s).unwrap();
    let a = pool.open_session().await.unwrap();
    let pid_a = a.browser_pid();
    a.close().await;
    let b = pool.open_session().await.unwrap();
    assert_ne!(b.browser_pid(), pid_a);
    let stats = pool.stats();
    assert_eq!((stats.restarts_memory, stats.launches), (1, 2));
    b.close().await;
    pool.shutdown().await;
}

/// The value of one series in a text exposition (NaN when absent).
fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::test]
async fn browser_pool_samples_feed_the_contexts_memory_and_restart_metrics() {
    use podcast_worker::executor::PoolSampler;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.max_tasks = 1;
    let pool = BrowserPool::new(s).unwrap();
    let metrics = crate::helpers::executor::metrics();
    let mut sampler = PoolSampler::default();
    let recycled = r#"pw_browser_restarts_total{reason="recycle"}"#;

    let first = pool.open_session().await.unwrap();
    sampler.sample(&pool, &metrics);
    let text = metrics.render();
    assert_eq!(series(&text, "pw_browser_contexts"), 1.0, "{text}");
    assert!(
        series(&text, "pw_browser_memory_bytes") > 50.0 * 1024.0 * 1024.0,
        "{text}"
    );
    assert_eq!(series(&text, recycled), 0.0, "{text}");
    first.close().await;

    // The second task recycles the browser (max 1 task each): counted once, however often sampled.
    let second = pool.open_session().await.unwrap();
    sampler.sample(&pool, &metrics);
    sampler.sample(&pool, &metrics);
    let text = metrics.render();
    assert_eq!(series(&text, recycled), 1.0, "{text}");
    assert_eq!(
        series(&text, r#"pw_browser_restarts_total{reason="crash"}"#),
        0.0
    );
    second.close().await;
    sampler.sample(&pool, &metrics);
    assert_eq!(series(&metrics.render(), "pw_browser_contexts"), 0.0);
    pool.shutdown().await;
}

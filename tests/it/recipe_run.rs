//! Recipes run by the recipe driver in the real Chromium against a fixture site: every step kind, site
//! errors, CAPTCHAs, timeouts, 5xx, bad images, failure artifacts without secrets, and crash recovery.

use std::sync::Arc;
use std::time::Duration;

use podcast_worker::browser::BrowserPool;
use std::os::unix::fs::PermissionsExt;

use podcast_worker::config::{ImageSettings, MailSettings, RecipeSettings, Source, TotpSettings};
use podcast_worker::driver::{Driver, DriverError, FailureKind};
use podcast_worker::recipe::{RecipeDriver, RecipeEnv, load_dir, parse_recipe};
use podcast_worker::task::Task;
use secrecy::ExposeSecret;

use crate::helpers::browser::{serve, settings};
use crate::helpers::eventually;
use crate::helpers::fixture_site::{Seen, TOTP_SECRET, router};

mod blocking;
mod branches;
mod totp_wait;

const PASSWORD: &str = "Sup3r-Secret-PW!";

fn env(pool: BrowserPool) -> RecipeEnv {
    let src = Source::default();
    let mut image = ImageSettings::from_source(&src).unwrap();
    image.allow_private = true;
    let mail = MailSettings::from_source(&src).unwrap();
    RecipeEnv::new(pool, &mail, image, TotpSettings::from_source(&src).unwrap()).unwrap()
}

fn task(base: &str, email: &str, image: &str) -> Task {
    serde_json::from_value(serde_json::json!({
        "id": format!("t-{}", uuid::Uuid::new_v4().simple()),
        "domain": "fixture.test", "website": base, "email": email,
        "username": "{dj|mc}_bob", "password": PASSWORD, "twofa": TOTP_SECRET.to_lowercase(),
        "about": "<p>Tech &amp; {news|talk}</p>", "image_url": format!("{base}{image}"),
    }))
    .unwrap()
}

async fn setup(recipe: &str) -> (tempfile::TempDir, RecipeDriver, String, Seen) {
    let dir = tempfile::tempdir().unwrap();
    let pool = BrowserPool::new(settings(dir.path())).unwrap();
    let seen = Seen::default();
    let base = serve(router(seen.clone())).await;
    let recipe = parse_recipe("fixture.toml", recipe).unwrap();
    (
        dir,
        RecipeDriver::new(Arc::new(recipe), env(pool)),
        base,
        seen,
    )
}

const SIGNUP: &str = r##"
site = "main"
domains = ["fixture.test"]
error_selectors = [".error"]

[[steps]]
goto = "{{website}}/signup"
[[steps]]
fill = "#email"
value = "{{email}}"
[[steps]]
fill = "#username"
value = "{{username}}"
[[steps]]
fill = "#password"
value = "{{password}}"
[[steps]]
fill = "#about"
value = "{{about_text}}"
[[steps]]
select = "#country"
value = "France"
[[steps]]
check = "#terms"
[[steps]]
upload_image = "#cover"
[[steps]]
click = "#submit"
navigates = true
[[steps]]
wait_url = "/welcome"
[[steps]]
wait_text = "Welcome"
[[steps]]
fail_if = ".banned"
[[steps]]
fail_if_text = "account suspended"
[[steps]]
extract = "#rss"
attribute = "href"
pattern = '(http.*\.xml)$'
into = "link_rss"
[[steps]]
cookies = "cookies"
[[steps]]
totp = "#code"
[[steps]]
click = "#verify"
navigates = true
[[steps]]
wait_for = "#verified"

[result]
link_rss = "{{link_rss}}"
note = "registered as {{username}}"
"##;

#[tokio::test]
async fn recipe_run_registers_through_every_step_kind() {
    let (_dir, driver, base, seen) = setup(SIGNUP).await;
    let t = task(&base, "ann@example.test", "/cover.png");
    let reg = driver.register(&t).await.unwrap();
    let signup = seen.signups.lock().unwrap()[0].clone();
    let f = |k: &str| signup.fields[k].clone();
    assert_eq!(f("email"), "ann@example.test");
    assert!(
        ["dj_bob", "mc_bob"].contains(&f("username").as_str()),
        "{signup:?}"
    );
    assert_eq!(f("password"), PASSWORD);
    assert!(
        f("about") == "Tech & news" || f("about") == "Tech & talk",
        "{signup:?}"
    );
    assert_eq!((f("country").as_str(), f("terms").as_str()), ("fr", "on"));
    assert_ne!(f("cover"), "0 bytes");
    assert_eq!(reg.username.as_deref(), Some(f("username").as_str()));
    assert_eq!(reg.password.unwrap().expose_secret(), PASSWORD);
    assert_eq!(reg.cookie.unwrap().expose_secret(), "sid=sess-42");
    let rss = format!("{base}/feed/{}.xml", f("username"));
    assert_eq!(reg.link_rss.as_deref(), Some(rss.as_str()));
    assert_eq!(reg.note, Some(format!("registered as {}", f("username"))));
}

#[tokio::test]
async fn recipe_run_site_error_fails_permanently_with_artifacts_and_no_secrets() {
    let (dir, driver, base, _) = setup(SIGNUP).await;
    let t = task(&base, "taken@example.test", "/cover.png");
    let out = driver.run(&t, None).await;
    let Err(e) = &out.result else {
        panic!("expected a failure, got {:?}", out.result)
    };
    assert!(!e.transient && e.kind == FailureKind::Site, "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.starts_with("site error: This email is already registered."),
        "{msg}"
    );
    let art = dir.path().join("artifacts").join(t.id.as_str());
    assert!(
        !msg.contains("artifacts"),
        "the path is no business of error_message: {msg}"
    );
    assert_eq!(
        e.note(),
        Some(format!("artifacts: {}", art.display()).as_str())
    );
    for file in ["failure.png", "page.html", "steps.log"] {
        let meta = std::fs::metadata(art.join(file)).unwrap();
        assert!(meta.len() > 0, "{file}");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{file}");
    }
    for d in [art.clone(), dir.path().join("artifacts")] {
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", d.display());
    }
    let log = std::fs::read_to_string(art.join("steps.log")).unwrap();
    assert!(
        log.contains("step 9 click #submit: failed: site error: This email is already registered."),
        "{log}"
    );
    for secret in [PASSWORD, TOTP_SECRET, &TOTP_SECRET.to_lowercase()] {
        assert!(
            !log.contains(secret) && !msg.contains(secret),
            "secret leaked: {log}"
        );
    }
}

async fn fails(recipe_steps: &str, image: &str) -> DriverError {
    let recipe = format!("site = \"sub\"\ndomains = [\"fixture.test\"]\n{recipe_steps}");
    let (_dir, driver, base, _) = setup(&recipe).await;
    driver
        .register(&task(&base, "x@example.test", image))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn recipe_run_classifies_timeouts_captcha_5xx_and_bad_images() {
    let slow = "[[steps]]\ngoto = \"{{website}}/slow\"\n[[steps]]\nwait_for = \"#never\"\ntimeout_ms = 800\n";
    let e = fails(slow, "/cover.png").await;
    // An element that never appears: the page is not what the recipe expects (what the breaker counts).
    assert!(
        e.transient
            && e.kind == FailureKind::Structure
            && e.message
                .contains("step 2 (wait_for) timed out after 800 ms"),
        "{e:?}"
    );

    let captcha = "[[steps]]\ngoto = \"{{website}}/captcha\"\n[[steps]]\nwait_for = \"#form\"\n";
    let e = fails(captcha, "/cover.png").await;
    assert!(
        !e.transient && e.kind == FailureKind::Captcha && e.to_string().starts_with("captcha:"),
        "{e:?}"
    );

    let boom = "[[steps]]\ngoto = \"{{website}}/boom\"\n";
    let e = fails(boom, "/cover.png").await;
    assert!(
        e.transient && e.kind == FailureKind::Network && e.message.contains("HTTP 503"),
        "{e:?}"
    );

    let image = "[[steps]]\ngoto = \"{{website}}/signup\"\n[[steps]]\nupload_image = \"#cover\"\n";
    let e = fails(image, "/not-an-image").await;
    assert!(
        !e.transient && e.kind == FailureKind::Input && e.message.contains("not an image"),
        "{e:?}"
    );
}

#[tokio::test]
async fn recipe_run_retry_completes_after_chromium_is_killed_mid_task() {
    let recipe = "site = \"sub\"\ndomains = [\"fixture.test\"]\n[[steps]]\ngoto = \"{{website}}/late\"\n\
                  [[steps]]\nwait_for = \"#later\"\ntimeout_ms = 20000\n";
    let (dir, driver, base, seen) = setup(recipe).await;
    let pool = BrowserPool::new(settings(dir.path())).unwrap();
    let driver = RecipeDriver::new(Arc::new(driver.recipe().clone()), env(pool.clone()));
    let t = task(&base, "k@example.test", "/cover.png");
    let run = tokio::spawn({
        let (driver, t) = (driver.clone(), t.clone());
        async move { driver.register(&t).await }
    });
    let visited = || seen.late_visits.load(std::sync::atomic::Ordering::SeqCst) > 0;
    let pid = eventually(Duration::from_secs(20), "a task stuck on /late", || async {
        (visited() && pool.stats().open_contexts == 1).then(|| pool.browser_pids()[0])
    })
    .await;
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    let first = run.await.unwrap().unwrap_err();
    assert!(first.transient, "{first:?}");
    driver.register(&t).await.unwrap();
    assert_eq!(pool.stats().restarts_crash, 1);
    pool.shutdown().await;
}

#[test]
fn recipe_load_dir_refuses_an_invalid_recipe_naming_file_and_step() {
    let dir = tempfile::tempdir().unwrap();
    let good = "site = \"sub\"\ndomains = [\"a.test\"]\n[[steps]]\ngoto = \"{{website}}\"\n";
    std::fs::write(dir.path().join("a.toml"), good).unwrap();
    let bad = "site = \"sub\"\ndomains = [\"b.test\"]\n[[steps]]\ngoto = \"{{website}}\"\n[[steps]]\nfill = \"#x\"\n";
    std::fs::write(dir.path().join("b.toml"), bad).unwrap();
    let err = load_dir(dir.path()).unwrap_err().to_string();
    let file = dir.path().join("b.toml");
    assert_eq!(
        err,
        format!("{} step 2 (fill): missing field \"value\"", file.display())
    );
    std::fs::write(dir.path().join("b.toml"), good).unwrap();
    let err = load_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("domain a.test is claimed by both"), "{err}");
}

#[test]
fn driver_error_shows_its_kind_and_keeps_the_note_apart() {
    let e = DriverError::new(FailureKind::Site, false, "no").with_note("artifacts: /a/t-1");
    assert_eq!(e.to_string(), "site error: no");
    assert_eq!(e.note(), Some("artifacts: /a/t-1"));
    assert_eq!(DriverError::transient("x").note(), None);
    assert_eq!(
        DriverError::new(FailureKind::Recipe, false, "x").to_string(),
        "recipe error: x"
    );
}

#[tokio::test]
async fn recipe_check_command_saves_a_screenshot_per_step() {
    let seen = Seen::default();
    let base = serve(router(seen.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("fixture.toml");
    std::fs::write(&recipe, SIGNUP).unwrap();
    let task_file = dir.path().join("task.json");
    let t = serde_json::json!({"id": "check-1", "website": base, "email": "chk@example.test",
        "username": "chk", "password": PASSWORD, "twofa": TOTP_SECRET, "image_url": format!("{base}/cover.png")});
    std::fs::write(&task_file, t.to_string()).unwrap();
    let shots = dir.path().join("shots");
    let s = settings(dir.path());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_recipe-check"))
        .args([&recipe, &task_file, &shots])
        .env("PW_CHROMIUM_PATH", &s.chromium_path)
        .env("PW_BROWSER_PROFILE_ROOT", &s.profile_root)
        .env("PW_ARTIFACTS_DIR", &s.artifacts_dir)
        .env("PW_IMAGE_ALLOW_PRIVATE", "true")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("username: chk") && stdout.contains("password: <16 characters>"),
        "{stdout}"
    );
    assert!(!stdout.contains(PASSWORD), "{stdout}");
    // A clean end closes Chromium without the ERROR a crash logs (log-based alerts would fire on every run).
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("WS Connection error"), "{stderr}");
    let count = std::fs::read_dir(&shots).unwrap().count();
    assert_eq!(count, 18, "one screenshot per step");
    assert_eq!(seen.signups.lock().unwrap().len(), 1);
}

#[test]
fn recipe_setup_refuses_to_start_with_an_invalid_recipe() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.recipes_dir = dir.path().join("recipes");
    std::fs::create_dir_all(&s.recipes_dir).unwrap();
    let bad = "site = \"sub\"\ndomains = [\"b.test\"]\n[[steps]]\nclick = \"#go\"\nvalue = \"x\"\n";
    std::fs::write(s.recipes_dir.join("b.toml"), bad).unwrap();
    let mut settings = RecipeSettings::from_source(&Source::default()).unwrap();
    settings.browser = s;
    let err = podcast_worker::recipe::setup(&settings, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("b.toml step 1 (click): unknown key \"value\""),
        "{err}"
    );
    std::fs::write(
        settings.browser.recipes_dir.join("b.toml"),
        bad.replace("value = \"x\"\n", ""),
    )
    .unwrap();
    let ok = podcast_worker::recipe::setup(&settings, None).unwrap();
    assert_eq!(ok.drivers.domains(), ["b.test"]);
}

#[tokio::test]
async fn recipe_run_refuses_an_invalid_selector_at_once() {
    let steps = "[[steps]]\ngoto = \"{{website}}/signup\"\n[[steps]]\nwait_for = \"#a[[\"\ntimeout_ms = 20000\n";
    let started = std::time::Instant::now();
    let e = fails(steps, "/cover.png").await;
    assert!(
        !e.transient && e.to_string().starts_with("recipe error: invalid selector"),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

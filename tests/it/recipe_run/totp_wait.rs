//! The `totp` step and the fleet-wide ledger of TOTP windows: waiting for a window another run holds does not
//! count against the step's limit (it depends on the other runs, not on the page), and a claimed code that was
//! never typed is given back, so others need not wait for the window after it.

use std::time::Duration;

use podcast_worker::browser::BrowserPool;
use podcast_worker::driver::Driver;
use podcast_worker::recipe::{RecipeDriver, parse_recipe};
use podcast_worker::totp::{TotpGenerator, TotpLedger};
use secrecy::SecretString;

use super::{env, task};
use crate::helpers::browser::{serve, settings};
use crate::helpers::fixture_site::{Seen, router};
use crate::helpers::{cleanup, redis_url, unique_prefix};

/// The welcome page's code field, filled with a fresh code within 1.5 s, then verified by the site.
const TOTP_STEP: &str = r##"
site = "sub"
domains = ["fixture.test"]
[[steps]]
goto = "{{website}}/welcome?u=ann"
[[steps]]
totp = "#code"
timeout_ms = 1500
[[steps]]
click = "#verify"
navigates = true
[[steps]]
wait_for = "#verified"
"##;

/// A driver for `recipe` whose TOTP windows are claimed in the test Redis under `prefix`.
fn driver(recipe: &str, pool: BrowserPool, prefix: &str) -> RecipeDriver {
    let mut env = env(pool);
    let ledger = TotpLedger::new(&SecretString::from(redis_url()), prefix).expect("ledger");
    env.totp = TotpGenerator::new(Duration::from_secs(5)).with_ledger(ledger);
    RecipeDriver::new(
        std::sync::Arc::new(parse_recipe("t.toml", recipe).unwrap()),
        env,
    )
}

/// The TOTP claims under `prefix` now.
async fn claims(prefix: &str) -> usize {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:totp:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.len()
}

#[tokio::test]
async fn totp_step_waits_for_a_free_window_beyond_its_limit_and_gives_back_an_untyped_code() {
    let dir = tempfile::tempdir().unwrap();
    let pool = BrowserPool::new(settings(dir.path())).unwrap();
    let base = serve(router(Seen::default())).await;
    let prefix = unique_prefix();
    let d = driver(TOTP_STEP, pool.clone(), &prefix);
    // The first run holds the current window; the second one's window starts seconds later (at least the
    // 5 s a code must have left, so well past the step's 1.5 s): it must still be typed and accepted.
    d.register(&task(&base, "a@example.test", "/cover.png"))
        .await
        .unwrap_or_else(|e| panic!("first run: {e}"));
    let started = std::time::Instant::now();
    d.register(&task(&base, "a@example.test", "/cover.png"))
        .await
        .unwrap_or_else(|e| panic!("second run, after {:?}: {e}", started.elapsed()));
    assert_eq!(claims(&prefix).await, 2, "both windows used and kept");

    // A code claimed for a field that never shows is not typed: its window is given back.
    let missing = TOTP_STEP.replace("totp = \"#code\"", "totp = \"#no-such-field\"");
    let d = driver(&missing, pool.clone(), &prefix);
    let e = d
        .register(&task(&base, "a@example.test", "/cover.png"))
        .await
        .unwrap_err();
    assert!(
        e.message.contains("step 2 (totp) timed out after 1500 ms"),
        "{e:?}"
    );
    assert_eq!(
        claims(&prefix).await,
        2,
        "the untyped code's window was released"
    );
    pool.shutdown().await;
    cleanup(&prefix).await;
}

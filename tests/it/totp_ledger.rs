//! The fleet-wide TOTP ledger on the real Redis: two generators (two processes, as far as the ledger can
//! tell) never hand out the same time step for one secret, and the keys never hold the secret.

use std::sync::Arc;
use std::time::Duration;

use podcast_worker::totp::{
    Clock, LEDGER_TTL_SECS, STEP_SECS, TotpGenerator, TotpLedger, decode_secret,
};
use redis::AsyncCommands;
use secrecy::SecretString;

use crate::helpers::{cleanup, redis_url, unique_prefix};

/// The system clock moved so that the current window has `left` seconds to go.
struct Shifted(Duration);

impl Clock for Shifted {
    fn unix_time(&self) -> Duration {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            + self.0
    }
}

fn shifted_to_leave(left: u64) -> Arc<Shifted> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into = now.as_millis() as u64 % (STEP_SECS * 1000);
    let want = (STEP_SECS - left) * 1000;
    let shift = (want + STEP_SECS * 1000 - into) % (STEP_SECS * 1000);
    Arc::new(Shifted(Duration::from_millis(shift)))
}

#[tokio::test]
async fn totp_ledger_keeps_two_processes_from_typing_the_same_code() {
    let prefix = unique_prefix();
    let url = SecretString::from(redis_url());
    let secret = SecretString::from("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
    // 8 s left in the window (more than the 5 s minimum): the first code is used at once, the second
    // process must wait for the next window.
    let clock = shifted_to_leave(8);
    let a = TotpGenerator::with_clock(Duration::from_secs(5), clock.clone())
        .with_ledger(TotpLedger::new(&url, &prefix).unwrap());
    let b = TotpGenerator::with_clock(Duration::from_secs(5), clock.clone())
        .with_ledger(TotpLedger::new(&url, &prefix).unwrap());
    let first = a.fresh_code(&secret).await.unwrap();
    let started = std::time::Instant::now();
    let second = b.fresh_code(&secret).await.unwrap();
    assert_eq!(
        second.step,
        first.step + 1,
        "the other process waits for the next window"
    );
    assert_ne!(first.code, second.code);
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // The keys name a hash of the secret, expire, and never hold the secret.
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = conn.keys(format!("{prefix}:totp:*")).await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let ledger = TotpLedger::new(&url, &prefix).unwrap();
    let key = decode_secret("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").unwrap();
    assert!(keys.contains(&ledger.key(&key, first.step)), "{keys:?}");
    for k in &keys {
        assert!(!k.to_uppercase().contains("JBSWY3DP"), "{k}");
        let ttl: i64 = conn.ttl(k).await.unwrap();
        assert!(ttl > 0 && ttl <= LEDGER_TTL_SECS as i64, "{k}: {ttl}");
    }
    // A step claimed once is refused to everyone after.
    assert!(!ledger.claim(&key, first.step).await.unwrap());
    assert!(ledger.claim(&key, first.step + 5).await.unwrap());
    cleanup(&prefix).await;
}

#[tokio::test]
async fn totp_ledger_unreachable_is_a_transient_error() {
    let url = SecretString::from("redis://127.0.0.1:1".to_owned());
    let generator = TotpGenerator::new(Duration::from_secs(5))
        .with_ledger(TotpLedger::new(&url, "{t}").unwrap());
    let e = generator
        .fresh_code(&SecretString::from("JBSWY3DPEHPK3PXP"))
        .await
        .unwrap_err();
    assert!(!e.is_permanent(), "{e}");
    assert!(
        e.to_string()
            .starts_with("cannot record the TOTP time step in Redis"),
        "{e}"
    );
}

//! Redis dies (SIGKILL) and comes back while tasks flow through the real fetcher and executor binaries:
//! `/readyz` of both turns 503 while it is gone and 200 again after, and every task is still completed exactly
//! once with a clean audit. The test runs its own Redis (AOF, fsync always) on a free port, as a production
//! Redis with persistence would behave across a crash.

use std::time::Duration;

use pw_simulator::Audit;

use crate::helpers::eventually;
use crate::helpers::fetcher::simulator;
use crate::helpers::monitoring::{Proc, fleet_env, free_addr};
use crate::helpers::own_redis::OwnRedis;

const DOMAINS: &str = "main.demo.test,sub-a.demo.test,sub-b.demo.test,sub-c.demo.test";

pub(crate) async fn status(addr: &str, path: &str) -> Option<u16> {
    let r = reqwest::get(format!("http://{addr}{path}")).await.ok()?;
    Some(r.status().as_u16())
}

pub(crate) async fn wait_status(proc: &Proc, addr: &str, path: &str, want: u16) {
    let what = format!("{path} of {addr} to answer {want}");
    eventually(Duration::from_secs(30), &what, || async {
        proc.assert_running();
        (status(addr, path).await? == want).then_some(())
    })
    .await;
}

pub(crate) fn show(audit: &Audit) -> String {
    serde_json::to_string_pretty(audit).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_turns_readiness_off_and_loses_or_repeats_nothing() {
    let sim = simulator(6, 3).await;
    let mut redis = OwnRedis::start();
    let api = sim.api_base_url();
    let redis_url = redis.url();
    let common = |addr: &str| fleet_env(&api, &redis_url, addr);
    let fetcher_addr = free_addr();
    let mut vars = common(&fetcher_addr);
    vars.extend([
        ("PW_POLL_MIN_MS", "100".to_owned()),
        ("PW_POLL_MAX_MS", "500".to_owned()),
    ]);
    let fetcher = Proc::spawn("fetcher", env!("CARGO_BIN_EXE_fetcher"), &vars);
    let exe_addr = free_addr();
    let mut vars = common(&exe_addr);
    vars.extend([
        ("PW_OUTBOX_KEY", "cd".repeat(32)),
        ("PW_CONSUMER_NAME", "outage-e1".to_owned()),
        ("PW_READ_BLOCK_MS", "200".to_owned()),
        ("PW_OUTBOX_RETRY_MS", "300".to_owned()),
        ("PW_CLAIM_IDLE_MS", "3000".to_owned()),
        ("PW_LEASE_RENEW_MS", "1000".to_owned()),
        ("PW_SYNTHETIC_DOMAINS", DOMAINS.to_owned()),
        ("PW_SYNTHETIC_DELAY_MS", "400".to_owned()),
    ]);
    let executor = Proc::spawn("executor", env!("CARGO_BIN_EXE_executor"), &vars);
    wait_status(&fetcher, &fetcher_addr, "/readyz", 200).await;
    wait_status(&executor, &exe_addr, "/readyz", 200).await;

    // Work is flowing: some tasks done, most not yet.
    eventually(Duration::from_secs(30), "first completions", || async {
        (sim.audit().counts["completed"] >= 3).then_some(())
    })
    .await;
    let total = 24;
    let done_before = sim.audit().counts["completed"];
    redis.kill();
    wait_status(&fetcher, &fetcher_addr, "/readyz", 503).await;
    wait_status(&executor, &exe_addr, "/readyz", 503).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.restart();
    wait_status(&fetcher, &fetcher_addr, "/readyz", 200).await;
    wait_status(&executor, &exe_addr, "/readyz", 200).await;

    let audit = eventually(Duration::from_secs(90), "every task completed", || async {
        fetcher.assert_running();
        executor.assert_running();
        let audit = sim.audit();
        (audit.counts["completed"] == total).then_some(audit)
    })
    .await;
    let logs = || format!("{}\n{}", fetcher.log_text(), executor.log_text());
    assert!(
        done_before < total,
        "the outage came after the work: {done_before} done"
    );
    assert!(audit.clean, "{}\n{}", show(&audit), logs());
    assert_eq!(audit.reports.completed, total, "{}", show(&audit));
    assert_eq!(audit.reports.refused, 0, "{}\n{}", show(&audit), logs());
    assert_eq!(audit.reports.failed, 0, "{}", show(&audit));
}

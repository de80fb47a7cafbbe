//! The task ledger under the faults that broke it (issue 9), with the real fetcher and executor binaries,
//! the synthetic driver and a private Redis:
//! - Redis SIGKILLed and restarted with its append-only file after an outage longer than claim-idle: no
//!   entry is reclaimed from its live owner (heartbeats, not idle times, decide), so every task is
//!   completed exactly once and no second `complete` is refused by the manager.
//! - Redis restarted empty mid-run: every role recreates the consumer groups, reports the loss at ERROR with
//!   the Redis error code and counts it (`pw_redis_data_loss_total`), and new work completes within 30 s.

use std::time::{Duration, Instant};

use pw_simulator::ScenarioSpec;

use crate::helpers::eventually;
use crate::helpers::fetcher::simulator;
use crate::helpers::monitoring::{Proc, fleet_env, free_addr};
use crate::helpers::own_redis::OwnRedis;
use crate::redis_outage::{show, status, wait_status};

const DOMAINS: &str = "main.demo.test,sub-a.demo.test,sub-b.demo.test,sub-c.demo.test";

/// A fetcher and `executors` executors on `redis`, with short claim-idle and renewal periods.
struct Fleet {
    fetcher: Proc,
    fetcher_addr: String,
    executors: Vec<(Proc, String)>,
}

impl Fleet {
    async fn start(
        api: &str,
        redis: &OwnRedis,
        executors: usize,
        delay_ms: u64,
        extra: &[(&'static str, &str)],
    ) -> Self {
        let redis_url = redis.url();
        let common = |addr: &str| {
            let mut vars = fleet_env(api, &redis_url, addr);
            vars.extend([
                ("PW_CLAIM_IDLE_MS", "3000".to_owned()),
                ("PW_LEASE_RENEW_MS", "300".to_owned()),
            ]);
            vars
        };
        let fetcher_addr = free_addr();
        let mut vars = common(&fetcher_addr);
        vars.extend([
            ("PW_POLL_MIN_MS", "100".to_owned()),
            ("PW_POLL_MAX_MS", "300".to_owned()),
        ]);
        let fetcher = Proc::spawn("fetcher", env!("CARGO_BIN_EXE_fetcher"), &vars);
        let mut procs = Vec::new();
        for n in 0..executors {
            let addr = free_addr();
            let mut vars = common(&addr);
            vars.extend([
                ("PW_OUTBOX_KEY", "cd".repeat(32)),
                ("PW_CONSUMER_NAME", format!("chaos-e{n}")),
                ("PW_CONCURRENCY", "4".to_owned()),
                ("PW_READ_BLOCK_MS", "200".to_owned()),
                ("PW_OUTBOX_RETRY_MS", "300".to_owned()),
                ("PW_SYNTHETIC_DOMAINS", DOMAINS.to_owned()),
                ("PW_SYNTHETIC_DELAY_MS", delay_ms.to_string()),
            ]);
            vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
            let name = format!("executor-{n}");
            procs.push((
                Proc::spawn(&name, env!("CARGO_BIN_EXE_executor"), &vars),
                addr,
            ));
        }
        let fleet = Self {
            fetcher,
            fetcher_addr,
            executors: procs,
        };
        wait_status(&fleet.fetcher, &fleet.fetcher_addr, "/readyz", 200).await;
        for (p, addr) in &fleet.executors {
            wait_status(p, addr, "/readyz", 200).await;
        }
        fleet
    }

    fn assert_running(&self) {
        self.fetcher.assert_running();
        for (p, _) in &self.executors {
            p.assert_running();
        }
    }

    fn logs(&self) -> String {
        let mut out = self.fetcher.log_text();
        for (p, _) in &self.executors {
            out.push('\n');
            out.push_str(&p.log_text());
        }
        out
    }

    /// The sum of one counter sample over the fleet's `/metrics`.
    async fn metric_sum(&self, sample: &str) -> f64 {
        let mut sum = 0.0;
        let addrs =
            std::iter::once(&self.fetcher_addr).chain(self.executors.iter().map(|(_, a)| a));
        for addr in addrs {
            let Ok(r) = reqwest::get(format!("http://{addr}/metrics")).await else {
                continue;
            };
            let text = r.text().await.unwrap_or_default();
            for line in text.lines() {
                if let Some(v) = line.strip_prefix(sample) {
                    sum += v.trim().parse::<f64>().unwrap_or(0.0);
                }
            }
        }
        sum
    }
}

fn signal(sig: &str, pid: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, pid])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_redis_down_longer_than_claim_idle_runs_no_task_twice() {
    let sim = simulator(8, 3).await;
    let total = 32;
    let mut redis = OwnRedis::start();
    // Registrations of 1.5 s: several are running on both executors when Redis dies.
    let fleet = Fleet::start(&sim.api_base_url(), &redis, 2, 1500, &[]).await;
    eventually(Duration::from_secs(30), "tasks running", || async {
        let audit = sim.audit();
        (audit.counts["running"] >= 3).then_some(())
    })
    .await;
    redis.kill();
    // One executor is slow to come back (frozen, as a process in a long reconnect backoff would be): for
    // the first second after Redis returns only the other one works, and it must not take the slow one's
    // entries, whose idle times are past claim-idle and whose heartbeats expired during the outage.
    let slow = fleet.executors[0].0.pid().to_string();
    signal("-STOP", &slow);
    // Longer than two claim-idle periods (3 s): every entry's idle time is past claim-idle when Redis is
    // back, and every heartbeat and run lease has expired.
    tokio::time::sleep(Duration::from_secs(7)).await;
    redis.restart();
    tokio::time::sleep(Duration::from_secs(1)).await;
    signal("-CONT", &slow);
    let audit = eventually(Duration::from_secs(120), "every task completed", || async {
        fleet.assert_running();
        let audit = sim.audit();
        (audit.counts["completed"] == total).then_some(audit)
    })
    .await;
    let logs = fleet.logs();
    assert!(audit.clean, "{}\n{logs}", show(&audit));
    assert_eq!(audit.reports.completed, total, "{}", show(&audit));
    assert_eq!(
        audit.reports.refused,
        0,
        "a second report of a task (it ran twice): {}\n{logs}",
        show(&audit)
    );
    assert!(
        !logs.contains("lease lost"),
        "no run lease was lost:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_redis_restarted_empty_recreates_the_ledger_reports_the_loss_and_carries_on() {
    let sim = simulator(4, 1).await;
    let mut redis = OwnRedis::start();
    let fleet = Fleet::start(&sim.api_base_url(), &redis, 1, 300, &[]).await;
    eventually(Duration::from_secs(30), "first completions", || async {
        (sim.audit().counts["completed"] >= 2).then_some(())
    })
    .await;
    redis.restart_empty();
    let back = Instant::now();
    let late = sim.add_scenario(&ScenarioSpec {
        requests: 3,
        subs_per_request: 1,
        seed: 77,
        ..ScenarioSpec::default()
    });
    let ids: Vec<String> = late.iter().map(|t| t.id.clone()).collect();
    eventually(
        Duration::from_secs(30),
        "work added after the loss completed",
        || async {
            fleet.assert_running();
            ids.iter()
                .all(|id| sim.task(id).is_some_and(|t| t.state == "completed"))
                .then_some(())
        },
    )
    .await;
    let took = back.elapsed();
    assert!(took < Duration::from_secs(30), "{took:?}");
    let logs = fleet.logs();
    let loss_lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("Redis lost the task ledger"))
        .collect();
    assert!(!loss_lines.is_empty(), "the loss is logged:\n{logs}");
    for line in &loss_lines {
        assert!(line.contains("\"level\":\"ERROR\""), "{line}");
        assert!(line.contains("NOGROUP"), "the Redis error code: {line}");
    }
    let counted = fleet
        .metric_sum("pw_redis_data_loss_total{op=\"claim\"}")
        .await
        + fleet
            .metric_sum("pw_redis_data_loss_total{op=\"backlog\"}")
            .await;
    assert!(counted >= 1.0, "the loss is counted: {counted}");
    assert_eq!(status(&fleet.fetcher_addr, "/healthz").await, Some(200));
    for (_, addr) in &fleet.executors {
        assert_eq!(status(addr, "/healthz").await, Some(200));
    }
}

/// A drain (SIGTERM) while Redis is down ends within its grace period plus a short bound: the outbox's
/// retry waits (30 one-second tries per report) end when the grace runs out, and the abandoned runs are
/// not waited for without a deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_sigterm_during_a_redis_outage_exits_within_the_grace_period() {
    let sim = simulator(6, 0).await;
    let mut redis = OwnRedis::start();
    let fleet = Fleet::start(
        &sim.api_base_url(),
        &redis,
        1,
        1500,
        &[("PW_SHUTDOWN_GRACE_SECS", "3")],
    )
    .await;
    eventually(Duration::from_secs(30), "tasks running", || async {
        (sim.audit().counts["running"] >= 2).then_some(())
    })
    .await;
    redis.kill();
    // The running drivers finish within 1.5 s and their reports wait for Redis (outbox lock and write).
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let (executor, _) = &fleet.executors[0];
    signal("-TERM", &executor.pid().to_string());
    let sent = Instant::now();
    let status = eventually(Duration::from_secs(40), "the executor to exit", || async {
        executor.exited()
    })
    .await;
    let took = sent.elapsed();
    eprintln!("exited {took:?} after SIGTERM");
    assert!(
        took < Duration::from_secs(3 + 8),
        "exit {took:?} after SIGTERM (grace 3 s):\n{}",
        executor.log_text()
    );
    assert!(status.code().is_some(), "{status:?}");
}

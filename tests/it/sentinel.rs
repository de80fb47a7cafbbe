//! Redis Sentinel failover under load: a primary, a replica and three sentinels (plain `redis-server` and
//! `redis-sentinel` processes on free ports, each in its own temp dir, all with passwords), the real
//! fetcher and two executors with `PW_REDIS_URL=redis+sentinel://…/mymaster`. The primary is SIGKILLed while
//! tasks flow; the sentinels promote the replica; the fleet must follow on its own: every task ends with
//! exactly one applied `complete` at the simulator, and a task first handed out after the kill (so queued,
//! read and acknowledged on the new primary) is completed within 30 s of the kill.
//!
//! Also: `PW_REDIS_URL` parsing as the binaries see it (a bad Sentinel URL is a configuration error naming
//! the variable, exit 2, without the password).

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pw_simulator::ScenarioSpec;

use crate::helpers::eventually;
use crate::helpers::fetcher::simulator;
use crate::helpers::monitoring::{Proc, fleet_env, free_addr};

const MASTER: &str = "mymaster";
/// The data nodes' password: `@` and `/` must be percent-encoded in the URL.
const PASSWORD: &str = "pr1mary@pass/word";
const PASSWORD_IN_URL: &str = "pr1mary%40pass%2Fword";
const SENTINEL_PASSWORD: &str = "sent1nel-pass";
const DOMAINS: &str = "main.demo.test,sub-a.demo.test,sub-b.demo.test,sub-c.demo.test";

fn free_port() -> u16 {
    free_addr()
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("a port")
}

/// A `redis-server` or `redis-sentinel` run from a config file in its own temp dir; SIGKILLed on drop.
struct Node {
    port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Node {
    /// Starts `bin` with `config` (plus port, bind and dir) and waits until it answers PING with `password`.
    fn start(bin: &str, port: u16, password: &str, config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.conf");
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nlogfile {}\nsave \"\"\nappendonly no\n{config}",
            dir.path().display(),
            dir.path().join("node.log").display()
        );
        std::fs::write(&path, text).unwrap();
        let child = Command::new(bin)
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} (apt-get install redis-sentinel): {e}"));
        let node = Self {
            port,
            child: Some(child),
            _dir: dir,
        };
        for _ in 0..100 {
            if cli(port, password, &["ping"]).starts_with("PONG") {
                return node;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{bin} did not answer on port {port}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("node.log")).unwrap_or_default()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `redis-cli` against 127.0.0.1:`port`, its stdout (empty when it cannot connect).
fn cli(port: u16, password: &str, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--no-auth-warning",
        ])
        .args(["-a", password])
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// `SENTINEL MASTER mymaster` of the sentinel on `port`, as field → value.
fn sentinel_master(port: u16) -> HashMap<String, String> {
    let out = cli(port, SENTINEL_PASSWORD, &["sentinel", "master", MASTER]);
    let lines: Vec<&str> = out.lines().collect();
    lines
        .chunks(2)
        .filter(|kv| kv.len() == 2)
        .map(|kv| (kv[0].to_owned(), kv[1].to_owned()))
        .collect()
}

/// The master port the sentinel on `port` names.
fn named_master_port(port: u16) -> Option<u16> {
    let out = cli(
        port,
        SENTINEL_PASSWORD,
        &["sentinel", "get-master-addr-by-name", MASTER],
    );
    out.lines().nth(1)?.trim().parse().ok()
}

/// A primary with one replica and three sentinels that all know each other.
struct SentinelGroup {
    primary: Node,
    replica: Node,
    sentinels: Vec<Node>,
}

impl SentinelGroup {
    async fn start() -> Self {
        // The replica syncs at once (the default waits 5 s for more replicas before a diskless sync).
        let auth = format!(
            "requirepass \"{PASSWORD}\"\nmasterauth \"{PASSWORD}\"\nrepl-diskless-sync-delay 0\n"
        );
        let primary = Node::start("redis-server", free_port(), PASSWORD, &auth);
        let replica = Node::start(
            "redis-server",
            free_port(),
            PASSWORD,
            &format!("{auth}replicaof 127.0.0.1 {}\n", primary.port),
        );
        eventually(Duration::from_secs(30), "the replica in sync", || async {
            cli(replica.port, PASSWORD, &["info", "replication"])
                .contains("master_link_status:up")
                .then_some(())
        })
        .await;
        let sentinels: Vec<Node> = (0..3)
            .map(|_| {
                let config = format!(
                    "requirepass \"{SENTINEL_PASSWORD}\"\n\
                     sentinel monitor {MASTER} 127.0.0.1 {} 2\n\
                     sentinel auth-pass {MASTER} \"{PASSWORD}\"\n\
                     sentinel down-after-milliseconds {MASTER} 1000\n\
                     sentinel failover-timeout {MASTER} 3000\n\
                     sentinel parallel-syncs {MASTER} 1\n",
                    primary.port
                );
                Node::start("redis-sentinel", free_port(), SENTINEL_PASSWORD, &config)
            })
            .collect();
        let group = Self {
            primary,
            replica,
            sentinels,
        };
        // Sentinels find each other and the replica through the primary (hello messages every 2 s).
        eventually(
            Duration::from_secs(30),
            "three sentinels that know each other and the replica",
            || async {
                group
                    .sentinels
                    .iter()
                    .all(|s| {
                        let m = sentinel_master(s.port);
                        m.get("num-other-sentinels").map(String::as_str) == Some("2")
                            && m.get("num-slaves").map(String::as_str) == Some("1")
                            && m.get("flags").map(String::as_str) == Some("master")
                    })
                    .then_some(())
            },
        )
        .await;
        group
    }

    fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!(
            "redis+sentinel://:{PASSWORD_IN_URL}@{}/{MASTER}?sentinel_password={SENTINEL_PASSWORD}",
            hosts.join(",")
        )
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for n in std::iter::once(&self.primary)
            .chain([&self.replica])
            .chain(&self.sentinels)
        {
            out.push_str(&format!("--- port {}\n{}\n", n.port, n.log()));
        }
        out
    }
}

async fn status(addr: &str) -> Option<u16> {
    let r = reqwest::get(format!("http://{addr}/readyz")).await.ok()?;
    Some(r.status().as_u16())
}

async fn wait_ready(proc: &Proc, addr: &str) {
    eventually(
        Duration::from_secs(30),
        &format!("{addr} ready"),
        || async {
            proc.assert_running();
            (status(addr).await? == 200).then_some(())
        },
    )
    .await;
}

fn applied(sim: &pw_simulator::SimulatorHandle, id: &str, action: &str) -> usize {
    sim.task(id).map_or(0, |v| {
        v.history
            .iter()
            .filter(|h| h.action == action && h.applied)
            .count()
    })
}

fn handed_out(sim: &pw_simulator::SimulatorHandle, id: &str) -> bool {
    sim.task(id)
        .is_some_and(|v| v.history.iter().any(|h| h.action == "handed_out"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_mid_run_completes_every_task_once_on_the_new_primary() {
    let started = Instant::now();
    let mut group = SentinelGroup::start().await;
    let sim = simulator(0, 0).await;
    let tasks = sim.add_scenario(&ScenarioSpec {
        requests: 6,
        subs_per_request: 3,
        ..ScenarioSpec::default()
    });
    let ids: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
    let url = group.url();
    let api = sim.api_base_url();
    let redis_url = url.clone();
    let common = |addr: &str| fleet_env(&api, &redis_url, addr);
    let fetcher_addr = free_addr();
    let mut vars = common(&fetcher_addr);
    // A small backlog, so most tasks are listed (and queued) after the kill.
    vars.extend([
        ("PW_POLL_MIN_MS", "100".to_owned()),
        ("PW_POLL_MAX_MS", "300".to_owned()),
        ("PW_FETCH_LIMIT", "2".to_owned()),
        ("PW_MAX_BACKLOG", "2".to_owned()),
    ]);
    let fetcher = Proc::spawn("fetcher", env!("CARGO_BIN_EXE_fetcher"), &vars);
    let executors: Vec<(Proc, String)> = (1..=2)
        .map(|n| {
            let addr = free_addr();
            let mut vars = common(&addr);
            vars.extend([
                ("PW_OUTBOX_KEY", "cd".repeat(32)),
                ("PW_CONSUMER_NAME", format!("sentinel-e{n}")),
                ("PW_READ_BLOCK_MS", "200".to_owned()),
                ("PW_OUTBOX_RETRY_MS", "300".to_owned()),
                ("PW_CLAIM_IDLE_MS", "3000".to_owned()),
                ("PW_LEASE_RENEW_MS", "1000".to_owned()),
                ("PW_SYNTHETIC_DOMAINS", DOMAINS.to_owned()),
                ("PW_SYNTHETIC_DELAY_MS", "300".to_owned()),
            ]);
            let exe = Proc::spawn("executor", env!("CARGO_BIN_EXE_executor"), &vars);
            (exe, addr)
        })
        .collect();
    wait_ready(&fetcher, &fetcher_addr).await;
    for (exe, addr) in &executors {
        wait_ready(exe, addr).await;
    }
    let all_logs = || {
        let mut text = fetcher.log_text();
        for (exe, _) in &executors {
            text.push('\n');
            text.push_str(&exe.log_text());
        }
        text
    };

    // Work flows through the primary; then it dies without a word.
    eventually(Duration::from_secs(30), "first completions", || async {
        (sim.audit().counts["completed"] >= 4).then_some(())
    })
    .await;
    let before: HashSet<String> = ids
        .iter()
        .filter(|id| handed_out(&sim, id))
        .cloned()
        .collect();
    let old_port = group.primary.port;
    group.primary.kill();
    let killed = Instant::now();
    assert!(
        before.len() < ids.len(),
        "every task was listed before the kill"
    );

    // The sentinels promote the replica …
    let replica_port = group.replica.port;
    eventually(Duration::from_secs(30), "the replica promoted", || async {
        group
            .sentinels
            .iter()
            .all(|s| named_master_port(s.port) == Some(replica_port))
            .then_some(())
    })
    .await;
    let promoted = killed.elapsed();
    // … and the fleet queues, reads and completes new work there.
    let (first_new, pulled) = loop {
        fetcher.assert_running();
        for (exe, _) in &executors {
            exe.assert_running();
        }
        if let Some(id) = ids
            .iter()
            .find(|id| !before.contains(*id) && applied(&sim, id, "complete") == 1)
        {
            break (id.clone(), killed.elapsed());
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "no task listed after the kill completed within 30 s (promoted after {promoted:?}):\n{}\n{}\n{}",
            serde_json::to_string_pretty(&sim.audit()).unwrap_or_default(),
            all_logs(),
            group.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        pulled < Duration::from_secs(30),
        "{first_new} took {pulled:?}"
    );
    let total = ids.len();
    let audit = eventually(Duration::from_secs(60), "every task completed", || async {
        let audit = sim.audit();
        (audit.counts["completed"] == total).then_some(audit)
    })
    .await;
    let show = serde_json::to_string_pretty(&audit).unwrap_or_default();
    for id in &ids {
        assert_eq!(
            (applied(&sim, id, "complete"), applied(&sim, id, "fail")),
            (1, 0),
            "{id}: {:?}\n{show}",
            sim.task(id).map(|v| v.history)
        );
    }
    assert!(audit.clean, "{show}\n{}", all_logs());
    assert_eq!(audit.reports.completed, total, "{show}");
    assert_eq!(audit.reports.refused, 0, "{show}\n{}", all_logs());
    // Every role is on the new primary: fetcher and executors ready again, the old port gone.
    wait_ready(&fetcher, &fetcher_addr).await;
    for (exe, addr) in &executors {
        wait_ready(exe, addr).await;
    }
    assert!(cli(old_port, PASSWORD, &["ping"]).is_empty());
    let role = cli(replica_port, PASSWORD, &["role"]);
    assert!(role.starts_with("master"), "{role}");
    let logs = all_logs();
    assert!(
        logs.contains("connected to the Redis master"),
        "{logs}\n{}",
        group.logs()
    );
    for secret in [PASSWORD, PASSWORD_IN_URL, SENTINEL_PASSWORD] {
        assert!(!logs.contains(secret), "a password in the logs:\n{logs}");
    }
    eprintln!(
        "sentinel failover: {} of {total} tasks listed before the kill; replica promoted after {promoted:?}; \
         first task listed after the kill completed after {pulled:?}; whole test {:?}",
        before.len(),
        started.elapsed()
    );
}

#[test]
fn bad_sentinel_urls_are_configuration_errors_naming_the_variable_without_the_password() {
    for bad in [
        "redis+sentinel://:hunter2-pw@127.0.0.1:26379",
        "redis+sentinel://:hunter2-pw@127.0.0.1:notaport/mymaster",
        "redis+sentinel://:hunter2-pw@/mymaster",
        "redis+sentinel://:hunter2-pw@127.0.0.1:26379/mymaster/db",
        "redis+sentinel://:hunter2-pw@127.0.0.1:26379/mymaster?password=hunter2-pw",
        "sentinel://:hunter2-pw@127.0.0.1:26379/mymaster",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_fetcher"))
            .env_clear()
            .env("PW_API_KEY", "k")
            .env("PW_API_BASE_URL", "http://127.0.0.1:9/api")
            .env("PW_REDIS_URL", bad)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("PW_REDIS_URL"), "{bad}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{bad}: {stderr}");
        assert!(!stderr.contains("panicked"), "{bad}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_connection_leaves_a_live_master_demoted_by_a_manual_failover() {
    use podcast_worker::streams::RedisTarget;
    use secrecy::SecretString;

    let group = SentinelGroup::start().await;
    let target = RedisTarget::parse(&SecretString::from(group.url())).unwrap();
    let mut conn = target.connect(Duration::from_secs(2)).await.unwrap();
    let mut set = async |value: u32| -> redis::RedisResult<()> {
        redis::cmd("SET")
            .arg("probe")
            .arg(value)
            .query_async(&mut conn)
            .await
    };
    set(0).await.unwrap();
    // The old master stays up and keeps answering as a master until Sentinel reconfigures it (seconds
    // later): the connection must move to the promoted replica as soon as the sentinels name it.
    let out = cli(
        group.sentinels[0].port,
        SENTINEL_PASSWORD,
        &["sentinel", "failover", MASTER],
    );
    assert!(out.starts_with("OK"), "{out}");
    let asked = Instant::now();
    let mut named_at = None;
    let (mut value, mut errors) = (0, 0);
    let moved = loop {
        value += 1;
        if set(value).await.is_err() {
            errors += 1;
        }
        if named_at.is_none()
            && named_master_port(group.sentinels[0].port) == Some(group.replica.port)
        {
            named_at = Some(Instant::now());
        }
        // This very write is on the promoted replica (the demoted primary no longer replicates to it).
        let on_new =
            cli(group.replica.port, PASSWORD, &["get", "probe"]).trim() == value.to_string();
        if let (Some(at), true) = (named_at, on_new) {
            break at.elapsed();
        }
        assert!(
            asked.elapsed() < Duration::from_secs(20),
            "still not writing to the new master ({errors} errors):\n{}",
            group.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        moved < Duration::from_secs(3),
        "moved {moved:?} after the sentinels named the new master"
    );
    let old = cli(group.primary.port, PASSWORD, &["role"]);
    eprintln!(
        "manual failover: writes on the new master {moved:?} after the sentinels named it \
         ({errors} failed writes); the old primary then said {:?}",
        old.lines().next()
    );
    // Once Sentinel has turned the old primary into a replica, writes still land on the new master.
    let primary = group.primary.port;
    eventually(
        Duration::from_secs(20),
        "the old master demoted",
        || async {
            (cli(primary, PASSWORD, &["role"]).lines().next() == Some("slave")).then_some(())
        },
    )
    .await;
    let demoted = Instant::now();
    loop {
        value += 1;
        if set(value).await.is_ok()
            && cli(group.replica.port, PASSWORD, &["get", "probe"]).trim() == value.to_string()
        {
            break;
        }
        assert!(
            demoted.elapsed() < Duration::from_secs(10),
            "no write on the new master after the demotion:\n{}",
            group.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

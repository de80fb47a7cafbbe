//! The simulator's contract, pinned with plain HTTP calls: ordering, link_rss hand-over, retry manager, soft
//! delete, 400/401/404/409, idempotent start, every fault flag, the audit and the metrics.

use std::time::{Duration, Instant};

use pw_simulator::{self as simulator, Faults, ScenarioSpec, SimulatorHandle, SimulatorOptions};
use serde_json::{Value, json};

const KEY: &str = "test-api-key";

struct Sim {
    handle: SimulatorHandle,
    http: reqwest::Client,
}

impl Sim {
    async fn start() -> Self {
        Self::with(SimulatorOptions::for_test(KEY)).await
    }

    async fn with(options: SimulatorOptions) -> Self {
        let handle = simulator::spawn(options).await.expect("simulator starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Self { handle, http }
    }

    fn add(&self, requests: u32, subs: u32) -> Vec<simulator::ScenarioTask> {
        self.handle.add_scenario(&ScenarioSpec {
            requests,
            subs_per_request: subs,
            ..ScenarioSpec::default()
        })
    }

    fn api(&self, path: &str) -> String {
        format!("{}{path}", self.handle.api_base_url())
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.api(path))
            .header("X-API-Key", KEY)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.api(path))
            .header("X-API-Key", KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn list(&self, limit: usize) -> Vec<Value> {
        let (status, body) = self.get(&format!("/links?limit={limit}")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["success"], true);
        body["data"].as_array().unwrap().clone()
    }

    async fn start_task(&self, id: &str) -> u16 {
        self.post(&format!("/links/{id}/start"), json!({})).await.0
    }

    async fn complete(&self, id: &str, body: Value) -> (u16, Value) {
        self.post(&format!("/links/{id}/complete"), body).await
    }

    async fn fail(&self, id: &str, message: &str) -> (u16, Value) {
        self.post(
            &format!("/links/{id}/fail"),
            json!({"error_message": message}),
        )
        .await
    }

    async fn audit(&self) -> Value {
        let r = self
            .http
            .get(format!("{}/audit", self.handle.url()))
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    }

    fn set_faults(&self, faults: Faults) {
        self.handle.set_faults(faults).unwrap();
    }
}

fn ids(tasks: &[Value]) -> Vec<String> {
    tasks
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

fn main_report(rss: &str) -> Value {
    json!({"email": "real@demo.test", "username": "realuser", "password": "Pw!12345abcd",
           "cookie": "session=abc", "link_rss": rss})
}

#[tokio::test]
async fn simulator_hands_out_main_first_and_subs_only_after_main_completed_with_its_feed() {
    let sim = Sim::start().await;
    let scenario = sim.add(2, 2);
    let listed = sim.list(10).await;
    assert_eq!(
        ids(&listed),
        vec![scenario[0].id.clone(), scenario[3].id.clone()],
        "mains only"
    );
    for field in [
        "id",
        "request_id",
        "type_request",
        "domain",
        "website",
        "email",
        "username",
        "pass_mail",
        "twofa",
        "app_password",
        "password",
        "about",
        "image_url",
        "link_rss",
        "group_id",
        "target",
    ] {
        assert!(
            listed[0].get(field).is_some(),
            "field {field} missing in {}",
            listed[0]
        );
    }
    assert_eq!(listed[0]["link_rss"], "");
    assert_eq!(listed[0]["type_request"], "register");
    assert_eq!(listed[0]["target"], 3);
    assert!(
        sim.list(10).await.is_empty(),
        "nothing more until a main completes"
    );

    let main = &scenario[0].id;
    assert_eq!(sim.start_task(main).await, 200);
    let (status, body) = sim
        .complete(main, main_report("http://feeds.demo.test/1/rss"))
        .await;
    assert_eq!((status, body), (200, json!({"success": true})));

    let subs = sim.list(10).await;
    assert_eq!(
        ids(&subs),
        vec![scenario[1].id.clone(), scenario[2].id.clone()]
    );
    assert!(
        subs.iter()
            .all(|t| t["link_rss"] == "http://feeds.demo.test/1/rss")
    );
    assert!(
        subs.iter().all(|t| t["email"] == listed[0]["email"]),
        "a request shares its mailbox"
    );
    let (status, detail) = sim.get(&format!("/links/{}", scenario[1].id)).await;
    assert_eq!(status, 200);
    assert_eq!(detail["data"]["link_rss"], "http://feeds.demo.test/1/rss");
}

#[tokio::test]
async fn simulator_listing_defaults_to_five_and_requires_the_api_key() {
    let sim = Sim::start().await;
    sim.add(7, 0);
    let r = sim.http.get(sim.api("/links")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = sim
        .http
        .get(sim.api("/links"))
        .header("X-API-Key", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["success"], false);
    assert_eq!(
        sim.get("/links").await.1["data"].as_array().unwrap().len(),
        5
    );
    assert_eq!(
        sim.get("/links?limit=5000").await.1["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(sim.get("/links?limit=abc").await.0, 400);
    assert_eq!(sim.handle.audit().counts["handed_out"], 7);
}

#[tokio::test]
async fn simulator_answers_404_for_unknown_and_deleted_tasks() {
    let sim = Sim::start().await;
    let scenario = sim.add(1, 0);
    let (status, body) = sim.get("/links/no-such-task").await;
    assert_eq!(
        (status, body),
        (404, json!({"success": false, "message": "task not found"}))
    );
    let id = &scenario[0].id;
    assert_eq!(
        sim.get(&format!("/links/{id}")).await.0,
        200,
        "detail works before hand-out"
    );
    sim.list(5).await;
    let r = sim
        .http
        .post(format!("{}/admin/tasks/{id}/delete", sim.handle.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(sim.get(&format!("/links/{id}")).await.0, 404);
    assert_eq!(sim.start_task(id).await, 404);
    let audit = sim.audit().await;
    assert_eq!(audit["deleted"], 1);
    assert_eq!(
        audit["clean"], true,
        "a deleted task is neither lost nor a violation: {audit}"
    );
}

#[tokio::test]
async fn simulator_start_is_idempotent_and_wrong_states_and_bad_bodies_are_refused() {
    let sim = Sim::start().await;
    let scenario = sim.add(1, 1);
    let main = &scenario[0].id;
    sim.list(5).await;
    let (status, _) = sim.complete(main, main_report("http://f/rss")).await;
    assert_eq!(status, 409, "complete before start");
    assert_eq!(sim.start_task(main).await, 200);
    assert_eq!(
        sim.start_task(main).await,
        200,
        "start again changes nothing"
    );
    assert_eq!(
        sim.complete(main, json!({"note": "no credentials"}))
            .await
            .0,
        400
    );
    assert_eq!(
        sim.complete(main, json!({"email": "a@b.c"})).await.0,
        400,
        "main needs link_rss"
    );
    let r = sim
        .http
        .post(sim.api(&format!("/links/{main}/complete")))
        .header("X-API-Key", KEY)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(sim.fail(main, "").await.0, 400, "error_message required");
    assert_eq!(
        sim.fail(main, &"x".repeat(1001)).await.0,
        400,
        "error_message at most 1000 chars"
    );
    assert_eq!(sim.complete(main, main_report("http://f/rss")).await.0, 200);
    assert_eq!(sim.start_task(main).await, 409, "start after complete");
    assert_eq!(
        sim.complete(main, main_report("http://f/rss")).await.0,
        409,
        "double complete"
    );

    let view = sim.handle.task(main).unwrap();
    let completes = view
        .history
        .iter()
        .filter(|h| h.action == "complete" && h.applied)
        .count();
    assert_eq!(completes, 1, "exactly one complete applied");
    assert_eq!(
        view.report.unwrap().link_rss.as_deref(),
        Some("http://f/rss")
    );
    let kinds: Vec<String> = sim.audit().await["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "complete_not_started",
            "complete_without_credentials",
            "main_complete_without_link_rss",
            "bad_report_body",
            "bad_fail_body",
            "bad_fail_body",
            "start_after_final",
            "double_complete",
        ]
    );
}

#[tokio::test]
async fn simulator_retry_manager_requeues_until_max_retries_then_final_fails() {
    let mut options = SimulatorOptions::for_test(KEY);
    options.max_retries = 1;
    let sim = Sim::with(options).await;
    let scenario = sim.add(1, 1);
    let main = &scenario[0].id;
    for attempt in 0..2 {
        assert_eq!(
            ids(&sim.list(5).await),
            vec![main.clone()],
            "attempt {attempt}"
        );
        assert_eq!(sim.start_task(main).await, 200);
        assert_eq!(sim.fail(main, "site said no").await.0, 200);
    }
    assert!(
        sim.list(5).await.is_empty(),
        "final_failed is not handed out again, nor its subs"
    );
    let audit = sim.audit().await;
    assert_eq!(audit["counts"]["final_failed"], 1);
    assert_eq!(audit["blocked"], 1);
    assert_eq!(audit["clean"], true, "{audit}");
    let view = sim.handle.task(main).unwrap();
    assert_eq!((view.state, view.retry_count), ("final_failed", 1));
    assert_eq!(view.last_error.as_deref(), Some("site said no"));
}

#[tokio::test]
async fn simulator_audit_finds_lost_tasks_and_violations() {
    let sim = Sim::start().await;
    let scenario = sim.add(2, 0);
    assert_eq!(sim.audit().await["clean"], true);
    sim.list(5).await;
    assert_eq!(sim.start_task(&scenario[0].id).await, 200);
    let audit = sim.audit().await;
    assert_eq!(audit["clean"], false);
    let lost: Vec<&str> = audit["lost"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["state"].as_str().unwrap())
        .collect();
    assert_eq!(lost, ["running", "handed_out"]);
    assert_eq!(sim.start_task("never-handed-out").await, 404);
    let fresh = sim.add(1, 0);
    assert_eq!(
        sim.start_task(&fresh[0].id).await,
        409,
        "queued, never handed out"
    );
    let audit = sim.audit().await;
    let kinds: Vec<&str> = audit["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["unknown_task", "not_handed_out"]);
}

#[tokio::test]
async fn simulator_refusing_faults_apply_nothing() {
    let sim = Sim::start().await;
    sim.add(1, 0);
    sim.set_faults(Faults {
        error_5xx: 1.0,
        ..Faults::default()
    });
    let (status, _) = sim.get("/links").await;
    assert!((500..=503).contains(&status), "{status}");
    sim.set_faults(Faults {
        too_many_requests: 1.0,
        retry_after_secs: 7,
        ..Faults::default()
    });
    let r = sim
        .http
        .get(sim.api("/links"))
        .header("X-API-Key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    sim.set_faults(Faults {
        garbage: 1.0,
        ..Faults::default()
    });
    let r = sim
        .http
        .get(sim.api("/links"))
        .header("X-API-Key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        serde_json::from_str::<Value>(&r.text().await.unwrap()).is_err(),
        "garbage is not JSON"
    );
    assert_eq!(
        sim.handle.audit().counts["queued"],
        1,
        "nothing was handed out"
    );
    sim.set_faults(Faults::default());
    assert_eq!(sim.list(5).await.len(), 1);
}

#[tokio::test]
async fn simulator_slow_answers_wait_before_applying() {
    let sim = Sim::start().await;
    sim.add(1, 0);
    let r = sim
        .http
        .put(format!("{}/admin/faults", sim.handle.url()))
        .json(&json!({"slow": 1.0, "slow_ms": 400}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["slow_ms"], 400);
    let began = Instant::now();
    assert_eq!(sim.list(5).await.len(), 1);
    assert!(
        began.elapsed() >= Duration::from_millis(400),
        "{:?}",
        began.elapsed()
    );
}

#[tokio::test]
async fn simulator_dropped_connections_before_and_after_applying_are_booked_right() {
    let sim = Sim::start().await;
    let scenario = sim.add(1, 0);
    let id = &scenario[0].id;
    sim.set_faults(Faults {
        drop_connection: 1.0,
        drop_after_apply: 0.0,
        ..Faults::default()
    });
    assert!(
        sim.http
            .get(sim.api("/links"))
            .header("X-API-Key", KEY)
            .send()
            .await
            .is_err()
    );
    assert_eq!(
        sim.handle.audit().counts["queued"],
        1,
        "dropped before applying"
    );

    sim.set_faults(Faults {
        drop_connection: 1.0,
        drop_after_apply: 1.0,
        ..Faults::default()
    });
    assert!(
        sim.http
            .get(sim.api("/links"))
            .header("X-API-Key", KEY)
            .send()
            .await
            .is_err()
    );
    let audit = sim.handle.audit();
    assert_eq!(audit.counts["handed_out"], 1, "applied, then dropped");
    assert!(audit.lost[0].awaiting_redelivery);
    sim.set_faults(Faults::default());
    assert_eq!(
        ids(&sim.list(5).await),
        vec![id.clone()],
        "re-delivered at the next listing"
    );
    assert_eq!(sim.start_task(id).await, 200);

    sim.set_faults(Faults {
        drop_connection: 1.0,
        drop_after_apply: 1.0,
        ..Faults::default()
    });
    let url = sim.api(&format!("/links/{id}/complete"));
    let sent = sim
        .http
        .post(&url)
        .header("X-API-Key", KEY)
        .json(&main_report("http://f/rss"))
        .send()
        .await;
    assert!(sent.is_err(), "the answer never came");
    sim.set_faults(Faults::default());
    let (status, _) = sim.complete(id, main_report("http://f/rss")).await;
    assert_eq!(status, 409, "the retry finds it completed");
    let audit = sim.audit().await;
    assert_eq!(
        audit["clean"], true,
        "a retry after a dropped answer is no violation: {audit}"
    );
    assert_eq!(audit["counts"]["completed"], 1);
}

#[tokio::test]
async fn simulator_duplicates_and_deletions_happen_when_asked() {
    let sim = Sim::start().await;
    let scenario = sim.add(3, 0);
    sim.list(1).await;
    sim.set_faults(Faults {
        duplicate: 1.0,
        ..Faults::default()
    });
    let listed = ids(&sim.list(5).await);
    assert_eq!(listed.len(), 3);
    assert_eq!(
        listed.iter().filter(|id| **id == scenario[0].id).count(),
        1,
        "the first task listed again"
    );

    let sim = Sim::start().await;
    let scenario = sim.add(1, 0);
    sim.set_faults(Faults {
        delete: 1.0,
        ..Faults::default()
    });
    assert_eq!(ids(&sim.list(5).await), vec![scenario[0].id.clone()]);
    assert_eq!(
        sim.get(&format!("/links/{}", scenario[0].id)).await.0,
        404,
        "deleted after listing"
    );
    assert_eq!(sim.audit().await["clean"], true);
}

#[tokio::test]
async fn simulator_serves_metrics_admin_views_and_cover_images() {
    let sim = Sim::start().await;
    let scenario = sim.add(1, 0);
    sim.list(5).await;
    let metrics = sim
        .http
        .get(format!("{}/metrics", sim.handle.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"pw_sim_requests_total{endpoint="list",status="200"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"pw_sim_tasks{state="handed_out"} 1"#),
        "{metrics}"
    );
    let r = sim
        .http
        .post(format!("{}/admin/scenario", sim.handle.url()))
        .json(&json!({"requests": 2, "subs_per_request": 1, "seed": 9}))
        .send()
        .await
        .unwrap();
    let added: Value = r.json().await.unwrap();
    assert_eq!(added["tasks"].as_array().unwrap().len(), 4);
    assert_eq!(added["tasks"][0]["site"], "main");
    let view: Value = sim
        .http
        .get(format!(
            "{}/admin/tasks/{}",
            sim.handle.url(),
            scenario[0].id
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["state"], "handed_out");
    assert_eq!(view["history"][0]["action"], "handed_out");
    let image_url = sim.get(&format!("/links/{}", scenario[0].id)).await.1["data"]["image_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = sim.http.get(&image_url).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");
    assert!(r.bytes().await.unwrap().starts_with(b"\x89PNG"));
}

/// A minimal correct client: retries transient answers (5xx, 429, drops, garbage), stops on 404/409.
async fn report(sim: &Sim, path: &str, body: &Value) -> u16 {
    for _ in 0..200 {
        let sent = sim
            .http
            .post(sim.api(path))
            .header("X-API-Key", KEY)
            .json(body)
            .send()
            .await;
        let Ok(r) = sent else { continue };
        let status = r.status().as_u16();
        let envelope = r.json::<Value>().await.ok();
        match status {
            200 if envelope.is_some_and(|e| e["success"] == true) => return 200,
            400 | 404 | 409 => return status,
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    panic!("{path} never answered")
}

#[tokio::test]
async fn simulator_a_correct_client_gets_a_clean_audit_under_all_faults() {
    let sim = Sim::start().await;
    sim.add(6, 2);
    sim.set_faults(Faults {
        error_5xx: 0.1,
        too_many_requests: 0.1,
        retry_after_secs: 0,
        slow: 0.1,
        slow_ms: 20,
        drop_connection: 0.1,
        drop_after_apply: 0.5,
        garbage: 0.1,
        duplicate: 0.3,
        delete: 0.05,
    });
    let mut seen = std::collections::HashSet::new();
    let mut empty_pages = 0;
    while empty_pages < 20 {
        let sent = sim
            .http
            .get(sim.api("/links?limit=3"))
            .header("X-API-Key", KEY)
            .send()
            .await;
        let Ok(r) = sent else { continue };
        let Ok(page) = r.json::<Value>().await else {
            continue;
        };
        let Some(tasks) = page["data"].as_array() else {
            continue;
        };
        empty_pages = if tasks.is_empty() { empty_pages + 1 } else { 0 };
        for task in tasks {
            let id = task["id"].as_str().unwrap().to_owned();
            if !seen.insert(id.clone()) {
                continue; // a duplicate hand-out: already ours
            }
            if report(&sim, &format!("/links/{id}/start"), &json!({})).await != 200 {
                continue; // deleted
            }
            let body = main_report(&format!("http://feeds.demo.test/{id}/rss"));
            assert_ne!(
                report(&sim, &format!("/links/{id}/complete"), &body).await,
                400
            );
        }
    }
    let audit = sim.handle.audit();
    assert!(
        audit.clean,
        "lost {:?}, violations {:?}",
        audit.lost, audit.violations
    );
    assert_eq!(
        audit.counts["completed"] + audit.deleted + audit.blocked,
        18,
        "{audit:?}"
    );
    assert!(
        audit.reports.undelivered > 0 || audit.reports.refused > 0 || audit.deleted > 0,
        "faults happened"
    );
}

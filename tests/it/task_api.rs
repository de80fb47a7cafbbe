//! The manager API client over real HTTP: retries, Retry-After, classification, headers and bodies.
//! Protocol edge cases come from a scripted server; the simulator covers the stateful behaviour.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use podcast_worker::config::ApiSettings;
use podcast_worker::task::{Registration, TaskId};
use podcast_worker::task_api::{
    ApiError, ApiRequest, Endpoint, StatusClass, TaskApiClient, TransientReason,
};
use secrecy::SecretString;

use crate::helpers::scripted_http::{Answer, ScriptedServer};

const KEY: &str = "it-key-7f3a";

fn settings(base: &str, retries: u32) -> ApiSettings {
    ApiSettings {
        base_url: url::Url::parse(base).unwrap(),
        api_key: SecretString::from(KEY),
        timeout: Duration::from_millis(800),
        retries,
        backoff: Duration::from_millis(20),
        backoff_max: Duration::from_secs(3),
    }
}

type Calls = Arc<Mutex<Vec<(Endpoint, StatusClass, u32)>>>;

fn client(server: &ScriptedServer, retries: u32) -> (TaskApiClient, Calls) {
    let calls: Calls = Arc::default();
    let sink = calls.clone();
    let c = TaskApiClient::new(&settings(&server.base_url(), retries))
        .unwrap()
        .with_observer(Arc::new(move |r: &ApiRequest| {
            sink.lock().unwrap().push((r.endpoint, r.class, r.retry))
        }));
    (c, calls)
}

fn id(s: &str) -> TaskId {
    TaskId::parse(s).unwrap()
}

#[tokio::test]
async fn task_api_honours_retry_after_on_429() {
    let server = ScriptedServer::start(vec![
        Answer::new(429, r#"{"success":false}"#).retry_after("1"),
        Answer::new(
            200,
            r#"{"success":true,"data":[{"id":"t1","domain":"anchor.fm"}]}"#,
        ),
    ])
    .await;
    let (c, calls) = client(&server, 3);
    let started = Instant::now();
    let page = c.list(7).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(page.tasks.len(), 1);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].path_and_query,
        "/api/v1/podcast_account/links?limit=7"
    );
    assert_eq!(seen[1].api_key.as_deref(), Some(KEY));
    let classes: Vec<_> = calls.lock().unwrap().clone();
    assert_eq!(
        classes,
        [
            (Endpoint::List, StatusClass::ClientError, 0),
            (Endpoint::List, StatusClass::Success, 1)
        ]
    );
}

#[tokio::test]
async fn task_api_returns_rate_limited_when_retry_after_exceeds_the_cap() {
    let server = ScriptedServer::start(vec![Answer::new(429, "").retry_after("60")]).await;
    let (c, _) = client(&server, 3);
    let err = c.start(&id("t1")).await.unwrap_err();
    assert!(
        matches!(err, ApiError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(60))
    );
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn task_api_retries_a_garbage_body_and_a_5xx() {
    let server = ScriptedServer::start(vec![
        Answer::new(200, "<html>proxy error</html>"),
        Answer::new(502, "bad gateway"),
        Answer::new(
            200,
            r#"{"success":true,"data":{"id":"t9","domain":"anchor.fm","password":"P4ss!"}}"#,
        ),
    ])
    .await;
    let (c, _) = client(&server, 3);
    let task = c.get(&id("t9")).await.unwrap();
    assert_eq!(task.domain, "anchor.fm");
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn task_api_gives_up_after_its_retries_with_a_transient_error() {
    let server = ScriptedServer::start(vec![Answer::new(503, ""); 5]).await;
    let (c, calls) = client(&server, 2);
    let err = c.list(5).await.unwrap_err();
    assert!(err.is_transient());
    assert!(matches!(
        err,
        ApiError::Transient {
            reason: TransientReason::ServerError,
            status: Some(503),
            ..
        }
    ));
    assert_eq!(server.seen().len(), 3);
    assert_eq!(calls.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn task_api_maps_404_to_not_found_and_401_to_unauthorized_without_retrying() {
    let server = ScriptedServer::start(vec![
        Answer::new(404, r#"{"success":false,"message":"task not found"}"#),
        Answer::new(401, r#"{"success":false,"message":"invalid api key"}"#),
        Answer::new(403, ""),
    ])
    .await;
    let (c, _) = client(&server, 3);
    assert!(matches!(
        c.get(&id("gone")).await.unwrap_err(),
        ApiError::NotFound
    ));
    assert!(matches!(
        c.list(5).await.unwrap_err(),
        ApiError::Unauthorized { status: 401 }
    ));
    assert!(matches!(
        c.start(&id("x")).await.unwrap_err(),
        ApiError::Unauthorized { status: 403 }
    ));
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn task_api_times_out_slow_answers_as_transient() {
    let slow = Answer::new(200, r#"{"success":true}"#).delayed(Duration::from_secs(3));
    let server = ScriptedServer::start(vec![slow]).await;
    let (c, calls) = client(&server, 0);
    let err = c.start(&id("t1")).await.unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::Transient {
                reason: TransientReason::Timeout,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        calls.lock().unwrap()[0],
        (Endpoint::Start, StatusClass::NoAnswer, 0)
    );
}

#[tokio::test]
async fn task_api_connection_refused_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/api", listener.local_addr().unwrap());
    drop(listener);
    let c = TaskApiClient::new(&settings(&base, 1)).unwrap();
    let err = c.list(1).await.unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::Transient {
                reason: TransientReason::Connection,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn task_api_sends_report_bodies_and_marks_a_409_after_a_retry() {
    let server = ScriptedServer::start(vec![
        Answer::new(200, r#"{"success":true}"#),
        Answer::new(500, ""),
        Answer::new(409, r#"{"success":false,"message":"task is not running"}"#),
    ])
    .await;
    let (c, _) = client(&server, 2);
    c.fail(&id("t1"), &"x".repeat(1200), Some("note"))
        .await
        .unwrap();
    let reg = Registration {
        username: Some("pod".into()),
        cookie: Some(SecretString::from("sid=1")),
        link_rss: Some("https://f.test/rss".into()),
        ..Registration::default()
    };
    let err = c.complete(&id("t1"), &reg).await.unwrap_err();
    assert!(
        matches!(&err, ApiError::Rejected { status: 409, retried: true, message } if message == "task is not running"),
        "{err:?}"
    );
    let seen = server.seen();
    let fail: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(
        seen[0].path_and_query,
        "/api/v1/podcast_account/links/t1/fail"
    );
    assert_eq!(fail["error_message"].as_str().unwrap().len(), 1000);
    let complete: serde_json::Value = serde_json::from_str(&seen[2].body).unwrap();
    assert_eq!(
        complete,
        serde_json::json!({"username": "pod", "cookie": "sid=1", "link_rss": "https://f.test/rss"})
    );
}

mod against_the_simulator {
    use podcast_worker::task::{Registration, TaskId};
    use podcast_worker::task_api::{ApiError, TaskApiClient};
    use secrecy::ExposeSecret;

    use crate::helpers::fetcher::{SIM_KEY, api_settings, simulator};

    #[tokio::test]
    async fn task_api_round_trips_a_task_with_the_simulator() {
        let sim = simulator(1, 0).await;
        let api = TaskApiClient::new(&api_settings(&sim.api_base_url(), SIM_KEY)).unwrap();
        let page = api.list(10).await.unwrap();
        assert_eq!((page.tasks.len(), page.malformed, page.skipped), (1, 0, 0));
        let id = page.tasks[0].id.clone();
        let task = api.get(&id).await.unwrap();
        assert!(!task.password.expose_secret().is_empty());
        assert!(!format!("{task:?}").contains(task.password.expose_secret()));
        api.start(&id).await.unwrap();
        api.start(&id).await.unwrap(); // idempotent
        let reg = Registration {
            email: Some(task.email.clone()),
            link_rss: Some("https://feeds.test/a/rss".into()),
            ..Registration::default()
        };
        api.complete(&id, &reg).await.unwrap();
        let again = api.complete(&id, &reg).await.unwrap_err();
        assert!(
            matches!(
                again,
                ApiError::Rejected {
                    status: 409,
                    retried: false,
                    ..
                }
            ),
            "{again:?}"
        );
        let view = sim.task(id.as_str()).unwrap();
        assert_eq!(view.state, "completed");
        assert_eq!(
            view.report.unwrap().link_rss.as_deref(),
            Some("https://feeds.test/a/rss")
        );
        assert!(
            sim.audit()
                .violations
                .iter()
                .all(|v| v.task_id == id.as_str())
        );
    }

    #[tokio::test]
    async fn task_api_fail_is_cut_to_what_the_simulator_accepts() {
        let sim = simulator(1, 0).await;
        let api = TaskApiClient::new(&api_settings(&sim.api_base_url(), SIM_KEY)).unwrap();
        let id = api.list(1).await.unwrap().tasks[0].id.clone();
        api.start(&id).await.unwrap();
        api.fail(&id, &"ừ".repeat(1500), Some("artifacts: none"))
            .await
            .unwrap();
        let view = sim.task(id.as_str()).unwrap();
        assert_eq!(view.last_error.unwrap().chars().count(), 1000);
    }

    #[tokio::test]
    async fn task_api_maps_the_simulators_404_and_401() {
        let sim = simulator(1, 0).await;
        let api = TaskApiClient::new(&api_settings(&sim.api_base_url(), SIM_KEY)).unwrap();
        let id = api.list(1).await.unwrap().tasks[0].id.clone();
        assert!(sim.delete_task(id.as_str()));
        assert!(matches!(
            api.get(&id).await.unwrap_err(),
            ApiError::NotFound
        ));
        let unknown = TaskId::parse("no-such-task").unwrap();
        assert!(matches!(
            api.start(&unknown).await.unwrap_err(),
            ApiError::NotFound
        ));
        let wrong = TaskApiClient::new(&api_settings(&sim.api_base_url(), "wrong")).unwrap();
        let err = wrong.list(1).await.unwrap_err();
        assert!(
            matches!(err, ApiError::Unauthorized { status: 401 | 403 }),
            "{err:?}"
        );
    }
}

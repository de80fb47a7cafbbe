//! A scripted HTTP server for protocol edge cases of the manager API client: each request gets the next
//! canned answer, and every request is recorded. Not a simulator: it knows nothing of tasks.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// One canned answer.
#[derive(Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<String>,
    pub delay: Duration,
}

impl Answer {
    pub fn new(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.to_owned(),
            retry_after: None,
            delay: Duration::ZERO,
        }
    }
    pub fn retry_after(mut self, value: &str) -> Self {
        self.retry_after = Some(value.to_owned());
        self
    }
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// What a request looked like.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub api_key: Option<String>,
    pub body: String,
}

#[derive(Default)]
struct State {
    script: VecDeque<Answer>,
    seen: Vec<Seen>,
}

/// The running server; answers `200 {"success":true}` once the script is used up.
#[derive(Clone)]
pub struct ScriptedServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl ScriptedServer {
    pub async fn start(script: Vec<Answer>) -> Self {
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            seen: Vec::new(),
        }));
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |m: Method, u: Uri, h: HeaderMap, b: Bytes| {
            let state = shared.clone();
            async move { answer(state, m, u, h, b).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/api/v1/podcast_account", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

async fn answer(state: Arc<Mutex<State>>, m: Method, u: Uri, h: HeaderMap, b: Bytes) -> Response {
    let next = {
        let mut s = state.lock().unwrap();
        s.seen.push(Seen {
            method: m.to_string(),
            path_and_query: u
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            api_key: h
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: String::from_utf8_lossy(&b).into_owned(),
        });
        s.script.pop_front()
    };
    let a = next.unwrap_or_else(|| Answer::new(200, r#"{"success":true}"#));
    if !a.delay.is_zero() {
        tokio::time::sleep(a.delay).await;
    }
    let mut resp = (StatusCode::from_u16(a.status).unwrap(), a.body).into_response();
    if let Some(ra) = a.retry_after {
        resp.headers_mut()
            .insert("retry-after", ra.parse().unwrap());
    }
    resp
}

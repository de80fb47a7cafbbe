//! The manager API client (API.md): `list`, `get`, `start`, `complete`, `fail`, with per-request timeouts,
//! transient failures retried inside the client ([`RetryPolicy`]) and every answer classified into
//! [`ApiError`]. Knows nothing of Redis or metrics: callers count requests through an `Observer`.
//! The API key and a registration's secrets are exposed here only, in the header and the `complete` body.

mod error;
mod lenient;
mod retry;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use error::{ApiError, MESSAGE_MAX_CHARS, TransientReason};
pub use retry::{RetryPolicy, full_jitter, parse_retry_after};

use crate::config::ApiSettings;
/// The request labels are the metrics module's own enums (one type per concept); only the label enums
/// are used here, never the registry.
pub use crate::metrics::labels::{Endpoint, StatusClass};
use crate::task::{ListedTask, Registration, Task, TaskId, truncate_chars};
use error::Answer;
use lenient::BrokenItem;

/// Most characters of `error_message` the manager accepts (API.md §5).
pub(crate) const ERROR_MESSAGE_MAX_CHARS: usize = 1000;

/// Most tasks one `GET /links` may ask for (API.md §1).
pub(crate) const LIST_LIMIT_MAX: u32 = 1000;

/// One HTTP request as the `Observer` sees it: bounded labels and a latency, never a URL or a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRequest {
    /// Which endpoint.
    pub endpoint: Endpoint,
    /// The HTTP status; `None` when no answer came (timeout, refused or dropped connection).
    pub status: Option<u16>,
    /// The status's class.
    pub class: StatusClass,
    /// From sending the request to the end of the answer's body.
    pub elapsed: Duration,
    /// 0 for the first attempt of a call, 1 for its first retry, …
    pub retry: u32,
    /// A 2xx whose body could not be read at all. For a listing: its tasks are possibly handed out to us
    /// and will never run (the client logs it at ERROR).
    pub unreadable: bool,
}

/// Called once per HTTP request (retries included), e.g. to count requests by endpoint and status class.
pub(crate) type Observer = Arc<dyn Fn(&ApiRequest) + Send + Sync>;

/// One page of `GET /links`, read leniently: damaged text is replaced (U+FFFD), and an item that cannot be
/// decoded costs that item only.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// The tasks whose id is usable, in the server's order. A task whose other fields are malformed (or
    /// whose JSON is broken) is kept with what could be read; the executor's `get` then runs it or fails it
    /// with a clear message.
    pub tasks: Vec<ListedTask>,
    /// Items with a usable id but other fields malformed or their JSON broken (included in `tasks`).
    pub malformed: usize,
    /// Items dropped because they carry no usable id: handed out to us, but they cannot be queued or reported.
    pub skipped: usize,
    /// Items the server returned (`tasks.len() + skipped`).
    pub returned: usize,
    /// Spots of damaged text (invalid UTF-8, lone surrogates, raw control characters) replaced in the page.
    pub repaired: usize,
}

/// Client of the manager API. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct TaskApiClient {
    http: reqwest::Client,
    base: String,
    policy: RetryPolicy,
    observer: Option<Observer>,
    cancel: CancellationToken,
}

impl fmt::Debug for TaskApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskApiClient")
            .field("base", &self.base)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct CompleteBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cookie: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    link_rss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
}

#[derive(Serialize)]
struct FailBody<'a> {
    error_message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
}

impl TaskApiClient {
    /// A client for `settings.base_url` sending `X-API-Key`, with the settings' timeout and retry policy.
    ///
    /// # Errors
    /// [`ApiError::Config`] when the key is not a valid header value or the HTTP client cannot be built.
    pub fn new(settings: &ApiSettings) -> Result<Self, ApiError> {
        let mut key = HeaderValue::from_str(settings.api_key.expose_secret()).map_err(|_| {
            ApiError::Config {
                reason: "the API key holds characters not allowed in an HTTP header".into(),
            }
        })?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", key);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("podcast-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Config {
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            base: settings.base_url.as_str().trim_end_matches('/').to_owned(),
            policy: RetryPolicy {
                retries: settings.retries,
                base: settings.backoff,
                cap: settings.backoff_max,
            },
            observer: None,
            cancel: CancellationToken::new(),
        })
    }

    /// Cuts retry waits short when `cancel` fires: the call then returns its last error at once.
    pub(crate) fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Reports every request to `observer` (for metrics).
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The retry policy in force.
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// `GET /links?limit=N` (clamped to 1..=1000). Every task listed is handed to us (API.md §1).
    /// Read leniently (see [`ListPage`]); an answer that cannot be read at all is logged at ERROR, since its
    /// tasks are possibly handed out, and retried.
    ///
    /// # Errors
    /// Any [`ApiError`]; a `data` that is not an array is [`ApiError::Transient`] (`BadBody`).
    pub async fn list(&self, limit: u32) -> Result<ListPage, ApiError> {
        let limit = limit.clamp(1, LIST_LIMIT_MAX);
        let url = format!("{}/links?limit={limit}", self.base);
        let answer = self.call(Endpoint::List, Method::GET, url, None).await?;
        let mut page = match (answer.data, answer.split) {
            (_, Some(split)) => {
                tracing::warn!(
                    readable = split.items.len(),
                    broken = split.broken.len(),
                    "the listing's JSON is broken; read item by item"
                );
                decode_page(split.items, &split.broken)
            }
            (Value::Array(items), None) => decode_page(items.into_iter().enumerate(), &[]),
            (Value::Null, None) => ListPage::default(),
            (_, None) => {
                tracing::error!(
                    limit,
                    "the listing's data is not an array: the tasks it held are possibly handed out to us and will never run"
                );
                return Err(ApiError::transient(TransientReason::BadBody, Some(200)));
            }
        };
        page.repaired = answer.fixes;
        if answer.fixes > 0 {
            tracing::warn!(
                repaired = answer.fixes,
                "the listing held badly encoded text (invalid UTF-8 or lone surrogates); replaced with U+FFFD"
            );
        }
        Ok(page)
    }

    /// `GET /links/{id}`: the full task with its credentials. Changes nothing on the server.
    ///
    /// # Errors
    /// [`ApiError::NotFound`] for an unknown or deleted task; [`ApiError::InvalidTask`] when `data` is not a
    /// task; any other [`ApiError`].
    pub async fn get(&self, id: &TaskId) -> Result<Task, ApiError> {
        let url = format!("{}/links/{id}", self.base);
        let answer = self.call(Endpoint::Get, Method::GET, url, None).await?;
        if answer.fixes > 0 {
            tracing::warn!(task_id = %id, repaired = answer.fixes, "the task held badly encoded text (invalid UTF-8 or lone surrogates); replaced with U+FFFD");
        }
        serde_path_to_error::deserialize(answer.data).map_err(|e| ApiError::InvalidTask {
            path: e.path().to_string(),
        })
    }

    /// `POST /links/{id}/start`: moves the task to `running`. Idempotent on the server.
    ///
    /// # Errors
    /// Any [`ApiError`].
    pub async fn start(&self, id: &TaskId) -> Result<(), ApiError> {
        let url = format!("{}/links/{id}/start", self.base);
        self.call(Endpoint::Start, Method::POST, url, None)
            .await
            .map(drop)
    }

    /// `POST /links/{id}/complete` with the account's credentials (and `link_rss` for a main-site task).
    ///
    /// # Errors
    /// Any [`ApiError`]. A [`ApiError::Rejected`] with `retried: true` and status 409 most likely means an
    /// earlier attempt whose answer was lost was applied.
    pub async fn complete(&self, id: &TaskId, reg: &Registration) -> Result<(), ApiError> {
        let body = complete_body(reg);
        let url = format!("{}/links/{id}/complete", self.base);
        self.call(Endpoint::Complete, Method::POST, url, Some(body))
            .await
            .map(drop)
    }

    /// `POST /links/{id}/fail`; `error_message` is cut to 1000 characters on a character boundary.
    /// The caller must keep secrets out of both texts.
    ///
    /// # Errors
    /// Any [`ApiError`]; see [`TaskApiClient::complete`] about a 409 after a retry.
    pub async fn fail(
        &self,
        id: &TaskId,
        error_message: &str,
        note: Option<&str>,
    ) -> Result<(), ApiError> {
        let body = fail_body(error_message, note);
        let url = format!("{}/links/{id}/fail", self.base);
        self.call(Endpoint::Fail, Method::POST, url, Some(body))
            .await
            .map(drop)
    }

    /// One call: attempts, retried per the policy. Returns the envelope's `data`.
    async fn call(
        &self,
        endpoint: Endpoint,
        method: Method,
        url: String,
        body: Option<Value>,
    ) -> Result<Answer, ApiError> {
        let call = Call {
            endpoint,
            method,
            url,
            body,
        };
        let mut retry = 0;
        loop {
            let err = match self.attempt(&call, retry).await {
                Ok(data) => return Ok(data),
                Err(err) => err,
            };
            let delay = self.policy.next_delay(&err, retry, &mut rand::rng());
            let Some(delay) = delay else {
                return Err(mark_retried(err, retry > 0));
            };
            tracing::debug!(endpoint = endpoint.as_str(), retry, error = %err, delay_ms = delay.as_millis() as u64, "manager API call failed; retrying");
            let waited = self
                .cancel
                .run_until_cancelled(tokio::time::sleep(delay))
                .await;
            if waited.is_none() {
                tracing::debug!(
                    endpoint = endpoint.as_str(),
                    "shutting down: retry not waited for"
                );
                return Err(mark_retried(err, retry > 0));
            }
            retry += 1;
        }
    }

    async fn attempt(&self, call: &Call, retry: u32) -> Result<Answer, ApiError> {
        let endpoint = call.endpoint;
        let started = Instant::now();
        let mut req = self.http.request(call.method.clone(), &call.url);
        if let Some(body) = &call.body {
            req = req.json(body);
        }
        let answer = async {
            let resp = req.send().await?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            let bytes = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, retry_after, bytes))
        }
        .await;
        let (status, class, result) = match answer {
            Ok((status, retry_after, bytes)) => (
                Some(status.as_u16()),
                StatusClass::of(Some(status.as_u16())),
                error::classify(
                    status.as_u16(),
                    retry_after,
                    &bytes,
                    endpoint == Endpoint::List,
                ),
            ),
            Err(e) => (
                None,
                StatusClass::NoAnswer,
                Err(ApiError::from_transport(e)),
            ),
        };
        let unreadable = class == StatusClass::Success
            && matches!(
                result,
                Err(ApiError::Transient {
                    reason: TransientReason::BadBody,
                    ..
                })
            );
        if unreadable && endpoint == Endpoint::List {
            tracing::error!(
                retry,
                "a listing answer could not be read: the tasks it held are possibly handed out to us and will never run"
            );
        }
        if let Some(observe) = &self.observer {
            observe(&ApiRequest {
                endpoint,
                status,
                class,
                elapsed: started.elapsed(),
                retry,
                unreadable,
            });
        }
        result
    }
}

/// The `complete` body: the one place a registration's secrets are exposed.
fn complete_body(reg: &Registration) -> Value {
    let body = CompleteBody {
        email: reg.email.as_deref(),
        username: reg.username.as_deref(),
        password: reg.password.as_ref().map(|s| s.expose_secret()),
        cookie: reg.cookie.as_ref().map(|s| s.expose_secret()),
        link_rss: reg.link_rss.as_deref(),
        note: reg.note.as_deref(),
    };
    // A struct of optional strings always serialises.
    serde_json::to_value(&body).unwrap_or_default()
}

/// The `fail` body, with `error_message` cut to [`ERROR_MESSAGE_MAX_CHARS`].
fn fail_body(error_message: &str, note: Option<&str>) -> Value {
    let message = truncate_chars(error_message, ERROR_MESSAGE_MAX_CHARS);
    let body = FailBody {
        error_message: &message,
        note,
    };
    serde_json::to_value(&body).unwrap_or_default()
}

/// One API call, as retried by [`TaskApiClient::call`].
struct Call {
    endpoint: Endpoint,
    method: Method,
    url: String,
    body: Option<Value>,
}

fn mark_retried(err: ApiError, was_retried: bool) -> ApiError {
    match err {
        ApiError::Rejected {
            status, message, ..
        } => ApiError::Rejected {
            status,
            message,
            retried: was_retried,
        },
        other => other,
    }
}

/// Decodes a page item by item, so one bad task does not drop the others: `items` with their index in the
/// page, and the `broken` ones whose JSON did not parse. Logs index, id and field path only: a serde message
/// (or the text) could echo the credentials the listing carries.
fn decode_page(items: impl IntoIterator<Item = (usize, Value)>, broken: &[BrokenItem]) -> ListPage {
    let mut all: Vec<(usize, Result<Value, Option<&str>>)> =
        items.into_iter().map(|(i, item)| (i, Ok(item))).collect();
    all.extend(broken.iter().map(|b| (b.index, Err(b.id.as_deref()))));
    all.sort_by_key(|(index, _)| *index);
    let mut page = ListPage {
        returned: all.len(),
        ..ListPage::default()
    };
    for (index, item) in all {
        let (id, path) = match &item {
            Ok(value) => match serde_path_to_error::deserialize::<_, ListedTask>(value) {
                Ok(task) => {
                    page.tasks.push(task);
                    continue;
                }
                Err(e) => (
                    value.get("id").and_then(Value::as_str),
                    e.path().to_string(),
                ),
            },
            Err(guess) => (*guess, "(not JSON)".to_owned()),
        };
        match id.and_then(|s| TaskId::parse(s).ok()) {
            Some(id) => {
                tracing::warn!(index, task_id = %id, field = %path, "listed task is malformed; queued by id for the executor to read again or fail");
                page.malformed += 1;
                page.tasks
                    .push(salvage(id, item.as_ref().unwrap_or(&Value::Null)));
            }
            None => {
                tracing::error!(index, field = %path, "listed task has no usable id: possibly handed out to us, it cannot be queued or reported");
                page.skipped += 1;
            }
        }
    }
    page
}

/// What can be read of a malformed item: its id and whichever routing fields are strings.
fn salvage(id: TaskId, item: &Value) -> ListedTask {
    let field = |name: &str| item.get(name).and_then(Value::as_str);
    let text = |name: &str| field(name).unwrap_or_default().to_owned();
    ListedTask {
        id,
        request_id: text("request_id"),
        domain: text("domain"),
        group_id: text("group_id"),
        link_rss: crate::task::non_blank(field("link_rss")),
    }
}

#[cfg(test)]
mod tests;

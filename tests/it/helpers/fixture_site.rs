//! A small sign-up site for recipe tests, served on 127.0.0.1:0: a multipart form with select, checkbox,
//! textarea and cover upload; an "already registered" error; a TOTP page checked with the real algorithm; a
//! slow page, a CAPTCHA page, a 503 and a page that shows its content only from the second visit.

use std::sync::{Arc, Mutex};

use axum::extract::{Multipart, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Router, http::StatusCode};
use base64::Engine;

/// The TOTP secret the site expects (RFC 6238's test key, base32).
pub const TOTP_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// A 1×1 PNG.
pub fn png() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
        .unwrap()
}

/// One accepted sign-up, as the site received it.
#[derive(Debug, Clone, Default)]
pub struct Signup {
    /// Field name → value (the cover as `<n> bytes`).
    pub fields: std::collections::HashMap<String, String>,
}

/// What the site saw.
#[derive(Clone, Default)]
pub struct Seen {
    /// Accepted sign-ups.
    pub signups: Arc<Mutex<Vec<Signup>>>,
    /// Visits of `/late` so far.
    pub late_visits: Arc<std::sync::atomic::AtomicUsize>,
}

const FORM: &str = r#"<form method="post" action="/signup" enctype="multipart/form-data">
<input id="email" name="email"><input id="username" name="username">
<input id="password" name="password" type="password"><textarea id="about" name="about"></textarea>
<select id="country" name="country"><option value="">-</option><option value="de">Germany</option>
<option value="fr">France</option></select><label><input type="checkbox" id="terms" name="terms"> ok</label>
<input type="file" id="cover" name="cover"><button id="submit" type="submit">Sign up</button></form>"#;

fn page(body: &str) -> Html<String> {
    Html(format!("<!doctype html><html><body>{body}</body></html>"))
}

async fn signup(State(seen): State<Seen>, mut form: Multipart) -> Response {
    let mut s = Signup::default();
    while let Ok(Some(field)) = form.next_field().await {
        let name = field.name().unwrap_or_default().to_owned();
        let value = if name == "cover" {
            format!(
                "{} bytes",
                field.bytes().await.map(|b| b.len()).unwrap_or(0)
            )
        } else {
            field.text().await.unwrap_or_default()
        };
        s.fields.insert(name, value);
    }
    let f = |k: &str| s.fields.get(k).cloned().unwrap_or_default();
    let error = if f("email") == "taken@example.test" {
        Some("This email is already registered.")
    } else if f("terms") != "on" {
        Some("Please accept the terms.")
    } else if f("cover") == "0 bytes" {
        Some("A cover image is required.")
    } else {
        None
    };
    if let Some(e) = error {
        return page(&format!("<div class=\"alert error\">{e}</div>{FORM}")).into_response();
    }
    let user = f("username");
    seen.signups.lock().unwrap().push(s);
    (
        [("set-cookie", "sid=sess-42; Path=/")],
        Redirect::to(&format!("/welcome?u={user}")),
    )
        .into_response()
}

async fn welcome(Query(q): Query<std::collections::HashMap<String, String>>) -> Html<String> {
    let u = q.get("u").cloned().unwrap_or_default();
    page(&format!(
        "<h1 id=\"hello\">Welcome {u}</h1><a id=\"rss\" href=\"/feed/{u}.xml\">Your feed</a>\
         <form action=\"/2fa\"><input id=\"code\" name=\"code\"><button id=\"verify\">Verify</button></form>"
    ))
}

async fn two_fa(Query(q): Query<std::collections::HashMap<String, String>>) -> Html<String> {
    let secret = secrecy::SecretString::from(TOTP_SECRET.to_owned());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = q.get("code").cloned().unwrap_or_default();
    let ok = [now - 30, now, now + 30]
        .iter()
        .any(|t| podcast_worker::totp::code_at(&secret, *t).unwrap() == code);
    if ok {
        page("<p id=\"verified\">Two-factor verified</p>")
    } else {
        page("<div class=\"alert error\">Invalid code</div>")
    }
}

/// The first visit never shows `#later` (a task stuck there until something kills it); later visits show it.
async fn late(State(seen): State<Seen>) -> Html<String> {
    let visit = seen
        .late_visits
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if visit == 0 {
        page("<p>wait</p>")
    } else {
        page("<p id=\"later\">here</p>")
    }
}

/// The site's routes.
pub fn router(seen: Seen) -> Router {
    Router::new()
        .route("/signup", get(|| async { page(FORM) }).post(signup))
        .route("/welcome", get(welcome))
        .route("/2fa", get(two_fa))
        .route(
            "/cover.png",
            get(|| async { ([("content-type", "image/png")], png()) }),
        )
        .route("/not-an-image", get(|| async { "hello, I am text" }))
        .route("/slow", get(|| async { page("<p>loading forever…</p>") }))
        .route(
            "/captcha",
            get(|| async {
                page("<div class=\"g-recaptcha\" style=\"width:300px;height:80px\">robot?</div>")
            }),
        )
        .route(
            "/boom",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, page("<p>down</p>")) }),
        )
        .route("/late", get(late))
        .with_state(seen)
}

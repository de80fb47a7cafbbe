//! Admin endpoints of the demo platforms (under `/admin`, no key): mail sent, step faults, a login check so tests
//! can prove reported credentials work, a session-cookie check, and a site's accounts and shows.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::Shared;
use super::DemoFaults;
use super::accounts::{SESSION_COOKIE, SiteData};

/// The demo admin routes, merged into `/admin`.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/mail", get(mail))
        .route("/demo/faults", get(get_faults).put(put_faults))
        .route("/demo/check-login", post(check_login))
        .route("/demo/check-cookie", post(check_cookie))
        .route("/demo/sites/{domain}", get(site))
}

/// `GET /admin/mail?to=<address>`: messages sent (all, or to one address).
async fn mail(State(sim): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    Json(json!({"mail": sim.demo.mailer.sent(q.get("to").map(String::as_str))})).into_response()
}

async fn get_faults(State(sim): State<Shared>) -> Response {
    Json(sim.demo.faults()).into_response()
}

/// `PUT /admin/demo/faults` with some fields of [`DemoFaults`].
async fn put_faults(State(sim): State<Shared>, Json(changes): Json<Value>) -> Response {
    let mut current = serde_json::to_value(sim.demo.faults()).unwrap_or_default();
    if let (Some(obj), Value::Object(changes)) = (current.as_object_mut(), changes) {
        obj.extend(changes);
    }
    match serde_json::from_value::<DemoFaults>(current) {
        Ok(faults) => {
            sim.demo.set_faults(faults.clone());
            Json(faults).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"success": false, "message": e.to_string()})),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct LoginCheck {
    domain: String,
    login: String,
    password: String,
}

/// `POST /admin/demo/check-login` `{"domain","login","password"}` → `{"ok","verified"}`: whether the credentials
/// open an account (by email or username) on that platform.
async fn check_login(State(sim): State<Shared>, Json(c): Json<LoginCheck>) -> Response {
    let user = sim.demo.with_site(&c.domain.to_lowercase(), |s| {
        s.password_ok(&c.login, &c.password).cloned()
    });
    Json(json!({"ok": user.is_some(), "verified": user.is_some_and(|u| u.verified)}))
        .into_response()
}

#[derive(Deserialize)]
struct CookieCheck {
    domain: String,
    cookie: String,
}

/// `POST /admin/demo/check-cookie` `{"domain","cookie"}` → `{"ok","email"}`: whether a `Cookie`-style string
/// holds a live session of that platform.
async fn check_cookie(State(sim): State<Shared>, Json(c): Json<CookieCheck>) -> Response {
    let token = c
        .cookie
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned());
    let email = token.and_then(|t| {
        sim.demo
            .with_site(&c.domain.to_lowercase(), |s| s.sessions.get(&t).cloned())
    });
    Json(json!({"ok": email.is_some(), "email": email})).into_response()
}

fn describe(site: &SiteData) -> Value {
    let users: Vec<Value> = site
        .users
        .iter()
        .map(|u| json!({"email": u.email, "username": u.username, "verified": u.verified}))
        .collect();
    let shows: Vec<Value> = site
        .shows
        .iter()
        .map(|s| json!({"id": s.id, "title": s.title, "owner": s.owner, "rss_enabled": s.rss_enabled, "imported_from": s.imported_from}))
        .collect();
    json!({"users": users, "shows": shows})
}

/// `GET /admin/demo/sites/{domain}`: kind, accounts (no passwords) and shows.
async fn site(State(sim): State<Shared>, Path(domain): Path<String>) -> Response {
    let domain = domain.to_lowercase();
    let mut out = sim.demo.with_site(&domain, |s| describe(s));
    out["kind"] = json!(if sim.demo.is_main(&domain) {
        "main"
    } else {
        "sub"
    });
    Json(out).into_response()
}

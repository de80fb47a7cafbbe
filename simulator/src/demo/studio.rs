//! The studio flavour of the demo main site (`studio.demo.test`): what real main sites do that the plain demo
//! does not. A consent overlay covers every page and intercepts clicks until accepted; the only way in is
//! "Continue with DemoMail" ([`super::idp`]); a new account's onboarding form is rendered by a script after a
//! random delay and wants a username of 3 to 12 letters, digits or underscores that nobody holds (some are
//! reserved, see [`super::Demo::reserve_username`]) and a password; and where a sign-in lands depends on how far
//! the account got: `/onboarding` (no username yet), `/shows/new` (no show yet) or `/settings` (the show, its
//! RSS distribution switch and, once on, the feed URL in `#rss-url`). Show creation and the feed are the plain
//! main site's ([`super::main_site`]).

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use rand::Rng;

use super::super::Shared;
use super::accounts::{
    SESSION_COOKIE, User, redirect_with_cookie, session_email, set_cookie, token,
};
use super::html::{esc, input, page, page_with};
use super::{SiteCtx, SiteData, idp};

/// Cookie set when the consent overlay is accepted.
pub const CONSENT_COOKIE: &str = "studio_consent";

/// Cookie holding the `state` of a sign-in sent to the provider.
const OAUTH_COOKIE: &str = "studio_oauth";

/// Longest username the studio accepts.
pub const MAX_USERNAME: usize = 12;

/// The consent overlay: a full-page layer above everything (clicks on the page hit it) until `#consent-accept`
/// is clicked, which sets [`CONSENT_COOKIE`] and removes it.
pub fn consent_overlay(ctx: &SiteCtx) -> String {
    format!(
        r#"<div id="consent" role="dialog" aria-modal="true" style="position:fixed;inset:0;z-index:1000;background:rgba(0,0,0,.6);display:flex;align-items:center;justify-content:center"><div style="background:#fff;padding:1.5em;max-width:24em"><p id="consent-text">We and our 212 partners use cookies to measure and personalise.</p><button id="consent-accept" type="button">Accept all</button> <button id="consent-settings" type="button">Manage settings</button></div></div>
<script>document.getElementById('consent-accept').addEventListener('click',function(){{document.cookie='{CONSENT_COOKIE}=yes; Path={path}; SameSite=Lax';document.getElementById('consent').remove();}});</script>"#,
        path = ctx.cookie_path(),
    )
}

/// The studio's front door (`/`, `/signup`, `/login`): "Continue with DemoMail", with a fresh sign-in state.
pub fn home(ctx: &SiteCtx) -> Response {
    let state = token();
    let body = format!(
        r#"<p id="tagline">Make your podcast. Distribute it everywhere.</p><p><a id="continue-demomail" class="provider" data-provider="demomail" href="{}">Continue with DemoMail</a></p><p id="no-password-hint">We don't use passwords here: sign in with your mail account.</p>"#,
        esc(&idp::authorize_url(ctx, &state))
    );
    let mut response = page(ctx, "Welcome to the studio", None, &body).into_response();
    if let Ok(v) = set_cookie(ctx, OAUTH_COOKIE, &state).parse() {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, v);
    }
    response
}

/// Where a signed-in account goes, by how far it got.
fn landing(site: &SiteData, email: &str) -> &'static str {
    match site.user(email) {
        Some(u) if u.username.is_empty() => "/onboarding",
        None => "/onboarding",
        Some(_)
            if !site
                .shows
                .iter()
                .any(|s| s.owner.eq_ignore_ascii_case(email)) =>
        {
            "/shows/new"
        }
        Some(_) => "/settings",
    }
}

/// Where the account `email` of this site belongs now.
pub fn landing_of(sim: &Shared, ctx: &SiteCtx, email: &str) -> &'static str {
    sim.demo.with_site(&ctx.domain, |s| landing(s, email))
}

/// A redirect to where the signed-in account belongs (or the front door).
pub fn to_landing(sim: &Shared, ctx: &SiteCtx, headers: &HeaderMap) -> Response {
    let Some(email) = session_email(sim, ctx, headers) else {
        return Redirect::to(&ctx.path("/")).into_response();
    };
    let to = sim.demo.with_site(&ctx.domain, |s| landing(s, &email));
    Redirect::to(&ctx.path(to)).into_response()
}

/// The signed-in account's email on a studio site; else 404 (not a studio site) or the front door.
fn signed_in(sim: &Shared, ctx: &SiteCtx, headers: &HeaderMap) -> Result<String, Box<Response>> {
    if !ctx.studio {
        return Err(Box::new(StatusCode::NOT_FOUND.into_response()));
    }
    session_email(sim, ctx, headers)
        .ok_or_else(|| Box::new(Redirect::to(&ctx.path("/")).into_response()))
}

/// `GET /auth/callback?code&state`: the provider's answer; opens a session (creating the account on first
/// sign-in) and lands by the account's state.
pub async fn callback(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !ctx.studio {
        return StatusCode::NOT_FOUND.into_response();
    }
    if let Some(fault) = sim.demo.step("callback").await {
        return fault;
    }
    let expected = super::accounts::cookie(&headers, OAUTH_COOKIE);
    let state_ok = expected.is_some() && expected.as_deref() == q.get("state").map(String::as_str);
    let email = q
        .get("code")
        .filter(|_| state_ok)
        .and_then(|code| idp::take_grant(&sim, &ctx.domain, code));
    let Some(email) = email else {
        let message = "Sign-in failed or expired; please continue with DemoMail again";
        return page_with(StatusCode::BAD_REQUEST, &ctx, "Sign-in failed", message, "");
    };
    let (session, to) = sim.demo.with_site(&ctx.domain, |s| {
        if s.user(&email).is_none() {
            s.users.push(User {
                email: email.clone(),
                username: String::new(),
                password: String::new(),
                verified: true,
                code: String::new(),
                last_totp_step: None,
            });
        }
        (s.open_session(&email), landing(s, &email))
    });
    redirect_with_cookie(&ctx.path(to), set_cookie(&ctx, SESSION_COOKIE, &session))
}

/// The onboarding page: the form lives in a `<template>` a script renders after `delay_ms` (an app shell).
fn onboarding_page(
    ctx: &SiteCtx,
    status: StatusCode,
    error: Option<&str>,
    handle: &str,
) -> Response {
    let delay_ms = rand::rng().random_range(300..1500);
    let error = error
        .map(|e| format!(r#"<p class="field-error" id="handle-error">{}</p>"#, esc(e)))
        .unwrap_or_default();
    let form = format!(
        r#"<form id="onboarding-form" method="post" action="{}">{}<p id="handle-rule">3 to {MAX_USERNAME} letters, digits or underscores.</p>{error}{}<button id="onboarding-submit" type="submit">Continue</button></form>"#,
        ctx.path("/onboarding"),
        input("handle", "handle", "text", "Choose a username", handle),
        input(
            "new-password",
            "new_password",
            "password",
            "Password for the mobile app",
            ""
        ),
    );
    let body = format!(
        r#"<div id="onboarding-root"><p id="loading">Loading…</p></div><template id="onboarding-template">{form}</template>
<script>setTimeout(function(){{document.getElementById('onboarding-root').innerHTML=document.getElementById('onboarding-template').innerHTML;}},{delay_ms});</script>"#
    );
    (status, page(ctx, "Set up your account", None, &body)).into_response()
}

/// `GET /onboarding`: the new account's username and password (others go where they belong).
pub async fn onboarding_form(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    headers: HeaderMap,
) -> Response {
    if !ctx.studio {
        return StatusCode::NOT_FOUND.into_response();
    }
    match session_email(&sim, &ctx, &headers) {
        Some(email) if sim.demo.with_site(&ctx.domain, |s| landing(s, &email)) == "/onboarding" => {
            onboarding_page(&ctx, StatusCode::OK, None, "")
        }
        _ => to_landing(&sim, &ctx, &headers),
    }
}

/// Checks a chosen username and password; the message is shown under the field.
fn check_onboarding(site: &SiteData, handle: &str, password: &str) -> Result<(), &'static str> {
    let rule = (3..=MAX_USERNAME).contains(&handle.chars().count())
        && handle
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !rule {
        return Err("Usernames are 3 to 12 letters, digits or underscores");
    }
    if site.username_taken(handle) {
        return Err("This username is already taken. Try another.");
    }
    if password.chars().count() < 8 {
        return Err("Choose a password of at least 8 characters");
    }
    Ok(())
}

/// `POST /onboarding` (fields `handle`, `new_password`): sets them, then on to creating the show.
pub async fn onboarding(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let email = match signed_in(&sim, &ctx, &headers) {
        Ok(email) => email,
        Err(answer) => return *answer,
    };
    if let Some(fault) = sim.demo.step("onboarding").await {
        return fault;
    }
    let handle = form.get("handle").map_or("", |v| v.trim()).to_owned();
    let password = form.get("new_password").cloned().unwrap_or_default();
    let done = sim.demo.with_site(&ctx.domain, |s| {
        check_onboarding(s, &handle, &password)?;
        let user = s
            .user_mut(&email)
            .ok_or("Your session expired; sign in again")?;
        if !user.username.is_empty() {
            return Ok(());
        }
        user.username = handle.clone();
        user.password = password;
        Ok(())
    });
    match done {
        Ok(()) => to_landing(&sim, &ctx, &headers),
        Err(message) => onboarding_page(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(message),
            &handle,
        ),
    }
}

/// `GET /settings`: the account, its show, the RSS distribution switch or the feed URL.
pub async fn settings(State(sim): State<Shared>, ctx: SiteCtx, headers: HeaderMap) -> Response {
    let email = match signed_in(&sim, &ctx, &headers) {
        Ok(email) => email,
        Err(answer) => return *answer,
    };
    let (to, user, show) = sim.demo.with_site(&ctx.domain, |s| {
        let show = s
            .shows
            .iter()
            .find(|sh| sh.owner.eq_ignore_ascii_case(&email))
            .cloned();
        (landing(s, &email), s.user(&email).cloned(), show)
    });
    let (Some(user), Some(show), "/settings") = (user, show, to) else {
        return Redirect::to(&ctx.path(to)).into_response();
    };
    let distribution = if show.rss_enabled {
        let url = ctx.url(&format!("/feeds/{}.xml", show.id));
        format!(
            r#"<p id="rss-status">Distribution on</p><p>RSS feed: <a id="rss-url" href="{0}">{0}</a></p>"#,
            esc(&url)
        )
    } else {
        format!(
            r#"<p id="rss-status">Distribution off</p><form id="distribution-form" method="post" action="{}"><button id="enable-distribution" type="submit">Distribute via RSS</button></form>"#,
            ctx.path("/settings/distribution")
        )
    };
    let body = format!(
        r#"<p id="account-email">{}</p><p id="account-username">{}</p><h2 id="show-title">{}</h2><div id="show-about">{}</div>{distribution}"#,
        esc(&user.email),
        esc(&user.username),
        esc(&show.title),
        esc(&show.about),
    );
    page(&ctx, "Settings", None, &body).into_response()
}

/// `POST /settings/distribution`: turns the show's RSS feed on.
pub async fn enable_distribution(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    headers: HeaderMap,
) -> Response {
    let email = match signed_in(&sim, &ctx, &headers) {
        Ok(email) => email,
        Err(answer) => return *answer,
    };
    if let Some(fault) = sim.demo.step("enable_rss").await {
        return fault;
    }
    sim.demo.with_site(&ctx.domain, |s| {
        if let Some(show) = s
            .shows
            .iter_mut()
            .find(|sh| sh.owner.eq_ignore_ascii_case(&email))
        {
            show.rss_enabled = true;
        }
    });
    Redirect::to(&ctx.path("/settings")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_rule_and_reservations() {
        let mut site = SiteData::default();
        site.reserved.insert("shopcast12ab".to_owned());
        let ok = check_onboarding(&site, "shop_cast_12", "long-enough");
        assert_eq!(ok, Ok(()));
        let long = check_onboarding(&site, "shopcast12abcd", "long-enough");
        assert!(long.is_err_and(|m| m.contains("3 to 12")));
        let dash = check_onboarding(&site, "shop-cast", "long-enough");
        assert!(dash.is_err_and(|m| m.contains("3 to 12")));
        let taken = check_onboarding(&site, "ShopCast12ab", "long-enough");
        assert!(taken.is_err_and(|m| m.contains("already taken")));
        let short = check_onboarding(&site, "shopcast", "short");
        assert!(short.is_err_and(|m| m.contains("password")));
    }

    #[test]
    fn landing_follows_the_accounts_state() {
        let mut site = SiteData::default();
        assert_eq!(landing(&site, "a@demo.test"), "/onboarding");
        site.users.push(User {
            email: "a@demo.test".into(),
            username: String::new(),
            password: String::new(),
            verified: true,
            code: String::new(),
            last_totp_step: None,
        });
        assert_eq!(landing(&site, "a@demo.test"), "/onboarding");
        site.users[0].username = "someone".into();
        assert_eq!(landing(&site, "A@demo.test"), "/shows/new");
        site.shows.push(super::super::site_data::Show {
            id: "x".into(),
            owner: "a@demo.test".into(),
            title: "t".into(),
            about: String::new(),
            cover: None,
            rss_enabled: false,
            imported_from: None,
        });
        assert_eq!(landing(&site, "a@demo.test"), "/settings");
    }
}

//! DemoMail, the identity provider of the demo mailboxes (`accounts.demo.test`): what "Continue with Google"
//! is to a real main site. A client site sends the browser to `/o/authorize`; the person types the mailbox's
//! address, then the **mail password** (the task's `pass_mail`), then a TOTP code of the mailbox's secret (the
//! task's `twofa`; a code already used for that mailbox is refused, whichever site asked); the browser goes back
//! to the client's `redirect_uri` with a one-time `code` the client exchanges with [`take_grant`]. Errors show in
//! `#error`, like the demo sites'.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::super::Shared;
use super::SiteCtx;
use super::accounts::{cookie, redirect_with_cookie, set_cookie, token};
use super::html::{error_box, esc};
use super::two_factor;

/// The identity provider's domain.
pub const IDP_DOMAIN: &str = "accounts.demo.test";

/// Cookie of a sign-in in progress at the provider.
const FLOW_COOKIE: &str = "idp_flow";

/// A sign-in in progress: for which client, back where, and how far.
#[derive(Debug, Clone)]
struct Flow {
    client: String,
    redirect_uri: String,
    state: String,
    email: Option<String>,
    password_ok: bool,
}

/// A finished sign-in the client has not exchanged yet.
#[derive(Debug, Clone)]
pub struct Grant {
    client: String,
    email: String,
}

/// The provider's state: flows by cookie, grants by code, the last TOTP step used per mailbox.
#[derive(Debug, Default)]
pub struct IdpData {
    flows: HashMap<String, Flow>,
    grants: HashMap<String, Grant>,
    last_totp_step: HashMap<String, u64>,
}

/// The mailbox a client's one-time `code` stands for; the code is spent.
pub fn take_grant(sim: &Shared, client: &str, code: &str) -> Option<String> {
    sim.demo.with_idp(|idp| {
        let grant = idp.grants.remove(code)?;
        (grant.client == client).then_some(grant.email)
    })
}

/// A provider page: its own layout (it is another site), the client it signs in to, an optional error.
fn idp_page(
    status: StatusCode,
    title: &str,
    client: &str,
    error: Option<&str>,
    body: &str,
) -> Response {
    let error = error_box(error);
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · DemoMail</title>
<style>body{{font-family:sans-serif;max-width:28em;margin:3em auto}}.error{{color:#b00}}input{{width:100%}}</style></head>
<body data-site="idp"><header id="idp-brand">DemoMail accounts</header>
<main><h1 id="page-title">{title}</h1><p id="idp-client">to continue to {client}</p>
{error}
{body}
</main></body></html>"#,
        title = esc(title),
        client = esc(client),
    );
    (status, Html(html)).into_response()
}

fn identifier_body(ctx: &SiteCtx) -> String {
    format!(
        r#"<form id="identifier-form" method="post" action="{}"><label for="identifierId">Email</label><input id="identifierId" name="identifier" type="email" autocomplete="username" required><button id="identifierNext" type="submit">Next</button></form>"#,
        ctx.path("/o/identifier")
    )
}

fn password_body(ctx: &SiteCtx, email: &str) -> String {
    format!(
        r#"<p id="profile-identifier">{}</p><form id="password-form" method="post" action="{}"><label for="password">Enter your password</label><input id="password" name="Passwd" type="password" autocomplete="current-password" required><button id="passwordNext" type="submit">Next</button></form>"#,
        esc(email),
        ctx.path("/o/password")
    )
}

fn totp_body(ctx: &SiteCtx) -> String {
    format!(
        r#"<p id="totp-hint">Get a verification code from the Authenticator app</p><form id="totp-form" method="post" action="{}"><label for="totpPin">Enter code</label><input id="totpPin" name="totpPin" type="tel" autocomplete="one-time-code" required><button id="totpNext" type="submit">Next</button></form>"#,
        ctx.path("/o/totp")
    )
}

/// Whether `redirect_uri` is a page of `client` (by host name, or by path under `/demo/<client>/`).
fn redirect_allowed(client: &str, redirect_uri: &str) -> bool {
    let Ok(url) = url::Url::parse(redirect_uri) else {
        return false;
    };
    url.host_str() == Some(client) || url.path().starts_with(&format!("/demo/{client}/"))
}

#[derive(Deserialize)]
pub struct AuthorizeQuery {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    state: String,
}

/// `GET /o/authorize?client_id&redirect_uri&state`: starts a sign-in (the e-mail page).
pub async fn authorize(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    Query(q): Query<AuthorizeQuery>,
) -> Response {
    if ctx.domain != IDP_DOMAIN {
        return StatusCode::NOT_FOUND.into_response();
    }
    let client = q.client_id.trim().to_lowercase();
    if !sim.demo.is_main(&client) || !redirect_allowed(&client, &q.redirect_uri) {
        let message = "This app's sign-in request is not valid (unknown client or redirect_uri)";
        return idp_page(
            StatusCode::BAD_REQUEST,
            "Sign-in error",
            &client,
            Some(message),
            "",
        );
    }
    let flow = Flow {
        client: client.clone(),
        redirect_uri: q.redirect_uri,
        state: q.state,
        email: None,
        password_ok: false,
    };
    let id = token();
    sim.demo.with_idp(|idp| idp.flows.insert(id.clone(), flow));
    let mut response = Stage::Identifier.page(&ctx, &client, None);
    if let Ok(v) = set_cookie(&ctx, FLOW_COOKIE, &id).parse() {
        response
            .headers_mut()
            .insert(axum::http::header::SET_COOKIE, v);
    }
    response
}

/// The provider's pages, in the order a sign-in goes through them.
enum Stage<'a> {
    Identifier,
    Password(&'a str),
    Totp,
}

impl Stage<'_> {
    /// The page of this stage for `client`: 200, or 422 with the error shown.
    fn page(&self, ctx: &SiteCtx, client: &str, error: Option<&str>) -> Response {
        let (title, body) = match self {
            Stage::Identifier => ("Sign in", identifier_body(ctx)),
            Stage::Password(email) => ("Welcome", password_body(ctx, email)),
            Stage::Totp => ("2-Step Verification", totp_body(ctx)),
        };
        let status = match error {
            Some(_) => StatusCode::UNPROCESSABLE_ENTITY,
            None => StatusCode::OK,
        };
        idp_page(status, title, client, error, &body)
    }
}

/// A posted step of the sign-in: the injected fault of `fault_step`, then the flow of this browser (its cookie
/// id and state), or the page that answers instead.
async fn posted(
    sim: &Shared,
    headers: &HeaderMap,
    fault_step: &str,
) -> Result<(String, Flow), Response> {
    if let Some(fault) = sim.demo.step(fault_step).await {
        return Err(fault);
    }
    let id = cookie(headers, FLOW_COOKIE);
    let flow = id
        .as_ref()
        .and_then(|id| sim.demo.with_idp(|idp| idp.flows.get(id).cloned()));
    match (id, flow) {
        (Some(id), Some(flow)) => Ok((id, flow)),
        _ => {
            let message = "Your sign-in expired; start again from the app";
            Err(idp_page(
                StatusCode::BAD_REQUEST,
                "Sign-in error",
                "",
                Some(message),
                "",
            ))
        }
    }
}

/// Changes the flow `id`, if it still exists.
fn update_flow(sim: &Shared, id: &str, change: impl FnOnce(&mut Flow)) {
    sim.demo.with_idp(|idp| idp.flows.get_mut(id).map(change));
}

/// `POST /o/identifier` (field `identifier`): a known mailbox → the password page.
pub async fn identifier(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (id, flow) = match posted(&sim, &headers, "idp_identifier").await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let email = form.get("identifier").map_or("", |v| v.trim()).to_owned();
    if sim.mailbox(&email).is_none() {
        let message = "Couldn't find your DemoMail account";
        return Stage::Identifier.page(&ctx, &flow.client, Some(message));
    }
    update_flow(&sim, &id, |f| {
        f.email = Some(email.clone());
        f.password_ok = false;
    });
    Stage::Password(&email).page(&ctx, &flow.client, None)
}

/// `POST /o/password` (field `Passwd`): the mailbox's own password → the TOTP page.
pub async fn password(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (id, flow) = match posted(&sim, &headers, "idp_password").await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let Some(email) = flow.email.as_deref() else {
        return Stage::Identifier.page(&ctx, &flow.client, None);
    };
    let typed = form.get("Passwd").map_or("", String::as_str);
    if sim.mailbox(email).is_none_or(|m| m.pass_mail != typed) {
        let message = "Wrong password. Try again or click Forgot password to reset it.";
        return Stage::Password(email).page(&ctx, &flow.client, Some(message));
    }
    update_flow(&sim, &id, |f| f.password_ok = true);
    Stage::Totp.page(&ctx, &flow.client, None)
}

/// `POST /o/totp` (field `totpPin`): a valid code not used before for this mailbox → back to the client with a
/// one-time `code`.
pub async fn totp(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (id, flow) = match posted(&sim, &headers, "idp_totp").await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let (Some(email), true) = (flow.email.clone(), flow.password_ok) else {
        return Stage::Identifier.page(&ctx, &flow.client, None);
    };
    let refuse = |message: &str| Stage::Totp.page(&ctx, &flow.client, Some(message));
    let code = form.get("totpPin").map_or("", |v| v.trim());
    let step = sim
        .mailbox(&email)
        .and_then(|m| two_factor::check(&m.twofa, code, two_factor::now_secs()));
    let Some(step) = step else {
        return refuse("Wrong code. Try again.");
    };
    let mailbox = email.to_lowercase();
    let grant = sim.demo.with_idp(|idp| {
        if idp
            .last_totp_step
            .get(&mailbox)
            .is_some_and(|last| step <= *last)
        {
            return None;
        }
        idp.last_totp_step.insert(mailbox, step);
        idp.flows.remove(&id);
        let code = token();
        let grant = Grant {
            client: flow.client.clone(),
            email: email.clone(),
        };
        idp.grants.insert(code.clone(), grant);
        Some(code)
    });
    let Some(code) = grant else {
        return refuse("This code was already used. Wait for a new code and try again.");
    };
    let separator = if flow.redirect_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("code", &code)
        .append_pair("state", &flow.state)
        .finish();
    let expired = format!("{FLOW_COOKIE}=; Path={}; Max-Age=0", ctx.cookie_path());
    let to = format!("{}{separator}{query}", flow.redirect_uri);
    let mut response = redirect_with_cookie(&to, expired);
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
}

/// The provider's sign-in URL for a client page reached as `ctx` (same scheme of reaching: host or path).
pub fn authorize_url(ctx: &SiteCtx, state: &str) -> String {
    let origin = if ctx.base.is_empty() {
        ctx.origin.replacen(&ctx.domain, IDP_DOMAIN, 1)
    } else {
        format!("{}/demo/{IDP_DOMAIN}", ctx.origin)
    };
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &ctx.domain)
        .append_pair("redirect_uri", &ctx.url("/auth/callback"))
        .append_pair("state", state)
        .finish();
    format!("{origin}/o/authorize?{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_only_to_the_clients_pages() {
        let client = "studio.demo.test";
        assert!(redirect_allowed(
            client,
            "http://studio.demo.test/auth/callback"
        ));
        assert!(redirect_allowed(
            client,
            "http://127.0.0.1:9/demo/studio.demo.test/auth/callback"
        ));
        assert!(!redirect_allowed(client, "http://evil.test/auth/callback"));
        assert!(!redirect_allowed(
            client,
            "http://127.0.0.1:9/demo/main.demo.test/x"
        ));
        assert!(!redirect_allowed(client, "not a url"));
    }
}

//! The demo sub-platforms' own steps: a mailed confirmation link after sign-up, and importing a show from an RSS
//! URL — fetched for real over HTTP (demo host names are resolved to this simulator) — confirmed with a code
//! mailed to the feed's `itunes:owner` email.

use std::collections::HashMap;
use std::time::Duration;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::super::Shared;
use super::super::mail::Outgoing;
use super::accounts::{
    self, Import, SESSION_COOKIE, Show, redirect_with_cookie, session_email, set_cookie,
};
use super::html::{esc, input, page, page_with};
use super::{SiteCtx, feed};

/// Limit of one feed fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest feed read.
const MAX_FEED_BYTES: usize = 1024 * 1024;

fn send(sim: &Shared, ctx: &SiteCtx, to: &str, subject: &str, text: &str) {
    let from = format!("no-reply@{}", ctx.domain);
    let html = format!("<p>{}</p>", esc(text).replace('\n', "<br>"));
    let mail = Outgoing {
        from_name: &ctx.domain,
        from: &from,
        to,
        subject,
        text,
        html: &html,
    };
    if let Err(error) = sim.demo.mailer.send(&mail) {
        tracing::warn!(%error, domain = %ctx.domain, "demo mail not delivered");
    }
}

/// After sign-up: mails the confirmation link and says so.
pub fn after_signup(sim: &Shared, ctx: &SiteCtx, email: &str, token: &str) -> Response {
    let link = ctx.url(&format!("/confirm/{token}"));
    let text = format!(
        "Thanks for signing up to {}.\n\nConfirm your account by opening this link:\n{link}\n",
        ctx.domain
    );
    send(
        sim,
        ctx,
        email,
        &format!("Confirm your {} account", ctx.domain),
        &text,
    );
    let body = format!(
        r#"<p id="check-inbox">We sent a confirmation link to {}. Open it to activate your account.</p>"#,
        esc(email)
    );
    page(ctx, "Check your inbox", None, &body).into_response()
}

/// `GET /confirm/{token}`: activates the account and signs it in.
pub async fn confirm(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    Path((_, token)): Path<(String, String)>,
) -> Response {
    if let Some(fault) = sim.demo.step("confirm").await {
        return fault;
    }
    let session = sim.demo.with_site(&ctx.domain, |s| {
        let user = s
            .users
            .iter_mut()
            .find(|u| !u.verified && u.code == token)?;
        user.verified = true;
        let email = user.email.clone();
        Some(s.open_session(&email))
    });
    match session {
        Some(session) => redirect_with_cookie(
            &ctx.path("/dashboard"),
            set_cookie(&ctx, SESSION_COOKIE, &session),
        ),
        None => page_with(
            StatusCode::NOT_FOUND,
            &ctx,
            "Link expired",
            "This confirmation link is invalid or has expired",
            "",
        ),
    }
}

fn import_body(ctx: &SiteCtx, url: &str) -> String {
    format!(
        r#"<form id="import-form" method="post" action="{}">{}<button id="import-submit" type="submit">Import</button></form>"#,
        ctx.path("/import"),
        input("rss-url", "rss_url", "url", "RSS feed URL", url),
    )
}

/// `GET /import`.
pub async fn import_form(State(sim): State<Shared>, ctx: SiteCtx, headers: HeaderMap) -> Response {
    if session_email(&sim, &ctx, &headers).is_none() {
        return Redirect::to(&ctx.path("/login")).into_response();
    }
    page(&ctx, "Import a show", None, &import_body(&ctx, "")).into_response()
}

/// Fetches a feed; host names that are not IPs resolve to this simulator (the demo platforms live here).
async fn fetch(sim: &Shared, url: &url::Url) -> Result<String, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(3));
    if let Some(host) = url.host_str()
        && host != "localhost"
        && host.parse::<std::net::IpAddr>().is_err()
    {
        builder = builder.resolve(host, sim.demo.own_addr);
    }
    let client = builder.build().map_err(|_| "internal error".to_owned())?;
    let response = client.get(url.clone()).send().await.map_err(|e| {
        if e.is_timeout() {
            "the feed did not answer in time".to_owned()
        } else {
            "the feed's server cannot be reached".to_owned()
        }
    })?;
    if !response.status().is_success() {
        return Err(format!(
            "the feed's server answered {}",
            response.status().as_u16()
        ));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|_| "the download was interrupted".to_owned())?;
    if bytes.len() > MAX_FEED_BYTES {
        return Err("the feed is too large".to_owned());
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `POST /import` (field `rss_url`): fetches and reads the feed, mails an ownership code to its owner email.
pub async fn import(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(email) = session_email(&sim, &ctx, &headers) else {
        return Redirect::to(&ctx.path("/login")).into_response();
    };
    if let Some(fault) = sim.demo.step("import").await {
        return fault;
    }
    let raw = form.get("rss_url").map_or("", |v| v.trim()).to_owned();
    let refuse = |m: &str| {
        page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ctx,
            "Import a show",
            m,
            &import_body(&ctx, &raw),
        )
    };
    let Some(url) = url::Url::parse(&raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
    else {
        return refuse("Please enter the http(s) URL of your RSS feed");
    };
    let info = match fetch(&sim, &url).await {
        Ok(xml) => feed::parse(&xml).map_err(str::to_owned),
        Err(why) => Err(format!("We could not fetch this feed: {why}")),
    };
    let info = match info {
        Ok(info) => info,
        Err(message) => return refuse(&message),
    };
    let already = sim.demo.with_site(&ctx.domain, |s| {
        s.shows
            .iter()
            .any(|sh| sh.imported_from.as_deref() == Some(raw.as_str()))
    });
    if already {
        return refuse("This show was already imported");
    }
    let code = accounts::six_digits();
    let id = accounts::token()[..10].to_owned();
    let text = format!(
        "Someone asked to import \"{}\" into {}.\n\nYour ownership code is {code}\n",
        info.title, ctx.domain
    );
    send(
        &sim,
        &ctx,
        &info.owner_email,
        &format!("Confirm you own \"{}\"", info.title),
        &text,
    );
    let pending = Import {
        user: email,
        rss_url: raw.clone(),
        title: info.title,
        about: info.about,
        owner_email: info.owner_email,
        code,
        show_id: None,
    };
    sim.demo
        .with_site(&ctx.domain, |s| s.imports.insert(id.clone(), pending));
    Redirect::to(&ctx.path(&format!("/import/{id}/verify"))).into_response()
}

fn mask(email: &str) -> String {
    match email.split_once('@') {
        Some((user, domain)) => format!("{}***@{domain}", user.chars().next().unwrap_or('*')),
        None => "***".to_owned(),
    }
}

fn ownership_body(ctx: &SiteCtx, id: &str, owner: &str) -> String {
    format!(
        r#"<p id="ownership-hint">We sent a code to the feed's owner address {}.</p><form id="ownership-form" method="post" action="{}">{}<button id="ownership-submit" type="submit">Confirm</button></form>"#,
        esc(&mask(owner)),
        ctx.path(&format!("/import/{id}/verify")),
        input("code", "code", "text", "Ownership code", ""),
    )
}

/// `GET /import/{id}/verify`.
pub async fn ownership_form(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    match sim.demo.with_site(&ctx.domain, |s| {
        s.imports.get(&id).map(|i| i.owner_email.clone())
    }) {
        Some(owner) => page(
            &ctx,
            "Confirm ownership",
            None,
            &ownership_body(&ctx, &id, &owner),
        )
        .into_response(),
        None => page_with(
            StatusCode::NOT_FOUND,
            &ctx,
            "Not found",
            "This import does not exist",
            "",
        ),
    }
}

/// `POST /import/{id}/verify` (field `code`): the right code imports the show.
pub async fn ownership(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(email) = session_email(&sim, &ctx, &headers) else {
        return Redirect::to(&ctx.path("/login")).into_response();
    };
    if let Some(fault) = sim.demo.step("ownership").await {
        return fault;
    }
    let code = form.get("code").map_or("", |v| v.trim()).to_owned();
    let result = sim.demo.with_site(&ctx.domain, |s| {
        let import = s
            .imports
            .get_mut(&id)
            .filter(|i| i.user == email)
            .ok_or(None)?;
        if import.code != code {
            return Err(Some(import.owner_email.clone()));
        }
        let show_id = accounts::token()[..10].to_owned();
        import.show_id = Some(show_id.clone());
        let show = Show {
            id: show_id.clone(),
            owner: email.clone(),
            title: import.title.clone(),
            about: import.about.clone(),
            cover: None,
            rss_enabled: false,
            imported_from: Some(import.rss_url.clone()),
        };
        s.shows.push(show);
        Ok(show_id)
    });
    match result {
        Ok(show_id) => Redirect::to(&ctx.path(&format!("/shows/{show_id}"))).into_response(),
        Err(Some(owner)) => {
            let body = ownership_body(&ctx, &id, &owner);
            page_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                &ctx,
                "Confirm ownership",
                "Invalid ownership code",
                &body,
            )
        }
        Err(None) => page_with(
            StatusCode::NOT_FOUND,
            &ctx,
            "Not found",
            "This import does not exist",
            "",
        ),
    }
}

/// The sub-site's show page body: `#show-title`, `#show-status` ("Imported"), `#imported-from`.
pub fn show_body(_ctx: &SiteCtx, show: &Show) -> String {
    format!(
        r#"<h2 id="show-title">{}</h2><p id="show-status">Imported</p><p>From <a id="imported-from" href="{1}">{1}</a></p><div id="show-about">{2}</div>"#,
        esc(&show.title),
        esc(show.imported_from.as_deref().unwrap_or("")),
        esc(&show.about),
    )
}

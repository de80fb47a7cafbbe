//! The demo main platform's own steps: the mailed 6-digit verification code, the TOTP second factor (the secret
//! of the mailbox's account, i.e. the task's `twofa`), show creation with a cover upload, enabling the RSS feed,
//! and serving the feed with the account's email as `itunes:owner`.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::super::Shared;
use super::super::mail::Outgoing;
use super::accounts::{self, Show, session_email};
use super::html::{esc, input, page, page_with};
use super::{SiteCtx, feed, studio};

/// Largest cover accepted, in bytes.
pub const MAX_COVER_BYTES: usize = 5 * 1024 * 1024;

/// After sign-up: mails the code and sends the browser to the code form.
pub fn after_signup(sim: &Shared, ctx: &SiteCtx, email: &str, code: &str) -> Response {
    let from = format!("no-reply@{}", ctx.domain);
    let text = format!(
        "Welcome to {}!\n\nYour verification code is {code}\n\nIt expires in 30 minutes.\n",
        ctx.domain
    );
    let html = format!(
        "<p>Welcome to {}!</p><p>Your verification code is <b>{code}</b></p>",
        esc(&ctx.domain)
    );
    let subject = format!("Your {} verification code", ctx.domain);
    let mail = Outgoing {
        from_name: "Main Demo",
        from: &from,
        to: email,
        subject: &subject,
        text: &text,
        html: &html,
    };
    if let Err(error) = sim.demo.mailer.send(&mail) {
        tracing::warn!(%error, domain = %ctx.domain, "demo mail not delivered");
    }
    let to = format!("{}?email={}", ctx.path("/verify"), url_escape(email));
    Redirect::to(&to).into_response()
}

fn url_escape(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn verify_body(ctx: &SiteCtx, email: &str) -> String {
    format!(
        r#"<p id="verify-hint">We sent a 6-digit code to {}.</p><form id="verify-form" method="post" action="{}"><input id="verify-email" name="email" type="hidden" value="{}">{}<button id="verify-submit" type="submit">Verify</button></form>"#,
        esc(email),
        ctx.path("/verify"),
        esc(email),
        input("code", "code", "text", "Verification code", ""),
    )
}

/// `GET /verify?email=…`.
pub async fn verify_form(ctx: SiteCtx, Query(q): Query<HashMap<String, String>>) -> Response {
    let email = q.get("email").cloned().unwrap_or_default();
    page(&ctx, "Verify your email", None, &verify_body(&ctx, &email)).into_response()
}

/// `POST /verify` (fields `email`, `code`): verifies the account, then on to the login page.
pub async fn verify(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(fault) = sim.demo.step("verify").await {
        return fault;
    }
    let email = form.get("email").map_or("", |v| v.trim()).to_owned();
    let code = form.get("code").map_or("", |v| v.trim()).to_owned();
    let ok = sim
        .demo
        .with_site(&ctx.domain, |s| match s.user_mut(&email) {
            Some(u) if u.email.eq_ignore_ascii_case(&email) && !u.verified && u.code == code => {
                u.verified = true;
                true
            }
            _ => false,
        });
    if !ok {
        let body = verify_body(&ctx, &email);
        return page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ctx,
            "Verify your email",
            "Invalid verification code",
            &body,
        );
    }
    Redirect::to(&format!("{}?verified=1", ctx.path("/login"))).into_response()
}

fn show_form_body(ctx: &SiteCtx) -> String {
    format!(
        r#"<form id="show-form" method="post" action="{}" enctype="multipart/form-data">{}<label for="about">About</label><textarea id="about" name="about" rows="6"></textarea><label for="cover">Cover image</label><input id="cover" name="cover" type="file" accept="image/*" required><button id="show-submit" type="submit">Create show</button></form>"#,
        ctx.path("/shows/new"),
        input("title", "title", "text", "Title", ""),
    )
}

/// `GET /shows/new` (on a studio site only for an account that is at that stage).
pub async fn show_form(State(sim): State<Shared>, ctx: SiteCtx, headers: HeaderMap) -> Response {
    let Some(email) = session_email(&sim, &ctx, &headers) else {
        return Redirect::to(&ctx.path("/login")).into_response();
    };
    if ctx.studio && studio::landing_of(&sim, &ctx, &email) != "/shows/new" {
        return studio::to_landing(&sim, &ctx, &headers);
    }
    page(&ctx, "Create a show", None, &show_form_body(&ctx)).into_response()
}

/// Whether the bytes start like a PNG, JPEG, GIF or WebP file.
pub fn is_image(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x89PNG\r\n\x1a\n")
        || bytes.starts_with(&[0xFF, 0xD8, 0xFF])
        || bytes.starts_with(b"GIF87a")
        || bytes.starts_with(b"GIF89a")
        || (bytes.len() > 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP")
}

struct ShowForm {
    title: String,
    about: String,
    cover: Vec<u8>,
    cover_type: String,
}

async fn read_show_form(mut multipart: Multipart) -> Result<ShowForm, &'static str> {
    let mut form = ShowForm {
        title: String::new(),
        about: String::new(),
        cover: Vec::new(),
        cover_type: String::new(),
    };
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|_| "The upload was interrupted; please try again")?
    {
        match field.name().unwrap_or("") {
            "title" => form.title = field.text().await.unwrap_or_default().trim().to_owned(),
            "about" => form.about = field.text().await.unwrap_or_default(),
            "cover" => {
                form.cover_type = field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_owned();
                form.cover = field
                    .bytes()
                    .await
                    .map_err(|_| "The cover image is too large (at most 5 MB)")?
                    .to_vec();
            }
            _ => {}
        }
    }
    if form.title.is_empty() || form.title.chars().count() > 200 {
        return Err("Please give your show a title (at most 200 characters)");
    }
    if form.cover.len() > MAX_COVER_BYTES {
        return Err("The cover image is too large (at most 5 MB)");
    }
    if !is_image(&form.cover) {
        return Err("The cover must be an image (PNG, JPEG, GIF or WebP)");
    }
    Ok(form)
}

/// `POST /shows/new` (multipart: `title`, `about`, `cover`): creates the show, then shows its page.
pub async fn create_show(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let Some(email) = session_email(&sim, &ctx, &headers) else {
        return Redirect::to(&ctx.path("/login")).into_response();
    };
    if let Some(fault) = sim.demo.step("create_show").await {
        return fault;
    }
    let form = match read_show_form(multipart).await {
        Ok(form) => form,
        Err(message) => {
            return page_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                &ctx,
                "Create a show",
                message,
                &show_form_body(&ctx),
            );
        }
    };
    let id = accounts::token()[..10].to_owned();
    let show = Show {
        id: id.clone(),
        owner: email,
        title: form.title,
        about: form.about,
        cover: Some((form.cover, form.cover_type)),
        rss_enabled: false,
        imported_from: None,
    };
    sim.demo.with_site(&ctx.domain, |s| s.shows.push(show));
    if ctx.studio {
        return Redirect::to(&ctx.path("/settings")).into_response();
    }
    Redirect::to(&ctx.path(&format!("/shows/{id}"))).into_response()
}

/// The main site's show page body: `#show-title`, `#show-about`, `#show-cover`, then `#rss-form` /
/// `#enable-rss`, or the feed URL in `<a id="rss-url">` (as text and `href`).
pub fn show_body(ctx: &SiteCtx, show: &Show) -> String {
    let rss = if show.rss_enabled {
        let url = ctx.url(&format!("/feeds/{}.xml", show.id));
        format!(
            r#"<p id="rss-status">RSS feed enabled</p><p>Your feed: <a id="rss-url" href="{0}">{0}</a></p>"#,
            esc(&url)
        )
    } else {
        format!(
            r#"<p id="rss-status">RSS feed disabled</p><form id="rss-form" method="post" action="{}"><button id="enable-rss" type="submit">Enable RSS feed</button></form>"#,
            ctx.path(&format!("/shows/{}/rss", show.id))
        )
    };
    format!(
        r#"<h2 id="show-title">{}</h2><div id="show-about">{}</div><img id="show-cover" alt="cover" width="128" src="{}">{rss}"#,
        esc(&show.title),
        esc(&show.about),
        ctx.path(&format!("/shows/{}/cover", show.id)),
    )
}

/// `POST /shows/{id}/rss`: the owner enables the feed.
pub async fn enable_rss(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let Some(email) = session_email(&sim, &ctx, &headers) else {
        return Redirect::to(&ctx.path("/login")).into_response();
    };
    if let Some(fault) = sim.demo.step("enable_rss").await {
        return fault;
    }
    let found = sim.demo.with_site(&ctx.domain, |s| {
        s.shows
            .iter_mut()
            .find(|sh| sh.id == id && sh.owner == email)
            .map(|sh| sh.rss_enabled = true)
            .is_some()
    });
    if !found {
        return page_with(
            StatusCode::NOT_FOUND,
            &ctx,
            "Not found",
            "This show does not exist",
            "",
        );
    }
    Redirect::to(&ctx.path(&format!("/shows/{id}"))).into_response()
}

/// `GET /shows/{id}/cover`.
pub async fn cover(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let cover = sim.demo.with_site(&ctx.domain, |s| {
        s.shows
            .iter()
            .find(|sh| sh.id == id)
            .and_then(|sh| sh.cover.clone())
    });
    match cover {
        Some((bytes, kind)) => ([(header::CONTENT_TYPE, kind)], bytes).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /feeds/{id}.xml`: the RSS feed of a show whose feed is enabled.
pub async fn feed(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    Path((_, file)): Path<(String, String)>,
) -> Response {
    let id = file.strip_suffix(".xml").unwrap_or(&file).to_owned();
    let show = sim.demo.with_site(&ctx.domain, |s| {
        s.shows
            .iter()
            .find(|sh| sh.id == id && sh.rss_enabled)
            .cloned()
    });
    let Some(show) = show else {
        return (StatusCode::NOT_FOUND, "feed not found").into_response();
    };
    let xml = feed::render(
        &show,
        &ctx.url(&format!("/shows/{id}")),
        &ctx.url(&format!("/shows/{id}/cover")),
    );
    (
        [(header::CONTENT_TYPE, "application/rss+xml; charset=utf-8")],
        xml,
    )
        .into_response()
}

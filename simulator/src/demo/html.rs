//! Page layout of the demo platforms: one plain HTML skeleton with a header, an error box and stable element ids
//! (documented in `docs/simulator.md`), and HTML escaping. No behaviour.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::SiteCtx;

/// Escapes text for HTML element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The page's error box, `<div class="error" id="error">`, or nothing.
pub fn error_box(error: Option<&str>) -> String {
    error
        .map(|e| {
            format!(
                r#"<div class="error" id="error" role="alert">{}</div>"#,
                esc(e)
            )
        })
        .unwrap_or_default()
}

/// A full page: `<h1 id="page-title">`, an optional `<div class="error" id="error">`, then `body` (trusted HTML).
pub fn page(ctx: &SiteCtx, title: &str, error: Option<&str>, body: &str) -> Html<String> {
    let error = error_box(error);
    let base = &ctx.base;
    let consent = if ctx.studio && !ctx.consented {
        super::studio::consent_overlay(ctx)
    } else {
        String::new()
    };
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · {site}</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}.error{{color:#b00;border:1px solid #b00;padding:.5em}}
label{{display:block;margin-top:.6em}}input,textarea{{width:100%}}</style></head>
<body data-site="{kind}">
<header><a id="home-link" href="{base}/">{site}</a> · <a id="nav-dashboard" href="{base}/dashboard">Dashboard</a> · <a id="nav-login" href="{base}/login">Log in</a> · <a id="nav-signup" href="{base}/signup">Sign up</a></header>
<main><h1 id="page-title">{title}</h1>
{error}
{body}
</main>{consent}</body></html>"#,
        title = esc(title),
        site = esc(&ctx.domain),
        kind = match (ctx.studio, ctx.is_main) {
            (true, _) => "studio",
            (false, true) => "main",
            (false, false) => "sub",
        },
    ))
}

/// A page answered with a status other than 200 (errors in forms answer 422, unknown things 404).
pub fn page_with(
    status: StatusCode,
    ctx: &SiteCtx,
    title: &str,
    error: &str,
    body: &str,
) -> Response {
    (status, page(ctx, title, Some(error), body)).into_response()
}

/// A labelled input.
pub fn input(id: &str, name: &str, kind: &str, label: &str, value: &str) -> String {
    format!(
        r#"<label for="{id}">{label}</label><input id="{id}" name="{name}" type="{kind}" value="{}" required>"#,
        esc(value)
    )
}

/// A 5xx page for an injected step failure.
pub fn server_error(status: StatusCode) -> Response {
    let text = format!(
        "<!doctype html><html><head><title>{0}</title></head><body><h1 id=\"server-error\">{0}</h1>\
         <p>Something went wrong on our side. Please try again later.</p></body></html>",
        status
    );
    (status, Html(text)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}

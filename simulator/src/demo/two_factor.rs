//! The demo main site's second factor: after a right password, a TOTP code (RFC 6238: SHA-1, 6 digits, 30 s
//! steps, one step of skew either way; each step accepted once) of the mailbox's secret (the task's `twofa`).
//! Checked with totp-rs directly: the simulator shares no code with the worker's own TOTP module.

use std::collections::HashMap;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use totp_rs::{Builder, Secret};

use super::super::Shared;
use super::SiteCtx;
use super::accounts::{self, SESSION_COOKIE, cookie, redirect_with_cookie, set_cookie};
use super::html::{input, page, page_with};

/// Cookie of a login whose password was right and whose TOTP code is awaited.
pub const PENDING_COOKIE: &str = "demo_pending";

/// The step a code matches at unix time `now`, if any. Secrets may be lowercase, spaced or padded.
pub fn check(secret: &str, code: &str, now: u64) -> Option<u64> {
    let normalised: String = secret
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=' && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let secret = Secret::try_from_base32(&normalised).ok()?;
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Builder::new()
        .with_secret(secret)
        .build_noncompliant()
        .check(code, now)
}

/// After a right password: a TOTP step when the mailbox has a second factor, else straight in.
pub fn after_password(sim: &Shared, ctx: &SiteCtx, email: &str) -> Response {
    if sim.twofa_for(email).is_some() {
        let token = accounts::token();
        sim.demo.with_site(&ctx.domain, |s| {
            s.pending.insert(token.clone(), email.to_owned())
        });
        return redirect_with_cookie(
            &ctx.path("/login/2fa"),
            set_cookie(ctx, PENDING_COOKIE, &token),
        );
    }
    let session = sim.demo.with_site(&ctx.domain, |s| s.open_session(email));
    redirect_with_cookie(
        &ctx.path("/dashboard"),
        set_cookie(ctx, SESSION_COOKIE, &session),
    )
}

fn totp_body(ctx: &SiteCtx) -> String {
    format!(
        r#"<p id="totp-hint">Enter the 6-digit code from your authenticator app.</p><form id="totp-form" method="post" action="{}">{}<button id="totp-submit" type="submit">Continue</button></form>"#,
        ctx.path("/login/2fa"),
        input("totp", "code", "text", "Authentication code", ""),
    )
}

/// `GET /login/2fa`.
pub async fn totp_form(ctx: SiteCtx) -> Response {
    page(&ctx, "Two-step verification", None, &totp_body(&ctx)).into_response()
}

/// `POST /login/2fa` (field `code`): a valid code, not used before, opens the session.
pub async fn totp(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(fault) = sim.demo.step("totp").await {
        return fault;
    }
    let pending = cookie(&headers, PENDING_COOKIE);
    let email = pending.as_ref().and_then(|t| {
        sim.demo
            .with_site(&ctx.domain, |s| s.pending.get(t).cloned())
    });
    let Some(email) = email else {
        return Redirect::to(&ctx.path("/login")).into_response();
    };
    let code = form.get("code").map_or("", |v| v.trim()).to_owned();
    let step = sim
        .twofa_for(&email)
        .and_then(|secret| check(&secret, &code, now_secs()));
    let refuse = |m: &str| {
        page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ctx,
            "Two-step verification",
            m,
            &totp_body(&ctx),
        )
    };
    let Some(step) = step else {
        return refuse("Invalid authentication code");
    };
    let accepted = sim.demo.with_site(&ctx.domain, |s| {
        let user = s.user_mut(&email)?;
        if user.last_totp_step.is_some_and(|last| step <= last) {
            return None;
        }
        user.last_totp_step = Some(step);
        if let Some(t) = &pending {
            s.pending.remove(t);
        }
        Some(s.open_session(&email))
    });
    match accepted {
        Some(session) => redirect_with_cookie(
            &ctx.path("/dashboard"),
            set_cookie(&ctx, SESSION_COOKIE, &session),
        ),
        None => refuse("This code was already used; wait for the next one"),
    }
}

/// Unix time in seconds.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_within_one_step_of_skew() {
        let secret = "jbsw y3dp ehpk 3pxp";
        let totp = Builder::new()
            .with_secret(Secret::try_from_base32("JBSWY3DPEHPK3PXP").unwrap())
            .build_noncompliant();
        let code = totp.generate(1_000_000).to_string();
        assert_eq!(check(secret, &code, 1_000_000), Some(1_000_000 / 30));
        assert!(check(secret, &code, 1_000_030).is_some());
        assert!(check(secret, &code, 1_000_100).is_none());
        assert!(check(secret, "12345", 1_000_000).is_none());
    }
}

//! What both demo platforms share: accounts, sessions (cookies scoped to the site), sign-up and login forms, the
//! dashboard and show pages. The main site's code/TOTP steps and the sub-site's link/import steps are in
//! [`super::main_site`] and [`super::sub_site`].

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use rand::Rng;

use super::super::Shared;
use super::html::{esc, input, page, page_with};
pub use super::site_data::{Import, Show, SiteData, User};
use super::{SiteCtx, main_site, studio, sub_site, two_factor};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "demo_session";

/// A random 32-hex-digit token.
pub fn token() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

/// A random 6-digit code.
pub fn six_digits() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000))
}

/// The value of cookie `name` in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value scoped to the site.
pub fn set_cookie(ctx: &SiteCtx, name: &str, value: &str) -> String {
    format!(
        "{name}={value}; Path={}; HttpOnly; SameSite=Lax",
        ctx.cookie_path()
    )
}

/// The signed-in account's email, if any.
pub fn session_email(sim: &Shared, ctx: &SiteCtx, headers: &HeaderMap) -> Option<String> {
    let token = cookie(headers, SESSION_COOKIE)?;
    sim.demo
        .with_site(&ctx.domain, |s| s.sessions.get(&token).cloned())
}

/// A redirect that also sets a cookie.
pub fn redirect_with_cookie(to: &str, cookie: String) -> Response {
    let mut response = Redirect::to(to).into_response();
    if let Ok(v) = cookie.parse() {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// `GET /`.
pub async fn home(ctx: SiteCtx) -> Response {
    if ctx.studio {
        return studio::home(&ctx);
    }
    let what = if ctx.is_main {
        "Create your podcast, get an RSS feed, reach every listener."
    } else {
        "Bring your podcast here: import it from its RSS feed."
    };
    let body = format!(
        r#"<p id="tagline">{what}</p><p><a id="cta-signup" href="{0}">Sign up</a> or <a id="cta-login" href="{1}">log in</a>.</p>"#,
        ctx.path("/signup"),
        ctx.path("/login")
    );
    page(&ctx, "Welcome", None, &body).into_response()
}

fn signup_body(ctx: &SiteCtx, form: &HashMap<String, String>) -> String {
    let v = |k: &str| form.get(k).map_or("", String::as_str);
    format!(
        r#"<form id="signup-form" method="post" action="{}">{}{}{}<button id="signup-submit" type="submit">Create account</button></form>"#,
        ctx.path("/signup"),
        input("email", "email", "email", "Email", v("email")),
        input("username", "username", "text", "Username", v("username")),
        input("password", "password", "password", "Password", ""),
    )
}

/// `GET /signup` (the studio's front door on a studio site).
pub async fn signup_form(ctx: SiteCtx) -> Response {
    if ctx.studio {
        return studio::home(&ctx);
    }
    page(&ctx, "Sign up", None, &signup_body(&ctx, &HashMap::new())).into_response()
}

/// Checks a sign-up form; the message is shown to the user.
fn check_signup(
    site: &SiteData,
    email: &str,
    username: &str,
    password: &str,
) -> Result<(), &'static str> {
    if !(email.contains('@') && email.rsplit('@').next().is_some_and(|d| d.contains('.'))) {
        return Err("Please enter a valid email address");
    }
    let username_ok = (3..=40).contains(&username.chars().count())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !username_ok {
        return Err("Username must be 3 to 40 letters, digits, dots, dashes or underscores");
    }
    if password.chars().count() < 8 {
        return Err("Password must be at least 8 characters");
    }
    if site
        .users
        .iter()
        .any(|u| u.email.eq_ignore_ascii_case(email))
    {
        return Err("This email is already registered");
    }
    if site
        .users
        .iter()
        .any(|u| u.username.eq_ignore_ascii_case(username))
    {
        return Err("This username is already taken");
    }
    Ok(())
}

/// `POST /signup` (fields `email`, `username`, `password`): creates an unverified account and mails a code (main)
/// or a confirmation link (sub); 422 with `#error` for a bad form or an address already registered.
pub async fn signup(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if ctx.studio {
        return StatusCode::NOT_FOUND.into_response();
    }
    if let Some(fault) = sim.demo.step("signup").await {
        return fault;
    }
    let get = |k: &str| form.get(k).map_or("", |v| v.trim()).to_owned();
    let (email, username, password) = (
        get("email"),
        get("username"),
        form.get("password").cloned().unwrap_or_default(),
    );
    let code = if ctx.is_main { six_digits() } else { token() };
    let created = sim.demo.with_site(&ctx.domain, |site| {
        check_signup(site, &email, &username, &password)?;
        site.users.push(User {
            email: email.clone(),
            username,
            password,
            verified: false,
            code: code.clone(),
            last_totp_step: None,
        });
        Ok(())
    });
    if let Err(message) = created {
        let body = signup_body(&ctx, &form);
        return page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ctx,
            "Sign up",
            message,
            &body,
        );
    }
    if ctx.is_main {
        main_site::after_signup(&sim, &ctx, &email, &code)
    } else {
        sub_site::after_signup(&sim, &ctx, &email, &code)
    }
}

fn login_body(ctx: &SiteCtx, login: &str) -> String {
    format!(
        r#"<form id="login-form" method="post" action="{}">{}{}<button id="login-submit" type="submit">Log in</button></form>"#,
        ctx.path("/login"),
        input("email", "email", "text", "Email or username", login),
        input("password", "password", "password", "Password", ""),
    )
}

/// `GET /login` (the studio's front door on a studio site).
pub async fn login_form(ctx: SiteCtx) -> Response {
    if ctx.studio {
        return studio::home(&ctx);
    }
    page(&ctx, "Log in", None, &login_body(&ctx, "")).into_response()
}

/// `POST /login` (fields `email` — email or username — and `password`).
pub async fn login(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if ctx.studio {
        return StatusCode::NOT_FOUND.into_response();
    }
    if let Some(fault) = sim.demo.step("login").await {
        return fault;
    }
    let login = form.get("email").map_or("", |v| v.trim()).to_owned();
    let password = form.get("password").cloned().unwrap_or_default();
    let user = sim
        .demo
        .with_site(&ctx.domain, |s| s.password_ok(&login, &password).cloned());
    let refuse = |message: &str| {
        page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ctx,
            "Log in",
            message,
            &login_body(&ctx, &login),
        )
    };
    let Some(user) = user else {
        return refuse("Invalid email or password");
    };
    if !user.verified {
        return refuse(if ctx.is_main {
            "Please verify your email address first"
        } else {
            "Please confirm your email address first"
        });
    }
    if ctx.is_main {
        return two_factor::after_password(&sim, &ctx, &user.email);
    }
    let session = sim
        .demo
        .with_site(&ctx.domain, |s| s.open_session(&user.email));
    redirect_with_cookie(
        &ctx.path("/dashboard"),
        set_cookie(&ctx, SESSION_COOKIE, &session),
    )
}

/// `GET /logout`.
pub async fn logout(ctx: SiteCtx) -> Response {
    let expired = format!("{SESSION_COOKIE}=; Path={}; Max-Age=0", ctx.cookie_path());
    redirect_with_cookie(&ctx.path("/"), expired)
}

/// `GET /dashboard`: the account, its shows, and the next action (create or import a show).
pub async fn dashboard(State(sim): State<Shared>, ctx: SiteCtx, headers: HeaderMap) -> Response {
    if ctx.studio {
        return studio::to_landing(&sim, &ctx, &headers);
    }
    let Some(email) = session_email(&sim, &ctx, &headers) else {
        return Redirect::to(&ctx.path("/login")).into_response();
    };
    let (user, shows) = sim.demo.with_site(&ctx.domain, |s| {
        let shows: Vec<Show> = s
            .shows
            .iter()
            .filter(|sh| sh.owner == email)
            .cloned()
            .collect();
        (s.user(&email).cloned(), shows)
    });
    let username = user.map(|u| u.username).unwrap_or_default();
    let list: String = shows
        .iter()
        .map(|sh| {
            format!(
                r#"<li><a class="show-link" href="{}">{}</a></li>"#,
                ctx.path(&format!("/shows/{}", sh.id)),
                esc(&sh.title)
            )
        })
        .collect();
    let action = if ctx.is_main {
        format!(
            r#"<a id="create-show" href="{}">Create a show</a>"#,
            ctx.path("/shows/new")
        )
    } else {
        format!(
            r#"<a id="import-show" href="{}">Import a show</a>"#,
            ctx.path("/import")
        )
    };
    let body = format!(
        r#"<p id="account-email">{}</p><p id="account-username">{}</p><ul id="shows">{list}</ul><p>{action}</p><p><a id="logout" href="{}">Log out</a></p>"#,
        esc(&email),
        esc(&username),
        ctx.path("/logout")
    );
    page(&ctx, "Dashboard", None, &body).into_response()
}

/// `GET /shows/{id}`: a show; on the main site with its RSS state (the feed URL in `#rss-url` once enabled).
pub async fn show_page(
    State(sim): State<Shared>,
    ctx: SiteCtx,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let Some(show) = sim.demo.with_site(&ctx.domain, |s| {
        s.shows.iter().find(|sh| sh.id == id).cloned()
    }) else {
        return page_with(
            StatusCode::NOT_FOUND,
            &ctx,
            "Not found",
            "This show does not exist",
            "",
        );
    };
    let body = if ctx.is_main {
        main_site::show_body(&ctx, &show)
    } else {
        sub_site::show_body(&ctx, &show)
    };
    page(&ctx, &show.title, None, &body).into_response()
}

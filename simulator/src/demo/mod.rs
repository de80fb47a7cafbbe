//! Demo podcast platforms served by the simulator: a main site (sign-up, mailed code, password + TOTP login,
//! show with cover, RSS feed), a main site in the *studio* flavour that behaves like real ones (consent overlay,
//! "Continue with DemoMail" through the identity provider [`IDP_DOMAIN`], a script-rendered onboarding form with a
//! strict username rule and taken usernames, a landing page that depends on the account's state), and sub-sites
//! (sign-up with a mailed link, RSS import with a mailed ownership code). Each platform is a domain; it is reached
//! either by that host name (`Host: main.demo.test`, e.g. Chromium with `--host-resolver-rules`) or by path under
//! `/demo/<domain>/`. A domain is a main site when it is the main domain of some scenario (default
//! `main.demo.test`), else a sub-site; a main site whose first label is `studio` has the studio flavour.

mod accounts;
mod admin;
mod feed;
mod html;
mod idp;
mod main_site;
mod site_data;
mod studio;
mod sub_site;
mod two_factor;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

pub use accounts::SiteData;
pub use admin::routes as admin_routes;
pub use idp::IDP_DOMAIN;

use super::Shared;
use super::mail::Mailer;

/// Injected trouble for browser tests: a slow step and a failing step, each for a number of times.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoFaults {
    /// Step made slow: `signup`, `verify`, `login`, `totp`, `create_show`, `enable_rss`, `confirm`, `import`,
    /// `ownership`; on the studio flavour also `idp_password`, `idp_totp`, `callback`, `onboarding`.
    pub slow_step: Option<String>,
    /// Delay of the slow step, in milliseconds.
    pub slow_ms: u64,
    /// How many more times the step is slow.
    pub slow_times: u32,
    /// Step answering a 5xx page.
    pub fail_step: Option<String>,
    /// The status of that page (500..=599; 0 means 503).
    pub fail_status: u16,
    /// How many more times the step fails.
    pub fail_times: u32,
}

/// The demo platforms' state.
#[derive(Debug)]
pub struct Demo {
    sites: Mutex<HashMap<String, SiteData>>,
    main_domains: Mutex<HashSet<String>>,
    faults: Mutex<DemoFaults>,
    idp: Mutex<idp::IdpData>,
    /// Mail delivery.
    pub mailer: Mailer,
    /// Where this simulator listens (the sub-sites fetch feeds of demo hosts here).
    pub own_addr: SocketAddr,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Demo {
    /// Empty platforms; `main_domains` are main sites from the start.
    pub fn new(mailer: Mailer, own_addr: SocketAddr, main_domains: &[String]) -> Self {
        Self {
            sites: Mutex::new(HashMap::new()),
            main_domains: Mutex::new(main_domains.iter().map(|d| d.to_lowercase()).collect()),
            faults: Mutex::new(DemoFaults::default()),
            idp: Mutex::new(idp::IdpData::default()),
            mailer,
            own_addr,
        }
    }

    /// Makes `domain` a main site.
    pub fn add_main_domain(&self, domain: &str) {
        lock(&self.main_domains).insert(domain.to_lowercase());
    }

    fn is_main(&self, domain: &str) -> bool {
        lock(&self.main_domains).contains(domain)
    }

    /// Whether `domain` is a main site in the studio flavour.
    pub fn is_studio(&self, domain: &str) -> bool {
        domain.starts_with("studio.") && self.is_main(domain)
    }

    /// Reserves a username on a site, as if someone had registered it long ago (a studio site refuses it).
    pub fn reserve_username(&self, domain: &str, username: &str) {
        self.with_site(&domain.to_lowercase(), |s| {
            s.reserved.insert(username.to_lowercase())
        });
    }

    /// Runs `f` on the identity provider's data.
    fn with_idp<T>(&self, f: impl FnOnce(&mut idp::IdpData) -> T) -> T {
        f(&mut lock(&self.idp))
    }

    /// Runs `f` on a site's data (created on first use).
    pub fn with_site<T>(&self, domain: &str, f: impl FnOnce(&mut SiteData) -> T) -> T {
        let mut sites = lock(&self.sites);
        f(sites.entry(domain.to_owned()).or_default())
    }

    /// The fault flags.
    pub fn faults(&self) -> DemoFaults {
        lock(&self.faults).clone()
    }

    /// Replaces the fault flags.
    pub fn set_faults(&self, faults: DemoFaults) {
        *lock(&self.faults) = faults;
    }

    /// Applies the faults of `step`: waits when it is the slow step, answers a 5xx page when it is the failing one.
    pub async fn step(&self, step: &str) -> Option<Response> {
        let (delay, fail) = {
            let mut f = lock(&self.faults);
            let mut delay = None;
            if f.slow_step.as_deref() == Some(step) && f.slow_times > 0 {
                f.slow_times -= 1;
                delay = Some(Duration::from_millis(f.slow_ms));
            }
            let mut fail = None;
            if f.fail_step.as_deref() == Some(step) && f.fail_times > 0 {
                f.fail_times -= 1;
                fail = StatusCode::from_u16(f.fail_status)
                    .ok()
                    .filter(|s| s.is_server_error());
                fail = fail.or(Some(StatusCode::SERVICE_UNAVAILABLE));
            }
            (delay, fail)
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        fail.map(html::server_error)
    }
}

/// Request marker: the request named its platform by `Host` (links then start at `/`).
#[derive(Debug, Clone, Copy)]
pub struct HostBased;

/// If the `Host` is a demo platform's name (not an IP, not `localhost`, not `own_host`), serves the request
/// from `/demo/<host>/…`.
pub fn route_by_host<B>(request: &mut Request<B>, own_host: &str) {
    let Some(host) = host_name(request.headers()) else {
        return;
    };
    if host == own_host || host == "localhost" || host.parse::<std::net::IpAddr>().is_ok() {
        return;
    }
    let path_and_query = request.uri().path_and_query().map_or("/", |p| p.as_str());
    if let Ok(uri) = format!("/demo/{host}{path_and_query}").parse() {
        *request.uri_mut() = uri;
        request.extensions_mut().insert(HostBased);
    }
}

/// The lowercase host name of the `Host` header, without the port.
fn host_name(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    Some(name.trim_matches(['[', ']']).to_lowercase())
}

/// Which platform a request is for, and how to build its links.
#[derive(Debug, Clone)]
pub struct SiteCtx {
    /// The platform's domain.
    pub domain: String,
    /// Path prefix of its pages: empty when reached by host name, else `/demo/<domain>`.
    pub base: String,
    /// `http://<Host header>`: absolute links (mails, the feed URL) start with `origin + base`.
    pub origin: String,
    /// A main site (else a sub-site).
    pub is_main: bool,
    /// A main site in the studio flavour.
    pub studio: bool,
    /// The request carries the studio's consent cookie (no overlay).
    pub consented: bool,
}

impl SiteCtx {
    /// An absolute URL of a page of this site.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}{path}", self.origin, self.base)
    }

    /// The path of a page of this site.
    pub fn path(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Cookie `Path` scoping this site's cookies (sites share a host when reached by path).
    pub fn cookie_path(&self) -> String {
        if self.base.is_empty() {
            "/".to_owned()
        } else {
            self.base.clone()
        }
    }
}

impl FromRequestParts<Shared> for SiteCtx {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, sim: &Shared) -> Result<Self, Self::Rejection> {
        let domain = parts
            .uri
            .path()
            .strip_prefix("/demo/")
            .and_then(|rest| rest.split('/').next())
            .filter(|d| !d.is_empty())
            .map(str::to_lowercase)
            .ok_or(StatusCode::NOT_FOUND)?;
        let host_based = parts.extensions.get::<HostBased>().is_some();
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let consented = accounts::cookie(&parts.headers, studio::CONSENT_COOKIE).is_some();
        Ok(Self {
            is_main: sim.demo.is_main(&domain),
            studio: sim.demo.is_studio(&domain),
            consented,
            base: if host_based {
                String::new()
            } else {
                format!("/demo/{domain}")
            },
            origin: format!("http://{host}"),
            domain,
        })
    }
}

/// The demo pages, under `/demo/{domain}`.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/demo/{domain}/", get(accounts::home))
        .route("/demo/{domain}", get(accounts::home))
        .route(
            "/demo/{domain}/signup",
            get(accounts::signup_form).post(accounts::signup),
        )
        .route(
            "/demo/{domain}/login",
            get(accounts::login_form).post(accounts::login),
        )
        .route("/demo/{domain}/logout", get(accounts::logout))
        .route("/demo/{domain}/dashboard", get(accounts::dashboard))
        .route(
            "/demo/{domain}/verify",
            get(main_site::verify_form).post(main_site::verify),
        )
        .route(
            "/demo/{domain}/login/2fa",
            get(two_factor::totp_form).post(two_factor::totp),
        )
        .route(
            "/demo/{domain}/shows/new",
            get(main_site::show_form).post(main_site::create_show),
        )
        .route("/demo/{domain}/shows/{id}", get(accounts::show_page))
        .route("/demo/{domain}/shows/{id}/rss", post(main_site::enable_rss))
        .route("/demo/{domain}/shows/{id}/cover", get(main_site::cover))
        .route("/demo/{domain}/feeds/{file}", get(main_site::feed))
        .route("/demo/{domain}/confirm/{token}", get(sub_site::confirm))
        .route(
            "/demo/{domain}/import",
            get(sub_site::import_form).post(sub_site::import),
        )
        .route(
            "/demo/{domain}/import/{id}/verify",
            get(sub_site::ownership_form).post(sub_site::ownership),
        )
        .route("/demo/{domain}/auth/callback", get(studio::callback))
        .route(
            "/demo/{domain}/onboarding",
            get(studio::onboarding_form).post(studio::onboarding),
        )
        .route("/demo/{domain}/settings", get(studio::settings))
        .route(
            "/demo/{domain}/settings/distribution",
            post(studio::enable_distribution),
        )
        .route("/demo/{domain}/o/authorize", get(idp::authorize))
        .route("/demo/{domain}/o/identifier", post(idp::identifier))
        .route("/demo/{domain}/o/password", post(idp::password))
        .route("/demo/{domain}/o/totp", post(idp::totp))
}

//! A stand-in for the manager API of API.md (and, later, demo podcast platforms) for tests, demos and local
//! runs: stateful, exact, with fault injection and an audit of what the client did. It imports nothing from
//! the rest of the crate: it writes the API's JSON from the document, so a wire mistake cannot hide on both
//! sides. Tests start one per test with [`spawn`]; the binary calls [`run`]. See `docs/simulator.md`.

mod admin;
mod api;
mod assets;
mod audit;
mod chaos;
pub mod config;
mod demo;
mod generate;
mod mail;
mod metrics;
mod process;
mod reports;
mod server;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use secrecy::{ExposeSecret, SecretString};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use admin::{ScenarioTask, TaskView};
pub use api::{BASE_PATH, DEFAULT_LIMIT, MAX_LIMIT};
pub use audit::{Audit, LostTask, ReportCounts};
pub use chaos::Faults;
pub use demo::{DemoFaults, IDP_DOMAIN};
pub use generate::{DEFAULT_MAIN_DOMAIN, DEFAULT_SUB_DOMAINS, STUDIO_DOMAIN, ScenarioSpec};
pub use mail::{MailOptions, SentMail};
pub use metrics::{REQUESTS_TOTAL, TASKS};
pub use process::{init_logging, shutdown_token};
pub use reports::MAX_ERROR_MESSAGE_CHARS;
pub use state::{CompleteReport, HistoryEntry, TaskState, Violation};

/// Everything a simulator needs; the binary builds it from `SimulatorConfig`, tests with [`Self::for_test`].
#[derive(Debug, Clone)]
pub struct SimulatorOptions {
    /// Listen address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The key clients must send as `X-API-Key`.
    pub api_key: SecretString,
    /// Base URL clients reach the simulator at (image URLs point there); default `http://<bound address>`.
    pub public_url: Option<String>,
    /// Tasks generated at start-up (`requests: 0` for none).
    pub scenario: ScenarioSpec,
    /// Failures re-queued before a task becomes final_failed.
    pub max_retries: u32,
    /// Delay before a failed task is queued again.
    pub retry_delay: Duration,
    /// Initial fault flags.
    pub faults: Faults,
    /// Where the demo platforms' mail goes.
    pub mail: MailOptions,
}

impl SimulatorOptions {
    /// On 127.0.0.1:0, no tasks, no faults, `max_retries` 2, no retry delay.
    pub fn for_test(api_key: &str) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_key: SecretString::from(api_key.to_owned()),
            public_url: None,
            scenario: ScenarioSpec::default(),
            max_retries: 2,
            retry_delay: Duration::ZERO,
            faults: Faults::default(),
            mail: MailOptions::default(),
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An option is out of range.
    #[error("invalid simulator option: {0}")]
    Invalid(String),
    /// The metrics registry refused a metric.
    #[error("cannot register simulator metrics")]
    Metrics(#[from] prometheus::Error),
}

/// The shared state behind every handler.
#[derive(Debug)]
pub(crate) struct Sim {
    books: Mutex<state::State>,
    faults: Mutex<Faults>,
    rng: Mutex<StdRng>,
    api_key: String,
    public_url: String,
    metrics: metrics::SimMetrics,
    demo: demo::Demo,
}

type Shared = Arc<Sim>;

/// What the identity provider checks of a mailbox: its own password and its TOTP secret.
#[derive(Debug, Clone)]
pub(crate) struct Mailbox {
    pass_mail: String,
    twofa: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Sim {
    fn state(&self) -> MutexGuard<'_, state::State> {
        lock(&self.books)
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    fn rng(&self) -> MutexGuard<'_, StdRng> {
        lock(&self.rng)
    }

    /// Adds tasks, makes their main domains demo main sites, registers their mailboxes and, on a studio site,
    /// reserves the plain 12-character cut of the username of the scenario's first, third, … main task there
    /// (as if someone had taken it long ago), so recipes meet a taken username and a free one.
    fn add_scenario(&self, spec: &ScenarioSpec) -> Vec<ScenarioTask> {
        let tasks = admin::add_scenario(&mut self.state(), spec, &self.public_url);
        for domain in &spec.main_domains {
            self.demo.add_main_domain(domain);
        }
        let mains: Vec<generate::TaskData> = {
            let books = self.state();
            tasks
                .iter()
                .filter(|t| t.site == "main")
                .filter_map(|t| books.find(&t.id).map(|i| books.tasks[i].data.clone()))
                .collect()
        };
        let mut studio_tasks = 0;
        for data in &mains {
            if !self.demo.is_studio(&data.domain.to_lowercase()) {
                continue;
            }
            studio_tasks += 1;
            if studio_tasks % 2 == 1 {
                for name in generate::username_alternatives(&data.username) {
                    let cut: String = name.to_lowercase().chars().take(12).collect();
                    self.demo.reserve_username(&data.domain, &cut);
                }
            }
        }
        let mailboxes = mains
            .iter()
            .map(|d| (d.email.clone(), d.app_password.clone()));
        for (email, app_password) in mailboxes {
            if let Err(error) = self.demo.mailer.add_user(&email, &app_password) {
                tracing::warn!(%error, "cannot add a mailbox to the users file");
            }
        }
        tasks
    }

    /// The mailbox `email` as the identity provider knows it (from a task with that email).
    fn mailbox(&self, email: &str) -> Option<Mailbox> {
        let books = self.state();
        books
            .tasks
            .iter()
            .find(|t| t.data.email.eq_ignore_ascii_case(email.trim()))
            .map(|t| Mailbox {
                pass_mail: t.data.pass_mail.clone(),
                twofa: t.data.twofa.clone(),
            })
    }

    /// The TOTP secret of the mailbox `email` (the `twofa` of a task with that email).
    fn twofa_for(&self, email: &str) -> Option<String> {
        let books = self.state();
        books
            .tasks
            .iter()
            .find(|t| t.data.email.eq_ignore_ascii_case(email.trim()))
            .map(|t| t.data.twofa.clone())
    }

    fn task(&self, id: &str) -> Option<TaskView> {
        let books = self.state();
        books.find(id).map(|i| TaskView::of(&books.tasks[i]))
    }
}

/// A running simulator. Dropping it stops the server; [`Self::shutdown`] also waits for it.
#[derive(Debug)]
pub struct SimulatorHandle {
    addr: SocketAddr,
    url: String,
    sim: Shared,
    cancel: CancellationToken,
    server: Option<JoinHandle<()>>,
}

impl SimulatorHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Root URL, e.g. `http://127.0.0.1:40123` (admin, audit, metrics and assets live here).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The manager API base URL, `<root>/api/v1/podcast_account`, for the client's configuration.
    pub fn api_base_url(&self) -> String {
        format!("{}{BASE_PATH}", self.url)
    }

    /// Adds tasks (as `POST /admin/scenario`) and describes them, main task of each request first.
    pub fn add_scenario(&self, spec: &ScenarioSpec) -> Vec<ScenarioTask> {
        self.sim.add_scenario(spec)
    }

    /// The current fault flags.
    pub fn faults(&self) -> Faults {
        *self.sim.faults()
    }

    /// Replaces the fault flags.
    ///
    /// # Errors
    /// [`SimulatorError::Invalid`] for a probability outside `0..=1`.
    pub fn set_faults(&self, faults: Faults) -> Result<(), SimulatorError> {
        faults.validate().map_err(SimulatorError::Invalid)?;
        *self.sim.faults() = faults;
        Ok(())
    }

    /// One task with its state, accepted report and history; `None` for an unknown id.
    pub fn task(&self, id: &str) -> Option<TaskView> {
        self.sim.task(id)
    }

    /// Soft-deletes a task; returns whether it exists.
    pub fn delete_task(&self, id: &str) -> bool {
        let mut books = self.sim.state();
        books
            .find(id)
            .map(|i| books.delete(i, "deleted by test"))
            .is_some()
    }

    /// Mail the demo platforms sent (all, or to one address), as `GET /admin/mail`.
    pub fn mail(&self, to: Option<&str>) -> Vec<SentMail> {
        self.sim.demo.mailer.sent(to)
    }

    /// Replaces the demo platforms' step faults.
    pub fn set_demo_faults(&self, faults: DemoFaults) {
        self.sim.demo.set_faults(faults);
    }

    /// The audit (as `GET /audit`).
    pub fn audit(&self) -> Audit {
        audit::audit(&mut self.sim.state())
    }

    /// Stops accepting, lets open requests finish (briefly) and waits for the server task.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Binds `options.listen`, generates the start-up scenario and serves in a background task.
///
/// # Errors
/// [`SimulatorError`] when the address cannot be bound or an option is out of range.
pub async fn spawn(options: SimulatorOptions) -> Result<SimulatorHandle, SimulatorError> {
    options.faults.validate().map_err(SimulatorError::Invalid)?;
    let bind = |source| SimulatorError::Bind {
        addr: options.listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    let url = options
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_owned();
    let sim = Arc::new(Sim {
        books: Mutex::new(state::State::new(options.max_retries, options.retry_delay)),
        faults: Mutex::new(options.faults),
        rng: Mutex::new(StdRng::seed_from_u64(options.scenario.seed)),
        api_key: options.api_key.expose_secret().to_owned(),
        public_url: url.clone(),
        metrics: metrics::SimMetrics::new()?,
        demo: demo::Demo::new(
            mail::Mailer::new(options.mail.clone()),
            own_addr(addr),
            &options.scenario.main_domains,
        ),
    });
    if options.scenario.requests > 0 {
        sim.add_scenario(&options.scenario);
    }
    let cancel = CancellationToken::new();
    let app = server::router(sim.clone());
    let own_host = url::Url::parse(&url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let server = tokio::spawn(server::serve(listener, app, own_host, cancel.clone()));
    Ok(SimulatorHandle {
        addr,
        url,
        sim,
        cancel,
        server: Some(server),
    })
}

/// The address this simulator reaches itself at (a wildcard bind becomes loopback).
fn own_addr(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

/// Runs a simulator until `cancel` fires (the binary's entry point).
///
/// # Errors
/// As [`spawn`].
pub async fn run(
    options: SimulatorOptions,
    cancel: CancellationToken,
) -> Result<(), SimulatorError> {
    let handle = spawn(options).await?;
    tracing::info!(url = %handle.url(), api = %handle.api_base_url(), "simulator listening");
    cancel.cancelled().await;
    handle.shutdown().await;
    tracing::info!("simulator stopped");
    Ok(())
}

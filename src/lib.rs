//! podcast-worker: registers accounts on podcast platforms at fleet scale. A `fetcher` pulls register tasks
//! from the manager API into Redis Streams; `executor`s consume them with a consumer group, run a [`driver`]
//! per platform and report back. The simulator (the `pw-simulator` crate in `simulator/`, which shares no code
//! with this one) stands in for the manager API in tests and demos.
//!
//! # Layout
//! Floor by floor, ground floor first: a module imports only from floors below its own (never from its own
//! floor or above; `tests/it/layering.rs` holds the exact table and checks it).
//! - Floor 0, importing nothing of the crate:
//!   - [`shutdown`]: SIGINT/SIGTERM into one cancellation token; draining spawned work with a deadline.
//!   - [`task`]: the task, its id, site kind, domain, stream entry and registration result; pure data.
//!   - [`telemetry`]: logging (JSON or pretty).
//! - Floor 1:
//!   - [`config`]: `PW_*` environment variables into typed per-role sections.
//!   - [`driver`]: the `Driver` trait the executor runs tasks through, and its failure kinds.
//!   - [`metrics`]: Prometheus metrics and their label enums, `/metrics` `/healthz` `/readyz`, the stream-depth
//!     sampler.
//! - Floor 2:
//!   - [`browser`]: the headless Chromium pool: one fresh context per task, recycling, crash recovery.
//!   - [`cli`]: what the service binaries share.
//!   - [`image`]: the SSRF-guarded `image_url` download.
//!   - [`mailbox`]: verification mail over IMAP.
//!   - [`streams`]: Redis connections, key layout and stream operations.
//!   - [`task_api`]: the manager API client and its error classification.
//! - Floor 3:
//!   - [`control`]: fleet-wide control in Redis: paused domains, the per-domain circuit breaker, drain requests.
//!   - [`fetcher`]: the fetch loop: manager API → routing → de-duplicated enqueue, leader lease, backpressure.
//!   - [`outbox`]: finished results, encrypted, kept until the manager accepts their report.
//!   - [`totp`]: second-factor codes, never the same time step twice for one secret (across processes through
//!     a ledger in Redis).
//! - Floor 4:
//!   - [`admin`]: `pwctl`, the operator's command (status, dead letters, outbox, consumers, pause, drain).
//!   - [`recipe`]: the recipe language (parse, validate) and the recipe driver running it in the browser.
//! - Floor 5:
//!   - [`executor`]: claims entries, runs drivers, reports back; bounded, drained on SIGTERM.

// Floor 0
pub mod shutdown;
pub mod task;
pub mod telemetry;

// Floor 1
pub mod config;
pub mod driver;
pub mod metrics;

// Floor 2
pub mod browser;
pub mod cli;
pub mod image;
pub mod mailbox;
pub mod streams;
pub mod task_api;

// Floor 3
pub mod control;
pub mod fetcher;
pub mod outbox;
pub mod totp;

// Floor 4
pub mod admin;
pub mod recipe;

// Floor 5
pub mod executor;

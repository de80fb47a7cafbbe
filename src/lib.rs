//! podcast-worker: registers accounts on podcast platforms at fleet scale. A `fetcher` pulls register tasks
//! from the manager API into Redis Streams; `executor`s consume them with a consumer group, run a [`driver`]
//! per platform and report back. The simulator (the `pw-simulator` crate in `simulator/`, which shares no code
//! with this one) stands in for the manager API in tests and demos.
//!
//! # Layout
//! - [`admin`]: `pwctl`, the operator's command (status, dead letters, outbox, consumers, pause, drain).
//! - [`browser`]: the headless Chromium pool: one fresh context per task, recycling, crash recovery.
//! - [`recipe`]: the recipe language (parse, validate) and the recipe driver running it in the browser.
//! - [`task`]: the task, its id, site kind, stream entry and registration result; pure data.
//! - [`config`]: `PW_*` environment variables into typed per-role sections.
//! - [`task_api`]: the manager API client and its error classification.
//! - [`driver`]: the `Driver` trait the executor runs tasks through.
//! - [`control`]: fleet-wide control in Redis: paused domains, the per-domain circuit breaker, drain requests.
//! - [`executor`]: claims entries, runs drivers, reports back; bounded, drained on SIGTERM.
//! - [`streams`]: Redis key layout and stream operations.
//! - [`outbox`]: finished results, encrypted, kept until the manager accepts their report.
//! - [`fetcher`]: the fetch loop: manager API → routing → de-duplicated enqueue, leader lease, backpressure.
//! - [`metrics`]: Prometheus metrics, `/metrics` `/healthz` `/readyz`, and the stream-depth sampler.
//! - [`shutdown`], [`telemetry`]: signals and logging; [`cli`]: what the service binaries share.
//! - [`mailbox`]: verification mail over IMAP; [`totp`]: second-factor codes; [`image`]: the SSRF-guarded
//!   `image_url` download.

pub mod admin;
pub mod browser;
pub mod cli;
pub mod config;
pub mod control;
pub mod driver;
pub mod executor;
pub mod fetcher;
pub mod image;
pub mod mailbox;
pub mod metrics;
pub mod outbox;
pub mod recipe;
pub mod shutdown;
pub mod streams;
pub mod task;
pub mod task_api;
pub mod telemetry;
pub mod totp;

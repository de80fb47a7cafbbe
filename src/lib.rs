//! podcast-worker: registers accounts on podcast platforms at fleet scale. A `fetcher` pulls register tasks
//! from the manager API into Redis Streams; `executor`s consume them with a consumer group, run a [`driver`]
//! per platform and report back. A `simulator` stands in for the manager API in tests and demos.
//!
//! # Layout
//! - [`task`]: the task, its id, site kind, stream entry and registration result; pure data.
//! - [`config`]: `PW_*` environment variables into typed per-role sections.
//! - [`task_api`]: the manager API client and its error classification.
//! - [`driver`]: the `Driver` trait the executor runs tasks through.
//! - [`executor`]: claims entries, runs drivers, reports back; bounded, drained on SIGTERM.
//! - [`streams`]: Redis key layout and stream operations.
//! - [`outbox`]: finished results, encrypted, kept until the manager accepts their report.
//! - [`metrics`]: Prometheus metrics, `/metrics` `/healthz` `/readyz`, and the stream-depth sampler.
//! - [`shutdown`], [`telemetry`]: signals and logging.

pub mod config;
pub mod driver;
pub mod executor;
pub mod metrics;
pub mod outbox;
pub mod shutdown;
pub mod streams;
pub mod task;
pub mod task_api;
pub mod telemetry;

//! The integration test binary: real Redis, real Chromium, real Dovecot, real Prometheus.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod helpers;
mod image;
mod layering;
mod mailbox;
mod metrics;
mod producer;
mod readme;
mod smoke;
mod streams;
mod task_api;

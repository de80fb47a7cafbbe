//! The integration test binary: real Redis, real Chromium, real Dovecot, real Prometheus.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod browser_pool;
mod helpers;
mod smoke;

//! The integration test binary: real Redis, real Chromium, real Dovecot, real Prometheus.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod admin;
mod binaries;
mod broken_listing;
mod browser_pool;
mod chaos;
mod compose;
mod compose_stack;
mod control;
mod demo_e2e;
mod demo_mail;
mod executor;
mod executor_binary;
mod executor_limits;
mod fetcher;
mod helpers;
mod image;
mod kubernetes;
mod layering;
mod lost_listing;
mod mailbox;
mod metrics;
mod monitoring;
mod outbox;
mod pipeline;
mod producer;
mod readme;
mod recipe_run;
mod redis_outage;
mod redis_tls;
mod sentinel;
mod smoke;
mod streams;
mod task_api;
mod totp_ledger;

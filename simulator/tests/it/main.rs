//! The simulator's own tests: the manager API of API.md (ordering, hand-over, retries, faults, audit) and the
//! demo podcast platforms, over HTTP against a simulator started per test on 127.0.0.1:0.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod api;
mod demo_sites;

//! The fetcher binary (wired up by the fetcher work).
fn main() {}

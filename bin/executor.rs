//! The executor binary (wired up by the executor work).
fn main() {}

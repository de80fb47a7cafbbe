//! The simulator binary (wired up by the simulator work).
fn main() {}

//! The simulator's variables and settings section (owned by the simulator work; see `src/simulator/`).

use super::Var;

/// Every variable the simulator reads.
pub const SIMULATOR_VARS: &[Var] = &[];

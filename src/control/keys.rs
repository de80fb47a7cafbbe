//! Where the control state lives in Redis ([`ControlKeys`]) and the JSON records stored there ([`Pause`],
//! [`Breaker`]), as the admin command reads them and the breaker's scripts write them (numbers as text).

use serde::{Deserialize, Deserializer, Serialize};

/// Builds the control keys from the fleet's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlKeys {
    prefix: String,
}

impl ControlKeys {
    /// Keys under `prefix` (e.g. `{pw}`).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// Paused domains (hash: domain → [`Pause`] JSON).
    pub fn paused(&self) -> String {
        format!("{}:control:paused", self.prefix)
    }

    /// Circuit breakers that are not closed (hash: domain → [`Breaker`] JSON).
    pub fn breakers(&self) -> String {
        format!("{}:control:breaker", self.prefix)
    }

    /// One domain's recent recipe/structure failures (zset).
    pub fn failures(&self, domain: &str) -> String {
        format!("{}:control:failures:{domain}", self.prefix)
    }

    /// A drain request for one consumer.
    pub fn drain(&self, consumer: &str) -> String {
        format!("{}:control:drain:{consumer}", self.prefix)
    }

    /// Pattern of every drain request (for SCAN).
    pub(crate) fn drain_pattern(&self) -> String {
        format!("{}:control:drain:*", self.prefix)
    }

    /// The export mark of one outbox record.
    pub fn exported(&self, task_id: &str) -> String {
        format!("{}:control:exported:{task_id}", self.prefix)
    }
}

/// Who paused a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PausedBy {
    /// `pwctl pause`.
    Operator,
    /// The circuit breaker, after too many recipe/structure failures.
    Breaker,
}

impl PausedBy {
    /// `operator` or `breaker`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Breaker => "breaker",
        }
    }
}

/// One paused domain, as stored in [`ControlKeys::paused`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// Who paused it.
    pub by: PausedBy,
    /// Why (shown in `status` and in the `fail` of a task held too long).
    pub reason: String,
    /// When, ms since the Unix epoch.
    #[serde(deserialize_with = "num")]
    pub at_ms: u64,
    /// For a breaker pause: when its probe may run.
    #[serde(
        default,
        deserialize_with = "opt_num",
        skip_serializing_if = "Option::is_none"
    )]
    pub probe_due_ms: Option<u64>,
}

impl Pause {
    /// The `fail` message of a task held past `PW_PAUSE_HOLD_SECS` because of this pause.
    pub(crate) fn fail_message(&self) -> String {
        match self.by {
            PausedBy::Operator => format!("domain paused by operator: {}", self.reason),
            PausedBy::Breaker => format!("domain paused by circuit breaker: {}", self.reason),
        }
    }
}

/// State of a circuit breaker that is not closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// No task of the domain starts until the cool-down has passed.
    Open,
    /// One probe task runs; its result closes or re-opens the breaker.
    HalfOpen,
}

impl BreakerState {
    /// `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// One domain's open or half-open breaker, as stored in [`ControlKeys::breakers`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breaker {
    /// Open or half-open.
    pub state: BreakerState,
    /// When it (last) opened, ms since the epoch.
    #[serde(deserialize_with = "num")]
    pub opened_at_ms: u64,
    /// When the probe may run.
    #[serde(deserialize_with = "num")]
    pub probe_due_ms: u64,
    /// Failures counted when it opened.
    #[serde(default, deserialize_with = "opt_num")]
    pub failures: Option<u64>,
    /// Why it opened (the last failure's message).
    pub reason: String,
    /// The probe task while half-open.
    #[serde(default)]
    pub probe_task: Option<String>,
    /// The consumer running the probe.
    #[serde(default)]
    pub probe_owner: Option<String>,
}

/// Accepts a number or a string holding one (the scripts store numbers as strings).
fn num<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    opt_num(d)?.ok_or_else(|| serde::de::Error::custom("a number"))
}

fn opt_num<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Int(u64),
        Float(f64),
        Text(String),
    }
    Ok(match Option::<N>::deserialize(d)? {
        None => None,
        Some(N::Int(n)) => Some(n),
        Some(N::Float(f)) => Some(f as u64),
        Some(N::Text(t)) => Some(t.parse().map_err(serde::de::Error::custom)?),
    })
}

//! The fate of every failure the executor meets, decided here and nowhere else (STYLE.md §4): manager API
//! errors and driver errors become a [`Failure`]; a report's answer becomes a [`ReportFate`].

use std::time::Duration;

use crate::driver::{DriverError, FailureKind};
use crate::metrics::ErrorClass;
use crate::task_api::ApiError;

/// What happens after something failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// May work later: a transient manager or site failure. `after` is the server's `Retry-After`.
    Retry {
        /// How long the server asked us to wait, if it said.
        after: Option<Duration>,
    },
    /// Retrying cannot help: report `fail` with `reason` (or, for a refused report, drop it loudly).
    Permanent {
        /// A message without secrets.
        reason: String,
    },
    /// The manager no longer has the task (404): drop it, report nothing more.
    Gone,
    /// The manager refuses our API key (401/403): stop claiming work until it is fixed.
    Halt,
}

impl From<&ApiError> for Failure {
    fn from(err: &ApiError) -> Self {
        match err {
            ApiError::NotFound => Self::Gone,
            ApiError::Unauthorized { .. } => Self::Halt,
            ApiError::RateLimited { retry_after } => Self::Retry {
                after: *retry_after,
            },
            ApiError::Transient { .. } => Self::Retry { after: None },
            ApiError::Rejected { .. } | ApiError::InvalidTask { .. } | ApiError::Config { .. } => {
                Self::Permanent {
                    reason: err.to_string(),
                }
            }
        }
    }
}

impl From<&DriverError> for Failure {
    fn from(err: &DriverError) -> Self {
        match err.transient {
            false => Self::Permanent {
                reason: err.to_string(),
            },
            true => Self::Retry { after: None },
        }
    }
}

/// The metric class of a driver failure, from its kind (an unclassified one by its wording).
pub fn driver_error_class(err: &DriverError) -> ErrorClass {
    match err.kind {
        FailureKind::Site => ErrorClass::Site,
        FailureKind::Recipe | FailureKind::Structure => ErrorClass::Recipe,
        FailureKind::Captcha => ErrorClass::Captcha,
        FailureKind::Input => ErrorClass::Input,
        FailureKind::Mail => ErrorClass::Mail,
        FailureKind::Timeout => ErrorClass::Timeout,
        FailureKind::Browser => ErrorClass::Browser,
        FailureKind::Network => ErrorClass::Network,
        FailureKind::Other => error_class(&err.message),
    }
}

/// What became of one `complete`/`fail` report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportFate {
    /// Accepted (or, after a retry whose first answer was lost, a 409 saying it was already applied).
    Accepted,
    /// Not accepted yet (manager down, 5xx, 429, or our key refused): the result stays in the outbox.
    Later {
        /// True when the manager refused our API key: stop claiming.
        halt: bool,
    },
    /// Will never be accepted (404 gone, or refused with 4xx): forget the result, loudly for a refusal.
    Dropped {
        /// Why, for the log (the server's message, no secrets).
        reason: String,
    },
}

impl ReportFate {
    /// The fate of a report's answer.
    pub fn of(result: &Result<(), ApiError>) -> Self {
        let err = match result {
            Ok(()) => return Self::Accepted,
            Err(ApiError::Rejected {
                status: 409,
                retried: true,
                ..
            }) => return Self::Accepted,
            Err(e) => e,
        };
        match Failure::from(err) {
            Failure::Retry { .. } => Self::Later { halt: false },
            Failure::Halt => Self::Later { halt: true },
            Failure::Gone => Self::Dropped {
                reason: "task not found".into(),
            },
            Failure::Permanent { reason } => Self::Dropped { reason },
        }
    }
}

/// The metric class of a failure message (best effort, from its wording): for a `fail` report read back
/// from the outbox, whose record keeps the message; a driver's error has [`driver_error_class`].
pub fn error_class(message: &str) -> ErrorClass {
    let m = message.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| m.contains(w));
    if m.starts_with("recipe error:") {
        ErrorClass::Recipe
    } else if m.starts_with("captcha:") {
        ErrorClass::Captcha
    } else if m.starts_with("site error:") {
        ErrorClass::Site
    } else if has(&["timed out", "timeout"]) {
        ErrorClass::Timeout
    } else if has(&["no driver", "missing", "invalid", "malformed", "link_rss"]) {
        ErrorClass::Input
    } else if has(&["mail", "imap"]) {
        ErrorClass::Mail
    } else if has(&["browser", "chromium", "crash"]) {
        ErrorClass::Browser
    } else if has(&["network", "connect", "dns"]) {
        ErrorClass::Network
    } else if has(&["manager"]) {
        ErrorClass::Api
    } else if has(&["site", "refused", "http"]) {
        ErrorClass::Site
    } else {
        ErrorClass::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task_api::TransientReason;

    #[test]
    fn api_errors_map_to_their_fate() {
        assert_eq!(Failure::from(&ApiError::NotFound), Failure::Gone);
        assert_eq!(
            Failure::from(&ApiError::Unauthorized { status: 401 }),
            Failure::Halt
        );
        let after = Some(Duration::from_secs(3));
        assert_eq!(
            Failure::from(&ApiError::RateLimited { retry_after: after }),
            Failure::Retry { after }
        );
        let t = ApiError::Transient {
            reason: TransientReason::ServerError,
            status: Some(503),
            source: None,
        };
        assert_eq!(Failure::from(&t), Failure::Retry { after: None });
        let bad = ApiError::InvalidTask {
            path: "twofa".into(),
        };
        assert!(
            matches!(Failure::from(&bad), Failure::Permanent { reason } if reason.contains("twofa"))
        );
    }

    #[test]
    fn driver_errors_split_permanent_and_transient() {
        assert_eq!(
            Failure::from(&DriverError::permanent("site said no")),
            Failure::Permanent {
                reason: "site said no".into()
            }
        );
        assert_eq!(
            Failure::from(&DriverError::transient("boom")),
            Failure::Retry { after: None }
        );
        let guard = DriverError::new(FailureKind::Recipe, false, "unexpected page");
        assert_eq!(
            Failure::from(&guard),
            Failure::Permanent {
                reason: "recipe error: unexpected page".into()
            }
        );
        assert_eq!(driver_error_class(&guard), ErrorClass::Recipe);
        let captcha = DriverError::new(FailureKind::Captcha, false, "captcha shown (.h-captcha)");
        assert_eq!(driver_error_class(&captcha), ErrorClass::Captcha);
        // The kind decides, not the wording.
        let mail = DriverError::new(FailureKind::Mail, true, "step 6 (wait_mail) timed out");
        assert_eq!(driver_error_class(&mail), ErrorClass::Mail);
        assert_eq!(
            driver_error_class(&DriverError::transient("attempt timed out")),
            ErrorClass::Timeout
        );
    }

    #[test]
    fn report_fates() {
        assert_eq!(ReportFate::of(&Ok(())), ReportFate::Accepted);
        let conflict = |retried| ApiError::Rejected {
            status: 409,
            message: "wrong state".into(),
            retried,
        };
        assert_eq!(ReportFate::of(&Err(conflict(true))), ReportFate::Accepted);
        assert!(matches!(
            ReportFate::of(&Err(conflict(false))),
            ReportFate::Dropped { .. }
        ));
        assert!(matches!(
            ReportFate::of(&Err(ApiError::NotFound)),
            ReportFate::Dropped { .. }
        ));
        assert_eq!(
            ReportFate::of(&Err(ApiError::Unauthorized { status: 403 })),
            ReportFate::Later { halt: true }
        );
        let down = ApiError::Transient {
            reason: TransientReason::Connection,
            status: None,
            source: None,
        };
        assert_eq!(
            ReportFate::of(&Err(down)),
            ReportFate::Later { halt: false }
        );
    }

    #[test]
    fn error_classes_from_messages() {
        assert_eq!(
            error_class("attempt timed out after 5s"),
            ErrorClass::Timeout
        );
        assert_eq!(
            error_class("no driver for domain x.test"),
            ErrorClass::Input
        );
        assert_eq!(error_class("whatever"), ErrorClass::Other);
    }
}

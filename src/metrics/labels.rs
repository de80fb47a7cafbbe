//! The bounded label values of every metric. Each label is an enum (or a fold into a known list) so an id,
//! email or username can never become a label value, and every combination can be pre-initialised to 0.
//! These enums are the crate's one type per concept: `task_api` reports requests with [`Endpoint`] and
//! [`StatusClass`], `browser` names its restarts with [`RestartReason`]; the `site` label is
//! [`crate::task::Site`] and domains go through [`crate::task::normalise_domain`].

/// Declares a label enum with its wire strings and the list of all values.
macro_rules! label_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in the order they are pre-initialised.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The label value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }
    };
}

label_enum!(
    /// How a task left our hands (`outcome` label of `pw_tasks_finished_total`, `pw_task_duration_seconds`).
    Outcome {
        /// Registered and reported with `complete`.
        Completed => "completed",
        /// Reported with `fail` (permanent failure, invalid input, or retries exhausted).
        Failed => "failed",
        /// The manager refused our report or our `start` (a 4xx other than 404/429): dropped.
        Refused => "refused",
        /// The manager no longer has it (404): dropped without a report.
        Gone => "gone",
        /// Could not be processed (undecodable, too many deliveries): moved to the dead-letter stream.
        DeadLettered => "dead_lettered",
    }
);

label_enum!(
    /// A stage of one task's processing (`stage` label of `pw_task_stage_duration_seconds`).
    Stage {
        /// `GET /links/{id}`: loading the task with its credentials.
        Load => "load",
        /// `POST /start`.
        Start => "start",
        /// The driver (browser automation) run, all attempts included.
        Register => "register",
        /// `POST /complete` or `POST /fail`, outbox included.
        Report => "report",
    }
);

label_enum!(
    /// A manager API endpoint (`endpoint` label).
    Endpoint {
        /// `GET /links`.
        List => "list",
        /// `GET /links/{id}`.
        Get => "get",
        /// `POST /start`.
        Start => "start",
        /// `POST /complete`.
        Complete => "complete",
        /// `POST /fail`.
        Fail => "fail",
    }
);

label_enum!(
    /// The class of a manager API response (`status_class` label).
    StatusClass {
        /// 200–299.
        Success => "2xx",
        /// 400–499 (429 and 401/403 included).
        ClientError => "4xx",
        /// 500–599.
        ServerError => "5xx",
        /// 1xx and 3xx.
        Other => "other",
        /// No HTTP answer: connection refused or dropped, timeout.
        NoAnswer => "none",
    }
);

impl StatusClass {
    /// The class of an HTTP status, or [`StatusClass::NoAnswer`] when there was no response.
    pub fn of(status: Option<u16>) -> Self {
        match status {
            Some(200..=299) => Self::Success,
            Some(400..=499) => Self::ClientError,
            Some(500..=599) => Self::ServerError,
            Some(_) => Self::Other,
            None => Self::NoAnswer,
        }
    }
}

label_enum!(
    /// Why an attempt failed (`error_class` label of `pw_task_retries_total`, `pw_task_errors_total`).
    ErrorClass {
        /// The attempt ran out of time.
        Timeout => "timeout",
        /// Network trouble reaching the site or the image.
        Network => "network",
        /// The browser crashed or misbehaved.
        Browser => "browser",
        /// The site refused (an error shown on the page, a 4xx/5xx from the site).
        Site => "site",
        /// The recipe met a page it was not written for (a `fail_if` guard with `kind = "recipe"`, an
        /// invalid selector, an element missing or never appearing: a step on the page timed out).
        Recipe => "recipe",
        /// A CAPTCHA was shown.
        Captcha => "captcha",
        /// The verification mail did not come, or the mailbox refused us.
        Mail => "mail",
        /// The task's data is invalid (missing field, no driver for the domain, bad URL).
        Input => "input",
        /// The manager API failed.
        Api => "api",
        /// Anything else.
        Other => "other",
    }
);

label_enum!(
    /// Why the browser pool replaced its browser (`reason` label of `pw_browser_restarts_total`).
    RestartReason {
        /// It died or its DevTools connection ended.
        Crash => "crash",
        /// It ran its `max_tasks` (`PW_BROWSER_MAX_TASKS`).
        Recycle => "recycle",
        /// Its process tree passed the PSS limit.
        Memory => "memory",
    }
);

label_enum!(
    /// How a wait for a verification mail ended (`outcome` label of `pw_mail_wait_seconds`).
    MailOutcome {
        /// The mail arrived.
        Found => "found",
        /// It did not arrive in time.
        Timeout => "timeout",
        /// The mailbox could not be read.
        Error => "error",
    }
);

/// The `domain` value every domain outside the known list is folded into.
pub(crate) const OTHER_DOMAIN: &str = "other";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes_cover_every_code() {
        assert_eq!(StatusClass::of(Some(204)), StatusClass::Success);
        assert_eq!(StatusClass::of(Some(429)).as_str(), "4xx");
        assert_eq!(StatusClass::of(Some(503)).as_str(), "5xx");
        assert_eq!(StatusClass::of(None).as_str(), "none");
        assert_eq!(StatusClass::of(Some(302)).as_str(), "other");
        assert_eq!(StatusClass::ServerError.as_str(), "5xx");
        assert_eq!(Endpoint::Complete.as_str(), "complete");
    }

    #[test]
    fn label_values_are_snake_case() {
        let all: Vec<&str> = Outcome::ALL
            .iter()
            .map(|v| v.as_str())
            .chain(Stage::ALL.iter().map(|v| v.as_str()))
            .chain(Endpoint::ALL.iter().map(|v| v.as_str()))
            .chain(ErrorClass::ALL.iter().map(|v| v.as_str()))
            .chain(RestartReason::ALL.iter().map(|v| v.as_str()))
            .chain(MailOutcome::ALL.iter().map(|v| v.as_str()))
            .collect();
        for v in all {
            assert!(v.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{v}");
        }
    }
}

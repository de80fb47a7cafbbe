//! What a finished run says about its domain's recipe, for the circuit breaker: the recipe no longer fits
//! the site's pages (an element missing, a step on the page timing out, a recipe error), the site gave its
//! own verdict (the recipe reached it), or nothing either way. Decided from the driver error's
//! [`FailureKind`], which the recipe runner sets where the failure happens; never from its wording.

use crate::driver::{DriverError, FailureKind};

/// What one run's end tells about the recipe of its domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Registered: the recipe fits.
    Worked,
    /// The site answered with its own verdict (an error it shows, such as "already registered", or a
    /// CAPTCHA): the recipe reached the site's answer, so it fits the pages; not counted by the breaker.
    SiteVerdict,
    /// The recipe does not fit the pages any more: counted by the breaker.
    Structural,
    /// Says nothing about the recipe (network, browser crash, mailbox, input, page-load and whole-run
    /// timeouts, unclassified failures).
    Inconclusive,
}

/// The verdict of a run that ended with `result`.
pub fn verdict(result: Result<(), &DriverError>) -> Verdict {
    let Err(e) = result else {
        return Verdict::Worked;
    };
    match e.kind {
        FailureKind::Site | FailureKind::Captcha => Verdict::SiteVerdict,
        FailureKind::Recipe | FailureKind::Structure => Verdict::Structural,
        FailureKind::Input
        | FailureKind::Mail
        | FailureKind::Timeout
        | FailureKind::Browser
        | FailureKind::Network
        | FailureKind::Other => Verdict::Inconclusive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(kind: FailureKind, message: &str) -> Verdict {
        verdict(Err(&DriverError::new(kind, true, message)))
    }

    #[test]
    fn recipe_and_structure_failures_count() {
        assert_eq!(
            of(FailureKind::Recipe, "invalid selector \"#x\""),
            Verdict::Structural
        );
        for m in [
            "step 4 (click) timed out after 30000 ms (artifacts: a/t-1)",
            "no element matches \"#signup\"",
        ] {
            assert_eq!(of(FailureKind::Structure, m), Verdict::Structural, "{m}");
        }
    }

    #[test]
    fn site_verdicts_and_other_failures_do_not_count() {
        assert_eq!(verdict(Ok(())), Verdict::Worked);
        assert_eq!(
            of(FailureKind::Site, "Email already registered"),
            Verdict::SiteVerdict
        );
        assert_eq!(
            of(FailureKind::Captcha, "captcha shown"),
            Verdict::SiteVerdict
        );
        for kind in [
            FailureKind::Input,
            FailureKind::Mail,
            FailureKind::Timeout,
            FailureKind::Browser,
            FailureKind::Network,
            FailureKind::Other,
        ] {
            assert_eq!(of(kind, "anything"), Verdict::Inconclusive, "{kind:?}");
        }
    }

    #[test]
    fn the_wording_does_not_decide() {
        // Text that once decided the verdict no longer does: the kind is what the runner saw.
        assert_eq!(
            of(
                FailureKind::Other,
                "recipe error: no element matches \"#x\""
            ),
            Verdict::Inconclusive
        );
        assert_eq!(
            of(FailureKind::Timeout, "step 4 (click) timed out after 5 ms"),
            Verdict::Inconclusive
        );
        assert_eq!(
            of(FailureKind::Structure, "site error: already registered"),
            Verdict::Structural
        );
    }
}

//! What a finished run says about its domain's recipe, for the circuit breaker: the recipe no longer fits
//! the site's pages (an element missing, a step timing out, a recipe error), the site gave its own verdict
//! (the recipe reached it), or nothing either way. Decided from the failure's text, the one thing every
//! driver error carries.

/// What one run's end tells about the recipe of its domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Registered: the recipe fits.
    Worked,
    /// The site answered with its own verdict (an error it shows, a CAPTCHA, "already registered"): the
    /// recipe reached the site's answer, so it fits the pages; not counted by the breaker.
    SiteVerdict,
    /// The recipe does not fit the pages any more: counted by the breaker.
    Structural,
    /// Says nothing about the recipe (network, browser crash, mailbox, timeouts of the whole run).
    Inconclusive,
}

/// Steps whose timeout is not the page's structure: loading a page (the network), waiting for mail or a TOTP window.
const NOT_STRUCTURAL_STEPS: &[&str] = &["(goto)", "(wait_mail)", "(totp)"];

/// The verdict of a run that ended with `result` (`Err` holds the failure's message).
pub fn verdict(result: Result<(), &str>) -> Verdict {
    let Err(message) = result else {
        return Verdict::Worked;
    };
    let m = message.trim_start().to_ascii_lowercase();
    if m.starts_with("site error:") || m.starts_with("captcha:") || m.contains("already registered")
    {
        return Verdict::SiteVerdict;
    }
    if m.contains("recipe error:") || m.contains("no element matches") {
        return Verdict::Structural;
    }
    // "step 3 (click) timed out after 30000 ms": a selector that never appeared.
    let step_timeout = m.starts_with("step ") && m.contains(" timed out after ");
    if step_timeout && !NOT_STRUCTURAL_STEPS.iter().any(|s| m.contains(s)) {
        return Verdict::Structural;
    }
    Verdict::Inconclusive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_and_structure_failures_count() {
        for m in [
            "recipe error: invalid selector \"#x\" (artifacts: a/t-1)",
            "step 4 (click) timed out after 30000 ms (artifacts: a/t-1)",
            "no element matches \"#signup\"",
            "step 2 (fill) timed out after 5 ms",
        ] {
            assert_eq!(verdict(Err(m)), Verdict::Structural, "{m}");
        }
    }

    #[test]
    fn site_verdicts_and_other_failures_do_not_count() {
        assert_eq!(verdict(Ok(())), Verdict::Worked);
        for m in [
            "site error: Email already registered (artifacts: a/t)",
            "captcha: captcha shown (artifacts: a/t)",
            "this account is already registered",
        ] {
            assert_eq!(verdict(Err(m)), Verdict::SiteVerdict, "{m}");
        }
        for m in [
            "step 7 (wait_mail) timed out after 180000 ms",
            "step 8 (totp) timed out after 45000 ms",
            "browser crashed",
            "attempt timed out after 600 s",
            "network error: connection reset",
        ] {
            assert_eq!(verdict(Err(m)), Verdict::Inconclusive, "{m}");
        }
    }
}

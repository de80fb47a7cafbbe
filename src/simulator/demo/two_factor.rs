//! TOTP checks of the demo main site (RFC 6238: SHA-1, 6 digits, 30 s steps, one step of skew either way), with
//! totp-rs directly: the simulator shares no code with the worker's own TOTP module.

use totp_rs::{Builder, Secret};

/// The step a code matches at unix time `now`, if any. Secrets may be lowercase, spaced or padded.
pub fn check(secret: &str, code: &str, now: u64) -> Option<u64> {
    let normalised: String = secret
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=' && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let secret = Secret::try_from_base32(&normalised).ok()?;
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Builder::new()
        .with_secret(secret)
        .build_noncompliant()
        .check(code, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_within_one_step_of_skew() {
        let secret = "jbsw y3dp ehpk 3pxp";
        let totp = Builder::new()
            .with_secret(Secret::try_from_base32("JBSWY3DPEHPK3PXP").unwrap())
            .build_noncompliant();
        let code = totp.generate(1_000_000).to_string();
        assert_eq!(check(secret, &code, 1_000_000), Some(1_000_000 / 30));
        assert!(check(secret, &code, 1_000_030).is_some());
        assert!(check(secret, &code, 1_000_100).is_none());
        assert!(check(secret, "12345", 1_000_000).is_none());
    }
}

//! Verification mail over IMAP ([`MailSettings`]): the server and how it is polled.

use std::path::PathBuf;
use std::time::Duration;

use super::source::{ConfigError, Source, invalid};
use super::var::*;

vars! {
    /// Every IMAP variable (executor only).
    MAIL_VARS;
    IMAP_HOST: String = text().or("imap.gmail.com"), [E], "IMAP server of the task mailboxes (IMAP over TLS)";
    IMAP_PORT: u64 = int(1, 65535).or("993"), [E], "IMAP over TLS port";
    IMAP_CA_FILE: Option<PathBuf> = optional_path(), [E], "Optional PEM file of extra CA certificates trusted for IMAP (besides the system roots)";
    IMAP_TIMEOUT_MS: Duration = millis(1, WEEK_MS).or("20000"), [E], "Limit of one IMAP connect, login or command";
    MAIL_POLL_MS: Duration = millis(1, WEEK_MS).or("3000"), [E], "Interval between mailbox searches while waiting for a verification mail";
    MAIL_MARK_SEEN: bool = flag().or("true"), [E], "Mark a used verification mail \\Seen (true/false)";
}
use vars::*;

/// Where and how verification mail is read.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// IMAP server host name (also the TLS server name).
    pub host: String,
    /// IMAP over TLS port.
    pub port: u16,
    /// Extra CA certificates (PEM) trusted besides the system roots, e.g. a test Dovecot's own CA.
    pub ca_file: Option<PathBuf>,
    /// Limit of one connect, login or command.
    pub timeout: Duration,
    /// Interval between searches while waiting.
    pub poll_interval: Duration,
    /// Set `\Seen` on a message once it was used.
    pub mark_seen: bool,
}

impl MailSettings {
    /// Reads the `PW_IMAP_*` and `PW_MAIL_*` variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let host = src.get(&IMAP_HOST)?.trim().to_owned();
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(invalid(&IMAP_HOST, &host, "a host name"));
        }
        Ok(Self {
            host,
            port: src.get(&IMAP_PORT)? as u16,
            ca_file: src.get(&IMAP_CA_FILE)?,
            timeout: src.get(&IMAP_TIMEOUT_MS)?,
            poll_interval: src.get(&MAIL_POLL_MS)?,
            mark_seen: src.get(&MAIL_MARK_SEEN)?,
        })
    }

    /// Settings for a local test server: `localhost:<port>` trusting `ca_file`, polling every 200 ms.
    pub fn for_test(port: u16, ca_file: impl Into<PathBuf>) -> Self {
        Self {
            host: "localhost".into(),
            port,
            ca_file: Some(ca_file.into()),
            timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(200),
            mark_seen: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_bad_values_name_the_variable() {
        let m = MailSettings::from_source(&Source::default()).unwrap();
        assert_eq!((m.host.as_str(), m.port), ("imap.gmail.com", 993));
        assert!(m.ca_file.is_none() && m.mark_seen);
        let mut src = Source::default();
        src.set("PW_IMAP_PORT", "70000");
        let err = MailSettings::from_source(&src).unwrap_err().to_string();
        assert!(err.contains("PW_IMAP_PORT"), "{err}");
    }
}

//! The executor's mail, image and TOTP variables ([`MAIL_VARS`]) and their typed sections: [`MailSettings`]
//! (IMAP server and polling), [`ImageSettings`] (the SSRF-guarded `image_url` download) and
//! [`TotpSettings`]. Each default lives here only.

use std::path::PathBuf;
use std::time::Duration;

use super::source::{ConfigError, Source, invalid};
use super::{Role, Var};

const E: Role = Role::Executor;

macro_rules! var {
    ($id:ident, $name:literal, $default:expr, $help:literal) => {
        #[doc = $help]
        pub const $id: Var = Var {
            name: $name,
            default: $default,
            secret: false,
            roles: &[E],
            help: $help,
        };
    };
}

/// Names of the mail, image and TOTP variables.
pub mod mail_vars {
    use super::*;
    var!(
        IMAP_HOST,
        "PW_IMAP_HOST",
        Some("imap.gmail.com"),
        "IMAP server of the task mailboxes (IMAP over TLS)"
    );
    var!(IMAP_PORT, "PW_IMAP_PORT", Some("993"), "IMAP over TLS port");
    var!(
        IMAP_CA_FILE,
        "PW_IMAP_CA_FILE",
        None,
        "Optional PEM file of extra CA certificates trusted for IMAP (besides the system roots)"
    );
    var!(
        IMAP_TIMEOUT_MS,
        "PW_IMAP_TIMEOUT_MS",
        Some("20000"),
        "Limit of one IMAP connect, login or command"
    );
    var!(
        MAIL_POLL_MS,
        "PW_MAIL_POLL_MS",
        Some("3000"),
        "Interval between mailbox searches while waiting for a verification mail"
    );
    var!(
        MAIL_MARK_SEEN,
        "PW_MAIL_MARK_SEEN",
        Some("true"),
        "Mark a used verification mail \\Seen (true/false)"
    );
    var!(
        IMAGE_ALLOW_PRIVATE,
        "PW_IMAGE_ALLOW_PRIVATE",
        Some("false"),
        "Allow image_url to reach private, loopback and link-local addresses (demo and tests only)"
    );
    var!(
        IMAGE_MAX_BYTES,
        "PW_IMAGE_MAX_BYTES",
        Some("10485760"),
        "Largest image_url download, in bytes"
    );
    var!(
        IMAGE_TIMEOUT_MS,
        "PW_IMAGE_TIMEOUT_MS",
        Some("20000"),
        "Limit of the whole image_url download, redirects included"
    );
    var!(
        IMAGE_DIR,
        "PW_IMAGE_DIR",
        None,
        "Directory for downloaded images; default the system temp directory"
    );
    var!(
        TOTP_MIN_REMAINING_SECS,
        "PW_TOTP_MIN_REMAINING_SECS",
        Some("5"),
        "A TOTP code with fewer seconds left in its window is not used; the next window is awaited"
    );
}
use mail_vars::*;

/// Every mail, image and TOTP variable (executor only).
pub const MAIL_VARS: &[Var] = &[
    IMAP_HOST,
    IMAP_PORT,
    IMAP_CA_FILE,
    IMAP_TIMEOUT_MS,
    MAIL_POLL_MS,
    MAIL_MARK_SEEN,
    IMAGE_ALLOW_PRIVATE,
    IMAGE_MAX_BYTES,
    IMAGE_TIMEOUT_MS,
    IMAGE_DIR,
    TOTP_MIN_REMAINING_SECS,
];

fn boolean(src: &Source, var: &Var) -> Result<bool, ConfigError> {
    let raw = src.required(var)?;
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(var, &raw, "true or false")),
    }
}

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
        let host = src.required(&IMAP_HOST)?.trim().to_owned();
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(invalid(&IMAP_HOST, &host, "a host name"));
        }
        Ok(Self {
            host,
            port: src.int_in(&IMAP_PORT, 1, 65535)? as u16,
            ca_file: src.raw(&IMAP_CA_FILE).map(PathBuf::from),
            timeout: src.millis(&IMAP_TIMEOUT_MS)?,
            poll_interval: src.millis(&MAIL_POLL_MS)?,
            mark_seen: boolean(src, &MAIL_MARK_SEEN)?,
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

/// Limits of the `image_url` download.
#[derive(Debug, Clone)]
pub struct ImageSettings {
    /// Let the URL reach private, loopback, link-local and similar addresses (demo and tests only).
    pub allow_private: bool,
    /// Largest body accepted, in bytes.
    pub max_bytes: u64,
    /// Limit of the whole download, redirects included.
    pub timeout: Duration,
    /// Where the downloaded file is written; `None` means the system temp directory.
    pub dir: Option<PathBuf>,
}

impl ImageSettings {
    /// Reads the `PW_IMAGE_*` variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            allow_private: boolean(src, &IMAGE_ALLOW_PRIVATE)?,
            max_bytes: src.int_in(&IMAGE_MAX_BYTES, 1024, 1 << 30)?,
            timeout: src.millis(&IMAGE_TIMEOUT_MS)?,
            dir: src.raw(&IMAGE_DIR).map(PathBuf::from),
        })
    }
}

/// When a TOTP code may be used.
#[derive(Debug, Clone, Copy)]
pub struct TotpSettings {
    /// Least time left in a code's 30 s window for it to be used.
    pub min_remaining: Duration,
}

impl TotpSettings {
    /// Reads `PW_TOTP_MIN_REMAINING_SECS` (0..=20).
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        Ok(Self {
            min_remaining: Duration::from_secs(src.int_in(&TOTP_MIN_REMAINING_SECS, 0, 20)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let src = Source::default();
        let m = MailSettings::from_source(&src).unwrap();
        assert_eq!((m.host.as_str(), m.port), ("imap.gmail.com", 993));
        assert!(m.ca_file.is_none() && m.mark_seen);
        let i = ImageSettings::from_source(&src).unwrap();
        assert!(!i.allow_private);
        assert_eq!(i.max_bytes, 10 * 1024 * 1024);
        let t = TotpSettings::from_source(&src).unwrap();
        assert_eq!(t.min_remaining, Duration::from_secs(5));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let mut src = Source::default();
        src.set("PW_IMAGE_ALLOW_PRIVATE", "maybe");
        let err = ImageSettings::from_source(&src).unwrap_err().to_string();
        assert!(err.contains("PW_IMAGE_ALLOW_PRIVATE"), "{err}");
        src.set("PW_IMAGE_ALLOW_PRIVATE", "1");
        assert!(ImageSettings::from_source(&src).unwrap().allow_private);
        let mut src = Source::default();
        src.set("PW_IMAP_PORT", "70000");
        let err = MailSettings::from_source(&src).unwrap_err().to_string();
        assert!(err.contains("PW_IMAP_PORT"), "{err}");
        let mut src = Source::default();
        src.set("PW_TOTP_MIN_REMAINING_SECS", "29");
        assert!(TotpSettings::from_source(&src).is_err());
    }
}

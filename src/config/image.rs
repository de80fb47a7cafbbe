//! The SSRF-guarded `image_url` download ([`ImageSettings`]).

use std::path::PathBuf;
use std::time::Duration;

use super::source::{ConfigError, Source};
use super::var::*;

vars! {
    /// Every image download variable (executor only).
    IMAGE_VARS;
    IMAGE_ALLOW_PRIVATE: bool = flag().or("false"), [E], "Allow image_url to reach private, loopback and link-local addresses (demo and tests only)";
    IMAGE_MAX_BYTES: u64 = int(1024, 1 << 30).or("10485760"), [E], "Largest image_url download, in bytes";
    IMAGE_TIMEOUT_MS: Duration = millis(1, WEEK_MS).or("20000"), [E], "Limit of the whole image_url download, redirects included";
    IMAGE_DIR: Option<PathBuf> = optional_path(), [E], "Directory for downloaded images; default the system temp directory";
}
use vars::*;

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
            allow_private: src.get(&IMAGE_ALLOW_PRIVATE)?,
            max_bytes: src.get(&IMAGE_MAX_BYTES)?,
            timeout: src.get(&IMAGE_TIMEOUT_MS)?,
            dir: src.get(&IMAGE_DIR)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_bad_values_name_the_variable() {
        let i = ImageSettings::from_source(&Source::default()).unwrap();
        assert!(!i.allow_private);
        assert_eq!(i.max_bytes, 10 * 1024 * 1024);
        let mut src = Source::default();
        src.set("PW_IMAGE_ALLOW_PRIVATE", "maybe");
        let err = ImageSettings::from_source(&src).unwrap_err().to_string();
        assert!(err.contains("PW_IMAGE_ALLOW_PRIVATE"), "{err}");
        src.set("PW_IMAGE_ALLOW_PRIVATE", "1");
        assert!(ImageSettings::from_source(&src).unwrap().allow_private);
    }
}

//! The SSRF-guarded download of a task's `image_url`: http(s) only, every host resolved and checked against
//! private ranges (see [`address_is_public`]) and then connected to by that checked address (no DNS rebinding),
//! redirects followed by hand and re-checked, size and time capped, and the bytes sniffed to be PNG, JPEG, GIF
//! or WebP. The result is a temporary file for the upload step. It knows nothing about browsers or recipes.

mod guard;
mod sniff;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use reqwest::header::{CONTENT_LENGTH, LOCATION};
use url::Url;

use crate::config::ImageSettings;
pub use guard::address_is_public;
pub use sniff::{ImageKind, sniff};

/// Most redirects followed.
pub(crate) const MAX_REDIRECTS: usize = 5;

/// Why an image could not be fetched. The text is meant for the `fail` report.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Not a URL, or not http(s), or it carries credentials.
    #[error("image_url is not usable: {0}")]
    BadUrl(String),
    /// The host (or a redirect target) resolves only to addresses the guard refuses.
    #[error("image_url points to a private address ({0})")]
    PrivateAddress(String),
    /// The host name does not resolve.
    #[error("image_url host {0} cannot be resolved")]
    Unresolvable(String),
    /// More than `MAX_REDIRECTS` redirects, or a redirect without a usable `Location`.
    #[error("image_url redirects too often or to an invalid place")]
    Redirects,
    /// The server answered with an error status.
    #[error("image_url answered HTTP {0}")]
    Status(u16),
    /// The body is longer than the configured cap.
    #[error("image larger than {0} bytes")]
    TooLarge(u64),
    /// The body is not one of the accepted image types.
    #[error("not an image (content starts with {0})")]
    NotAnImage(String),
    /// The whole download took too long.
    #[error("image_url download timed out after {0:?}")]
    Timeout(Duration),
    /// Connection or transfer failure.
    #[error("image_url could not be downloaded")]
    Network(#[source] reqwest::Error),
    /// The temporary file could not be written.
    #[error("the downloaded image could not be saved")]
    Io(#[source] std::io::Error),
}

impl ImageError {
    /// Whether retrying cannot help: the URL, its target or its content is unacceptable. Network errors,
    /// timeouts and server errors (5xx, 429) are transient.
    pub fn is_permanent(&self) -> bool {
        match self {
            ImageError::Status(code) => !(*code >= 500 || *code == 429 || *code == 408),
            ImageError::Timeout(_)
            | ImageError::Network(_)
            | ImageError::Io(_)
            | ImageError::Unresolvable(_) => false,
            _ => true,
        }
    }
}

/// A downloaded, checked image in a temporary file, deleted when this value is dropped.
#[derive(Debug)]
pub struct DownloadedImage {
    file: tempfile::TempPath,
    /// Detected type.
    pub kind: ImageKind,
    /// Size in bytes.
    pub len: u64,
    /// Width and height in pixels, when the header could be read.
    pub dimensions: Option<(u32, u32)>,
}

impl DownloadedImage {
    /// The file, named with the type's extension, e.g. `/tmp/pw-image-XXXX.png`.
    pub fn path(&self) -> &Path {
        &self.file
    }
}

/// Downloads `image_url` within the settings' limits.
///
/// # Errors
/// [`ImageError`]; see [`ImageError::is_permanent`] for the fate of each.
pub async fn fetch_image(
    settings: &ImageSettings,
    image_url: &str,
) -> Result<DownloadedImage, ImageError> {
    let url = parse_url(image_url.trim())?;
    let bytes = tokio::time::timeout(settings.timeout, download(settings, url))
        .await
        .map_err(|_| ImageError::Timeout(settings.timeout))??;
    let kind = sniff(&bytes).ok_or_else(|| ImageError::NotAnImage(sniff::preview(&bytes)))?;
    let dimensions = sniff::dimensions(kind, &bytes);
    let dir = settings.dir.clone().unwrap_or_else(std::env::temp_dir);
    let len = bytes.len() as u64;
    let file = tokio::task::spawn_blocking(move || write_temp(&dir, kind, &bytes))
        .await
        .map_err(|e| ImageError::Io(std::io::Error::other(e)))??;
    Ok(DownloadedImage {
        file,
        kind,
        len,
        dimensions,
    })
}

fn write_temp(dir: &Path, kind: ImageKind, bytes: &[u8]) -> Result<tempfile::TempPath, ImageError> {
    use std::io::Write;
    let mut file = tempfile::Builder::new()
        .prefix("pw-image-")
        .suffix(&format!(".{}", kind.extension()))
        .tempfile_in(dir)
        .map_err(ImageError::Io)?;
    file.write_all(bytes).map_err(ImageError::Io)?;
    file.flush().map_err(ImageError::Io)?;
    Ok(file.into_temp_path())
}

fn parse_url(raw: &str) -> Result<Url, ImageError> {
    let url = Url::parse(raw).map_err(|_| ImageError::BadUrl("not a valid URL".into()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ImageError::BadUrl(format!(
            "only http and https are allowed, not {}",
            truncate(url.scheme(), 20)
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ImageError::BadUrl("credentials in the URL".into()));
    }
    if url.host().is_none() {
        return Err(ImageError::BadUrl("no host".into()));
    }
    Ok(url)
}

/// Follows up to [`MAX_REDIRECTS`] redirects by hand, checking every hop's addresses, and returns the body.
async fn download(settings: &ImageSettings, mut url: Url) -> Result<Vec<u8>, ImageError> {
    for _ in 0..=MAX_REDIRECTS {
        let addrs = guard::checked_addrs(&url, settings.allow_private).await?;
        let response = send(settings, &url, &addrs).await?;
        let status = response.status();
        if status.is_redirection() {
            let next = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|loc| url.join(loc).ok())
                .ok_or(ImageError::Redirects)?;
            url = parse_url(next.as_str())?;
            continue;
        }
        if !status.is_success() {
            return Err(ImageError::Status(status.as_u16()));
        }
        return read_capped(response, settings.max_bytes).await;
    }
    Err(ImageError::Redirects)
}

/// One request to `url`, connecting only to `addrs` (already checked), no proxy, no automatic redirects.
async fn send(
    settings: &ImageSettings,
    url: &Url,
    addrs: &[SocketAddr],
) -> Result<reqwest::Response, ImageError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(settings.timeout)
        .user_agent(concat!("podcast-worker/", env!("CARGO_PKG_VERSION")));
    if let Some(domain) = url.domain() {
        builder = builder.resolve_to_addrs(domain, addrs);
    }
    let client = builder.build().map_err(ImageError::Network)?;
    client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "image/*")
        .send()
        .await
        .map_err(ImageError::Network)
}

/// Reads the body, refusing it as soon as it passes `max` bytes (or announces that it will).
async fn read_capped(mut response: reqwest::Response, max: u64) -> Result<Vec<u8>, ImageError> {
    let announced = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max) {
        return Err(ImageError::TooLarge(max));
    }
    let mut body = Vec::with_capacity(announced.unwrap_or(64 * 1024).min(max) as usize);
    while let Some(chunk) = response.chunk().await.map_err(ImageError::Network)? {
        if body.len() as u64 + chunk.len() as u64 > max {
            return Err(ImageError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_other_than_http_are_refused() {
        for bad in [
            "ftp://example.com/a.png",
            "file:///etc/passwd",
            "not a url",
            "http://user:pw@example.com/a.png",
        ] {
            let err = parse_url(bad).unwrap_err();
            assert!(matches!(err, ImageError::BadUrl(_)), "{bad}: {err}");
            assert!(err.is_permanent());
            assert!(!err.to_string().contains("pw@"), "{err}");
        }
        assert!(parse_url("https://example.com/a.png").is_ok());
    }

    #[test]
    fn fates_are_decided_by_kind() {
        assert!(ImageError::PrivateAddress("10.0.0.1".into()).is_permanent());
        assert!(ImageError::TooLarge(10).is_permanent());
        assert!(ImageError::Status(404).is_permanent());
        assert!(!ImageError::Status(503).is_permanent());
        assert!(!ImageError::Timeout(Duration::from_secs(1)).is_permanent());
    }
}

//! IMAP mechanics for [`super::Mailbox`]: TLS connection (system roots plus an optional extra CA), login with
//! a refused login told apart from a broken connection, special-use folder discovery, and fetching recent
//! messages. Every network step is bounded by the configured timeout.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_imap::types::NameAttribute;
use futures::TryStreamExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::MailError;
use crate::config::MailSettings;

/// A logged-in IMAP session over TLS.
pub(super) type Session = async_imap::Session<TlsStream<TcpStream>>;

/// Most messages fetched from one folder per search (the newest ones).
const MAX_FETCH: usize = 50;

/// A TLS client trusting the system roots (or, without any, the bundled Mozilla roots) plus `ca_file`.
///
/// # Errors
/// [`MailError::Config`] when the CA file cannot be read or holds no certificate.
pub(super) fn tls_connector(settings: &MailSettings) -> Result<TlsConnector, MailError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if roots.is_empty() {
        roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
    }
    if let Some(path) = &settings.ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|_| {
                MailError::Config(format!(
                    "cannot read CA certificates from {}",
                    path.display()
                ))
            })?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(MailError::Config(format!(
                "no usable CA certificate in {}",
                path.display()
            )));
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MailError::Config(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Runs one network step under the timeout; a timeout is a transient [`MailError::Network`].
pub(super) async fn bounded<T, E, F>(limit: Duration, what: &str, fut: F) -> Result<T, MailError>
where
    F: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(MailError::Network(format!(
            "{what}: {}",
            short(&e.to_string())
        ))),
        Err(_) => Err(MailError::Network(format!(
            "{what}: timed out after {limit:?}"
        ))),
    }
}

fn short(text: &str) -> String {
    text.chars().take(200).collect()
}

/// Connects, reads the greeting and logs in.
///
/// # Errors
/// [`MailError::LoginRefused`] when the server says NO to the login (permanent); [`MailError::Network`]
/// for anything else.
pub(super) async fn login(
    settings: &MailSettings,
    tls: &TlsConnector,
    user: &str,
    password: &str,
) -> Result<Session, MailError> {
    let t = settings.timeout;
    let addr = (settings.host.as_str(), settings.port);
    let tcp = bounded(t, "connect", TcpStream::connect(addr)).await?;
    let name = ServerName::try_from(settings.host.clone())
        .map_err(|_| MailError::Config(format!("invalid IMAP host {}", settings.host)))?;
    let stream = bounded(t, "TLS handshake", tls.connect(name, tcp)).await?;
    let mut client = async_imap::Client::new(stream);
    let greeting = bounded(t, "greeting", client.read_response()).await?;
    if greeting.is_none() {
        return Err(MailError::Network(
            "connection closed before the greeting".into(),
        ));
    }
    match tokio::time::timeout(t, client.login(user, password)).await {
        Err(_) => Err(MailError::Network(format!("login: timed out after {t:?}"))),
        Ok(Ok(session)) => Ok(session),
        Ok(Err((async_imap::error::Error::No(text), _))) if !is_temporary(&text) => {
            Err(MailError::LoginRefused(short(&server_text(&text))))
        }
        Ok(Err((e, _))) => Err(MailError::Network(format!(
            "login: {}",
            short(&e.to_string())
        ))),
    }
}

/// The server's own words from async-imap's `code: .., info: Some("..")` rendering of a NO response.
fn server_text(text: &str) -> String {
    text.split_once("info: Some(\"")
        .and_then(|(_, rest)| rest.rsplit_once("\")"))
        .map_or_else(|| text.to_owned(), |(info, _)| info.replace("\\\"", "\""))
}

/// RFC 5530 response codes that say "try again later" rather than "wrong credentials".
fn is_temporary(text: &str) -> bool {
    ["[UNAVAILABLE]", "[INUSE]", "[SERVERBUG]", "[LIMIT]"]
        .iter()
        .any(|code| text.contains(code))
}

/// The folders to search: INBOX first, then every folder flagged `\Junk` (RFC 6154), or when the server
/// flags none, folders named Junk or Spam (e.g. Gmail's `[Gmail]/Spam`).
pub(super) async fn search_folders(
    session: &mut Session,
    t: Duration,
) -> Result<Vec<String>, MailError> {
    let names: Vec<(String, bool)> = bounded(t, "LIST", async {
        let stream = session.list(Some(""), Some("*")).await?;
        let names: Vec<_> = stream.try_collect().await?;
        Ok::<_, async_imap::error::Error>(
            names
                .iter()
                .filter(|n| !n.attributes().contains(&NameAttribute::NoSelect))
                .map(|n| {
                    (
                        n.name().to_owned(),
                        n.attributes().contains(&NameAttribute::Junk),
                    )
                })
                .collect(),
        )
    })
    .await?;
    let mut folders = vec!["INBOX".to_owned()];
    let flagged: Vec<String> = names
        .iter()
        .filter(|(_, j)| *j)
        .map(|(n, _)| n.clone())
        .collect();
    let junk = if flagged.is_empty() {
        names
            .iter()
            .filter(|(n, _)| {
                let leaf = n
                    .rsplit(['/', '.'])
                    .next()
                    .unwrap_or(n)
                    .to_ascii_lowercase();
                leaf == "junk" || leaf == "spam"
            })
            .map(|(n, _)| n.clone())
            .collect()
    } else {
        flagged
    };
    folders.extend(
        junk.into_iter()
            .filter(|n| !n.eq_ignore_ascii_case("INBOX")),
    );
    Ok(folders)
}

/// A message fetched from a folder.
pub(super) struct Fetched {
    /// UID in the folder.
    pub uid: u32,
    /// INTERNALDATE (arrival at the server), when given.
    pub internal_date: Option<SystemTime>,
    /// The whole RFC 5322 message.
    pub raw: Vec<u8>,
}

/// Selects `folder` and fetches the newest messages that arrived on or after the day before `since` (IMAP
/// SINCE is day-granular; the caller filters precisely), skipping `skip` UIDs. Returns the folder's
/// UIDVALIDITY and the messages, newest first.
pub(super) async fn fetch_recent(
    session: &mut Session,
    t: Duration,
    folder: &str,
    since: SystemTime,
    skip: impl Fn(u32, u32) -> bool,
) -> Result<(u32, Vec<Fetched>), MailError> {
    let selected = bounded(t, "SELECT", session.select(folder)).await?;
    let validity = selected.uid_validity.unwrap_or(0);
    let query = format!(
        "SINCE {}",
        imap_date(
            since
                .checked_sub(Duration::from_secs(86_400))
                .unwrap_or(UNIX_EPOCH),
        )
    );
    let found = bounded(t, "SEARCH", session.uid_search(&query)).await?;
    let mut uids: Vec<u32> = found
        .into_iter()
        .filter(|&uid| !skip(validity, uid))
        .collect();
    uids.sort_unstable_by_key(|&u| std::cmp::Reverse(u));
    uids.truncate(MAX_FETCH);
    if uids.is_empty() {
        return Ok((validity, Vec::new()));
    }
    let set = uids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut fetched: Vec<Fetched> = bounded(t, "FETCH", async {
        let stream = session
            .uid_fetch(&set, "(UID INTERNALDATE BODY.PEEK[])")
            .await?;
        let all: Vec<_> = stream.try_collect().await?;
        Ok::<_, async_imap::error::Error>(
            all.iter()
                .filter_map(|f| {
                    Some(Fetched {
                        uid: f.uid?,
                        internal_date: f.internal_date().and_then(|d| unix(d.timestamp())),
                        raw: f.body()?.to_vec(),
                    })
                })
                .collect(),
        )
    })
    .await?;
    fetched.sort_unstable_by_key(|f| std::cmp::Reverse(f.uid));
    Ok((validity, fetched))
}

/// Sets `\Seen` on one message of the selected folder.
pub(super) async fn mark_seen(
    session: &mut Session,
    t: Duration,
    uid: u32,
) -> Result<(), MailError> {
    bounded(t, "STORE", async {
        let stream = session
            .uid_store(uid.to_string(), "+FLAGS.SILENT (\\Seen)")
            .await?;
        let _: Vec<_> = stream.try_collect().await?;
        Ok::<_, async_imap::error::Error>(())
    })
    .await
}

/// Drops unsolicited responses the server sent meanwhile, so the channel never fills.
pub(super) fn drain(session: &mut Session) {
    while session.unsolicited_responses.try_recv().is_ok() {}
}

/// Seconds since the epoch (may be negative) as a `SystemTime`.
pub(super) fn unix(secs: i64) -> Option<SystemTime> {
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    }
}

/// `d-Mon-yyyy` in UTC, as IMAP SEARCH wants it.
pub(super) fn imap_date(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!("{d}-{}-{y}", MONTHS[(m - 1) as usize])
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31); H. Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imap_dates_are_utc_days() {
        assert_eq!(imap_date(UNIX_EPOCH), "1-Jan-1970");
        assert_eq!(
            imap_date(UNIX_EPOCH + Duration::from_secs(1_709_251_199)),
            "29-Feb-2024"
        );
        assert_eq!(
            imap_date(UNIX_EPOCH + Duration::from_secs(1_735_689_600)),
            "1-Jan-2025"
        );
    }

    #[test]
    fn server_text_is_taken_from_the_no_response() {
        let raw = r#"code: None, info: Some("[AUTHENTICATIONFAILED] Authentication failed.")"#;
        assert_eq!(
            server_text(raw),
            "[AUTHENTICATIONFAILED] Authentication failed."
        );
        assert_eq!(server_text("plain"), "plain");
    }

    #[test]
    fn temporary_refusals_are_recognised() {
        assert!(is_temporary("[UNAVAILABLE] Server busy"));
        assert!(!is_temporary(
            "[AUTHENTICATIONFAILED] Authentication failed."
        ));
    }
}

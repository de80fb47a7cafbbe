//! Mail from the demo platforms. With a Maildir root configured, each message is written as an RFC 5322 file
//! into `<root>/<email>/new/` (or `.Junk/new/` for spam) via `tmp/` and a rename, and every generated mailbox
//! gets a `<email>:{PLAIN}<app password>::::::` line appended to the Dovecot users file. Messages are also kept in
//! memory for `GET /admin/mail`. Files and directories take the owner of the root (Dovecot's mail user).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;
use serde::Serialize;

/// Where mail goes.
#[derive(Debug, Clone, Default)]
pub struct MailOptions {
    /// Maildir root (`mail_location = maildir:<root>/%u`); `None` keeps mail in memory only.
    pub maildir_root: Option<PathBuf>,
    /// Dovecot passwd-file that generated mailboxes are added to.
    pub users_file: Option<PathBuf>,
    /// Probability that a message lands in the spam folder (`.Junk`).
    pub spam: f64,
}

/// A message as sent.
#[derive(Debug, Clone, Serialize)]
pub struct SentMail {
    /// Recipient address.
    pub to: String,
    /// Sender address.
    pub from: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// `INBOX` or `Junk`.
    pub folder: &'static str,
    /// Unix milliseconds.
    pub at_ms: u64,
}

/// A message to send.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// Display name of the sender.
    pub from_name: &'a str,
    /// Sender address.
    pub from: &'a str,
    /// Recipient address.
    pub to: &'a str,
    /// Subject line.
    pub subject: &'a str,
    /// Plain-text body.
    pub text: &'a str,
    /// HTML body.
    pub html: &'a str,
}

/// Delivers demo mail and registers mailboxes.
#[derive(Debug, Default)]
pub struct Mailer {
    options: MailOptions,
    sent: Mutex<Vec<SentMail>>,
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl Mailer {
    /// A mailer with these options.
    pub fn new(options: MailOptions) -> Self {
        Self {
            options,
            sent: Mutex::new(Vec::new()),
        }
    }

    /// Every message sent so far, optionally only those to `to`.
    pub fn sent(&self, to: Option<&str>) -> Vec<SentMail> {
        let sent = self
            .sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sent.iter()
            .filter(|m| to.is_none_or(|t| m.to.eq_ignore_ascii_case(t)))
            .cloned()
            .collect()
    }

    /// Adds a mailbox to the users file (password: the app password without spaces) with one short `O_APPEND`
    /// write, so other writers appending at the same time (tests adding their own users) lose nothing. A line
    /// already present is not added twice; an email already present with another password keeps its first line
    /// (Dovecot uses the first), so give each scenario sharing a users file its own seed.
    ///
    /// # Errors
    /// I/O errors on the users file.
    pub fn add_user(&self, email: &str, app_password: &str) -> std::io::Result<()> {
        let Some(path) = &self.options.users_file else {
            return Ok(());
        };
        let line = format!("{email}:{{PLAIN}}{}::::::", app_password.replace(' ', ""));
        let current = fs::read_to_string(path).unwrap_or_default();
        if current.lines().any(|l| l == line) {
            return Ok(());
        }
        let prefix = format!("{email}:");
        if current.lines().any(|l| l.starts_with(&prefix)) {
            tracing::warn!(
                email,
                "mailbox already in the users file with another password; kept the first"
            );
            return Ok(());
        }
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        file.write_all(format!("{line}\n").as_bytes())
    }

    /// Sends a message: into the Maildir when configured, and always into memory.
    ///
    /// # Errors
    /// I/O errors writing the Maildir.
    pub fn send(&self, mail: &Outgoing<'_>) -> std::io::Result<()> {
        let spam = rand::rng().random_bool(self.options.spam.clamp(0.0, 1.0));
        let folder = if spam { "Junk" } else { "INBOX" };
        if let Some(root) = &self.options.maildir_root {
            let mut dir = root.join(mail.to.to_lowercase());
            if spam {
                dir = dir.join(".Junk");
            }
            write_maildir(root, &dir, &message(mail))?;
        }
        let mut sent = self
            .sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sent.push(SentMail {
            to: mail.to.to_owned(),
            from: mail.from.to_owned(),
            subject: mail.subject.to_owned(),
            text: mail.text.to_owned(),
            folder,
            at_ms: unix_secs_ms().1,
        });
        Ok(())
    }
}

fn unix_secs_ms() -> (u64, u64) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs(), d.as_millis() as u64)
}

/// Writes `bytes` as a new message under `dir` (creating `cur`, `new`, `tmp`), owned like `root`.
fn write_maildir(root: &Path, dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let owner = fs::metadata(root).map(|m| (m.uid(), m.gid())).ok();
    let mut created = Vec::new();
    for sub in [
        dir.to_path_buf(),
        dir.join("cur"),
        dir.join("new"),
        dir.join("tmp"),
    ] {
        if !sub.exists() {
            fs::create_dir_all(&sub)?;
            created.push(sub);
        }
    }
    if let Some(parent) = dir
        .parent()
        .filter(|p| *p != root && dir.ends_with(".Junk"))
    {
        for sub in [parent.join("cur"), parent.join("new"), parent.join("tmp")] {
            if !sub.exists() {
                fs::create_dir_all(&sub)?;
                created.push(sub);
            }
        }
        created.push(parent.to_path_buf());
    }
    let (secs, _) = unix_secs_ms();
    let name = format!(
        "{secs}.M{}P{}Q{}.podcast-sim",
        rand::rng().random::<u32>(),
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    );
    let tmp = dir.join("tmp").join(&name);
    let mut file = fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    created.push(tmp.clone());
    if let Some((uid, gid)) = owner {
        for path in &created {
            // Only needed (and only possible) when we run as root; the directory then belongs to `mail`.
            let _ = std::os::unix::fs::chown(path, Some(uid), Some(gid));
        }
    }
    fs::rename(&tmp, dir.join("new").join(&name))
}

/// The RFC 5322 text of a message: multipart/alternative with a text and an HTML part, CRLF line ends.
pub fn message(mail: &Outgoing<'_>) -> Vec<u8> {
    let (secs, _) = unix_secs_ms();
    let boundary = format!("=_demo_{:016x}", rand::rng().random::<u64>());
    let id = format!("{:032x}", rand::rng().random::<u128>());
    let domain = mail.from.rsplit('@').next().unwrap_or("demo.test");
    let text = [
        format!("Return-Path: <{}>", mail.from),
        format!("Date: {}", rfc5322_date(secs)),
        format!("From: {} <{}>", mail.from_name, mail.from),
        format!("To: <{}>", mail.to),
        format!("Subject: {}", mail.subject),
        format!("Message-ID: <{id}@{domain}>"),
        "MIME-Version: 1.0".to_owned(),
        format!("Content-Type: multipart/alternative; boundary=\"{boundary}\""),
        String::new(),
        format!("--{boundary}"),
        "Content-Type: text/plain; charset=utf-8".to_owned(),
        "Content-Transfer-Encoding: 8bit".to_owned(),
        String::new(),
        mail.text.to_owned(),
        format!("--{boundary}"),
        "Content-Type: text/html; charset=utf-8".to_owned(),
        "Content-Transfer-Encoding: 8bit".to_owned(),
        String::new(),
        mail.html.to_owned(),
        format!("--{boundary}--"),
        String::new(),
    ]
    .join("\n");
    text.replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

/// `Sat, 28 Nov 2026 17:50:16 +0000` for a unix time.
pub fn rfc5322_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        months[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc5322() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_795_888_216),
            "Sat, 28 Nov 2026 17:50:16 +0000"
        );
    }

    #[test]
    fn maildir_delivery_and_users_file() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(MailOptions {
            maildir_root: Some(dir.path().join("mail")),
            users_file: Some(dir.path().join("users")),
            spam: 0.0,
        });
        fs::create_dir_all(dir.path().join("mail")).unwrap();
        mailer
            .add_user("a@demo.test", "abcd efgh ijkl mnop")
            .unwrap();
        mailer
            .add_user("a@demo.test", "abcd efgh ijkl mnop")
            .unwrap();
        mailer
            .add_user("b@demo.test", "qqqq rrrr ssss tttt")
            .unwrap();
        let users = fs::read_to_string(dir.path().join("users")).unwrap();
        assert_eq!(
            users,
            "a@demo.test:{PLAIN}abcdefghijklmnop::::::\nb@demo.test:{PLAIN}qqqqrrrrsssstttt::::::\n"
        );
        let mail = Outgoing {
            from_name: "Demo",
            from: "no-reply@x.test",
            to: "a@demo.test",
            subject: "Hi",
            text: "code 123456",
            html: "<p>code 123456</p>",
        };
        mailer.send(&mail).unwrap();
        let new = fs::read_dir(dir.path().join("mail/a@demo.test/new"))
            .unwrap()
            .count();
        assert_eq!(new, 1);
        assert!(dir.path().join("mail/a@demo.test/cur").is_dir());
        assert_eq!(mailer.sent(Some("A@demo.test")).len(), 1);
    }
}

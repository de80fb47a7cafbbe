//! The test Dovecot started by `scripts/services/dovecot.sh`: fresh users and maildir delivery, following the
//! conventions the simulator uses (users file lines, `new/` files owned like the maildir root, mtime =
//! INTERNALDATE).

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use podcast_worker::config::MailSettings;

/// Where the test Dovecot is; read from the `PW_TEST_*` variables `scripts/services/dovecot.sh` prints.
pub struct TestDovecot {
    /// IMAPS port on 127.0.0.1.
    pub port: u16,
    /// CA certificate (PEM) of the server.
    pub ca: PathBuf,
    /// Maildir root: `<root>/<email>/`.
    pub root: PathBuf,
    /// passwd-file of the users.
    pub users: PathBuf,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run scripts/test, which starts Dovecot (scripts/services/dovecot.sh start \
             prints the variables)"
        )
    })
}

/// The test Dovecot. Panics with instructions when the variables are missing.
pub fn dovecot() -> TestDovecot {
    TestDovecot {
        port: var("PW_TEST_IMAP_PORT")
            .parse()
            .expect("PW_TEST_IMAP_PORT is a port"),
        ca: var("PW_TEST_IMAP_CA").into(),
        root: var("PW_TEST_MAILDIR_ROOT").into(),
        users: var("PW_TEST_MAIL_USERS_FILE").into(),
    }
}

impl TestDovecot {
    /// Mailbox settings for this server (polling every 200 ms).
    pub fn settings(&self) -> MailSettings {
        MailSettings::for_test(self.port, &self.ca)
    }

    /// Adds a new user with a unique address; returns (email, password).
    pub fn add_user(&self) -> (String, String) {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let email = format!("u{}@example.org", &id[..12]);
        let password = format!("pw-{}", &id[12..24]);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.users)
            .expect("open the Dovecot users file");
        // One short write with O_APPEND: atomic next to other tests appending at once.
        file.write_all(format!("{email}:{{PLAIN}}{password}::::::\n").as_bytes())
            .expect("append a user");
        (email, password)
    }

    /// Delivers a raw message into `folder` (`None` = inbox, `Some("Junk")`) with the given arrival time.
    pub fn deliver(&self, email: &str, folder: Option<&str>, raw: &str, arrived: SystemTime) {
        let meta = std::fs::metadata(&self.root).expect("maildir root");
        let owner = (meta.uid(), meta.gid());
        let user_dir = self.root.join(email);
        let dir = match folder {
            None => user_dir.clone(),
            Some(name) => user_dir.join(format!(".{name}")),
        };
        for d in [&user_dir, &dir] {
            mkdir_owned(d, owner);
        }
        for sub in ["cur", "new", "tmp"] {
            mkdir_owned(&dir.join(sub), owner);
        }
        let name = format!(
            "{}.{}.test",
            arrived_secs(arrived),
            uuid::Uuid::new_v4().simple()
        );
        let tmp = dir.join("tmp").join(&name);
        let mut file = std::fs::File::create(&tmp).expect("create message file");
        file.write_all(raw.replace('\n', "\r\n").as_bytes())
            .expect("write message");
        file.set_modified(arrived).expect("set mtime");
        drop(file);
        std::os::unix::fs::chown(&tmp, Some(owner.0), Some(owner.1)).expect("chown message");
        std::fs::rename(&tmp, dir.join("new").join(&name)).expect("move message into new/");
    }

    /// Names of the message files in `cur/` of a folder (Dovecot moves them there and adds flags like `S`).
    pub fn cur_files(&self, email: &str, folder: Option<&str>) -> Vec<String> {
        let dir = match folder {
            None => self.root.join(email),
            Some(name) => self.root.join(email).join(format!(".{name}")),
        };
        std::fs::read_dir(dir.join("cur"))
            .map(|it| {
                it.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn mkdir_owned(dir: &Path, owner: (u32, u32)) {
    if !dir.exists() {
        std::fs::create_dir_all(dir).expect("create maildir directory");
        std::os::unix::fs::chown(dir, Some(owner.0), Some(owner.1))
            .expect("chown maildir directory");
    }
}

fn arrived_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

//! Reading the deployment files without a Docker engine: YAML with merge keys applied, compose's
//! `${NAME:-default}` interpolation (unset environment, so the defaults), and per-service environments.

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use super::monitoring::repo_file;

/// A YAML file of the repository with `<<` merge keys applied.
pub fn yaml(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo_file(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut v: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
    v.apply_merge().unwrap();
    v
}

/// Every document of a multi-document YAML file.
pub fn yaml_docs(rel: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo_file(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| {
            let mut v = serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{rel}: {e}"));
            Value::apply_merge(&mut v).unwrap();
            v
        })
        .collect()
}

/// Compose interpolation with nothing set: `${A:-x}` and `${A-x}` give `x`, `${A}` and `$A` give "".
/// Panics on `${A:?msg}`, which would stop `docker compose up` without a `.env`.
pub fn interpolate(text: &str) -> String {
    let re = regex::Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}").unwrap();
    let out = re.replace_all(text, |c: &regex::Captures| {
        match c.get(2).map(|m| m.as_str()) {
            Some(":-" | "-") => c[3].to_owned(),
            Some(_) => panic!("{} is required by the compose file: {}", &c[1], &c[3]),
            None => String::new(),
        }
    });
    assert!(!out.contains("${"), "uninterpolated value: {text}");
    out.replace("$$", "$")
}

/// A service's environment, interpolated, as name → value.
pub fn service_env(compose: &Value, service: &str) -> BTreeMap<String, String> {
    let env = &compose["services"][service]["environment"];
    let map = env
        .as_mapping()
        .unwrap_or_else(|| panic!("{service}: environment must be a mapping"));
    map.iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => interpolate(s),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => panic!("{service}: odd value {other:?}"),
            };
            (k.as_str().unwrap().to_owned(), value)
        })
        .collect()
}

/// The strings of a YAML sequence (empty when absent).
pub fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .into_iter()
        .flatten()
        .map(|s| match s {
            Value::String(s) => s.clone(),
            other => serde_yaml_ng::to_string(other).unwrap().trim().to_owned(),
        })
        .collect()
}

/// The port of a `host:port` address.
pub fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}

/// The demo profile's mail server for real: `deploy/compose/demo-init.sh` makes the certificates and mail
/// directory in a temp dir, and `/usr/sbin/dovecot` runs `deploy/compose/dovecot.conf` with its paths moved
/// there and IMAPS on a free port. Killed on drop.
pub struct DemoMail {
    /// Holds certs/, mail/, run/ and the rewritten config.
    pub dir: tempfile::TempDir,
    /// IMAPS port on 127.0.0.1.
    pub port: u16,
    child: std::process::Child,
}

impl Drop for DemoMail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DemoMail {
    /// Runs the init script and starts Dovecot; panics with its log when it does not come up.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (certs, mail, run) = (
            dir.path().join("certs"),
            dir.path().join("mail"),
            dir.path().join("run"),
        );
        let init = std::process::Command::new("sh")
            .arg(repo_file("deploy/compose/demo-init.sh"))
            .env("DEMO_CERTS", &certs)
            .env("DEMO_MAIL", &mail)
            .output()
            .expect("sh");
        assert!(
            init.status.success(),
            "demo-init.sh: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = std::fs::read_to_string(repo_file("deploy/compose/dovecot.conf"))
            .unwrap()
            .replace("/demo-certs", certs.to_str().unwrap())
            .replace("/srv/mail", mail.to_str().unwrap())
            .replace("port = 993", &format!("port = {port}"))
            .replace("listen = *", "listen = 127.0.0.1");
        std::fs::create_dir_all(&run).unwrap();
        let conf_path = dir.path().join("dovecot.conf");
        std::fs::write(&conf_path, format!("base_dir = {}\n{conf}", run.display())).unwrap();
        let dovecot = "/usr/sbin/dovecot";
        assert!(
            std::path::Path::new(dovecot).exists(),
            "{dovecot} not found; install it: apt-get install dovecot-imapd (scripts/test does)"
        );
        let log = std::fs::File::create(dir.path().join("dovecot.log")).unwrap();
        let child = std::process::Command::new(dovecot)
            .args(["-F", "-c"])
            .arg(&conf_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dovecot");
        let mut demo = Self { dir, port, child };
        let addr = format!("127.0.0.1:{port}");
        super::eventually(
            std::time::Duration::from_secs(15),
            "dovecot to listen",
            || {
                if let Ok(Some(status)) = demo.child.try_wait() {
                    panic!("dovecot exited with {status}: {}", demo.log());
                }
                let addr = addr.clone();
                async move { tokio::net::TcpStream::connect(addr).await.ok().map(|_| ()) }
            },
        )
        .await;
        demo
    }

    /// What Dovecot logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Path of the demo CA certificate.
    pub fn ca(&self) -> std::path::PathBuf {
        self.dir.path().join("certs/ca.pem")
    }

    /// Delivers a message the way the simulator's demo platforms do (`src/simulator/mail.rs`): the mailbox
    /// in the users file with its app password, the message as a file in `<root>/<address>/new/`.
    pub fn deliver(&self, to: &str, app_password: &str, subject: &str, body: &str) {
        let root = self.dir.path().join("mail");
        let users = root.join("dovecot-users");
        let mut text = std::fs::read_to_string(&users).unwrap();
        text.push_str(&format!("{to}:{{PLAIN}}{app_password}::::::\n"));
        std::fs::write(&users, text).unwrap();
        let new = root.join(to).join("new");
        std::fs::create_dir_all(&new).unwrap();
        for sub in ["cur", "tmp"] {
            std::fs::create_dir_all(root.join(to).join(sub)).unwrap();
        }
        let date = "Sat, 28 Nov 2026 12:00:00 +0000";
        let message = format!(
            "From: Demo Platform <noreply@main.demo.test>\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n\
             Message-ID: <{}@main.demo.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
            uuid::Uuid::new_v4().simple()
        );
        std::fs::write(
            new.join(format!("{}.demo", uuid::Uuid::new_v4().simple())),
            message,
        )
        .unwrap();
        let status = std::process::Command::new("chown")
            .args(["-R", "10001:10001"])
            .arg(&root)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

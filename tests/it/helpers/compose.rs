//! Reading the deployment files without a Docker engine: YAML with merge keys applied, compose's
//! interpolation (`${A:-x}`, `${A-x}`, `${A:?msg}`) and override merge, per-service environments, and the
//! demo mail server run for real.

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

/// Compose interpolation with `vars` as the environment (and `.env`): `${A:-x}` gives `x` when `A` is unset
/// or empty, `${A-x}` only when unset; `${A:?msg}` fails when unset or empty, `${A?msg}` only when unset;
/// `${A}` gives the value or ""; `$$` is a literal `$`. The error names the variable and its message.
pub fn interpolate(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}").unwrap()
    });
    let re = &*RE;
    let mut error = None;
    let out = re.replace_all(text, |c: &regex::Captures| {
        let Some(name) = c.get(1) else {
            return "$".to_owned();
        };
        let value = vars.get(name.as_str());
        let empty = value.is_none_or(|v| v.is_empty());
        match c.get(2).map(|m| m.as_str()) {
            Some(":-") if empty => c[3].to_owned(),
            Some("-") if value.is_none() => c[3].to_owned(),
            Some(":?") if empty => {
                error.get_or_insert(format!("{} is required: {}", name.as_str(), &c[3]));
                String::new()
            }
            Some("?") if value.is_none() => {
                error.get_or_insert(format!("{} is required: {}", name.as_str(), &c[3]));
                String::new()
            }
            _ => value.cloned().unwrap_or_default(),
        }
    });
    match error {
        Some(e) => Err(e),
        None => Ok(out.into_owned()),
    }
}

/// Every string value of a YAML tree interpolated.
pub fn interpolate_tree(v: &Value, vars: &BTreeMap<String, String>) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => Value::String(interpolate(s, vars)?),
        Value::Sequence(seq) => Value::Sequence(
            seq.iter()
                .map(|x| interpolate_tree(x, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Mapping(m) => {
            let mut out = serde_yaml_ng::Mapping::new();
            for (k, x) in m {
                out.insert(k.clone(), interpolate_tree(x, vars)?);
            }
            Value::Mapping(out)
        }
        other => other.clone(),
    })
}

/// Compose's merge of an override file into a base: mappings merge key by key, `command` and `entrypoint`
/// are replaced, other sequences (volumes, ports, secrets, ...) are concatenated.
pub fn merge_override(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                let replace = matches!(k.as_str(), Some("command" | "entrypoint"));
                match b.get_mut(k) {
                    Some(existing) if !replace => merge_override(existing, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Sequence(b), Value::Sequence(o)) => b.extend(o.iter().cloned()),
        (b, o) => *b = o.clone(),
    }
}

/// `KEY=value` lines of an env file (comments and blank lines skipped).
pub fn env_file(rel: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(repo_file(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("{rel}: {l}"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// A service's environment as name → value (numbers and booleans as text; empty when none).
pub fn service_env(compose: &Value, service: &str) -> BTreeMap<String, String> {
    let Some(map) = compose["services"][service]["environment"].as_mapping() else {
        return BTreeMap::new();
    };
    map.iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => String::new(),
                other => panic!("{service}: odd value {other:?}"),
            };
            (k.as_str().unwrap().to_owned(), value)
        })
        .collect()
}

/// Compose files layered (first the base, then overrides), each interpolated with `vars` as compose does
/// before merging.
pub fn stack(files: &[&str], vars: &BTreeMap<String, String>) -> Result<Value, String> {
    let mut merged = Value::Null;
    for file in files {
        let layer = interpolate_tree(&yaml(file), vars).map_err(|e| format!("{file}: {e}"))?;
        if merged.is_null() {
            merged = layer;
        } else {
            merge_override(&mut merged, &layer);
        }
    }
    Ok(merged)
}

/// A compose size (`512m`, `1g`, `2560m`, `512mb`, bytes without a unit) in MiB.
pub fn mebibytes(size: &str) -> Option<u64> {
    let s = size.trim().to_ascii_lowercase();
    let s = s
        .strip_suffix('b')
        .filter(|r| !r.ends_with(char::is_numeric))
        .unwrap_or(&s);
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits.parse().ok()?;
    match unit {
        "" => Some(n / (1024 * 1024)),
        "k" => Some(n / 1024),
        "m" => Some(n),
        "g" => Some(n * 1024),
        _ => None,
    }
}

/// A compose duration (`660s`, `11m`, `1m30s`) in seconds.
pub fn seconds(duration: &str) -> Option<u64> {
    let re = regex::Regex::new(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$").unwrap();
    let c = re.captures(duration.trim())?;
    let part = |i: usize| c.get(i).map_or(Ok(0), |m| m.as_str().parse::<u64>());
    Some(part(1).ok()? * 3600 + part(2).ok()? * 60 + part(3).ok()?)
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

/// The demo override's mail server for real: `deploy/compose/demo-init.sh` makes the certificates and mail
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

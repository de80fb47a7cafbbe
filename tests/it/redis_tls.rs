//! `rediss://` as README documents it: a redis-server with TLS only (its own CA, made here with openssl),
//! reached by the real `pwctl` binary. With the CA in the trust store (`SSL_CERT_FILE`, which the system-roots
//! loader reads) it connects; without it the certificate is refused, so the server certificate is checked. The
//! same for `rediss+sentinel://` through a TLS-only sentinel.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::monitoring::free_addr;

const PASSWORD: &str = "tls-pass-3f9";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a `localhost` server certificate it signed, in `dir`.
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=pw test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

struct TlsRedis(Child);

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pwctl_status(url: &str, empty: &Path, ca: Option<&Path>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pwctl"));
    cmd.env_clear()
        .env("PW_REDIS_URL", url)
        .env("PW_KEY_PREFIX", "{tls-test}")
        // An empty directory: only SSL_CERT_FILE decides which roots are trusted.
        .env("SSL_CERT_DIR", empty);
    match ca {
        Some(ca) => cmd.env("SSL_CERT_FILE", ca),
        None => cmd.env("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"),
    };
    cmd.args(["--json", "status"]).output().unwrap()
}

#[test]
fn rediss_url_connects_over_tls_and_checks_the_server_certificate() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let port: u16 = free_addr().rsplit_once(':').unwrap().1.parse().unwrap();
    let d = |f: &str| dir.path().join(f);
    let server = Command::new("redis-server")
        .args(["--port", "0", "--bind", "127.0.0.1", "--save", ""])
        .args(["--tls-port", &port.to_string(), "--tls-auth-clients", "no"])
        .arg("--tls-cert-file")
        .arg(d("server.pem"))
        .arg("--tls-key-file")
        .arg(d("server.key"))
        .arg("--tls-ca-cert-file")
        .arg(d("ca.pem"))
        .args(["--requirepass", PASSWORD])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server");
    let _server = TlsRedis(server);
    wait_listening(port);
    let empty = tempfile::tempdir().unwrap();
    let url = format!("rediss://:{PASSWORD}@localhost:{port}");
    let out = pwctl_status(&url, empty.path(), Some(&d("ca.pem")));
    // The same server with only the public roots trusted: the certificate is refused.
    assert_trusted_then_refused(&url, empty.path(), &out);
}

/// Both sides of `out` (a `pwctl` run), for assertion messages.
fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `out` (`pwctl status` with the test CA trusted) succeeded with a status document, and the same `url` with
/// only the public roots trusted is refused for its certificate; neither output shows the password.
fn assert_trusted_then_refused(url: &str, empty: &Path, out: &std::process::Output) {
    assert!(out.status.success(), "{}", output_text(out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(status.is_object(), "{status}");
    let refused = pwctl_status(url, empty, None);
    let text = output_text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");
    for o in [out, &refused] {
        assert!(!output_text(o).contains(PASSWORD), "{}", output_text(o));
    }
}

/// Waits until something accepts connections on `port` (a TLS-only node answers no plain PING).
fn wait_listening(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {port}");
}

/// `rediss+sentinel://` as docs/operations.md documents it: a TLS-only master and a TLS-only sentinel (the
/// sentinel talks TLS to the master too: `tls-replication yes`), both with certificates of the CA made here.
/// The real `pwctl` asks the sentinel over TLS for the master, then reaches the master over TLS; with only the
/// public roots trusted the sentinel's certificate is refused.
#[test]
fn rediss_sentinel_url_reaches_the_master_over_tls_through_a_tls_sentinel() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let d = |f: &str| dir.path().join(f).display().to_string();
    let port_of = || -> u16 { free_addr().rsplit_once(':').unwrap().1.parse().unwrap() };
    let (master_port, sentinel_port) = (port_of(), port_of());
    let tls = format!(
        "port 0\nbind 127.0.0.1\ntls-port {{port}}\ntls-auth-clients no\ntls-cert-file {}\ntls-key-file {}\n\
         tls-ca-cert-file {}\ntls-replication yes\n",
        d("server.pem"),
        d("server.key"),
        d("ca.pem")
    );
    let node = |bin: &str, name: &str, port: u16, rest: String| {
        let conf = dir.path().join(name);
        let text = format!(
            "{}dir {}\n{rest}",
            tls.replace("{port}", &port.to_string()),
            dir.path().display()
        );
        std::fs::write(&conf, text).unwrap();
        let child = Command::new(bin)
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{bin} (apt-get install redis-server redis-sentinel): {e}"));
        wait_listening(port);
        TlsRedis(child)
    };
    let master_rest = format!("requirepass {PASSWORD}\nsave \"\"\n");
    let _master = node("redis-server", "master.conf", master_port, master_rest);
    let sentinel_rest = format!(
        "sentinel monitor mymaster 127.0.0.1 {master_port} 1\nsentinel auth-pass mymaster {PASSWORD}\n"
    );
    let _sentinel = node(
        "redis-sentinel",
        "sentinel.conf",
        sentinel_port,
        sentinel_rest,
    );

    let empty = tempfile::tempdir().unwrap();
    let url = format!("rediss+sentinel://:{PASSWORD}@localhost:{sentinel_port}/mymaster");
    let ca = dir.path().join("ca.pem");
    // The sentinel needs a moment to connect to the master and know it.
    let mut out = pwctl_status(&url, empty.path(), Some(&ca));
    for _ in 0..50 {
        if out.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        out = pwctl_status(&url, empty.path(), Some(&ca));
    }
    assert_trusted_then_refused(&url, empty.path(), &out);
}

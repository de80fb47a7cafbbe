//! `rediss://` as README documents it: a redis-server with TLS only (its own CA, made here with openssl),
//! reached by the real `pwctl` binary. With the CA in the trust store (`SSL_CERT_FILE`, which the system-roots
//! loader reads) it connects; without it the certificate is refused, so the server certificate is checked.

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
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let empty = tempfile::tempdir().unwrap();
    let url = format!("rediss://:{PASSWORD}@localhost:{port}");
    let out = pwctl_status(&url, empty.path(), Some(&d("ca.pem")));
    let text = |o: &std::process::Output| {
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(out.status.success(), "{}", text(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(status.is_object(), "{status}");

    // The same server with only the public roots trusted: the certificate is refused.
    let refused = pwctl_status(&url, empty.path(), None);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("UnknownIssuer"),
        "{}",
        text(&refused)
    );
    for o in [&out, &refused] {
        assert!(!text(o).contains(PASSWORD), "{}", text(o));
    }
}

//! The demo podcast platforms at the HTTP level (a cookie-keeping reqwest client, demo host names resolved to the
//! simulator): main-site sign-up, mailed code, password + TOTP login, show with cover, feed; sub-site sign-up with
//! a mailed link, RSS import with a mailed ownership code; "already registered"; step faults; Maildir delivery.

use std::time::{Duration, Instant};

use pw_simulator::{
    self as simulator, DemoFaults, MailOptions, ScenarioSpec, SimulatorHandle, SimulatorOptions,
};
use regex::Regex;
use serde_json::{Value, json};
use totp_rs::{Builder, Secret};

const MAIN: &str = "main.demo.test";
const SUB: &str = "sub-a.demo.test";

struct Demo {
    sim: SimulatorHandle,
    web: reqwest::Client,
    task: Value,
}

impl Demo {
    async fn start(options: SimulatorOptions) -> Self {
        let sim = simulator::spawn(options).await.unwrap();
        let spec = ScenarioSpec {
            requests: 1,
            subs_per_request: 1,
            seed: rand_seed(),
            ..ScenarioSpec::default()
        };
        let tasks = sim.add_scenario(&spec);
        let web = browser_like(&sim);
        let task = web
            .get(format!("{}/admin/tasks/{}", sim.url(), tasks[0].id))
            .send()
            .await
            .unwrap();
        let task = task.json::<Value>().await.unwrap()["task"].clone();
        Self { sim, web, task }
    }

    fn field(&self, name: &str) -> String {
        self.task[name].as_str().unwrap().to_owned()
    }

    async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> (u16, String) {
        let r = self.web.post(url).form(form).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// The last mail to the task's address whose subject contains `subject`, and the first match of `pattern`.
    fn mailed(&self, subject: &str, pattern: &str) -> String {
        let mails = self.sim.mail(Some(&self.field("email")));
        let mail = mails
            .iter()
            .rev()
            .find(|m| m.subject.contains(subject))
            .expect("mail sent");
        let re = Regex::new(pattern).unwrap();
        re.captures(&mail.text).expect("pattern in mail")[1].to_owned()
    }

    fn totp_now(&self) -> String {
        let secret: String = self
            .field("twofa")
            .to_uppercase()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let totp = Builder::new()
            .with_secret(Secret::try_from_base32(&secret).unwrap())
            .build_noncompliant();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        totp.generate(now).to_string()
    }

    /// Signs up, verifies and logs in on the main site (password + TOTP); returns the dashboard HTML and the
    /// TOTP code used.
    async fn main_account(&self) -> (String, String) {
        let (email, password) = (self.field("email"), self.field("password"));
        let (status, html) = self
            .post_form(
                &format!("http://{MAIN}/signup"),
                &[
                    ("email", &email),
                    ("username", "mainuser1"),
                    ("password", &password),
                ],
            )
            .await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains(r#"id="verify-form""#), "{html}");
        let code = self.mailed("verification code", r"code is (\d{6})");
        let (status, html) = self
            .post_form(
                &format!("http://{MAIN}/verify"),
                &[("email", &email), ("code", &code)],
            )
            .await;
        assert!(
            status == 200 && html.contains(r#"id="login-form""#),
            "{html}"
        );
        let (_, html) = self
            .post_form(
                &format!("http://{MAIN}/login"),
                &[("email", &email), ("password", &password)],
            )
            .await;
        assert!(html.contains(r#"id="totp-form""#), "{html}");
        let code = self.totp_now();
        let (status, html) = self
            .post_form(&format!("http://{MAIN}/login/2fa"), &[("code", &code)])
            .await;
        assert_eq!(status, 200, "{html}");
        (html, code)
    }

    /// Creates a show with a cover and enables its feed; returns the feed URL shown on the page.
    async fn main_feed(&self) -> String {
        let cover = self
            .web
            .get(self.field("image_url"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let (status, html) = self.create_show("My Shop Show", &cover).await;
        assert!(
            status == 200 && html.contains(r#"id="enable-rss""#),
            "{html}"
        );
        let action = Regex::new(r#"id="rss-form" method="post" action="([^"]+)""#)
            .unwrap()
            .captures(&html)
            .unwrap()[1]
            .to_owned();
        let (_, html) = self.post_form(&format!("http://{MAIN}{action}"), &[]).await;
        Regex::new(r#"id="rss-url" href="([^"]+)""#)
            .unwrap()
            .captures(&html)
            .expect("feed URL on the page")[1]
            .to_owned()
    }

    async fn create_show(&self, title: &str, cover: &[u8]) -> (u16, String) {
        let boundary = "XdemoBoundary42";
        let mut body = Vec::new();
        for (name, value) in [("title", title), ("about", "<p>About the show</p>")] {
            body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").bytes());
        }
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"cover\"; filename=\"c.png\"\r\nContent-Type: image/png\r\n\r\n").bytes());
        body.extend_from_slice(cover);
        body.extend(format!("\r\n--{boundary}--\r\n").bytes());
        let r = self
            .web
            .post(format!("http://{MAIN}/shows/new"))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn check_login(&self, domain: &str, login: &str, password: &str) -> bool {
        let r = self
            .web
            .post(format!("{}/admin/demo/check-login", self.sim.url()))
            .json(&json!({"domain": domain, "login": login, "password": password}))
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["ok"] == true
    }
}

fn rand_seed() -> u64 {
    u64::from(uuid::Uuid::new_v4().as_u128() as u32)
}

/// A client that keeps cookies and reaches the demo host names at the simulator, like a mapped Chromium.
fn browser_like(sim: &SimulatorHandle) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .resolve(MAIN, sim.addr())
        .resolve(SUB, sim.addr())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[tokio::test]
async fn demo_main_site_registers_logs_in_with_totp_and_serves_the_feed_with_the_owner_email() {
    let demo = Demo::start(SimulatorOptions::for_test("k")).await;
    let (dashboard, _) = demo.main_account().await;
    assert!(
        dashboard.contains(&format!(
            r#"<p id="account-email">{}</p>"#,
            demo.field("email")
        )),
        "{dashboard}"
    );
    let (status, html) = demo.create_show("Broken", b"not an image at all").await;
    assert_eq!(status, 422);
    assert!(html.contains("The cover must be an image"), "{html}");

    let feed_url = demo.main_feed().await;
    assert!(
        feed_url.starts_with(&format!("http://{MAIN}/feeds/")),
        "{feed_url}"
    );
    let rss = demo
        .web
        .get(&feed_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        rss.contains(&format!(
            "<itunes:email>{}</itunes:email>",
            demo.field("email")
        )),
        "{rss}"
    );
    assert!(rss.contains("<title>My Shop Show</title>"));
    assert!(
        demo.check_login(MAIN, &demo.field("email"), &demo.field("password"))
            .await
    );
    assert!(
        demo.check_login(MAIN, "mainuser1", &demo.field("password"))
            .await,
        "username works too"
    );
    assert!(!demo.check_login(MAIN, &demo.field("email"), "wrong").await);

    let (status, html) = demo
        .post_form(
            &format!("http://{MAIN}/signup"),
            &[
                ("email", &demo.field("email")),
                ("username", "other1"),
                ("password", "Whatever123!"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        html.contains(r#"id="error""#) && html.contains("This email is already registered"),
        "{html}"
    );
}

#[tokio::test]
async fn demo_main_site_refuses_a_wrong_or_reused_totp_code() {
    let demo = Demo::start(SimulatorOptions::for_test("k")).await;
    let (_, used) = demo.main_account().await;
    let (email, password) = (demo.field("email"), demo.field("password"));
    let (_, html) = demo
        .post_form(
            &format!("http://{MAIN}/login"),
            &[("email", &email), ("password", &password)],
        )
        .await;
    assert!(html.contains(r#"id="totp-form""#));
    let (status, html) = demo
        .post_form(&format!("http://{MAIN}/login/2fa"), &[("code", "000000")])
        .await;
    assert!(
        status == 422 && html.contains("Invalid authentication code"),
        "{html}"
    );
    let (status, html) = demo
        .post_form(&format!("http://{MAIN}/login/2fa"), &[("code", &used)])
        .await;
    assert!(
        status == 422 && html.contains("already used"),
        "the same code twice: {html}"
    );
}

#[tokio::test]
async fn demo_sub_site_confirms_by_link_and_imports_the_main_feed_with_a_mailed_ownership_code() {
    let demo = Demo::start(SimulatorOptions::for_test("k")).await;
    demo.main_account().await;
    let feed_url = demo.main_feed().await;

    let (email, password) = (demo.field("email"), demo.field("password"));
    let form = [
        ("email", email.as_str()),
        ("username", "subuser1"),
        ("password", password.as_str()),
    ];
    let (status, html) = demo.post_form(&format!("http://{SUB}/signup"), &form).await;
    assert!(
        status == 200 && html.contains(r#"id="check-inbox""#),
        "{html}"
    );
    let (_, html) = demo
        .post_form(
            &format!("http://{SUB}/login"),
            &[("email", &email), ("password", &password)],
        )
        .await;
    assert!(
        html.contains("Please confirm your email address first"),
        "{html}"
    );
    let link = demo.mailed("Confirm your", r"(http://\S+/confirm/\S+)");
    assert!(
        link.starts_with(&format!("http://{SUB}/confirm/")),
        "{link}"
    );
    let html = demo
        .web
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(r#"id="import-show""#),
        "signed in after confirming: {html}"
    );

    let (status, html) = demo
        .post_form(
            &format!("http://{SUB}/import"),
            &[("rss_url", "http://127.0.0.1:9/nothing.xml")],
        )
        .await;
    assert!(
        status == 422 && html.contains("We could not fetch this feed"),
        "{html}"
    );
    let (status, html) = demo
        .post_form(&format!("http://{SUB}/import"), &[("rss_url", &feed_url)])
        .await;
    assert!(
        status == 200 && html.contains(r#"id="ownership-form""#),
        "{html}"
    );
    let action = Regex::new(r#"id="ownership-form" method="post" action="([^"]+)""#)
        .unwrap()
        .captures(&html)
        .unwrap()[1]
        .to_owned();
    let (status, _) = demo
        .post_form(&format!("http://{SUB}{action}"), &[("code", "999999x")])
        .await;
    assert_eq!(status, 422);
    let code = demo.mailed("Confirm you own", r"ownership code is (\d{6})");
    let (status, html) = demo
        .post_form(&format!("http://{SUB}{action}"), &[("code", &code)])
        .await;
    assert!(
        status == 200
            && html.contains(r#"<p id="show-status">Imported</p>"#)
            && html.contains("My Shop Show"),
        "{html}"
    );
    let (status, html) = demo
        .post_form(&format!("http://{SUB}/import"), &[("rss_url", &feed_url)])
        .await;
    assert!(status == 422 && html.contains("already imported"), "{html}");

    assert!(demo.check_login(SUB, &email, &password).await);
    let (status, html) = demo.post_form(&format!("http://{SUB}/signup"), &form).await;
    assert!(
        status == 422 && html.contains("This email is already registered"),
        "{html}"
    );
    let site: Value = demo
        .web
        .get(format!("{}/admin/demo/sites/{SUB}", demo.sim.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(site["kind"], "sub");
    assert_eq!(site["shows"][0]["imported_from"], feed_url.as_str());
}

#[tokio::test]
async fn demo_sites_are_also_reachable_by_path_with_cookies_scoped_per_site() {
    let demo = Demo::start(SimulatorOptions::for_test("k")).await;
    let base = format!("{}/demo/sub-b.demo.test", demo.sim.url());
    let form = [
        ("email", "path.user@demo.test"),
        ("username", "pathuser"),
        ("password", "Secret123!"),
    ];
    let (status, html) = demo.post_form(&format!("{base}/signup"), &form).await;
    assert!(
        status == 200 && html.contains(r#"href="/demo/sub-b.demo.test/dashboard""#),
        "links keep the prefix: {html}"
    );
    let mails = demo.sim.mail(Some("path.user@demo.test"));
    let link = Regex::new(r"(http://\S+)")
        .unwrap()
        .captures(&mails[0].text)
        .unwrap()[1]
        .to_owned();
    assert!(link.starts_with(&format!("{base}/confirm/")), "{link}");
    let r = demo.web.get(&link).send().await.unwrap();
    assert!(r.text().await.unwrap().contains(r#"id="account-email""#));
    let other = demo
        .web
        .get(format!("{}/demo/sub-c.demo.test/dashboard", demo.sim.url()))
        .send()
        .await
        .unwrap();
    assert!(
        other.text().await.unwrap().contains(r#"id="login-form""#),
        "another site's session is not shared"
    );
}

#[tokio::test]
async fn demo_step_faults_fail_once_and_slow_once() {
    let demo = Demo::start(SimulatorOptions::for_test("k")).await;
    demo.sim.set_demo_faults(DemoFaults {
        fail_step: Some("signup".into()),
        fail_status: 502,
        fail_times: 1,
        ..DemoFaults::default()
    });
    let form = [
        ("email", "f.user@demo.test"),
        ("username", "fuser"),
        ("password", "Secret123!"),
    ];
    let (status, html) = demo.post_form(&format!("http://{SUB}/signup"), &form).await;
    assert!(
        status == 502 && html.contains(r#"id="server-error""#),
        "{status} {html}"
    );
    assert_eq!(
        demo.post_form(&format!("http://{SUB}/signup"), &form)
            .await
            .0,
        200,
        "only once"
    );

    let r = demo
        .web
        .put(format!("{}/admin/demo/faults", demo.sim.url()))
        .json(&json!({"slow_step": "login", "slow_ms": 300, "slow_times": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let began = Instant::now();
    demo.post_form(
        &format!("http://{SUB}/login"),
        &[("email", "f.user@demo.test"), ("password", "x")],
    )
    .await;
    assert!(began.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn demo_mail_goes_into_the_maildir_and_mailboxes_into_the_users_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mail");
    std::fs::create_dir_all(&root).unwrap();
    let mut options = SimulatorOptions::for_test("k");
    options.mail = MailOptions {
        maildir_root: Some(root.clone()),
        users_file: Some(dir.path().join("users")),
        spam: 1.0,
    };
    let demo = Demo::start(options).await;
    let (email, app) = (
        demo.field("email"),
        demo.field("app_password").replace(' ', ""),
    );
    let users = std::fs::read_to_string(dir.path().join("users")).unwrap();
    assert_eq!(users, format!("{email}:{{PLAIN}}{app}::::::\n"));
    demo.post_form(
        &format!("http://{SUB}/signup"),
        &[
            ("email", &email),
            ("username", "mdir1"),
            ("password", "Secret123!"),
        ],
    )
    .await;
    let junk: Vec<_> = std::fs::read_dir(root.join(&email).join(".Junk/new"))
        .unwrap()
        .collect();
    assert_eq!(junk.len(), 1, "spam probability 1 delivers to Junk");
    let text = std::fs::read_to_string(junk[0].as_ref().unwrap().path()).unwrap();
    assert!(
        text.contains(&format!("To: <{email}>\r\n")) && text.contains("/confirm/"),
        "{text}"
    );
    for sub in ["cur", "new", "tmp", ".Junk/cur", ".Junk/tmp"] {
        assert!(root.join(&email).join(sub).is_dir(), "{sub}");
    }
}

//! Step 5: is a task from `GET /links/{id}` something we can run, and is a driver's result something we can
//! report? Pure checks; every message is safe to send as `error_message` (no secrets, no field values but
//! the domain).

use std::sync::Arc;

use secrecy::ExposeSecret;

use crate::driver::{Driver, Drivers};
use crate::task::{QueueEntry, Registration, Site, Task, normalise_domain};

/// Checks a loaded task against its stream entry and the available drivers; returns its driver.
///
/// # Errors
/// A clear message for `fail` when the task cannot be run.
pub fn validate_task(
    task: &Task,
    entry: &QueueEntry,
    drivers: &Drivers,
) -> Result<Arc<dyn Driver>, String> {
    if task.id != entry.id {
        return Err(format!(
            "the manager returned task {} for id {}",
            task.id, entry.id
        ));
    }
    let domain = normalise_domain(&task.domain);
    if domain.is_empty() {
        return Err("missing field: domain".into());
    }
    let driver = drivers
        .get(&domain)
        .ok_or_else(|| format!("no driver for domain {}", printable(&domain)))?;
    let mut missing = Vec::new();
    if task.email.trim().is_empty() {
        missing.push("email");
    }
    if task.password.expose_secret().is_empty() {
        missing.push("password");
    }
    if !missing.is_empty() {
        return Err(format!("missing field: {}", missing.join(", ")));
    }
    if entry.site == Site::Sub && task.link_rss.is_none() {
        return Err("sub-site task without link_rss: the main site's feed is needed".into());
    }
    for (name, value) in [
        ("link_rss", task.link_rss.as_deref()),
        ("image_url", task.image_url.as_deref()),
        (
            "website",
            Some(task.website.as_str()).filter(|w| !w.trim().is_empty()),
        ),
    ] {
        if let Some(value) = value
            && !is_http_url(value)
        {
            return Err(format!("invalid field: {name} is not an http(s) URL"));
        }
    }
    Ok(driver)
}

/// Checks a driver's result before it is reported: `complete` needs a credential, and a main-site task
/// must hand over the show's feed.
///
/// # Errors
/// A message for `fail` (the driver produced an unusable result).
pub fn validate_registration(reg: &Registration, site: Site) -> Result<(), String> {
    if !reg.has_credentials() {
        return Err("the driver returned no credentials".into());
    }
    if site == Site::Main {
        match reg.link_rss.as_deref() {
            Some(rss) if is_http_url(rss) => {}
            Some(_) => return Err("the driver returned an invalid link_rss".into()),
            None => return Err("the driver returned no link_rss for a main-site task".into()),
        }
    }
    Ok(())
}

fn is_http_url(text: &str) -> bool {
    url::Url::parse(text.trim())
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

/// A domain cut to 100 printable characters, for messages.
fn printable(domain: &str) -> String {
    domain
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::DriverError;
    use crate::task::{ENTRY_VERSION, TaskId};

    struct Nop;
    #[async_trait::async_trait]
    impl Driver for Nop {
        fn name(&self) -> &str {
            "nop"
        }
        async fn register(&self, _: &Task) -> Result<Registration, DriverError> {
            Err(DriverError::permanent("nop"))
        }
    }

    fn task(json: &str) -> Task {
        serde_json::from_str(json).unwrap()
    }

    fn entry(site: Site) -> QueueEntry {
        QueueEntry {
            v: ENTRY_VERSION,
            id: TaskId::parse("t1").unwrap(),
            domain: "a.test".into(),
            site,
            request_id: String::new(),
            group_id: String::new(),
            fetched_at_ms: 0,
        }
    }

    #[test]
    fn tasks_are_checked_for_driver_fields_feed_and_urls() {
        let mut drivers = Drivers::new();
        drivers.insert("a.test", Arc::new(Nop));
        let ok = task(r#"{"id":"t1","domain":"A.test","email":"e@x","password":"P1!x"}"#);
        assert!(validate_task(&ok, &entry(Site::Main), &drivers).is_ok());
        let err = |json: &str, site| {
            validate_task(&task(json), &entry(site), &drivers)
                .err()
                .unwrap()
        };
        assert_eq!(
            err(
                r#"{"id":"t1","domain":"z.test","email":"e","password":"p"}"#,
                Site::Main
            ),
            "no driver for domain z.test"
        );
        assert_eq!(
            err(
                r#"{"id":"t1","domain":"a.test","email":"","password":""}"#,
                Site::Main
            ),
            "missing field: email, password"
        );
        assert!(
            err(
                r#"{"id":"t1","domain":"a.test","email":"e","password":"p"}"#,
                Site::Sub
            )
            .contains("link_rss")
        );
        assert!(
            err(
                r#"{"id":"t1","domain":"a.test","email":"e","password":"p","image_url":"ftp://x"}"#,
                Site::Main
            )
            .contains("image_url")
        );
        assert!(
            err(
                r#"{"id":"t2","domain":"a.test","email":"e","password":"p"}"#,
                Site::Main
            )
            .contains("t2")
        );
    }

    #[test]
    fn main_site_results_need_a_feed() {
        let reg = Registration {
            username: Some("u".into()),
            ..Default::default()
        };
        assert!(validate_registration(&reg, Site::Sub).is_ok());
        assert!(validate_registration(&reg, Site::Main).is_err());
        let with_rss = Registration {
            link_rss: Some("https://a.test/rss".into()),
            ..reg
        };
        assert!(validate_registration(&with_rss, Site::Main).is_ok());
        assert!(validate_registration(&Registration::default(), Site::Sub).is_err());
    }
}

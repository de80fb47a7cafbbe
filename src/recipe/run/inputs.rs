//! The steps that bring a value in from outside the page (the task's image, a TOTP code, a mailed link or
//! code) or read one off it (`extract`), for [`Run`](super::Run): what they fetch, and how each failure is
//! classified.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::js::JS_READ;
use super::{Failure, Run, Until, permanent, transient};
use crate::driver::{DriverError, FailureKind};
use crate::mailbox::{MailLogin, MailQuery};
use crate::recipe::{ExtractStep, MailStep, Template};
use crate::totp::TotpCode;

impl Run<'_> {
    pub(super) async fn upload(&mut self, sel: &str) -> Result<(), Failure> {
        if self.image.is_none() {
            let Some(url) = self.task.image_url.as_deref() else {
                return Err(permanent(FailureKind::Input, "the task has no image_url"));
            };
            let image = crate::image::fetch_image(&self.env.image, url)
                .await
                .map_err(|e| match e.is_permanent() {
                    true => permanent(FailureKind::Input, e.to_string()),
                    false => transient(FailureKind::Network, e.to_string()),
                })?;
            self.image = Some(image);
        }
        self.wait(Until::Exists(sel)).await?;
        let path = self.image.as_ref().map(|i| i.path().to_owned());
        Ok(self.session.upload(sel, &path.unwrap_or_default()).await?)
    }

    pub(super) async fn totp(&mut self, sel: &str) -> Result<(), Failure> {
        let code = match self.next_totp.take() {
            Some(code) => code,
            None => self.totp_code().await?,
        };
        self.typed.push(SecretString::from(code.code.clone()));
        self.untyped_totp = Some(code.step);
        self.wait(Until::Visible(sel)).await?;
        self.untyped_totp = None;
        Ok(self.session.fill(sel, &code.code).await?)
    }

    /// A fresh code of the task's secret, claimed fleet-wide, once its window has begun.
    pub(super) async fn totp_code(&self) -> Result<TotpCode, Failure> {
        if self.task.twofa.expose_secret().trim().is_empty() {
            return Err(permanent(
                FailureKind::Input,
                "the task has no twofa secret",
            ));
        }
        (self.env.totp.fresh_code(&self.task.twofa).await).map_err(|e| match e.is_permanent() {
            true => permanent(FailureKind::Input, e.to_string()),
            false => transient(FailureKind::Other, e.to_string()),
        })
    }

    pub(super) async fn mail(&mut self, m: &MailStep, limit: Duration) -> Result<(), Failure> {
        let task = self.task;
        let password = match task.app_password.expose_secret().trim() {
            "" => task.pass_mail.clone(),
            _ => task.app_password.clone(),
        };
        let login = MailLogin {
            user: task.email.clone(),
            password,
        };
        let render = |t: &Option<Template>| t.as_ref().map(|t| t.render(&self.vars));
        let query = MailQuery {
            from: render(&m.from),
            subject: render(&m.subject),
            to: render(&m.to).or_else(|| Some(task.email.clone())),
            since: self.started - Duration::from_secs(5),
            pattern: m.pattern.clone(),
        };
        let deadline =
            tokio::time::Instant::now() + limit.saturating_sub(Duration::from_millis(500));
        match self.env.mailbox.wait_for(&login, &query, deadline).await {
            Ok(found) => {
                // A mailed code or link is a credential for a while: kept out of artifacts.
                self.vars
                    .set_secret(&m.into, SecretString::from(found.value));
                Ok(())
            }
            Err(e) => Err(DriverError::new(
                FailureKind::Mail,
                !e.is_permanent(),
                e.to_string(),
            )),
        }
    }

    pub(super) async fn extract(&mut self, e: &ExtractStep) -> Result<(), Failure> {
        self.wait(Until::Exists(&e.selector)).await?;
        let args = [json!(e.selector), json!(e.attribute)];
        let raw = self.session.call(JS_READ, &args).await?;
        let raw = raw.as_str().unwrap_or_default().trim().to_owned();
        let value = match &e.pattern {
            None => raw,
            Some(re) => match re.captures(&raw) {
                Some(c) => c
                    .get(1)
                    .or_else(|| c.get(0))
                    .map_or("", |m| m.as_str())
                    .to_owned(),
                None => {
                    return Err(transient(
                        FailureKind::Other,
                        format!("the value of {:?} does not match the pattern", e.selector),
                    ));
                }
            },
        };
        if value.is_empty() {
            return Err(transient(
                FailureKind::Other,
                format!("{:?} is empty", e.selector),
            ));
        }
        match e.secret {
            true => self.vars.set_secret(&e.into, SecretString::from(value)),
            false => self.vars.set(&e.into, value),
        }
        Ok(())
    }
}

//! `recipe-check import`: a Chrome DevTools Recorder export (the `@puppeteer/replay` user-flow JSON) into a
//! recipe draft: one step per recorded step with the best CSS selector, typed values that equal a task field
//! replaced by its variable, and comments where a mail wait, a TOTP or an extract is likely needed. Pure:
//! text in, text out; the draft is checked by [`super::parse_recipe`] like any recipe.

use serde_json::Value;

use super::template::Vars;

/// A recording that cannot be converted (not JSON, not a user flow, a step without its fields).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ImportError {
    /// The recording file.
    pub file: String,
    /// What is wrong (naming the recorded step from 1 when it is about one).
    pub message: String,
}

/// Words in a selector or field that say a one-time code goes there.
const CODE_WORDS: &[&str] = &["code", "otp", "verif", "token", "pin"];
/// Words that say the code is a TOTP (an authenticator app's).
const TOTP_WORDS: &[&str] = &[
    "totp",
    "otp",
    "2fa",
    "mfa",
    "authenticator",
    "two-factor",
    "twofa",
];

/// Converts the Recorder JSON `text` (from `file`) into a recipe draft. `task`, when given, holds the task
/// fields the operator used while recording (`GET /links/{id}` shape, read into variables): a typed value
/// equal to one becomes `{{that_field}}`. Without it, values are guessed from the field (an `@` → `{{email}}`,
/// a password field → `{{password}}`), each marked with a comment.
///
/// # Errors
/// [`ImportError`] when the text is not a user flow.
pub fn import_recording(
    file: &str,
    text: &str,
    task: Option<&Vars>,
) -> Result<String, ImportError> {
    let err = |message: String| ImportError {
        file: file.to_owned(),
        message,
    };
    let flow: Value = serde_json::from_str(text).map_err(|e| err(format!("not JSON: {e}")))?;
    let steps = flow
        .get("steps")
        .and_then(Value::as_array)
        .ok_or_else(|| err("not a Recorder export: no \"steps\" array".into()))?;
    let mut draft = Draft {
        task,
        out: Vec::new(),
        host: None,
        navigated_by_click: false,
        extract_hint: false,
    };
    for (i, step) in steps.iter().enumerate() {
        let n = i + 1;
        let kind = step
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| err(format!("step {n}: no \"type\"")))?;
        let field = |key: &str| {
            step.get(key)
                .and_then(Value::as_str)
                .ok_or_else(|| err(format!("step {n} ({kind}): no {key:?}")))
        };
        match kind {
            "navigate" => draft.navigate(field("url")?),
            "click" | "doubleClick" => {
                let navigates = step
                    .get("assertedEvents")
                    .and_then(Value::as_array)
                    .is_some_and(|e| e.iter().any(|e| e["type"] == "navigation"));
                let all = selectors(step);
                // The Recorder records the click that focuses a field before typing into it: `fill`
                // focuses by itself.
                let focuses_next = !navigates
                    && kind == "click"
                    && steps.get(i + 1).is_some_and(|next| {
                        next["type"] == "change"
                            && best_selector(&selectors(next)).0 == best_selector(&all).0
                    });
                if !focuses_next {
                    draft.click(n, &all, navigates, kind == "doubleClick");
                }
            }
            "change" => draft.change(n, &selectors(step), field("value")?),
            "waitForElement" => draft.wait_for(n, &selectors(step)),
            "keyDown" => {
                if field("key")? == "Enter" {
                    draft.comment(&format!(
                        "recorded step {n}: Enter pressed; recipes click instead (the form's submit button, \
                         navigates = true)"
                    ));
                }
            }
            "keyUp" | "setViewport" | "scroll" | "hover" | "close" => {}
            "waitForExpression" => draft.comment(&format!(
                "recorded step {n}: waitForExpression {:?}: use wait_for, wait_url or wait_text",
                step.get("expression")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            )),
            other => draft.comment(&format!("recorded step {n}: {other} (no recipe step)")),
        }
    }
    Ok(draft.finish(flow.get("title").and_then(Value::as_str)))
}

/// A recorded step's selectors, each either a string or a chain (array of strings, through shadow roots
/// or frames).
fn selectors(step: &Value) -> Vec<Vec<String>> {
    let Some(list) = step.get("selectors").and_then(Value::as_array) else {
        return step
            .get("selector")
            .and_then(Value::as_str)
            .map(|s| vec![vec![s.to_owned()]])
            .unwrap_or_default();
    };
    list.iter()
        .filter_map(|s| match s {
            Value::String(one) => Some(vec![one.clone()]),
            Value::Array(chain) => Some(
                chain
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            ),
            _ => None,
        })
        .filter(|c: &Vec<String>| !c.is_empty())
        .collect()
}

/// The best CSS selector of a step and a note when it had to be improvised: a plain CSS selector (no
/// `aria/`, `xpath/`, `pierce/`, `text/` prefix, no chain) first, the shortest one; else a `pierce/`
/// selector without its prefix (CSS, but it may need a shadow root); else none.
fn best_selector(all: &[Vec<String>]) -> (Option<String>, Option<String>) {
    let prefixed = |s: &str| {
        ["aria/", "xpath/", "pierce/", "text/"]
            .iter()
            .any(|p| s.starts_with(p))
    };
    let css = all
        .iter()
        .filter(|c| c.len() == 1 && !prefixed(&c[0]))
        .map(|c| c[0].clone())
        .min_by_key(|s| (!s.starts_with('#'), s.len()));
    if css.is_some() {
        return (css, None);
    }
    if let Some(p) = all
        .iter()
        .filter(|c| c.len() == 1)
        .find_map(|c| c[0].strip_prefix("pierce/"))
    {
        return (
            Some(p.to_owned()),
            Some("recorded as pierce/ (inside a shadow root?): check the selector".into()),
        );
    }
    let shown: Vec<String> = all.iter().map(|c| c.join(" >> ")).collect();
    (
        None,
        Some(format!(
            "no CSS selector was recorded ({}): write one",
            shown.join(", ")
        )),
    )
}

fn quote(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// A TOML basic string, as `toml` writes it (escapes included).
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

struct Draft<'a> {
    task: Option<&'a Vars>,
    out: Vec<String>,
    /// The host of the first navigation: the recipe's domain, and `{{domain}}` in URLs.
    host: Option<String>,
    /// The last click navigated (so a following navigate is the recorder's echo of it).
    navigated_by_click: bool,
    extract_hint: bool,
}

impl Draft<'_> {
    fn comment(&mut self, text: &str) {
        self.out.push(format!("# {text}"));
    }

    fn step(&mut self, lines: &[String]) {
        self.out.push("[[steps]]".into());
        self.out.extend(lines.iter().cloned());
    }

    fn navigate(&mut self, url: &str) {
        let parsed = url::Url::parse(url).ok();
        let host = parsed
            .as_ref()
            .and_then(|u| u.host_str())
            .map(str::to_owned);
        if self.host.is_none() {
            self.host.clone_from(&host);
        } else if self.navigated_by_click {
            // The recorder writes the page a click opened as a navigate step too: the click waits for it.
            self.navigated_by_click = false;
            return;
        }
        let mut templ = url.to_owned();
        if let Some(h) = &host
            && self.host.as_ref() == Some(h)
        {
            templ = templ.replacen(h.as_str(), "{{domain}}", 1);
        }
        let path = parsed.as_ref().map(|u| u.path()).unwrap_or_default();
        let last = path.rsplit('/').next().unwrap_or_default();
        if last.len() >= 16
            && last
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        {
            self.comment(
                "this URL carries a token: a mailed link? wait_mail = \"link\" with a pattern for it, then \
                 goto = \"{{link}}\"",
            );
        }
        if url.contains("rss") || url.contains("feed") {
            self.hint_extract();
        }
        self.step(&[format!("goto = {}", toml_str(&templ))]);
    }

    fn target(&mut self, n: usize, all: &[Vec<String>]) -> Option<String> {
        let (sel, note) = best_selector(all);
        if let Some(note) = note {
            self.comment(&format!("recorded step {n}: {note}"));
        }
        sel
    }

    fn click(&mut self, n: usize, all: &[Vec<String>], navigates: bool, double: bool) {
        let Some(sel) = self.target(n, all) else {
            return;
        };
        if double {
            self.comment(&format!("recorded step {n} was a double click"));
        }
        let lower = sel.to_lowercase();
        if lower.contains("rss") || lower.contains("feed") {
            self.hint_extract();
        }
        let mut lines = vec![format!("click = {}", toml_str(&sel))];
        if navigates {
            lines.push("navigates = true".into());
        }
        self.navigated_by_click = navigates;
        self.step(&lines);
    }

    fn wait_for(&mut self, n: usize, all: &[Vec<String>]) {
        if let Some(sel) = self.target(n, all) {
            self.step(&[format!("wait_for = {}", toml_str(&sel))]);
        }
    }

    fn change(&mut self, n: usize, all: &[Vec<String>], value: &str) {
        let Some(sel) = self.target(n, all) else {
            return;
        };
        let lower = sel.to_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
        if value.starts_with("C:\\fakepath\\") {
            // What a file input reports for a chosen file (the Recorder's `change` of an upload).
            self.comment(&format!(
                "recorded step {n} chose a file: upload_image puts the task's image (image_url) there"
            ));
            self.step(&[format!("upload_image = {}", toml_str(&sel))]);
            return;
        }
        let looks_code =
            value.len() <= 8 && !value.is_empty() && value.chars().all(|c| c.is_ascii_digit());
        if looks_code && has(TOTP_WORDS) {
            self.comment(&format!(
                "recorded step {n} typed a one-time code: a TOTP (the task's twofa) is typed by the totp step"
            ));
            self.step(&[format!("totp = {}", toml_str(&sel))]);
            return;
        }
        if looks_code || has(CODE_WORDS) {
            self.comment(&format!(
                "recorded step {n} typed a code: if it came by mail, add before this step\n\
                 # [[steps]]\n# wait_mail = \"code\"\n# from = \"<sender>\"\n# subject = \"<part of the subject>\"\n\
                 # pattern = '(\\d{{6}})'\n# and type value = \"{{{{code}}}}\" (a TOTP: totp = {})",
                quote(&sel)
            ));
        }
        let (value, guessed) = self.value(&sel, value);
        if let Some(g) = guessed {
            self.comment(&format!("recorded step {n}: {g}"));
        }
        let mut lines = vec![format!("fill = {}", toml_str(&sel))];
        lines.push(format!("value = {}", toml_str(&value)));
        self.step(&lines);
    }

    /// The template for a typed value, and a note when it was guessed rather than matched.
    fn value(&self, sel: &str, typed: &str) -> (String, Option<String>) {
        let fields = [
            "email",
            "password",
            "pass_mail",
            "app_password",
            "username",
            "about_text",
            "about",
            "link_rss",
            "website",
            "domain",
        ];
        if let Some(vars) = self.task {
            if let Some(f) = fields
                .iter()
                .find(|f| vars.get(f).is_some_and(|v| !v.is_empty() && v == typed))
            {
                return (format!("{{{{{f}}}}}"), None);
            }
            return (
                typed.to_owned(),
                Some("typed literally (no task field has this value)".into()),
            );
        }
        let lower = sel.to_lowercase();
        let guess = if typed.contains('@') || lower.contains("mail") {
            Some("email")
        } else if lower.contains("pass") {
            Some("password")
        } else if lower.contains("user") || lower.contains("login") {
            Some("username")
        } else if lower.contains("about") || lower.contains("descr") {
            Some("about_text")
        } else {
            None
        };
        match guess {
            Some(f) => (
                format!("{{{{{f}}}}}"),
                Some(format!(
                    "guessed {{{{{f}}}}} from the field (pass the task JSON to match values)"
                )),
            ),
            None => (
                typed.to_owned(),
                Some("typed literally: a task field?".into()),
            ),
        }
    }

    fn hint_extract(&mut self) {
        if !self.extract_hint {
            self.extract_hint = true;
            self.comment(
                "the feed is shown around here: extract = \"<selector of its link>\", attribute = \"href\", \
                 into = \"link_rss\" (a main site reports it)",
            );
        }
    }

    fn finish(self, title: Option<&str>) -> String {
        let domain = self.host.clone().unwrap_or_else(|| "example.com".into());
        let mut head = vec![
            format!(
                "# Draft from a Chrome DevTools Recorder export{}: check every step with recipe-check.",
                title.map(|t| format!(" ({t})")).unwrap_or_default()
            ),
            "# site = \"main\" when this platform produces the RSS feed (then extract link_rss and set".into(),
            "# [result] link_rss = \"{{link_rss}}\"); error_selectors = [...] makes the site's own errors".into(),
            "# permanent failures.".into(),
            "site = \"sub\"".into(),
            format!("domains = [{}]", toml_str(&domain)),
            String::new(),
        ];
        head.extend(self.out);
        head.push(String::new());
        head.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOW: &str = r##"{"title": "sign up", "steps": [
      {"type": "setViewport", "width": 800, "height": 600},
      {"type": "navigate", "url": "http://site.test/signup",
       "assertedEvents": [{"type": "navigation", "url": "http://site.test/signup"}]},
      {"type": "click", "selectors": [["aria/Email"], ["#email"], ["xpath///*[@id=\"email\"]"]],
       "offsetX": 5, "offsetY": 5},
      {"type": "change", "value": "ann@example.test", "selectors": [["aria/Email"], ["#email"]]},
      {"type": "change", "value": "Sup3r", "selectors": [["form > input.pw"], ["pierce/input.pw"]]},
      {"type": "keyDown", "key": "Enter"}, {"type": "keyUp", "key": "Enter"},
      {"type": "click", "selectors": [["text/Sign up"], ["#go"]],
       "assertedEvents": [{"type": "navigation", "url": "http://site.test/verify"}]},
      {"type": "navigate", "url": "http://site.test/verify"},
      {"type": "change", "value": "123456", "selectors": [["#code"]]},
      {"type": "change", "value": "654321", "selectors": [["#totp"]]},
      {"type": "click", "selectors": [["#cover"]]},
      {"type": "change", "value": "C:\\fakepath\\cover.png", "selectors": [["aria/Cover"], ["#cover"]]},
      {"type": "waitForElement", "selectors": [["aria/Feed"]]}
    ]}"##;

    #[test]
    fn a_recording_becomes_a_draft_that_parses() {
        let mut vars = Vars::default();
        vars.set("email", "ann@example.test");
        vars.set("password", "Sup3r");
        let draft = import_recording("rec.json", FLOW, Some(&vars)).unwrap();
        let recipe = super::super::parse_recipe("draft.toml", &draft)
            .unwrap_or_else(|e| panic!("{e}\n{draft}"));
        assert_eq!(recipe.domains, ["site.test"]);
        assert!(
            draft.contains("goto = \"http://{{domain}}/signup\""),
            "{draft}"
        );
        assert!(
            draft.contains("fill = \"#email\"\nvalue = \"{{email}}\""),
            "{draft}"
        );
        assert!(
            draft.contains("fill = \"form > input.pw\"\nvalue = \"{{password}}\""),
            "{draft}"
        );
        assert!(
            draft.contains("click = \"#go\"\nnavigates = true"),
            "{draft}"
        );
        assert!(
            !draft.contains("/verify\""),
            "the navigation a click made is no step: {draft}"
        );
        assert!(draft.contains("# wait_mail = \"code\""), "{draft}");
        assert!(draft.contains("totp = \"#totp\""), "{draft}");
        assert!(draft.contains("upload_image = \"#cover\""), "{draft}");
        assert!(
            !draft.contains("click = \"#cover\""),
            "the focusing click before typing is no step: {draft}"
        );
        assert!(
            draft.contains("no CSS selector was recorded (aria/Feed)"),
            "{draft}"
        );
        assert!(draft.contains("Enter pressed"), "{draft}");
        assert!(!draft.contains("setViewport"), "{draft}");
        // Without the task, values are guessed from the fields.
        let guessed = import_recording("rec.json", FLOW, None).unwrap();
        assert!(guessed.contains("guessed {{email}}"), "{guessed}");
        assert!(super::super::parse_recipe("draft.toml", &guessed).is_ok());
    }

    #[test]
    fn a_file_that_is_no_recording_is_refused() {
        let e = import_recording("x.json", "{\"steps\": [{\"url\": 1}]}", None).unwrap_err();
        assert_eq!(e.to_string(), "x.json: step 1: no \"type\"");
        let e = import_recording("x.json", "[]", None).unwrap_err();
        assert!(e.message.contains("no \"steps\" array"), "{e}");
        let e = import_recording("x.json", "{\"steps\": [{\"type\": \"navigate\"}]}", None)
            .unwrap_err();
        assert_eq!(e.to_string(), "x.json: step 1 (navigate): no \"url\"");
    }
}

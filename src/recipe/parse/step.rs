//! One `[[steps]]` table into a [`Step`]: exactly one known action, only the keys that action takes (and
//! the keys every step may have), each key of the type it needs. Which names a jump or template may use is
//! checked by the caller, once every step is known.

use std::time::Duration;

use regex::Regex;
use toml::{Table, Value};

use super::Ctx;
use crate::browser::Resource;
use crate::recipe::{
    Action, Condition, ExtractStep, GuardKind, MailStep, RecipeError, Step, Template,
};

/// Keys every step may have besides its action.
const COMMON: &[&str] = &[
    "timeout_ms",
    "optional",
    "name",
    "if_visible",
    "if_url",
    "if_text",
    "then",
    "unblock",
];

/// Actions and the extra keys each takes (required ones first, then `?`-marked optional ones).
const ACTIONS: &[(&str, &[&str])] = &[
    ("goto", &[]),
    ("fill", &["value"]),
    ("click", &["navigates?"]),
    ("select", &["value"]),
    ("check", &["value?"]),
    ("upload_image", &[]),
    ("wait_for", &[]),
    ("wait_url", &[]),
    ("wait_text", &[]),
    ("totp", &[]),
    ("wait_mail", &["pattern", "from?", "subject?", "to?"]),
    ("extract", &["into", "attribute?", "pattern?", "secret?"]),
    ("fail_if", &["message?", "kind?"]),
    ("fail_if_text", &["message?", "kind?"]),
    ("cookies", &[]),
    ("goto_step", &[]),
];

/// One step, and the name its `then` / `goto_step` jumps to (resolved once every step is known).
pub(super) fn parse_step(
    file: &str,
    index: usize,
    raw: &Value,
) -> Result<(Step, Option<String>), RecipeError> {
    let ctx = Ctx {
        file,
        step: Some((index, "?")),
    };
    let table = raw
        .as_table()
        .ok_or_else(|| ctx.err("a step must be a table"))?;
    let found: Vec<&(&str, &[&str])> = ACTIONS
        .iter()
        .filter(|(a, _)| table.contains_key(*a))
        .collect();
    let (kind, extra) = match found.as_slice() {
        [one] => **one,
        [] => {
            let names: Vec<&str> = ACTIONS.iter().map(|(a, _)| *a).collect();
            let keys: Vec<&str> = table.keys().map(String::as_str).collect();
            return Err(ctx.err(format!(
                "unknown step (keys {keys:?}); a step has one of: {}",
                names.join(", ")
            )));
        }
        _ => return Err(ctx.err("a step must have exactly one action")),
    };
    let ctx = Ctx {
        file,
        step: Some((index, kind)),
    };
    for key in table.keys() {
        let allowed = key == kind
            || COMMON.contains(&key.as_str())
            || extra.iter().any(|e| e.trim_end_matches('?') == key);
        if !allowed {
            return Err(ctx.err(format!("unknown key {key:?}")));
        }
    }
    for required in extra.iter().filter(|e| !e.ends_with('?')) {
        if !table.contains_key(*required) {
            return Err(ctx.err(format!("missing field {required:?}")));
        }
    }
    let fields = Fields { table, ctx: &ctx };
    let action = fields.action(kind)?;
    let jump = match &action {
        Action::GotoStep(name) if table.contains_key("then") => {
            return Err(ctx.err(format!(
                "goto_step already jumps to {name:?}; a then key is not allowed"
            )));
        }
        Action::GotoStep(name) => Some(name.clone()),
        _ => fields.opt_text("then")?,
    };
    let step = Step {
        index,
        name: fields.opt_text("name")?,
        timeout: fields
            .opt_int("timeout_ms")?
            .map(|ms| Duration::from_millis(ms.max(1))),
        optional: fields.opt_bool("optional")?.unwrap_or(false),
        when: fields.condition()?,
        then: None,
        unblock: fields.resources("unblock")?,
        action,
    };
    Ok((step, jump))
}

/// Typed access to one step's keys, with errors naming the step.
struct Fields<'a> {
    table: &'a Table,
    ctx: &'a Ctx<'a>,
}

impl Fields<'_> {
    fn text(&self, key: &str) -> Result<String, RecipeError> {
        match self.table.get(key).and_then(Value::as_str) {
            Some(s) if !s.trim().is_empty() => Ok(s.to_owned()),
            _ => Err(self.ctx.err(format!("{key} must be non-empty text"))),
        }
    }

    fn opt_text(&self, key: &str) -> Result<Option<String>, RecipeError> {
        self.table.get(key).map(|_| self.text(key)).transpose()
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>, RecipeError> {
        self.table
            .get(key)
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| self.ctx.err(format!("{key} must be true or false")))
            })
            .transpose()
    }

    fn opt_int(&self, key: &str) -> Result<Option<u64>, RecipeError> {
        self.table
            .get(key)
            .map(|v| {
                v.as_integer()
                    .and_then(|i| u64::try_from(i).ok())
                    .ok_or_else(|| self.ctx.err(format!("{key} must be a positive integer")))
            })
            .transpose()
    }

    /// A list of resource types (`unblock`); whether the recipe blocks them is checked by the caller.
    fn resources(&self, key: &str) -> Result<Vec<Resource>, RecipeError> {
        super::resources(self.table, key, self.ctx)
    }

    /// A template (its variables are checked later, by `check_vars`).
    fn template(&self, key: &str) -> Result<Template, RecipeError> {
        Template::parse(&self.text(key)?).map_err(|e| self.ctx.err(format!("{key}: {e}")))
    }

    /// The step's `if_visible` / `if_url` / `if_text`, at most one.
    fn condition(&self) -> Result<Option<Condition>, RecipeError> {
        let keys: Vec<&str> = ["if_visible", "if_url", "if_text"]
            .into_iter()
            .filter(|k| self.table.contains_key(*k))
            .collect();
        Ok(match keys.as_slice() {
            [] => None,
            ["if_visible"] => Some(Condition::Visible(self.text("if_visible")?)),
            ["if_url"] => Some(Condition::Url(self.regex("if_url")?)),
            ["if_text"] => Some(Condition::Text(self.template("if_text")?)),
            _ => {
                return Err(self.ctx.err(format!(
                    "a step has at most one condition (found {})",
                    keys.join(", ")
                )));
            }
        })
    }

    fn guard_kind(&self) -> Result<GuardKind, RecipeError> {
        match self.table.get("kind").map(Value::as_str) {
            None | Some(Some("site")) => Ok(GuardKind::Site),
            Some(Some("recipe")) => Ok(GuardKind::Recipe),
            Some(_) => Err(self.ctx.err("kind must be \"site\" or \"recipe\"")),
        }
    }

    fn opt_template(&self, key: &str) -> Result<Option<Template>, RecipeError> {
        self.table.get(key).map(|_| self.template(key)).transpose()
    }

    fn regex(&self, key: &str) -> Result<Regex, RecipeError> {
        Regex::new(&self.text(key)?).map_err(|e| self.ctx.err(format!("{key} is not a regex: {e}")))
    }

    fn var_name(&self, key: &str) -> Result<String, RecipeError> {
        let name = self.text(key)?;
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(self.ctx.err(format!("{key} must be a variable name")));
        }
        Ok(name)
    }

    fn action(&self, kind: &str) -> Result<Action, RecipeError> {
        let sel = || self.text(kind);
        Ok(match kind {
            "goto" => Action::Goto(self.template(kind)?),
            "fill" => Action::Fill {
                selector: sel()?,
                value: self.template("value")?,
            },
            "click" => Action::Click {
                selector: sel()?,
                navigates: self.opt_bool("navigates")?.unwrap_or(false),
            },
            "select" => Action::Select {
                selector: sel()?,
                value: self.template("value")?,
            },
            "check" => Action::Check {
                selector: sel()?,
                on: self.opt_bool("value")?.unwrap_or(true),
            },
            "upload_image" => Action::UploadImage(sel()?),
            "wait_for" => Action::WaitFor(sel()?),
            "wait_url" => Action::WaitUrl(self.regex(kind)?),
            "wait_text" => Action::WaitText(self.template(kind)?),
            "totp" => Action::Totp(sel()?),
            "wait_mail" => Action::WaitMail(MailStep {
                into: self.var_name(kind)?,
                pattern: self.regex("pattern")?,
                from: self.opt_template("from")?,
                subject: self.opt_template("subject")?,
                to: self.opt_template("to")?,
            }),
            "extract" => Action::Extract(ExtractStep {
                selector: sel()?,
                into: self.var_name("into")?,
                attribute: self.opt_text("attribute")?,
                pattern: self
                    .table
                    .get("pattern")
                    .map(|_| self.regex("pattern"))
                    .transpose()?,
                secret: self.opt_bool("secret")?.unwrap_or(false),
            }),
            "fail_if" => Action::FailIf {
                selector: sel()?,
                message: self.opt_text("message")?,
                kind: self.guard_kind()?,
            },
            "fail_if_text" => Action::FailIfText {
                text: self.template(kind)?,
                message: self.opt_text("message")?,
                kind: self.guard_kind()?,
            },
            "goto_step" => Action::GotoStep(self.text(kind)?),
            _ => Action::Cookies(self.var_name(kind)?),
        })
    }
}

//! Recipe files (TOML) into checked [`Recipe`]s: every step has exactly one known action, only the keys that
//! action takes, jumps that go forward to a named step, and templates (with valid filters) naming only task
//! fields or variables set on every way to the step. No I/O here.

mod step;

use std::collections::HashSet;

use toml::{Table, Value};

use super::template::Template;
use super::{Action, Condition, Recipe, RecipeError, ResultMap, Resume, Step};
use crate::browser::Resource;
use crate::task::{Site, normalise_domain};
use step::parse_step;

/// Variables every recipe can use, filled from the task.
pub const TASK_VARS: &[&str] = &[
    "task_id",
    "request_id",
    "group_id",
    "domain",
    "website",
    "email",
    "username",
    "password",
    "pass_mail",
    "app_password",
    "about",
    "about_html",
    "about_text",
    "image_url",
    "link_rss",
];

/// Task variables that hold secrets: never logged, scrubbed from failure artifacts. (The TOTP secret is no
/// variable at all: only the `totp` step uses it.)
pub const SECRET_TASK_VARS: &[&str] = &["password", "pass_mail", "app_password"];

struct Ctx<'a> {
    file: &'a str,
    step: Option<(usize, &'a str)>,
}

impl Ctx<'_> {
    fn err(&self, message: impl Into<String>) -> RecipeError {
        RecipeError {
            file: self.file.to_owned(),
            step: self.step.map(|(i, k)| (i, k.to_owned())),
            message: message.into(),
        }
    }
}

/// Parses and validates one recipe file's text; `file` names it in errors.
///
/// # Errors
/// [`RecipeError`] naming the file and, when it is about a step, its number (from 1) and action.
pub fn parse_recipe(file: &str, text: &str) -> Result<Recipe, RecipeError> {
    let top = Ctx { file, step: None };
    let table: Table = toml::from_str(text).map_err(|e| top.err(format!("not valid TOML: {e}")))?;
    for key in table.keys() {
        let known = [
            "name",
            "site",
            "domains",
            "error_selectors",
            "error_texts",
            "captcha_selectors",
            "result",
            "steps",
            "resume",
            "block",
        ];
        if !known.contains(&key.as_str()) {
            return Err(top.err(format!("unknown key {key:?}")));
        }
    }
    let site = match table.get("site").and_then(Value::as_str) {
        Some("main") => Site::Main,
        Some("sub") => Site::Sub,
        _ => return Err(top.err("site must be \"main\" or \"sub\"")),
    };
    let domains: Vec<String> = strings(&table, "domains", &top)?
        .iter()
        .map(|d| normalise_domain(d))
        .collect();
    if domains.is_empty() {
        return Err(top.err("domains must list at least one domain"));
    }
    let name = match table.get("name") {
        Some(v) => v
            .as_str()
            .ok_or_else(|| top.err("name must be text"))?
            .to_owned(),
        None => file_stem(file),
    };
    let raw_steps = match table.get("steps") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => return Err(top.err("steps must be a non-empty array of [[steps]] tables")),
    };
    let mut steps = Vec::new();
    let mut jumps = Vec::new();
    for (i, raw) in raw_steps.iter().enumerate() {
        let (step, jump) = parse_step(file, i + 1, raw)?;
        steps.push(step);
        jumps.push(jump);
    }
    resolve_jumps(file, &mut steps, &jumps)?;
    let block = resources(&table, "block", &top)?;
    check_unblock(file, &steps, &block)?;
    let known = check_vars(file, &steps)?;
    let result = parse_result(&table, &top, site, &known, &steps)?;
    let resume = parse_resume(&table, &top, &steps)?;
    Ok(Recipe {
        name,
        file: file.to_owned(),
        site,
        domains,
        error_selectors: strings(&table, "error_selectors", &top)?,
        error_texts: strings(&table, "error_texts", &top)?,
        captcha_selectors: match table.get("captcha_selectors") {
            Some(_) => strings(&table, "captcha_selectors", &top)?,
            None => super::DEFAULT_CAPTCHA
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        },
        block,
        steps,
        result,
        resume,
    })
}

/// `[[resume]]` tables: `when` (text) and `from` (the `name` of a step).
fn parse_resume(table: &Table, ctx: &Ctx, steps: &[Step]) -> Result<Vec<Resume>, RecipeError> {
    let Some(raw) = table.get("resume") else {
        return Ok(Vec::new());
    };
    let Value::Array(rules) = raw else {
        return Err(ctx.err("resume must be an array of [[resume]] tables"));
    };
    let mut out = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let n = i + 1;
        let Some(rule) = rule.as_table() else {
            return Err(ctx.err(format!("resume {n} must be a table")));
        };
        if let Some(key) = rule
            .keys()
            .find(|k| !["when", "from"].contains(&k.as_str()))
        {
            return Err(ctx.err(format!(
                "resume {n}: unknown key {key:?} (keys: when, from)"
            )));
        }
        let text = |key: &str| {
            rule.get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ctx.err(format!("resume {n}: {key} must be non-empty text")))
        };
        let (when, from) = (text("when")?, text("from")?);
        let index = steps
            .iter()
            .position(|s| s.name.as_deref() == Some(from))
            .ok_or_else(|| ctx.err(format!("resume {n}: from = {from:?} names no step")))?;
        out.push(Resume {
            when: when.to_owned(),
            from: index,
        });
    }
    Ok(out)
}

/// A list of resource type names (`block`, a step's `unblock`), each known and blockable.
fn resources(table: &Table, key: &str, ctx: &Ctx) -> Result<Vec<Resource>, RecipeError> {
    let mut out = Vec::new();
    for name in strings(table, key, ctx)? {
        let r = Resource::parse(&name).map_err(|e| ctx.err(format!("{key}: {e}")))?;
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

/// Every step's `unblock` names only types the recipe's `block` list blocks.
fn check_unblock(file: &str, steps: &[Step], block: &[Resource]) -> Result<(), RecipeError> {
    for step in steps {
        if let Some(r) = step.unblock.iter().find(|r| !block.contains(r)) {
            let listed: Vec<&str> = block.iter().map(|b| b.name()).collect();
            let ctx = Ctx {
                file,
                step: Some((step.index, step.action.kind())),
            };
            return Err(ctx.err(format!(
                "unblock: {:?} is not blocked by this recipe (block = {listed:?})",
                r.name()
            )));
        }
    }
    Ok(())
}

fn file_stem(file: &str) -> String {
    std::path::Path::new(file)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(file)
        .to_owned()
}

fn strings(table: &Table, key: &str, ctx: &Ctx) -> Result<Vec<String>, RecipeError> {
    match table.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ctx.err(format!("{key} must be a list of text"))),
        Some(_) => Err(ctx.err(format!("{key} must be a list of text"))),
    }
}

/// The step `index` (from 0) whose `name` is `name`.
///
/// # Errors
/// A message when no step or more than one step has that name.
fn step_named(steps: &[Step], name: &str) -> Result<usize, String> {
    let found: Vec<usize> = (0..steps.len())
        .filter(|&i| steps[i].name.as_deref() == Some(name))
        .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(format!("{name:?} names no step")),
        _ => Err(format!("{name:?} names {} steps", found.len())),
    }
}

/// Sets each step's `then` from its `then` key or `goto_step` action: the named step must exist and come
/// later, so a recipe never loops.
fn resolve_jumps(
    file: &str,
    steps: &mut [Step],
    jumps: &[Option<String>],
) -> Result<(), RecipeError> {
    for (i, jump) in jumps.iter().enumerate() {
        let Some(name) = jump else { continue };
        let ctx = Ctx {
            file,
            step: Some((steps[i].index, steps[i].action.kind())),
        };
        let key = match steps[i].action {
            Action::GotoStep(_) => "goto_step",
            _ => "then",
        };
        let to = step_named(steps, name).map_err(|e| ctx.err(format!("{key}: {e}")))?;
        if to <= i {
            return Err(ctx.err(format!(
                "{key}: step {name:?} (step {}) is not after this one; jumps only go forward",
                steps[to].index
            )));
        }
        steps[i].then = Some(to);
    }
    Ok(())
}

/// Checks that every template names only variables set on every way to its step (conditions and jumps may
/// skip a step; `[[resume]]` continuations are the recipe author's care, see docs/recipes.md) and returns
/// the variables known at the end, for `[result]`.
fn check_vars(file: &str, steps: &[Step]) -> Result<HashSet<String>, RecipeError> {
    check_vars_from(file, steps, 0)
}

/// The step index (from 0) named `name`, for a run that starts there (`recipe-check --from`): refused
/// when a step from there on needs a variable that only the skipped steps set.
///
/// # Errors
/// [`RecipeError`] naming the file (and the step, for a variable).
pub(crate) fn start_at(recipe: &Recipe, name: &str) -> Result<usize, RecipeError> {
    let from = step_named(&recipe.steps, name).map_err(|e| RecipeError {
        file: recipe.file.clone(),
        step: None,
        message: format!("--from: {e}"),
    })?;
    check_vars_from(&recipe.file, &recipe.steps, from).map_err(|mut e| {
        e.message = format!("{} (starting at {name:?})", e.message);
        e
    })?;
    Ok(from)
}

/// [`check_vars`] for a run starting at step `start` (index from 0).
fn check_vars_from(
    file: &str,
    steps: &[Step],
    start: usize,
) -> Result<HashSet<String>, RecipeError> {
    let task: HashSet<String> = TASK_VARS.iter().map(|s| (*s).to_owned()).collect();
    let meet = |slot: &mut Option<HashSet<String>>, vars: &HashSet<String>| match slot {
        None => *slot = Some(vars.clone()),
        Some(have) => have.retain(|v| vars.contains(v)),
    };
    // into[k]: the variables set on every way into step k (index steps.len() is the end).
    let mut into: Vec<Option<HashSet<String>>> = vec![None; steps.len() + 1];
    into[start] = Some(task.clone());
    let mut anywhere: HashSet<String> = HashSet::new();
    for (k, step) in steps.iter().enumerate().skip(start) {
        let vars = into[k].clone().unwrap_or_else(|| task.clone());
        let ctx = Ctx {
            file,
            step: Some((step.index, step.action.kind())),
        };
        let cond = match &step.when {
            Some(Condition::Text(t)) => vec![t],
            _ => Vec::new(),
        };
        for t in step.action.templates().into_iter().chain(cond) {
            if let Some(v) = t.vars().find(|v| !vars.contains(*v)) {
                return Err(ctx.err(if anywhere.contains(v) {
                    format!(
                        "variable {{{{{v}}}}} may be unset here: a step that sets it can be skipped \
                         (a condition, a jump or an optional step before it)"
                    )
                } else {
                    format!(
                        "unknown variable {{{{{v}}}}} (task fields: {}; or set by an earlier step)",
                        TASK_VARS.join(", ")
                    )
                }));
            }
        }
        let mut ran = vars.clone();
        if let Some(v) = step.action.defines() {
            ran.insert(v.to_owned());
            anywhere.insert(v.to_owned());
        }
        if step.when.is_some() || (step.optional && step.then.is_some()) {
            meet(&mut into[k + 1], &vars);
        }
        meet(&mut into[step.then.unwrap_or(k + 1)], &ran);
    }
    Ok(into[steps.len()].take().unwrap_or(task))
}

fn parse_result(
    table: &Table,
    top: &Ctx,
    site: Site,
    known: &HashSet<String>,
    steps: &[Step],
) -> Result<ResultMap, RecipeError> {
    let empty = Table::new();
    let raw = match table.get("result") {
        None => &empty,
        Some(Value::Table(t)) => t,
        Some(_) => return Err(top.err("result must be a table")),
    };
    let keys = [
        "email", "username", "password", "cookie", "link_rss", "note",
    ];
    if let Some(k) = raw.keys().find(|k| !keys.contains(&k.as_str())) {
        return Err(top.err(format!(
            "result: unknown key {k:?} (known: {})",
            keys.join(", ")
        )));
    }
    let cookie_var = steps.iter().rev().find_map(|s| match &s.action {
        Action::Cookies(v) => Some(format!("{{{{{v}}}}}")),
        _ => None,
    });
    let get = |key: &str, default: Option<String>| -> Result<Option<Template>, RecipeError> {
        let text = match raw.get(key) {
            Some(v) => Some(
                v.as_str()
                    .ok_or_else(|| top.err(format!("result.{key} must be text")))?
                    .to_owned(),
            ),
            None => default,
        };
        let Some(text) = text else { return Ok(None) };
        let t = Template::parse(&text).map_err(|e| top.err(format!("result.{key}: {e}")))?;
        if let Some(v) = t.vars().find(|v| !known.contains(*v)) {
            return Err(top.err(format!("result.{key}: unknown variable {{{{{v}}}}}")));
        }
        Ok(Some(t))
    };
    let map = ResultMap {
        email: get("email", Some("{{email}}".into()))?,
        username: get("username", Some("{{username}}".into()))?,
        password: get("password", Some("{{password}}".into()))?,
        cookie: get("cookie", cookie_var)?,
        link_rss: get("link_rss", None)?,
        note: get("note", None)?,
    };
    if site == Site::Main && map.link_rss.is_none() {
        return Err(top.err(
            "a main-site recipe must set result.link_rss (e.g. \"{{link_rss}}\" after an extract step)",
        ));
    }
    Ok(map)
}

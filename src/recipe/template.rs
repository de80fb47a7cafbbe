//! Templates (`{{name}}` placeholders over task fields and extracted variables, with filters such as
//! `{{username | lower | truncate:13}}`), Spintax (`{a|b|c}`, nested, resolved with a per-task seed so a retry
//! picks the same words) and HTML-to-text for `about_text`. Pure.

mod filter;

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};

use filter::Filter;

/// A parsed template: literal text and variables (each with its filters), in order.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Var { name: String, filters: Vec<Filter> },
}

impl Template {
    /// Parses `text`; `{{ name }}` is a variable (letters, digits, `_`), optionally followed by filters:
    /// `{{ name | lower | truncate:13 }}`.
    ///
    /// # Errors
    /// A description of the first malformed placeholder or filter (naming the filter).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("unclosed {{{{ in {text:?}"))?;
            let mut pieces = after[..end].split('|');
            let name = pieces.next().unwrap_or_default().trim();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("bad variable name {name:?} in {text:?}"));
            }
            let filters = pieces
                .map(|f| Filter::parse(f).map_err(|e| format!("{e} in {text:?}")))
                .collect::<Result<Vec<_>, _>>()?;
            parts.push(Part::Var {
                name: name.to_owned(),
                filters,
            });
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// Variable names used, in order.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var { name, .. } => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Fills in the variables through their filters (an unknown variable renders empty: validation refuses
    /// those beforehand; `default:TEXT` then gives the text).
    pub fn render(&self, vars: &Vars) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var { name, filters } => {
                    let value = vars.get(name).unwrap_or_default().to_owned();
                    let value = filters.iter().fold(value, |v, f| f.apply(v, vars));
                    out.push_str(&value);
                }
            }
        }
        out
    }
}

/// Values templates see. Secret ones (passwords, cookies, codes) are held as [`SecretString`].
#[derive(Default)]
pub struct Vars {
    plain: HashMap<String, String>,
    secret: HashMap<String, SecretString>,
}

impl std::fmt::Debug for Vars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.plain.keys().chain(self.secret.keys()).collect();
        names.sort();
        f.debug_struct("Vars").field("names", &names).finish()
    }
}

impl Vars {
    /// Sets a plain value.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.secret.remove(name);
        self.plain.insert(name.to_owned(), value.into());
    }

    /// Sets a secret value.
    pub(crate) fn set_secret(&mut self, name: &str, value: SecretString) {
        self.plain.remove(name);
        self.secret.insert(name.to_owned(), value);
    }

    /// A value, plain or secret.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.plain
            .get(name)
            .map(String::as_str)
            .or_else(|| self.secret.get(name).map(|s| s.expose_secret()))
    }

    /// Every secret value held (for scrubbing failure artifacts).
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.secret.values().map(|s| s.expose_secret())
    }
}

/// A small deterministic generator (SplitMix64): the same seed gives the same Spintax choices everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A stable seed from text (FNV-1a), e.g. the task id plus the field name.
pub fn seed(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Resolves Spintax: `{a|b|c}` picks one alternative, innermost groups first. Braces without a `|` inside
/// stay as they are (so CSS or code in `about` survives).
pub fn spin(text: &str, seed: u64) -> String {
    let mut rng = Rng(seed);
    let mut out = text.to_owned();
    // Each round resolves one innermost group; the cap guards against pathological input.
    for _ in 0..10_000 {
        let Some((open, close)) = innermost_group(&out) else {
            break;
        };
        let options: Vec<&str> = out[open + 1..close].split('|').collect();
        let pick = options[(rng.next() % options.len() as u64) as usize].to_owned();
        out.replace_range(open..=close, &pick);
    }
    out
}

/// The first `{…}` holding a `|` and no other brace.
fn innermost_group(text: &str) -> Option<(usize, usize)> {
    let mut open = None;
    for (i, c) in text.char_indices() {
        match c {
            '{' => open = Some(i),
            '}' => {
                if let Some(o) = open
                    && text[o + 1..i].contains('|')
                {
                    return Some((o, i));
                }
                open = None;
            }
            _ => {}
        }
    }
    None
}

/// Plain text of an HTML fragment: tags dropped, `<br>` and block ends as newlines, common entities decoded.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let Some(gt) = rest[lt..].find('>') else {
            rest = &rest[lt..];
            break;
        };
        let tag = rest[lt + 1..lt + gt].trim().to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let block = ["p", "div", "li", "h1", "h2", "h3", "h4", "tr", "ul", "ol"];
        if name == "br" || (tag.starts_with('/') && block.contains(&name.as_str())) {
            out.push('\n');
        }
        rest = &rest[lt + gt + 1..];
    }
    out.push_str(rest);
    let decoded = decode_entities(&out);
    let lines: Vec<&str> = decoded.lines().map(str::trim).collect();
    let mut text = lines.join("\n");
    while text.contains("\n\n\n") {
        text = text.replace("\n\n\n", "\n\n");
    }
    text.trim().to_owned()
}

fn decode_entities(text: &str) -> String {
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::filter::UNIQUE_SUFFIX_LEN;
    use super::*;

    #[test]
    fn templates_render_plain_and_secret_values() {
        let t = Template::parse("Hi {{ name }}, pw={{password}}!").unwrap();
        assert_eq!(t.vars().collect::<Vec<_>>(), ["name", "password"]);
        let mut v = Vars::default();
        v.set("name", "Ann");
        v.set_secret("password", "s3cret".to_owned().into());
        assert_eq!(t.render(&v), "Hi Ann, pw=s3cret!");
        assert!(!format!("{v:?}").contains("s3cret"));
        assert!(Template::parse("{{oops").is_err());
        assert!(Template::parse("{{a b}}").is_err());
    }

    fn render(template: &str, vars: &Vars) -> String {
        Template::parse(template).unwrap().render(vars)
    }

    fn task(id: &str, username: &str) -> Vars {
        let mut v = Vars::default();
        v.set("task_id", id);
        v.set("username", username);
        v
    }

    #[test]
    fn filters_shape_values() {
        let mut v = task("t-1", "Jean-Luc.Picard_2024!");
        v.set("empty", " ");
        assert_eq!(render("{{username | lower}}", &v), "jean-luc.picard_2024!");
        assert_eq!(render("{{ username|upper }}", &v), "JEAN-LUC.PICARD_2024!");
        assert_eq!(render("{{username | slug}}", &v), "jean-luc-picard-2024");
        assert_eq!(render("{{username | slug:_}}", &v), "jean_luc_picard_2024");
        assert_eq!(render("{{username | slug:}}", &v), "jeanlucpicard2024");
        assert_eq!(render("{{username | truncate:4}}", &v), "Jean");
        assert_eq!(render("{{username | digits}}", &v), "2024");
        assert_eq!(
            render("{{username | replace:[^A-Za-z0-9_]:}}", &v),
            "JeanLucPicard_2024"
        );
        assert_eq!(
            render("{{username | replace:(\\d+):<$1>}}", &v),
            "Jean-Luc.Picard_<2024>!"
        );
        assert_eq!(
            render(
                "{{empty | default:anon}}-{{username | default:x | truncate:2}}",
                &v
            ),
            "anon-Je"
        );
        // Filters apply left to right: a username rule of 1-13 letters, digits and underscores.
        assert_eq!(
            render("{{username | slug:_ | truncate:13}}", &v),
            "jean_luc_pica"
        );
    }

    #[test]
    fn unique_and_short_are_stable_per_task_and_differ_between_tasks() {
        let a = render(
            "{{username | slug:_ | unique:13}}",
            &task("t-1", "Jean-Luc Picard"),
        );
        assert_eq!(a.chars().count(), 13);
        assert!(a.starts_with("jean_lu"), "{a}");
        assert_eq!(
            a,
            render(
                "{{username | slug:_ | unique:13}}",
                &task("t-1", "Jean-Luc Picard")
            )
        );
        let b = render(
            "{{username | slug:_ | unique:13}}",
            &task("t-2", "Jean-Luc Picard"),
        );
        assert_ne!(a, b);
        // A short value keeps all of itself.
        let c = render("{{username | unique:13}}", &task("t-1", "bob"));
        assert_eq!(c.len(), 3 + UNIQUE_SUFFIX_LEN);
        let ids: std::collections::HashSet<String> = (0..2_000)
            .map(|i| render("{{username | unique:8}}", &task(&format!("t-{i}"), "dj")))
            .collect();
        assert_eq!(ids.len(), 2_000, "no two tasks collide");
        let s = render("{{task_id | short:6}}", &task("t-1", "x"));
        assert_eq!(s.len(), 6);
        assert!(
            s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{s}"
        );
        assert_eq!(s, render("{{task_id | short:6}}", &task("t-1", "y")));
        assert_ne!(s, render("{{task_id | short:6}}", &task("t-2", "x")));
    }

    #[test]
    fn bad_filters_are_refused_naming_the_filter() {
        let e = |t: &str| Template::parse(t).unwrap_err();
        assert!(e("{{username | shout}}").starts_with("unknown filter \"shout\""));
        assert!(e("{{username | truncate}}").contains("\"truncate\" needs a number"));
        assert!(e("{{username | truncate:x}}").contains("\"x\" is not a number"));
        assert!(e("{{username | truncate:0}}").contains("from 1"));
        assert!(e("{{username | unique:5}}").contains("from 6"));
        assert!(e("{{username | short:13}}").contains("to 12"));
        assert!(e("{{username | lower:1}}").contains("takes no argument"));
        assert!(e("{{username | replace:(:x}}").contains("not a regex"));
        assert!(e("{{username | replace:x}}").contains("replace:REGEX:WITH"));
        assert!(e("{{username | slug:ab}}").contains("separator"));
        assert!(e("{{username | default}}").contains("default:TEXT"));
        assert!(e("{{ | lower}}").contains("bad variable name"));
    }

    #[test]
    fn spintax_is_resolved_deterministically_per_seed() {
        let text = "{Hello|Hi|Hey} {world|{big|small} planet}! {not spintax}";
        let a = spin(text, seed("task-1:about"));
        assert_eq!(a, spin(text, seed("task-1:about")));
        assert!(!a.contains('|'), "{a}");
        assert!(a.ends_with("! {not spintax}"), "{a}");
        let all: std::collections::HashSet<String> =
            (0..50).map(|i| spin(text, seed(&i.to_string()))).collect();
        assert!(all.len() > 3, "choices vary with the seed: {all:?}");
    }

    #[test]
    fn html_becomes_text() {
        let html = "<p>Tech &amp; news</p><p>Every <b>week</b>.<br>Subscribe!</p>";
        assert_eq!(html_to_text(html), "Tech & news\nEvery week.\nSubscribe!");
    }
}

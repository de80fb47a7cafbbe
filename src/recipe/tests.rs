//! Recipe parsing and validation: good recipes load, bad ones are refused naming file and step.

use super::*;

const GOOD: &str = r##"
site = "main"
domains = ["WWW.Demo-Main.test"]
error_selectors = [".error"]

[[steps]]
goto = "http://{{domain}}/signup"

[[steps]]
fill = "#email"
value = "{{email}}"

[[steps]]
click = "button[type=submit]"
navigates = true

[[steps]]
wait_mail = "code"
from = "noreply"
pattern = '(\d{6})'

[[steps]]
fill = "#code"
value = "{{code}}"
timeout_ms = 5000

[[steps]]
extract = "#rss"
attribute = "href"
into = "feed"

[[steps]]
cookies = "session"

[result]
link_rss = "{{feed}}"
"##;

#[test]
fn a_good_recipe_parses_with_defaults() {
    let r = parse_recipe("recipes/demo.toml", GOOD).unwrap();
    assert_eq!(r.name, "demo");
    assert_eq!(r.site, Site::Main);
    assert_eq!(r.domains, ["demo-main.test"]);
    assert_eq!(r.steps.len(), 7);
    assert_eq!(r.steps[4].timeout, Some(Duration::from_millis(5000)));
    assert!(matches!(r.steps[2].action, Action::Click(_, true)));
    assert_eq!(r.captcha_selectors.len(), DEFAULT_CAPTCHA.len());
    let cookie = r.result.cookie.as_ref().unwrap();
    assert_eq!(cookie.vars().collect::<Vec<_>>(), ["session"]);
    assert!(r.result.email.is_some() && r.result.link_rss.is_some());
}

fn err(text: &str) -> String {
    parse_recipe("recipes/bad.toml", text)
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_recipes_are_refused_naming_file_and_step() {
    let head = "site = \"sub\"\ndomains = [\"x.test\"]\n";
    let e = err(&format!(
        "{head}[[steps]]\ngoto = \"http://a\"\n[[steps]]\nhover = \"#a\"\n"
    ));
    assert!(
        e.starts_with("recipes/bad.toml step 2 (?): unknown step"),
        "{e}"
    );

    let e = err(&format!("{head}[[steps]]\nfill = \"#a\"\n"));
    assert_eq!(e, "recipes/bad.toml step 1 (fill): missing field \"value\"");

    let e = err(&format!(
        "{head}[[steps]]\nfill = \"#a\"\nvalue = \"{{{{nope}}}}\"\n"
    ));
    assert!(
        e.starts_with("recipes/bad.toml step 1 (fill): unknown variable {{nope}}"),
        "{e}"
    );

    let e = err(&format!("{head}[[steps]]\nclick = \"#a\"\nvalue = \"x\"\n"));
    assert_eq!(e, "recipes/bad.toml step 1 (click): unknown key \"value\"");

    let e = err(&format!("{head}[[steps]]\nwait_url = \"(\"\n"));
    assert!(
        e.contains("step 1 (wait_url): wait_url is not a regex"),
        "{e}"
    );

    // A variable is known only after the step that sets it.
    let e = err(&format!(
        "{head}[[steps]]\ngoto = \"{{{{link}}}}\"\n[[steps]]\nextract = \"a\"\ninto = \"link\"\n"
    ));
    assert!(
        e.contains("step 1 (goto): unknown variable {{link}}"),
        "{e}"
    );
}

#[test]
fn bad_top_level_fields_are_refused() {
    assert!(
        err("site = \"both\"\ndomains = [\"x\"]\n[[steps]]\ngoto = \"a\"\n")
            .contains("site must be")
    );
    assert!(err("site = \"sub\"\n[[steps]]\ngoto = \"a\"\n").contains("domains"));
    assert!(err("site = \"sub\"\ndomains = [\"x\"]\n").contains("steps"));
    let e = err("site = \"main\"\ndomains = [\"x\"]\n[[steps]]\ngoto = \"a\"\n");
    assert!(e.contains("result.link_rss"), "{e}");
    let e = err("site = \"sub\"\ndomains = [\"x\"]\nsteps_ = 1\n[[steps]]\ngoto = \"a\"\n");
    assert!(e.contains("unknown key \"steps_\""), "{e}");
}

#[test]
fn the_shipped_recipes_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes");
    if dir.is_dir() {
        let recipes = load_dir(&dir).unwrap();
        assert!(!recipes.is_empty());
    }
}

#[test]
fn resume_rules_name_a_step_and_are_checked() {
    let head = "site = \"sub\"\ndomains = [\"x.test\"]\n";
    let steps =
        "[[steps]]\ngoto = \"http://a\"\n[[steps]]\nname = \"log in\"\ngoto = \"http://a/login\"\n";
    let ok = format!("{head}[[resume]]\nwhen = \"Already registered\"\nfrom = \"log in\"\n{steps}");
    let r = parse_recipe("recipes/ok.toml", &ok).unwrap();
    assert_eq!(r.resume.len(), 1);
    assert_eq!(
        (r.resume[0].when.as_str(), r.resume[0].from),
        ("Already registered", 1)
    );

    let e = err(&format!(
        "{head}[[resume]]\nwhen = \"x\"\nfrom = \"nowhere\"\n{steps}"
    ));
    assert_eq!(
        e,
        "recipes/bad.toml: resume 1: from = \"nowhere\" names no step"
    );
    let e = err(&format!("{head}[[resume]]\nfrom = \"log in\"\n{steps}"));
    assert!(e.contains("resume 1: when must be non-empty text"), "{e}");
    let e = err(&format!(
        "{head}[[resume]]\nwhen = \"x\"\nfrom = \"log in\"\nto = 1\n{steps}"
    ));
    assert!(e.contains("resume 1: unknown key \"to\""), "{e}");
}

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
    assert!(matches!(
        r.steps[2].action,
        Action::Click {
            navigates: true,
            ..
        }
    ));
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

const HEAD: &str = "site = \"sub\"\ndomains = [\"x.test\"]\n";

#[test]
fn secret_task_variables_are_known_and_the_totp_secret_is_not() {
    let r = parse_recipe(
        "recipes/ok.toml",
        &format!(
            "{HEAD}[[steps]]\nfill = \"#p\"\nvalue = \"{{{{pass_mail}}}}\"\n[[steps]]\nfill = \"#a\"\nvalue = \"{{{{app_password}}}}\"\n"
        ),
    )
    .unwrap();
    assert_eq!(r.steps.len(), 2);
    for v in SECRET_TASK_VARS {
        assert!(TASK_VARS.contains(v), "{v}");
    }
    let e = err(&format!(
        "{HEAD}[[steps]]\nfill = \"#p\"\nvalue = \"{{{{twofa}}}}\"\n"
    ));
    assert!(e.contains("unknown variable {{twofa}}"), "{e}");
}

#[test]
fn filters_are_checked_at_load_naming_file_step_and_filter() {
    let ok = format!(
        "{HEAD}[[steps]]\nfill = \"#u\"\nvalue = \"{{{{username | slug:_ | unique:13}}}}\"\n"
    );
    assert!(parse_recipe("recipes/ok.toml", &ok).is_ok());
    let e = err(&format!(
        "{HEAD}[[steps]]\ngoto = \"http://a\"\n[[steps]]\nfill = \"#u\"\nvalue = \"{{{{username | shout}}}}\"\n"
    ));
    assert!(
        e.starts_with("recipes/bad.toml step 2 (fill): value: unknown filter \"shout\""),
        "{e}"
    );
    let e = err(&format!(
        "{HEAD}[[steps]]\nfill = \"#u\"\nvalue = \"{{{{username | truncate:x}}}}\"\n"
    ));
    assert!(
        e.contains("step 1 (fill): value: filter \"truncate\""),
        "{e}"
    );
    let e = err(&format!(
        "{HEAD}[[steps]]\ngoto = \"http://a\"\n[result]\nusername = \"{{{{username | nope}}}}\"\n"
    ));
    assert!(
        e.contains("result.username: unknown filter \"nope\""),
        "{e}"
    );
}

#[test]
fn conditions_and_jumps_parse_and_are_checked() {
    let ok = format!(
        "{HEAD}[[steps]]\ngoto = \"http://a\"\n\
         [[steps]]\nif_visible = \"#banner\"\nclick = \"#ok\"\n\
         [[steps]]\nif_url = \"/settings\"\ngoto_step = \"settings\"\n\
         [[steps]]\nif_text = \"{{{{username}}}}\"\nfill = \"#t\"\nvalue = \"x\"\nthen = \"end\"\n\
         [[steps]]\nname = \"settings\"\nwait_for = \"#s\"\n\
         [[steps]]\nname = \"end\"\nfail_if = \".odd\"\nkind = \"recipe\"\n"
    );
    let r = parse_recipe("recipes/ok.toml", &ok).unwrap();
    assert!(matches!(&r.steps[1].when, Some(Condition::Visible(s)) if s == "#banner"));
    assert!(matches!(&r.steps[2].when, Some(Condition::Url(_))));
    assert_eq!(r.steps[2].then, Some(4));
    assert!(matches!(&r.steps[3].when, Some(Condition::Text(_))));
    assert_eq!(r.steps[3].then, Some(5));
    assert!(matches!(
        r.steps[5].action,
        Action::FailIf {
            kind: GuardKind::Recipe,
            ..
        }
    ));

    let jump = |to: &str| {
        err(&format!(
            "{HEAD}[[steps]]\nname = \"a\"\ngoto = \"http://a\"\n[[steps]]\nname = \"b\"\ngoto_step = \"{to}\"\n\
             [[steps]]\nname = \"c\"\nwait_for = \"#c\"\n"
        ))
    };
    assert_eq!(
        jump("a"),
        "recipes/bad.toml step 2 (goto_step): goto_step: step \"a\" (step 1) is not after this one; jumps only go forward"
    );
    assert!(jump("b").contains("is not after this one"));
    assert!(
        jump("z").contains("goto_step: \"z\" names no step"),
        "{}",
        jump("z")
    );
    let e = err(&format!(
        "{HEAD}[[steps]]\ngoto = \"http://a\"\nthen = \"x\"\n[[steps]]\nname = \"x\"\nwait_for = \"#a\"\n[[steps]]\nname = \"x\"\nwait_for = \"#b\"\n"
    ));
    assert!(e.contains("then: \"x\" names 2 steps"), "{e}");
    let e = err(&format!(
        "{HEAD}[[steps]]\nif_url = \"a\"\nif_text = \"b\"\ngoto = \"http://a\"\n"
    ));
    assert!(e.contains("at most one condition"), "{e}");
    let e = err(&format!(
        "{HEAD}[[steps]]\ngoto_step = \"x\"\nthen = \"x\"\n[[steps]]\nname = \"x\"\ngoto = \"http://a\"\n"
    ));
    assert!(e.contains("a then key is not allowed"), "{e}");
    let e = err(&format!(
        "{HEAD}[[steps]]\nfail_if = \"#a\"\nkind = \"user\"\n"
    ));
    assert!(e.contains("kind must be"), "{e}");
}

#[test]
fn a_variable_set_in_a_skippable_step_is_refused_where_it_may_be_unset() {
    let extract = "[[steps]]\nif_visible = \"#code\"\nextract = \"#code\"\ninto = \"code\"\n";
    let e = err(&format!(
        "{HEAD}[[steps]]\ngoto = \"http://a\"\n{extract}[[steps]]\nfill = \"#c\"\nvalue = \"{{{{code}}}}\"\n"
    ));
    assert!(
        e.starts_with("recipes/bad.toml step 3 (fill): variable {{code}} may be unset here"),
        "{e}"
    );
    // Set on both branches, it is known after them.
    let both = format!(
        "{HEAD}[[steps]]\nif_visible = \"#a\"\nextract = \"#a\"\ninto = \"v\"\nthen = \"use\"\n\
         [[steps]]\nextract = \"#b\"\ninto = \"v\"\n\
         [[steps]]\nname = \"use\"\nfill = \"#c\"\nvalue = \"{{{{v}}}}\"\n[result]\nnote = \"{{{{v}}}}\"\n"
    );
    parse_recipe("recipes/ok.toml", &both).unwrap();
    // Jumped over, it is not.
    let jumped = format!(
        "{HEAD}[[steps]]\nif_url = \"x\"\ngoto_step = \"use\"\n[[steps]]\nextract = \"#b\"\ninto = \"v\"\n\
         [[steps]]\nname = \"use\"\ngoto = \"http://a\"\n[result]\nnote = \"{{{{v}}}}\"\n"
    );
    let e = err(&jumped);
    assert!(e.contains("result.note: unknown variable {{v}}"), "{e}");
}

#[test]
fn a_run_may_start_at_a_named_step_when_its_variables_allow() {
    let r = parse_recipe(
        "recipes/demo.toml",
        GOOD.replace(
            "[[steps]]\nfill = \"#code\"",
            "[[steps]]\nname = \"code\"\nfill = \"#code\"",
        )
        .as_str(),
    )
    .unwrap();
    let e = parse::start_at(&r, "code").unwrap_err().to_string();
    assert!(
        e.contains("unknown variable {{code}}") && e.contains("(starting at \"code\")"),
        "{e}"
    );
    let named = GOOD.replace(
        "[[steps]]\nextract = \"#rss\"",
        "[[steps]]\nname = \"rss\"\nextract = \"#rss\"",
    );
    let r = parse_recipe("recipes/demo.toml", &named).unwrap();
    assert_eq!(parse::start_at(&r, "rss").unwrap(), 5);
    assert!(
        parse::start_at(&r, "nowhere")
            .unwrap_err()
            .to_string()
            .contains("--from: \"nowhere\" names no step")
    );
}

#[test]
fn block_lists_resource_types_and_a_step_unblocks_only_blocked_ones() {
    use crate::browser::Resource;
    let head = "site = \"sub\"\ndomains = [\"x.test\"]\n";
    let text = format!(
        "{head}block = [\"image\", \"Font\", \"media\", \"stylesheet\", \"image\"]\n\
         [[steps]]\ngoto = \"http://a\"\n[[steps]]\ngoto = \"http://a/cover\"\nunblock = [\"image\"]\n"
    );
    let r = parse_recipe("recipes/x.toml", &text).unwrap();
    let all = [
        Resource::Image,
        Resource::Font,
        Resource::Media,
        Resource::Stylesheet,
    ];
    assert_eq!(r.block, all);
    assert!(r.steps[0].unblock.is_empty());
    assert_eq!(r.steps[1].unblock, [Resource::Image]);

    let e = err(&format!(
        "{head}block = [\"images\"]\n[[steps]]\ngoto = \"a\"\n"
    ));
    assert!(
        e.starts_with("recipes/bad.toml: block: unknown resource type \"images\" (known: image,"),
        "{e}"
    );
    let e = err(&format!(
        "{head}block = [\"document\"]\n[[steps]]\ngoto = \"a\"\n"
    ));
    assert!(e.contains("block: \"document\" cannot be blocked"), "{e}");
    let e = err(&format!(
        "{head}block = \"image\"\n[[steps]]\ngoto = \"a\"\n"
    ));
    assert!(e.contains("block must be a list of text"), "{e}");
    let e = err(&format!(
        "{head}block = [\"image\"]\n[[steps]]\ngoto = \"a\"\nunblock = [\"font\"]\n"
    ));
    assert_eq!(
        e,
        "recipes/bad.toml step 1 (goto): unblock: \"font\" is not blocked by this recipe \
         (block = [\"image\"])"
    );
    let e = err(&format!(
        "{head}block = [\"image\"]\n[[steps]]\ngoto = \"a\"\nunblock = [\"imag\"]\n"
    ));
    assert!(
        e.starts_with("recipes/bad.toml step 1 (goto): unblock: unknown resource type \"imag\""),
        "{e}"
    );
}

//! README.md stays true: its configuration table lists every variable with its real default.

use crate::helpers::every_var as all_vars;

/// The table rows README.md must contain, one per variable, in `all_vars()` order.
fn expected_rows() -> Vec<String> {
    all_vars()
        .map(|v| {
            let default = match (v.secret, v.default) {
                (true, _) => "(secret)".to_owned(),
                (false, Some("")) => "(empty)".to_owned(),
                (false, Some(d)) => format!("`{d}`"),
                (false, None) => "—".to_owned(),
            };
            format!("| `{}` | {} | {} |", v.name, default, v.help)
        })
        .collect()
}

#[test]
fn readme_configuration_table_matches_the_code() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let missing: Vec<String> = expected_rows()
        .into_iter()
        .filter(|row| !readme.contains(row.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's configuration table is out of date; these rows are missing or differ:\n{}\n\nThe full table:\n{}",
        missing.join("\n"),
        expected_rows().join("\n")
    );
}

#[test]
fn readme_shows_the_test_and_demo_commands() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    for command in ["scripts/test", "scripts/demo"] {
        assert!(readme.contains(command), "README.md must show `{command}`");
    }
}

/// `scripts/config-table` runs this to print the rows for README.md.
#[test]
#[ignore = "prints the table for scripts/config-table"]
fn print_configuration_table() {
    for row in expected_rows() {
        println!("{row}");
    }
}

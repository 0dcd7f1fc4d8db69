//! Golden diagnostics: every `tests/diagnostics/*.sql` must fail to compile with exactly
//! the rendered diagnostic in the `.expected` file beside it. The first comment line of
//! each case says what it checks; a `-- references: a, b` line declares reference inputs. Run with `EDDY_BLESS=1` to regenerate the expected
//! files, then review the diff.

use std::path::Path;

#[test]
fn golden_diagnostics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diagnostics");
    let bless = std::env::var("EDDY_BLESS").is_ok_and(|v| v == "1");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/diagnostics exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    cases.sort();
    let mut failures = Vec::new();
    for sql in &cases {
        let text = std::fs::read_to_string(sql).expect("readable case");
        assert!(
            text.starts_with("-- checks: "),
            "{} must start with '-- checks: ...'",
            sql.display()
        );
        // `-- references: a, b` declares reference inputs, as a job would.
        let reference_inputs = text
            .lines()
            .find_map(|l| l.strip_prefix("-- references: "))
            .map(|names| names.split(',').map(|n| n.trim().to_string()).collect())
            .unwrap_or_default();
        let options = eddy_sql::BindOptions { reference_inputs };
        let actual = match eddy_sql::compile_with(&text, &options) {
            Err(d) => d.render(&text),
            Ok(_) => "(compiled without error)\n".to_string(),
        };
        let expected_path = sql.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &actual).expect("writable expected file");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{}:\n--- expected\n{expected}--- actual\n{actual}",
                sql.display()
            ));
        }
    }
    assert!(cases.len() >= 40, "only {} diagnostic cases", cases.len());
    assert!(
        failures.is_empty(),
        "{} mismatches (EDDY_BLESS=1 regenerates):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

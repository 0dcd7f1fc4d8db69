//! Golden tests of `eddy run`, through the real binary.
//!
//! Each case is a directory under `tests/run/` holding `query.sql`, its input files,
//! `args` (the options after the query, run from the case directory) and the expected
//! result: `expected.ndjson` (stdout), `expected/<output>.json` (one file per output,
//! with `--output-dir`), or `expected.stderr` with `exit_code` for a failing run.
//! The expected files are the specification, checked by hand; `EDDY_BLESS=1`
//! rewrites them from the actual output for review in the diff.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn case_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/run")
        .join(case)
}

fn run_case(case: &str, output_dir: Option<&Path>) -> Output {
    let dir = case_dir(case);
    let args = std::fs::read_to_string(dir.join("args")).expect("args file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_eddy"));
    command
        .current_dir(&dir)
        .arg("run")
        .arg("query.sql")
        .args(args.split_whitespace());
    if let Some(out) = output_dir {
        command.arg("--output-dir").arg(out);
    }
    command.env_remove("RUST_LOG").output().expect("eddy runs")
}

fn bless() -> bool {
    std::env::var_os("EDDY_BLESS").is_some_and(|v| v == "1")
}

fn compare(expected_path: &Path, actual: &[u8]) {
    if bless() {
        std::fs::write(expected_path, actual).expect("bless");
        return;
    }
    let expected = std::fs::read(expected_path).unwrap_or_default();
    assert_eq!(
        String::from_utf8_lossy(actual),
        String::from_utf8_lossy(&expected),
        "{} differs (EDDY_BLESS=1 regenerates it)",
        expected_path.display()
    );
}

/// Runs a case and compares everything it produced with what it expects.
fn check(case: &str) {
    let dir = case_dir(case);
    let temp = tempfile::tempdir().expect("tempdir");
    let by_output = dir.join("expected").is_dir();
    let output = run_case(case, by_output.then(|| temp.path()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code: i32 = std::fs::read_to_string(dir.join("exit_code"))
        .map_or(0, |c| c.trim().parse().expect("exit code"));
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit status of {case}; stderr:\n{stderr}"
    );
    if code != 0 {
        compare(&dir.join("expected.stderr"), &output.stderr);
        return;
    }
    if !by_output {
        compare(&dir.join("expected.ndjson"), &output.stdout);
        return;
    }
    assert!(output.stdout.is_empty(), "rows on stdout with --output-dir");
    let names = |path: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(path)
            .expect("read dir")
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    };
    if !bless() {
        assert_eq!(
            names(temp.path()),
            names(&dir.join("expected")),
            "output files of {case}"
        );
    }
    for name in names(temp.path()) {
        let actual = std::fs::read(temp.path().join(&name)).expect("output file");
        compare(&dir.join("expected").join(name), &actual);
    }
}

#[test]
fn tumbling_count_per_key() {
    check("tumbling_count_per_key");
}

#[test]
fn hopping_with_offset() {
    check("hopping_with_offset");
}

#[test]
fn event_at_window_end() {
    check("event_at_window_end");
}

#[test]
fn late_event_adjust() {
    check("late_event_adjust");
}

#[test]
fn late_event_drop() {
    check("late_event_drop");
}

#[test]
fn with_step_feeds_output() {
    check("with_step_feeds_output");
}

#[test]
fn two_outputs() {
    check("two_outputs");
}

#[test]
fn syntax_error_points_at_line_and_column() {
    check("syntax_error");
    let output = run_case("syntax_error", None);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--> 4:17"),
        "the diagnostic names 4:17"
    );
}

#[test]
fn bad_event_names_file_and_line() {
    check("bad_event_line");
}

#[test]
fn same_files_same_bytes() {
    let runs: Vec<Vec<Vec<u8>>> = (0..2)
        .map(|_| {
            let temp = tempfile::tempdir().expect("tempdir");
            let output = run_case("two_outputs", Some(temp.path()));
            assert!(output.status.success());
            ["hot.json", "perdevice.json"]
                .iter()
                .map(|f| std::fs::read(temp.path().join(f)).expect("output"))
                .collect()
        })
        .collect();
    assert_eq!(runs[0], runs[1]);
}

#[test]
fn several_outputs_need_an_output_dir() {
    let output = run_case("two_outputs", None);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--output-dir"));
}

#[test]
fn unknown_input_alias_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .current_dir(case_dir("event_at_window_end"))
        .args(["run", "query.sql", "--input", "nosuch=events.ndjson"])
        .output()
        .expect("eddy runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no input 'nosuch'"));
}

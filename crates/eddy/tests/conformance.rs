//! The conformance suite: every case under `conformance/` run through the real `eddy run`.
//!
//! A case is a directory holding `query.sql`, its input files, `args` (the options after
//! the query, run from the case directory) and the expected result: `expected.ndjson`
//! (stdout), `expected/<output>.json` (one file per output, with `--output-dir`), or
//! `expected.stderr` with `exit_code` for a failing run. The expected files are the
//! specification, checked by hand; `EDDY_BLESS=1` rewrites them from the actual output
//! for review in the diff, and `EDDY_CASE=substring` runs only the matching cases.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance")
}

fn case_dir(case: &str) -> PathBuf {
    suite_dir().join(case)
}

/// Every directory under `conformance/` with a `query.sql`, as a path relative to it.
fn discover(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("conformance directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let case = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if path.join("query.sql").is_file() {
            out.push(case);
        } else {
            discover(&path, &case, out);
        }
    }
}

fn run_case(case: &str, output_dir: Option<&Path>) -> Output {
    let dir = case_dir(case);
    let args = std::fs::read_to_string(dir.join("args")).unwrap_or_default();
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

fn compare(expected_path: &Path, actual: &[u8]) -> Result<(), String> {
    if bless() {
        std::fs::write(expected_path, actual).expect("bless");
        return Ok(());
    }
    let expected = std::fs::read(expected_path).unwrap_or_default();
    if actual == expected.as_slice() {
        return Ok(());
    }
    Err(format!(
        "{} differs (EDDY_BLESS=1 regenerates it)\n--- expected\n{}--- actual\n{}",
        expected_path.display(),
        String::from_utf8_lossy(&expected),
        String::from_utf8_lossy(actual)
    ))
}

fn file_names(path: &Path) -> Vec<String> {
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
}

/// Runs a case and compares everything it produced with what it expects.
fn check(case: &str) -> Result<(), String> {
    let dir = case_dir(case);
    let temp = tempfile::tempdir().expect("tempdir");
    let by_output = dir.join("expected").is_dir();
    let output = run_case(case, by_output.then(|| temp.path()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code: i32 = std::fs::read_to_string(dir.join("exit_code"))
        .map_or(0, |c| c.trim().parse().expect("exit code"));
    if output.status.code() != Some(code) {
        return Err(format!(
            "exit status {:?}, expected {code}; stderr:\n{stderr}",
            output.status.code()
        ));
    }
    if code != 0 {
        return compare(&dir.join("expected.stderr"), &output.stderr);
    }
    if !by_output {
        return compare(&dir.join("expected.ndjson"), &output.stdout);
    }
    if !output.stdout.is_empty() {
        return Err("rows on stdout with --output-dir".into());
    }
    let actual = file_names(temp.path());
    if !bless() && actual != file_names(&dir.join("expected")) {
        return Err(format!("output files {actual:?} differ from expected/"));
    }
    for name in actual {
        let bytes = std::fs::read(temp.path().join(&name)).expect("output file");
        compare(&dir.join("expected").join(name), &bytes)?;
    }
    Ok(())
}

#[test]
fn every_case_matches_its_expected_output() {
    let mut cases = Vec::new();
    discover(&suite_dir(), "", &mut cases);
    assert!(cases.len() >= 9, "the suite has cases: {cases:?}");
    if let Some(filter) = std::env::var_os("EDDY_CASE") {
        let filter = filter.to_string_lossy().into_owned();
        cases.retain(|c| c.contains(&filter));
    }
    let queue = Mutex::new(cases.clone());
    let failures = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some(case) = queue.lock().expect("queue").pop() {
                    if let Err(why) = check(&case) {
                        failures
                            .lock()
                            .expect("failures")
                            .push(format!("{case}: {why}"));
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().expect("failures");
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} of {} conformance cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn syntax_error_points_at_line_and_column() {
    let output = run_case("errors/syntax_error", None);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--> 4:17"),
        "the diagnostic names 4:17"
    );
}

#[test]
fn same_files_same_bytes() {
    let runs: Vec<Vec<Vec<u8>>> = (0..2)
        .map(|_| {
            let temp = tempfile::tempdir().expect("tempdir");
            let output = run_case("structure/two_outputs", Some(temp.path()));
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
    let output = run_case("structure/two_outputs", None);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--output-dir"));
}

#[test]
fn unknown_input_alias_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .current_dir(case_dir("windows/event_at_window_end"))
        .args(["run", "query.sql", "--input", "nosuch=events.ndjson"])
        .output()
        .expect("eddy runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no input 'nosuch'"));
}

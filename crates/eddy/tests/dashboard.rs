//! The dashboard as a user sees it: headless Chromium (Playwright, `tests/dashboard/check.py`)
//! opens it on a server with authentication on and reads streams, consumer-group lag, job
//! health, the live chart and the query box after real traffic.

mod common;

use common::ServerProcess;
use serde_json::json;
use std::process::Command;

const TOKEN: &str = "dashboard-s3cret";

#[test]
fn dashboard_shows_streams_group_lag_jobs_chart_and_queries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start_with(dir.path(), &["--auth-token", TOKEN]);
    server.start_toll_counts();
    server.wait_for("SELECT TollId FROM TollCounts", |rows| rows.len() >= 3);

    // A consumer group reads two of the five events and commits: it lags by three.
    let consumed = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["consume", "tolls", "--group", "audit", "--max-events", "2"])
        .args(["--server", &server.base, "--auth-token", TOKEN])
        .output()
        .expect("eddy consume runs");
    assert!(
        consumed.status.success(),
        "{}",
        String::from_utf8_lossy(&consumed.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&consumed.stdout).lines().count(), 2);

    let expect = json!({
        "stream": ["tolls", 5],
        "group": ["audit", "tolls", 3],
        "job": ["toll-counts", "running", 5],
        "chart": ["TollCounts", "WindowEnd", "Cars"],
        "chart_total": "sum of Cars",
        "chart_key": ["TollId", "1,2"],
        "query": ["SELECT TollId, Cars FROM TollCounts ORDER BY WindowEnd, TollId", "1"],
        "query_error": ["SELECT Cars FROM", "SQL error: syntax error: Expected: identifier, found: EOF"],
    });
    let screenshot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/dashboard/check.py");
    let run = Command::new("python3")
        .arg(script)
        .args([&server.base, TOKEN, &expect.to_string()])
        .arg(&screenshot)
        .output()
        .expect("python3 runs (crates/eddy/tests/dashboard/setup.sh installs Playwright)");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "dashboard check failed (screenshot: {}):\n{stdout}\n{}",
        screenshot.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    for check in [
        "streams:",
        "groups:",
        "jobs:",
        "chart:",
        "query:",
        "query error:",
        "wrong token: 401",
    ] {
        assert!(stdout.contains(check), "{check} missing from:\n{stdout}");
    }
}

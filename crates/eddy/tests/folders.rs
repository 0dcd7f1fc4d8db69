//! Folder capture through the real binary: files of every supported format dropped into a
//! watched folder become events once each, a file still being written is read only when
//! complete, bad lines go to the dead-letter stream, and a restart after `kill -9` takes
//! up new files without reading old ones again.

mod common;

use common::ServerProcess;
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Every event of a one-partition stream, in order.
fn events(server: &ServerProcess, stream: &str) -> Vec<Value> {
    let url = format!(
        "{}/api/streams/{stream}/events?partition=0&offset=0&max=10000",
        server.base
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent.get(&url).call().expect("read events");
    if response.status() != 200 {
        return Vec::new();
    }
    let body: Value = response.body_mut().read_json().expect("JSON");
    body["events"].as_array().cloned().unwrap_or_default()
}

fn wait_for_count(server: &ServerProcess, stream: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = events(server, stream);
        if got.len() >= count || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ids(events: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = events
        .iter()
        .map(|e| match &e["value"]["id"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    ids.sort();
    ids
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use flate2::write::GzEncoder;
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

fn start(data: &Path, folder: &Path) -> ServerProcess {
    let watch = format!("readings={}", folder.display());
    ServerProcess::start_with(data, &["--watch", &watch, "--watch-settle-ms", "1000"])
}

#[test]
fn files_in_a_watched_folder_become_events_exactly_once() {
    let data = tempfile::tempdir().expect("tempdir");
    let folder = tempfile::tempdir().expect("tempdir");
    let f = folder.path();
    let server = start(data.path(), f);

    std::fs::write(
        f.join("a.ndjson"),
        "{\"id\":1}\n{\"id\":2}\nnot json\n{\"id\":3}\n",
    )
    .unwrap();
    std::fs::create_dir(f.join("sub")).unwrap();
    std::fs::write(f.join("sub/b.csv"), "id,temp\n4,21.5\n5,22\n").unwrap();
    std::fs::write(f.join("c.json.gz"), gzip(b"[{\"id\":6},{\"id\":7}]")).unwrap();
    std::fs::write(f.join("notes.txt"), "ignored").unwrap();
    // Written under a temporary name, then renamed in: read only under its final name.
    std::fs::write(f.join("d.json.tmp"), "{\"id\":8}").unwrap();
    // Written slowly: never read before its last line is there.
    let mut slow = std::fs::File::create(f.join("slow.ndjson")).unwrap();
    for id in 10..20 {
        writeln!(slow, "{{\"id\":{id}}}").unwrap();
        slow.flush().unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(slow);
    std::fs::rename(f.join("d.json.tmp"), f.join("d.json")).unwrap();

    let expected: Vec<String> = {
        let mut v: Vec<String> = [1, 2, 3, 4, 5, 6, 7, 8]
            .iter()
            .chain(&(10..20).collect::<Vec<_>>())
            .map(|i| i.to_string())
            .collect();
        v.sort();
        v
    };
    let got = wait_for_count(&server, "readings", expected.len());
    std::thread::sleep(Duration::from_millis(1500));
    let got_after = events(&server, "readings");
    assert_eq!(got.len(), got_after.len(), "nothing more arrives later");
    // CSV values are strings, as in ASA; JSON numbers stay numbers.
    let mut seen = ids(&got_after);
    seen.iter_mut()
        .for_each(|s| *s = s.trim_matches('"').to_string());
    seen.sort();
    assert_eq!(seen, expected);
    let csv_row = got_after
        .iter()
        .find(|e| e["value"]["id"] == "4")
        .expect("CSV row");
    assert_eq!(csv_row["value"]["temp"], "21.5");

    let dead = wait_for_count(&server, "readings-deadletter", 1);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["value"]["file"], "a.ndjson");
    assert_eq!(dead[0]["value"]["line"], 3);
    assert_eq!(dead[0]["value"]["text"], "not json");

    let metrics = ureq::get(format!("{}/metrics", server.base))
        .call()
        .expect("metrics")
        .body_mut()
        .read_to_string()
        .expect("text");
    assert!(
        metrics.contains("eddy_folder_files_captured_total{stream=\"readings\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("eddy_dead_letters_total{stream=\"readings\"} 1"),
        "{metrics}"
    );

    // kill -9, then a restart: old files stay captured once, a new one is taken up.
    server.kill();
    let server = start(data.path(), f);
    std::fs::write(f.join("e.ndjson"), "{\"id\":9}\n").unwrap();
    let after = wait_for_count(&server, "readings", expected.len() + 1);
    std::thread::sleep(Duration::from_millis(1500));
    let after = events(&server, "readings").len().max(after.len());
    assert_eq!(
        after,
        expected.len() + 1,
        "each file once across the restart"
    );
}

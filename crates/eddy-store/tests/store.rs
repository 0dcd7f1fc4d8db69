//! Behaviour of the store that jobs, the HTTP API and `eddy query` rely on.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use eddy_store::{Cell, Row, Store, StoreConfig, StoreError};
use serde_json::{Value, json};

fn row(cells: &[(&str, Cell)]) -> Row {
    cells
        .iter()
        .map(|(n, c)| (n.to_string(), c.clone()))
        .collect()
}

/// A store that flushes only when asked, so tests control what is in Parquet.
fn open(dir: &Path) -> Store {
    let config = StoreConfig {
        flush_rows: usize::MAX,
        flush_interval_ms: u64::MAX,
    };
    Store::open(dir, config).expect("open store")
}

async fn rows(store: &Store, sql: &str) -> Vec<Vec<Value>> {
    store.query(sql).await.expect("query").rows
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for table in fs::read_dir(dir.join("tables")).expect("tables dir") {
        for f in fs::read_dir(table.expect("entry").path()).expect("table dir") {
            let p = f.expect("entry").path();
            if p.extension().is_some_and(|e| e == ext) {
                found.push(p);
            }
        }
    }
    found.sort();
    found
}

fn toll_rows(range: std::ops::Range<i64>) -> Vec<Row> {
    range
        .map(|i| row(&[("TollId", Cell::Int(i % 3)), ("Seq", Cell::Int(i))]))
        .collect()
}

#[tokio::test]
async fn written_rows_are_queryable_with_exact_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let ts = 1_704_067_500_000_000_000; // 2024-01-01T00:05:00Z
    store
        .write(
            "Readings",
            &[
                row(&[
                    ("Id", Cell::Int(1)),
                    ("Temp", Cell::Float(20.5)),
                    ("Name", Cell::Str("a".into())),
                    ("Ok", Cell::Bool(true)),
                    ("At", Cell::Timestamp(ts)),
                    ("Tags", Cell::Json(r#"{"k":1}"#.into())),
                ]),
                row(&[
                    ("Nothing", Cell::Null),
                    ("Id", Cell::Int(2)),
                    ("Temp", Cell::Null),
                    ("Name", Cell::Str("b".into())),
                ]),
            ],
        )
        .unwrap();
    let result = store
        .query("SELECT Id, Temp, Name, Ok, At, Tags FROM Readings ORDER BY Id")
        .await
        .unwrap();
    assert_eq!(result.columns, ["Id", "Temp", "Name", "Ok", "At", "Tags"]);
    assert_eq!(
        result.rows,
        vec![
            vec![
                json!(1),
                json!(20.5),
                json!("a"),
                json!(true),
                json!("2024-01-01T00:05:00.0000000Z"),
                json!(r#"{"k":1}"#)
            ],
            vec![
                json!(2),
                Value::Null,
                json!("b"),
                Value::Null,
                Value::Null,
                Value::Null
            ],
        ]
    );
    // The same values come back from Parquet.
    store.flush().unwrap();
    let reread = store
        .query("SELECT Id, Temp, Name, Ok, At, Tags FROM Readings ORDER BY Id")
        .await
        .unwrap();
    assert_eq!(reread, result);
    assert_eq!(
        rows(&store, "SELECT COUNT(*), COUNT(Nothing) FROM readings").await,
        vec![vec![json!(2), json!(0)]]
    );
    let info = store.tables();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].name, "Readings");
    assert_eq!(info[0].rows, 2);
    let types: Vec<&str> = info[0].columns.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "bigint",
            "float",
            "string",
            "bool",
            "timestamp",
            "string",
            "null"
        ]
    );
}

#[tokio::test]
async fn table_and_column_names_match_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.write("TollCounts", &toll_rows(0..6)).unwrap();
    store
        .write(
            "TOLLCOUNTS",
            &[row(&[("tollid", Cell::Int(0)), ("SEQ", Cell::Int(6))])],
        )
        .unwrap();
    assert_eq!(store.tables().len(), 1);
    assert_eq!(store.tables()[0].name, "TollCounts");

    let result = store
        .query("select tollid, COUNT(*) AS Total from tollcounts where SEQ >= 0 group by TOLLID order by total desc, TollId")
        .await
        .unwrap();
    assert_eq!(result.columns, ["TollId", "Total"]);
    assert_eq!(
        result.rows,
        vec![
            vec![json!(0), json!(3)],
            vec![json!(1), json!(2)],
            vec![json!(2), json!(2)]
        ]
    );

    let star = store
        .query("SELECT * FROM TollCounts WHERE seq = 6")
        .await
        .unwrap();
    assert_eq!(star.columns, ["TollId", "Seq"]);
    assert_eq!(star.rows, vec![vec![json!(0), json!(6)]]);
    // Quoted identifiers stay exact, as in SQL.
    assert!(matches!(
        store.query(r#"SELECT "tollid" FROM TollCounts"#).await,
        Err(StoreError::Sql(_))
    ));
}

#[tokio::test]
async fn columns_evolve_new_columns_null_int_to_float_conflicts_to_string() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .write("T", &[row(&[("a", Cell::Int(1)), ("b", Cell::Int(1))])])
        .unwrap();
    store.flush().unwrap(); // the first row is read back from Parquet with the newer schema
    store
        .write(
            "T",
            &[row(&[
                ("a", Cell::Float(2.5)),
                ("b", Cell::Bool(true)),
                ("c", Cell::Str("x".into())),
            ])],
        )
        .unwrap();
    let result = store
        .query("SELECT a, b, c FROM t ORDER BY a")
        .await
        .unwrap();
    assert_eq!(
        result.rows,
        vec![
            vec![json!(1.0), json!("1"), Value::Null],
            vec![json!(2.5), json!("true"), json!("x")]
        ]
    );
    let types: Vec<(String, String)> = store.tables()[0].columns.clone();
    let want = [("a", "float"), ("b", "string"), ("c", "string")]
        .map(|(n, t)| (n.to_string(), t.to_string()));
    assert_eq!(types, want);

    // Mixed types within one write follow the same rules; a column seen only as NULL takes
    // the type of its first value.
    store
        .write(
            "U",
            &[
                row(&[("v", Cell::Int(1)), ("n", Cell::Null)]),
                row(&[("v", Cell::Float(0.5)), ("n", Cell::Int(7))]),
            ],
        )
        .unwrap();
    assert_eq!(
        rows(&store, "SELECT v, n FROM u ORDER BY v").await,
        vec![vec![json!(0.5), json!(7)], vec![json!(1.0), Value::Null]]
    );
}

#[tokio::test]
async fn restart_recovers_parquet_and_wal_rows() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.write("TollCounts", &toll_rows(0..10)).unwrap();
        store.flush().unwrap();
        store.write("TollCounts", &toll_rows(10..15)).unwrap();
        store
            .write("Other", &[row(&[("x", Cell::Str("y".into()))])])
            .unwrap();
    }
    let store = open(dir.path());
    assert_eq!(
        rows(&store, "SELECT COUNT(*), SUM(Seq) FROM tollcounts").await,
        vec![vec![json!(15), json!(105)]]
    );
    assert_eq!(
        rows(&store, "SELECT x FROM other").await,
        vec![vec![json!("y")]]
    );
    let names: Vec<String> = store.tables().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["Other", "TollCounts"]);
    // Writes after recovery land after the recovered ones and survive another restart.
    store.write("TollCounts", &toll_rows(15..16)).unwrap();
    drop(store);
    assert_eq!(
        rows(
            &open(dir.path()),
            "SELECT MAX(Seq), COUNT(*) FROM TollCounts"
        )
        .await,
        vec![vec![json!(15), json!(16)]]
    );
}

#[tokio::test]
async fn torn_wal_tail_is_cut_and_later_writes_survive() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.write("T", &toll_rows(0..2)).unwrap();
        store.write("T", &toll_rows(2..4)).unwrap();
    }
    let wal = files_with_ext(dir.path(), "log")
        .pop()
        .expect("a WAL segment");
    let full = fs::metadata(&wal).unwrap().len();
    // A write torn mid-frame by a crash: a plausible header and part of the payload.
    fs::OpenOptions::new()
        .append(true)
        .open(&wal)
        .unwrap()
        .write_all(&[40, 0, 0, 0, 1, 2, 3, 4, 9, 9])
        .unwrap();

    let read_only = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(
        rows(&read_only, "SELECT COUNT(*) FROM t").await,
        vec![vec![json!(4)]]
    );
    assert!(matches!(
        read_only.write("T", &toll_rows(0..1)),
        Err(StoreError::ReadOnly)
    ));
    drop(read_only);
    assert_eq!(
        fs::metadata(&wal).unwrap().len(),
        full + 10,
        "read-only open must not change files"
    );

    let store = open(dir.path());
    assert_eq!(fs::metadata(&wal).unwrap().len(), full);
    store.write("T", &toll_rows(4..5)).unwrap();
    drop(store);
    assert_eq!(
        rows(&open(dir.path()), "SELECT COUNT(*), MAX(Seq) FROM t").await,
        vec![vec![json!(5), json!(4)]]
    );
}

#[tokio::test]
async fn write_from_skips_replayed_rows_across_restart_and_flush() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        assert_eq!(store.last_seq("Out", "job-1"), None);
        assert_eq!(
            store
                .write_from("Out", "job-1", 1, &toll_rows(1..4))
                .unwrap(),
            3
        );
        assert_eq!(store.last_seq("out", "job-1"), Some(3));
    }
    {
        // The job restarts from an older checkpoint and replays seqs 2..=5.
        let store = open(dir.path());
        assert_eq!(store.last_seq("Out", "job-1"), Some(3));
        assert_eq!(
            store
                .write_from("Out", "job-1", 2, &toll_rows(2..6))
                .unwrap(),
            2
        );
        assert_eq!(
            store
                .write_from("Out", "job-1", 2, &toll_rows(2..6))
                .unwrap(),
            0
        );
        // Another writer has its own sequence.
        assert_eq!(
            store
                .write_from("Out", "job-2", 1, &toll_rows(100..101))
                .unwrap(),
            1
        );
        store.flush().unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.last_seq("Out", "job-1"), Some(5));
    assert_eq!(store.last_seq("Out", "job-2"), Some(1));
    assert_eq!(
        store
            .write_from("Out", "job-1", 5, &toll_rows(5..7))
            .unwrap(),
        1
    );
    let seqs = rows(&store, "SELECT Seq FROM Out ORDER BY Seq").await;
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 100].map(|s| vec![json!(s)]));
}

#[tokio::test]
async fn flush_writes_parquet_that_datafusion_reads_and_trims_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.write("TollCounts", &toll_rows(0..100)).unwrap();
    store.flush().unwrap();
    store.flush().unwrap(); // nothing new: no empty file
    let parts = files_with_ext(dir.path(), "parquet");
    assert_eq!(parts.len(), 1);
    for wal in files_with_ext(dir.path(), "log") {
        assert_eq!(
            fs::metadata(&wal).unwrap().len(),
            0,
            "flushed rows must leave the WAL"
        );
    }
    let ctx = datafusion::prelude::SessionContext::new();
    let path = parts[0].to_string_lossy().to_string();
    ctx.register_parquet("p", &path, Default::default())
        .await
        .unwrap();
    let batches = ctx
        .sql("SELECT COUNT(*), SUM(\"Seq\") FROM p")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert!(text.contains("| 100") && text.contains("| 4950"), "{text}");
    // The store reads the same rows from Parquet.
    assert_eq!(
        rows(&store, "SELECT COUNT(*) FROM TollCounts").await,
        vec![vec![json!(100)]]
    );
}

#[tokio::test]
async fn background_flush_by_row_count_keeps_rows_visible() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreConfig {
            flush_rows: 50,
            flush_interval_ms: u64::MAX,
        },
    )
    .unwrap();
    for i in 0..20 {
        store.write("T", &toll_rows(i * 10..(i + 1) * 10)).unwrap();
        // Every acknowledged row is visible at once, whether in memory or in Parquet.
        assert_eq!(
            rows(&store, "SELECT COUNT(*) FROM t").await,
            vec![vec![json!((i + 1) * 10)]]
        );
    }
    drop(store);
    assert_eq!(
        rows(&open(dir.path()), "SELECT COUNT(DISTINCT Seq) FROM t").await,
        vec![vec![json!(200)]]
    );
}

#[tokio::test]
async fn drop_table_removes_it_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.write("Gone", &toll_rows(0..3)).unwrap();
    store.flush().unwrap();
    store.drop_table("GONE").unwrap();
    assert!(store.tables().is_empty());
    assert!(matches!(
        store.query("SELECT * FROM Gone").await,
        Err(StoreError::Sql(_))
    ));
    assert!(matches!(
        store.drop_table("Gone"),
        Err(StoreError::NoSuchTable(_))
    ));
    store.write("gone", &toll_rows(0..1)).unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.tables()[0].name, "gone");
    assert_eq!(store.tables()[0].rows, 1);
}

#[tokio::test]
async fn bad_sql_and_bad_rows_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert!(matches!(
        store.query("SELEC 1").await,
        Err(StoreError::Sql(_))
    ));
    // A syntax error reads as the parser's words, once: "SQL error: syntax error: Expected: ...".
    let syntax = store
        .query("SELECT nope FROM")
        .await
        .expect_err("incomplete SQL")
        .to_string();
    assert!(
        syntax.starts_with("SQL error: syntax error: Expected") && !syntax.contains("ParserError"),
        "{syntax}"
    );
    let missing = store
        .query("SELECT * FROM nope")
        .await
        .expect_err("no such table")
        .to_string();
    assert!(
        missing.contains("nope") && missing.matches("SQL error").count() == 1,
        "{missing}"
    );
    assert!(matches!(
        store.query("CREATE TABLE x (a INT)").await,
        Err(StoreError::Sql(_))
    ));
    let dup = row(&[("a", Cell::Int(1)), ("A", Cell::Int(2))]);
    assert!(matches!(
        store.write("T", &[dup]),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.write("", &toll_rows(0..1)),
        Err(StoreError::Invalid(_))
    ));
    assert!(
        store.tables().is_empty(),
        "a rejected write creates nothing"
    );
}

const KILL_DIR_ENV: &str = "EDDY_STORE_KILL9_DIR";
const KILL_FIRST_BATCH_ENV: &str = "EDDY_STORE_KILL9_FIRST_BATCH";
const CHILD_BATCH_ROWS: i64 = 10;
const CHILD_BATCHES_MAX: i64 = 1_000_000;

/// Child half of the kill -9 test: writes batches until killed, printing each acked one.
#[test]
fn kill9_child_writer() {
    let Ok(dir) = std::env::var(KILL_DIR_ENV) else {
        return;
    };
    let first: i64 = std::env::var(KILL_FIRST_BATCH_ENV)
        .unwrap()
        .parse()
        .unwrap();
    let config = StoreConfig {
        flush_rows: 300,
        flush_interval_ms: 5,
    };
    let store = Store::open(Path::new(&dir), config).unwrap();
    let mut out = std::io::stdout().lock();
    for batch in first..first + CHILD_BATCHES_MAX {
        let seqs = batch * CHILD_BATCH_ROWS..(batch + 1) * CHILD_BATCH_ROWS;
        store.write("Acked", &toll_rows(seqs)).unwrap();
        if batch % 50 == 49 {
            store.flush().unwrap(); // besides the background flushes, so some always happen
        }
        writeln!(out, "acked {batch}").unwrap();
        out.flush().unwrap();
    }
}

/// Runs the child writer from `first` batch, SIGKILLs it after 500 acks; returns the acked batches.
fn write_until_killed(dir: &Path, first: i64) -> Vec<i64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill9_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KILL_DIR_ENV, dir)
        .env(KILL_FIRST_BATCH_ENV, first.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let acked_batch = |line: String| {
        line.strip_prefix("acked ")
            .and_then(|n| n.parse::<i64>().ok())
    };
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        acked.extend(acked_batch(line));
        if acked.len() == 500 {
            child.kill().unwrap(); // SIGKILL: no destructor, no flush, no fsync
            break;
        }
    }
    // Lines already printed before the kill are acknowledged too.
    acked.extend(lines.map_while(Result::ok).filter_map(acked_batch));
    child.wait().unwrap();
    assert!(
        acked.len() >= 500,
        "child stopped early after {} batches",
        acked.len()
    );
    acked
}

#[tokio::test]
async fn acked_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    // The second child recovers what the first left, flushes and writes on, and is killed too.
    let mut acked = write_until_killed(dir.path(), 0);
    acked.extend(write_until_killed(dir.path(), CHILD_BATCHES_MAX));

    let store = open(dir.path());
    let result = rows(&store, "SELECT COUNT(*), COUNT(DISTINCT Seq) FROM Acked").await;
    assert_eq!(result[0][0], result[0][1], "no row recovered twice");
    let seqs: std::collections::HashSet<i64> = rows(&store, "SELECT Seq FROM Acked")
        .await
        .iter()
        .filter_map(|r| r[0].as_i64())
        .collect();
    for batch in acked {
        for seq in batch * CHILD_BATCH_ROWS..(batch + 1) * CHILD_BATCH_ROWS {
            assert!(seqs.contains(&seq), "acked row {seq} lost");
        }
    }
    assert_eq!(
        seqs.len() as i64 % CHILD_BATCH_ROWS,
        0,
        "a write is recovered whole or not at all"
    );
    assert!(
        !files_with_ext(dir.path(), "parquet").is_empty(),
        "the children flushed while writing"
    );
}

#[tokio::test]
async fn writes_after_a_flush_of_recovered_rows_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path()).write("T", &toll_rows(0..3)).unwrap();
    {
        let store = open(dir.path()); // rows replayed from the WAL
        store.flush().unwrap();
        store.write("T", &toll_rows(3..5)).unwrap();
    }
    let store = open(dir.path());
    assert_eq!(
        rows(&store, "SELECT COUNT(*), MAX(Seq) FROM t").await,
        vec![vec![json!(5), json!(4)]]
    );

    // Types read back from Parquet footers keep widening the same way (no spurious string).
    let at = |ns| {
        row(&[
            ("At", Cell::Timestamp(ns)),
            ("Empty", Cell::Null),
            ("N", Cell::Int(1)),
        ])
    };
    store.write("Types", &[at(0)]).unwrap();
    store.flush().unwrap();
    drop(store);
    let store = open(dir.path());
    store.write("Types", &[at(1_000_000_000)]).unwrap();
    let info = store
        .tables()
        .into_iter()
        .find(|t| t.name == "Types")
        .unwrap();
    let want = [("At", "timestamp"), ("Empty", "null"), ("N", "bigint")]
        .map(|(n, t)| (n.to_string(), t.to_string()));
    assert_eq!(info.columns, want);
    assert_eq!(
        rows(&store, "SELECT At FROM types ORDER BY At").await,
        vec![
            vec![json!("1970-01-01T00:00:00.0000000Z")],
            vec![json!("1970-01-01T00:00:01.0000000Z")]
        ]
    );
}

#[test]
fn a_second_writer_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let config = StoreConfig::default();
    assert!(matches!(
        Store::open(dir.path(), config.clone()),
        Err(StoreError::Locked(_))
    ));
    assert!(
        Store::open_read_only(dir.path()).is_ok(),
        "readers are not locked out"
    );
    drop(store);
    assert!(Store::open(dir.path(), config).is_ok());
}

#[test]
fn store_can_be_shared_across_threads_and_queried_from_spawned_tasks() {
    fn shareable<T: Send + Sync>() {}
    fn sendable<T: Send>(_: &T) {}
    shareable::<Store>();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    sendable(&store.query("SELECT 1"));
}

#[tokio::test]
async fn concurrent_writers_flushes_and_queries_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(
        Store::open(
            dir.path(),
            StoreConfig {
                flush_rows: 200,
                flush_interval_ms: 1,
            },
        )
        .unwrap(),
    );
    let writers: Vec<_> = (0..4i64)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                for b in 0..50i64 {
                    let first = (w * 1000 + b * 10) as u64;
                    let seqs = w * 1000 + b * 10..w * 1000 + b * 10 + 10;
                    assert_eq!(
                        store
                            .write_from("Shared", &format!("w{w}"), first, &toll_rows(seqs))
                            .unwrap(),
                        10
                    );
                    if b % 10 == 0 {
                        store.flush().unwrap();
                    }
                }
            })
        })
        .collect();
    let mut last = 0;
    while !writers.iter().all(|w| w.is_finished()) {
        if let Ok(r) = store.query("SELECT COUNT(*) FROM shared").await {
            let n = r.rows[0][0].as_i64().unwrap();
            assert!(n >= last, "row count went back from {last} to {n}");
            last = n;
        }
    }
    writers.into_iter().for_each(|w| w.join().unwrap());
    let expect = vec![vec![json!(2000), json!(2000)]];
    assert_eq!(
        rows(&store, "SELECT COUNT(*), COUNT(DISTINCT Seq) FROM shared").await,
        expect
    );
    drop(store);
    assert_eq!(
        rows(
            &open(dir.path()),
            "SELECT COUNT(*), COUNT(DISTINCT Seq) FROM shared"
        )
        .await,
        expect
    );
}

#[tokio::test]
async fn table_names_with_spaces_dots_and_unicode_work_from_parquet_and_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let name = "Toll Counts.v2 ünï*";
    {
        let store = open(dir.path());
        store.write(name, &toll_rows(0..4)).unwrap();
        store.flush().unwrap();
        store.write(name, &toll_rows(4..5)).unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.tables()[0].name, name);
    let sql = r#"SELECT COUNT(*) FROM "toll counts.v2 ünï*""#;
    assert_eq!(rows(&store, sql).await, vec![vec![json!(5)]]);
}

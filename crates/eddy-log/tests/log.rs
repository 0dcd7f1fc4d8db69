//! Behaviour users rely on: durability across reopen, torn-tail recovery, reads from any offset,
//! the sparse index, committed offsets, retention, concurrency and stream naming.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use eddy_log::{FsyncPolicy, Log, LogConfig, LogError, Record, StoredRecord};

fn config() -> LogConfig {
    LogConfig {
        fsync: FsyncPolicy::Never,
        ..LogConfig::default()
    }
}

/// fsync per append: the slow path, exercised where appends are few.
fn always() -> LogConfig {
    LogConfig {
        fsync: FsyncPolicy::Always,
        ..config()
    }
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        retention_ms: None,
        ..config()
    }
}

/// A record whose fields all depend on `i`, so any mix-up shows.
fn record(i: u64) -> Record {
    Record {
        timestamp_ms: 1_700_000_000_000 + i as i64,
        key: (!i.is_multiple_of(3)).then(|| Bytes::from(format!("key-{i}"))),
        value: Bytes::from(format!("value-{i}-{}", "x".repeat((i % 17) as usize))),
        headers: if i.is_multiple_of(2) {
            vec![
                ("h".into(), Bytes::from(format!("{i}"))),
                ("empty".into(), Bytes::new()),
            ]
        } else {
            vec![]
        },
    }
}

fn check(r: &StoredRecord, i: u64) {
    let want = record(i);
    assert_eq!(r.offset, i);
    assert_eq!(
        (r.timestamp_ms, &r.key, &r.value, &r.headers),
        (want.timestamp_ms, &want.key, &want.value, &want.headers)
    );
}

/// Appends records `0..n` in batches of 1..=7 records.
fn fill(log: &Log, stream: &str, partition: u32, n: u64) {
    let mut i = 0;
    while i < n {
        let len = (i % 7 + 1).min(n - i);
        let batch: Vec<Record> = (i..i + len).map(record).collect();
        let info = log.append(stream, partition, &batch).unwrap();
        assert_eq!((info.base_offset, info.next_offset), (i, i + len));
        i += len;
    }
}

fn read_all(log: &Log, stream: &str, partition: u32) -> Vec<StoredRecord> {
    log.read(stream, partition, 0, usize::MAX).unwrap()
}

fn segment_files(dir: &Path, stream: &str, partition: u32, ext: &str) -> Vec<PathBuf> {
    let pdir = dir
        .join("streams")
        .join(stream.to_ascii_lowercase())
        .join(partition.to_string());
    let mut files: Vec<PathBuf> = std::fs::read_dir(pdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

#[test]
fn restart_keeps_streams_records_and_offsets_continue() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), config()).unwrap();
        log.create_stream("Sensor.Readings", 3).unwrap();
        fill(&log, "sensor.readings", 1, 50);
        fill(&log, "SENSOR.READINGS", 2, 5);
    }
    let log = Log::open(dir.path(), config()).unwrap();
    let info = log.stream("sensor.READINGS").unwrap();
    assert_eq!(info.name, "Sensor.Readings");
    let ends: Vec<_> = info
        .partitions
        .iter()
        .map(|p| (p.partition, p.start_offset, p.end_offset))
        .collect();
    assert_eq!(ends, vec![(0, 0, 0), (1, 0, 50), (2, 0, 5)]);
    let all = read_all(&log, "Sensor.Readings", 1);
    assert_eq!(all.len(), 50);
    all.iter().zip(0..).for_each(|(r, i)| check(r, i));
    let next = log.append("Sensor.Readings", 1, &[record(50)]).unwrap();
    assert_eq!((next.base_offset, next.next_offset), (50, 51));
    check(&log.read("Sensor.Readings", 1, 50, 10).unwrap()[0], 50);
}

#[test]
fn torn_tail_mid_batch_is_truncated_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), always()).unwrap();
        log.create_stream("s", 1).unwrap();
        fill(&log, "s", 0, 20); // the last batch holds offsets 17..20
    }
    let seg = segment_files(dir.path(), "s", 0, "log").pop().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 7)
        .unwrap();

    let log = Log::open(dir.path(), always()).unwrap();
    let all = read_all(&log, "s", 0);
    assert_eq!(all.len(), 17, "the torn batch must not be served");
    all.iter().zip(0..).for_each(|(r, i)| check(r, i));
    assert_eq!(log.append("s", 0, &[record(17)]).unwrap().base_offset, 17);
    drop(log);
    let log = Log::open(dir.path(), always()).unwrap();
    let all = read_all(&log, "s", 0);
    assert_eq!(all.len(), 18);
    all.iter().zip(0..).for_each(|(r, i)| check(r, i));
}

#[test]
fn garbage_after_the_last_batch_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), config()).unwrap();
        log.create_stream("s", 1).unwrap();
        fill(&log, "s", 0, 10);
    }
    let seg = segment_files(dir.path(), "s", 0, "log").pop().unwrap();
    let clean_len = std::fs::metadata(&seg).unwrap().len();
    for garbage in [
        vec![0u8; 100],
        (0..=255u8).cycle().take(5000).collect(),
        vec![0xff; 3],
    ] {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&seg)
            .unwrap()
            .write_all(&garbage)
            .unwrap();
        let log = Log::open(dir.path(), config()).unwrap();
        assert_eq!(
            std::fs::metadata(&seg).unwrap().len(),
            clean_len,
            "garbage must be cut off"
        );
        let all = read_all(&log, "s", 0);
        assert_eq!(all.len(), 10);
        all.iter().zip(0..).for_each(|(r, i)| check(r, i));
    }
    let log = Log::open(dir.path(), config()).unwrap();
    fill_from(&log, 10, 12);
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    read_all(&log, "s", 0)
        .iter()
        .zip(0..)
        .for_each(|(r, i)| check(r, i));
    assert_eq!(read_all(&log, "s", 0).len(), 12);
}

fn fill_from(log: &Log, from: u64, to: u64) {
    let batch: Vec<Record> = (from..to).map(record).collect();
    assert_eq!(log.append("s", 0, &batch).unwrap().base_offset, from);
}

#[test]
fn reads_start_at_every_offset_including_mid_batch() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_segments()).unwrap();
    log.create_stream("s", 1).unwrap();
    fill(&log, "s", 0, 300);
    assert!(
        segment_files(dir.path(), "s", 0, "log").len() > 5,
        "test needs several segments"
    );
    for offset in 0..300 {
        let got = log.read("s", 0, offset, 5).unwrap();
        assert_eq!(got.len(), 5.min(300 - offset as usize));
        got.iter().zip(offset..).for_each(|(r, i)| check(r, i));
        let rest = log.read("s", 0, offset, usize::MAX).unwrap();
        assert_eq!(
            rest.len(),
            300 - offset as usize,
            "a read crosses segments to the end"
        );
    }
    assert!(log.read("s", 0, 300, 10).unwrap().is_empty());
    assert!(matches!(
        log.read("s", 0, 301, 10),
        Err(LogError::OffsetOutOfRange {
            offset: 301,
            start: 0,
            end: 300
        })
    ));
    assert!(log.read("s", 0, 0, 0).unwrap().is_empty());
}

#[test]
fn sparse_index_serves_lookups_across_many_segments_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let big = |i: u64| Record {
        value: Bytes::from(vec![(i % 251) as u8; 700]),
        ..record(i)
    };
    {
        let log = Log::open(
            dir.path(),
            LogConfig {
                segment_bytes: 64 << 10,
                ..small_segments()
            },
        )
        .unwrap();
        log.create_stream("s", 1).unwrap();
        for i in 0..2000 {
            log.append("s", 0, &[big(i)]).unwrap();
        }
    }
    let segments = segment_files(dir.path(), "s", 0, "log");
    assert!(segments.len() >= 20, "got {} segments", segments.len());
    // Several index entries per segment: 64 KiB of log / 4 KiB interval.
    let index_len = std::fs::metadata(segments[0].with_extension("index"))
        .unwrap()
        .len();
    assert!(index_len >= 10 * 24, "index has {index_len} bytes");
    // A lost index of a closed segment is rebuilt.
    std::fs::remove_file(segments[3].with_extension("index")).unwrap();
    for _ in 0..2 {
        let log = Log::open(dir.path(), small_segments()).unwrap();
        for offset in (0..2000).step_by(37).chain([1999]) {
            let got = log.read("s", 0, offset, 3).unwrap();
            assert_eq!(got[0].offset, offset);
            assert_eq!(got[0].value, big(offset).value);
        }
    }
    assert!(segments[3].with_extension("index").exists());
}

#[test]
fn committed_offsets_survive_reopen_and_die_with_their_stream() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), config()).unwrap();
        log.create_stream("Orders", 2).unwrap();
        fill(&log, "orders", 1, 10);
        log.commit_offset("billing", "Orders", 1, 4).unwrap();
        log.commit_offset("billing", "orders", 1, 7).unwrap();
        log.commit_offset("audit", "ORDERS", 0, 0).unwrap();
        assert!(matches!(
            log.commit_offset("audit", "Orders", 1, 11),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert!(matches!(
            log.commit_offset("audit", "nope", 0, 0),
            Err(LogError::UnknownStream(_))
        ));
        assert!(matches!(
            log.commit_offset("audit", "orders", 2, 0),
            Err(LogError::UnknownPartition { .. })
        ));
    }
    // A torn commit at the tail is dropped, earlier ones stay.
    {
        use std::io::Write;
        let path = dir.path().join("offsets.log");
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .unwrap()
            .write_all(&[9, 0, 0])
            .unwrap();
    }
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.committed_offset("billing", "ORDERS", 1), Some(7));
    assert_eq!(log.committed_offset("audit", "orders", 0), Some(0));
    assert_eq!(
        log.committed_offset("Billing", "orders", 1),
        None,
        "groups are case-sensitive, as in Kafka"
    );
    assert_eq!(log.committed_offset("billing", "orders", 0), None);
    let listed: Vec<(String, String, u32, u64)> = log
        .committed_offsets()
        .into_iter()
        .map(|g| (g.group, g.stream, g.partition, g.offset))
        .collect();
    assert_eq!(
        listed,
        [
            ("audit".to_string(), "Orders".to_string(), 0, 0),
            ("billing".to_string(), "Orders".to_string(), 1, 7),
        ],
        "listed by group with the stream's own spelling"
    );
    log.commit_offset("billing", "orders", 1, 9).unwrap();
    log.delete_stream("ORDERS").unwrap();
    log.create_stream("orders", 2).unwrap();
    assert_eq!(
        log.committed_offset("billing", "orders", 1),
        None,
        "a new stream starts without offsets"
    );
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.committed_offset("billing", "orders", 1), None);
    assert!(log.committed_offsets().is_empty());
}

#[test]
fn retention_by_size_deletes_oldest_segments_but_never_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path(),
        LogConfig {
            retention_bytes: Some(10_000),
            ..small_segments()
        },
    )
    .unwrap();
    log.create_stream("s", 1).unwrap();
    fill(&log, "s", 0, 600);
    let before = log.stream("s").unwrap().partitions[0];
    assert!(before.bytes > 20_000);
    let freed = log.apply_retention(0).unwrap();
    let after = log.stream("s").unwrap().partitions[0];
    assert_eq!(after.bytes, before.bytes - freed);
    assert!(
        after.bytes <= 10_000 && after.bytes > 10_000 - 2048 - 1024,
        "kept {}",
        after.bytes
    );
    assert!(after.start_offset > 0 && after.end_offset == 600);
    assert!(matches!(
        log.read("s", 0, 0, 1),
        Err(LogError::OffsetOutOfRange { offset: 0, .. })
    ));
    let kept = log.read("s", 0, after.start_offset, usize::MAX).unwrap();
    kept.iter()
        .zip(after.start_offset..)
        .for_each(|(r, i)| check(r, i));
    assert_eq!(kept.len() as u64, 600 - after.start_offset);
    // Survives reopen: offsets do not restart at 0.
    drop(log);
    let log = Log::open(dir.path(), small_segments()).unwrap();
    assert_eq!(log.stream("s").unwrap().partitions[0], after);
    assert_eq!(log.append("s", 0, &[record(600)]).unwrap().base_offset, 600);
}

#[test]
fn retention_by_age_uses_the_newest_timestamp_of_each_segment() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path(),
        LogConfig {
            retention_ms: Some(1000),
            ..small_segments()
        },
    )
    .unwrap();
    log.create_stream("s", 1).unwrap();
    let at = |i: u64, ts: i64| Record {
        timestamp_ms: ts,
        ..record(i)
    };
    for i in 0..100 {
        log.append("s", 0, &[at(i, 10_000)]).unwrap();
    }
    for i in 100..200 {
        log.append("s", 0, &[at(i, 20_000)]).unwrap();
    }
    assert_eq!(
        log.apply_retention(10_500).unwrap(),
        0,
        "nothing is older than 1 s yet"
    );
    assert!(log.apply_retention(11_001).unwrap() > 0);
    let p = log.stream("s").unwrap().partitions[0];
    // Only segments made entirely of old records go; the one holding offset 100 stays.
    assert!(
        p.start_offset <= 100 && p.start_offset > 50,
        "start {}",
        p.start_offset
    );
    // Everything older than now - 1 s, except the active segment, goes.
    log.apply_retention(1_000_000).unwrap();
    let p = log.stream("s").unwrap().partitions[0];
    assert_eq!(segment_files(dir.path(), "s", 0, "log").len(), 1);
    assert_eq!(p.end_offset, 200);
    assert_eq!(
        log.read("s", 0, p.start_offset, usize::MAX).unwrap().len() as u64,
        200 - p.start_offset
    );
}

#[test]
fn concurrent_appends_get_dense_unique_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(
        Log::open(
            dir.path(),
            LogConfig {
                fsync: FsyncPolicy::IntervalMs(5),
                ..small_segments()
            },
        )
        .unwrap(),
    );
    log.create_stream("s", 2).unwrap();
    let threads: Vec<_> = (0..6u64)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..150u64 {
                    let value = Bytes::from(format!("{t}:{i}"));
                    let batch = vec![
                        Record {
                            value: value.clone(),
                            ..Record::default()
                        },
                        Record {
                            value,
                            ..Record::default()
                        },
                    ];
                    log.append("s", (t % 2) as u32, &batch).unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    for p in 0..2 {
        let all = log.read("s", p, 0, usize::MAX).unwrap();
        assert_eq!(all.len(), 3 * 150 * 2);
        assert!(all.iter().zip(0..).all(|(r, i)| r.offset == i));
        // Each batch stayed contiguous, and each writer's batches are in its order.
        for pair in all.chunks(2) {
            assert_eq!(pair[0].value, pair[1].value);
        }
        for t in (p as u64..6).step_by(2) {
            let mine: Vec<_> = all
                .iter()
                .step_by(2)
                .filter(|r| r.value.starts_with(format!("{t}:").as_bytes()))
                .collect();
            let want: Vec<_> = (0..150).map(|i| Bytes::from(format!("{t}:{i}"))).collect();
            assert_eq!(
                mine.iter().map(|r| r.value.clone()).collect::<Vec<_>>(),
                want
            );
        }
    }
}

#[test]
fn stream_names_follow_kafka_rules_and_are_case_insensitive() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path(),
        LogConfig {
            default_partitions: 3,
            ..config()
        },
    )
    .unwrap();
    for bad in ["", ".", "..", "../etc", "a/b", "a b", "é", &"x".repeat(250)] {
        assert!(
            matches!(log.create_stream(bad, 1), Err(LogError::InvalidName { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(
                log.get_or_create_stream(bad),
                Err(LogError::InvalidName { .. })
            ),
            "{bad:?}"
        );
    }
    log.create_stream(&"x".repeat(249), 1).unwrap();
    assert!(matches!(
        log.create_stream("a", 0),
        Err(LogError::InvalidPartitions(0))
    ));
    log.create_stream("Toll.Entry-1_b", 2).unwrap();
    assert!(
        matches!(log.create_stream("TOLL.ENTRY-1_B", 2), Err(LogError::StreamExists(n)) if n == "Toll.Entry-1_b")
    );
    assert_eq!(
        log.get_or_create_stream("toll.entry-1_b")
            .unwrap()
            .partitions
            .len(),
        2
    );
    let created = log.get_or_create_stream("NewOne").unwrap();
    assert_eq!(
        (created.name.as_str(), created.partitions.len()),
        ("NewOne", 3)
    );
    let names: Vec<_> = log
        .streams()
        .into_iter()
        .map(|s| s.name)
        .filter(|n| n.len() < 20)
        .collect();
    assert_eq!(names, vec!["NewOne", "Toll.Entry-1_b"]);
    assert!(matches!(
        log.append("toll.entry-1_b", 2, &[record(0)]),
        Err(LogError::UnknownPartition { partition: 2, .. })
    ));
    assert!(matches!(
        log.append("missing", 0, &[record(0)]),
        Err(LogError::UnknownStream(_))
    ));
    log.delete_stream("toll.ENTRY-1_b").unwrap();
    assert!(log.stream("Toll.Entry-1_b").is_none());
    assert!(matches!(
        log.delete_stream("toll.entry-1_b"),
        Err(LogError::UnknownStream(_))
    ));
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.streams().len(), 2);
}

#[test]
fn subscribers_see_the_end_offset_move_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    log.create_stream("s", 1).unwrap();
    fill(&log, "s", 0, 3);
    let mut rx = log.subscribe("S", 0).unwrap();
    assert_eq!(*rx.borrow_and_update(), 3);
    log.append("s", 0, &[record(3), record(4)]).unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 5);
    log.delete_stream("s").unwrap();
    assert!(matches!(
        log.append("s", 0, &[record(5)]),
        Err(LogError::UnknownStream(_))
    ));
}

#[test]
fn batches_keep_their_header_fields_for_the_kafka_layer() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    log.create_stream("s", 1).unwrap();
    let recs = vec![
        Record {
            timestamp_ms: 50,
            ..record(0)
        },
        Record {
            timestamp_ms: 90,
            ..record(1)
        },
        Record {
            timestamp_ms: 70,
            ..record(2)
        },
    ];
    log.append("s", 0, &recs).unwrap();
    log.append("s", 0, &[record(3)]).unwrap();
    let batches = log.read_batches("s", 0, 1, 1).unwrap();
    assert_eq!(batches.len(), 1, "max_bytes stops after the first batch");
    let b = &batches[0];
    assert_eq!(
        (
            b.base_offset,
            b.first_timestamp_ms,
            b.max_timestamp_ms,
            b.records.len()
        ),
        (0, 50, 90, 3)
    );
    assert_eq!(log.read_batches("s", 0, 1, usize::MAX).unwrap().len(), 2);
    assert!(matches!(
        log.append(
            "s",
            0,
            &[Record {
                value: Bytes::from(vec![0; 17 << 20]),
                ..Record::default()
            }]
        ),
        Err(LogError::BatchTooLarge { .. })
    ));
}

#[test]
fn fsync_policy_parses_and_rejects_typos() {
    assert_eq!(
        "always".parse::<FsyncPolicy>().unwrap(),
        FsyncPolicy::Always
    );
    assert_eq!("Never".parse::<FsyncPolicy>().unwrap(), FsyncPolicy::Never);
    assert_eq!(
        "interval:250".parse::<FsyncPolicy>().unwrap(),
        FsyncPolicy::IntervalMs(250)
    );
    for bad in ["alway", "interval:", "interval:0", "interval:-5", "100", ""] {
        assert!(bad.parse::<FsyncPolicy>().is_err(), "{bad:?}");
    }
    assert_eq!(
        FsyncPolicy::IntervalMs(7)
            .to_string()
            .parse::<FsyncPolicy>()
            .unwrap(),
        FsyncPolicy::IntervalMs(7)
    );
}

#[test]
fn damaged_closed_segment_is_cut_and_reads_skip_the_gap() {
    // What power loss under `FsyncPolicy::Never` can leave behind: a short closed segment.
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), small_segments()).unwrap();
        log.create_stream("s", 1).unwrap();
        fill(&log, "s", 0, 200);
    }
    let segments = segment_files(dir.path(), "s", 0, "log");
    let victim = &segments[2];
    let next_base: u64 = segments[3]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let len = std::fs::metadata(victim).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(victim)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let log = Log::open(dir.path(), small_segments()).unwrap();
    let all = read_all(&log, "s", 0);
    let missing: Vec<u64> = (0..200)
        .filter(|o| !all.iter().any(|r| r.offset == *o))
        .collect();
    assert!(
        !missing.is_empty() && *missing.last().unwrap() == next_base - 1,
        "{missing:?}"
    );
    all.iter().for_each(|r| check(r, r.offset));
    let from_gap = log.read("s", 0, missing[0], 1).unwrap();
    assert_eq!(
        from_gap[0].offset, next_base,
        "a read inside the gap resumes after it"
    );
}

#[test]
fn the_closed_segment_a_group_commit_may_still_owe_is_checked_whole_at_open() {
    // Under `IntervalMs` a roll leaves the closed segment's fsync to the group commit, so after
    // a power loss the segment before the active one may be damaged anywhere, not only after
    // its last index entry: recovery must cut it at the first bad batch, never serve it.
    let interval = LogConfig {
        fsync: FsyncPolicy::IntervalMs(60_000),
        segment_bytes: 16 << 10,
        retention_ms: None,
        ..LogConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    {
        // Rolls come far faster than the 60 s group commit: each syncs the one before inline.
        let log = Log::open(dir.path(), interval.clone()).unwrap();
        log.create_stream("s", 1).unwrap();
        fill(&log, "s", 0, 3000);
        assert_eq!(read_all(&log, "s", 0).len(), 3000);
    }
    let segments = segment_files(dir.path(), "s", 0, "log");
    assert!(segments.len() >= 4, "{segments:?}");
    let base = |p: &PathBuf| -> u64 { p.file_stem().unwrap().to_str().unwrap().parse().unwrap() };
    let victim = &segments[segments.len() - 2];
    let (victim_base, next_base) = (base(victim), base(&segments[segments.len() - 1]));
    // The index of the victim has entries after its first batch, which the damage precedes.
    let index = victim.with_extension("index");
    assert!(std::fs::metadata(&index).unwrap().len() > 24);
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(victim, &bytes).unwrap();
    let log = Log::open(dir.path(), interval).unwrap();
    let all = read_all(&log, "s", 0);
    let missing: Vec<u64> = (0..3000)
        .filter(|o| !all.iter().any(|r| r.offset == *o))
        .collect();
    assert_eq!(missing, (victim_base..next_base).collect::<Vec<_>>());
    all.iter().for_each(|r| check(r, r.offset));
    // Appends continue after the active segment.
    let info = log.append("s", 0, &[record(3000)]).unwrap();
    assert_eq!(info.base_offset, 3000);
}

#[test]
fn readers_following_a_writer_see_only_whole_batches_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::open(dir.path(), small_segments()).unwrap());
    log.create_stream("s", 1).unwrap();
    let writer = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || fill(&log, "s", 0, 3000))
    };
    let mut next = 0;
    loop {
        // Checked before reading: once the writer is done, an empty read means the true end.
        let finished = writer.is_finished();
        let got = log.read("s", 0, next, 50).unwrap();
        if got.is_empty() && finished {
            break;
        }
        for r in got {
            check(&r, next);
            next += 1;
        }
    }
    writer.join().unwrap();
    assert_eq!(next, 3000);
}

#[test]
fn added_partitions_take_appends_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), always()).unwrap();
        log.create_stream_with_format("Orders", 2, Some("csv"))
            .unwrap();
        fill(&log, "orders", 1, 20);
        // A poller (a job) that looked before the change sees the new count after it.
        assert_eq!(log.partition_count("ORDERS"), Some(2));
        assert!(matches!(
            log.append("orders", 3, &[record(0)]),
            Err(LogError::UnknownPartition { partitions: 2, .. })
        ));
        let info = log.add_partitions("ORDERS", 5).unwrap();
        assert_eq!(info.partitions.len(), 5);
        assert_eq!(log.partition_count("orders"), Some(5));
        fill(&log, "orders", 3, 9);
        fill(&log, "orders", 1, 0);
        // The old partitions keep their data and their end offsets.
        assert_eq!(log.stream("orders").unwrap().partitions[1].end_offset, 20);
    }
    let log = Log::open(dir.path(), config()).unwrap();
    let info = log.stream("orders").unwrap();
    assert_eq!(
        (info.name.as_str(), info.format.as_deref()),
        ("Orders", Some("csv"))
    );
    let ends: Vec<_> = info.partitions.iter().map(|p| p.end_offset).collect();
    assert_eq!(ends, vec![0, 20, 0, 9, 0]);
    read_all(&log, "orders", 3)
        .iter()
        .zip(0..)
        .for_each(|(r, i)| check(r, i));
    read_all(&log, "orders", 1)
        .iter()
        .zip(0..)
        .for_each(|(r, i)| check(r, i));
    let next = log.append("orders", 4, &[record(0)]).unwrap();
    assert_eq!((next.base_offset, next.next_offset), (0, 1));
}

#[test]
fn partitions_never_shrink_and_validation_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    log.create_stream("t", 3).unwrap();
    for n in [0, 2, 3] {
        assert!(matches!(
            log.add_partitions("t", n),
            Err(LogError::PartitionsNotIncreased {
                current: 3,
                requested,
                ..
            }) if requested == n
        ));
        assert!(log.validate_add_partitions("t", n).is_err());
    }
    assert!(matches!(
        log.add_partitions("t", eddy_log::MAX_PARTITIONS + 1),
        Err(LogError::InvalidPartitions(_))
    ));
    assert!(matches!(
        log.add_partitions("missing", 4),
        Err(LogError::UnknownStream(_))
    ));
    log.validate_add_partitions("t", 4).unwrap();
    assert_eq!(log.partition_count("t"), Some(3));
    assert_eq!(log.partition_count("missing"), None);
    // Subscribers of an old partition keep working across the change.
    let mut rx = log.subscribe("t", 0).unwrap();
    log.add_partitions("t", 4).unwrap();
    log.append("t", 0, &[record(0)]).unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 1);
}

#[test]
fn an_interrupted_add_leaves_the_stream_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), config()).unwrap();
        log.create_stream("t", 2).unwrap();
        fill(&log, "t", 0, 3);
    }
    // A crash after the new partition directory was made but before meta.json named it.
    let stray = dir.path().join("streams").join("t").join("2");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("00000000000000000000.log"), b"junk").unwrap();
    std::fs::write(dir.path().join("streams/t/meta.json.tmp"), b"{").unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.partition_count("t"), Some(2));
    log.add_partitions("t", 3).unwrap();
    assert_eq!(read_all(&log, "t", 2).len(), 0);
    fill(&log, "t", 2, 4);
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.partition_count("t"), Some(3));
    assert_eq!(read_all(&log, "t", 2).len(), 4);
    assert_eq!(read_all(&log, "t", 0).len(), 3);
}

#[test]
fn commit_metadata_survives_reopen_and_old_offset_files_still_read() {
    let dir = tempfile::tempdir().unwrap();
    // An offsets.log as written before metadata was stored: len, crc, group, stream,
    // partition, offset.
    let mut payload = Vec::new();
    for s in ["old-group", "orders"] {
        payload.extend_from_slice(&(s.len() as u16).to_le_bytes());
        payload.extend_from_slice(s.as_bytes());
    }
    payload.extend_from_slice(&1u32.to_le_bytes());
    payload.extend_from_slice(&3u64.to_le_bytes());
    let mut entry = (payload.len() as u32).to_le_bytes().to_vec();
    entry.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    entry.extend_from_slice(&payload);
    std::fs::write(dir.path().join("offsets.log"), &entry).unwrap();
    {
        let log = Log::open(dir.path(), always()).unwrap();
        log.create_stream("Orders", 2).unwrap();
        fill(&log, "orders", 1, 10);
        assert_eq!(
            log.committed_offset_with_metadata("old-group", "orders", 1),
            Some((3, String::new()))
        );
        log.commit_offset_with_metadata("g", "Orders", 1, 5, "checkpoint é 5")
            .unwrap();
        log.commit_offset_with_metadata("g", "orders", 0, 0, "")
            .unwrap();
        log.commit_offset_with_metadata("h", "orders", 1, 2, "first")
            .unwrap();
        log.commit_offset_with_metadata("h", "orders", 1, 4, "")
            .unwrap();
        let big = "x".repeat(eddy_log::MAX_COMMIT_METADATA_BYTES + 1);
        assert!(matches!(
            log.commit_offset_with_metadata("g", "orders", 1, 6, &big),
            Err(LogError::BatchTooLarge { .. })
        ));
    }
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(
        log.committed_offset_with_metadata("g", "ORDERS", 1),
        Some((5, "checkpoint é 5".to_string()))
    );
    assert_eq!(
        log.committed_offset_with_metadata("g", "orders", 0),
        Some((0, String::new()))
    );
    // The last commit wins, metadata included.
    assert_eq!(
        log.committed_offset_with_metadata("h", "orders", 1),
        Some((4, String::new()))
    );
    assert_eq!(log.committed_offset("old-group", "orders", 1), Some(3));
}

#[test]
fn appends_running_while_partitions_are_added_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(
        Log::open(
            dir.path(),
            LogConfig {
                fsync: FsyncPolicy::IntervalMs(5),
                ..small_segments()
            },
        )
        .unwrap(),
    );
    log.create_stream("s", 1).unwrap();
    // A writer that appends to every partition the stream has, as a producer refreshing its
    // metadata would, until it has written 20 rounds over all 8.
    let writer = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut next = vec![0u64; 8];
            while next[7] < 20 {
                let n = log.partition_count("s").unwrap();
                for p in 0..n {
                    let i = next[p as usize];
                    let info = log.append("s", p, &[record(i)]).unwrap();
                    assert_eq!(info.base_offset, i);
                    next[p as usize] += 1;
                }
            }
            next
        })
    };
    for total in 2..=8 {
        // Each change lands while the writer is running.
        let end = |log: &Log| log.stream("s").unwrap().partitions[0].end_offset;
        let seen = end(&log);
        while end(&log) < seen + 3 && !writer.is_finished() {
            std::thread::yield_now();
        }
        log.add_partitions("s", total).unwrap();
    }
    let written = writer.join().unwrap();
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.partition_count("s"), Some(8));
    for (p, &n) in (0..).zip(&written) {
        let all = read_all(&log, "s", p);
        assert_eq!(all.len() as u64, n, "partition {p}");
        all.iter().zip(0..).for_each(|(r, i)| check(r, i));
    }
    assert!(
        written[0] > written[7],
        "partition 0 was written before the others existed"
    );
}

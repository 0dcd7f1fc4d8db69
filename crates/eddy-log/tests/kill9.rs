//! A real crash: a child process appends and prints each acknowledged offset, the parent
//! SIGKILLs it mid-stream and checks every acknowledged record is there, byte for byte, in
//! partitions created with the stream and added to it later.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use bytes::Bytes;
use eddy_log::{FsyncPolicy, Log, LogConfig, Record};

const CHILD_ENV: &str = "EDDY_LOG_KILL9_CHILD_DIR";
const TEST_NAME: &str = "acknowledged_appends_survive_kill_9";
const PARTITIONS: u32 = 2;

fn config() -> LogConfig {
    // Small segments so the crash can land around a roll too; interval fsync as by default.
    LogConfig {
        fsync: FsyncPolicy::IntervalMs(20),
        segment_bytes: 64 << 10,
        ..LogConfig::default()
    }
}

/// The record at `offset` of `partition`: content fully determined, sizes varied.
fn record(partition: u32, offset: u64) -> Record {
    let fill = (offset * 31 + u64::from(partition)) as u8;
    Record {
        timestamp_ms: 1_700_000_000_000 + offset as i64,
        key: Some(Bytes::from(format!("p{partition}-k{}", offset % 10))),
        value: Bytes::from(vec![fill; (offset % 400) as usize + 1]),
        headers: vec![("seq".into(), Bytes::from(offset.to_string()))],
    }
}

/// Child mode: one writer thread per partition, appending forever and acknowledging on stdout.
fn run_child(dir: &Path) {
    let log = Log::open(dir, config()).expect("open log in child");
    // Created with one partition and grown, so the added partition's durability is checked too.
    if log.stream("Crash").is_none() {
        log.create_stream("Crash", 1).expect("create stream");
    }
    if log.partition_count("crash") != Some(PARTITIONS) {
        log.add_partitions("crash", PARTITIONS)
            .expect("add partitions");
    }
    std::thread::scope(|scope| {
        for partition in 0..PARTITIONS {
            let log = &log;
            scope.spawn(move || {
                let mut next =
                    log.stream("crash").expect("stream").partitions[partition as usize].end_offset;
                loop {
                    let batch: Vec<Record> = (next..next + 1 + next % 5)
                        .map(|o| record(partition, o))
                        .collect();
                    let info = log.append("crash", partition, &batch).expect("append");
                    assert_eq!(info.base_offset, next, "single writer per partition");
                    next = info.next_offset;
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {partition} {next}")
                        .and_then(|_| out.flush())
                        .expect("stdout");
                }
            });
        }
    });
}

#[test]
fn acknowledged_appends_survive_kill_9() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        run_child(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut acked = [0u64; PARTITIONS as usize];
    // Two crashes in a row: the second one also exercises recovery of a recovered log.
    for round in 0..2 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        while seen < 400 {
            let line = lines.next().expect("child exited early").unwrap();
            if let Some(ack) = line.strip_prefix("ack ") {
                let (p, next) = ack.split_once(' ').unwrap();
                let (p, next): (usize, u64) = (p.parse().unwrap(), next.parse().unwrap());
                acked[p] = acked[p].max(next);
                seen += 1;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Acknowledgements still in the pipe count too.
        for line in lines.map_while(Result::ok) {
            if let Some(ack) = line.strip_prefix("ack ") {
                let (p, next) = ack.split_once(' ').unwrap();
                let p: usize = p.parse().unwrap();
                acked[p] = acked[p].max(next.parse().unwrap());
            }
        }

        let log = Log::open(dir.path(), config()).unwrap();
        for p in 0..PARTITIONS {
            let info = log.stream("Crash").unwrap().partitions[p as usize];
            assert!(
                info.end_offset >= acked[p as usize],
                "round {round}: partition {p} lost acknowledged records"
            );
            let all = log.read("crash", p, 0, usize::MAX).unwrap();
            assert_eq!(all.len() as u64, info.end_offset);
            for (offset, r) in (0..).zip(&all) {
                let want = record(p, offset);
                assert_eq!(r.offset, offset);
                assert_eq!(
                    (r.timestamp_ms, &r.key, &r.value, &r.headers),
                    (want.timestamp_ms, &want.key, &want.value, &want.headers)
                );
            }
        }
    }
}

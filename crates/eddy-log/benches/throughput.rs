//! Append and read throughput of one partition, for 250-byte events (the design's reference size).

use std::time::Instant;

use bytes::Bytes;
use eddy_log::{FsyncPolicy, Log, LogConfig, Record};

const EVENTS: u64 = 200_000;
const EVENT_BYTES: usize = 250;

fn report(what: &str, records: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    let mb = (records as usize * EVENT_BYTES) as f64 / 1e6;
    println!(
        "{what:<36} {:>10.0} records/s {:>8.1} MB/s",
        records as f64 / secs,
        mb / secs
    );
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = LogConfig {
        fsync: FsyncPolicy::IntervalMs(100),
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config).expect("open");
    log.create_stream("bench", 1).expect("create");
    let record = |i: u64| Record {
        timestamp_ms: i as i64,
        key: None,
        value: Bytes::from(vec![b'x'; EVENT_BYTES]),
        headers: Vec::new(),
    };

    for batch in [1u64, 100] {
        let n = if batch == 1 { EVENTS / 10 } else { EVENTS };
        let records: Vec<Record> = (0..batch).map(record).collect();
        let started = Instant::now();
        for _ in 0..n / batch {
            log.append("bench", 0, &records).expect("append");
        }
        report(&format!("append, {batch} record(s) per batch"), n, started);
    }

    let end = log.stream("bench").expect("stream").partitions[0].end_offset;
    for max in [1usize, 1000] {
        let started = Instant::now();
        let (mut offset, mut read) = (0, 0u64);
        while offset < end && read < if max == 1 { EVENTS / 10 } else { u64::MAX } {
            let got = log.read("bench", 0, offset, max).expect("read");
            offset = got.last().map_or(end, |r| r.offset + 1);
            read += got.len() as u64;
        }
        report(&format!("read, {max} record(s) per call"), read, started);
    }
}

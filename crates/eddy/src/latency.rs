//! `eddy bench latency`: event-to-output latency at a fixed input rate, over HTTP into an
//! in-process server, for a stateless filter and for a tumbling window (measured from the
//! moment the watermark passes the window's end).
//!
//! A producer posts a batch every 10 ms, each event stamped with its send time (`sent`,
//! µs) and with that time as its event time (`ts`). Both jobs write to output streams that
//! reader threads long-poll over HTTP; a row's latency is its receive time minus the send
//! time of its event (filter), or minus the send time of the first batch at or after the
//! window's end: the events that move the watermark past it (window).

use crate::table::{Format, ResultSet};
use anyhow::Context;
use eddy_server::{JobSpec, OutputTarget, Server};
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Batches per second of the producer.
const BATCHES_PER_SECOND: u64 = 100;
/// Seconds sent before the measured ones.
const WARM_UP_SECONDS: u64 = 1;
/// Window of the windowed query, in milliseconds.
const WINDOW_MS: i64 = 100;

fn now_us() -> i64 {
    eddy_engine::time::now_ticks() / 10
}

/// A read of the events endpoint, with only what the benchmark looks at: parsing whole
/// JSON trees here would make the reader, not eddy, the bottleneck at 100 K rows/s.
#[derive(serde::Deserialize)]
struct ReadBody {
    events: Vec<ReadEvent>,
    next_offset: u64,
}

#[derive(serde::Deserialize)]
struct ReadEvent {
    value: OutputValue,
}

/// The columns of both jobs' output rows.
#[derive(serde::Deserialize)]
struct OutputValue {
    sent: Option<i64>,
    w: Option<String>,
}

/// Reads every record of a one-partition stream until `stop`, with its receive time (µs).
/// `expected` rows are reserved up front: growing a vector of hundreds of thousands of rows
/// copies it whole, and the reader would stall tens of milliseconds at each doubling (at
/// 50 K rows/s, about 5 s and 10 s into a run), which the figures would blame on eddy.
fn read_stream(
    base: &str,
    stream: &str,
    stop: &AtomicBool,
    expected: usize,
) -> anyhow::Result<Vec<(i64, OutputValue)>> {
    let agent = crate::query::agent();
    let mut offset = 0u64;
    let mut rows = Vec::with_capacity(expected);
    let mut idle_after_stop = 0;
    loop {
        let url = format!(
            "{base}/api/streams/{stream}/events?partition=0&offset={offset}&max=10000&wait_ms=100"
        );
        let mut response = agent
            .get(&url)
            .call()
            .with_context(|| format!("GET {url}"))?;
        let received = now_us();
        if response.status() == 404 {
            // The job has not written its first row yet.
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let body: ReadBody = response.body_mut().read_json()?;
        offset = body.next_offset;
        let events = body.events;
        if events.is_empty() && stop.load(Ordering::Relaxed) {
            idle_after_stop += 1;
            if idle_after_stop > 5 {
                return Ok(rows);
            }
        }
        rows.extend(events.into_iter().map(|e| (received, e.value)));
    }
}

/// The measured second whose filter p99 is highest, with that p99 (ms): tells a tail spread
/// over the run from one stall.
fn worst_second(rows: &[(i64, OutputValue)], measured_from: i64) -> Option<(i64, f64)> {
    let mut per_second: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for (received, v) in rows {
        let Some(sent) = v.sent.filter(|&s| s >= measured_from) else {
            continue;
        };
        per_second
            .entry((sent - measured_from) / 1_000_000)
            .or_default()
            .push(received - sent);
    }
    per_second
        .into_iter()
        .map(|(second, latencies)| (second, percentiles(latencies).1))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// (p50, p99, max) in milliseconds.
fn percentiles(mut us: Vec<i64>) -> (f64, f64, f64) {
    if us.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    us.sort_unstable();
    let at = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    (at(0.5), at(0.99), at(1.0))
}

fn job(name: &str, query: &str, output: &str, stream: &str) -> JobSpec {
    JobSpec {
        name: name.into(),
        query: query.into(),
        late_arrival_tolerance_s: 5.0,
        out_of_order_tolerance_s: 0.0,
        out_of_order_action: Default::default(),
        outputs: [(
            output.to_string(),
            OutputTarget::Stream {
                name: stream.into(),
            },
        )]
        .into(),
        references: Default::default(),
    }
}

/// Runs the benchmark at `rate` events/s for `seconds` and prints the latency table; with
/// `timeline`, also writes a line per batch there.
pub fn latency(rate: u64, seconds: u64, timeline: Option<&Path>) -> anyhow::Result<()> {
    crate::bench::with_server(|server| measure(server, rate, seconds, timeline))
}

/// Writes, per producer batch: its send time (µs after the first), how long its POST took
/// (µs) and the latency of its slowest filtered row (µs). A slow POST puts a stall on the
/// ingestion side (HTTP, append); a fast POST with a slow row puts it after (job, output,
/// reader).
fn write_timeline(
    path: &Path,
    posts: &[(i64, i64)],
    filtered: &[(i64, OutputValue)],
) -> anyhow::Result<()> {
    let mut slowest: HashMap<i64, i64> = HashMap::with_capacity(posts.len());
    for (received, v) in filtered {
        if let Some(sent) = v.sent {
            let at = slowest.entry(sent).or_default();
            *at = (*at).max(received - sent);
        }
    }
    let first = posts.first().map_or(0, |p| p.0);
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    writeln!(out, "sent_us post_us slowest_row_us")?;
    for &(sent, post) in posts {
        let row = slowest.get(&sent).copied().unwrap_or(-1);
        writeln!(out, "{} {post} {row}", sent - first)?;
    }
    out.flush()?;
    Ok(())
}

fn measure(
    server: &Server,
    rate: u64,
    seconds: u64,
    timeline: Option<&Path>,
) -> anyhow::Result<()> {
    server.create_job(job(
        "filter",
        "SELECT id, sent INTO filtered FROM lat WHERE id % 2 = 0",
        "filtered",
        "lat_filtered",
    ))?;
    server.create_job(job(
        "window",
        &format!(
            "SELECT COUNT(*) AS n, System.Timestamp() AS w INTO windows FROM lat \
             TIMESTAMP BY ts GROUP BY TumblingWindow(millisecond, {WINDOW_MS})"
        ),
        "windows",
        "lat_windows",
    ))?;
    let base = format!("http://{}", server.http_addr());
    let stop = Arc::new(AtomicBool::new(false));
    // Room for every row either job can write: half the events pass the filter, one row
    // per window; a second's worth more for slack.
    let sent_seconds = seconds + WARM_UP_SECONDS + 1;
    let expected = [
        ("lat_filtered", (rate * sent_seconds / 2) as usize),
        (
            "lat_windows",
            (sent_seconds * 1000 / WINDOW_MS as u64) as usize,
        ),
    ];
    let readers: Vec<_> = expected
        .into_iter()
        .map(|(stream, rows)| {
            let (base, stop) = (base.clone(), stop.clone());
            std::thread::spawn(move || read_stream(&base, stream, &stop, rows))
        })
        .collect();

    let per_batch = (rate / BATCHES_PER_SECOND).max(1);
    // A warm-up second first (new segments, allocator arenas, the jobs' first rounds), sent
    // at the same rate and left out of the figures, as Kafka's latency tools do.
    let batches = (seconds + WARM_UP_SECONDS) * BATCHES_PER_SECOND;
    let mut measured_from = i64::MAX;
    let agent = crate::query::agent();
    let url = format!("{base}/api/streams/lat/events");
    // Per batch: its send time and how long its POST took (µs).
    let mut posts: Vec<(i64, i64)> = Vec::with_capacity(batches as usize);
    let mut body = Vec::new();
    let started = Instant::now();
    let mut id = 0u64;
    for b in 0..batches {
        let due = started + Duration::from_micros(b * 1_000_000 / BATCHES_PER_SECOND);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sent = now_us();
        if b == WARM_UP_SECONDS * BATCHES_PER_SECOND {
            measured_from = sent;
        }
        let ts = eddy_engine::time::format_datetime(sent * 10);
        body.clear();
        for _ in 0..per_batch {
            writeln!(body, "{{\"id\":{id},\"sent\":{sent},\"ts\":\"{ts}\"}}")?;
            id += 1;
        }
        crate::bench::post(&agent, &url, &body)?;
        posts.push((sent, now_us() - sent));
    }
    let produced_for = started.elapsed();
    // Windows close only when later events arrive: the last ones stay open, as they should.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let mut outputs = Vec::new();
    for reader in readers {
        outputs.push(
            reader
                .join()
                .map_err(|_| anyhow::anyhow!("a reader thread panicked"))??,
        );
    }
    let filtered: Vec<i64> = outputs[0]
        .iter()
        .filter_map(|(received, v)| {
            let sent = v.sent.filter(|&s| s >= measured_from)?;
            Some(received - sent)
        })
        .collect();
    let windows: Vec<i64> = outputs[1]
        .iter()
        .filter_map(|(received, v)| {
            let end_us = eddy_engine::time::parse_datetime(v.w.as_deref()?)? / 10;
            if end_us < measured_from {
                return None;
            }
            let first = posts.partition_point(|&(s, _)| s < end_us);
            Some(received - posts.get(first)?.0)
        })
        .collect();
    if let Some(path) = timeline {
        write_timeline(path, &posts, &outputs[0])?;
    }
    let achieved = id as f64 / produced_for.as_secs_f64();
    let worst_second = worst_second(&outputs[0], measured_from);
    let row = |name: &str, latencies: Vec<i64>| {
        let rows = latencies.len();
        let (p50, p99, max) = percentiles(latencies);
        vec![
            json!(name),
            json!(rows),
            json!((p50 * 100.0).round() / 100.0),
            json!((p99 * 100.0).round() / 100.0),
            json!((max * 100.0).round() / 100.0),
        ]
    };
    let rows = vec![
        row("filter (WHERE id % 2 = 0)", filtered),
        row(
            &format!("tumbling {WINDOW_MS} ms COUNT, from watermark"),
            windows,
        ),
    ];
    let columns = ["query", "rows", "p50 ms", "p99 ms", "max ms"]
        .map(String::from)
        .to_vec();
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{id} events at {:.0} events/s over HTTP ({per_batch} per batch, {BATCHES_PER_SECOND} batches/s; \
         the first {WARM_UP_SECONDS} s is warm-up, not counted)",
        achieved
    )?;
    if let Some((second, p99)) = worst_second {
        writeln!(
            stdout,
            "filter: slowest second {second} with p99 {p99:.2} ms"
        )?;
    }
    stdout.write_all(ResultSet { columns, rows }.render(Format::Table).as_bytes())?;
    Ok(())
}

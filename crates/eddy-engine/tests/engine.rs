//! End-to-end behaviour of compiled queries: windows, watermarks, policies, steps,
//! outputs, expressions and snapshots, driven through SQL text as users write it.

use eddy_engine::time::{TICKS_PER_SECOND, parse_datetime};
use eddy_engine::{Arrival, EngineError, Job, JobOptions, OutOfOrderAction, OutputRow};

/// Seconds after 2024-01-01T00:00:00Z, in ticks.
fn at(secs: f64) -> i64 {
    parse_datetime("2024-01-01T00:00:00Z").unwrap() + (secs * TICKS_PER_SECOND as f64) as i64
}

fn ts(secs: f64) -> String {
    eddy_engine::time::format_datetime(at(secs))
}

fn job(query: &str) -> Job {
    Job::compile(query, JobOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// Pushes `{fields..., "t": <secs>}` into input 0, partition 0, arriving at its event time.
fn push(job: &mut Job, secs: f64, fields: &str) {
    push_at(job, 0, secs, secs, fields);
}

fn push_at(job: &mut Job, partition: u32, secs: f64, arrival_secs: f64, fields: &str) {
    let sep = if fields.is_empty() { "" } else { "," };
    let json = format!(r#"{{"t":"{}"{sep}{fields}}}"#, ts(secs));
    job.push_json(0, partition, 0, Arrival::At(at(arrival_secs)), json.as_bytes()).unwrap();
}

fn drain(job: &mut Job) -> Vec<String> {
    let mut out = Vec::new();
    job.drain_output(&mut out);
    out.iter().map(|r| r.row.to_json().to_string()).collect()
}

fn finish(job: &mut Job) -> Vec<String> {
    job.finish();
    drain(job)
}

const COUNT_5S: &str = "SELECT System.Timestamp() AS w, COUNT(*) AS n INTO out FROM s TIMESTAMP BY t GROUP BY TumblingWindow(second, 5)";

#[test]
fn event_at_window_end_belongs_to_that_window() {
    let mut j = job(COUNT_5S);
    push(&mut j, 1.0, "");
    push(&mut j, 5.0, "");
    push(&mut j, 5.0000001, "");
    assert_eq!(
        finish(&mut j),
        vec![
            format!(r#"{{"w":"{}","n":2}}"#, ts(5.0)),
            format!(r#"{{"w":"{}","n":1}}"#, ts(10.0)),
        ]
    );
    assert_eq!(ts(5.0), "2024-01-01T00:00:05.0000000Z");
}

#[test]
fn tumbling_offset_shifts_windows() {
    let mut j = job("SELECT System.Timestamp() AS w, COUNT(*) AS n FROM s TIMESTAMP BY t GROUP BY TumblingWindow(second, 10, 2)");
    for s in [2.0, 3.0, 12.0, 12.5] {
        push(&mut j, s, "");
    }
    assert_eq!(
        finish(&mut j),
        vec![
            format!(r#"{{"w":"{}","n":1}}"#, ts(2.0)),
            format!(r#"{{"w":"{}","n":2}}"#, ts(12.0)),
            format!(r#"{{"w":"{}","n":1}}"#, ts(22.0)),
        ]
    );
    assert_eq!(j.outputs(), ["output"]);
}

#[test]
fn hopping_windows_overlap() {
    let mut j = job("SELECT System.Timestamp() AS w, COUNT(*) AS n, SUM(v) AS total INTO out FROM s TIMESTAMP BY t GROUP BY HoppingWindow(second, 10, 5)");
    push(&mut j, 7.0, r#""v":1"#);
    push(&mut j, 10.0, r#""v":2"#);
    push(&mut j, 11.0, r#""v":4"#);
    assert_eq!(
        finish(&mut j),
        vec![
            format!(r#"{{"w":"{}","n":2,"total":3}}"#, ts(10.0)),
            format!(r#"{{"w":"{}","n":3,"total":7}}"#, ts(15.0)),
            format!(r#"{{"w":"{}","n":1,"total":4}}"#, ts(20.0)),
        ]
    );
}

#[test]
fn hopping_with_offset() {
    let mut j = job("SELECT System.Timestamp() AS w, COUNT(*) AS n FROM s TIMESTAMP BY t GROUP BY HoppingWindow(second, 10, 5, 1)");
    push(&mut j, 7.0, "");
    let rows = finish(&mut j);
    assert_eq!(rows, vec![format!(r#"{{"w":"{}","n":1}}"#, ts(11.0)), format!(r#"{{"w":"{}","n":1}}"#, ts(16.0))]);
}

#[test]
fn windows_emit_only_when_the_watermark_passes_their_end() {
    let mut j = job(COUNT_5S);
    push(&mut j, 1.0, "");
    push(&mut j, 4.0, "");
    assert!(drain(&mut j).is_empty());
    assert_eq!(j.metrics().watermark, Some(at(4.0)));
    push(&mut j, 5.0, "");
    assert_eq!(drain(&mut j), vec![format!(r#"{{"w":"{}","n":3}}"#, ts(5.0))]);
    push(&mut j, 9.0, "");
    assert!(drain(&mut j).is_empty(), "no partial results");
    push(&mut j, 12.0, "");
    assert_eq!(drain(&mut j), vec![format!(r#"{{"w":"{}","n":1}}"#, ts(10.0))]);
    let m = j.metrics();
    assert_eq!((m.input_events, m.output_events), (5, 2));
}

#[test]
fn empty_windows_emit_nothing() {
    let mut j = job(COUNT_5S);
    push(&mut j, 1.0, "");
    push(&mut j, 21.0, "");
    assert_eq!(
        finish(&mut j),
        vec![format!(r#"{{"w":"{}","n":1}}"#, ts(5.0)), format!(r#"{{"w":"{}","n":1}}"#, ts(25.0))]
    );
}

fn late_job(action: OutOfOrderAction) -> Job {
    let options = JobOptions { out_of_order_action: action, ..JobOptions::default() };
    Job::compile("SELECT v, System.Timestamp() AS at FROM s TIMESTAMP BY t", options).unwrap()
}

#[test]
fn late_events_are_adjusted_to_arrival_minus_tolerance() {
    let mut j = late_job(OutOfOrderAction::Adjust);
    push_at(&mut j, 0, 10.0, 100.0, r#""v":1"#);
    assert_eq!(finish(&mut j), vec![format!(r#"{{"v":1,"at":"{}"}}"#, ts(95.0))]);
    let m = j.metrics();
    assert_eq!((m.late_events, m.adjusted_events, m.dropped_events), (1, 1, 0));
}

#[test]
fn late_events_are_dropped_with_drop_policy() {
    let mut j = late_job(OutOfOrderAction::Drop);
    push_at(&mut j, 0, 10.0, 100.0, r#""v":1"#);
    push_at(&mut j, 0, 96.0, 100.0, r#""v":2"#);
    assert_eq!(finish(&mut j), vec![format!(r#"{{"v":2,"at":"{}"}}"#, ts(96.0))]);
    let m = j.metrics();
    assert_eq!((m.late_events, m.dropped_events), (1, 1));
}

#[test]
fn unlimited_late_tolerance_keeps_old_events() {
    let options = JobOptions { late_arrival_tolerance: None, ..JobOptions::default() };
    let mut j = Job::compile("SELECT v FROM s TIMESTAMP BY t", options).unwrap();
    push_at(&mut j, 0, 10.0, 100_000.0, r#""v":1"#);
    assert_eq!(finish(&mut j), vec![r#"{"v":1}"#]);
    assert_eq!(j.metrics().late_events, 0);
}

#[test]
fn early_events_are_dropped() {
    let mut j = late_job(OutOfOrderAction::Adjust);
    push_at(&mut j, 0, 400.0, 0.0, r#""v":1"#);
    push_at(&mut j, 0, 300.0, 0.0, r#""v":2"#);
    assert_eq!(finish(&mut j), vec![format!(r#"{{"v":2,"at":"{}"}}"#, ts(300.0))]);
    let m = j.metrics();
    assert_eq!((m.early_events, m.dropped_events), (1, 1));
}

fn ooo_job(tolerance_secs: i64, action: OutOfOrderAction) -> Job {
    let options = JobOptions {
        late_arrival_tolerance: None,
        out_of_order_tolerance: tolerance_secs * TICKS_PER_SECOND,
        out_of_order_action: action,
    };
    Job::compile("SELECT v, System.Timestamp() AS at FROM s TIMESTAMP BY t", options).unwrap()
}

#[test]
fn out_of_order_events_within_tolerance_are_reordered() {
    let mut j = ooo_job(5, OutOfOrderAction::Adjust);
    push(&mut j, 10.0, r#""v":1"#);
    push(&mut j, 7.0, r#""v":2"#);
    push(&mut j, 12.0, r#""v":3"#);
    assert_eq!(drain(&mut j), vec![format!(r#"{{"v":2,"at":"{}"}}"#, ts(7.0))], "watermark is 12 - 5");
    assert_eq!(
        finish(&mut j),
        vec![format!(r#"{{"v":1,"at":"{}"}}"#, ts(10.0)), format!(r#"{{"v":3,"at":"{}"}}"#, ts(12.0))]
    );
    assert_eq!(j.metrics().out_of_order_events, 0);
}

#[test]
fn out_of_order_events_beyond_tolerance_are_adjusted_to_the_watermark() {
    let mut j = ooo_job(2, OutOfOrderAction::Adjust);
    push(&mut j, 10.0, r#""v":1"#);
    push(&mut j, 5.0, r#""v":2"#);
    assert_eq!(
        finish(&mut j),
        vec![format!(r#"{{"v":2,"at":"{}"}}"#, ts(8.0)), format!(r#"{{"v":1,"at":"{}"}}"#, ts(10.0))]
    );
    let m = j.metrics();
    assert_eq!((m.out_of_order_events, m.adjusted_events), (1, 1));
}

#[test]
fn out_of_order_events_beyond_tolerance_are_dropped_with_drop_policy() {
    let mut j = ooo_job(0, OutOfOrderAction::Drop);
    push(&mut j, 10.0, r#""v":1"#);
    push(&mut j, 5.0, r#""v":2"#);
    push(&mut j, 10.0, r#""v":3"#);
    assert_eq!(
        finish(&mut j),
        vec![format!(r#"{{"v":1,"at":"{}"}}"#, ts(10.0)), format!(r#"{{"v":3,"at":"{}"}}"#, ts(10.0))]
    );
    let m = j.metrics();
    assert_eq!((m.out_of_order_events, m.dropped_events), (1, 1));
}

#[test]
fn job_watermark_is_the_minimum_over_partitions_and_idle_partitions_advance() {
    let mut j = job(COUNT_5S);
    j.declare_partitions(0, 2);
    push_at(&mut j, 0, 6.0, 6.0, "");
    assert!(drain(&mut j).is_empty(), "partition 1 has no watermark yet");
    assert_eq!(j.metrics().watermark, None);
    push_at(&mut j, 1, 3.0, 3.0, "");
    assert!(drain(&mut j).is_empty());
    assert_eq!(j.metrics().watermark, Some(at(3.0)));
    j.advance_arrival(0, 1, at(11.0));
    assert_eq!(j.metrics().watermark, Some(at(6.0)));
    assert_eq!(drain(&mut j), vec![format!(r#"{{"w":"{}","n":1}}"#, ts(5.0))]);
    assert!(
        j.push_json(0, 2, 0, Arrival::At(at(1.0)), b"{}").is_err(),
        "undeclared partition"
    );
}

#[test]
fn equal_timestamps_keep_arrival_order() {
    let mut j = job("SELECT v FROM s TIMESTAMP BY t");
    for v in 1..=4 {
        push(&mut j, 3.0, &format!(r#""v":{v}"#));
    }
    assert_eq!(finish(&mut j), vec![r#"{"v":1}"#, r#"{"v":2}"#, r#"{"v":3}"#, r#"{"v":4}"#]);
}

#[test]
fn groups_are_ordered_by_window_end_then_key() {
    let mut j = job("SELECT k, COUNT(*) AS n FROM s TIMESTAMP BY t GROUP BY k, TumblingWindow(second, 5)");
    for (s, k) in [(1.0, "c"), (2.0, "a"), (3.0, "b"), (4.0, "a"), (6.0, "b"), (7.0, "a")] {
        push(&mut j, s, &format!(r#""k":"{k}""#));
    }
    assert_eq!(
        finish(&mut j),
        vec![
            r#"{"k":"a","n":2}"#,
            r#"{"k":"b","n":1}"#,
            r#"{"k":"c","n":1}"#,
            r#"{"k":"a","n":1}"#,
            r#"{"k":"b","n":1}"#
        ]
    );
}

#[test]
fn having_filters_groups() {
    let mut j = job("SELECT k, COUNT(*) AS n FROM s TIMESTAMP BY t GROUP BY k, TumblingWindow(second, 5) HAVING COUNT(*) > 1");
    for (s, k) in [(1.0, "a"), (2.0, "b"), (3.0, "a")] {
        push(&mut j, s, &format!(r#""k":"{k}""#));
    }
    assert_eq!(finish(&mut j), vec![r#"{"k":"a","n":2}"#]);
}

#[test]
fn aggregates_keep_value_types() {
    let mut j = job(
        "SELECT COUNT(x) AS c, COUNT(DISTINCT x) AS d, SUM(x) AS s, AVG(x) AS a, MIN(x) AS lo, MAX(x) AS hi, SUM(f) AS sf \
         FROM s TIMESTAMP BY t GROUP BY TumblingWindow(minute, 1)",
    );
    push(&mut j, 1.0, r#""x":2,"f":1.5"#);
    push(&mut j, 2.0, r#""x":4,"f":1"#);
    push(&mut j, 3.0, r#""x":2"#);
    push(&mut j, 4.0, r#""x":null"#);
    assert_eq!(finish(&mut j), vec![r#"{"c":3,"d":2,"s":8,"a":2.6666666666666665,"lo":2,"hi":4,"sf":2.5}"#]);
}

#[test]
fn with_steps_chain_and_feed_two_outputs() {
    let q = "WITH per_key AS (
                 SELECT k, COUNT(*) AS n FROM s TIMESTAMP BY t GROUP BY k, TumblingWindow(second, 5)
             ),
             busy AS (SELECT k, n FROM per_key WHERE n >= 2)
             SELECT k, n, System.Timestamp() AS at INTO alerts FROM busy
             SELECT SUM(n) AS total, System.Timestamp() AS w INTO totals FROM per_key GROUP BY TumblingWindow(second, 10)";
    let mut j = job(q);
    assert_eq!(j.outputs(), ["alerts", "totals"]);
    assert_eq!(j.inputs(), ["s"]);
    for (s, k) in [(1.0, "a"), (2.0, "a"), (3.0, "b"), (7.0, "b"), (11.0, "a")] {
        push(&mut j, s, &format!(r#""k":"{k}""#));
    }
    j.finish();
    let mut out = Vec::new();
    j.drain_output(&mut out);
    let by = |o: usize| -> Vec<String> {
        out.iter().filter(|r| r.output == o).map(|r| r.row.to_json().to_string()).collect()
    };
    assert_eq!(by(0), vec![format!(r#"{{"k":"a","n":2,"at":"{}"}}"#, ts(5.0))]);
    assert_eq!(
        by(1),
        vec![format!(r#"{{"total":4,"w":"{}"}}"#, ts(10.0)), format!(r#"{{"total":1,"w":"{}"}}"#, ts(20.0))]
    );
    let seqs: Vec<(usize, u64)> = out.iter().map(|r| (r.output, r.seq)).collect();
    assert!(seqs.contains(&(1, 1)) && seqs.contains(&(1, 2)) && seqs.contains(&(0, 1)));
}

#[test]
fn union_merges_two_inputs_in_time_order() {
    let mut j = job("SELECT v FROM a TIMESTAMP BY t UNION SELECT v FROM b TIMESTAMP BY t");
    assert_eq!(j.inputs(), ["a", "b"]);
    let b = j.input_index("B").unwrap();
    for (input, secs, v) in [(0, 1.0, 1), (b, 2.0, 2), (0, 3.0, 3), (b, 0.5, 4)] {
        let json = format!(r#"{{"t":"{}","v":{v}}}"#, ts(secs));
        j.push_json(input, 0, 0, Arrival::At(at(secs)), json.as_bytes()).unwrap();
    }
    assert_eq!(finish(&mut j), vec![r#"{"v":4}"#, r#"{"v":1}"#, r#"{"v":2}"#, r#"{"v":3}"#]);
}

#[test]
fn scalar_expressions_case_cast_and_predicates() {
    let q = "SELECT CASE WHEN v > 10 THEN 'big' WHEN v > 5 THEN 'mid' ELSE 'small' END AS size,
                    CASE k WHEN 'a' THEN 1 ELSE 0 END AS is_a,
                    CAST(v AS float) AS f, CAST(v AS nvarchar(max)) AS s, TRY_CAST(k AS bigint) AS bad,
                    CAST('2024-01-01T00:00:00Z' AS datetime) AS d, CAST(1 AS bit) AS b,
                    v / 2 AS half, v % 4 AS m, v * 1.5 AS x, -v AS neg,
                    UPPER(k) AS up, LEN(k) AS len, CONCAT(k, '-', v) AS c, SUBSTRING('abcdef', 2, 3) AS sub,
                    ABS(-3) AS ab, ROUND(2.567, 2) AS r, FLOOR(2.5) AS fl, CEILING(2.1) AS ce,
                    DATEADD(minute, 5, t) AS later, DATEDIFF(second, '2024-01-01T00:00:00Z', t) AS secs,
                    DATEPART(hour, t) AS h
             FROM s TIMESTAMP BY t
             WHERE v BETWEEN 1 AND 20 AND k IN ('a', 'b') AND k LIKE '_' AND NOT (v = 13) AND note IS NULL";
    let mut j = job(q);
    push(&mut j, 3600.0, r#""v":12,"k":"a""#);
    push(&mut j, 3601.0, r#""v":13,"k":"a""#);
    push(&mut j, 3602.0, r#""v":6,"k":"c""#);
    push(&mut j, 3603.0, r#""v":6,"k":"a","note":"x""#);
    let rows = finish(&mut j);
    assert_eq!(rows.len(), 1);
    let expected = format!(
        r#"{{"size":"big","is_a":1,"f":12.0,"s":"12","bad":null,"d":"2024-01-01T00:00:00.0000000Z","b":true,"half":6,"m":0,"x":18.0,"neg":-12,"up":"A","len":1,"c":"a-12","sub":"bcd","ab":3,"r":2.57,"fl":2.0,"ce":3.0,"later":"{}","secs":3600,"h":1}}"#,
        ts(3900.0)
    );
    assert_eq!(rows[0], expected);
}

#[test]
fn runtime_errors_drop_the_event_and_are_counted() {
    let mut j = job("SELECT 10 / v AS q, CAST(k AS bigint) AS n FROM s TIMESTAMP BY t");
    push(&mut j, 1.0, r#""v":0,"k":"1""#);
    push(&mut j, 2.0, r#""v":5,"k":"x""#);
    push(&mut j, 3.0, r#""v":5,"k":"7""#);
    assert_eq!(finish(&mut j), vec![r#"{"q":2,"n":7}"#]);
    assert_eq!(j.metrics().errors, 2);
}

#[test]
fn bad_events_are_rejected_with_a_reason_and_the_job_continues() {
    let mut j = job("SELECT v FROM s TIMESTAMP BY t");
    let err = j.push_json(0, 0, 0, Arrival::At(at(1.0)), b"{\"t\": ").unwrap_err();
    assert!(err.to_string().contains("invalid JSON"), "{err}");
    let err = j.push_json(0, 0, 0, Arrival::At(at(1.0)), br#"{"t":"yesterday","v":1}"#).unwrap_err();
    assert!(err.to_string().contains("yesterday"), "{err}");
    assert!(j.push_json(0, 0, 0, Arrival::At(at(1.0)), b"[1]").is_err());
    push(&mut j, 2.0, r#""v":1"#);
    assert_eq!(finish(&mut j), vec![r#"{"v":1}"#]);
    assert_eq!(j.metrics().errors, 3);
}

#[test]
fn select_star_keeps_fields_and_arrival_time_is_the_default_event_time() {
    let mut j = job("SELECT *, System.Timestamp() AS at INTO out FROM s");
    j.push_json(0, 0, 0, Arrival::At(at(2.0)), br#"{"b":1,"a":{"x":[1,2]}}"#).unwrap();
    assert_eq!(finish(&mut j), vec![format!(r#"{{"b":1,"a":{{"x":[1,2]}},"at":"{}"}}"#, ts(2.0))]);
}

#[test]
fn arrival_from_payload_uses_event_enqueued_time() {
    let mut j = late_job(OutOfOrderAction::Adjust);
    let json = format!(r#"{{"t":"{}","v":1,"EventEnqueuedUtcTime":"{}"}}"#, ts(1.0), ts(60.0));
    j.push_json(0, 0, 0, Arrival::FromPayload, json.as_bytes()).unwrap();
    assert_eq!(finish(&mut j), vec![format!(r#"{{"v":1,"at":"{}"}}"#, ts(55.0))]);
}

#[test]
fn snapshot_and_restore_mid_window_gives_the_same_output() {
    let q = "SELECT k, COUNT(*) AS n, AVG(v) AS a, COUNT(DISTINCT v) AS d FROM s TIMESTAMP BY t \
             GROUP BY k, HoppingWindow(second, 10, 5)";
    let events: Vec<(f64, String)> =
        (0..40).map(|i| (i as f64 * 0.7, format!(r#""k":"k{}","v":{}"#, i % 3, i % 4))).collect();
    let mut straight = job(q);
    let mut expected = Vec::new();
    for (s, f) in &events {
        push(&mut straight, *s, f);
    }
    straight.finish();
    straight.drain_output(&mut expected);

    let mut first = job(q);
    let mut got: Vec<OutputRow> = Vec::new();
    for (s, f) in &events[..23] {
        push(&mut first, *s, f);
    }
    first.drain_output(&mut got);
    let snap = first.snapshot().unwrap();
    drop(first);
    let mut second = job(q);
    second.restore(&snap).unwrap();
    for (s, f) in &events[23..] {
        push(&mut second, *s, f);
    }
    second.finish();
    second.drain_output(&mut got);
    assert_eq!(got, expected);
    assert_eq!(second.metrics().input_events, 40);
    assert!(matches!(job("SELECT v FROM s").restore(&snap), Err(EngineError::Snapshot(_))));
}

#[test]
fn unsupported_constructs_report_where() {
    let err = Job::compile(
        "SELECT COUNT(*) FROM s\nGROUP BY SlidingWindow(second, 5)",
        JobOptions::default(),
    )
    .err()
    .unwrap();
    match err {
        EngineError::Unsupported { line, column, message } => {
            assert_eq!((line, column), (2, 10), "{message}");
        }
        other => panic!("{other}"),
    }
    assert!(matches!(Job::compile("SELEC x", JobOptions::default()), Err(EngineError::Sql(_))));
}

#[test]
fn job_is_send() {
    fn is_send<T: Send>() {}
    is_send::<Job>();
}

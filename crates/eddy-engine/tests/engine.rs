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
    job.push_json(
        0,
        partition,
        0,
        Arrival::At(at(arrival_secs)),
        json.as_bytes(),
    )
    .unwrap();
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
    let mut j = job(
        "SELECT System.Timestamp() AS w, COUNT(*) AS n FROM s TIMESTAMP BY t GROUP BY TumblingWindow(second, 10, 2)",
    );
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
    let mut j = job(
        "SELECT System.Timestamp() AS w, COUNT(*) AS n, SUM(v) AS total INTO out FROM s TIMESTAMP BY t GROUP BY HoppingWindow(second, 10, 5)",
    );
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
    let mut j = job(
        "SELECT System.Timestamp() AS w, COUNT(*) AS n FROM s TIMESTAMP BY t GROUP BY HoppingWindow(second, 10, 5, 1)",
    );
    push(&mut j, 7.0, "");
    let rows = finish(&mut j);
    assert_eq!(
        rows,
        vec![
            format!(r#"{{"w":"{}","n":1}}"#, ts(11.0)),
            format!(r#"{{"w":"{}","n":1}}"#, ts(16.0))
        ]
    );
}

#[test]
fn windows_emit_only_when_the_watermark_passes_their_end() {
    let mut j = job(COUNT_5S);
    push(&mut j, 1.0, "");
    push(&mut j, 4.0, "");
    assert!(drain(&mut j).is_empty());
    assert_eq!(j.metrics().watermark, Some(at(4.0)));
    push(&mut j, 5.0, "");
    assert_eq!(
        drain(&mut j),
        vec![format!(r#"{{"w":"{}","n":3}}"#, ts(5.0))]
    );
    push(&mut j, 9.0, "");
    assert!(drain(&mut j).is_empty(), "no partial results");
    push(&mut j, 12.0, "");
    assert_eq!(
        drain(&mut j),
        vec![format!(r#"{{"w":"{}","n":1}}"#, ts(10.0))]
    );
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
        vec![
            format!(r#"{{"w":"{}","n":1}}"#, ts(5.0)),
            format!(r#"{{"w":"{}","n":1}}"#, ts(25.0))
        ]
    );
}

fn late_job(action: OutOfOrderAction) -> Job {
    let options = JobOptions {
        out_of_order_action: action,
        ..JobOptions::default()
    };
    Job::compile(
        "SELECT v, System.Timestamp() AS at FROM s TIMESTAMP BY t",
        options,
    )
    .unwrap()
}

#[test]
fn late_events_are_adjusted_to_arrival_minus_tolerance() {
    let mut j = late_job(OutOfOrderAction::Adjust);
    push_at(&mut j, 0, 10.0, 100.0, r#""v":1"#);
    assert_eq!(
        finish(&mut j),
        vec![format!(r#"{{"v":1,"at":"{}"}}"#, ts(95.0))]
    );
    let m = j.metrics();
    assert_eq!(
        (m.late_events, m.adjusted_events, m.dropped_events),
        (1, 1, 0)
    );
}

#[test]
fn late_events_are_dropped_with_drop_policy() {
    let mut j = late_job(OutOfOrderAction::Drop);
    push_at(&mut j, 0, 10.0, 100.0, r#""v":1"#);
    push_at(&mut j, 0, 96.0, 100.0, r#""v":2"#);
    assert_eq!(
        finish(&mut j),
        vec![format!(r#"{{"v":2,"at":"{}"}}"#, ts(96.0))]
    );
    let m = j.metrics();
    assert_eq!((m.late_events, m.dropped_events), (1, 1));
}

#[test]
fn unlimited_late_tolerance_keeps_old_events() {
    let options = JobOptions {
        late_arrival_tolerance: None,
        ..JobOptions::default()
    };
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
    assert_eq!(
        finish(&mut j),
        vec![format!(r#"{{"v":2,"at":"{}"}}"#, ts(300.0))]
    );
    let m = j.metrics();
    assert_eq!((m.early_events, m.dropped_events), (1, 1));
}

fn ooo_job(tolerance_secs: i64, action: OutOfOrderAction) -> Job {
    let options = JobOptions {
        late_arrival_tolerance: None,
        out_of_order_tolerance: tolerance_secs * TICKS_PER_SECOND,
        out_of_order_action: action,
        ..JobOptions::default()
    };
    Job::compile(
        "SELECT v, System.Timestamp() AS at FROM s TIMESTAMP BY t",
        options,
    )
    .unwrap()
}

#[test]
fn out_of_order_events_within_tolerance_are_reordered() {
    let mut j = ooo_job(5, OutOfOrderAction::Adjust);
    push(&mut j, 10.0, r#""v":1"#);
    push(&mut j, 7.0, r#""v":2"#);
    push(&mut j, 12.0, r#""v":3"#);
    assert_eq!(
        drain(&mut j),
        vec![format!(r#"{{"v":2,"at":"{}"}}"#, ts(7.0))],
        "watermark is 12 - 5"
    );
    assert_eq!(
        finish(&mut j),
        vec![
            format!(r#"{{"v":1,"at":"{}"}}"#, ts(10.0)),
            format!(r#"{{"v":3,"at":"{}"}}"#, ts(12.0))
        ]
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
        vec![
            format!(r#"{{"v":2,"at":"{}"}}"#, ts(8.0)),
            format!(r#"{{"v":1,"at":"{}"}}"#, ts(10.0))
        ]
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
        vec![
            format!(r#"{{"v":1,"at":"{}"}}"#, ts(10.0)),
            format!(r#"{{"v":3,"at":"{}"}}"#, ts(10.0))
        ]
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
    assert_eq!(
        drain(&mut j),
        vec![format!(r#"{{"w":"{}","n":1}}"#, ts(5.0))]
    );
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
    assert_eq!(
        finish(&mut j),
        vec![r#"{"v":1}"#, r#"{"v":2}"#, r#"{"v":3}"#, r#"{"v":4}"#]
    );
}

#[test]
fn groups_are_ordered_by_window_end_then_key() {
    let mut j =
        job("SELECT k, COUNT(*) AS n FROM s TIMESTAMP BY t GROUP BY k, TumblingWindow(second, 5)");
    for (s, k) in [
        (1.0, "c"),
        (2.0, "a"),
        (3.0, "b"),
        (4.0, "a"),
        (6.0, "b"),
        (7.0, "a"),
    ] {
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
    let mut j = job(
        "SELECT k, COUNT(*) AS n FROM s TIMESTAMP BY t GROUP BY k, TumblingWindow(second, 5) HAVING COUNT(*) > 1",
    );
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
    assert_eq!(
        finish(&mut j),
        vec![r#"{"c":3,"d":2,"s":8,"a":2.6666666666666665,"lo":2,"hi":4,"sf":2.5}"#]
    );
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
        out.iter()
            .filter(|r| r.output == o)
            .map(|r| r.row.to_json().to_string())
            .collect()
    };
    assert_eq!(
        by(0),
        vec![format!(r#"{{"k":"a","n":2,"at":"{}"}}"#, ts(5.0))]
    );
    assert_eq!(
        by(1),
        vec![
            format!(r#"{{"total":4,"w":"{}"}}"#, ts(10.0)),
            format!(r#"{{"total":1,"w":"{}"}}"#, ts(20.0))
        ]
    );
    let seqs: Vec<(usize, u64)> = out.iter().map(|r| (r.output, r.seq)).collect();
    assert!(seqs.contains(&(1, 1)) && seqs.contains(&(1, 2)) && seqs.contains(&(0, 1)));
}

#[test]
fn union_merges_two_inputs_in_time_order() {
    let mut j = job("SELECT v FROM a TIMESTAMP BY t UNION SELECT v FROM b TIMESTAMP BY t");
    assert_eq!(j.inputs(), ["a", "b"]);
    let b = j.input_index("B").unwrap();
    for (input, secs, v) in [(0, 1.0, 1), (b, 0.5, 2), (0, 3.0, 3), (b, 2.0, 4)] {
        let json = format!(r#"{{"t":"{}","v":{v}}}"#, ts(secs));
        j.push_json(input, 0, 0, Arrival::At(at(secs)), json.as_bytes())
            .unwrap();
    }
    assert_eq!(
        finish(&mut j),
        vec![r#"{"v":2}"#, r#"{"v":1}"#, r#"{"v":4}"#, r#"{"v":3}"#]
    );
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
    let err = j
        .push_json(0, 0, 0, Arrival::At(at(1.0)), b"{\"t\": ")
        .unwrap_err();
    assert!(err.to_string().contains("invalid JSON"), "{err}");
    let err = j
        .push_json(0, 0, 0, Arrival::At(at(1.0)), br#"{"t":"yesterday","v":1}"#)
        .unwrap_err();
    assert!(err.to_string().contains("yesterday"), "{err}");
    assert!(j.push_json(0, 0, 0, Arrival::At(at(1.0)), b"[1]").is_err());
    push(&mut j, 2.0, r#""v":1"#);
    assert_eq!(finish(&mut j), vec![r#"{"v":1}"#]);
    assert_eq!(j.metrics().errors, 3);
}

#[test]
fn select_star_keeps_fields_and_arrival_time_is_the_default_event_time() {
    let mut j = job("SELECT *, System.Timestamp() AS at INTO out FROM s");
    j.push_json(0, 0, 0, Arrival::At(at(2.0)), br#"{"b":1,"a":{"x":[1,2]}}"#)
        .unwrap();
    assert_eq!(
        finish(&mut j),
        vec![format!(r#"{{"b":1,"a":{{"x":[1,2]}},"at":"{}"}}"#, ts(2.0))]
    );
}

#[test]
fn arrival_from_payload_uses_event_enqueued_time() {
    let mut j = late_job(OutOfOrderAction::Adjust);
    let json = format!(
        r#"{{"t":"{}","v":1,"EventEnqueuedUtcTime":"{}"}}"#,
        ts(1.0),
        ts(60.0)
    );
    j.push_json(0, 0, 0, Arrival::FromPayload, json.as_bytes())
        .unwrap();
    assert_eq!(
        finish(&mut j),
        vec![format!(r#"{{"v":1,"at":"{}"}}"#, ts(55.0))]
    );
}

fn run_with_snapshot(q: &str, events: &[(f64, String)], cut: usize) -> Vec<OutputRow> {
    let mut first = job(q);
    let mut got: Vec<OutputRow> = Vec::new();
    for (s, f) in &events[..cut] {
        push(&mut first, *s, f);
    }
    first.drain_output(&mut got);
    let snap = first.snapshot().unwrap();
    drop(first);
    let mut second = job(q);
    second.restore(&snap).unwrap();
    for (s, f) in &events[cut..] {
        push(&mut second, *s, f);
    }
    second.finish();
    second.drain_output(&mut got);
    assert_eq!(second.metrics().input_events, events.len() as u64);
    got
}

#[test]
fn snapshot_and_restore_mid_window_gives_the_same_output() {
    let events: Vec<(f64, String)> = (0..40)
        .map(|i| (i as f64 * 0.7, format!(r#""k":"k{}","v":{}"#, i % 3, i % 4)))
        .collect();
    for window in [
        "HoppingWindow(second, 10, 5)",
        "SlidingWindow(second, 3)",
        "SessionWindow(second, 2, 10)",
    ] {
        let q = format!(
            "SELECT k, COUNT(*) AS n, AVG(v) AS a, COUNT(DISTINCT v) AS d, MAX(v) AS m, System.Timestamp() AS w \
             FROM s TIMESTAMP BY t GROUP BY k, {window}"
        );
        let mut straight = job(&q);
        let mut expected = Vec::new();
        for (s, f) in &events {
            push(&mut straight, *s, f);
        }
        straight.finish();
        straight.drain_output(&mut expected);
        assert!(!expected.is_empty());
        for cut in [1, 23, 39] {
            assert_eq!(
                run_with_snapshot(&q, &events, cut),
                expected,
                "{window}, cut at {cut}"
            );
        }
    }
    let snap = job("SELECT v FROM s").snapshot().unwrap();
    assert!(matches!(
        job("SELECT w FROM s").restore(&snap),
        Err(EngineError::Snapshot(_))
    ));
    assert!(matches!(
        job("SELECT w FROM s").restore(b"garbage"),
        Err(EngineError::Snapshot(_))
    ));
}

#[test]
fn unsupported_constructs_report_where() {
    let q = "SELECT v,\n  udf.double(v) AS d FROM s";
    match Job::compile(q, JobOptions::default()) {
        Err(EngineError::Unsupported {
            line,
            column,
            message,
            ..
        }) => {
            assert_eq!((line, column), (2, 3), "{message}");
            assert!(message.contains("udf.double"), "{message}");
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("UDFs are not run yet"),
    }
    assert!(matches!(
        Job::compile("SELEC x", JobOptions::default()),
        Err(EngineError::Sql(_))
    ));
}

#[test]
fn job_is_send() {
    fn is_send<T: Send>() {}
    is_send::<Job>();
}

#[test]
fn fields_are_found_in_any_case_and_events_may_change_shape() {
    let mut j = job("SELECT Temp, dev.Name AS name FROM s TIMESTAMP BY t WHERE temp > 0");
    push(&mut j, 1.0, r#""temp":5,"extra":[1,2],"dev":{"name":"a"}"#);
    push(&mut j, 2.0, r#""dev":{"NAME":"b"},"TEMP":6"#);
    push(&mut j, 3.0, r#""temp":7"#);
    assert_eq!(
        finish(&mut j),
        vec![
            r#"{"Temp":5,"name":"a"}"#,
            r#"{"Temp":6,"name":"b"}"#,
            r#"{"Temp":7,"name":null}"#
        ]
    );
}

#[test]
fn more_scalar_functions() {
    let q = "SELECT LEFT(k, 2) AS l, RIGHT(k, 2) AS r, TRIM('  x ') AS t, REPLACE(k, 'b', 'B') AS rep,
                    CHARINDEX('c', k) AS ci, CONCAT_WS('-', 'a', NULL, 'b') AS cw, REVERSE(k) AS rev,
                    POWER(2, 10) AS p, SQRT(16) AS sq, SIGN(-5) AS sg, GetType(k) AS ty,
                    GetArrayLength(arr) AS n, GetArrayElement(arr, 1) AS second,
                    GetRecordPropertyValue(rec, 'a.b') AS deep,
                    DATETIMEFROMPARTS(2024, 2, 29, 1, 2, 3, 4) AS dt, STUFF('abcdef', 2, 3, 'XY') AS st,
                    TRANSLATE('2*[3+4]', '[]', '()') AS tr, UNICODE('A') AS u, NCHAR(66) AS nc,
                    CONCAT('[', SPACE(2), ']') AS sp, DATENAME(month, '2024-03-05') AS mon,
                    DATENAME(weekday, '2024-03-05') AS wd
             FROM s TIMESTAMP BY t";
    let mut j = job(q);
    push(
        &mut j,
        1.0,
        r#""k":"abcd","arr":[10,20],"rec":{"a":{"b":true}}"#,
    );
    assert_eq!(
        finish(&mut j),
        vec![
            r#"{"l":"ab","r":"cd","t":"x","rep":"aBcd","ci":3,"cw":"a-b","rev":"dcba","p":1024,"sq":4.0,"sg":-1,"ty":"nvarchar(max)","n":2,"second":20,"deep":true,"dt":"2024-02-29T01:02:03.0040000Z","st":"aXYef","tr":"2*(3+4)","u":65,"nc":"B","sp":"[  ]","mon":"March","wd":"Tuesday"}"#
        ]
    );
}

#[test]
fn sliding_window_outputs_when_an_event_enters_or_leaves() {
    let mut j = job(
        "SELECT System.Timestamp() AS w, COUNT(*) AS n FROM s TIMESTAMP BY t GROUP BY SlidingWindow(second, 5)",
    );
    for s in [34.0, 38.0, 42.0] {
        push(&mut j, s, "");
    }
    let expected: Vec<String> = [(34.0, 1), (38.0, 2), (39.0, 1), (42.0, 2), (43.0, 1)]
        .iter()
        .map(|(s, n)| format!(r#"{{"w":"{}","n":{n}}}"#, ts(*s)))
        .collect();
    assert_eq!(finish(&mut j), expected);
}

#[test]
fn sliding_window_emits_on_watermark_per_key() {
    let mut j =
        job("SELECT k, COUNT(*) AS n FROM s TIMESTAMP BY t GROUP BY k, SlidingWindow(second, 10)");
    push(&mut j, 1.0, r#""k":"b""#);
    push(&mut j, 1.0, r#""k":"a""#);
    assert_eq!(
        drain(&mut j),
        vec![r#"{"k":"a","n":1}"#, r#"{"k":"b","n":1}"#]
    );
    push(&mut j, 5.0, r#""k":"a""#);
    assert_eq!(drain(&mut j), vec![r#"{"k":"a","n":2}"#]);
    push(&mut j, 30.0, r#""k":"a""#);
    // a's first event leaves at 11 (one left), its second at 15 (empty: no row);
    // b becomes empty at 11 (no row); a's third event enters at 30.
    assert_eq!(
        drain(&mut j),
        vec![r#"{"k":"a","n":1}"#, r#"{"k":"a","n":1}"#]
    );
}

#[test]
fn session_window_closes_on_timeout_and_at_max_duration_checks() {
    let mut j = job(
        "SELECT System.Timestamp() AS w, COUNT(*) AS n FROM s TIMESTAMP BY t GROUP BY SessionWindow(second, 5, 20)",
    );
    let mut times = vec![1.0, 3.0, 7.0];
    times.extend((0..9).map(|i| 30.0 + 4.0 * i as f64)); // 30, 34, ..., 62
    for s in times {
        push(&mut j, s, "");
    }
    let expected: Vec<String> = [(12.0, 3), (60.0, 8), (67.0, 1)]
        .iter()
        .map(|(s, n)| format!(r#"{{"w":"{}","n":{n}}}"#, ts(*s)))
        .collect();
    assert_eq!(finish(&mut j), expected);
}

#[test]
fn session_window_partitioned_by_key() {
    let q = "SELECT k, System.Timestamp() AS w, COUNT(*) AS n FROM s TIMESTAMP BY t \
             GROUP BY k, SessionWindow(second, 5, 20) OVER (PARTITION BY k)";
    let mut j = job(q);
    for (s, k) in [(1.0, "a"), (2.0, "b"), (3.0, "a"), (9.0, "b")] {
        push(&mut j, s, &format!(r#""k":"{k}""#));
    }
    let expected: Vec<String> = [("b", 7.0), ("a", 8.0), ("b", 14.0)]
        .iter()
        .zip([1, 2, 1])
        .map(|((k, s), n)| format!(r#"{{"k":"{k}","w":"{}","n":{n}}}"#, ts(*s)))
        .collect();
    assert_eq!(finish(&mut j), expected);
}

#[test]
fn session_window_without_partition_is_shared_by_all_keys() {
    let mut j = job(
        "SELECT k, COUNT(*) AS n FROM s TIMESTAMP BY t GROUP BY k, SessionWindow(second, 5, 60)",
    );
    for (s, k) in [(1.0, "a"), (4.0, "b"), (8.0, "a")] {
        push(&mut j, s, &format!(r#""k":"{k}""#));
    }
    push(&mut j, 12.9, r#""k":"c""#);
    assert!(
        drain(&mut j).is_empty(),
        "the session is still open at 12.9"
    );
    push(&mut j, 30.0, r#""k":"c""#);
    assert_eq!(
        drain(&mut j),
        vec![
            r#"{"k":"a","n":2}"#,
            r#"{"k":"b","n":1}"#,
            r#"{"k":"c","n":1}"#
        ]
    );
}

#[test]
fn cross_and_outer_apply_expand_arrays_and_records() {
    let q = "SELECT s.id, e.ArrayIndex AS i, e.ArrayValue.v AS v INTO a FROM s TIMESTAMP BY t \
             CROSS APPLY GetArrayElements(s.items) AS e WHERE e.ArrayValue.v > 1
             SELECT id, p.PropertyName AS name, p.PropertyValue AS value INTO b FROM s TIMESTAMP BY t \
             OUTER APPLY GetRecordProperties(s.props) AS p";
    let mut j = job(q);
    push(
        &mut j,
        1.0,
        r#""id":1,"items":[{"v":1},{"v":2},{"v":3}],"props":{"x":1,"y":"z"}"#,
    );
    push(&mut j, 2.0, r#""id":2,"items":[]"#);
    j.finish();
    let mut out = Vec::new();
    j.drain_output(&mut out);
    let rows: Vec<(usize, String)> = out
        .iter()
        .map(|r| (r.output, r.row.to_json().to_string()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (0, r#"{"id":1,"i":1,"v":2}"#.to_string()),
            (0, r#"{"id":1,"i":2,"v":3}"#.to_string()),
            (1, r#"{"id":1,"name":"x","value":1}"#.to_string()),
            (1, r#"{"id":1,"name":"y","value":"z"}"#.to_string()),
            (1, r#"{"id":2,"name":null,"value":null}"#.to_string()),
        ]
    );
}

fn push_to(job: &mut Job, input: &str, secs: f64, fields: &str) {
    let i = job.input_index(input).unwrap();
    let json = format!(r#"{{"t":"{}",{fields}}}"#, ts(secs));
    job.push_json(i, 0, 0, Arrival::At(at(secs)), json.as_bytes())
        .unwrap();
}

fn join_events(j: &mut Job) {
    push_to(j, "orders", 1.0, r#""id":1"#);
    push_to(j, "orders", 2.0, r#""id":2"#);
    push_to(j, "payments", 2.0, r#""id":3,"amount":30"#);
    push_to(j, "orders", 3.0, r#""id":3"#);
    push_to(j, "payments", 5.0, r#""id":1,"amount":10"#);
    push_to(j, "payments", 20.0, r#""id":2,"amount":20"#);
}

#[test]
fn inner_join_matches_within_the_datediff_bound() {
    let mut j = job(
        "SELECT o.id, p.amount, DATEDIFF(second, o, p) AS gap, System.Timestamp() AS at \
         FROM orders o TIMESTAMP BY t JOIN payments p TIMESTAMP BY t \
         ON o.id = p.id AND DATEDIFF(second, o, p) BETWEEN 0 AND 10",
    );
    join_events(&mut j);
    assert_eq!(
        finish(&mut j),
        vec![format!(
            r#"{{"id":1,"amount":10,"gap":4,"at":"{}"}}"#,
            ts(5.0)
        )]
    );
}

#[test]
fn left_outer_join_emits_unmatched_rows_once_the_bound_passes() {
    let mut j = job(
        "SELECT o.id, p.amount FROM orders o TIMESTAMP BY t LEFT OUTER JOIN payments p TIMESTAMP BY t \
         ON o.id = p.id AND DATEDIFF(second, o, p) BETWEEN 0 AND 10",
    );
    push_to(&mut j, "orders", 1.0, r#""id":1"#);
    push_to(&mut j, "payments", 5.0, r#""id":1,"amount":10"#);
    push_to(&mut j, "orders", 6.0, r#""id":2"#);
    assert_eq!(
        drain(&mut j),
        vec![r#"{"id":1,"amount":10}"#],
        "the watermark is 5"
    );
    push_to(&mut j, "orders", 16.0, r#""id":3"#);
    push_to(&mut j, "payments", 16.0, r#""id":9,"amount":1"#);
    assert!(
        drain(&mut j).is_empty(),
        "order 2 may still be paid until 16"
    );
    push_to(&mut j, "orders", 18.0, r#""id":4"#);
    push_to(&mut j, "payments", 18.0, r#""id":9,"amount":1"#);
    assert_eq!(drain(&mut j), vec![r#"{"id":2,"amount":null}"#]);
    let mut j = job(
        "SELECT o.id FROM orders o TIMESTAMP BY t LEFT OUTER JOIN payments p TIMESTAMP BY t \
         ON o.id = p.id AND DATEDIFF(second, o, p) BETWEEN 0 AND 10 WHERE p.id IS NULL",
    );
    join_events(&mut j);
    assert_eq!(finish(&mut j), vec![r#"{"id":2}"#, r#"{"id":3}"#]);
}

#[test]
fn statistical_aggregates_and_collect() {
    let mut j = job(
        "SELECT VAR(x) AS v, VARP(x) AS vp, STDEV(x) AS sd, STDEVP(x) AS sdp, Collect(x) AS xs \
         FROM s TIMESTAMP BY t GROUP BY TumblingWindow(minute, 1)",
    );
    for (s, x) in [
        (1.0, 2),
        (2.0, 4),
        (3.0, 4),
        (4.0, 4),
        (5.0, 5),
        (6.0, 5),
        (7.0, 7),
        (8.0, 9),
    ] {
        push(&mut j, s, &format!(r#""x":{x}"#));
    }
    assert_eq!(
        finish(&mut j),
        vec![
            r#"{"v":4.571428571428571,"vp":4.0,"sd":2.138089935299395,"sdp":2.0,"xs":[2,4,4,4,5,5,7,9]}"#
        ]
    );
}

#[test]
fn lag_last_and_isfirst_see_earlier_events_per_partition() {
    let q = "SELECT k, v, LAG(v) OVER (PARTITION BY k LIMIT DURATION(second, 10)) AS prev,
                    LAG(v, 2, -1) OVER (PARTITION BY k LIMIT DURATION(minute, 1)) AS prev2,
                    LAST(v) OVER (PARTITION BY k LIMIT DURATION(minute, 1) WHEN v > 2) AS big,
                    ISFIRST(second, 10) OVER (PARTITION BY k) AS first
             FROM s TIMESTAMP BY t WHERE LAG(k) OVER (LIMIT DURATION(hour, 1)) IS NOT NULL OR v = 1";
    let mut j = job(q);
    for (s, k, v) in [
        (1.0, "a", 1),
        (2.0, "a", 3),
        (3.0, "b", 5),
        (4.0, "a", 2),
        (15.0, "a", 4),
    ] {
        push(&mut j, s, &format!(r#""k":"{k}","v":{v}"#));
    }
    assert_eq!(
        finish(&mut j),
        vec![
            r#"{"k":"a","v":1,"prev":null,"prev2":-1,"big":null,"first":1}"#,
            r#"{"k":"a","v":3,"prev":1,"prev2":-1,"big":3,"first":0}"#,
            r#"{"k":"b","v":5,"prev":null,"prev2":-1,"big":5,"first":1}"#,
            r#"{"k":"a","v":2,"prev":3,"prev2":1,"big":3,"first":0}"#,
            r#"{"k":"a","v":4,"prev":null,"prev2":3,"big":4,"first":1}"#,
        ]
    );
}

#[test]
fn create_table_converts_declared_columns_and_rejects_bad_rows() {
    let q = "CREATE TABLE s (v bigint, t datetime, f float);
             SELECT v, f, v + 1 AS next FROM s TIMESTAMP BY t";
    let mut j = job(q);
    push(&mut j, 1.0, r#""v":"41","f":2"#);
    let err = j.push_json(
        0,
        0,
        0,
        Arrival::At(at(2.0)),
        format!(r#"{{"t":"{}","v":"x"}}"#, ts(2.0)).as_bytes(),
    );
    assert!(err.unwrap_err().to_string().contains("column 'v'"));
    assert_eq!(finish(&mut j), vec![r#"{"v":41,"f":2.0,"next":42}"#]);
    assert_eq!(j.metrics().errors, 1);
}

#[test]
fn the_source_alias_alone_is_the_whole_event() {
    let mut j = job(
        "SELECT p.PropertyName AS name, p.PropertyValue AS value FROM s TIMESTAMP BY t \
         CROSS APPLY GetRecordProperties(s) AS p WHERE p.PropertyName <> 't'",
    );
    push(&mut j, 1.0, r#""a":1,"b":"x""#);
    assert_eq!(
        finish(&mut j),
        vec![r#"{"name":"a","value":1}"#, r#"{"name":"b","value":"x"}"#]
    );
}

#[test]
fn union_of_grouped_branches_is_ordered_by_window_end() {
    let q = "SELECT 'a' AS src, COUNT(*) AS n, System.Timestamp() AS w FROM a TIMESTAMP BY t GROUP BY TumblingWindow(second, 5) \
             UNION SELECT 'b' AS src, COUNT(*) AS n, System.Timestamp() AS w FROM b TIMESTAMP BY t GROUP BY TumblingWindow(second, 5)";
    let mut j = job(q);
    for (input, secs) in [
        ("a", 1.0),
        ("b", 2.0),
        ("a", 6.0),
        ("b", 7.0),
        ("a", 12.0),
        ("b", 12.0),
    ] {
        push_to(&mut j, input, secs, r#""x":1"#);
    }
    let rows = drain(&mut j);
    let srcs: Vec<String> = rows.iter().map(|r| r[7..10].to_string()).collect();
    assert_eq!(srcs, ["\"a\"", "\"b\"", "\"a\"", "\"b\""], "{rows:?}");
}

#[test]
fn documented_query_shapes_run() {
    let q = "SELECT TollId, System.Timestamp() AS WindowEnd, COUNT(*) AS Count
             INTO TollCounts
             FROM EntryStream TIMESTAMP BY DATEADD(millisecond, ms, '1970-01-01T00:00:00Z')
             GROUP BY TUMBLINGWINDOW(Duration(minute, 3), Offset(second, 1)), TollId";
    let mut j = job(q);
    assert_eq!(j.outputs(), ["TollCounts"]);
    assert_eq!(j.input_index("entrystream"), Some(0));
    for (secs, toll) in [(0.5, 2), (10.0, 1), (180.0, 1), (181.0, 1), (182.0, 2)] {
        let ms = (at(secs) / 10_000) as f64;
        let json = format!(r#"{{"ms":{ms},"TollId":{toll}}}"#);
        j.push_json(0, 0, 0, Arrival::At(at(secs)), json.as_bytes())
            .unwrap();
    }
    assert_eq!(
        finish(&mut j),
        vec![
            format!(r#"{{"TollId":2,"WindowEnd":"{}","Count":1}}"#, ts(1.0)),
            format!(r#"{{"TollId":1,"WindowEnd":"{}","Count":3}}"#, ts(181.0)),
            format!(r#"{{"TollId":2,"WindowEnd":"{}","Count":1}}"#, ts(361.0)),
        ]
    );
}

#[test]
fn join_of_an_input_with_a_windowed_step() {
    // Nexmark q7: the bids with the highest price of each 10-second window.
    let q = "WITH maxprice AS (
               SELECT MAX(price) AS maxprice FROM bid TIMESTAMP BY t GROUP BY TumblingWindow(second, 10)
             )
             SELECT B.auction, B.price INTO output
             FROM bid B TIMESTAMP BY t
             JOIN maxprice M ON B.price = M.maxprice AND DATEDIFF(millisecond, B, M) BETWEEN 0 AND 9999";
    let mut j = job(q);
    for (s, a, p) in [
        (1.0, 1, 5),
        (2.0, 2, 9),
        (3.0, 3, 9),
        (9.0, 4, 2),
        (11.0, 5, 9),
        (12.0, 6, 3),
    ] {
        push(&mut j, s, &format!(r#""auction":{a},"price":{p}"#));
    }
    assert_eq!(
        drain(&mut j),
        vec![r#"{"auction":2,"price":9}"#, r#"{"auction":3,"price":9}"#]
    );
    assert_eq!(finish(&mut j), vec![r#"{"auction":5,"price":9}"#]);
}

#[test]
fn join_of_two_steps_at_the_same_instant() {
    // Nexmark q5: the auctions with the most bids per hopping window.
    let q = "WITH counts AS (
               SELECT auction, COUNT(*) AS num FROM bid TIMESTAMP BY t GROUP BY auction, HoppingWindow(second, 10, 5)
             ),
             maxes AS (SELECT MAX(num) AS maxn FROM counts GROUP BY TumblingWindow(second, 5))
             SELECT C.auction, C.num, System.Timestamp() AS w INTO output
             FROM counts C JOIN maxes M ON DATEDIFF(second, C, M) BETWEEN 0 AND 0
             WHERE C.num >= M.maxn";
    let mut j = job(q);
    for (s, a) in [(1.0, 1), (2.0, 2), (3.0, 2), (6.0, 1), (7.0, 1)] {
        push(&mut j, s, &format!(r#""auction":{a}"#));
    }
    assert_eq!(
        finish(&mut j),
        vec![
            format!(r#"{{"auction":2,"num":2,"w":"{}"}}"#, ts(5.0)),
            format!(r#"{{"auction":1,"num":3,"w":"{}"}}"#, ts(10.0)),
            format!(r#"{{"auction":1,"num":2,"w":"{}"}}"#, ts(15.0)),
        ]
    );
}

#[test]
fn ordered_aggregates_topone_collecttop_and_percentiles() {
    let q = "SELECT TopOne() OVER (ORDER BY v DESC) AS top, CollectTop(2) OVER (ORDER BY v ASC) AS low2,
                    PERCENTILE_CONT(0.5) OVER (ORDER BY v) AS median, PERCENTILE_DISC(0.5) OVER (ORDER BY v) AS disc
             FROM s TIMESTAMP BY t GROUP BY TumblingWindow(minute, 1)";
    let mut j = job(q);
    for (s, id, v) in [(1.0, 1, 5), (2.0, 2, 9), (3.0, 3, 1), (4.0, 4, 9)] {
        push(&mut j, s, &format!(r#""id":{id},"v":{v}"#));
    }
    let rows = finish(&mut j);
    assert_eq!(rows.len(), 1);
    let row: serde_json::Value = serde_json::from_str(&rows[0]).unwrap();
    assert_eq!(row["top"]["id"], 2, "{row}");
    assert_eq!(row["low2"][0]["rank"], 1);
    assert_eq!(row["low2"][0]["value"]["id"], 3);
    assert_eq!(row["low2"][1]["value"]["id"], 1);
    assert_eq!(row["median"], 7.0);
    assert_eq!(row["disc"], 5);
}

#[test]
fn geofencing_with_points_and_polygons() {
    let q = "SELECT id, ROUND(ST_DISTANCE(CreatePoint(lat, lon), CreatePoint(47.6, -122.3)), 0) AS metres,
                    ST_WITHIN(CreatePoint(lat, lon),
                              CreatePolygon(CreatePoint(47.0, -123.0), CreatePoint(47.0, -122.0),
                                            CreatePoint(48.0, -122.0), CreatePoint(48.0, -123.0),
                                            CreatePoint(47.0, -123.0))) AS inside
             FROM s TIMESTAMP BY t";
    let mut j = job(q);
    push(&mut j, 1.0, r#""id":1,"lat":47.6,"lon":-122.3"#);
    push(&mut j, 2.0, r#""id":2,"lat":47.61,"lon":-122.3"#);
    push(&mut j, 3.0, r#""id":3,"lat":49.0,"lon":-122.3"#);
    assert_eq!(
        finish(&mut j),
        vec![
            r#"{"id":1,"metres":0.0,"inside":1}"#,
            r#"{"id":2,"metres":1112.0,"inside":1}"#,
            r#"{"id":3,"metres":155673.0,"inside":0}"#,
        ]
    );
}

#[test]
fn bulk_events_at_a_window_end_are_all_counted() {
    let mut j = job(COUNT_5S);
    let n = eddy_engine::job::FLUSH_EVERY as usize + 100;
    for _ in 0..n {
        push(&mut j, 5.0, "");
    }
    push(&mut j, 6.0, "");
    assert_eq!(
        drain(&mut j),
        vec![format!(r#"{{"w":"{}","n":{n}}}"#, ts(5.0))]
    );
}

#[test]
fn an_event_at_an_already_emitted_instant_is_out_of_order() {
    let mut j = job(COUNT_5S);
    push(&mut j, 5.0, "");
    assert_eq!(
        drain(&mut j),
        vec![format!(r#"{{"w":"{}","n":1}}"#, ts(5.0))]
    );
    push(&mut j, 5.0, "");
    let m = j.metrics();
    assert_eq!((m.out_of_order_events, m.adjusted_events), (1, 1));
    assert_eq!(
        finish(&mut j),
        vec![format!(r#"{{"w":"{}","n":1}}"#, ts(10.0))]
    );
}

#[test]
fn substreams_keep_a_watermark_per_key() {
    let options = JobOptions {
        late_arrival_tolerance: None,
        ..JobOptions::default()
    };
    let q = "SELECT k, COUNT(*) AS n, System.Timestamp() AS w FROM s TIMESTAMP BY t OVER k \
             GROUP BY k, TumblingWindow(second, 5)";
    let mut j = Job::compile(q, options).unwrap();
    for (secs, k) in [
        (101.0, "a"),
        (1.0, "b"),
        (102.0, "a"),
        (2.0, "b"),
        (106.0, "a"),
    ] {
        push_at(&mut j, 0, secs, 100.0, &format!(r#""k":"{k}""#));
    }
    assert_eq!(
        drain(&mut j),
        vec![format!(r#"{{"k":"a","n":2,"w":"{}"}}"#, ts(105.0))]
    );
    push_at(&mut j, 0, 7.0, 101.0, r#""k":"b""#);
    assert_eq!(
        drain(&mut j),
        vec![format!(r#"{{"k":"b","n":2,"w":"{}"}}"#, ts(5.0))]
    );
    assert_eq!(j.metrics().out_of_order_events, 0);
    push_at(&mut j, 0, 0.5, 102.0, r#""k":"b""#);
    assert_eq!(
        j.metrics().out_of_order_events,
        1,
        "behind b's own watermark"
    );
    assert_eq!(
        finish(&mut j),
        vec![
            format!(r#"{{"k":"b","n":2,"w":"{}"}}"#, ts(10.0)),
            format!(r#"{{"k":"a","n":1,"w":"{}"}}"#, ts(110.0)),
        ]
    );
    let snap = j.snapshot().unwrap();
    let mut again = Job::compile(
        q,
        JobOptions {
            late_arrival_tolerance: None,
            ..JobOptions::default()
        },
    )
    .unwrap();
    again.restore(&snap).unwrap();
    assert!(matches!(
        Job::compile(
            "WITH x AS (SELECT k FROM s TIMESTAMP BY t OVER k) SELECT k FROM x",
            JobOptions::default()
        ),
        Err(EngineError::Unsupported { .. })
    ));
}

#[test]
fn every_aggregate_on_every_window_kind_survives_snapshot_and_restore() {
    let events: Vec<(f64, String)> = (0..60)
        .map(|i| {
            let v = if i % 7 == 3 {
                "null".to_string()
            } else {
                format!("{}", (i * 5) % 11)
            };
            (i as f64 * 0.45, format!(r#""k":"k{}","v":{v}"#, i % 2))
        })
        .collect();
    let aggregates = "COUNT(*) AS n, COUNT(v) AS nv, COUNT(DISTINCT v) AS d, SUM(v) AS s, AVG(v) AS a, \
        MIN(v) AS mn, MAX(v) AS mx, STDEV(v) AS sd, STDEVP(v) AS sdp, VAR(v) AS va, VARP(v) AS vap, \
        Percentile_Cont(0.5) OVER (ORDER BY v) AS pc, Percentile_Disc(0.25) OVER (ORDER BY v DESC) AS pd, \
        TopOne() OVER (ORDER BY v DESC) AS top, Collect(v) AS c, CollectTop(2) OVER (ORDER BY v) AS ct";
    for window in [
        "TumblingWindow(second, 4)",
        "HoppingWindow(second, 6, 2)",
        "SlidingWindow(second, 3)",
        "SessionWindow(second, 2, 8)",
        "System.Timestamp()",
        "Windows(Window('h', HoppingWindow(second, 6, 2)), Window('s', SlidingWindow(second, 3)), \
         Window('x', SessionWindow(second, 1, 4)))",
    ] {
        let q = format!(
            "SELECT k, System.Window().Id AS id, {aggregates}, System.Timestamp() AS w \
             FROM s TIMESTAMP BY t GROUP BY k, {window}"
        );
        let mut straight = job(&q);
        let mut expected = Vec::new();
        for (s, f) in &events {
            push(&mut straight, *s, f);
        }
        straight.finish();
        straight.drain_output(&mut expected);
        assert!(!expected.is_empty(), "{window}");
        for cut in [1, 17, 30, 59] {
            assert_eq!(
                run_with_snapshot(&q, &events, cut),
                expected,
                "{window}, cut at {cut}"
            );
        }
    }
}

#[test]
fn windows_tags_rows_with_the_window_id() {
    let q = "SELECT k, System.Window().Id AS id, COUNT(*) AS n, System.Timestamp() AS w FROM s \
             TIMESTAMP BY t GROUP BY k, Windows(Window('ten', TumblingWindow(second, 10)), \
             Window('five', Tumbling(second, 5)))";
    let mut j = job(q);
    for s in [1.0, 6.0, 10.0] {
        push(&mut j, s, r#""k":"a""#);
    }
    assert_eq!(
        finish(&mut j),
        vec![
            format!(r#"{{"k":"a","id":"five","n":1,"w":"{}"}}"#, ts(5.0)),
            format!(r#"{{"k":"a","id":"five","n":2,"w":"{}"}}"#, ts(10.0)),
            format!(r#"{{"k":"a","id":"ten","n":3,"w":"{}"}}"#, ts(10.0)),
        ]
    );
}

#[test]
fn policy_counters_are_kept_per_input() {
    let q = "SELECT a.t INTO o1 FROM a TIMESTAMP BY t
             SELECT b.t INTO o2 FROM b TIMESTAMP BY t";
    let mut j = job(q);
    let event = |secs: f64| format!(r#"{{"t":"{}"}}"#, ts(secs));
    // Input a: one late event (arrives 20 s after its time); input b: one early event and
    // one that does not convert.
    j.push_json(0, 0, 0, Arrival::At(at(21.0)), event(1.0).as_bytes())
        .unwrap();
    j.push_json(1, 0, 0, Arrival::At(at(1.0)), event(400.0).as_bytes())
        .unwrap();
    assert!(
        j.push_json(1, 0, 1, Arrival::At(at(2.0)), br#"{"t":"soon"}"#)
            .is_err()
    );
    let m = j.metrics();
    let (a, b) = (&m.inputs[0], &m.inputs[1]);
    assert_eq!((a.name.as_str(), b.name.as_str()), ("a", "b"));
    assert_eq!(
        (a.input_events, a.late_events, a.adjusted_events),
        (1, 1, 1)
    );
    assert_eq!((a.early_events, a.conversion_errors), (0, 0));
    assert_eq!(
        (b.input_events, b.early_events, b.dropped_events),
        (2, 1, 1)
    );
    assert_eq!((b.late_events, b.conversion_errors), (0, 1));
    assert_eq!((m.late_events, m.early_events, m.errors), (1, 1, 1));
    assert!(m.has_policy_events());
}

#[test]
fn metadata_reads_partition_offset_and_arrival() {
    let q = "SELECT PartitionId AS p, GetMetadataPropertyValue(s, 'Offset') AS o,
                    GetMetadataPropertyValue(s, '[EventHub].[EventEnqueuedUtcTime]') AS e
             FROM s TIMESTAMP BY t";
    let mut j = job(q);
    j.declare_partitions(0, 3);
    let json = format!(r#"{{"t":"{}"}}"#, ts(1.0));
    j.push_json(0, 2, 17, Arrival::At(at(3.0)), json.as_bytes())
        .unwrap();
    assert_eq!(
        finish(&mut j),
        vec![format!(r#"{{"p":2,"o":17,"e":"{}"}}"#, ts(3.0))]
    );
}

#[test]
fn windowless_aggregates_follow_expiry() {
    let q = "SELECT MIN(v) OVER (LIMIT DURATION(second, 2)) AS lo,
                    MAX(v) OVER (LIMIT DURATION(second, 2)) AS hi,
                    SUM(v) OVER (LIMIT DURATION(second, 2)) AS s
             FROM s TIMESTAMP BY t";
    let mut j = job(q);
    for (i, v) in [5, 1, 4, 2, 3, 0].into_iter().enumerate() {
        push(&mut j, (i + 1) as f64, &format!(r#""v":{v}"#));
    }
    let rows: Vec<String> = [
        (5, 5, 5),
        (1, 5, 6),
        (1, 5, 10),
        (1, 4, 7),
        (2, 4, 9),
        (0, 3, 5),
    ]
    .iter()
    .map(|(lo, hi, s)| format!(r#"{{"lo":{lo},"hi":{hi},"s":{s}}}"#))
    .collect();
    assert_eq!(finish(&mut j), rows);
}

#[test]
fn snapshot_of_a_rolling_window_that_saw_no_event_restores() {
    for window in ["SlidingWindow(second, 5)", "HoppingWindow(second, 10, 5)"] {
        let q = format!(
            "SELECT COUNT(*) AS n, SUM(v) AS s INTO out FROM s TIMESTAMP BY t GROUP BY {window}"
        );
        let snap = job(&q).snapshot().unwrap();
        let mut j = job(&q);
        j.restore(&snap).unwrap();
        push(&mut j, 1.0, r#""v":2"#);
        assert!(!finish(&mut j).is_empty(), "{window}");
    }
}

#[test]
fn columns_follow_each_event_shape() {
    // Columns read fields at positions resolved per record shape: a change of field
    // order, case, presence or a duplicate name must read what a name lookup would.
    let mut j = job("SELECT a, B, s.c.d AS d INTO out FROM s TIMESTAMP BY t");
    push(&mut j, 1.0, r#""a":1,"b":2,"c":{"d":3}"#);
    push(&mut j, 2.0, r#""b":20,"a":10"#);
    push(&mut j, 3.0, r#""A":100,"x":0,"B":200,"C":{"D":300}"#);
    push(&mut j, 4.0, r#""a":1000,"a":2000,"b":3000"#);
    push(&mut j, 5.0, r#""a":1,"b":2,"c":{"d":3}"#);
    assert_eq!(
        finish(&mut j),
        vec![
            r#"{"a":1,"B":2,"d":3}"#,
            r#"{"a":10,"B":20,"d":null}"#,
            r#"{"a":100,"B":200,"d":300}"#,
            r#"{"a":1000,"B":3000,"d":null}"#,
            r#"{"a":1,"B":2,"d":3}"#,
        ]
    );
}

//! Joins through SQL text: stream–stream bounds and their state, three-way joins, the
//! missing-event pattern, reference data and its replacement, snapshots of join state.

use eddy_engine::time::{TICKS_PER_SECOND, parse_datetime};
use eddy_engine::{Arrival, EngineError, Job, JobOptions, Value};

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

fn job_with_references(query: &str, references: &[&str]) -> Job {
    let options = JobOptions {
        reference_inputs: references.iter().map(|r| r.to_string()).collect(),
        ..JobOptions::default()
    };
    Job::compile(query, options).unwrap_or_else(|e| panic!("{e}"))
}

/// Pushes `{"t": <secs>, fields...}` into `input`, arriving at its event time.
fn push_to(job: &mut Job, input: &str, secs: f64, fields: &str) {
    let i = job.input_index(input).unwrap();
    let json = format!(r#"{{"t":"{}",{fields}}}"#, ts(secs));
    job.push_json(i, 0, 0, Arrival::At(at(secs)), json.as_bytes())
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

fn set_reference(job: &mut Job, name: &str, rows: &[&str]) {
    let i = job.reference_index(name).unwrap();
    job.set_reference_json(i, rows.iter().map(|r| r.as_bytes()))
        .unwrap();
}

const ORDERS_PAYMENTS: &str = "SELECT o.id, p.amount FROM orders o TIMESTAMP BY t \
     JOIN payments p TIMESTAMP BY t ON o.id = p.id AND DATEDIFF(second, o, p) BETWEEN 0 AND 10";

#[test]
fn join_state_is_evicted_once_the_bound_has_passed() {
    let mut j = job(ORDERS_PAYMENTS);
    for i in 0..5 {
        push_to(&mut j, "orders", f64::from(i), &format!(r#""id":{i}"#));
        push_to(&mut j, "payments", f64::from(i), r#""id":99,"amount":1"#);
    }
    drain(&mut j);
    // Watermark 4: every order may still be paid; a payment only waits for orders at or
    // before it (lower bound 0), so the ones before 4 s are gone.
    assert_eq!(j.metrics().join_buffered_rows, 5 + 1);
    // Watermark 12: orders at 0 and 1 s are past their 10 s bound.
    push_to(&mut j, "orders", 12.0, r#""id":100"#);
    push_to(&mut j, "payments", 12.0, r#""id":100,"amount":5"#);
    assert_eq!(drain(&mut j), vec![r#"{"id":100,"amount":5}"#]);
    assert_eq!(j.metrics().join_buffered_rows, 4 + 1);
    push_to(&mut j, "orders", 40.0, r#""id":101"#);
    push_to(&mut j, "payments", 40.0, r#""id":102,"amount":5"#);
    drain(&mut j);
    assert_eq!(
        j.metrics().join_buffered_rows,
        2,
        "only the events at 40 s remain"
    );
}

#[test]
fn a_join_bound_is_elapsed_time_not_crossed_boundaries() {
    let q = "SELECT a.id, b.id AS bid FROM auctions a TIMESTAMP BY t JOIN bids b TIMESTAMP BY t \
             ON a.id = b.auction AND DATEDIFF(second, a, b) BETWEEN 0 AND 10";
    let mut j = job(q);
    push_to(&mut j, "bids", 0.001, r#""id":1,"auction":7"#);
    push_to(&mut j, "auctions", 1.0, r#""id":7"#);
    // Exactly at both ends of the bound, and 1 ms past the upper end.
    push_to(&mut j, "bids", 1.0, r#""id":2,"auction":7"#);
    push_to(&mut j, "bids", 11.0, r#""id":3,"auction":7"#);
    push_to(&mut j, "bids", 11.001, r#""id":4,"auction":7"#);
    assert_eq!(
        finish(&mut j),
        vec![r#"{"id":7,"bid":2}"#, r#"{"id":7,"bid":3}"#]
    );
}

#[test]
fn one_sided_datediff_comparisons_combine_into_a_bound() {
    let q = "SELECT o.id, p.amount FROM orders o TIMESTAMP BY t JOIN payments p TIMESTAMP BY t \
             ON o.id = p.id AND DATEDIFF(second, o, p) >= 0 AND 5 > DATEDIFF(second, o, p)";
    let mut j = job(q);
    push_to(&mut j, "orders", 0.0, r#""id":1"#);
    push_to(&mut j, "orders", 1.0, r#""id":2"#);
    push_to(&mut j, "payments", 5.0, r#""id":1,"amount":10"#);
    push_to(&mut j, "payments", 5.5, r#""id":2,"amount":20"#);
    assert_eq!(finish(&mut j), vec![r#"{"id":2,"amount":20}"#]);

    let only_upper = "SELECT o.id FROM orders o TIMESTAMP BY t JOIN payments p TIMESTAMP BY t \
                      ON o.id = p.id AND DATEDIFF(second, o, p) <= 5";
    match Job::compile(only_upper, JobOptions::default()) {
        Err(EngineError::Unsupported { message, .. }) => {
            assert!(message.contains("both ends"), "{message}")
        }
        other => panic!("expected a rejection, got {:?}", other.err()),
    }
}

#[test]
fn three_way_join_with_a_bound_per_join() {
    let q = "SELECT a.k, b.t AS bt, c.t AS ct, System.Timestamp() AS at \
             FROM A a TIMESTAMP BY t \
             JOIN B b TIMESTAMP BY t ON a.k = b.k AND DATEDIFF(second, a, b) BETWEEN 0 AND 10 \
             LEFT OUTER JOIN C c TIMESTAMP BY t ON b.k = c.k AND DATEDIFF(second, b, c) BETWEEN 0 AND 5";
    let mut j = job(q);
    push_to(&mut j, "A", 0.0, r#""k":1"#);
    push_to(&mut j, "A", 1.0, r#""k":2"#);
    push_to(&mut j, "C", 8.0, r#""k":1"#);
    push_to(&mut j, "B", 10.0, r#""k":1"#);
    push_to(&mut j, "B", 12.0, r#""k":2"#);
    push_to(&mut j, "C", 15.0, r#""k":1"#);
    push_to(&mut j, "A", 20.0, r#""k":3"#);
    push_to(&mut j, "B", 21.0, r#""k":3"#);
    push_to(&mut j, "C", 40.0, r#""k":7"#);
    push_to(&mut j, "B", 40.0, r#""k":8"#);
    push_to(&mut j, "A", 40.0, r#""k":9"#);
    assert_eq!(
        drain(&mut j),
        vec![
            // c at 8 s is before b: outside the second bound.
            format!(
                r#"{{"k":1,"bt":"{}","ct":"{}","at":"{}"}}"#,
                ts(10.0),
                ts(15.0),
                ts(15.0)
            ),
            // No C for k 3: emitted with NULLs when b + 5 s has passed (k 2 never met B).
            format!(
                r#"{{"k":3,"bt":"{}","ct":null,"at":"{}"}}"#,
                ts(21.0),
                ts(26.0)
            ),
        ]
    );
}

#[test]
fn missing_event_is_emitted_when_its_bound_passes() {
    let q = "SELECT e.plate, System.Timestamp() AS at FROM entry e TIMESTAMP BY t \
             LEFT OUTER JOIN exit x TIMESTAMP BY t \
             ON e.plate = x.plate AND DATEDIFF(minute, e, x) BETWEEN 0 AND 15 \
             WHERE x.plate IS NULL";
    let mut j = job(q);
    push_to(&mut j, "entry", 0.0, r#""plate":"A""#);
    push_to(&mut j, "entry", 60.0, r#""plate":"B""#);
    push_to(&mut j, "exit", 300.0, r#""plate":"A""#);
    push_to(&mut j, "entry", 959.0, r#""plate":"C""#);
    push_to(&mut j, "exit", 959.0, r#""plate":"C""#);
    assert!(drain(&mut j).is_empty(), "B may exit until 00:16");
    push_to(&mut j, "entry", 961.0, r#""plate":"D""#);
    push_to(&mut j, "exit", 961.0, r#""plate":"D""#);
    assert_eq!(
        drain(&mut j),
        vec![format!(r#"{{"plate":"B","at":"{}"}}"#, ts(960.0))]
    );
}

#[test]
fn join_state_survives_snapshot_and_restore() {
    let q = "SELECT o.id, p.amount FROM orders o TIMESTAMP BY t LEFT OUTER JOIN payments p TIMESTAMP BY t \
             ON o.id = p.id AND DATEDIFF(second, o, p) BETWEEN 0 AND 10";
    let mut j = job(q);
    push_to(&mut j, "orders", 1.0, r#""id":1"#);
    push_to(&mut j, "orders", 2.0, r#""id":2"#);
    push_to(&mut j, "payments", 3.0, r#""id":9,"amount":1"#);
    assert!(drain(&mut j).is_empty());
    let snap = j.snapshot().unwrap();
    let mut again = job(q);
    again.restore(&snap).unwrap();
    // The payment at 3 s still waits for the watermark, in the job's own buffer.
    assert_eq!(again.metrics().join_buffered_rows, 2);
    for j in [&mut j, &mut again] {
        push_to(j, "payments", 5.0, r#""id":1,"amount":10"#);
        push_to(j, "orders", 30.0, r#""id":3"#);
        push_to(j, "payments", 30.0, r#""id":4,"amount":1"#);
    }
    let expected = vec![r#"{"id":1,"amount":10}"#, r#"{"id":2,"amount":null}"#];
    assert_eq!(drain(&mut j), expected);
    assert_eq!(drain(&mut again), expected);
}

#[test]
fn join_snapshot_keeps_its_format() {
    // Buffered rows are written as before (expiry instants, and each row's key by seq), so
    // snapshots taken by earlier versions restore and later ones read the same.
    let q = "SELECT o.id, p.amount FROM orders o TIMESTAMP BY t JOIN payments p TIMESTAMP BY t \
             ON o.id = p.id AND DATEDIFF(second, o, p) BETWEEN 0 AND 10";
    let mut j = job(q);
    push_to(&mut j, "orders", 1.0, r#""id":1"#);
    push_to(&mut j, "payments", 2.0, r#""id":9,"amount":1"#);
    assert!(drain(&mut j).is_empty());
    let snap: serde_json::Value = serde_json::from_slice(&j.snapshot().unwrap()).unwrap();
    let side = &snap["groups"][0]["join"][0]["sides"][0];
    assert_eq!(side["expiry"].as_array().map(Vec::len), Some(1));
    let seq = side["expiry"][0][1].as_u64().unwrap().to_string();
    assert_eq!(
        side["keys"][seq.as_str()],
        serde_json::json!([{"BigInt": 1}])
    );
    assert!(side["by_key"].is_array());
}

const ENRICH: &str = "SELECT e.site, e.v, s.name FROM events e TIMESTAMP BY t \
     JOIN Sites s ON e.site = s.id AND e.v >= s.min";

#[test]
fn reference_join_looks_up_keys_and_checks_the_rest_of_on() {
    let mut j = job_with_references(ENRICH, &["Sites"]);
    assert_eq!(j.inputs(), ["events"]);
    assert_eq!(j.references(), ["Sites"]);
    set_reference(
        &mut j,
        "sites",
        &[
            r#"{"id":1,"name":"north","min":0}"#,
            r#"{"id":2,"name":"south","min":10}"#,
            r#"{"id":2,"name":"south-high","min":5}"#,
        ],
    );
    push_to(&mut j, "events", 1.0, r#""site":1,"v":3"#);
    push_to(&mut j, "events", 2.0, r#""site":2,"v":7"#);
    push_to(&mut j, "events", 3.0, r#""site":3,"v":7"#);
    push_to(&mut j, "events", 4.0, r#""site":2.0,"v":12"#);
    assert_eq!(
        finish(&mut j),
        vec![
            r#"{"site":1,"v":3,"name":"north"}"#,
            r#"{"site":2,"v":7,"name":"south-high"}"#,
            r#"{"site":2.0,"v":12,"name":"south"}"#,
            r#"{"site":2.0,"v":12,"name":"south-high"}"#,
        ]
    );
    assert_eq!(
        j.metrics().join_buffered_rows,
        0,
        "reference joins buffer nothing"
    );
}

#[test]
fn replaced_reference_data_applies_to_later_events_only() {
    let q = "SELECT e.site, s.name, System.Timestamp() AS at FROM events e TIMESTAMP BY t \
             LEFT OUTER JOIN Sites s ON e.site = s.id";
    let mut j = job_with_references(q, &["Sites"]);
    set_reference(&mut j, "Sites", &[r#"{"id":1,"name":"old"}"#]);
    push_to(&mut j, "events", 1.0, r#""site":1"#);
    push_to(&mut j, "events", 2.0, r#""site":2"#);
    set_reference(
        &mut j,
        "Sites",
        &[r#"{"id":1,"name":"new"}"#, r#"{"id":2,"name":"added"}"#],
    );
    push_to(&mut j, "events", 3.0, r#""site":1"#);
    push_to(&mut j, "events", 4.0, r#""site":2"#);
    assert_eq!(
        finish(&mut j),
        vec![
            format!(r#"{{"site":1,"name":"old","at":"{}"}}"#, ts(1.0)),
            format!(r#"{{"site":2,"name":null,"at":"{}"}}"#, ts(2.0)),
            format!(r#"{{"site":1,"name":"new","at":"{}"}}"#, ts(3.0)),
            format!(r#"{{"site":2,"name":"added","at":"{}"}}"#, ts(4.0)),
        ]
    );
}

#[test]
fn stream_join_with_several_references_in_a_step() {
    let q = "WITH enriched AS (
               SELECT e.site, e.kind, s.name, k.label FROM events e TIMESTAMP BY t
               JOIN Sites s ON e.site = s.id
               LEFT OUTER JOIN Kinds k ON k.code = e.kind
             )
             SELECT name, label, COUNT(*) AS n INTO out FROM enriched
             GROUP BY name, label, TumblingWindow(second, 10)";
    let mut j = job_with_references(q, &["Sites", "Kinds"]);
    set_reference(&mut j, "Sites", &[r#"{"id":1,"name":"north"}"#]);
    set_reference(&mut j, "Kinds", &[r#"{"code":"a","label":"alpha"}"#]);
    push_to(&mut j, "events", 1.0, r#""site":1,"kind":"a""#);
    push_to(&mut j, "events", 2.0, r#""site":1,"kind":"a""#);
    push_to(&mut j, "events", 3.0, r#""site":1,"kind":"b""#);
    push_to(&mut j, "events", 4.0, r#""site":5,"kind":"a""#);
    assert_eq!(
        finish(&mut j),
        vec![
            r#"{"name":"north","label":null,"n":1}"#,
            r#"{"name":"north","label":"alpha","n":2}"#,
        ]
    );
}

#[test]
fn reference_rows_must_be_records() {
    let mut j = job_with_references(ENRICH, &["Sites"]);
    let err = j.set_reference(0, vec![Value::BigInt(1)]).unwrap_err();
    assert!(err.to_string().contains("must be a record"), "{err}");
}

#[test]
fn a_bound_written_right_to_left_keeps_the_same_meaning() {
    let q = "SELECT o.id, p.amount FROM orders o TIMESTAMP BY t JOIN payments p TIMESTAMP BY t \
             ON p.id = o.id AND DATEDIFF(second, p, o) BETWEEN -10 AND 0";
    let mut j = job(q);
    push_to(&mut j, "orders", 1.0, r#""id":1"#);
    push_to(&mut j, "orders", 2.0, r#""id":2"#);
    push_to(&mut j, "payments", 1.5, r#""id":2,"amount":20"#);
    push_to(&mut j, "payments", 11.0, r#""id":1,"amount":10"#);
    push_to(&mut j, "payments", 12.5, r#""id":2,"amount":21"#);
    assert_eq!(finish(&mut j), vec![r#"{"id":1,"amount":10}"#]);
}

#[test]
fn self_join_of_one_input_under_two_aliases() {
    let q = "SELECT r1.v AS first, r2.v AS second FROM readings r1 TIMESTAMP BY t \
             JOIN readings r2 TIMESTAMP BY t \
             ON r1.dev = r2.dev AND DATEDIFF(second, r1, r2) BETWEEN 1 AND 5 AND r2.v > r1.v";
    let mut j = job(q);
    for (s, v) in [(0.0, 1), (2.0, 3), (3.0, 2), (9.0, 9)] {
        push_to(&mut j, "readings", s, &format!(r#""dev":"a","v":{v}"#));
    }
    assert_eq!(
        finish(&mut j),
        vec![r#"{"first":1,"second":3}"#, r#"{"first":1,"second":2}"#,]
    );
}

#[test]
fn join_bounds_are_checked_when_compiled() {
    let refused = |q: &str, references: &[&str]| {
        let options = JobOptions {
            reference_inputs: references.iter().map(|r| r.to_string()).collect(),
            ..JobOptions::default()
        };
        match Job::compile(q, options) {
            Err(EngineError::Unsupported { message, .. }) => message,
            other => panic!("{q}: expected a rejection, got {:?}", other.err()),
        }
    };
    let long = refused(
        "SELECT a.k FROM a TIMESTAMP BY t JOIN b TIMESTAMP BY t ON DATEDIFF(day, a, b) BETWEEN 0 AND 8",
        &[],
    );
    assert!(long.contains("7 days"), "{long}");
    let on_reference = refused(
        "SELECT a.k FROM a TIMESTAMP BY t JOIN r ON a.k = r.k AND DATEDIFF(second, a, r) BETWEEN 0 AND 8",
        &["r"],
    );
    assert!(on_reference.contains("reference data"), "{on_reference}");
}

#[test]
fn an_on_condition_with_a_case_expression_compiles_and_filters() {
    let q = "SELECT e.site, s.name FROM events e TIMESTAMP BY t JOIN Sites s \
             ON e.site = s.id AND s.kind = CASE WHEN e.v > 5 THEN 'big' ELSE 'small' END";
    let mut j = job_with_references(q, &["Sites"]);
    set_reference(
        &mut j,
        "Sites",
        &[
            r#"{"id":1,"name":"b","kind":"big"}"#,
            r#"{"id":1,"name":"s","kind":"small"}"#,
        ],
    );
    push_to(&mut j, "events", 1.0, r#""site":1,"v":9"#);
    push_to(&mut j, "events", 2.0, r#""site":1,"v":1"#);
    assert_eq!(
        finish(&mut j),
        vec![r#"{"site":1,"name":"b"}"#, r#"{"site":1,"name":"s"}"#]
    );
}

#[test]
fn an_unmatched_left_outer_row_still_meets_a_later_join() {
    let q = "SELECT a.k, b.t AS bt, c.t AS ct, System.Timestamp() AS at FROM A a TIMESTAMP BY t \
             LEFT OUTER JOIN B b TIMESTAMP BY t ON a.k = b.k AND DATEDIFF(second, a, b) BETWEEN 0 AND 5 \
             JOIN C c TIMESTAMP BY t ON c.k = a.k AND DATEDIFF(second, a, c) BETWEEN 0 AND 20";
    let mut j = job(q);
    push_to(&mut j, "A", 0.0, r#""k":1"#);
    push_to(&mut j, "C", 3.0, r#""k":1"#);
    push_to(&mut j, "B", 7.0, r#""k":1"#);
    push_to(&mut j, "C", 18.0, r#""k":1"#);
    push_to(&mut j, "C", 21.0, r#""k":1"#);
    assert_eq!(
        finish(&mut j),
        vec![
            // (a, no b) is known at 5 s; c at 3 s is still held for it.
            format!(
                r#"{{"k":1,"bt":null,"ct":"{}","at":"{}"}}"#,
                ts(3.0),
                ts(5.0)
            ),
            format!(
                r#"{{"k":1,"bt":null,"ct":"{}","at":"{}"}}"#,
                ts(18.0),
                ts(18.0)
            ),
        ]
    );
}

fn refused(q: &str, references: &[&str]) -> (String, usize, usize) {
    let options = JobOptions {
        reference_inputs: references.iter().map(|r| r.to_string()).collect(),
        ..JobOptions::default()
    };
    match Job::compile(q, options) {
        Err(EngineError::Unsupported {
            message,
            line,
            column,
            ..
        }) => (message, line, column),
        other => panic!("{q}: expected a rejection, got {:?}", other.err()),
    }
}

#[test]
fn analytic_functions_see_each_left_event_once_before_a_stream_join() {
    // Order 1 has two payments, order 2 none (LEFT OUTER: emitted once its bound has
    // passed), order 3 one. (An event at 0 s would close the
    // interval ending there, so the first comes at 1 s.) LAG, ISFIRST and COUNT(*) run on the orders themselves, so
    // both rows of order 1 agree and order 3 sees order 2.
    let q = "SELECT o.id, p.amount, LAG(o.id) OVER (LIMIT DURATION(minute, 5)) AS prev, \
                    ISFIRST(minute, 1) OVER () AS first, \
                    COUNT(*) OVER (LIMIT DURATION(minute, 5)) AS n \
             FROM orders o TIMESTAMP BY t LEFT OUTER JOIN payments p TIMESTAMP BY t \
             ON o.id = p.id AND DATEDIFF(second, o, p) BETWEEN 0 AND 10";
    let mut j = job(q);
    push_to(&mut j, "orders", 1.0, r#""id":1"#);
    push_to(&mut j, "payments", 2.0, r#""id":1,"amount":10"#);
    push_to(&mut j, "payments", 3.0, r#""id":1,"amount":20"#);
    push_to(&mut j, "orders", 4.0, r#""id":2"#);
    push_to(&mut j, "orders", 5.0, r#""id":3"#);
    push_to(&mut j, "payments", 6.0, r#""id":3,"amount":30"#);
    assert_eq!(
        finish(&mut j),
        vec![
            r#"{"id":1,"amount":10,"prev":null,"first":1,"n":1}"#,
            r#"{"id":1,"amount":20,"prev":null,"first":1,"n":1}"#,
            r#"{"id":3,"amount":30,"prev":2,"first":0,"n":3}"#,
            r#"{"id":2,"amount":null,"prev":1,"first":0,"n":2}"#,
        ]
    );
}

#[test]
fn analytic_functions_on_the_right_stream_travel_with_its_buffered_events() {
    // LAG over the payments: each payment's previous payment, whether or not that one
    // matched an order; the values survive a snapshot while the payment is buffered.
    let q = "SELECT o.id, p.amount, \
                    LAG(p.amount) OVER (LIMIT DURATION(minute, 5)) AS prev_amount, \
                    LAG(amount) OVER (PARTITION BY p.id LIMIT DURATION(minute, 5) WHEN amount > 5) AS prev_big \
             FROM orders o TIMESTAMP BY t JOIN payments p TIMESTAMP BY t \
             ON o.id = p.id AND DATEDIFF(second, o, p) BETWEEN -10 AND 10";
    let mut j = job(q);
    push_to(&mut j, "payments", 0.0, r#""id":1,"amount":7"#);
    push_to(&mut j, "payments", 1.0, r#""id":9,"amount":1"#);
    push_to(&mut j, "payments", 2.0, r#""id":1,"amount":3"#);
    push_to(&mut j, "payments", 3.0, r#""id":2,"amount":4"#);
    assert!(drain(&mut j).is_empty());
    let snap = j.snapshot().unwrap();
    let mut again = job(q);
    again.restore(&snap).unwrap();
    let expected = vec![
        r#"{"id":1,"amount":7,"prev_amount":null,"prev_big":null}"#,
        r#"{"id":1,"amount":3,"prev_amount":1,"prev_big":7}"#,
        r#"{"id":2,"amount":4,"prev_amount":3,"prev_big":null}"#,
    ];
    for j in [&mut j, &mut again] {
        push_to(j, "orders", 4.0, r#""id":1"#);
        push_to(j, "orders", 5.0, r#""id":2"#);
        assert_eq!(finish(j), expected);
    }
}

#[test]
fn analytic_functions_run_before_a_reference_join() {
    let q = "SELECT s.k, r.name, LAG(s.v) OVER (LIMIT DURATION(minute, 5)) AS prev, \
                    ISFIRST(minute, 1) OVER (PARTITION BY k) AS first \
             FROM s TIMESTAMP BY t JOIN refs r ON s.k = r.k";
    let mut j = job_with_references(q, &["refs"]);
    set_reference(
        &mut j,
        "refs",
        &[r#"{"k":1,"name":"a"}"#, r#"{"k":1,"name":"b"}"#],
    );
    push_to(&mut j, "s", 1.0, r#""k":1,"v":10"#);
    push_to(&mut j, "s", 2.0, r#""k":2,"v":20"#);
    push_to(&mut j, "s", 3.0, r#""k":1,"v":30"#);
    assert_eq!(
        finish(&mut j),
        vec![
            r#"{"k":1,"name":"a","prev":null,"first":1}"#,
            r#"{"k":1,"name":"b","prev":null,"first":1}"#,
            r#"{"k":1,"name":"a","prev":20,"first":0}"#,
            r#"{"k":1,"name":"b","prev":20,"first":0}"#,
        ]
    );
}

#[test]
fn analytic_functions_in_where_and_lag_star_see_input_events_in_a_join() {
    // WHERE keeps the rows whose order is not the first; LAG(*) is the previous order.
    let q = "SELECT o.id, p.amount, LAG(*) OVER (LIMIT DURATION(minute, 5)) AS prev \
             FROM orders o TIMESTAMP BY t JOIN payments p TIMESTAMP BY t \
             ON o.id = p.id AND DATEDIFF(second, o, p) BETWEEN 0 AND 10 \
             WHERE ISFIRST(minute, 1) OVER () = 0";
    let mut j = job(q);
    push_to(&mut j, "orders", 1.0, r#""id":1"#);
    push_to(&mut j, "orders", 2.0, r#""id":2"#);
    push_to(&mut j, "payments", 3.0, r#""id":1,"amount":10"#);
    push_to(&mut j, "payments", 4.0, r#""id":2,"amount":20"#);
    let prev = format!(r#"{{"t":"{}","id":1}}"#, ts(1.0));
    assert_eq!(
        finish(&mut j),
        vec![format!(r#"{{"id":2,"amount":20,"prev":{prev}}}"#)]
    );
}

#[test]
fn analytic_functions_reading_two_join_sources_or_reference_data_are_refused() {
    let (message, line, column) = refused(
        "SELECT o.id,\n  LAG(o.id + p.id) OVER (LIMIT DURATION(minute, 5)) AS x \
         FROM orders o TIMESTAMP BY t JOIN payments p TIMESTAMP BY t \
         ON o.id = p.id AND DATEDIFF(second, o, p) BETWEEN 0 AND 10",
        &[],
    );
    assert!(
        message.contains("more than one join source (o, p)"),
        "{message}"
    );
    assert_eq!((line, column), (2, 3));
    let (message, ..) = refused(
        "SELECT s.k, LAST(r.name) OVER (LIMIT DURATION(minute, 5)) AS x \
         FROM s TIMESTAMP BY t JOIN r ON s.k = r.k",
        &["r"],
    );
    assert!(message.contains("reference data"), "{message}");
}

#[test]
fn every_row_an_apply_expands_sees_the_same_analytic_values() {
    let q = "SELECT s.id, e.ArrayValue AS x, LAG(s.id) OVER (LIMIT DURATION(minute, 5)) AS prev, \
                    SUM(s.id) OVER (LIMIT DURATION(minute, 5)) AS total \
             FROM s TIMESTAMP BY t CROSS APPLY GetArrayElements(s.arr) AS e";
    let mut j = job(q);
    push_to(&mut j, "s", 0.0, r#""id":1,"arr":[1,2]"#);
    push_to(&mut j, "s", 1.0, r#""id":2,"arr":[]"#);
    push_to(&mut j, "s", 2.0, r#""id":3,"arr":[3,4]"#);
    assert_eq!(
        finish(&mut j),
        vec![
            r#"{"id":1,"x":1,"prev":null,"total":1}"#,
            r#"{"id":1,"x":2,"prev":null,"total":1}"#,
            r#"{"id":3,"x":3,"prev":2,"total":6}"#,
            r#"{"id":3,"x":4,"prev":2,"total":6}"#,
        ]
    );
    let (message, ..) = refused(
        "SELECT LAG(e.ArrayValue) OVER (LIMIT DURATION(minute, 5)) AS x \
         FROM s CROSS APPLY GetArrayElements(s.arr) AS e",
        &[],
    );
    assert!(message.contains("APPLY alias 'e'"), "{message}");
}

/// Rows (in order) and the error count of `q` over a mix of orders and payments whose
/// WHERE conjuncts come out true, false, NULL and in error.
fn where_run(q: &str) -> (Vec<String>, u64) {
    let mut j = job(q);
    let events: [(&str, f64, &str); 12] = [
        ("orders", 1.0, r#""id":1,"kind":"a""#),
        ("orders", 1.5, r#""id":2,"kind":"b""#),
        ("payments", 2.0, r#""id":1,"amount":10"#),
        ("payments", 2.5, r#""id":2,"amount":20"#),
        ("orders", 3.0, r#""id":3"#),
        ("orders", 3.5, r#""id":4,"kind":5"#),
        ("payments", 4.0, r#""id":3,"amount":"x""#),
        ("payments", 4.5, r#""id":4,"amount":40"#),
        ("payments", 5.0, r#""id":1,"amount":5"#),
        ("orders", 6.0, r#""id":5,"kind":"a""#),
        ("payments", 6.5, r#""id":5"#),
        ("orders", 30.0, r#""id":9,"kind":"a""#),
    ];
    for (input, secs, fields) in events {
        push_to(&mut j, input, secs, fields);
    }
    let rows = finish(&mut j);
    (rows, j.metrics().errors)
}

#[test]
fn where_conjuncts_checked_before_the_join_give_the_same_rows_and_errors() {
    // The leading conjuncts on one side are checked on each event before it is buffered;
    // `1 = 1` first reads no side, so nothing is checked early there: both must agree on
    // every row and every error (a string kind compared with 5, a string amount).
    let joins = [
        "JOIN payments p TIMESTAMP BY t ON o.id = p.id AND DATEDIFF(second, o, p) BETWEEN 0 AND 10",
        "LEFT OUTER JOIN payments p TIMESTAMP BY t \
         ON o.id = p.id AND DATEDIFF(second, o, p) BETWEEN 0 AND 10",
        "JOIN payments p TIMESTAMP BY t ON p.id = o.id AND DATEDIFF(second, p, o) BETWEEN -10 AND 0",
    ];
    let filters = [
        "o.kind = 'a' AND (p.amount > 8 OR p.amount IS NULL)",
        "(o.kind = 'a' OR o.kind = 5) AND p.amount > 8",
        "p.amount > 8 AND o.kind IN ('a', 'b')",
        "o.kind <> 'b' AND o.id BETWEEN 1 AND 4 AND p.amount * 2 > 16",
        "CASE WHEN o.kind = 'a' THEN 1 ELSE 0 END = 1 AND p.amount < 30",
        "o.kind = 'a'",
    ];
    for join in joins {
        for filter in filters {
            let q = |w: &str| {
                format!(
                    "SELECT o.id, o.kind, p.amount, System.Timestamp() AS at \
                     FROM orders o TIMESTAMP BY t {join} WHERE {w}"
                )
            };
            let early = where_run(&q(filter));
            let late = where_run(&q(&format!("1 = 1 AND {filter}")));
            assert_eq!(early, late, "{join} WHERE {filter}");
        }
    }
    // An order the first conjunct rejects is not even buffered.
    for (w, held) in [("o.kind = 'a'", 0), ("1 = 1 AND o.kind = 'a'", 1)] {
        let mut j = job(&format!(
            "SELECT o.id FROM orders o TIMESTAMP BY t JOIN payments p TIMESTAMP BY t \
             ON o.id = p.id AND DATEDIFF(second, o, p) BETWEEN 0 AND 10 WHERE {w}"
        ));
        push_to(&mut j, "orders", 1.0, r#""id":1,"kind":"b""#);
        push_to(&mut j, "payments", 1.0, r#""id":1"#);
        assert!(drain(&mut j).is_empty());
        assert_eq!(j.metrics().join_buffered_rows, held + 1, "{w}");
    }
    // And the rows themselves, for one of them.
    let (rows, errors) = where_run(
        "SELECT o.id, p.amount FROM orders o TIMESTAMP BY t JOIN payments p TIMESTAMP BY t \
         ON o.id = p.id AND DATEDIFF(second, o, p) BETWEEN 0 AND 10 \
         WHERE o.kind = 'a' AND p.amount > 8",
    );
    assert_eq!(rows, vec![r#"{"id":1,"amount":10}"#]);
    // Order 4 (kind 5) fails `o.kind = 'a'` (a bigint against a string) with its payment,
    // and order 3 (no kind: NULL, so on to the next) fails `p.amount > 8` with "x".
    assert_eq!(errors, 2);
}

#[test]
fn left_rows_with_analytic_values_survive_a_snapshot() {
    // Orders are buffered as they arrived (with their LAG values); a snapshot writes them
    // as before and a restored job pairs them alike.
    let q = "SELECT o.id, p.amount, LAG(o.id) OVER (LIMIT DURATION(minute, 5)) AS prev \
             FROM orders o TIMESTAMP BY t LEFT OUTER JOIN payments p TIMESTAMP BY t \
             ON o.id = p.id AND DATEDIFF(second, o, p) BETWEEN 0 AND 10";
    let mut j = job(q);
    push_to(&mut j, "orders", 1.0, r#""id":1"#);
    push_to(&mut j, "orders", 2.0, r#""id":2"#);
    push_to(&mut j, "payments", 2.5, r#""id":7"#);
    assert!(drain(&mut j).is_empty());
    let snap = j.snapshot().unwrap();
    let written: serde_json::Value = serde_json::from_slice(&snap).unwrap();
    let rows = &written["groups"][0]["join"][0]["sides"][0]["by_key"];
    assert!(
        rows.to_string().contains("\\u0001time:0"),
        "left rows are written as composites: {rows}"
    );
    let mut again = job(q);
    again.restore(&snap).unwrap();
    for j in [&mut j, &mut again] {
        push_to(j, "payments", 3.0, r#""id":2,"amount":20"#);
        push_to(j, "orders", 30.0, r#""id":3"#);
        push_to(j, "payments", 30.0, r#""id":8"#);
    }
    let expected = vec![
        r#"{"id":2,"amount":20,"prev":1}"#,
        r#"{"id":1,"amount":null,"prev":null}"#,
        r#"{"id":3,"amount":null,"prev":2}"#,
    ];
    assert_eq!(finish(&mut j), expected);
    assert_eq!(finish(&mut again), expected);
}

#[test]
fn a_join_decodes_the_fields_each_side_reads_and_all_for_alias_star() {
    // Payments' unread field `note` is not decoded; `o.*` keeps every field of the order,
    // and `kind`, unqualified, is looked up in each side.
    let q = "SELECT o.*, p.amount, kind FROM orders o TIMESTAMP BY t JOIN payments p TIMESTAMP BY t \
             ON o.id = p.id AND DATEDIFF(second, o, p) BETWEEN 0 AND 10";
    let mut j = job(q);
    push_to(&mut j, "orders", 1.0, r#""id":1,"extra":"x""#);
    push_to(
        &mut j,
        "payments",
        2.0,
        r#""id":1,"amount":5,"note":"n","kind":"k""#,
    );
    assert_eq!(
        finish(&mut j),
        vec![format!(
            r#"{{"t":"{}","id":1,"extra":"x","amount":5,"kind":"k"}}"#,
            ts(1.0)
        )]
    );
}

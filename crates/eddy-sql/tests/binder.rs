//! Binder tests: what the engine receives for valid jobs — steps, inputs, outputs and
//! windows in 100-ns ticks.

use eddy_sql::plan::{BoundScript, FunctionKind, TimeUnit, WindowSpec};
use eddy_sql::{compile, function_kind, time_unit};

const SECOND: i64 = 10_000_000;
const MINUTE: i64 = 60 * SECOND;

fn bound(text: &str) -> BoundScript {
    compile(text).unwrap_or_else(|d| panic!("{}", d.render(text)))
}

fn window(group_by: &str) -> WindowSpec {
    let b = bound(&format!("SELECT k, COUNT(*) FROM i GROUP BY k, {group_by}"));
    b.statements[0].windows[0].clone().expect("a window")
}

#[test]
fn every_time_unit_and_abbreviation() {
    let cases = [
        ("day", TimeUnit::Day),
        ("dd", TimeUnit::Day),
        ("d", TimeUnit::Day),
        ("hour", TimeUnit::Hour),
        ("hh", TimeUnit::Hour),
        ("minute", TimeUnit::Minute),
        ("mi", TimeUnit::Minute),
        ("n", TimeUnit::Minute),
        ("second", TimeUnit::Second),
        ("ss", TimeUnit::Second),
        ("s", TimeUnit::Second),
        ("millisecond", TimeUnit::Millisecond),
        ("ms", TimeUnit::Millisecond),
        ("microsecond", TimeUnit::Microsecond),
        ("mcs", TimeUnit::Microsecond),
        ("MINUTE", TimeUnit::Minute),
        ("Ss", TimeUnit::Second),
    ];
    for (name, unit) in cases {
        assert_eq!(time_unit(name), Some(unit), "{name}");
        assert_eq!(
            window(&format!("TumblingWindow({name}, 2)")),
            WindowSpec::Tumbling {
                size: 2 * unit.ticks(),
                offset: 0
            },
            "{name}"
        );
    }
    assert_eq!(time_unit("minutes"), None);
    assert_eq!(TimeUnit::Day.ticks(), 24 * 60 * MINUTE);
}

#[test]
fn tumbling_in_both_syntaxes() {
    let expected = WindowSpec::Tumbling {
        size: 5 * MINUTE,
        offset: 10 * SECOND,
    };
    assert_eq!(window("TumblingWindow(second, 300, 10)"), expected);
    assert_eq!(
        window("Tumbling(Duration(minute, 5), Offset(second, 10))"),
        expected
    );
    assert_eq!(
        window("TumblingWindow(Duration(minute, 5), Offset(millisecond, -1))"),
        WindowSpec::Tumbling {
            size: 5 * MINUTE,
            offset: -10_000
        }
    );
}

#[test]
fn hopping_in_both_syntaxes() {
    let expected = WindowSpec::Hopping {
        size: 10 * MINUTE,
        hop: 5 * MINUTE,
        offset: 0,
    };
    assert_eq!(window("HoppingWindow(minute, 10, 5)"), expected);
    assert_eq!(
        window("Hopping(Duration(minute, 10), Hop(second, 300))"),
        expected
    );
    assert_eq!(
        window("HoppingWindow(Duration(minute, 5), Hop(minute, 1), Offset(second, 10))"),
        WindowSpec::Hopping {
            size: 5 * MINUTE,
            hop: MINUTE,
            offset: 10 * SECOND
        }
    );
    assert_eq!(
        window("HoppingWindow(s, 10, 5, 2)"),
        WindowSpec::Hopping {
            size: 10 * SECOND,
            hop: 5 * SECOND,
            offset: 2 * SECOND
        }
    );
}

#[test]
fn sliding_session_snapshot_and_multiple() {
    assert_eq!(
        window("SlidingWindow(second, 5)"),
        WindowSpec::Sliding { size: 5 * SECOND }
    );
    assert_eq!(
        window("Sliding(Duration(second, 5))"),
        WindowSpec::Sliding { size: 5 * SECOND }
    );
    let WindowSpec::Session {
        timeout,
        max_duration,
        partition_by,
    } = window("SessionWindow(minute, 2, 10) OVER (PARTITION BY k)")
    else {
        panic!("not a session")
    };
    assert_eq!(
        (timeout, max_duration, partition_by.len()),
        (2 * MINUTE, 10 * MINUTE, 1)
    );
    assert_eq!(
        window("Session(Timeout(second, 30), MaxDuration(minute, 1))"),
        WindowSpec::Session {
            timeout: 30 * SECOND,
            max_duration: MINUTE,
            partition_by: vec![]
        }
    );
    assert_eq!(window("System.Timestamp()"), WindowSpec::Snapshot);
    assert_eq!(
        window("Windows(Window('a', TumblingWindow(s, 1)), Window('b', SlidingWindow(s, 2)))"),
        WindowSpec::Multiple(vec![
            (
                Some("a".into()),
                WindowSpec::Tumbling {
                    size: SECOND,
                    offset: 0
                }
            ),
            (Some("b".into()), WindowSpec::Sliding { size: 2 * SECOND }),
        ])
    );
    assert_eq!(
        window("Windows(TumblingWindow(s, 1), HoppingWindow(s, 2, 1))"),
        WindowSpec::Multiple(vec![
            (
                None,
                WindowSpec::Tumbling {
                    size: SECOND,
                    offset: 0
                }
            ),
            (
                None,
                WindowSpec::Hopping {
                    size: 2 * SECOND,
                    hop: SECOND,
                    offset: 0
                }
            ),
        ])
    );
    assert_eq!(
        window("TumblingWindow(day, 7)"),
        WindowSpec::Tumbling {
            size: 7 * 24 * 60 * MINUTE,
            offset: 0
        }
    );
}

#[test]
fn steps_inputs_and_outputs_in_order() {
    let b = bound(
        "WITH clean AS (SELECT * FROM Sensors WHERE v IS NOT NULL),
              hot AS (SELECT * FROM clean JOIN Zones ON DATEDIFF(second, clean, Zones) BETWEEN 0 AND 5)
         SELECT * INTO Alerts FROM hot;
         SELECT id, AVG(v) AS av INTO Averages FROM clean GROUP BY id, TumblingWindow(minute, 1)
         SELECT * FROM sensors",
    );
    let targets: Vec<(&str, bool)> = b
        .statements
        .iter()
        .map(|s| (s.target.as_str(), s.is_step))
        .collect();
    assert_eq!(
        targets,
        [
            ("clean", true),
            ("hot", true),
            ("Alerts", false),
            ("Averages", false),
            ("output", false)
        ]
    );
    assert_eq!(b.inputs, ["Sensors", "Zones"]);
    assert_eq!(b.input_spans.len(), 2);
    assert_eq!(b.outputs, ["Alerts", "Averages", "output"]);
    assert_eq!(
        b.statements[3].windows,
        [Some(WindowSpec::Tumbling {
            size: MINUTE,
            offset: 0
        })]
    );
    assert_eq!(b.statements[0].windows, [None]);
}

#[test]
fn union_branches_each_get_their_window() {
    let b = bound(
        "SELECT COUNT(*) AS n INTO o FROM a GROUP BY TumblingWindow(s, 1)
         UNION SELECT COUNT(*) AS n FROM b GROUP BY TumblingWindow(s, 2)
         UNION SELECT 0 AS n FROM c",
    );
    let sizes: Vec<Option<WindowSpec>> = b.statements[0].windows.clone();
    assert_eq!(
        sizes,
        [
            Some(WindowSpec::Tumbling {
                size: SECOND,
                offset: 0
            }),
            Some(WindowSpec::Tumbling {
                size: 2 * SECOND,
                offset: 0
            }),
            None
        ]
    );
    assert_eq!(b.outputs, ["o"]);
    assert_eq!(b.inputs, ["a", "b", "c"]);
}

#[test]
fn grouped_selects_accept_keys_aggregates_and_expressions_of_them() {
    bound(
        "SELECT t.dev, UPPER(zone) AS z, COUNT(DISTINCT user) AS users, SUM(v) / COUNT(*) AS mean,
                System.Timestamp() AS window_end, CASE WHEN MAX(v) > 10 THEN 'hot' ELSE 'ok' END AS state
         INTO out FROM input t TIMESTAMP BY ts
         GROUP BY dev, zone, HoppingWindow(minute, 10, 5)
         HAVING COUNT(*) > 2 AND t.dev <> 'x'",
    );
    bound(
        "SELECT DATEDIFF(minute, MIN(ts), MAX(ts)) AS span FROM i GROUP BY TumblingWindow(hh, 1)",
    );
    bound("SELECT k, COUNT(*) FROM i GROUP BY k, System.Timestamp()");
}

#[test]
fn analytic_and_running_aggregates_need_no_group_by() {
    bound(
        "SELECT id, LAG(v) OVER (PARTITION BY id LIMIT DURATION(minute, 5)) AS prev,
                SUM(v) OVER (PARTITION BY id LIMIT DURATION(hour, 1)) AS running,
                ISFIRST(mi, 10) OVER (PARTITION BY id) AS first
         FROM i WHERE LAG(v, 1) OVER (LIMIT DURATION(s, 10)) IS NULL",
    );
}

#[test]
fn create_table_and_applies_bind() {
    let b = bound(
        "CREATE TABLE input (id bigint, tags array);
         SELECT i.id, t.ArrayValue FROM input i CROSS APPLY GetArrayElements(i.tags) AS t",
    );
    assert_eq!(b.inputs, ["input"]);
    assert_eq!(b.statements.len(), 1);
}

#[test]
fn function_kinds() {
    assert_eq!(function_kind("count"), Some(FunctionKind::Aggregate));
    assert_eq!(function_kind("uda.median"), Some(FunctionKind::Aggregate));
    assert_eq!(function_kind("udf.f"), Some(FunctionKind::Scalar));
    assert_eq!(
        function_kind("system.timestamp"),
        Some(FunctionKind::Scalar)
    );
    assert_eq!(function_kind("LAG"), Some(FunctionKind::Analytic));
    assert_eq!(function_kind("hoppingwindow"), Some(FunctionKind::Window));
    assert_eq!(function_kind("Tumbling"), Some(FunctionKind::Window));
    assert_eq!(function_kind("nosuch"), None);
}

/// Queries in the shape of the ASA documentation's examples: all must compile.
#[test]
fn documentation_style_queries_compile() {
    let queries = [
        "SELECT TollId, System.Timestamp() AS WindowEnd, COUNT(*) AS Count INTO output
         FROM Input TIMESTAMP BY EntryTime GROUP BY TumblingWindow(minute, 3), TollId",
        "SELECT DateAdd(second, -5, System.Timestamp()) AS WinStartTime, Make, COUNT(*) Count
         FROM Input TIMESTAMP BY Time GROUP BY Make, TumblingWindow(second, 10) HAVING COUNT(*) >= 3",
        "SELECT I1.id, I2.status FROM Input1 I1 TIMESTAMP BY time
         JOIN Input2 I2 TIMESTAMP BY time ON DATEDIFF(minute, I1, I2) BETWEEN 0 AND 10 AND I1.id = I2.id",
        "SELECT * INTO output FROM Input WHERE Make LIKE 'A%' AND CAST(Weight AS bigint) > 1000",
        "SELECT Make, Time, LAG(Make, 1) OVER (LIMIT DURATION(minute, 1)) AS PreviousMake
         FROM Input TIMESTAMP BY Time WHERE LAG(Make, 1) OVER (LIMIT DURATION(minute, 1)) <> Make",
        "SELECT TopOne() OVER (ORDER BY Weight DESC) AS HeaviestVehicle
         FROM Input TIMESTAMP BY Time GROUP BY TumblingWindow(minute, 10)",
        "SELECT System.Timestamp() AS WindowEnd, TollId, COUNT(*) FROM Input TIMESTAMP BY EntryTime
         GROUP BY TollId, Windows(TumblingWindow(minute, 10), HoppingWindow(minute, 10, 5))",
        "SELECT [User], DATEDIFF(second, LAST(Time) OVER (PARTITION BY [User] LIMIT DURATION(hour, 1)
         WHEN Event = 'start'), Time) AS duration FROM input TIMESTAMP BY Time WHERE Event = 'end'",
        "SELECT Make, COUNT(DISTINCT License) AS Plates FROM Input TIMESTAMP BY Time OVER TollId
         PARTITION BY PartitionId GROUP BY Make, TollId, SlidingWindow(minute, 5)",
        "SELECT * FROM Input TIMESTAMP BY Time WHERE IsFirst(minute, 10) OVER (PARTITION BY Make) = 1",
        "WITH Temps AS (SELECT deviceId, TRY_CAST(temp AS float) AS t FROM Telemetry)
         SELECT deviceId, AVG(t) AS avgTemp, MAX(t) maxTemp INTO Alerts FROM Temps
         GROUP BY deviceId, HoppingWindow(Duration(minute, 5), Hop(minute, 1), Offset(second, 10))
         HAVING AVG(t) > 30",
        "SELECT e.ArrayValue.name AS name FROM Input i CROSS APPLY GetArrayElements(i.items) AS e",
        "SELECT userId, COUNT(*) AS clicks FROM Clicks GROUP BY userId, SessionWindow(minute, 5, 60) OVER (PARTITION BY userId)",
        "SELECT CASE WHEN COUNT(*) > 10 THEN 'busy' ELSE 'quiet' END AS state
         FROM Input GROUP BY TumblingWindow(Duration(hour, 1), Offset(millisecond, -1))",
        "SELECT udf.toF(temp) AS f, GetMetadataPropertyValue(Input, 'EventId') AS id FROM Input",
    ];
    for q in queries {
        bound(q);
    }
}

#[test]
fn declared_reference_inputs_are_listed_apart_from_streams() {
    let text = "WITH Sites AS (SELECT * FROM raw)
                SELECT e.v, s.name, z.zone FROM events e
                JOIN Sites s ON e.site = s.id AND DATEDIFF(second, e, s) BETWEEN 0 AND 1
                LEFT OUTER JOIN zones z ON z.id = e.zone";
    let options = eddy_sql::BindOptions {
        reference_inputs: vec!["ZONES".into(), "Sites".into(), "unused".into()],
    };
    let b = eddy_sql::compile_with(text, &options).unwrap_or_else(|d| panic!("{}", d.render(text)));
    // The step named Sites shadows the reference input of that name.
    assert_eq!(b.inputs, ["raw", "events"]);
    assert_eq!(b.references, ["zones"]);
}

//! Parser tests: the trees users' queries turn into. Expressions are compared as
//! S-expressions so that precedence is visible at a glance.

use eddy_sql::ast::*;
use eddy_sql::parse;

fn script(text: &str) -> Script {
    parse(text).unwrap_or_else(|d| panic!("{}", d.render(text)))
}

fn one_select(text: &str) -> Select {
    match script(text).statements.into_iter().next() {
        Some(Statement::Query(q)) => match *q {
            Query::Select(s) => *s,
            other => panic!("not a select: {other:?}"),
        },
        other => panic!("not a query: {other:?}"),
    }
}

fn names(path: &[Ident]) -> String {
    path.iter()
        .map(|i| i.name.as_str())
        .collect::<Vec<_>>()
        .join(".")
}

/// Renders an expression as an S-expression.
fn sx(e: &Expr) -> String {
    match e {
        Expr::Literal(Literal::String(s), _) => format!("'{s}'"),
        Expr::Literal(Literal::Integer(n), _) => n.to_string(),
        Expr::Literal(Literal::Float(f), _) => format!("{f:?}"),
        Expr::Literal(Literal::Bool(b), _) => b.to_string(),
        Expr::Literal(Literal::Null, _) => "null".into(),
        Expr::Column(path, _) => names(path),
        Expr::Function(c) => {
            let mut args: Vec<String> = c.args.iter().map(sx).collect();
            if c.star {
                args.push("*".into());
            }
            let d = if c.distinct { "distinct " } else { "" };
            let over = if c.over.is_some() { " over" } else { "" };
            format!("{}({d}{}){over}", c.dotted_name(), args.join(", "))
        }
        Expr::Binary {
            op, left, right, ..
        } => format!("({op:?} {} {})", sx(left), sx(right)),
        Expr::Unary { op, expr, .. } => format!("({op:?} {})", sx(expr)),
        Expr::Case {
            operand,
            branches,
            else_result,
            ..
        } => {
            let mut s = "(case".to_string();
            if let Some(o) = operand {
                s += &format!(" {}", sx(o));
            }
            for (w, t) in branches {
                s += &format!(" [{} {}]", sx(w), sx(t));
            }
            if let Some(e) = else_result {
                s += &format!(" else {}", sx(e));
            }
            s + ")"
        }
        Expr::Cast {
            expr,
            target,
            try_cast,
            ..
        } => {
            format!(
                "({} {} {target:?})",
                if *try_cast { "try_cast" } else { "cast" },
                sx(expr)
            )
        }
        Expr::Between {
            expr,
            low,
            high,
            negated,
            ..
        } => {
            format!(
                "({}between {} {} {})",
                not(*negated),
                sx(expr),
                sx(low),
                sx(high)
            )
        }
        Expr::InList {
            expr,
            list,
            negated,
            ..
        } => {
            let l: Vec<String> = list.iter().map(sx).collect();
            format!("({}in {} [{}])", not(*negated), sx(expr), l.join(" "))
        }
        Expr::Like {
            expr,
            pattern,
            negated,
            ..
        } => {
            format!("({}like {} {})", not(*negated), sx(expr), sx(pattern))
        }
        Expr::IsNull { expr, negated, .. } => format!("({}null? {})", not(*negated), sx(expr)),
        Expr::Nested(e, _) => sx(e),
        Expr::Member { expr, field, .. } => format!("(. {} {})", sx(expr), field.name),
    }
}

fn not(negated: bool) -> &'static str {
    if negated { "not " } else { "" }
}

/// The first SELECT item of `SELECT <expr> FROM i`, as an S-expression.
fn ex(expr: &str) -> String {
    let s = one_select(&format!("SELECT {expr} FROM i"));
    match &s.items[0] {
        SelectItem::Expr { expr, .. } => sx(expr),
        other => panic!("not an expression: {other:?}"),
    }
}

#[test]
fn arithmetic_binds_tighter_than_comparison_and_logic() {
    assert_eq!(ex("1 + 2 * 3"), "(Add 1 (Mul 2 3))");
    assert_eq!(ex("(1 + 2) * 3"), "(Mul (Add 1 2) 3)");
    assert_eq!(ex("a - b - c"), "(Sub (Sub a b) c)");
    assert_eq!(ex("a / b % c"), "(Mod (Div a b) c)");
    assert_eq!(ex("a + 1 > b * 2"), "(Gt (Add a 1) (Mul b 2))");
    assert_eq!(ex("a OR b AND c"), "(Or a (And b c))");
    assert_eq!(
        ex("(a = 1 OR b = 2 AND c <> 3)"),
        "(Or (Eq a 1) (And (Eq b 2) (NotEq c 3)))"
    );
    assert_eq!(ex("a & b | c ^ d"), "(BitXor (BitOr (BitAnd a b) c) d)");
}

#[test]
fn unary_operators() {
    assert_eq!(ex("NOT a = 1 AND b"), "(And (Not (Eq a 1)) b)");
    assert_eq!(ex("NOT NOT a"), "(Not (Not a))");
    assert_eq!(ex("-a * b"), "(Mul (Neg a) b)");
    assert_eq!(ex("-5 + 2"), "(Add -5 2)");
    assert_eq!(ex("a - -1.5"), "(Sub a -1.5)");
    assert_eq!(ex("~a + +b"), "(Add (BitNot a) (Plus b))");
    assert_eq!(ex("a != b"), "(NotEq a b)");
}

#[test]
fn predicates() {
    assert_eq!(ex("a IS NULL"), "(null? a)");
    assert_eq!(ex("a.b IS NOT NULL AND c"), "(And (not null? a.b) c)");
    assert_eq!(ex("a IN (1, 2, 'x')"), "(in a [1 2 'x'])");
    assert_eq!(ex("a NOT IN (1)"), "(not in a [1])");
    assert_eq!(
        ex("a BETWEEN 1 AND 2 + 3 AND b"),
        "(And (between a 1 (Add 2 3)) b)"
    );
    assert_eq!(ex("a NOT BETWEEN x AND y"), "(not between a x y)");
    assert_eq!(ex("name LIKE 'a%'"), "(like name 'a%')");
    assert_eq!(ex("name NOT LIKE '_b' OR x"), "(Or (not like name '_b') x)");
    assert_eq!(ex("NOT a IN (1)"), "(Not (in a [1]))");
}

#[test]
fn literals() {
    assert_eq!(ex("'it''s'"), "'it's'");
    assert_eq!(ex("NULL"), "null");
    assert_eq!(ex("true"), "true");
    assert_eq!(ex("FALSE"), "false");
    assert_eq!(ex("1.5e3"), "1500.0");
    assert_eq!(ex("2E-1"), "0.2");
    assert_eq!(ex("42"), "42");
    assert_eq!(ex("''"), "''");
}

#[test]
fn case_cast_and_calls() {
    assert_eq!(
        ex("CASE WHEN a > 1 THEN 'big' ELSE 'small' END"),
        "(case [(Gt a 1) 'big'] else 'small')"
    );
    assert_eq!(
        ex("CASE a WHEN 1 THEN 'x' WHEN 2 THEN 'y' END"),
        "(case a [1 'x'] [2 'y'])"
    );
    assert_eq!(ex("CAST(a AS bigint)"), "(cast a BigInt)");
    assert_eq!(ex("TRY_CAST(a AS nvarchar(max))"), "(try_cast a NVarChar)");
    assert_eq!(ex("cast(a as DateTime)"), "(cast a DateTime)");
    assert_eq!(ex("COUNT(*)"), "COUNT(*)");
    assert_eq!(ex("count(DISTINCT a)"), "count(distinct a)");
    assert_eq!(ex("System.Timestamp()"), "System.Timestamp()");
    assert_eq!(ex("udf.toUpper(a, 1)"), "udf.toUpper(a, 1)");
    assert_eq!(ex("LEFT(a, 2)"), "LEFT(a, 2)");
    assert_eq!(ex("DATEDIFF(minute, a, b)"), "DATEDIFF(minute, a, b)");
}

#[test]
fn over_clauses() {
    let s = one_select(
        "SELECT LAG(reading, 1, 0) OVER (PARTITION BY id, zone LIMIT DURATION(hour, 1) WHEN reading > 0) FROM i",
    );
    let SelectItem::Expr {
        expr: Expr::Function(call),
        ..
    } = &s.items[0]
    else {
        panic!()
    };
    let over = call.over.as_ref().expect("over");
    assert_eq!(
        over.partition_by.iter().map(sx).collect::<Vec<_>>(),
        ["id", "zone"]
    );
    assert_eq!(
        over.limit_duration.as_ref().map(sx).as_deref(),
        Some("DURATION(hour, 1)")
    );
    assert_eq!(
        over.when.as_ref().map(sx).as_deref(),
        Some("(Gt reading 0)")
    );
    let s = one_select(
        "SELECT TopOne() OVER (ORDER BY t DESC, u ASC, v) FROM i GROUP BY Tumbling(s, 1)",
    );
    let SelectItem::Expr {
        expr: Expr::Function(call),
        ..
    } = &s.items[0]
    else {
        panic!()
    };
    let order: Vec<(String, bool)> = call
        .over
        .as_ref()
        .expect("over")
        .order_by
        .iter()
        .map(|(e, d)| (sx(e), *d))
        .collect();
    assert_eq!(
        order,
        [("t".into(), true), ("u".into(), false), ("v".into(), false)]
    );
}

#[test]
fn select_items_and_aliases() {
    let s = one_select(
        "SELECT *, t.*, t.rec.*, a AS x, b y, z = c + 1, [my col], d [out col] FROM i t",
    );
    let rendered: Vec<String> = s
        .items
        .iter()
        .map(|i| match i {
            SelectItem::Wildcard(_) => "*".to_string(),
            SelectItem::QualifiedWildcard(p) => format!("{}.*", names(p)),
            SelectItem::Expr { expr, alias } => {
                format!(
                    "{}{}",
                    sx(expr),
                    alias
                        .as_ref()
                        .map(|a| format!(" as {}", a.name))
                        .unwrap_or_default()
                )
            }
        })
        .collect();
    assert_eq!(
        rendered,
        [
            "*",
            "t.*",
            "t.rec.*",
            "a as x",
            "b as y",
            "(Add c 1) as z",
            "my col",
            "d as out col"
        ]
    );
    assert_eq!(s.from.source.reference_name().name, "t");
}

#[test]
fn bracketed_names_may_be_keywords_and_hold_brackets() {
    let s = one_select("SELECT [from], [a]]b], t.[select] FROM [my input] AS [x y]");
    let cols: Vec<String> = s
        .items
        .iter()
        .map(|i| match i {
            SelectItem::Expr { expr, .. } => sx(expr),
            _ => String::new(),
        })
        .collect();
    assert_eq!(cols, ["from", "a]b", "t.select"]);
    assert_eq!(s.from.source.name.name, "my input");
    assert_eq!(
        s.from.source.alias.as_ref().map(|a| a.name.as_str()),
        Some("x y")
    );
}

#[test]
fn comments_are_ignored() {
    let text = "-- a job\nSELECT a /* the key, /* not nested */ , b -- trailing\nFROM i -- end";
    let s = one_select(text);
    assert_eq!(s.items.len(), 2);
    assert_eq!(s.from.source.name.name, "i");
}

#[test]
fn keywords_are_case_insensitive() {
    let s = one_select(
        "select a into Out from In1 timestamp by t where a > 1 group by a, tumblingwindow(Minute, 1) having count(*) > 1;",
    );
    assert_eq!(s.into.as_ref().map(|i| i.name.as_str()), Some("Out"));
    assert!(s.filter.is_some() && s.having.is_some());
    assert_eq!(s.group_by.len(), 2);
}

#[test]
fn full_select_clauses() {
    let s = one_select(
        "SELECT DISTINCT a INTO out FROM input PARTITION BY PartitionId TIMESTAMP BY ts OVER dev, zone WHERE a > 1 GROUP BY a, System.Timestamp() HAVING COUNT(*) > 1",
    );
    assert!(s.distinct);
    let src = &s.from.source;
    assert_eq!(
        src.partition_by.as_ref().map(sx).as_deref(),
        Some("PartitionId")
    );
    let ts = src.timestamp_by.as_ref().expect("timestamp by");
    assert_eq!(sx(&ts.expr), "ts");
    assert_eq!(ts.over.iter().map(sx).collect::<Vec<_>>(), ["dev", "zone"]);
    assert_eq!(
        s.group_by.iter().map(sx).collect::<Vec<_>>(),
        ["a", "System.Timestamp()"]
    );
    // TIMESTAMP BY before PARTITION BY works too, and a call before OVER keys.
    let s = one_select(
        "SELECT a FROM i TIMESTAMP BY DATEADD(ms, t, '1970-01-01') OVER k PARTITION BY p",
    );
    let ts = s.from.source.timestamp_by.as_ref().expect("timestamp by");
    assert_eq!(sx(&ts.expr), "DATEADD(ms, t, '1970-01-01')");
    assert_eq!(ts.over.len(), 1);
    assert!(s.from.source.partition_by.is_some());
}

#[test]
fn both_window_syntaxes() {
    let cases = [
        ("TumblingWindow(minute, 5)", "TumblingWindow(minute, 5)"),
        ("Tumbling(mi, 5, 1)", "Tumbling(mi, 5, 1)"),
        (
            "TumblingWindow(Duration(minute, 5), Offset(millisecond, -1))",
            "TumblingWindow(Duration(minute, 5), Offset(millisecond, -1))",
        ),
        (
            "HoppingWindow(second, 10, 5)",
            "HoppingWindow(second, 10, 5)",
        ),
        (
            "Hopping(Duration(hour, 1), Hop(minute, 5), Offset(second, 10))",
            "Hopping(Duration(hour, 1), Hop(minute, 5), Offset(second, 10))",
        ),
        ("SlidingWindow(s, 5)", "SlidingWindow(s, 5)"),
        (
            "SessionWindow(minute, 2, 10) OVER (PARTITION BY k)",
            "SessionWindow(minute, 2, 10) over",
        ),
        (
            "Windows(Window('a', TumblingWindow(s, 1)), Window('b', HoppingWindow(s, 4, 2)))",
            "Windows(Window('a', TumblingWindow(s, 1)), Window('b', HoppingWindow(s, 4, 2)))",
        ),
    ];
    for (window, expected) in cases {
        let s = one_select(&format!("SELECT COUNT(*) FROM i GROUP BY k, {window}"));
        assert_eq!(sx(&s.group_by[1]), expected, "{window}");
    }
}

#[test]
fn several_statements_steps_and_unions() {
    let text = "WITH a AS (SELECT x FROM in1), b AS (SELECT x FROM a UNION SELECT x FROM in2)
        SELECT * INTO o1 FROM b;
        SELECT * INTO o2 FROM a
        SELECT * INTO o3 FROM in1 UNION ALL SELECT * FROM in2;";
    let s = script(text);
    assert_eq!(s.statements.len(), 3);
    let Statement::With { steps, body } = &s.statements[0] else {
        panic!("not a WITH")
    };
    assert_eq!(
        steps
            .iter()
            .map(|s| s.name.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert!(matches!(steps[1].query, Query::Union { .. }));
    assert!(matches!(**body, Query::Select(_)));
    assert!(matches!(&s.statements[2], Statement::Query(q) if matches!(**q, Query::Union { .. })));
}

#[test]
fn joins_and_applies() {
    let s = one_select(
        "SELECT * FROM a JOIN b ON DATEDIFF(second, a, b) BETWEEN 0 AND 10 \
         LEFT OUTER JOIN c AS cc ON a.k = cc.k LEFT JOIN d ON a.k = d.k INNER JOIN e ON 1 = 1 \
         CROSS APPLY GetArrayElements(a.arr) AS el OUTER APPLY GetRecordProperties(a.rec) p",
    );
    let kinds: Vec<JoinKind> = s.from.joins.iter().map(|j| j.kind).collect();
    use JoinKind::*;
    assert_eq!(
        kinds,
        [Inner, LeftOuter, LeftOuter, Inner, CrossApply, OuterApply]
    );
    assert_eq!(
        s.from.joins[0].on.as_ref().map(sx).as_deref(),
        Some("(between DATEDIFF(second, a, b) 0 10)")
    );
    let JoinTarget::Function { call, alias } = &s.from.joins[4].right else {
        panic!("not an apply")
    };
    assert_eq!(
        (sx(call).as_str(), alias.name.as_str()),
        ("GetArrayElements(a.arr)", "el")
    );
    assert!(s.from.joins[4].on.is_none());
}

#[test]
fn create_table() {
    let s = script(
        "CREATE TABLE input (id bigint, name nvarchar(max), t datetime, ok bit, v float, r record, a array); SELECT * FROM input",
    );
    let Statement::CreateTable { name, columns, .. } = &s.statements[0] else {
        panic!("not CREATE TABLE")
    };
    assert_eq!(name.name, "input");
    use DataType::*;
    let types: Vec<DataType> = columns.iter().map(|(_, t)| *t).collect();
    assert_eq!(
        types,
        [BigInt, NVarChar, DateTime, Bit, Float, Record, Array]
    );
}

#[test]
fn spans_point_at_the_text() {
    let text = "SELECT\n  a + b AS s\nFROM i";
    let s = one_select(text);
    let SelectItem::Expr { expr, alias } = &s.items[0] else {
        panic!()
    };
    let span = expr.span();
    assert_eq!(&text[span.start..span.end], "a + b");
    assert_eq!(span.line_col(text), (2, 3));
    assert_eq!(alias.as_ref().map(|a| a.span.line_col(text)), Some((2, 12)));
    assert_eq!(&text[s.span.start..s.span.end], text);
}

#[test]
fn errors_name_the_expected_and_found_tokens() {
    let err = |t: &str| parse(t).expect_err(t).to_string();
    assert_eq!(
        err("SELECT a WHERE b"),
        "line 1, column 10: expected ',', INTO or FROM, found 'WHERE'"
    );
    assert_eq!(
        err("SELECT a INTO o WHERE b"),
        "line 1, column 17: expected FROM, found 'WHERE'"
    );
    assert_eq!(
        err("SELECT a FROM"),
        "line 1, column 14: expected an input or step name, found end of input"
    );
    assert_eq!(
        err("SELECT (a FROM i"),
        "line 1, column 11: expected ')', found 'FROM'"
    );
}

#[test]
fn hostile_nesting_is_an_error_not_a_crash() {
    let ok = format!("SELECT {}1{} FROM i", "(".repeat(150), ")".repeat(150));
    assert!(parse(&ok).is_ok());
    let deep = format!(
        "SELECT {}1{} FROM i",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let d = parse(&deep).expect_err("too deep");
    assert!(
        d.message
            .starts_with("expected a less deeply nested expression"),
        "{d}"
    );
    let nots = format!("SELECT a FROM i WHERE {} a", "NOT ".repeat(100_000));
    assert!(parse(&nots).is_err());
}

#[test]
fn every_prefix_and_suffix_of_a_job_fails_cleanly_or_parses() {
    let text = "WITH s AS (SELECT [a b], CASE x WHEN 1 THEN 'it''s' END AS c FROM in1 i TIMESTAMP BY t OVER k)
        SELECT k, COUNT(DISTINCT v) INTO o FROM s JOIN r ON DATEDIFF(ms, s, r) BETWEEN -1 AND 2.5e1
        WHERE v NOT IN (1, 2) AND v NOT LIKE '%x' /* c */ GROUP BY k, HoppingWindow(Duration(mi, 5), Hop(mi, 1))
        HAVING LAG(v) OVER (PARTITION BY k LIMIT DURATION(s, 1) WHEN v > 0) IS NOT NULL; -- end";
    for (i, _) in text.char_indices() {
        for part in [&text[..i], &text[i..]] {
            if let Err(d) = eddy_sql::compile(part) {
                assert!(d.line >= 1 && d.column >= 1);
                assert!(d.render(part).starts_with("error: "));
            }
        }
    }
}

#[test]
fn reserved_words_as_names_get_a_bracket_hint() {
    let d = parse("SELECT a AS select FROM i").expect_err("reserved");
    assert_eq!(
        d.help.as_deref(),
        Some("'select' is a reserved word; write [select] to use it as a name")
    );
    assert_eq!(
        d.to_string(),
        "line 1, column 13: expected an alias after AS, found 'select' (help: 'select' is a reserved word; write [select] to use it as a name)"
    );
}

#[test]
fn timestamp_is_a_usable_field_and_alias_name() {
    let s =
        one_select("SELECT timestamp AS Timestamp, x AS [select] FROM i TIMESTAMP BY timestamp");
    let SelectItem::Expr { expr, alias } = &s.items[0] else {
        panic!()
    };
    assert_eq!(
        (sx(expr).as_str(), alias.as_ref().map(|a| a.name.as_str())),
        ("timestamp", Some("Timestamp"))
    );
    let ts = s.from.source.timestamp_by.as_ref().expect("timestamp by");
    assert_eq!(sx(&ts.expr), "timestamp");
}

#[test]
fn member_access_on_a_call_result() {
    assert_eq!(ex("System.Window().Id"), "(. System.Window() Id)");
    assert_eq!(ex("System.Window().[Id]"), "(. System.Window() Id)");
    assert_eq!(ex("f(x).a.b"), "(. (. f(x) a) b)");
}

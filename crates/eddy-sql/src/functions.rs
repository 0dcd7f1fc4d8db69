//! The catalogue of names the dialect knows: functions (kind and argument counts), time
//! units and date parts. The binder rejects anything not listed here.

use crate::plan::{FunctionKind, TimeUnit};

/// A known function: its kind and how many arguments it takes (`max = None`: any number).
#[derive(Debug, Clone, Copy)]
pub struct FunctionInfo {
    /// Name as documented (lookups are case-insensitive).
    pub name: &'static str,
    /// Scalar, aggregate, analytic or window.
    pub kind: FunctionKind,
    /// Fewest arguments accepted.
    pub min_args: usize,
    /// Most arguments accepted; `None` for variadic functions.
    pub max_args: Option<usize>,
}

const fn f(name: &'static str, kind: FunctionKind, min_args: usize, max: usize) -> FunctionInfo {
    let max_args = if max == usize::MAX { None } else { Some(max) };
    FunctionInfo {
        name,
        kind,
        min_args,
        max_args,
    }
}

const S: FunctionKind = FunctionKind::Scalar;
const A: FunctionKind = FunctionKind::Aggregate;
const N: FunctionKind = FunctionKind::Analytic;
const W: FunctionKind = FunctionKind::Window;
const ANY: usize = usize::MAX;

/// Every function the dialect accepts, from the ASA function reference.
pub const FUNCTIONS: &[FunctionInfo] = &[
    // Aggregates.
    f("AVG", A, 1, 1),
    f("COUNT", A, 1, 1),
    f("Collect", A, 0, 1),
    f("CollectTop", A, 1, 2),
    f("MAX", A, 1, 1),
    f("MIN", A, 1, 1),
    f("Percentile_Cont", A, 1, 1),
    f("Percentile_Disc", A, 1, 1),
    f("STDEV", A, 1, 1),
    f("STDEVP", A, 1, 1),
    f("SUM", A, 1, 1),
    f("TopOne", A, 0, 0),
    f("VAR", A, 1, 1),
    f("VARP", A, 1, 1),
    // Analytic.
    f("LAG", N, 1, 3),
    f("LAST", N, 1, 2),
    f("ISFIRST", N, 2, 2),
    f("AnomalyDetection_SpikeAndDip", N, 4, 4),
    f("AnomalyDetection_ChangePoint", N, 3, 3),
    // Windows (GROUP BY only).
    f("TumblingWindow", W, 1, 3),
    f("Tumbling", W, 1, 3),
    f("HoppingWindow", W, 2, 4),
    f("Hopping", W, 2, 4),
    f("SlidingWindow", W, 1, 2),
    f("Sliding", W, 1, 2),
    f("SessionWindow", W, 2, 3),
    f("Session", W, 2, 3),
    f("Windows", W, 1, ANY),
    f("Window", W, 2, 2),
    // Strings.
    f("CHARINDEX", S, 2, 3),
    f("CONCAT", S, 2, ANY),
    f("CONCAT_WS", S, 3, ANY),
    f("LEFT", S, 2, 2),
    f("LEN", S, 1, 1),
    f("LOWER", S, 1, 1),
    f("LTRIM", S, 1, 1),
    f("NCHAR", S, 1, 1),
    f("PATINDEX", S, 2, 2),
    f("REGEXMATCH", S, 2, 2),
    f("REPLACE", S, 3, 3),
    f("REPLICATE", S, 2, 2),
    f("REVERSE", S, 1, 1),
    f("RIGHT", S, 2, 2),
    f("RTRIM", S, 1, 1),
    f("SPACE", S, 1, 1),
    f("STUFF", S, 4, 4),
    f("SUBSTRING", S, 3, 3),
    f("TRANSLATE", S, 3, 3),
    f("TRIM", S, 1, 1),
    f("UNICODE", S, 1, 1),
    f("UPPER", S, 1, 1),
    // Dates.
    f("DATEADD", S, 3, 3),
    f("DATEDIFF", S, 3, 3),
    f("DATENAME", S, 2, 2),
    f("DATEPART", S, 2, 2),
    f("DATETIMEFROMPARTS", S, 7, 7),
    f("DAY", S, 1, 1),
    f("MONTH", S, 1, 1),
    f("YEAR", S, 1, 1),
    // Maths.
    f("ABS", S, 1, 1),
    f("CEILING", S, 1, 1),
    f("EXP", S, 1, 1),
    f("FLOOR", S, 1, 1),
    f("POWER", S, 2, 2),
    f("ROUND", S, 2, 3),
    f("SIGN", S, 1, 1),
    f("SQRT", S, 1, 1),
    f("SQUARE", S, 1, 1),
    // Conversion, records, arrays, metadata.
    f("COALESCE", S, 1, ANY),
    f("NULLIF", S, 2, 2),
    f("GetType", S, 1, 1),
    f("GetArrayElement", S, 2, 2),
    f("GetArrayElements", S, 1, 1),
    f("GetArrayLength", S, 1, 1),
    f("GetRecordProperties", S, 1, 1),
    f("GetRecordPropertyValue", S, 2, 2),
    f("GetMetadataPropertyValue", S, 2, 2),
    // Geospatial.
    f("CreatePoint", S, 2, 2),
    f("CreateLineString", S, 2, ANY),
    f("CreatePolygon", S, 4, ANY),
    f("ST_DISTANCE", S, 2, 2),
    f("ST_WITHIN", S, 2, 2),
    f("ST_INTERSECTS", S, 2, 2),
    f("ST_OVERLAPS", S, 2, 2),
    // System.
    f("System.Timestamp", S, 0, 0),
    f("System.Window", S, 0, 0),
];

/// Looks a function up by its dotted name, case-insensitively. `udf.*` names are scalar
/// JavaScript functions and `uda.*` names aggregates, with any number of arguments.
pub fn lookup(dotted_name: &str) -> Option<FunctionInfo> {
    if let Some((ns, rest)) = dotted_name.split_once('.')
        && !rest.is_empty()
        && !rest.contains('.')
    {
        if ns.eq_ignore_ascii_case("udf") {
            return Some(f("udf", S, 0, ANY));
        }
        if ns.eq_ignore_ascii_case("uda") {
            return Some(f("uda", A, 0, ANY));
        }
    }
    FUNCTIONS
        .iter()
        .find(|i| i.name.eq_ignore_ascii_case(dotted_name))
        .copied()
}

/// What kind of function a dotted name denotes, or `None` if it is unknown.
pub fn function_kind(dotted_name: &str) -> Option<FunctionKind> {
    lookup(dotted_name).map(|i| i.kind)
}

/// Time unit names and abbreviations of window and ISFIRST arguments, case-insensitive.
const TIME_UNITS: &[(&str, TimeUnit)] = &[
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
];

/// Resolves a time unit name or abbreviation (`minute`, `mi`, `n`, ...).
pub fn time_unit(name: &str) -> Option<TimeUnit> {
    TIME_UNITS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, u)| *u)
}

/// The full unit names, for suggestions.
pub(crate) const TIME_UNIT_NAMES: &[&str] = &[
    "day",
    "hour",
    "minute",
    "second",
    "millisecond",
    "microsecond",
];

/// Date parts accepted by DATEADD, DATEDIFF, DATEPART and DATENAME.
pub(crate) const DATE_PARTS: &[&str] = &[
    "year",
    "yy",
    "yyyy",
    "quarter",
    "qq",
    "q",
    "month",
    "mm",
    "m",
    "dayofyear",
    "dy",
    "y",
    "day",
    "dd",
    "d",
    "week",
    "wk",
    "ww",
    "weekday",
    "dw",
    "w",
    "hour",
    "hh",
    "minute",
    "mi",
    "n",
    "second",
    "ss",
    "s",
    "millisecond",
    "ms",
    "microsecond",
    "mcs",
    "nanosecond",
    "ns",
];

/// Levenshtein distance, case-insensitive, for "did you mean" suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate to `name` if it is close enough to be a plausible typo.
pub(crate) fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

//! Scalar functions: strings, maths and dates. Each is compiled once into a closure
//! over its compiled arguments; date-part names are resolved at compile time.

use crate::error::{EngineError, EvalError};
use crate::expr::{Eval, ExprCompiler};
use crate::time::{
    TICKS_PER_DAY, civil_from_days, days_from_civil, days_in_month, format_datetime, parse_datetime,
};
use crate::value::Value;
use eddy_sql::ast::{Expr, FunctionCall, Literal};

type Fun = fn(&[Value]) -> Result<Value, EvalError>;

/// Text form of a value, as CAST to nvarchar(max) and CONCAT write it.
pub(crate) fn to_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bit(b) => if *b { "true" } else { "false" }.to_string(),
        Value::BigInt(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::String(s) => s.to_string(),
        Value::DateTime(t) => format_datetime(*t),
        Value::Record(_) | Value::Array(_) => v.to_json().to_string(),
    }
}

/// Compiles a call of scalar function `name` (lower case).
pub(crate) fn compile_scalar(
    c: &mut ExprCompiler,
    name: &str,
    call: &FunctionCall,
) -> Result<Eval, EngineError> {
    let (min, max, f): (usize, usize, Fun) = match name {
        "dateadd" | "datediff" | "datepart" | "datename" => return date_function(c, name, call),
        "regexmatch" => return regex_match(c, call),
        "coalesce" => return coalesce(c, call),
        "patindex" => return patindex(c, call),
        "getmetadatapropertyvalue" => return metadata_property(c, call),
        "upper" => (1, 1, |a| {
            string1(&a[0], |s| Value::String(s.to_uppercase().into()))
        }),
        "lower" => (1, 1, |a| {
            string1(&a[0], |s| Value::String(s.to_lowercase().into()))
        }),
        // Trailing blanks do not count, as ASA documents.
        "len" => (1, 1, |a| {
            string1(&a[0], |s| {
                Value::BigInt(s.trim_end_matches(' ').chars().count() as i64)
            })
        }),
        "concat" => (1, usize::MAX, |a| {
            Ok(Value::String(
                a.iter().map(to_text).collect::<String>().into(),
            ))
        }),
        "substring" => (3, 3, substring),
        "abs" => (1, 1, |a| {
            num1(
                &a[0],
                |i| i.checked_abs().ok_or(EvalError::Overflow),
                |f| f.abs(),
            )
        }),
        "floor" => (1, 1, |a| num1(&a[0], Ok, f64::floor)),
        "ceiling" => (1, 1, |a| num1(&a[0], Ok, f64::ceil)),
        "round" => (1, 2, round),
        "year" => (1, 1, |a| part(DatePart::Year, &a[0])),
        "month" => (1, 1, |a| part(DatePart::Month, &a[0])),
        "day" => (1, 1, |a| part(DatePart::Day, &a[0])),
        "left" => (2, 2, |a| take_chars(a, false)),
        "right" => (2, 2, |a| take_chars(a, true)),
        // ASA trims every Unicode white-space character, not only spaces as T-SQL does.
        "ltrim" => (1, 1, |a| string1(&a[0], |s| s.trim_start().into())),
        "rtrim" => (1, 1, |a| string1(&a[0], |s| s.trim_end().into())),
        "trim" => (1, 1, |a| string1(&a[0], |s| s.trim().into())),
        "reverse" => (1, 1, |a| {
            string1(&a[0], |s| {
                s.chars().rev().collect::<String>().as_str().into()
            })
        }),
        "replace" => (3, 3, replace),
        "charindex" => (2, 3, charindex),
        "concat_ws" => (2, usize::MAX, concat_ws),
        "replicate" => (2, 2, replicate),
        "power" => (2, 2, power),
        "sqrt" => (1, 1, |a| float1(&a[0], f64::sqrt)),
        "square" => (1, 1, |a| float1(&a[0], |x| x * x)),
        "exp" => (1, 1, |a| float1(&a[0], f64::exp)),
        "sign" => (1, 1, |a| {
            num1(
                &a[0],
                |i| Ok(i.signum()),
                |f| if f == 0.0 { 0.0 } else { f.signum() },
            )
        }),
        "nullif" => (2, 2, |a| {
            Ok(match a[0].sql_cmp(&a[1]).map_err(EvalError::Type)? {
                Some(std::cmp::Ordering::Equal) => Value::Null,
                _ => a[0].clone(),
            })
        }),
        "gettype" => (1, 1, |a| Ok(a[0].type_name().into())),
        "getarraylength" => (1, 1, |a| match &a[0] {
            Value::Array(x) => Ok(Value::BigInt(x.len() as i64)),
            Value::Null => Ok(Value::Null),
            v => Err(EvalError::Type(format!(
                "GetArrayLength of {}",
                v.type_name()
            ))),
        }),
        "getarrayelement" => (2, 2, |a| match (&a[0], int_arg(&a[1])?) {
            (Value::Array(x), Some(i)) => Ok(usize::try_from(i)
                .ok()
                .and_then(|i| x.get(i))
                .cloned()
                .unwrap_or_default()),
            (Value::Null, _) | (_, None) => Ok(Value::Null),
            (v, _) => Err(EvalError::Type(format!(
                "GetArrayElement of {}",
                v.type_name()
            ))),
        }),
        "getrecordpropertyvalue" => (2, 2, record_property),
        "space" => (1, 1, |a| replicate(&[Value::from(" "), a[0].clone()])),
        "nchar" => (1, 1, |a| match int_arg(&a[0])? {
            Some(i) => Ok(u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .map_or(Value::Null, |c| c.to_string().as_str().into())),
            None => Ok(Value::Null),
        }),
        "unicode" => (1, 1, |a| match str_arg(&a[0])? {
            Some(s) => Ok(s
                .chars()
                .next()
                .map_or(Value::Null, |c| Value::BigInt(c as i64))),
            None => Ok(Value::Null),
        }),
        "stuff" => (4, 4, stuff),
        "translate" => (3, 3, translate),
        "createpoint" => (2, 2, crate::geo::create_point),
        "createlinestring" => (2, usize::MAX, crate::geo::create_line_string),
        "createpolygon" => (4, usize::MAX, crate::geo::create_polygon),
        "st_distance" => (2, 2, crate::geo::st_distance),
        "st_within" => (2, 2, crate::geo::st_within),
        "datetimefromparts" => (7, 7, datetime_from_parts),
        _ => {
            return Err(crate::expr::unsupported(
                c.text,
                call.span,
                format!("function {}", call.dotted_name()),
            ));
        }
    };
    if call.args.len() < min || call.args.len() > max || call.star {
        return Err(crate::expr::unsupported(
            c.text,
            call.span,
            format!(
                "{}(...) with {} arguments",
                call.dotted_name(),
                call.args.len()
            ),
        ));
    }
    let args = call
        .args
        .iter()
        .map(|a| c.compile(a))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Box::new(move |ctx| {
        let vals = args.iter().map(|a| a(ctx)).collect::<Result<Vec<_>, _>>()?;
        f(&vals)
    }))
}

/// `REGEXMATCH(s, pattern)`: 1-based position of the first match, 0 when none or when
/// the pattern is invalid; case-insensitive, as ASA documents.
fn regex_match(c: &mut ExprCompiler, call: &FunctionCall) -> Result<Eval, EngineError> {
    let [s, p] = call.args.as_slice() else {
        return Err(arity(c, call));
    };
    let build = |p: &str| {
        regex::RegexBuilder::new(p)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .ok()
    };
    let s = c.compile(s)?;
    if let Expr::Literal(Literal::String(p), _) = p {
        let re = build(p);
        return Ok(Box::new(move |ctx| {
            Ok(match (str_arg(&s(ctx)?)?, &re) {
                (None, _) => Value::Null,
                (Some(s), Some(re)) => position(s, re.find(s).map(|m| m.start())),
                (Some(_), None) => Value::BigInt(0),
            })
        }));
    }
    let p = c.compile(p)?;
    Ok(Box::new(move |ctx| {
        let (s, p) = (s(ctx)?, p(ctx)?);
        Ok(match (str_arg(&s)?, str_arg(&p)?) {
            (Some(s), Some(p)) => match build(p) {
                Some(re) => position(s, re.find(s).map(|m| m.start())),
                None => Value::BigInt(0),
            },
            _ => Value::Null,
        })
    }))
}

/// `COALESCE(a, b, ...)`: the first non-NULL argument; later ones are not evaluated.
fn coalesce(c: &mut ExprCompiler, call: &FunctionCall) -> Result<Eval, EngineError> {
    if call.args.is_empty() {
        return Err(arity(c, call));
    }
    let args = call
        .args
        .iter()
        .map(|a| c.compile(a))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Box::new(move |ctx| {
        for a in &args {
            match a(ctx)? {
                Value::Null => {}
                v => return Ok(v),
            }
        }
        Ok(Value::Null)
    }))
}

/// A 1-based character position from a byte offset (0 when absent).
fn position(s: &str, byte: Option<usize>) -> Value {
    Value::BigInt(byte.map_or(0, |b| s[..b].chars().count() as i64 + 1))
}

/// `PATINDEX('%pattern%', s)`: 1-based position of the first occurrence of a LIKE
/// pattern, 0 when absent; without a leading (trailing) `%` the match must start (end)
/// the string, as in T-SQL.
fn patindex(c: &mut ExprCompiler, call: &FunctionCall) -> Result<Eval, EngineError> {
    let [p, s] = call.args.as_slice() else {
        return Err(arity(c, call));
    };
    fn build(p: &str) -> Result<regex::Regex, String> {
        let (start, body) = match p.strip_prefix('%') {
            Some(rest) => ("", rest),
            None => ("^", p),
        };
        let (body, end) = match body.strip_suffix('%') {
            Some(rest) => (rest, ""),
            None => (body, "$"),
        };
        let body = crate::expr::like_body(body)?;
        regex::Regex::new(&format!("{start}(?s:{body}){end}")).map_err(|e| e.to_string())
    }
    let s = c.compile(s)?;
    if let Expr::Literal(Literal::String(text), span) = p {
        let re = build(text).map_err(|e| crate::expr::invalid(c.text, *span, e))?;
        return Ok(Box::new(move |ctx| {
            Ok(match str_arg(&s(ctx)?)? {
                Some(s) => position(s, re.find(s).map(|m| m.start())),
                None => Value::Null,
            })
        }));
    }
    let p = c.compile(p)?;
    Ok(Box::new(move |ctx| {
        let (s, p) = (s(ctx)?, p(ctx)?);
        Ok(match (str_arg(&s)?, str_arg(&p)?) {
            (Some(s), Some(p)) => {
                let re = build(p).map_err(EvalError::Type)?;
                position(s, re.find(s).map(|m| m.start()))
            }
            _ => Value::Null,
        })
    }))
}

/// `GetMetadataPropertyValue(input, 'property')`: the property is resolved once.
fn metadata_property(c: &mut ExprCompiler, call: &FunctionCall) -> Result<Eval, EngineError> {
    let [Expr::Column(..), Expr::Literal(Literal::String(name), span)] = call.args.as_slice()
    else {
        return Err(crate::expr::invalid(
            c.text,
            call.span,
            "GetMetadataPropertyValue takes an input alias and a property name in quotes",
        )
        .with_help("e.g. GetMetadataPropertyValue(input, 'EventEnqueuedUtcTime')"));
    };
    let Some(prop) = crate::meta::Property::parse(name) else {
        return Err(crate::expr::invalid(
            c.text,
            *span,
            format!("unknown metadata property '{name}'"),
        )
        .with_help(
            "valid: EventEnqueuedUtcTime, EventProcessedUtcTime, PartitionId, Offset, EventId, \
             EventHub (all as a record), [EventHub].[...] of these, [User] or [User].[name]",
        ));
    };
    c.reads_metadata = true;
    Ok(Box::new(move |_| Ok(prop.read())))
}

fn arity(c: &ExprCompiler, call: &FunctionCall) -> EngineError {
    crate::expr::unsupported(
        c.text,
        call.span,
        format!(
            "{}(...) with {} arguments",
            call.dotted_name(),
            call.args.len()
        ),
    )
}

fn str_arg(v: &Value) -> Result<Option<&str>, EvalError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        v => Err(EvalError::Type(format!(
            "expected nvarchar(max), found {}",
            v.type_name()
        ))),
    }
}

/// `LEFT(s, n)` / `RIGHT(s, n)`.
fn take_chars(a: &[Value], right: bool) -> Result<Value, EvalError> {
    let (Some(s), Some(n)) = (str_arg(&a[0])?, int_arg(&a[1])?) else {
        return Ok(Value::Null);
    };
    let n = usize::try_from(n).map_err(|_| EvalError::Type("a negative length".into()))?;
    let count = s.chars().count();
    let skip = if right { count.saturating_sub(n) } else { 0 };
    Ok(s.chars()
        .skip(skip)
        .take(n)
        .collect::<String>()
        .as_str()
        .into())
}

/// `STUFF(s, start, length, insert)`: deletes `length` characters at 1-based `start`
/// and inserts `insert` there; NULL when `start` is outside the string.
fn stuff(a: &[Value]) -> Result<Value, EvalError> {
    let (Some(s), Some(start), Some(len), Some(ins)) = (
        str_arg(&a[0])?,
        int_arg(&a[1])?,
        int_arg(&a[2])?,
        str_arg(&a[3])?,
    ) else {
        return Ok(Value::Null);
    };
    let chars: Vec<char> = s.chars().collect();
    let (Ok(start), Ok(len)) = (usize::try_from(start), usize::try_from(len)) else {
        return Ok(Value::Null);
    };
    if start == 0 || start > chars.len() {
        return Ok(Value::Null);
    }
    let from = start - 1;
    let to = from.saturating_add(len).min(chars.len());
    let out: String = chars[..from]
        .iter()
        .chain(ins.chars().collect::<Vec<_>>().iter())
        .chain(&chars[to..])
        .collect();
    Ok(out.as_str().into())
}

/// `TRANSLATE(s, from, to)`: replaces each character of `from` by the one at the same
/// position in `to` (both must have the same length).
fn translate(a: &[Value]) -> Result<Value, EvalError> {
    let (Some(s), Some(from), Some(to)) = (str_arg(&a[0])?, str_arg(&a[1])?, str_arg(&a[2])?)
    else {
        return Ok(Value::Null);
    };
    let (from, to): (Vec<char>, Vec<char>) = (from.chars().collect(), to.chars().collect());
    if from.len() != to.len() {
        return Err(EvalError::Type(
            "TRANSLATE needs characters and translations of equal length".into(),
        ));
    }
    let out: String = s
        .chars()
        .map(|c| from.iter().position(|f| *f == c).map_or(c, |i| to[i]))
        .collect();
    Ok(out.as_str().into())
}

fn replace(a: &[Value]) -> Result<Value, EvalError> {
    match (str_arg(&a[0])?, str_arg(&a[1])?, str_arg(&a[2])?) {
        (Some(s), Some(from), Some(to)) if !from.is_empty() => {
            Ok(s.replace(from, to).as_str().into())
        }
        (Some(s), Some(_), Some(_)) => Ok(s.into()),
        _ => Ok(Value::Null),
    }
}

/// `CHARINDEX(needle, haystack [, start])`: 1-based position, 0 when absent.
fn charindex(a: &[Value]) -> Result<Value, EvalError> {
    let (Some(needle), Some(hay)) = (str_arg(&a[0])?, str_arg(&a[1])?) else {
        return Ok(Value::Null);
    };
    let start = match a.get(2) {
        Some(v) => int_arg(v)?.unwrap_or(1).max(1) as usize,
        None => 1,
    };
    let chars: Vec<char> = hay.chars().collect();
    let needle: Vec<char> = needle.chars().collect();
    if needle.is_empty() || start > chars.len() {
        return Ok(Value::BigInt(0));
    }
    let found = chars[start - 1..]
        .windows(needle.len())
        .position(|w| w == needle.as_slice());
    Ok(Value::BigInt(found.map_or(0, |i| (i + start) as i64)))
}

fn concat_ws(a: &[Value]) -> Result<Value, EvalError> {
    let Some(sep) = str_arg(&a[0])? else {
        return Ok(Value::Null);
    };
    let parts: Vec<String> = a[1..]
        .iter()
        .filter(|v| !v.is_null())
        .map(to_text)
        .collect();
    Ok(parts.join(sep).as_str().into())
}

/// `REPLICATE(s, n)`: `s` repeated `n` times (NULL for a negative `n`); at most 1 MiB.
fn replicate(a: &[Value]) -> Result<Value, EvalError> {
    let (Some(s), Some(n)) = (str_arg(&a[0])?, int_arg(&a[1])?) else {
        return Ok(Value::Null);
    };
    // A negative count gives NULL, as in T-SQL (SPACE(-1) too).
    let Ok(n) = usize::try_from(n) else {
        return Ok(Value::Null);
    };
    if s.len().saturating_mul(n) > 1 << 20 {
        return Err(EvalError::Type("REPLICATE result larger than 1 MiB".into()));
    }
    Ok(s.repeat(n).as_str().into())
}

fn float1(v: &Value, f: fn(f64) -> f64) -> Result<Value, EvalError> {
    match v {
        Value::Null => Ok(Value::Null),
        v => v
            .as_f64()
            .map(|x| Value::Float(f(x)))
            .ok_or_else(|| EvalError::Type(format!("expected a number, found {}", v.type_name()))),
    }
}

fn float2(a: &[Value], f: fn(f64, f64) -> f64) -> Result<Value, EvalError> {
    match (&a[0], &a[1]) {
        (Value::Null, _) | (_, Value::Null) => Ok(Value::Null),
        (x, y) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => Ok(Value::Float(f(x, y))),
            _ => Err(EvalError::Type(format!(
                "expected numbers, found {} and {}",
                x.type_name(),
                y.type_name()
            ))),
        },
    }
}

/// `POWER(x, y)`: of the type of `x`, as ASA documents (a bigint power is exact, or
/// truncated when `y` is fractional or negative).
fn power(a: &[Value]) -> Result<Value, EvalError> {
    match (&a[0], &a[1]) {
        (Value::BigInt(x), Value::BigInt(y)) if *y >= 0 => u32::try_from(*y)
            .ok()
            .and_then(|y| x.checked_pow(y))
            .map(Value::BigInt)
            .ok_or(EvalError::Overflow),
        (Value::BigInt(_), _) => match float2(a, f64::powf)? {
            Value::Float(f) if f.is_finite() && f.abs() < 9.2e18 => {
                Ok(Value::BigInt(f.trunc() as i64))
            }
            Value::Float(_) => Err(EvalError::Overflow),
            other => Ok(other),
        },
        _ => float2(a, f64::powf),
    }
}

/// `GetRecordPropertyValue(record, 'a.b')`.
fn record_property(a: &[Value]) -> Result<Value, EvalError> {
    let Some(path) = str_arg(&a[1])? else {
        return Ok(Value::Null);
    };
    let mut v = a[0].clone();
    for p in path.split('.') {
        v = match &v {
            Value::Record(r) => r.get(p).cloned().unwrap_or_default(),
            _ => Value::Null,
        };
    }
    Ok(v)
}

/// `DATETIMEFROMPARTS(year, month, day, hour, minute, second, millisecond)`.
fn datetime_from_parts(a: &[Value]) -> Result<Value, EvalError> {
    let mut p = [0i64; 7];
    for (slot, v) in p.iter_mut().zip(a) {
        match int_arg(v)? {
            Some(x) => *slot = x,
            None => return Ok(Value::Null),
        }
    }
    let [y, mo, d, h, mi, s, ms] = p;
    let valid = (1..=9999).contains(&y)
        && (1..=12).contains(&mo)
        && d >= 1
        && d <= days_in_month(y, mo as u32) as i64
        && (0..24).contains(&h)
        && (0..60).contains(&mi)
        && (0..60).contains(&s)
        && (0..1000).contains(&ms);
    if !valid {
        return Err(EvalError::Type(
            "DATETIMEFROMPARTS arguments out of range".into(),
        ));
    }
    let secs = h * 3600 + mi * 60 + s;
    Ok(Value::DateTime(
        days_from_civil(y, mo as u32, d as u32) * TICKS_PER_DAY + secs * 10_000_000 + ms * 10_000,
    ))
}

fn string1(v: &Value, f: impl Fn(&str) -> Value) -> Result<Value, EvalError> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::String(s) => Ok(f(s)),
        v => Err(EvalError::Type(format!(
            "expected nvarchar(max), found {}",
            v.type_name()
        ))),
    }
}

fn num1(
    v: &Value,
    int: fn(i64) -> Result<i64, EvalError>,
    float: fn(f64) -> f64,
) -> Result<Value, EvalError> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::BigInt(i) => int(*i).map(Value::BigInt),
        Value::Float(f) => Ok(Value::Float(float(*f))),
        v => Err(EvalError::Type(format!(
            "expected a number, found {}",
            v.type_name()
        ))),
    }
}

fn int_arg(v: &Value) -> Result<Option<i64>, EvalError> {
    match v {
        Value::Null => Ok(None),
        Value::BigInt(i) => Ok(Some(*i)),
        Value::Float(f) if f.is_finite() => Ok(Some(f.trunc() as i64)),
        v => Err(EvalError::Type(format!(
            "expected bigint, found {}",
            v.type_name()
        ))),
    }
}

/// `SUBSTRING(s, start, length)`, 1-based like T-SQL: positions before 1 eat into the length.
fn substring(a: &[Value]) -> Result<Value, EvalError> {
    let (Some(start), Some(len)) = (int_arg(&a[1])?, int_arg(&a[2])?) else {
        return Ok(Value::Null);
    };
    if len < 0 {
        return Err(EvalError::Type(
            "SUBSTRING length must not be negative".into(),
        ));
    }
    let end = start.saturating_add(len);
    let from = start.max(1);
    string1(&a[0], |s| {
        let take = end.saturating_sub(from).max(0) as usize;
        Value::String(
            s.chars()
                .skip((from - 1) as usize)
                .take(take)
                .collect::<String>()
                .into(),
        )
    })
}

/// `ROUND(x [, digits])`: half away from zero; bigint stays bigint.
fn round(a: &[Value]) -> Result<Value, EvalError> {
    let digits = match a.get(1) {
        Some(d) => match int_arg(d)? {
            Some(d) => d.clamp(-18, 18) as i32,
            None => return Ok(Value::Null),
        },
        None => 0,
    };
    match &a[0] {
        Value::Float(f) => {
            let m = 10f64.powi(digits);
            Ok(Value::Float((f * m).round() / m))
        }
        Value::BigInt(i) if digits < 0 => {
            let m = 10i64.pow(digits.unsigned_abs());
            let r = (i128::from(*i).abs() + i128::from(m / 2)) / i128::from(m) * i128::from(m);
            let r = if *i < 0 { -r } else { r };
            i64::try_from(r)
                .map(Value::BigInt)
                .map_err(|_| EvalError::Overflow)
        }
        v => num1(v, Ok, f64::round),
    }
}

/// Date parts of DATEADD, DATEDIFF and DATEPART, with ASA's abbreviations.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DatePart {
    Year,
    Quarter,
    Month,
    DayOfYear,
    Day,
    Week,
    Weekday,
    Hour,
    Minute,
    Second,
    Millisecond,
    Microsecond,
    Nanosecond,
}

fn date_part(name: &str) -> Option<DatePart> {
    use DatePart::*;
    Some(match name.to_ascii_lowercase().as_str() {
        "year" | "yy" | "yyyy" => Year,
        "quarter" | "qq" | "q" => Quarter,
        "month" | "mm" | "m" => Month,
        "dayofyear" | "dy" | "y" => DayOfYear,
        "day" | "dd" | "d" => Day,
        "week" | "wk" | "ww" => Week,
        "weekday" | "dw" | "w" => Weekday,
        "hour" | "hh" => Hour,
        "minute" | "mi" | "n" => Minute,
        "second" | "ss" | "s" => Second,
        "millisecond" | "ms" => Millisecond,
        "microsecond" | "mcs" => Microsecond,
        "nanosecond" | "ns" => Nanosecond,
        _ => return None,
    })
}

/// Fixed length of sub-day parts in ticks (nanoseconds are below a tick).
fn part_ticks(p: DatePart) -> Option<i64> {
    Some(match p {
        DatePart::Hour => 36_000_000_000,
        DatePart::Minute => 600_000_000,
        DatePart::Second => 10_000_000,
        DatePart::Millisecond => 10_000,
        DatePart::Microsecond => 10,
        _ => return None,
    })
}

fn date_arg(v: &Value) -> Result<Option<i64>, EvalError> {
    match v {
        Value::Null => Ok(None),
        Value::DateTime(t) => Ok(Some(*t)),
        Value::String(s) => parse_datetime(s)
            .map(Some)
            .ok_or_else(|| EvalError::Type(format!("'{s}' is not a datetime"))),
        v => Err(EvalError::Type(format!(
            "expected datetime, found {}",
            v.type_name()
        ))),
    }
}

fn date_function(
    c: &mut ExprCompiler,
    name: &str,
    call: &FunctionCall,
) -> Result<Eval, EngineError> {
    let want = if matches!(name, "datepart" | "datename") {
        2
    } else {
        3
    };
    let bad = |what: &str| {
        crate::expr::unsupported(
            c.text,
            call.span,
            format!("{}(...) {what}", call.dotted_name()),
        )
    };
    if call.args.len() != want {
        return Err(bad("with a wrong number of arguments"));
    }
    let unit = match &call.args[0] {
        Expr::Column(parts, _) if parts.len() == 1 => date_part(&parts[0].name),
        Expr::Literal(Literal::String(s), _) => date_part(s),
        _ => None,
    }
    .ok_or_else(|| bad("with an unknown date part"))?;
    let a = c.compile(&call.args[1])?;
    if name == "datepart" {
        return Ok(Box::new(move |ctx| part(unit, &a(ctx)?)));
    }
    if name == "datename" {
        return Ok(Box::new(move |ctx| datename(unit, &a(ctx)?)));
    }
    let b = c.compile(&call.args[2])?;
    Ok(if name == "dateadd" {
        Box::new(move |ctx| match (int_arg(&a(ctx)?)?, date_arg(&b(ctx)?)?) {
            (Some(n), Some(t)) => dateadd(unit, n, t).map(Value::DateTime),
            _ => Ok(Value::Null),
        })
    } else {
        Box::new(
            move |ctx| match (date_arg(&a(ctx)?)?, date_arg(&b(ctx)?)?) {
                (Some(x), Some(y)) => datediff(unit, x, y).map(Value::BigInt),
                _ => Ok(Value::Null),
            },
        )
    })
}

fn split(t: i64) -> (i64, u32, u32, i64) {
    let days = t.div_euclid(TICKS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, t.rem_euclid(TICKS_PER_DAY))
}

fn dateadd(p: DatePart, n: i64, t: i64) -> Result<i64, EvalError> {
    let months = match p {
        DatePart::Year => n.checked_mul(12),
        DatePart::Quarter => n.checked_mul(3),
        DatePart::Month => Some(n),
        _ => None,
    };
    let delta = match (months, p) {
        (Some(months), _) => {
            let (y, m, d, rem) = split(t);
            let total = (y * 12 + m as i64 - 1)
                .checked_add(months)
                .ok_or(EvalError::Overflow)?;
            let (ny, nm) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
            if !(-1_000_000..=1_000_000).contains(&ny) {
                return Err(EvalError::Overflow);
            }
            let nd = d.min(days_in_month(ny, nm));
            return days_from_civil(ny, nm, nd)
                .checked_mul(TICKS_PER_DAY)
                .and_then(|x| x.checked_add(rem))
                .ok_or(EvalError::Overflow);
        }
        (None, DatePart::DayOfYear | DatePart::Day | DatePart::Weekday) => {
            n.checked_mul(TICKS_PER_DAY)
        }
        (None, DatePart::Week) => n.checked_mul(7 * TICKS_PER_DAY),
        (None, DatePart::Nanosecond) => Some(n / 100),
        (None, p) => part_ticks(p).and_then(|u| n.checked_mul(u)),
    };
    delta
        .and_then(|d| t.checked_add(d))
        .ok_or(EvalError::Overflow)
}

/// Boundaries of `p` crossed from `a` to `b` (T-SQL semantics).
fn datediff(p: DatePart, a: i64, b: i64) -> Result<i64, EvalError> {
    let (ya, ma, _, _) = split(a);
    let (yb, mb, _, _) = split(b);
    let days = |t: i64| t.div_euclid(TICKS_PER_DAY);
    Ok(match p {
        DatePart::Year => yb - ya,
        DatePart::Quarter => (yb * 4 + (mb as i64 - 1) / 3) - (ya * 4 + (ma as i64 - 1) / 3),
        DatePart::Month => (yb * 12 + mb as i64) - (ya * 12 + ma as i64),
        DatePart::DayOfYear | DatePart::Day | DatePart::Weekday => days(b) - days(a),
        // Weeks start on Sunday; 1970-01-01 was a Thursday.
        DatePart::Week => (days(b) + 4).div_euclid(7) - (days(a) + 4).div_euclid(7),
        DatePart::Nanosecond => b
            .checked_sub(a)
            .and_then(|d| d.checked_mul(100))
            .ok_or(EvalError::Overflow)?,
        p => {
            let u = part_ticks(p).unwrap_or(1);
            b.div_euclid(u) - a.div_euclid(u)
        }
    })
}

/// `DATENAME(part, d)`: month and weekday names in English, other parts as digits.
fn datename(p: DatePart, v: &Value) -> Result<Value, EvalError> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    let n = match part(p, v)? {
        Value::BigInt(n) => n,
        other => return Ok(other),
    };
    let name = match p {
        DatePart::Month => MONTHS.get((n - 1) as usize).map(|m| m.to_string()),
        DatePart::Weekday => DAYS.get((n - 1) as usize).map(|d| d.to_string()),
        _ => None,
    };
    Ok(name.unwrap_or_else(|| n.to_string()).as_str().into())
}

fn part(p: DatePart, v: &Value) -> Result<Value, EvalError> {
    let Some(t) = date_arg(v)? else {
        return Ok(Value::Null);
    };
    let (y, m, d, rem) = split(t);
    let days = t.div_euclid(TICKS_PER_DAY);
    let doy = days - days_from_civil(y, 1, 1) + 1;
    let weekday = (days + 4).rem_euclid(7) + 1; // 1 = Sunday
    Ok(Value::BigInt(match p {
        DatePart::Year => y,
        DatePart::Quarter => (m as i64 - 1) / 3 + 1,
        DatePart::Month => m as i64,
        DatePart::DayOfYear => doy,
        DatePart::Day => d as i64,
        DatePart::Week => {
            let jan1_weekday = (days_from_civil(y, 1, 1) + 4).rem_euclid(7);
            (doy - 1 + jan1_weekday) / 7 + 1
        }
        DatePart::Weekday => weekday,
        DatePart::Hour => rem / 36_000_000_000,
        DatePart::Minute => rem / 600_000_000 % 60,
        DatePart::Second => rem / 10_000_000 % 60,
        DatePart::Millisecond => rem / 10_000 % 1000,
        DatePart::Microsecond => rem / 10 % 1_000_000,
        DatePart::Nanosecond => rem % 10_000_000 * 100,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> i64 {
        parse_datetime(s).unwrap()
    }

    #[test]
    fn dateadd_clamps_month_ends() {
        assert_eq!(
            dateadd(DatePart::Month, 1, t("2024-01-31T10:00:00Z")),
            Ok(t("2024-02-29T10:00:00Z"))
        );
        assert_eq!(
            dateadd(DatePart::Minute, -90, t("2024-01-01T01:00:00Z")),
            Ok(t("2023-12-31T23:30:00Z"))
        );
        assert_eq!(dateadd(DatePart::Millisecond, 1500, 0), Ok(15_000_000));
    }

    #[test]
    fn datediff_counts_boundaries() {
        assert_eq!(
            datediff(DatePart::Year, t("2023-12-31T23:59:59Z"), t("2024-01-01")),
            Ok(1)
        );
        assert_eq!(
            datediff(
                DatePart::Second,
                t("2024-01-01T00:00:00Z"),
                t("2024-01-01T00:01:00Z")
            ),
            Ok(60)
        );
        assert_eq!(
            datediff(
                DatePart::Minute,
                t("2024-01-01T00:01:00Z"),
                t("2024-01-01T00:00:00Z")
            ),
            Ok(-1)
        );
    }

    #[test]
    fn datepart_reads_fields() {
        let v = Value::DateTime(t("2024-03-05T06:07:08.009Z"));
        let p = |d| part(d, &v).unwrap();
        assert_eq!(p(DatePart::Year), Value::BigInt(2024));
        assert_eq!(p(DatePart::Quarter), Value::BigInt(1));
        assert_eq!(p(DatePart::DayOfYear), Value::BigInt(65));
        assert_eq!(p(DatePart::Weekday), Value::BigInt(3)); // a Tuesday
        assert_eq!(p(DatePart::Second), Value::BigInt(8));
        assert_eq!(p(DatePart::Millisecond), Value::BigInt(9));
    }
}

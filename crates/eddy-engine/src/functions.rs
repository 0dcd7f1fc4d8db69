//! Scalar functions: strings, maths and dates. Each is compiled once into a closure
//! over its compiled arguments; date-part names are resolved at compile time.

use crate::error::{EngineError, EvalError};
use crate::expr::{Eval, ExprCompiler};
use crate::time::{TICKS_PER_DAY, civil_from_days, days_from_civil, days_in_month, format_datetime, parse_datetime};
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
pub(crate) fn compile_scalar(c: &mut ExprCompiler, name: &str, call: &FunctionCall) -> Result<Eval, EngineError> {
    let (min, max, f): (usize, usize, Fun) = match name {
        "dateadd" | "datediff" | "datepart" => return date_function(c, name, call),
        "upper" => (1, 1, |a| string1(&a[0], |s| Value::String(s.to_uppercase().into()))),
        "lower" => (1, 1, |a| string1(&a[0], |s| Value::String(s.to_lowercase().into()))),
        "len" => (1, 1, |a| string1(&a[0], |s| Value::BigInt(s.chars().count() as i64))),
        "concat" => (1, usize::MAX, |a| Ok(Value::String(a.iter().map(to_text).collect::<String>().into()))),
        "substring" => (3, 3, substring),
        "abs" => (1, 1, |a| num1(&a[0], |i| i.checked_abs().ok_or(EvalError::Overflow), |f| f.abs())),
        "floor" => (1, 1, |a| num1(&a[0], Ok, f64::floor)),
        "ceiling" => (1, 1, |a| num1(&a[0], Ok, f64::ceil)),
        "round" => (1, 2, round),
        "year" => (1, 1, |a| part(DatePart::Year, &a[0])),
        "month" => (1, 1, |a| part(DatePart::Month, &a[0])),
        "day" => (1, 1, |a| part(DatePart::Day, &a[0])),
        _ => return Err(crate::expr::unsupported(c.text, call.span, format!("function {}", call.dotted_name()))),
    };
    if call.args.len() < min || call.args.len() > max || call.star {
        return Err(crate::expr::unsupported(c.text, call.span, format!("{}(...) with {} arguments", call.dotted_name(), call.args.len())));
    }
    let args = call.args.iter().map(|a| c.compile(a)).collect::<Result<Vec<_>, _>>()?;
    Ok(Box::new(move |ctx| {
        let vals = args.iter().map(|a| a(ctx)).collect::<Result<Vec<_>, _>>()?;
        f(&vals)
    }))
}

fn string1(v: &Value, f: impl Fn(&str) -> Value) -> Result<Value, EvalError> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::String(s) => Ok(f(s)),
        v => Err(EvalError::Type(format!("expected nvarchar(max), found {}", v.type_name()))),
    }
}

fn num1(v: &Value, int: fn(i64) -> Result<i64, EvalError>, float: fn(f64) -> f64) -> Result<Value, EvalError> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::BigInt(i) => int(*i).map(Value::BigInt),
        Value::Float(f) => Ok(Value::Float(float(*f))),
        v => Err(EvalError::Type(format!("expected a number, found {}", v.type_name()))),
    }
}

fn int_arg(v: &Value) -> Result<Option<i64>, EvalError> {
    match v {
        Value::Null => Ok(None),
        Value::BigInt(i) => Ok(Some(*i)),
        Value::Float(f) if f.is_finite() => Ok(Some(f.trunc() as i64)),
        v => Err(EvalError::Type(format!("expected bigint, found {}", v.type_name()))),
    }
}

/// `SUBSTRING(s, start, length)`, 1-based like T-SQL: positions before 1 eat into the length.
fn substring(a: &[Value]) -> Result<Value, EvalError> {
    let (Some(start), Some(len)) = (int_arg(&a[1])?, int_arg(&a[2])?) else { return Ok(Value::Null) };
    if len < 0 {
        return Err(EvalError::Type("SUBSTRING length must not be negative".into()));
    }
    let end = start.saturating_add(len);
    let from = start.max(1);
    string1(&a[0], |s| {
        let take = (end - from).max(0) as usize;
        Value::String(s.chars().skip((from - 1) as usize).take(take).collect::<String>().into())
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
            let r = (i.abs() + m / 2) / m * m;
            Ok(Value::BigInt(if *i < 0 { -r } else { r }))
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
        Value::String(s) => parse_datetime(s).map(Some).ok_or_else(|| EvalError::Type(format!("'{s}' is not a datetime"))),
        v => Err(EvalError::Type(format!("expected datetime, found {}", v.type_name()))),
    }
}

fn date_function(c: &mut ExprCompiler, name: &str, call: &FunctionCall) -> Result<Eval, EngineError> {
    let want = if name == "datepart" { 2 } else { 3 };
    let bad = |what: &str| crate::expr::unsupported(c.text, call.span, format!("{}(...) {what}", call.dotted_name()));
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
    let b = c.compile(&call.args[2])?;
    Ok(if name == "dateadd" {
        Box::new(move |ctx| match (int_arg(&a(ctx)?)?, date_arg(&b(ctx)?)?) {
            (Some(n), Some(t)) => dateadd(unit, n, t).map(Value::DateTime),
            _ => Ok(Value::Null),
        })
    } else {
        Box::new(move |ctx| match (date_arg(&a(ctx)?)?, date_arg(&b(ctx)?)?) {
            (Some(x), Some(y)) => datediff(unit, x, y).map(Value::BigInt),
            _ => Ok(Value::Null),
        })
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
            let total = (y * 12 + m as i64 - 1).checked_add(months).ok_or(EvalError::Overflow)?;
            let (ny, nm) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
            let nd = d.min(days_in_month(ny, nm));
            return days_from_civil(ny, nm, nd).checked_mul(TICKS_PER_DAY).and_then(|x| x.checked_add(rem)).ok_or(EvalError::Overflow);
        }
        (None, DatePart::DayOfYear | DatePart::Day | DatePart::Weekday) => n.checked_mul(TICKS_PER_DAY),
        (None, DatePart::Week) => n.checked_mul(7 * TICKS_PER_DAY),
        (None, DatePart::Nanosecond) => Some(n / 100),
        (None, p) => part_ticks(p).and_then(|u| n.checked_mul(u)),
    };
    delta.and_then(|d| t.checked_add(d)).ok_or(EvalError::Overflow)
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
        DatePart::Nanosecond => b.checked_sub(a).and_then(|d| d.checked_mul(100)).ok_or(EvalError::Overflow)?,
        p => {
            let u = part_ticks(p).unwrap_or(1);
            b.div_euclid(u) - a.div_euclid(u)
        }
    })
}

fn part(p: DatePart, v: &Value) -> Result<Value, EvalError> {
    let Some(t) = date_arg(v)? else { return Ok(Value::Null) };
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
        assert_eq!(dateadd(DatePart::Month, 1, t("2024-01-31T10:00:00Z")), Ok(t("2024-02-29T10:00:00Z")));
        assert_eq!(dateadd(DatePart::Minute, -90, t("2024-01-01T01:00:00Z")), Ok(t("2023-12-31T23:30:00Z")));
        assert_eq!(dateadd(DatePart::Millisecond, 1500, 0), Ok(15_000_000));
    }

    #[test]
    fn datediff_counts_boundaries() {
        assert_eq!(datediff(DatePart::Year, t("2023-12-31T23:59:59Z"), t("2024-01-01")), Ok(1));
        assert_eq!(datediff(DatePart::Second, t("2024-01-01T00:00:00Z"), t("2024-01-01T00:01:00Z")), Ok(60));
        assert_eq!(datediff(DatePart::Minute, t("2024-01-01T00:01:00Z"), t("2024-01-01T00:00:00Z")), Ok(-1));
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

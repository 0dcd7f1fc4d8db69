//! Splitting a body of JSON events into one slice per event.
//!
//! A body is one JSON object, a JSON array of objects, or NDJSON (one object per line;
//! blank lines are skipped). Every event is checked to be a well-formed JSON object
//! without building it, so a bad event is reported with its line before anything is
//! stored: the caller either takes all events or none.

use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use std::fmt;

/// Why a body was refused, with the 1-based line of the offending event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct BodyError {
    /// 1-based line in the body where the problem is.
    pub line: usize,
    /// What is wrong, for a person.
    pub message: String,
}

/// One event of a body with the line it starts on, so later stages can point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineEvent<'a> {
    /// 1-based line where the event starts.
    pub line: usize,
    /// The event's JSON object, exactly as written.
    pub json: &'a [u8],
}

/// Splits `body` into the JSON bytes of each event (objects only), in order.
pub fn split_events(body: &[u8]) -> Result<Vec<&[u8]>, BodyError> {
    Ok(split_events_with_lines(body)?
        .into_iter()
        .map(|e| e.json)
        .collect())
}

/// Like [`split_events`], keeping each event's line for error messages downstream.
pub fn split_events_with_lines(body: &[u8]) -> Result<Vec<LineEvent<'_>>, BodyError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match body.iter().position(|b| !b.is_ascii_whitespace()) {
        None => Ok(Vec::new()),
        Some(start) if body[start] == b'[' => split_array(body, start),
        Some(_) => split_lines(body),
    }
}

/// Checks that one line is a well-formed JSON object, for sources that set bad lines aside
/// (a folder's files) instead of refusing the whole body.
pub fn check_event(json: &[u8]) -> Result<(), String> {
    check_object(json).map_err(|e| e.to_string())
}

fn split_lines(body: &[u8]) -> Result<Vec<LineEvent<'_>>, BodyError> {
    let mut events = Vec::new();
    for (index, raw) in body.split(|&b| b == b'\n').enumerate() {
        let json = raw.trim_ascii();
        if json.is_empty() {
            continue;
        }
        let line = index + 1;
        if let Err(err) = check_object(json) {
            let by_line = error_at(line, &err);
            return if events.is_empty() {
                single_object(body, by_line)
            } else {
                Err(by_line)
            };
        }
        events.push(LineEvent { line, json });
    }
    Ok(events)
}

/// The first line did not parse alone: the body may be one object spread over lines.
/// If it is not, reports whichever error points further into the body, as that is
/// where the writer's mistake most likely is.
fn single_object(body: &[u8], by_line: BodyError) -> Result<Vec<LineEvent<'_>>, BodyError> {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    let line = 1 + count_newlines(&body[..start]);
    let json = body.trim_ascii();
    match check_object(json) {
        Ok(()) => Ok(vec![LineEvent { line, json }]),
        Err(err) => {
            let whole = error_at(line, &err);
            Err(if whole.line > by_line.line {
                whole
            } else {
                by_line
            })
        }
    }
}

fn split_array(body: &[u8], open: usize) -> Result<Vec<LineEvent<'_>>, BodyError> {
    let mut line = 1 + count_newlines(&body[..open]);
    let mut i = open + 1;
    let mut events = Vec::new();
    skip_whitespace(body, &mut i, &mut line);
    if body.get(i) == Some(&b']') {
        return finish_array(body, i + 1, line).map(|()| events);
    }
    loop {
        skip_whitespace(body, &mut i, &mut line);
        let (start, start_line) = (i, line);
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        let end = loop {
            let Some(&b) = body.get(i) else {
                return Err(BodyError {
                    line: start_line,
                    message: "unterminated JSON array".into(),
                });
            };
            match b {
                _ if in_string => {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                    }
                }
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth > 0 => depth -= 1,
                b',' | b']' if depth == 0 => break i,
                _ => {}
            }
            if b == b'\n' {
                line += 1;
            }
            i += 1;
        };
        let json = body[start..end].trim_ascii_end();
        if json.is_empty() {
            return Err(BodyError {
                line: start_line,
                message: "empty array element".into(),
            });
        }
        check_object(json).map_err(|err| error_at(start_line, &err))?;
        events.push(LineEvent {
            line: start_line,
            json,
        });
        i = end + 1;
        if body[end] == b']' {
            return finish_array(body, i, line).map(|()| events);
        }
    }
}

fn finish_array(body: &[u8], mut i: usize, mut line: usize) -> Result<(), BodyError> {
    skip_whitespace(body, &mut i, &mut line);
    if i < body.len() {
        return Err(BodyError {
            line,
            message: "unexpected data after the JSON array".into(),
        });
    }
    Ok(())
}

fn skip_whitespace(body: &[u8], i: &mut usize, line: &mut usize) {
    while let Some(&b) = body.get(*i) {
        if !b.is_ascii_whitespace() {
            break;
        }
        if b == b'\n' {
            *line += 1;
        }
        *i += 1;
    }
}

fn count_newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Places a parse error of an event that starts on `first_line` in the whole body.
fn error_at(first_line: usize, err: &serde_json::Error) -> BodyError {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text);
    BodyError {
        line: first_line + err.line().saturating_sub(1),
        message: format!("{message} (column {})", err.column()),
    }
}

/// Checks that `json` is exactly one well-formed JSON object, without building it.
fn check_object(json: &[u8]) -> Result<(), serde_json::Error> {
    serde_json::from_slice::<ObjectOnly>(json).map(|_| ())
}

struct ObjectOnly;

impl<'de> Deserialize<'de> for ObjectOnly {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ObjectVisitor)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = ObjectOnly;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ObjectOnly, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(ObjectOnly)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(body: &str) -> Vec<String> {
        let events = split_events(body.as_bytes()).expect("valid body");
        events
            .iter()
            .map(|e| String::from_utf8_lossy(e).into_owned())
            .collect()
    }

    fn error(body: &str) -> BodyError {
        split_events(body.as_bytes()).expect_err("invalid body")
    }

    #[test]
    fn one_object() {
        assert_eq!(texts(r#"  {"a": 1}  "#), [r#"{"a": 1}"#]);
    }

    #[test]
    fn pretty_printed_object_is_one_event() {
        assert_eq!(
            texts("{\n  \"a\": 1,\n  \"b\": [1, 2]\n}\n"),
            ["{\n  \"a\": 1,\n  \"b\": [1, 2]\n}"]
        );
    }

    #[test]
    fn array_of_objects_with_nested_brackets_and_strings() {
        let body = r#"[{"a": [1, {"b": 2}]}, {"s": "x,]}\"["}]"#;
        assert_eq!(
            texts(body),
            [r#"{"a": [1, {"b": 2}]}"#, r#"{"s": "x,]}\"["}"#]
        );
        assert!(texts(" [ ] ").is_empty());
    }

    #[test]
    fn ndjson_skips_blank_lines_and_crlf() {
        assert_eq!(
            texts("{\"a\":1}\r\n\r\n{\"a\":2}\n"),
            [r#"{"a":1}"#, r#"{"a":2}"#]
        );
        assert!(texts(" \n\n").is_empty());
    }

    #[test]
    fn lines_are_kept_per_event() {
        let events = split_events_with_lines(b"\n{\"a\":1}\n\n{\"a\":2}").expect("valid");
        assert_eq!(events.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 4]);
        let events = split_events_with_lines(b"[\n {\"a\":1},\n\n {\"a\":2}\n]").expect("valid");
        assert_eq!(events.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 4]);
    }

    #[test]
    fn bad_line_in_the_middle_names_its_line() {
        let err = error("{\"a\":1}\n{\"a\":2}\n{\"a\":}\n{\"a\":4}\n");
        assert_eq!(err.line, 3);
        assert!(err.to_string().starts_with("line 3: "), "{err}");
    }

    #[test]
    fn non_object_events_are_refused() {
        let err = error("{\"a\":1}\n42\n");
        assert_eq!(err.line, 2);
        assert!(
            err.message.contains("expected a JSON object"),
            "{}",
            err.message
        );
        assert_eq!(error("[{\"a\":1},\n \"x\"]").line, 2);
        assert_eq!(error("\n\n[1]").line, 3);
    }

    #[test]
    fn bad_first_line_of_ndjson() {
        assert_eq!(error("{\"a\":1,}\n{\"a\":2}\n").line, 1);
    }

    #[test]
    fn error_inside_pretty_printed_object_points_at_its_line() {
        assert_eq!(error("{\n  \"a\": 1,\n  \"b\": ?\n}").line, 3);
    }

    #[test]
    fn malformed_arrays() {
        assert_eq!(
            error("[{\"a\":1},\n{\"a\":2}").message,
            "unterminated JSON array"
        );
        assert_eq!(error("[{\"a\":1},]").message, "empty array element");
        assert_eq!(error("[{\"a\":1}]\n{}").line, 2);
    }
}

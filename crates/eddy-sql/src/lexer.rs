//! Turns query text into tokens with spans. Comments and whitespace are dropped here so
//! the parser never sees them.

use crate::diagnostic::Diagnostic;
use crate::span::Span;

/// One lexical unit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A bare word: keyword or identifier, decided by the parser.
    Word(String),
    /// `[bracketed name]`: never a keyword.
    Quoted(String),
    /// Integer literal.
    Int(i64),
    /// Literal with a decimal point or exponent.
    Float(f64),
    /// `'string'` with `''` unescaped.
    Str(String),
    /// Operator or punctuation.
    Punct(&'static str),
    /// End of the text.
    Eof,
}

/// A token and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// Two-character operators first so that `<=` is not read as `<` then `=`.
const PUNCTS: [&str; 21] = [
    "<>", "!=", "<=", ">=", "(", ")", ",", ".", ";", "*", "+", "-", "/", "%", "=", "<", ">", "&",
    "|", "^", "~",
];

/// Splits `text` into tokens, ending with [`Tok::Eof`].
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, Diagnostic> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let Some(c) = rest.chars().next() else { break };
        let start = i;
        if c.is_whitespace() {
            i += c.len_utf8();
        } else if rest.starts_with("--") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if let Some(body) = rest.strip_prefix("/*") {
            let Some(end) = body.find("*/") else {
                return Err(
                    Diagnostic::new("unterminated comment", Span::new(i, i + 2), text)
                        .with_help("close the comment with */"),
                );
            };
            i += end + 4;
        } else if c == '\'' {
            let (value, end) = quoted(text, i, '\'').ok_or_else(|| {
                Diagnostic::new("unterminated string literal", Span::new(i, i + 1), text)
                    .with_help("close the string with ' (write '' for a quote inside it)")
            })?;
            tokens.push(Token {
                tok: Tok::Str(value),
                span: Span::new(start, end),
            });
            i = end;
        } else if c == '[' {
            let (value, end) = quoted(text, i, ']').ok_or_else(|| {
                Diagnostic::new("unterminated bracketed name", Span::new(i, i + 1), text)
                    .with_help("close the name with ]")
            })?;
            tokens.push(Token {
                tok: Tok::Quoted(value),
                span: Span::new(start, end),
            });
            i = end;
        } else if c.is_ascii_digit() {
            let (tok, end) = number(text, i)?;
            tokens.push(Token {
                tok,
                span: Span::new(start, end),
            });
            i = end;
        } else if c.is_alphabetic() || c == '_' || c == '@' {
            let len = rest
                .find(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == '@' || ch == '$'))
                .unwrap_or(rest.len());
            tokens.push(Token {
                tok: Tok::Word(rest[..len].to_string()),
                span: Span::new(i, i + len),
            });
            i += len;
        } else if let Some(p) = PUNCTS.iter().find(|p| rest.starts_with(**p)) {
            tokens.push(Token {
                tok: Tok::Punct(p),
                span: Span::new(i, i + p.len()),
            });
            i += p.len();
        } else {
            let span = Span::new(i, i + c.len_utf8());
            let hint = if c == '"' {
                Some("strings use single quotes; names with spaces use [brackets]")
            } else {
                None
            };
            let mut d = Diagnostic::new(format!("unexpected character '{c}'"), span, text);
            if let Some(h) = hint {
                d = d.with_help(h);
            }
            return Err(d);
        }
    }
    // End of input is reported right after the last token, not after trailing comments.
    let end = tokens.last().map_or(0, |t: &Token| t.span.end);
    tokens.push(Token {
        tok: Tok::Eof,
        span: Span::new(end, end),
    });
    Ok(tokens)
}

/// Reads a quoted run starting at `open` (a `'` or `[`) up to `close`, where a doubled
/// `close` stands for itself. Returns the unescaped text and the end offset.
fn quoted(text: &str, open: usize, close: char) -> Option<(String, usize)> {
    let mut value = String::new();
    let mut chars = text[open + 1..].char_indices().peekable();
    while let Some((off, ch)) = chars.next() {
        if ch == close {
            if chars.peek().map(|&(_, n)| n) == Some(close) {
                chars.next();
                value.push(close);
            } else {
                return Some((value, open + 1 + off + ch.len_utf8()));
            }
        } else {
            value.push(ch);
        }
    }
    None
}

/// Reads `123`, `1.5`, `2e3`, `1.5E-2`.
fn number(text: &str, start: usize) -> Result<(Tok, usize), Diagnostic> {
    let b = text.as_bytes();
    let digits = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut end = digits(start);
    let mut float = false;
    if end + 1 < b.len() && b[end] == b'.' && b[end + 1].is_ascii_digit() {
        end = digits(end + 1);
        float = true;
    }
    if end < b.len() && (b[end] == b'e' || b[end] == b'E') {
        let mut j = end + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            end = digits(j);
            float = true;
        }
    }
    let s = &text[start..end];
    let span = Span::new(start, end);
    let bad = || Diagnostic::new(format!("number '{s}' is out of range"), span, text);
    if float {
        s.parse::<f64>()
            .map(|f| (Tok::Float(f), end))
            .map_err(|_| bad())
    } else {
        s.parse::<i64>()
            .map(|n| (Tok::Int(n), end))
            .map_err(|_| bad())
    }
}

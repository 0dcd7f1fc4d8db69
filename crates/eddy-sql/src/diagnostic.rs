//! The error users see: a message pinned to a span, with an optional help line and notes,
//! rendered like rustc's errors.

use crate::span::Span;
use std::fmt;

/// A problem in the query text, located at `line:column` (both 1-based, column in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong, e.g. `expected FROM, found 'WHERE'`.
    pub message: String,
    /// Where in the text.
    pub span: Span,
    /// 1-based line of the span's start.
    pub line: usize,
    /// 1-based column (in characters) of the span's start.
    pub column: usize,
    /// How to fix it, when we can tell.
    pub help: Option<String>,
    /// Extra context, e.g. where a name was first defined.
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// A diagnostic at `span`, with line and column computed from `text`.
    pub fn new(message: impl Into<String>, span: Span, text: &str) -> Diagnostic {
        let (line, column) = span.line_col(text);
        Diagnostic {
            message: message.into(),
            span,
            line,
            column,
            help: None,
            notes: Vec::new(),
        }
    }

    /// Adds the help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Adds a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// Renders rustc-style: message, `--> line:col`, the source line, carets under the
    /// span (up to the end of its first line), then notes and help.
    pub fn render(&self, text: &str) -> String {
        let line_text = text.lines().nth(self.line.saturating_sub(1)).unwrap_or("");
        let line_no = self.line.to_string();
        let pad = " ".repeat(line_no.len());
        let start = self.span.start.min(text.len());
        let end = self.span.end.clamp(start, text.len());
        let span_text = text.get(start..end).unwrap_or("");
        let first_line = span_text.split('\n').next().unwrap_or("");
        let prefix: String = line_text
            .chars()
            .take(self.column.saturating_sub(1))
            .collect();
        let mut out = format!(
            "error: {}\n{pad}--> {}:{}\n",
            self.message, self.line, self.column
        );
        out.push_str(&format!("{pad} |\n{line_no} | {line_text}\n"));
        let indent: String = prefix
            .chars()
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let carets = "^".repeat(first_line.chars().count().max(1));
        out.push_str(&format!("{pad} | {indent}{carets}\n"));
        for note in &self.notes {
            out.push_str(&format!("{pad} = note: {note}\n"));
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("{pad} = help: {help}\n"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )?;
        if let Some(help) = &self.help {
            write!(f, " (help: {help})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

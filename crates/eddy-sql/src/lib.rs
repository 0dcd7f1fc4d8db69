//! The Azure Stream Analytics query dialect: lexer, parser, syntax tree, binder and
//! diagnostics. Text goes in; a [`plan::BoundScript`] or a [`Diagnostic`] with a
//! line:column comes out. Nothing here executes a query.
//!
//! Layout, in the order data flows:
//! - `lexer`: text to tokens (comments dropped, `[names]` and `'strings'` unescaped);
//! - [`parser`]: tokens to the [`ast`] (recursive descent, precedence climbing);
//! - [`binder`]: checks the tree and resolves windows, steps, inputs and outputs into a
//!   [`plan::BoundScript`];
//! - [`functions`]: the catalogue of known functions and time units;
//! - [`diagnostic`]: the error type, rendered rustc-style; [`span`]: byte ranges.
#![deny(missing_docs)]

pub mod ast;
pub mod binder;
pub mod diagnostic;
pub mod functions;
mod lexer;
pub mod parser;
pub mod plan;
pub mod span;

pub use binder::{BindOptions, bind, bind_with};
pub use diagnostic::Diagnostic;
pub use functions::{function_kind, time_unit};
pub use parser::parse;

/// Parses and binds in one go: what a job submission needs.
pub fn compile(text: &str) -> Result<plan::BoundScript, Diagnostic> {
    bind(parse(text)?, text)
}

/// [`compile`] for a job that declares reference inputs.
pub fn compile_with(text: &str, options: &BindOptions) -> Result<plan::BoundScript, Diagnostic> {
    bind_with(parse(text)?, text, options)
}

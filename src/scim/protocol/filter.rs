//! SCIM filters (RFC 7644 §3.4.2.2): text → AST, canonical printing, and
//! in-memory matching of one multi-valued element.
//!
//! This module must never build SQL or know storage: the server compiles the
//! AST elsewhere. Parsing is bounded (length, depth, comparisons) and never
//! panics or overflows the stack on any input.

mod ast;
mod eval;
mod lexer;
mod parser;
#[cfg(test)]
pub(super) mod tests;

pub use ast::{AttrPath, CompValue, CompareOp, Filter};
pub use eval::matches;
pub use parser::{MAX_COMPARISONS, MAX_DEPTH};

use super::error::ScimError;

/// Longest filter text accepted, in bytes (a server limit under RFC 7644 §3.4.2.2).
pub const MAX_FILTER_LEN: usize = 8 * 1024;

/// Parses a filter expression (RFC 7644 §3.4.2.2 ABNF `FILTER`).
///
/// Errors are `invalidFilter` and name the column and what was expected.
pub fn parse_filter(text: &str) -> Result<Filter, ScimError> {
    if text.len() > MAX_FILTER_LEN {
        return Err(ScimError::invalid_filter(format!(
            "invalid filter: longer than {MAX_FILTER_LEN} bytes"
        )));
    }
    let toks = lexer::tokenize(text)?;
    parser::Parser::new(toks, text.chars().count()).parse_all()
}

impl Filter {
    /// Number of `Compare`/`Present` nodes (RFC 7644 §3.4.2.2), for limits and metrics.
    pub fn comparisons(&self) -> usize {
        match self {
            Filter::Compare { .. } | Filter::Present(_) => 1,
            Filter::And(l, r) | Filter::Or(l, r) => l.comparisons() + r.comparisons(),
            Filter::Not(f) | Filter::ValuePath { filter: f, .. } => f.comparisons(),
        }
    }
}

//! Recursive-descent parser for the filter grammar of RFC 7644 §3.4.2.2:
//! precedence `not` > `and` > `or`, grouping, value paths, all operators.
//!
//! It must never recurse without bound (nesting is capped), never panic, and
//! never accept trailing input: every error names the column and what was
//! expected.

use super::super::error::ScimError;
use super::ast::{AttrPath, CompValue, CompareOp, Filter};
use super::lexer::{Tok, Token};

/// Deepest nesting of parentheses, `not` and value paths accepted (server limit on RFC 7644 §3.4.2.2 filters).
pub const MAX_DEPTH: usize = 32;
/// Most comparisons (`Compare` and `Present` nodes) in one filter (server limit on RFC 7644 §3.4.2.2 filters).
pub const MAX_COMPARISONS: usize = 200;

pub(super) struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
    comparisons: usize,
    in_value_path: bool,
    end_col: usize,
}

fn is_kw(t: Option<&Tok>, kw: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
}

impl Parser {
    pub(super) fn new(toks: Vec<Token>, text_chars: usize) -> Self {
        Parser {
            toks,
            pos: 0,
            depth: 0,
            comparisons: 0,
            in_value_path: false,
            end_col: text_chars + 1,
        }
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn peek2(&self) -> Option<&Tok> {
        self.toks.get(self.pos + 1).map(|t| &t.tok)
    }

    fn col(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end_col, |t| t.col)
    }

    fn error(&self, expected: &str) -> ScimError {
        let found = self
            .peek()
            .map_or_else(|| "end of filter".to_string(), Tok::describe);
        ScimError::invalid_filter(format!(
            "invalid filter at column {}: expected {expected}, found {found}",
            self.col()
        ))
    }

    fn bump(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.tok.clone());
        self.pos += 1;
        t
    }

    fn enter(&mut self) -> Result<(), ScimError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ScimError::invalid_filter(format!(
                "invalid filter at column {}: nesting deeper than {MAX_DEPTH} levels",
                self.col()
            )));
        }
        Ok(())
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), ScimError> {
        if self.peek() == Some(&tok) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    /// Parses the whole token stream as one filter.
    pub(super) fn parse_all(mut self) -> Result<Filter, ScimError> {
        if self.toks.is_empty() {
            return Err(ScimError::invalid_filter(
                "invalid filter: the filter is empty",
            ));
        }
        let f = self.or_expr()?;
        if self.pos < self.toks.len() {
            return Err(self.error("'and', 'or' or the end of the filter"));
        }
        Ok(f)
    }

    fn or_expr(&mut self) -> Result<Filter, ScimError> {
        let mut left = self.and_expr()?;
        while is_kw(self.peek(), "or") {
            self.pos += 1;
            let right = self.and_expr()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Filter, ScimError> {
        let mut left = self.unary()?;
        while is_kw(self.peek(), "and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn group(&mut self) -> Result<Filter, ScimError> {
        self.expect(Tok::LParen, "'('")?;
        self.enter()?;
        let inner = self.or_expr()?;
        self.expect(Tok::RParen, "')'")?;
        self.depth -= 1;
        Ok(inner)
    }

    fn unary(&mut self) -> Result<Filter, ScimError> {
        match self.peek() {
            Some(Tok::LParen) => self.group(),
            Some(Tok::Word(w))
                if w.eq_ignore_ascii_case("not") && self.peek2() == Some(&Tok::LParen) =>
            {
                self.pos += 1;
                self.enter()?;
                let inner = self.group()?;
                self.depth -= 1;
                Ok(Filter::Not(Box::new(inner)))
            }
            _ => self.atom(),
        }
    }

    fn attr_path(&mut self) -> Result<AttrPath, ScimError> {
        let col = self.col();
        match self.peek() {
            Some(Tok::Word(w)) => {
                let p = AttrPath::parse(w).map_err(|reason| {
                    ScimError::invalid_filter(format!("invalid filter at column {col}: {reason}"))
                })?;
                self.pos += 1;
                Ok(p)
            }
            _ => Err(self.error("an attribute name, 'not' or '('")),
        }
    }

    fn count(&mut self) -> Result<(), ScimError> {
        self.comparisons += 1;
        if self.comparisons > MAX_COMPARISONS {
            return Err(ScimError::invalid_filter(format!(
                "invalid filter at column {}: more than {MAX_COMPARISONS} comparisons",
                self.col()
            )));
        }
        Ok(())
    }

    fn atom(&mut self) -> Result<Filter, ScimError> {
        let path = self.attr_path()?;
        match self.peek() {
            Some(Tok::LBracket) => {
                if self.in_value_path {
                    return Err(self.error("a comparison (value paths cannot be nested)"));
                }
                self.pos += 1;
                self.enter()?;
                self.in_value_path = true;
                let inner = self.or_expr()?;
                self.in_value_path = false;
                self.expect(Tok::RBracket, "']' or a logical operator")?;
                self.depth -= 1;
                let filter = match self.trailing_sub_attribute()? {
                    Some(extra) => Filter::And(Box::new(inner), Box::new(extra)),
                    None => inner,
                };
                Ok(Filter::ValuePath {
                    attr: path,
                    filter: Box::new(filter),
                })
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("pr") => {
                self.pos += 1;
                self.count()?;
                Ok(Filter::Present(path))
            }
            Some(Tok::Word(w)) => match CompareOp::parse(w) {
                Some(op) => {
                    self.pos += 1;
                    let value = self.comp_value()?;
                    self.count()?;
                    Ok(Filter::Compare { path, op, value })
                }
                None => Err(self.error("an operator (eq ne co sw ew gt ge lt le pr) or '['")),
            },
            _ => Err(self.error("an operator (eq ne co sw ew gt ge lt le pr) or '['")),
        }
    }

    /// Lenient extension: `emails[type eq "work"].value eq "x"` (sent by Microsoft
    /// Entra ID) is read as `emails[type eq "work" and value eq "x"]`.
    fn trailing_sub_attribute(&mut self) -> Result<Option<Filter>, ScimError> {
        let Some(Tok::Word(w)) = self.peek() else {
            return Ok(None);
        };
        let Some(name) = w.strip_prefix('.') else {
            return Ok(None);
        };
        let col = self.col();
        let path = AttrPath::parse(name)
            .ok()
            .filter(|p| p.urn.is_none() && p.sub.is_none())
            .ok_or_else(|| {
                ScimError::invalid_filter(format!(
                    "invalid filter at column {col}: '{name}' is not a valid sub-attribute"
                ))
            })?;
        self.pos += 1;
        match self.peek() {
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("pr") => {
                self.pos += 1;
                self.count()?;
                Ok(Some(Filter::Present(path)))
            }
            Some(Tok::Word(w)) => match CompareOp::parse(w) {
                Some(op) => {
                    self.pos += 1;
                    let value = self.comp_value()?;
                    self.count()?;
                    Ok(Some(Filter::Compare { path, op, value }))
                }
                None => Err(self.error("an operator (eq ne co sw ew gt ge lt le pr)")),
            },
            _ => Err(self.error("an operator (eq ne co sw ew gt ge lt le pr)")),
        }
    }

    fn comp_value(&mut self) -> Result<CompValue, ScimError> {
        let v = match self.peek() {
            Some(Tok::Str(_)) | Some(Tok::Num(_)) => match self.bump() {
                Some(Tok::Str(s)) => CompValue::Str(s),
                Some(Tok::Num(n)) => CompValue::Num(n),
                _ => CompValue::Null,
            },
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => CompValue::Bool(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => CompValue::Bool(false),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => CompValue::Null,
            _ => return Err(self.error("a value (string, number, true, false or null)")),
        };
        if matches!(v, CompValue::Bool(_) | CompValue::Null) {
            self.pos += 1;
        }
        Ok(v)
    }
}

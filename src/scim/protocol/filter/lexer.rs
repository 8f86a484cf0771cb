//! Tokenizer for SCIM filter text (RFC 7644 §3.4.2.2): parentheses, brackets,
//! words (attribute paths, operators, keywords), JSON strings and numbers.
//!
//! It must never panic on any input (it only walks `char`s) and never decide
//! grammar: which word is an operator is the parser's business.

use super::super::error::ScimError;
use serde_json::Number;

/// One token kind.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Word(String),
    Str(String),
    Num(Number),
}

impl Tok {
    /// How the token reads in an error message.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::Word(w) => format!("'{}'", shorten(w)),
            Tok::Str(_) => "a string".into(),
            Tok::Num(_) => "a number".into(),
        }
    }
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().nth(40).is_some() {
        out.push('…');
    }
    out
}

/// A token and its 1-based column (in characters).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub tok: Tok,
    pub col: usize,
}

fn word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '_' | '-' | '$')
}

fn err(col: usize, what: impl std::fmt::Display) -> ScimError {
    ScimError::invalid_filter(format!("invalid filter at column {col}: {what}"))
}

/// Splits `text` into tokens (RFC 7644 §3.4.2.2).
pub(super) fn tokenize(text: &str) -> Result<Vec<Token>, ScimError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let col = i + 1;
        let simple = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            _ => None,
        };
        if let Some(tok) = simple {
            out.push(Token { tok, col });
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' {
            let (s, next) = string(&chars, i)?;
            out.push(Token {
                tok: Tok::Str(s),
                col,
            });
            i = next;
        } else if c == '-' || c.is_ascii_digit() {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
            {
                i += 1;
            }
            let lit: String = chars[start..i].iter().collect();
            let n = serde_json::from_str::<Number>(&lit).map_err(|_| {
                err(
                    col,
                    format_args!("'{}' is not a valid number", shorten(&lit)),
                )
            })?;
            out.push(Token {
                tok: Tok::Num(n),
                col,
            });
        } else if word_char(c) {
            let start = i;
            while chars.get(i).is_some_and(|c| word_char(*c)) {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Word(chars[start..i].iter().collect()),
                col,
            });
        } else {
            return Err(err(col, format_args!("unexpected character {c:?}")));
        }
    }
    Ok(out)
}

fn hex4(chars: &[char], at: usize) -> Option<u32> {
    let mut v = 0u32;
    for k in 0..4 {
        v = v * 16 + chars.get(at + k)?.to_digit(16)?;
    }
    Some(v)
}

/// Reads a JSON string starting at the quote `chars[start]`; returns it and the index after it.
fn string(chars: &[char], start: usize) -> Result<(String, usize), ScimError> {
    let quote = chars.get(start).copied().unwrap_or('"');
    let mut s = String::new();
    let mut i = start + 1;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(err(start + 1, "unterminated string"));
        };
        i += 1;
        if c == quote {
            return Ok((s, i));
        }
        if c != '\\' {
            s.push(c);
            continue;
        }
        let Some(&e) = chars.get(i) else {
            return Err(err(i, "unterminated escape in string"));
        };
        i += 1;
        match e {
            '"' | '\\' | '/' | '\'' => s.push(e),
            'b' => s.push('\u{8}'),
            'f' => s.push('\u{c}'),
            'n' => s.push('\n'),
            'r' => s.push('\r'),
            't' => s.push('\t'),
            'u' => {
                let hi = hex4(chars, i).ok_or_else(|| err(i, "expected 4 hex digits after \\u"))?;
                i += 4;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    let lo = match (chars.get(i), chars.get(i + 1)) {
                        (Some('\\'), Some('u')) => hex4(chars, i + 2),
                        _ => None,
                    }
                    .filter(|lo| (0xDC00..0xE000).contains(lo))
                    .ok_or_else(|| err(i, "unpaired surrogate in \\u escape"))?;
                    i += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else {
                    hi
                };
                let ch = char::from_u32(code)
                    .ok_or_else(|| err(i, "invalid code point in \\u escape"))?;
                s.push(ch);
            }
            other => return Err(err(i, format_args!("invalid escape '\\{other}'"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(t: &str) -> Vec<Tok> {
        tokenize(t)
            .map(|v| v.into_iter().map(|t| t.tok).collect())
            .unwrap_or_default()
    }

    #[test]
    fn lexer_reads_words_strings_and_numbers() {
        assert_eq!(
            toks(r#"userName Eq "bj\"ensen" and x gt -1.5e3"#),
            vec![
                Tok::Word("userName".into()),
                Tok::Word("Eq".into()),
                Tok::Str("bj\"ensen".into()),
                Tok::Word("and".into()),
                Tok::Word("x".into()),
                Tok::Word("gt".into()),
                Tok::Num(serde_json::from_str("-1.5e3").unwrap_or_else(|_| Number::from(0))),
            ]
        );
    }

    #[test]
    fn lexer_decodes_unicode_escapes_and_surrogate_pairs() {
        assert_eq!(
            toks(r#""\u00e9\ud83d\ude00""#),
            vec![Tok::Str("é😀".into())]
        );
    }

    #[test]
    fn lexer_reports_column_of_unterminated_string() {
        let e = tokenize(r#"a eq "abc"#).err().map(|e| e.detail);
        assert_eq!(
            e.as_deref(),
            Some("invalid filter at column 6: unterminated string")
        );
    }

    #[test]
    fn lexer_rejects_lone_surrogate_and_bad_numbers() {
        assert!(tokenize(r#"a eq "\ud800""#).is_err());
        assert!(tokenize("a eq 1e99999").is_err());
        assert!(tokenize("a eq 1.2.3").is_err());
    }
}

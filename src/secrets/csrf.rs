//! CSRF protection for forms (double submit): a random value in a
//! `SameSite=Strict` cookie and in the form, compared in constant time.

use subtle::ConstantTimeEq;

use super::token;

/// A fresh CSRF value.
pub fn new_value() -> String {
    token::issue("csrf").secret
}

/// Whether a cookie's value is one this server could have issued.
pub fn well_formed(value: &str) -> bool {
    token::well_formed("csrf", value)
}

/// Whether the form's value matches the cookie's (both present, well formed).
pub fn matches(cookie: Option<&str>, form: &str) -> bool {
    match cookie {
        Some(c) if token::well_formed("csrf", c) => c.as_bytes().ct_eq(form.as_bytes()).into(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_values_must_match_the_cookie() {
        let t = new_value();
        assert!(matches(Some(&t), &t));
        assert!(!matches(Some(&t), "csrf_x"));
        assert!(!matches(None, &t));
        assert!(!matches(Some("junk"), "junk"));
    }
}

//! Protection for the public pages: CSRF tokens (double submit: a random
//! value in a SameSite=Strict cookie and in the form, compared in constant
//! time) and a sliding-window rate limiter. The limiter is per process; with
//! several instances each enforces its own window.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

use crate::tenancy::token;

pub const CSRF_COOKIE: &str = "onramp_csrf";

/// A fresh CSRF value.
pub fn new_csrf() -> String {
    token::issue("csrf").secret
}

/// Whether the form's value matches the cookie's (both present, well formed).
pub fn csrf_ok(cookie: Option<&str>, form: &str) -> bool {
    match cookie {
        Some(c) if token::well_formed("csrf", c) => c.as_bytes().ct_eq(form.as_bytes()).into(),
        _ => false,
    }
}

/// At most `limit` events per key within `window`.
pub struct RateLimiter {
    limit: usize,
    window: Duration,
    events: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateLimiter {
    pub fn new(limit: usize, window: Duration) -> Self {
        RateLimiter {
            limit,
            window,
            events: Mutex::new(HashMap::new()),
        }
    }

    /// Records an event for `key`; false when the key is over its limit.
    pub fn allow(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut map = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 50_000 {
            map.retain(|_, q| {
                q.back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        let q = map.entry(key.to_string()).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            q.pop_front();
        }
        if q.len() >= self.limit {
            return false;
        }
        q.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_values_must_match_the_cookie() {
        let t = new_csrf();
        assert!(csrf_ok(Some(&t), &t));
        assert!(!csrf_ok(Some(&t), "csrf_x"));
        assert!(!csrf_ok(None, &t));
        assert!(!csrf_ok(Some("junk"), "junk"));
    }

    #[test]
    fn the_limiter_allows_up_to_the_limit_per_key() {
        let l = RateLimiter::new(2, Duration::from_secs(60));
        assert!(l.allow("a") && l.allow("a"));
        assert!(!l.allow("a"));
        assert!(l.allow("b"));
    }
}

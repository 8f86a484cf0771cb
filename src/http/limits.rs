//! Limits that keep one client from taking what others need: a
//! sliding-window rate limiter (public forms) and a per-organization gate on
//! SCIM requests in progress. Both are per process; with several instances
//! each enforces its own.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

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

/// At most `per_tenant` requests of one organization in progress; more
/// wait up to `wait`, then are turned away (429). A directory that sends
/// more at once than this only queues behind itself.
pub struct TenantGate {
    per_tenant: usize,
    wait: Duration,
    tenants: Mutex<HashMap<Uuid, Arc<Semaphore>>>,
}

impl TenantGate {
    pub fn new(per_tenant: usize, wait: Duration) -> Self {
        TenantGate {
            per_tenant: per_tenant.max(1),
            wait,
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one request of `org`, or `None` when it waited too long.
    pub async fn enter(&self, org: Uuid) -> Option<OwnedSemaphorePermit> {
        let gate = {
            let mut map = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() > 10_000 {
                map.retain(|_, s| Arc::strong_count(s) > 1);
            }
            map.entry(org)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
                .clone()
        };
        if let Ok(permit) = gate.clone().try_acquire_owned() {
            return Some(permit);
        }
        tokio::time::timeout(self.wait, gate.acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_allows_up_to_the_limit_per_key() {
        let l = RateLimiter::new(2, Duration::from_secs(60));
        assert!(l.allow("a") && l.allow("a"));
        assert!(!l.allow("a"));
        assert!(l.allow("b"));
    }

    #[tokio::test]
    async fn a_busy_tenant_waits_and_is_turned_away_while_others_pass() {
        let gate = TenantGate::new(1, Duration::from_millis(20));
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let held = gate.enter(a).await.expect("first request of a");
        assert!(gate.enter(b).await.is_some(), "b is not held up by a");
        assert!(
            gate.enter(a).await.is_none(),
            "a's second waits, then is refused"
        );
        drop(held);
        assert!(gate.enter(a).await.is_some());
    }
}

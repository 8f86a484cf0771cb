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

/// At most `per_tenant` units of work of one organization in progress; more
/// wait up to `wait`, then are turned away (429). A request weighs one unit,
/// plus one for every 64 KiB of its body (a request at the body limit takes
/// a whole organization's share), so a tenant's in-progress work is bounded
/// by its cost, not by how many requests it splits it into. A directory
/// that sends more at once than this only queues behind itself.
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

    /// How many units a request with a body of `body_len` bytes weighs.
    pub fn weight(&self, body_len: u64) -> u32 {
        (1 + body_len / (64 * 1024)).min(self.per_tenant as u64) as u32
    }

    /// A place for a request of `org` weighing `weight`, or `None` when it
    /// waited too long.
    pub async fn enter(&self, org: Uuid, weight: u32) -> Option<OwnedSemaphorePermit> {
        let gate = {
            let mut map = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() > 10_000 {
                map.retain(|_, s| Arc::strong_count(s) > 1);
            }
            map.entry(org)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
                .clone()
        };
        let weight = weight.clamp(1, self.per_tenant as u32);
        if let Ok(permit) = gate.clone().try_acquire_many_owned(weight) {
            return Some(permit);
        }
        tokio::time::timeout(self.wait, gate.acquire_many_owned(weight))
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
        let held = gate.enter(a, 1).await.expect("first request of a");
        assert!(gate.enter(b, 1).await.is_some(), "b is not held up by a");
        assert!(
            gate.enter(a, 1).await.is_none(),
            "a's second waits, then is refused"
        );
        drop(held);
        assert!(gate.enter(a, 1).await.is_some());
    }

    #[tokio::test]
    async fn a_large_request_takes_a_larger_share_of_its_tenants_places() {
        let gate = TenantGate::new(16, Duration::from_millis(20));
        assert_eq!(gate.weight(0), 1);
        assert_eq!(gate.weight(64 * 1024), 2);
        assert_eq!(gate.weight(1024 * 1024), 16, "a whole share at 1 MiB");
        let a = Uuid::now_v7();
        let big = gate.enter(a, gate.weight(1024 * 1024)).await.unwrap();
        assert!(
            gate.enter(a, 1).await.is_none(),
            "nothing else of a meanwhile"
        );
        drop(big);
        let smalls: Vec<_> =
            futures_util::future::join_all((0..16).map(|_| gate.enter(a, 1))).await;
        assert!(
            smalls.iter().all(Option::is_some),
            "sixteen small ones at once"
        );
    }
}

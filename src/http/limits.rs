//! Limits that keep one client from taking what others need: a
//! rate limiter (public forms) and a per-organization gate on
//! SCIM requests in progress. Both are per process; with several instances
//! each enforces its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

/// At most `limit` events per key in each `window` (fixed windows: a
/// counter and the window's start per key, so memory is bounded by the
/// number of keys, never by the limit).
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    counts: Mutex<HashMap<String, (Instant, u32)>>,
}

/// Keys kept at most; beyond that, expired ones are dropped, and if all are
/// live the map starts over (a flood of distinct keys resets the limits
/// rather than growing memory or refusing everyone).
const MAX_KEYS: usize = 100_000;

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        RateLimiter {
            limit,
            window,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Records an event for `key`; false when the key is over its limit.
    pub fn allow(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut map = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            map.retain(|_, (start, _)| now.duration_since(*start) < self.window);
            if map.len() >= MAX_KEYS {
                tracing::warn!(
                    keys = map.len(),
                    "rate limiter full of live keys; starting over"
                );
                map.clear();
            }
        }
        let (start, count) = map.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(*start) >= self.window {
            *start = now;
            *count = 0;
        }
        if *count >= self.limit {
            return false;
        }
        *count += 1;
        true
    }
}

/// The rate-limit key of a client address: an IPv4 address, or an IPv6
/// address's /64 (one subscriber's network has all of it).
pub fn client_key(addr: Option<std::net::SocketAddr>) -> String {
    match addr.map(|a| a.ip()) {
        Some(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(std::net::IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map(|v4| v4.to_string())
            .unwrap_or_default(),
        Some(ip) => ip.to_string(),
        None => String::new(),
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

    /// A place for a request of `org` weighing `weight`, with the gate it
    /// was taken from (see [`crate::work`]), or `None` when it waited too
    /// long.
    pub async fn enter(
        &self,
        org: Uuid,
        weight: u32,
    ) -> Option<(Arc<Semaphore>, OwnedSemaphorePermit)> {
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
            return Some((gate, permit));
        }
        let permit = tokio::time::timeout(self.wait, gate.clone().acquire_many_owned(weight))
            .await
            .ok()?
            .ok()?;
        Some((gate, permit))
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

    #[test]
    fn ipv6_clients_are_limited_by_their_64_and_mapped_ipv4_as_ipv4() {
        let key = |s: &str| client_key(Some(s.parse().unwrap()));
        assert_eq!(
            key("[2001:db8:1:2:aaaa::1]:443"),
            key("[2001:db8:1:2:bbbb::9]:1")
        );
        assert_ne!(key("[2001:db8:1:2::1]:443"), key("[2001:db8:1:3::1]:443"));
        assert_eq!(key("[::ffff:192.0.2.7]:80"), "192.0.2.7");
        assert_eq!(key("192.0.2.7:80"), "192.0.2.7");
        assert_eq!(client_key(None), "");
    }

    #[test]
    fn a_flood_of_distinct_keys_stays_bounded() {
        let l = RateLimiter::new(1, Duration::from_secs(60));
        for i in 0..(MAX_KEYS + 10) {
            l.allow(&i.to_string());
        }
        assert!(l.counts.lock().unwrap().len() <= MAX_KEYS);
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

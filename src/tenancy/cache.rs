//! A small time-limited cache for what every request of a tenant needs and
//! rarely changes: its SCIM tokens and its organization record.
//!
//! A change made through this process invalidates the entry at once; one made
//! by another process (the CLI, another instance) is seen within the time to
//! live. A lookup that raced an invalidation is not stored, so a stale value
//! cannot outlive the change that replaced it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// More entries than this and the cache starts over: it holds a few tenants'
/// hot records, not everything ever looked up.
const MAX_ENTRIES: usize = 4096;

pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (V, Instant)>>,
    /// Bumped by every invalidation.
    generation: AtomicU64,
}

/// Taken before a lookup in the database, handed back to [`TtlCache::put`].
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// A cache keeping entries for `ttl`; `None` when `ttl` is zero.
    pub fn new(ttl: Duration) -> Option<Arc<Self>> {
        (!ttl.is_zero()).then(|| {
            Arc::new(TtlCache {
                ttl,
                entries: Mutex::new(HashMap::new()),
                generation: AtomicU64::new(0),
            })
        })
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<K, (V, Instant)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &K) -> Option<V> {
        self.entries()
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(v, _)| v.clone())
    }

    /// Call before reading the value from the database.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::Acquire))
    }

    /// Stores a value read after `ticket` was taken, unless something was
    /// invalidated since.
    pub fn put(&self, key: K, value: V, ticket: Ticket) {
        let mut entries = self.entries();
        if self.generation.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (value, Instant::now()));
    }

    /// Drops the entries `stale` selects.
    pub fn invalidate(&self, stale: impl Fn(&K, &V) -> bool) {
        let mut entries = self.entries();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.retain(|k, (v, _)| !stale(k, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_invalidation_beats_a_racing_lookup() {
        let cache = TtlCache::<u32, &str>::new(Duration::from_millis(50)).unwrap();
        let t = cache.ticket();
        cache.put(1, "one", t);
        assert_eq!(cache.get(&1), Some("one"));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get(&1), None, "expired");

        let before = cache.ticket();
        cache.invalidate(|k, _| *k == 1);
        cache.put(1, "stale", before);
        assert_eq!(cache.get(&1), None, "read before the invalidation");
        cache.put(1, "fresh", cache.ticket());
        assert_eq!(cache.get(&1), Some("fresh"));
        cache.invalidate(|_, v| *v == "fresh");
        assert_eq!(cache.get(&1), None);
        assert!(TtlCache::<u32, u32>::new(Duration::ZERO).is_none());
    }
}

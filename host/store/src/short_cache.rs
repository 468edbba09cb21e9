//! Rows read on every request, kept briefly so that the request does not read the database:
//! resolved bearer credentials (by token hash) and tenant rows (by id). Only successful lookups
//! are kept: a token issued after a miss resolves on its first use. A change made through this
//! process drops the entry at once; a change made by another process takes effect within the TTL.

use std::hash::Hash;
use std::time::Duration;

use moka::sync::Cache;

/// How long a resolved credential or tenant row is trusted without reading the database again:
/// a revocation made on another instance takes effect within this time (at most a second).
pub const DEFAULT_CREDENTIAL_TTL: Duration = Duration::from_secs(1);

/// Bounded so that a flood of distinct valid tokens cannot grow memory without limit.
const MAX_ENTRIES: u64 = 10_000;

#[derive(Clone)]
pub(crate) struct ShortCache<K, V> {
    /// `None` when the TTL is zero: every request reads the database.
    entries: Option<Cache<K, V>>,
}

impl<K: Hash + Eq + Send + Sync + 'static, V: Clone + Send + Sync + 'static> ShortCache<K, V> {
    pub(crate) fn new(ttl: Duration) -> ShortCache<K, V> {
        let entries = (!ttl.is_zero()).then(|| Cache::builder().max_capacity(MAX_ENTRIES).time_to_live(ttl).build());
        ShortCache { entries }
    }

    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.entries.as_ref()?.get(key)
    }

    pub(crate) fn insert(&self, key: K, value: V) {
        if let Some(entries) = &self.entries {
            entries.insert(key, value);
        }
    }

    pub(crate) fn remove(&self, key: &K) {
        if let Some(entries) = &self.entries {
            entries.invalidate(key);
        }
    }

    /// After a tenant row changes: rare enough that dropping every entry is the simple answer.
    pub(crate) fn clear(&self) {
        if let Some(entries) = &self.entries {
            entries.invalidate_all();
        }
    }
}

impl<K, V> std::fmt::Debug for ShortCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.entries.as_ref().map(Cache::entry_count);
        f.debug_struct("ShortCache").field("entries", &entries).finish()
    }
}

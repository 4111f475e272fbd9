//! The process-local cache and its freshness policy.
//!
//! Entries live in a `moka` cache keyed by parameter name. Freshness is decided
//! here from the entry's own fetch time rather than by moka's expiry, so that
//! an expired entry is still there to report on (and, later, to serve while
//! SSM is failing). moka starts no threads and survives `fork`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{parse_value, DbConfig, Error, FetchedParameter};

/// A parsed value together with where and when it came from.
#[derive(Debug)]
pub struct CachedConfig {
    /// The parameter name as requested (with any `:version` selector).
    pub parameter: String,
    /// The parsed settings.
    pub config: DbConfig,
    /// SSM's version number of the parameter.
    pub version: i64,
    /// When the fetch finished.
    pub fetched_at: Instant,
    /// How long the fetch took.
    pub fetch_duration: Duration,
}

impl CachedConfig {
    /// Parses a fetched parameter into a cache entry; nothing is cached on error.
    pub fn from_fetched(parameter: &str, fetched: FetchedParameter) -> Result<Self, Error> {
        Ok(CachedConfig {
            parameter: parameter.to_owned(),
            config: parse_value(parameter, fetched.value.expose())?,
            version: fetched.version,
            fetched_at: Instant::now(),
            fetch_duration: fetched.duration,
        })
    }

    /// Time since the fetch finished.
    pub fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.fetched_at)
    }
}

/// What a lookup found.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// A value younger than the TTL, with the time it has left.
    Fresh(Arc<CachedConfig>, Duration),
    /// A value older than the TTL.
    Expired(Arc<CachedConfig>),
    /// Nothing cached for this name.
    Missing,
}

/// Parameter name → last fetched value, with a TTL.
pub struct ConfigCache {
    entries: moka::sync::Cache<String, Arc<CachedConfig>>,
    ttl: Duration,
}

/// A process reads one or two parameters; the bound only stops a caller that
/// loops over generated names from growing the process without limit.
const MAX_ENTRIES: u64 = 64;

impl ConfigCache {
    /// An empty cache whose entries are fresh for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        ConfigCache { entries: moka::sync::Cache::new(MAX_ENTRIES), ttl }
    }

    /// The TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Looks a parameter up and judges its freshness at `now`.
    pub fn lookup(&self, parameter: &str, now: Instant) -> Lookup {
        match self.entries.get(parameter) {
            None => Lookup::Missing,
            Some(entry) => match self.ttl.checked_sub(entry.age(now)) {
                Some(left) if !left.is_zero() => Lookup::Fresh(entry, left),
                _ => Lookup::Expired(entry),
            },
        }
    }

    /// Stores an entry, replacing any older one for the same name.
    pub fn store(&self, entry: CachedConfig) -> Arc<CachedConfig> {
        let entry = Arc::new(entry);
        self.entries.insert(entry.parameter.clone(), entry.clone());
        entry
    }

    /// The most recently fetched entry, if any (for status reports).
    pub fn newest(&self) -> Option<Arc<CachedConfig>> {
        self.entries.iter().map(|(_, v)| v).max_by_key(|e| e.fetched_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    fn fetched(value: &str) -> FetchedParameter {
        FetchedParameter { value: Secret::new(value.into()), version: 3, duration: Duration::from_millis(5) }
    }

    #[test]
    fn stored_entry_is_fresh_until_ttl_then_expired() {
        let cache = ConfigCache::new(Duration::from_secs(60));
        let now = Instant::now();
        assert!(matches!(cache.lookup("/p", now), Lookup::Missing));
        let entry = CachedConfig::from_fetched("/p", fetched("mysql://u:p@h/d")).unwrap();
        let fetched_at = entry.fetched_at;
        cache.store(entry);
        assert!(matches!(cache.lookup("/p", fetched_at + Duration::from_secs(59)), Lookup::Fresh(_, left) if left == Duration::from_secs(1)));
        assert!(matches!(cache.lookup("/p", fetched_at + Duration::from_secs(60)), Lookup::Expired(_)));
        assert_eq!(cache.newest().unwrap().version, 3);
    }

    #[test]
    fn invalid_value_is_not_cached() {
        let err = CachedConfig::from_fetched("/p", fetched("nonsense")).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidValue);
    }
}

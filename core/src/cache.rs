//! The process-local cache and its freshness states.
//!
//! Entries live in a `moka` cache keyed by parameter name (moka starts no
//! threads and survives `fork`). Freshness is judged here, from the entry's
//! own fetch time, rather than by moka's expiry: an expired entry must still
//! be there to serve while SSM is failing.

use std::sync::Arc;
use std::time::Duration;

use crate::policy;
use crate::shared::StoredValue;
use crate::ExposeSecret;
#[cfg(test)]
use crate::SecretString;
use crate::{
    apply_credentials, parse_endpoint_value, parse_value, DbConfig, Error, FetchedParameter,
};

pub use crate::plan::{Freshness, Timing};

/// A parsed value together with where and when it came from.
#[derive(Debug)]
pub struct CachedConfig {
    /// The parameter name as requested (with any `:version` selector).
    pub parameter: String,
    /// The credentials parameter whose user and password override, if any.
    pub credentials_parameter: Option<String>,
    /// The parsed settings.
    pub config: DbConfig,
    /// SSM's version of the parameter.
    pub version: i64,
    /// SSM's version of the credentials parameter.
    pub credentials_version: Option<i64>,
    /// When the fetch ended (`CLOCK_MONOTONIC` ns).
    pub fetched_ns: u64,
    /// When, after the fetch, refreshing ahead starts.
    pub refresh_after: Duration,
    /// How long the fetch took.
    pub fetch_duration: Duration,
    /// For a value with `auth=iam`: the token that is its password, once
    /// made (see `crate::iam`); `None` otherwise.
    pub iam_token: Option<crate::iam::IamToken>,
}

impl StoredValue {
    /// A value just fetched, with its refresh-ahead point drawn for `ttl`.
    pub fn fetched(
        main: FetchedParameter,
        credentials: Option<FetchedParameter>,
        ttl: Duration,
    ) -> StoredValue {
        StoredValue {
            fetched_ns: policy::mono_now_ns(),
            duration_us: main.duration.as_micros() as u64,
            value: main.value,
            version: main.version,
            credentials: credentials.map(|c| (c.value, c.version)),
            refresh_after_ns: policy::refresh_ahead_after(ttl, policy::random_fraction()).as_nanos()
                as u64,
            iam_token: None,
        }
    }
}

impl CachedConfig {
    /// Parses a stored value; nothing is cached on error.
    pub fn from_stored(
        parameter: &str,
        credentials_parameter: Option<&str>,
        stored: &StoredValue,
    ) -> Result<Self, Error> {
        let config = match (credentials_parameter, &stored.credentials) {
            (Some(creds_name), Some((creds, _))) => apply_credentials(
                parse_endpoint_value(parameter, stored.value.expose_secret())?,
                creds_name,
                creds.expose_secret(),
            )?,
            _ => parse_value(parameter, stored.value.expose_secret())?,
        };
        Ok(CachedConfig {
            parameter: parameter.to_owned(),
            credentials_parameter: credentials_parameter.map(str::to_owned),
            config,
            version: stored.version,
            credentials_version: stored.credentials.as_ref().map(|(_, v)| *v),
            fetched_ns: stored.fetched_ns,
            refresh_after: Duration::from_nanos(stored.refresh_after_ns),
            fetch_duration: Duration::from_micros(stored.duration_us),
            iam_token: stored.iam_token.clone(),
        })
    }

    /// Parses a single fetched parameter (no credentials parameter), fresh for `ttl`.
    pub fn from_fetched(
        parameter: &str,
        fetched: FetchedParameter,
        ttl: Duration,
    ) -> Result<Self, Error> {
        Self::from_stored(parameter, None, &StoredValue::fetched(fetched, None, ttl))
    }

    /// Time since the fetch ended.
    pub fn age(&self, now_ns: u64) -> Duration {
        Duration::from_nanos(now_ns.saturating_sub(self.fetched_ns))
    }

    /// When it was fetched and when its refresh-ahead starts, for [`crate::plan`].
    pub fn held(&self) -> crate::plan::Held {
        crate::plan::Held {
            fetched_ns: self.fetched_ns,
            refresh_after: self.refresh_after,
            renew_by_ns: self
                .iam_token
                .as_ref()
                .map(|t| t.signed_ns + crate::iam::SERVE_UNTIL.as_nanos() as u64),
        }
    }

    /// Where the value stands at `now_ns`.
    pub fn freshness(&self, now_ns: u64, timing: Timing) -> Freshness {
        self.held().freshness(now_ns, timing)
    }

    /// Whether two entries would give PHP the same settings (a new IAM
    /// token is a new password).
    pub fn same_settings(&self, other: &CachedConfig) -> bool {
        self.config == other.config
            && self.iam_token.as_ref().map(|t| t.token.expose_secret())
                == other.iam_token.as_ref().map(|t| t.token.expose_secret())
    }

    /// The same entry with `token` as its IAM token, for a token made
    /// again while the value itself was not fetched again.
    pub fn with_iam_token(&self, token: crate::iam::IamToken) -> CachedConfig {
        CachedConfig {
            parameter: self.parameter.clone(),
            credentials_parameter: self.credentials_parameter.clone(),
            config: self.config.clone(),
            version: self.version,
            credentials_version: self.credentials_version,
            fetched_ns: self.fetched_ns,
            refresh_after: self.refresh_after,
            fetch_duration: self.fetch_duration,
            iam_token: Some(token),
        }
    }
}

/// Parameter name → last good value.
pub struct ConfigCache {
    entries: moka::sync::Cache<String, Arc<CachedConfig>>,
}

/// A process reads one or two parameters; the bound only stops a caller that
/// loops over generated names from growing the process without limit.
pub const MAX_ENTRIES: u64 = 64;

impl Default for ConfigCache {
    fn default() -> Self {
        ConfigCache {
            entries: moka::sync::Cache::new(MAX_ENTRIES),
        }
    }
}

impl ConfigCache {
    /// The entry for a parameter, whatever its age.
    pub fn get(&self, parameter: &str) -> Option<Arc<CachedConfig>> {
        self.entries.get(parameter)
    }

    /// Stores an entry, replacing any older one for the same name.
    pub fn store(&self, entry: CachedConfig) -> Arc<CachedConfig> {
        let entry = Arc::new(entry);
        self.entries.insert(entry.parameter.clone(), entry.clone());
        entry
    }

    /// The most recently fetched entry, if any (for status reports).
    pub fn newest(&self) -> Option<Arc<CachedConfig>> {
        self.entries
            .iter()
            .map(|(_, v)| v)
            .max_by_key(|e| e.fetched_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetched(value: &str) -> FetchedParameter {
        FetchedParameter {
            value: SecretString::from(value.to_owned()),
            version: 3,
            duration: Duration::from_millis(5),
        }
    }

    #[test]
    fn freshness_moves_from_fresh_to_refresh_due_to_stale_to_too_old() {
        let timing = Timing {
            ttl: Duration::from_secs(60),
            max_stale: Duration::from_secs(100),
        };
        let entry =
            CachedConfig::from_fetched("/p", fetched("mysql://u:p@h/d"), timing.ttl).unwrap();
        let t0 = entry.fetched_ns;
        let s = |secs: u64| entry.freshness(t0 + secs * 1_000_000_000, timing);
        assert!(matches!(s(0), Freshness::Fresh { .. }));
        assert!(matches!(s(55), Freshness::Fresh { .. }));
        assert_eq!(s(59), Freshness::RefreshDue);
        assert_eq!(s(60), Freshness::Stale);
        assert_eq!(s(159), Freshness::Stale);
        assert_eq!(s(160), Freshness::TooOld);
    }

    #[test]
    fn credentials_parameter_overrides_user_and_password() {
        let stored = StoredValue::fetched(
            fetched("postgresql://db.internal/shop"),
            Some(FetchedParameter {
                value: SecretString::from(r#"{"username":"rotated","password":"pw2"}"#.to_owned()),
                version: 9,
                duration: Duration::ZERO,
            }),
            Duration::from_secs(60),
        );
        let entry = CachedConfig::from_stored(
            "/p",
            Some("/aws/reference/secretsmanager/rds!db-1"),
            &stored,
        )
        .unwrap();
        assert_eq!(
            (
                entry.config.user.as_str(),
                entry.config.password.expose_secret()
            ),
            ("rotated", "pw2")
        );
        assert_eq!(entry.credentials_version, Some(9));
    }

    #[test]
    fn store_and_newest() {
        let cache = ConfigCache::default();
        assert!(cache.get("/p").is_none());
        cache.store(
            CachedConfig::from_fetched("/p", fetched("mysql://u:p@h/d"), Duration::from_secs(1))
                .unwrap(),
        );
        assert_eq!(cache.get("/p").unwrap().version, 3);
        assert_eq!(cache.newest().unwrap().parameter, "/p");
    }

    #[test]
    fn invalid_value_is_not_cached() {
        let err = CachedConfig::from_fetched("/p", fetched("nonsense"), Duration::from_secs(1))
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidValue);
    }
}

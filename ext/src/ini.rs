//! The `ssm_db_config.*` php.ini directives.
//!
//! All are system-level (php.ini, `-d`, the php-fpm pool's `php_admin_value`):
//! they decide where credentials come from, so a script may not change them.
//! They are read once at module startup and validated here; a bad value gets
//! a warning that names the directive and the allowed range, and the default.

use std::time::Duration;

use ext_php_rs::flags::IniEntryPermission;
use ext_php_rs::zend::{ExecutorGlobals, IniEntryDef, IniEntryDefs};

/// Default TTL of a cached value.
pub const DEFAULT_TTL_SECONDS: u64 = 60;
/// Allowed TTL range.
pub const TTL_RANGE: (u64, u64) = (1, 86_400);
/// Default budget of one fetch.
pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;
/// Allowed budget range.
pub const TIMEOUT_RANGE: (u64, u64) = (50, 60_000);

pub static INI_ENTRIES: IniEntryDefs<6> = IniEntryDefs::new([
    IniEntryDef::new(c"ssm_db_config.parameter", c"", IniEntryPermission::System),
    IniEntryDef::new(c"ssm_db_config.region", c"", IniEntryPermission::System),
    IniEntryDef::new(c"ssm_db_config.endpoint_url", c"", IniEntryPermission::System),
    IniEntryDef::new(c"ssm_db_config.ttl", c"60", IniEntryPermission::System),
    IniEntryDef::new(c"ssm_db_config.timeout_ms", c"2000", IniEntryPermission::System),
    IniEntryDef::end(),
]);

/// The validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Default parameter name; `None` when unset.
    pub parameter: Option<String>,
    /// Region override.
    pub region: Option<String>,
    /// Endpoint override.
    pub endpoint_url: Option<String>,
    /// Cache TTL.
    pub ttl: Duration,
    /// Budget for one fetch.
    pub timeout: Duration,
}

impl Settings {
    /// Reads and validates the registered directives. Returns the settings and
    /// one warning per rejected value.
    pub fn from_ini() -> (Settings, Vec<String>) {
        let values = ExecutorGlobals::get().ini_values();
        let get = |name: &str| values.get(name).cloned().flatten().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        validate(
            get("ssm_db_config.parameter"),
            get("ssm_db_config.region"),
            get("ssm_db_config.endpoint_url"),
            get("ssm_db_config.ttl"),
            get("ssm_db_config.timeout_ms"),
        )
    }
}

fn validate(
    parameter: Option<String>,
    region: Option<String>,
    endpoint_url: Option<String>,
    ttl: Option<String>,
    timeout_ms: Option<String>,
) -> (Settings, Vec<String>) {
    let mut warnings = Vec::new();
    let mut number = |directive: &str, raw: Option<String>, (min, max): (u64, u64), default: u64, unit: &str| -> u64 {
        match raw {
            None => default,
            Some(raw) => match raw.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    warnings.push(format!(
                        "{directive} must be an integer from {min} to {max} ({unit}); using the default {default}"
                    ));
                    default
                }
            },
        }
    };
    let ttl = number("ssm_db_config.ttl", ttl, TTL_RANGE, DEFAULT_TTL_SECONDS, "seconds");
    let timeout = number("ssm_db_config.timeout_ms", timeout_ms, TIMEOUT_RANGE, DEFAULT_TIMEOUT_MS, "milliseconds");

    let region = region.filter(|r| {
        let ok = r.len() <= 64 && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            warnings.push(
                "ssm_db_config.region must be an AWS region name such as eu-west-1 (lowercase letters, digits and '-'); ignoring it".into(),
            );
        }
        ok
    });
    let endpoint_url = endpoint_url.filter(|u| {
        let ok = (u.starts_with("http://") || u.starts_with("https://")) && u.len() > "https://".len() && !u.contains(char::is_whitespace);
        if !ok {
            warnings.push("ssm_db_config.endpoint_url must be an http:// or https:// URL; ignoring it".into());
        }
        ok
    });
    let parameter = parameter.filter(|p| {
        let ok = p.len() <= 2048 && !p.contains(char::is_whitespace);
        if !ok {
            warnings.push("ssm_db_config.parameter must be an SSM parameter name (no spaces, at most 2048 characters); ignoring it".into());
        }
        ok
    });
    let settings = Settings {
        parameter,
        region,
        endpoint_url,
        ttl: Duration::from_secs(ttl),
        timeout: Duration::from_millis(timeout),
    };
    (settings, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn valid_values_are_taken() {
        let (st, w) = validate(s("/app/db"), s("eu-west-1"), s("http://127.0.0.1:5000"), s("5"), s("300"));
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(st.ttl, Duration::from_secs(5));
        assert_eq!(st.timeout, Duration::from_millis(300));
        assert_eq!(st.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn bad_values_warn_with_directive_and_range_then_use_default() {
        let (st, w) = validate(None, s("EU WEST"), s("ftp://x"), s("0"), s("fast"));
        assert_eq!(st.ttl, Duration::from_secs(60));
        assert_eq!(st.timeout, Duration::from_millis(2000));
        assert_eq!(st.region, None);
        assert_eq!(st.endpoint_url, None);
        assert!(w.iter().any(|m| m.contains("ssm_db_config.ttl") && m.contains("1 to 86400")));
        assert!(w.iter().any(|m| m.contains("ssm_db_config.timeout_ms") && m.contains("50 to 60000")));
        assert!(w.iter().any(|m| m.contains("ssm_db_config.region")));
        assert!(w.iter().any(|m| m.contains("ssm_db_config.endpoint_url")));
    }
}

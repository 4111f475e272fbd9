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

/// Default maximum staleness: one day.
pub const DEFAULT_MAX_STALE_SECONDS: u64 = 86_400;
/// Allowed maximum staleness.
pub const MAX_STALE_RANGE: (u64, u64) = (0, 30 * 86_400);
/// Default for `ssm_db_config.shared_dir`: `/dev/shm/ssm_db_config-<uid>`, made
/// per user at first use (a tmpfs: nothing reaches a disk).
pub const DEFAULT_SHARED_DIR: &str = "auto";

pub static INI_ENTRIES: IniEntryDefs<11> = IniEntryDefs::new([
    IniEntryDef::new(c"ssm_db_config.parameter", c"", IniEntryPermission::System),
    IniEntryDef::new(c"ssm_db_config.region", c"", IniEntryPermission::System),
    IniEntryDef::new(c"ssm_db_config.endpoint_url", c"", IniEntryPermission::System),
    IniEntryDef::new(c"ssm_db_config.ttl", c"60", IniEntryPermission::System),
    IniEntryDef::new(c"ssm_db_config.timeout_ms", c"2000", IniEntryPermission::System),
    IniEntryDef::new(c"ssm_db_config.max_stale", c"86400", IniEntryPermission::System),
    IniEntryDef::new(c"ssm_db_config.shared_dir", c"auto", IniEntryPermission::System),
    IniEntryDef::new(c"ssm_db_config.credentials_parameter", c"", IniEntryPermission::System),
    IniEntryDef::new(c"ssm_db_config.direct_refresh", c"1", IniEntryPermission::System),
    IniEntryDef::new(c"ssm_db_config.define_constants", c"0", IniEntryPermission::System),
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
    /// How long past its TTL the last good value is served while refreshing fails.
    pub max_stale: Duration,
    /// The shared directory: `None` when switched off (`off`).
    pub shared_dir: Option<SharedDir>,
    /// A parameter whose `username` and `password` override the main one's.
    pub credentials_parameter: Option<String>,
    /// Whether requests after the SDK's first may skip its pipeline (`core::direct`).
    pub direct_refresh: bool,
    /// Whether every request starts with the DB_* constants of
    /// `ssm_db_config.parameter` defined (see `State::define_at_request_start`).
    pub define_constants: bool,
}

/// Where workers share their cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedDir {
    /// `/dev/shm/ssm_db_config-<uid>`, for the uid of the worker.
    Auto,
    /// A directory given in php.ini.
    Path(std::path::PathBuf),
}

impl SharedDir {
    /// The directory for this process's user.
    pub fn resolve(&self) -> std::path::PathBuf {
        match self {
            SharedDir::Auto => format!("/dev/shm/ssm_db_config-{}", unsafe { libc::geteuid() }).into(),
            SharedDir::Path(p) => p.clone(),
        }
    }
}

impl Settings {
    /// Reads and validates the registered directives. Returns the settings and
    /// one warning per rejected value.
    pub fn from_ini() -> (Settings, Vec<String>) {
        let values = ExecutorGlobals::get().ini_values();
        let get = |name: &str| values.get(name).cloned().flatten().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        validate(RawSettings {
            parameter: get("ssm_db_config.parameter"),
            region: get("ssm_db_config.region"),
            endpoint_url: get("ssm_db_config.endpoint_url"),
            ttl: get("ssm_db_config.ttl"),
            timeout_ms: get("ssm_db_config.timeout_ms"),
            max_stale: get("ssm_db_config.max_stale"),
            // PHP's INI parser turns off/no/false into "": that is "off" here;
            // unset, the directive keeps its default "auto".
            shared_dir: values.get("ssm_db_config.shared_dir").cloned().flatten().map(|v| match v.trim() {
                "" => "off".to_owned(),
                v => v.to_owned(),
            }),
            credentials_parameter: get("ssm_db_config.credentials_parameter"),
            // PHP's INI parser turns on/yes/true into "1" and off/no/false into "".
            direct_refresh: values.get("ssm_db_config.direct_refresh").cloned().flatten().map(|v| v.trim().to_owned()),
            define_constants: values.get("ssm_db_config.define_constants").cloned().flatten().map(|v| v.trim().to_owned()),
        })
    }
}

/// The directives as php.ini gives them, before validation: named, so that
/// nine optional strings cannot be passed in the wrong order.
#[derive(Debug, Default)]
struct RawSettings {
    parameter: Option<String>,
    region: Option<String>,
    endpoint_url: Option<String>,
    ttl: Option<String>,
    timeout_ms: Option<String>,
    max_stale: Option<String>,
    shared_dir: Option<String>,
    credentials_parameter: Option<String>,
    direct_refresh: Option<String>,
    define_constants: Option<String>,
}

/// An on/off directive as PHP's INI parser leaves it: on/yes/true are "1",
/// off/no/false are "".
fn switch(directive: &str, raw: Option<&str>, default: bool, warnings: &mut Vec<String>) -> bool {
    match raw {
        None => default,
        Some("1") => true,
        Some("" | "0") => false,
        Some(_) => {
            let default_name = if default { "on" } else { "off" };
            warnings.push(format!("{directive} must be on or off (1 or 0); using {default_name}"));
            default
        }
    }
}

fn validate(raw: RawSettings) -> (Settings, Vec<String>) {
    let RawSettings {
        parameter,
        region,
        endpoint_url,
        ttl,
        timeout_ms,
        max_stale,
        shared_dir,
        credentials_parameter,
        direct_refresh,
        define_constants,
    } = raw;
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
    let max_stale = number("ssm_db_config.max_stale", max_stale, MAX_STALE_RANGE, DEFAULT_MAX_STALE_SECONDS, "seconds");

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
    let mut name = |directive: &str, value: Option<String>| {
        value.filter(|p| {
            let ok = p.len() <= 2048 && !p.contains(char::is_whitespace);
            if !ok {
                warnings.push(format!("{directive} must be an SSM parameter name (no spaces, at most 2048 characters); ignoring it"));
            }
            ok
        })
    };
    let parameter = name("ssm_db_config.parameter", parameter);
    let credentials_parameter = name("ssm_db_config.credentials_parameter", credentials_parameter);
    let shared_dir = match shared_dir.as_deref() {
        None | Some("auto") => Some(SharedDir::Auto),
        Some("off") | Some("0") => None,
        Some(path) if path.starts_with('/') => Some(SharedDir::Path(path.into())),
        Some(_) => {
            warnings.push("ssm_db_config.shared_dir must be an absolute path, auto or off; using auto".into());
            Some(SharedDir::Auto)
        }
    };
    let direct_refresh = switch("ssm_db_config.direct_refresh", direct_refresh.as_deref(), true, &mut warnings);
    let mut define_constants = switch("ssm_db_config.define_constants", define_constants.as_deref(), false, &mut warnings);
    if define_constants && parameter.is_none() {
        warnings.push(
            "ssm_db_config.define_constants is on but ssm_db_config.parameter is not set: no constant is defined at request start".into(),
        );
        define_constants = false;
    }
    let settings = Settings {
        parameter,
        region,
        endpoint_url,
        ttl: Duration::from_secs(ttl),
        timeout: Duration::from_millis(timeout),
        max_stale: Duration::from_secs(max_stale),
        shared_dir,
        credentials_parameter,
        direct_refresh,
        define_constants,
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
        let (st, w) = validate(RawSettings {
            parameter: s("/app/db"),
            region: s("eu-west-1"),
            endpoint_url: s("http://127.0.0.1:5000"),
            ttl: s("5"),
            timeout_ms: s("300"),
            max_stale: s("0"),
            shared_dir: s("/run/x"),
            credentials_parameter: s("/aws/reference/secretsmanager/rds!db-1"),
            direct_refresh: s(""),
            define_constants: s("1"),
        });
        assert!(w.is_empty(), "{w:?}");
        assert!(st.define_constants);
        assert_eq!(st.ttl, Duration::from_secs(5));
        assert_eq!(st.timeout, Duration::from_millis(300));
        assert_eq!(st.region.as_deref(), Some("eu-west-1"));
        assert_eq!(st.max_stale, Duration::ZERO);
        assert_eq!(st.shared_dir, Some(SharedDir::Path("/run/x".into())));
        assert_eq!(st.credentials_parameter.as_deref(), Some("/aws/reference/secretsmanager/rds!db-1"));
        assert!(!st.direct_refresh);
        assert_eq!(validate(RawSettings { shared_dir: s("off"), ..Default::default() }).0.shared_dir, None);
        assert!(validate(RawSettings::default()).0.direct_refresh, "on by default");
        assert!(validate(RawSettings { direct_refresh: s("1"), ..Default::default() }).0.direct_refresh);
        assert!(!validate(RawSettings { parameter: s("/app/db"), ..Default::default() }).0.define_constants, "off by default");
    }

    #[test]
    fn define_constants_needs_a_parameter() {
        let (st, w) = validate(RawSettings { define_constants: s("1"), ..Default::default() });
        assert!(!st.define_constants);
        assert!(w.iter().any(|m| m.contains("ssm_db_config.define_constants") && m.contains("ssm_db_config.parameter")), "{w:?}");
    }

    #[test]
    fn bad_values_warn_with_directive_and_range_then_use_default() {
        let (st, w) = validate(RawSettings {
            region: s("EU WEST"),
            endpoint_url: s("ftp://x"),
            ttl: s("0"),
            timeout_ms: s("fast"),
            max_stale: s("-1"),
            shared_dir: s("relative/dir"),
            direct_refresh: s("sometimes"),
            define_constants: s("maybe"),
            ..Default::default()
        });
        assert_eq!(st.ttl, Duration::from_secs(60));
        assert_eq!(st.timeout, Duration::from_millis(2000));
        assert_eq!(st.region, None);
        assert_eq!(st.endpoint_url, None);
        assert!(w.iter().any(|m| m.contains("ssm_db_config.ttl") && m.contains("1 to 86400")));
        assert!(w.iter().any(|m| m.contains("ssm_db_config.timeout_ms") && m.contains("50 to 60000")));
        assert!(w.iter().any(|m| m.contains("ssm_db_config.region")));
        assert!(w.iter().any(|m| m.contains("ssm_db_config.endpoint_url")));
        assert!(w.iter().any(|m| m.contains("ssm_db_config.max_stale") && m.contains("0 to 2592000")));
        assert!(w.iter().any(|m| m.contains("ssm_db_config.shared_dir")));
        assert_eq!(st.shared_dir, Some(SharedDir::Auto));
        assert!(w.iter().any(|m| m.contains("ssm_db_config.direct_refresh") && m.contains("on or off")));
        assert!(st.direct_refresh);
        assert!(w.iter().any(|m| m.contains("ssm_db_config.define_constants") && m.contains("using off")));
        assert!(!st.define_constants);
    }
}

//! The `ssm_db_config.*` php.ini directives.
//!
//! All are system-level (`PHP_INI_SYSTEM`): php.ini, `-d`, and a php-fpm
//! pool's `php_admin_value`. They decide where credentials come from, so a
//! script may not change them.
//!
//! php-fpm applies a pool's `php_admin_value` lines in each worker after the
//! fork, long after module startup, so nothing here is read once at startup.
//! Every directive is bound through [`on_modify`], which the engine calls for
//! each new value (php.ini at startup, the pool's in the worker): a valid
//! value is taken and bumps [`generation`], so that the process state reads
//! the settings again before it serves anything; an invalid one is refused
//! with a warning that names the directive (and the value, unless it may hold
//! a secret), and the engine keeps the previous value (the default, or the
//! php.ini value for a pool). The value in effect is therefore always the one
//! `ini_get()` and phpinfo() show. This is how opcache binds its directives
//! (`OnUpdateMemoryConsumption` in php-src's ext/opcache).

use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ext_php_rs::ffi::{zend_ini_entry, zend_string};
use ext_php_rs::flags::IniEntryPermission;
use ext_php_rs::zend::{ExecutorGlobals, IniEntryDef, IniEntryDefs};
use ssm_db_config_core::name::{self, NameProblem};

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
/// Allowed range of `ssm_db_config.fleet_hosts`.
pub const FLEET_HOSTS_RANGE: (u64, u64) = (1, 1_000_000);
/// SSM's default GetParameter* throughput per account and region, requests per second.
pub const DEFAULT_SSM_THROUGHPUT: u64 = 40;
/// Allowed range of `ssm_db_config.ssm_throughput` (the higher-throughput setting allows thousands).
pub const SSM_THROUGHPUT_RANGE: (u64, u64) = (1, 100_000);
/// Default of `ssm_db_config.max_parameters`: WordPress reads one name, a
/// multisite network or a tool a few.
pub const DEFAULT_MAX_PARAMETERS: u64 = 8;
/// Allowed range of `ssm_db_config.max_parameters`.
pub const MAX_PARAMETERS_RANGE: (u64, u64) = (0, 1_000);
/// Default for `ssm_db_config.shared_dir`: `/dev/shm/ssm_db_config-<uid>`, made
/// per user at first use (a tmpfs: nothing reaches a disk).
pub const DEFAULT_SHARED_DIR: &str = "auto";

/// One directive bound to [`on_modify`].
const fn directive(name: &'static std::ffi::CStr, default: &'static std::ffi::CStr) -> IniEntryDef {
    IniEntryDef {
        on_modify: Some(on_modify),
        ..IniEntryDef::new(name, default, IniEntryPermission::System)
    }
}

pub static INI_ENTRIES: IniEntryDefs<13> = IniEntryDefs::new([
    directive(c"ssm_db_config.parameter", c""),
    directive(c"ssm_db_config.region", c""),
    directive(c"ssm_db_config.endpoint_url", c""),
    directive(c"ssm_db_config.ttl", c"60"),
    directive(c"ssm_db_config.timeout_ms", c"2000"),
    directive(c"ssm_db_config.max_stale", c"86400"),
    directive(c"ssm_db_config.shared_dir", c"auto"),
    directive(c"ssm_db_config.credentials_parameter", c""),
    directive(c"ssm_db_config.define_constants", c"0"),
    directive(c"ssm_db_config.fleet_hosts", c"1"),
    directive(c"ssm_db_config.ssm_throughput", c"40"),
    directive(c"ssm_db_config.max_parameters", c"8"),
    IniEntryDef::end(),
]);

/// Bumped by every accepted change of a directive's value.
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// The settings' generation: when it moves, [`Settings::from_ini`] gives
/// something new.
#[inline(always)]
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

thread_local! {
    /// The warnings of refused values in this process, for the status array
    /// and phpinfo(): a php-fpm worker has no page to show them on.
    static REFUSED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// The warnings given for refused directive values in this process, oldest first.
pub fn refused_values() -> Vec<String> {
    REFUSED.with(|r| r.borrow().clone())
}

/// At most this many refusals are remembered for the status array.
const MAX_REFUSED_KEPT: usize = 16;

/// `ZEND_INI_STAGE_STARTUP` (Zend/zend_ini.h).
const STAGE_STARTUP: c_int = 1;
const SUCCESS: c_int = 0;
const FAILURE: c_int = -1;

/// The engine's hook for every new value of one of our directives.
///
/// # Safety
/// Called by the engine with its own entry and value.
unsafe extern "C" fn on_modify(
    entry: *mut zend_ini_entry,
    new_value: *mut zend_string,
    _arg1: *mut c_void,
    _arg2: *mut c_void,
    _arg3: *mut c_void,
    stage: c_int,
) -> c_int {
    // No panic may unwind into the engine.
    std::panic::catch_unwind(|| {
        let directive = unsafe { entry.as_ref().and_then(|e| zstr(e.name)) }.unwrap_or_default();
        let raw = unsafe { zstr(new_value) }.unwrap_or_default();
        let verdict = if stage != STAGE_STARTUP && fastcgi_request_in_fpm() {
            Err(FROM_FASTCGI.to_owned())
        } else {
            check(&directive, &raw)
        };
        match verdict {
            Ok(note) => {
                if let Some(note) = note {
                    warn(stage, &format!("ssm_db_config: {directive} {note}"));
                }
                GENERATION.fetch_add(1, Ordering::Relaxed);
                SUCCESS
            }
            Err(problem) => {
                let kept = if stage == STAGE_STARTUP {
                    "using the default".to_owned()
                } else {
                    let previous =
                        unsafe { entry.as_ref().and_then(|e| zstr(e.value)) }.unwrap_or_default();
                    format!("keeping {}", shown(&directive, &previous))
                };
                let message = format!(
                    "{directive} = {} refused: {problem}; {kept}",
                    shown(&directive, &raw)
                );
                REFUSED.with(|r| {
                    let mut r = r.borrow_mut();
                    if r.len() < MAX_REFUSED_KEPT {
                        r.push(message.clone());
                    }
                });
                warn(stage, &format!("ssm_db_config: {message}"));
                FAILURE
            }
        }
    })
    .unwrap_or(FAILURE)
}

/// Why a value from the web server is refused.
const FROM_FASTCGI: &str = "a php-fpm worker takes ssm_db_config.* from php.ini and its pool's php_admin_value only, never from a PHP_VALUE or PHP_ADMIN_VALUE the web server sends (php-fpm would keep it for every later request of the worker, whatever site sent it)";

/// Whether this is a php-fpm worker setting up a request: php-fpm applies a
/// request's FastCGI `PHP_VALUE` and `PHP_ADMIN_VALUE` to the worker's master
/// values, for every later request too; the pool's own lines are applied
/// before the worker takes its first request, when there is no request.
fn fastcgi_request_in_fpm() -> bool {
    unsafe {
        let sapi = ext_php_rs::ffi::sapi_module.name;
        !sapi.is_null()
            && std::ffi::CStr::from_ptr(sapi).to_bytes() == b"fpm-fcgi"
            && !ext_php_rs::ffi::sapi_globals.server_context.is_null()
    }
}

/// A startup warning as PHP gives one; outside startup (a php-fpm worker
/// applying its pool's values) there is no page to show it on, so it goes
/// to the error log.
fn warn(stage: c_int, message: &str) {
    if stage == STAGE_STARTUP {
        crate::startup_warning(message);
    } else {
        crate::log(message);
    }
}

/// A zend_string's text, if any.
unsafe fn zstr(s: *const zend_string) -> Option<String> {
    let s = unsafe { s.as_ref() }?;
    let bytes = unsafe { std::slice::from_raw_parts(s.val.as_ptr().cast::<u8>(), s.len) };
    Some(String::from_utf8_lossy(bytes).into_owned())
}

/// How a value appears in a warning: quoted, short and printable, except for
/// directives whose value may hold a secret (a connection URL pasted where a
/// parameter name belongs), which are never echoed.
fn shown(directive: &str, value: &str) -> String {
    const SECRET_PRONE: [&str; 3] = [
        "ssm_db_config.parameter",
        "ssm_db_config.credentials_parameter",
        "ssm_db_config.endpoint_url",
    ];
    if SECRET_PRONE.contains(&directive) {
        return "(value not shown)".to_owned();
    }
    let mut s: String = value
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if value.chars().count() > 64 {
        s.push_str("...");
    }
    format!("\"{s}\"")
}

/// Validates one directive's new value as the engine passes it (PHP's INI
/// parser has already turned on/yes/true into "1" and off/no/false into "").
/// `Ok(Some(note))`: taken, with a warning worth giving.
pub fn check(directive: &str, raw: &str) -> Result<Option<String>, String> {
    let value = raw.trim();
    let set = (!value.is_empty()).then_some(value);
    let none = |r: Result<(), String>| r.map(|()| None);
    match directive {
        "ssm_db_config.parameter" | "ssm_db_config.credentials_parameter" => {
            set.map_or(Ok(None), check_name)
        }
        "ssm_db_config.region" => none(set.map_or(Ok(()), check_region)),
        "ssm_db_config.endpoint_url" => none(set.map_or(Ok(()), check_endpoint_url)),
        "ssm_db_config.ttl" => number(raw, TTL_RANGE, "seconds").map(|_| None),
        "ssm_db_config.timeout_ms" => number(raw, TIMEOUT_RANGE, "milliseconds").map(|_| None),
        "ssm_db_config.max_stale" => number(raw, MAX_STALE_RANGE, "seconds").map(|_| None),
        "ssm_db_config.fleet_hosts" => number(raw, FLEET_HOSTS_RANGE, "hosts").map(|_| None),
        "ssm_db_config.ssm_throughput" => {
            number(raw, SSM_THROUGHPUT_RANGE, "requests per second").map(|_| None)
        }
        "ssm_db_config.max_parameters" => number(raw, MAX_PARAMETERS_RANGE, "names").map(|_| None),
        "ssm_db_config.shared_dir" => shared_dir(value).map(|_| None),
        "ssm_db_config.define_constants" => switch(value).map(|_| None),
        _ => Ok(None),
    }
}

/// An integer in its one spelling: digits, no sign, no leading zero, no
/// space (PHP's INI parser trims a php.ini line, not a `-d` value), so that
/// `ini_get()` and phpinfo() show exactly the number in effect.
fn number(value: &str, (min, max): (u64, u64), unit: &str) -> Result<u64, String> {
    let canonical = value.bytes().all(|b| b.is_ascii_digit())
        && !value.is_empty()
        && (value == "0" || !value.starts_with('0'));
    let digits = value.trim().trim_start_matches(['+', '-']);
    match value.parse::<u64>() {
        Ok(n) if canonical && (min..=max).contains(&n) => Ok(n),
        _ if !canonical && digits.parse::<u64>().is_ok() => Err(format!(
            "it must be written in digits only, without sign, leading zero or space (an integer from {min} to {max}, {unit})"
        )),
        _ => Err(format!(
            "it must be an integer from {min} to {max} ({unit})"
        )),
    }
}

fn switch(value: &str) -> Result<bool, String> {
    match value {
        "1" | "on" | "On" | "yes" | "true" => Ok(true),
        "" | "0" | "off" | "Off" | "no" | "false" => Ok(false),
        _ => Err("it must be on or off (1 or 0)".to_owned()),
    }
}

fn check_region(region: &str) -> Result<(), String> {
    let ok = region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(
            "it must be an AWS region name such as eu-west-1 (lowercase letters, digits and '-')"
                .to_owned(),
        )
    }
}

fn check_endpoint_url(url: &str) -> Result<(), String> {
    ssm_db_config_core::endpoint::check(url).map_err(str::to_owned)
}

/// A parameter name. One that looks cut short by the INI parser is taken
/// (it may be right, and the rest of the line never reached the engine),
/// with a warning that says to quote it.
fn check_name(value: &str) -> Result<Option<String>, String> {
    name::check(value).map_err(|problem: NameProblem| problem.to_string())?;
    Ok(name::looks_cut_in_ini(value).map(str::to_owned))
}

fn shared_dir(value: &str) -> Result<Option<SharedDir>, String> {
    match value {
        "auto" => Ok(Some(SharedDir::Auto)),
        // PHP's INI parser turns off/no/false into "".
        "" | "off" | "0" => Ok(None),
        path if path.starts_with('/') => Ok(Some(SharedDir::Path(path.into()))),
        _ => Err("it must be an absolute path, auto or off".to_owned()),
    }
}

/// The settings in effect.
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
    /// Whether every request starts with the DB_* constants of
    /// `ssm_db_config.parameter` defined (see `State::define_at_request_start`).
    /// Off when `parameter` is not set.
    pub define_constants: bool,
    /// How many hosts read the parameter (`ssm_db_config.fleet_hosts`).
    pub fleet_hosts: u64,
    /// The account's GetParameter* throughput, requests per second.
    pub ssm_throughput: u64,
    /// How many names besides `parameter` one process may read
    /// (`ssm_db_config.max_parameters`; see `State::admit`).
    pub max_parameters: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_values(|_| None)
    }
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
            SharedDir::Auto => {
                format!("/dev/shm/ssm_db_config-{}", unsafe { libc::geteuid() }).into()
            }
            SharedDir::Path(p) => p.clone(),
        }
    }
}

impl Settings {
    /// The settings in effect: the engine's current value of each directive.
    /// [`on_modify`] let only valid values through, so this only fills in
    /// defaults.
    pub fn from_ini() -> Settings {
        let values = ExecutorGlobals::get().ini_values();
        Settings::from_values(|name| values.get(name).cloned().flatten())
    }

    /// Builds the settings from each directive's raw value (`None`: unset).
    /// A value [`check`] refuses is taken as unset.
    fn from_values(get: impl Fn(&str) -> Option<String>) -> Settings {
        let valid = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| check(name, v).is_ok())
        };
        let text = |name: &str| valid(name).filter(|v| !v.is_empty());
        let num = |name: &str, range: (u64, u64), default: u64| {
            valid(name)
                .and_then(|v| number(&v, range, "").ok())
                .unwrap_or(default)
        };
        let on = |name: &str, default: bool| {
            valid(name).and_then(|v| switch(&v).ok()).unwrap_or(default)
        };
        let parameter = text("ssm_db_config.parameter");
        Settings {
            define_constants: on("ssm_db_config.define_constants", false) && parameter.is_some(),
            parameter,
            region: text("ssm_db_config.region"),
            endpoint_url: text("ssm_db_config.endpoint_url"),
            ttl: Duration::from_secs(num("ssm_db_config.ttl", TTL_RANGE, DEFAULT_TTL_SECONDS)),
            timeout: Duration::from_millis(num(
                "ssm_db_config.timeout_ms",
                TIMEOUT_RANGE,
                DEFAULT_TIMEOUT_MS,
            )),
            max_stale: Duration::from_secs(num(
                "ssm_db_config.max_stale",
                MAX_STALE_RANGE,
                DEFAULT_MAX_STALE_SECONDS,
            )),
            shared_dir: match valid("ssm_db_config.shared_dir") {
                Some(v) => shared_dir(&v).unwrap_or(Some(SharedDir::Auto)),
                None => Some(SharedDir::Auto),
            },
            credentials_parameter: text("ssm_db_config.credentials_parameter"),
            fleet_hosts: num("ssm_db_config.fleet_hosts", FLEET_HOSTS_RANGE, 1),
            ssm_throughput: num(
                "ssm_db_config.ssm_throughput",
                SSM_THROUGHPUT_RANGE,
                DEFAULT_SSM_THROUGHPUT,
            ),
            max_parameters: num(
                "ssm_db_config.max_parameters",
                MAX_PARAMETERS_RANGE,
                DEFAULT_MAX_PARAMETERS,
            ),
        }
    }

    /// The window over which this fleet's forced refreshes are spread: the
    /// time the account's throughput needs to answer every host once.
    pub fn spread_window(&self) -> Duration {
        ssm_db_config_core::policy::spread_window(self.fleet_hosts, self.ssm_throughput)
    }

    /// A warning when the TTL would have the fleet's steady refreshes use
    /// more than half the account's throughput (`hosts / TTL` requests per
    /// second, refresh-ahead making it about 7 % more).
    pub fn ttl_note(&self) -> Option<String> {
        let rate = self.fleet_hosts as f64 / (self.ttl.as_secs_f64() * 0.93);
        let half = self.ssm_throughput as f64 / 2.0;
        (rate > half).then(|| {
            let recommended = (2.0 * self.fleet_hosts as f64 / self.ssm_throughput as f64 / 0.93).ceil() as u64;
            format!(
                "ssm_db_config.ttl = {} makes {} hosts ask SSM about {rate:.0} times a second, more than half of ssm_db_config.ssm_throughput = {}: set the TTL to {recommended} or more",
                self.ttl.as_secs(),
                self.fleet_hosts,
                self.ssm_throughput
            )
        })
    }

    /// Why `define_constants` is on in php.ini but off here, if it is.
    pub fn define_constants_note(&self) -> Option<&'static str> {
        let requested = ExecutorGlobals::get()
            .ini_values()
            .get("ssm_db_config.define_constants")
            .cloned()
            .flatten()
            .is_some_and(|v| switch(v.trim()) == Ok(true));
        (requested && !self.define_constants).then_some(DEFINE_CONSTANTS_WITHOUT_PARAMETER)
    }
}

/// The warning when `define_constants` is on without a parameter.
pub const DEFINE_CONSTANTS_WITHOUT_PARAMETER: &str =
    "ssm_db_config.define_constants is on but ssm_db_config.parameter is not set: no constant is defined at request start";

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (format!("ssm_db_config.{k}"), v.to_string()))
            .collect();
        Settings::from_values(|name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn valid_values_are_taken() {
        let st = settings(&[
            ("parameter", "/app/db"),
            ("region", "eu-west-1"),
            ("endpoint_url", "http://127.0.0.1:5000"),
            ("ttl", "5"),
            ("timeout_ms", "300"),
            ("max_stale", "0"),
            ("shared_dir", "/run/x"),
            (
                "credentials_parameter",
                "/aws/reference/secretsmanager/rds!db-1",
            ),
            ("define_constants", "1"),
        ]);
        assert!(st.define_constants);
        assert_eq!(st.ttl, Duration::from_secs(5));
        assert_eq!(st.timeout, Duration::from_millis(300));
        assert_eq!(st.region.as_deref(), Some("eu-west-1"));
        assert_eq!(st.max_stale, Duration::ZERO);
        assert_eq!(st.shared_dir, Some(SharedDir::Path("/run/x".into())));
        assert_eq!(
            st.credentials_parameter.as_deref(),
            Some("/aws/reference/secretsmanager/rds!db-1")
        );
        assert_eq!(settings(&[("shared_dir", "off")]).shared_dir, None);
        assert_eq!(
            settings(&[("shared_dir", "")]).shared_dir,
            None,
            "PHP's parser turns off into \"\""
        );
        assert_eq!(Settings::default().shared_dir, Some(SharedDir::Auto));
        assert!(
            !settings(&[("parameter", "/app/db")]).define_constants,
            "off by default"
        );
    }

    #[test]
    fn fleet_settings_give_the_spread_and_warn_of_a_short_ttl() {
        let st = settings(&[("fleet_hosts", "1000"), ("ssm_throughput", "40")]);
        assert_eq!(st.spread_window(), Duration::from_secs(25));
        assert_eq!(
            st.ttl_note(),
            None,
            "1,000 hosts at 60 s: 18 a second, below 20"
        );
        let note = settings(&[("fleet_hosts", "10000"), ("ttl", "300")])
            .ttl_note()
            .unwrap();
        assert!(note.contains("set the TTL to 538 or more"), "{note}");
        assert_eq!(
            Settings::default().spread_window(),
            Duration::ZERO,
            "one host: no spread"
        );
        assert!(check("ssm_db_config.fleet_hosts", "0").is_err());
    }

    #[test]
    fn define_constants_needs_a_parameter() {
        assert!(!settings(&[("define_constants", "1")]).define_constants);
        assert!(settings(&[("define_constants", "on"), ("parameter", "/p")]).define_constants);
    }

    #[test]
    fn bad_values_are_refused_naming_the_allowed_range() {
        for url in [
            "https://ssm.eu-west-1.amazonaws.com",
            "http://127.0.0.1:5000",
            "http://[::1]:5000/",
            "http://localhost:4566",
        ] {
            assert_eq!(check("ssm_db_config.endpoint_url", url), Ok(None), "{url}");
        }
        let table: [(&str, &str, &str); 17] = [
            ("ssm_db_config.ttl", "0", "1 to 86400"),
            ("ssm_db_config.ttl", "5s", "1 to 86400"),
            // One spelling per number, so that ini_get() shows the number in effect.
            ("ssm_db_config.ttl", "+60", "without sign"),
            ("ssm_db_config.ttl", " 60", "without sign"),
            ("ssm_db_config.ttl", "060", "leading zero"),
            ("ssm_db_config.timeout_ms", "0050", "leading zero"),
            ("ssm_db_config.max_parameters", "-0", "without sign"),
            ("ssm_db_config.max_stale", "", "0 to 2592000"),
            ("ssm_db_config.timeout_ms", "fast", "50 to 60000"),
            ("ssm_db_config.max_stale", "-1", "0 to 2592000"),
            ("ssm_db_config.region", "EU WEST", "region name"),
            ("ssm_db_config.endpoint_url", "ftp://x", "https://"),
            (
                "ssm_db_config.endpoint_url",
                "http://ssm.example.com",
                "loopback",
            ),
            (
                "ssm_db_config.endpoint_url",
                "http://10.0.0.5:4566",
                "loopback",
            ),
            (
                "ssm_db_config.endpoint_url",
                "https://user:Canary@ssm.example.com",
                "user or password",
            ),
            ("ssm_db_config.shared_dir", "relative/dir", "absolute path"),
            ("ssm_db_config.define_constants", "maybe", "on or off"),
        ];
        for (directive, value, says) in table {
            let problem = check(directive, value).expect_err(directive);
            assert!(problem.contains(says), "{directive}={value}: {problem}");
        }
        for (directive, value) in [
            ("ssm_db_config.max_stale", "0"),
            ("ssm_db_config.ttl", "60"),
        ] {
            assert_eq!(check(directive, value), Ok(None), "{directive}={value}");
        }
        // Refused values fall back to the defaults.
        let st = settings(&[
            ("ttl", "0"),
            ("timeout_ms", "fast"),
            ("region", "EU WEST"),
            ("shared_dir", "rel"),
            ("define_constants", "maybe"),
        ]);
        assert_eq!(st, Settings::default());
    }

    #[test]
    fn names_are_checked_and_never_echoed() {
        let problem = check(
            "ssm_db_config.parameter",
            "mysql://wp:Canary-Pa55-ini@db/wp",
        )
        .unwrap_err();
        assert!(!problem.contains("Canary"), "{problem}");
        assert_eq!(
            shown(
                "ssm_db_config.parameter",
                "mysql://wp:Canary-Pa55-ini@db/wp"
            ),
            "(value not shown)"
        );
        assert_eq!(shown("ssm_db_config.ttl", "5\ns"), "\"5?s\"");
        assert!(check("ssm_db_config.parameter", "/app/db")
            .unwrap()
            .is_none());
        let note = check(
            "ssm_db_config.credentials_parameter",
            "/aws/reference/secretsmanager/rds",
        )
        .unwrap();
        assert!(note.is_some_and(|n| n.contains("quote")));
    }
}

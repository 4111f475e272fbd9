//! The PHP functions: `ssm_db_config()`, `ssm_db_config_define()`, `ssm_db_config_refresh()`, `ssm_db_config_status()`.
//!
//! The handlers are raw `extern "C"` functions rather than `#[php_function]`:
//! the macro's argument parser allocates on every call, and the warm call of
//! `ssm_db_config()` has a budget of about 100 ns. Argument checking is done
//! by hand, with the messages PHP itself would give.

use ext_php_rs::args::Arg;
use ext_php_rs::boxed::ZBox;
use ext_php_rs::builders::FunctionBuilder;
use ext_php_rs::exception::PhpException;
use ext_php_rs::flags::DataType;
use ext_php_rs::types::{ZendHashTable, Zval};
use ext_php_rs::zend::{ce, ExecuteData};
use ssm_db_config_core::VERSION;

use crate::php_array::FrozenArray;
use crate::state::{self, Mode, RequestStart, Sharing};
use crate::{environment, error};
use ssm_db_config_core::Freshness;

const IS_NULL: u8 = 1;
const IS_STRING: u8 = 6;

/// The functions, for the module builder.
pub fn builders() -> Vec<FunctionBuilder<'static>> {
    let with_parameter = |name: &'static str, handler| {
        FunctionBuilder::new(name, handler)
            .not_required()
            .arg(
                Arg::new("parameter", DataType::String)
                    .allow_null()
                    .default("null"),
            )
            .returns(DataType::Array, false, false)
    };
    vec![
        with_parameter("ssm_db_config", ssm_db_config as _),
        with_parameter("ssm_db_config_refresh", ssm_db_config_refresh as _),
        FunctionBuilder::new("ssm_db_config_define", ssm_db_config_define as _)
            .not_required()
            .arg(
                Arg::new("parameter", DataType::String)
                    .allow_null()
                    .default("null"),
            )
            .returns(DataType::Void, false, false),
        FunctionBuilder::new("ssm_db_config_status", ssm_db_config_status as _).returns(
            DataType::Array,
            false,
            false,
        ),
    ]
}

/// Reads the optional `?string $parameter`. `Err` means an error was thrown.
#[inline(always)]
fn parameter_arg<'a>(ex: &'a ExecuteData, function: &str) -> Result<Option<&'a [u8]>, ()> {
    let argc = unsafe { ex.This.u2.num_args };
    if argc == 0 {
        return Ok(None);
    }
    if argc > 1 {
        PhpException::new(
            format!("{function}() expects at most 1 argument, {argc} given"),
            0,
            ce::argument_count_error(),
        )
        .throw();
        return Err(());
    }
    let zv = unsafe { ex.zend_call_arg(0) }.ok_or(())?;
    let type_byte = unsafe { zv.u1.type_info } as u8;
    match type_byte {
        IS_NULL => Ok(None),
        IS_STRING => unsafe {
            let s = zv.value.str_;
            let bytes = std::slice::from_raw_parts((*s).val.as_ptr().cast::<u8>(), (*s).len);
            Ok(Some(bytes))
        },
        _ => {
            PhpException::new(
                format!(
                    "{function}(): Argument #1 ($parameter) must be of type ?string, {} given",
                    type_name(type_byte)
                ),
                0,
                ce::type_error(),
            )
            .throw();
            Err(())
        }
    }
}

/// PHP's own names for argument types in TypeError messages.
fn type_name(type_byte: u8) -> &'static str {
    match type_byte {
        2 | 3 => "bool",
        4 => "int",
        5 => "float",
        7 => "array",
        8 => "object",
        9 => "resource",
        _ => "mixed",
    }
}

/// Hands `use_array` the array for `requested`: the warm path, else the
/// cache or a fetch; on failure throws instead.
#[inline(always)]
fn with_array(requested: Option<&[u8]>, use_array: impl FnOnce(&FrozenArray)) {
    let state = state::get();
    if let Some(array) = state.hot(requested) {
        return use_array(array);
    }
    match state.serve(requested, Mode::Get) {
        Ok(array) => use_array(&array),
        Err(e) => error::throw(&e),
    }
}

extern "C" fn ssm_db_config(ex: &mut ExecuteData, rv: &mut Zval) {
    error::guard(|| {
        let Ok(requested) = parameter_arg(ex, "ssm_db_config") else {
            return;
        };
        with_array(requested, |array| unsafe { array.return_into(rv) });
    })
}

/// `ssm_db_config_define()`: wp-config.php's `define()` calls in one, all or none.
/// Without an argument, after the request's start defined them
/// (`ssm_db_config.define_constants`), it does nothing, or throws what
/// stopped the request's start from defining them.
extern "C" fn ssm_db_config_define(ex: &mut ExecuteData, _rv: &mut Zval) {
    error::guard(|| {
        let Ok(requested) = parameter_arg(ex, "ssm_db_config_define") else {
            return;
        };
        if requested.is_none() {
            match &state::get().request_start {
                RequestStart::Defined => return,
                RequestStart::Failed(e) => return error::throw(e),
                RequestStart::NotTried => {}
            }
        }
        with_array(requested, |array| {
            if unsafe { array.client_flags_lack_ssl() } {
                return error::throw(&state::client_flags_without_ssl());
            }
            match unsafe { array.define_constants() } {
                Ok(()) => unsafe { array.define_client_flags() },
                Err(name) => error::throw(&state::already_defined(name)),
            }
        });
    })
}

extern "C" fn ssm_db_config_refresh(ex: &mut ExecuteData, rv: &mut Zval) {
    error::guard(|| {
        let Ok(requested) = parameter_arg(ex, "ssm_db_config_refresh") else {
            return;
        };
        match state::get().serve(requested, Mode::Refresh) {
            Ok(array) => unsafe { array.return_into(rv) },
            Err(e) => error::throw(&e),
        }
    })
}

extern "C" fn ssm_db_config_status(ex: &mut ExecuteData, rv: &mut Zval) {
    error::guard(|| {
        if unsafe { ex.This.u2.num_args } > 0 {
            PhpException::new(
                "ssm_db_config_status() expects exactly 0 arguments".into(),
                0,
                ce::argument_count_error(),
            )
            .throw();
            return;
        }
        match status_array() {
            Ok(ht) => rv.set_hashtable(ht),
            Err(_) => rv.set_null(),
        }
    })
}

/// Everything an admin page needs, and no secret. The keys are documented in
/// the stub file, `ext/ssm_db_config.stub.php`.
pub fn status_array() -> ext_php_rs::error::Result<ZBox<ZendHashTable>> {
    let state = state::get();
    state.sync_settings();
    let settings = &state.settings;
    let entry = state.status_entry();
    let now = ssm_db_config_core::policy::mono_now_ns();
    let mut ht = ZendHashTable::new();
    ht.insert("extension_version", VERSION)?;
    ht.insert("pid", i64::from(std::process::id()))?;
    ht.insert("parameter", settings.parameter.clone())?;
    ht.insert(
        "credentials_parameter",
        settings.credentials_parameter.clone(),
    )?;
    ht.insert(
        "region",
        state
            .region
            .clone()
            .or_else(|| settings.region.clone())
            .or_else(env_region),
    )?;
    ht.insert(
        "endpoint_url",
        // The endpoint in effect: the directive, else the SDK's variables
        // (SSM's own first), shown only when the fetch would accept it (no
        // credentials in it); a refused one is the fetch's error to tell.
        settings.endpoint_url.clone().or_else(|| {
            ["AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL"]
                .into_iter()
                .find_map(environment::get)
                .filter(|url| ssm_db_config_core::endpoint::check(url).is_ok())
        }),
    )?;
    ht.insert("ttl_seconds", settings.ttl.as_secs() as i64)?;
    ht.insert("max_stale_seconds", settings.max_stale.as_secs() as i64)?;
    ht.insert("timeout_ms", settings.timeout.as_millis() as i64)?;
    ht.insert("define_constants", settings.define_constants)?;
    ht.insert("fleet_hosts", settings.fleet_hosts as i64)?;
    ht.insert("ssm_throughput", settings.ssm_throughput as i64)?;
    ht.insert("max_parameters", settings.max_parameters as i64)?;
    ht.insert("define_constants_state", state.constants_state())?;
    let mut refused = ZendHashTable::new();
    for warning in crate::ini::refused_values() {
        refused.push(warning)?;
    }
    ht.insert("ini_refused", refused)?;
    let (shared_dir, shared_error): (Option<String>, Option<String>) = match state.sharing() {
        Sharing::Ready(dir) | Sharing::Pending(dir) => (Some(dir.display().to_string()), None),
        Sharing::Off(why) => (None, Some(why.to_owned())),
        Sharing::Failed(why) => (None, Some(why)),
    };
    ht.insert("shared_cache", shared_dir.is_some())?;
    ht.insert("shared_dir", shared_dir)?;
    ht.insert("shared_cache_note", shared_error)?;
    let freshness = entry.as_ref().map(|e| state.freshness(e));
    ht.insert("cached", entry.is_some())?;
    ht.insert(
        "fresh",
        matches!(
            freshness,
            Some(Freshness::Fresh { .. } | Freshness::RefreshDue)
        ),
    )?;
    ht.insert(
        "stale",
        matches!(freshness, Some(Freshness::Stale | Freshness::TooOld)),
    )?;
    ht.insert(
        "state",
        match freshness {
            None => "empty",
            Some(Freshness::Fresh { .. }) => "fresh",
            Some(Freshness::RefreshDue) => "refresh_due",
            Some(Freshness::Stale) => "stale",
            Some(Freshness::TooOld) => "too_old",
        },
    )?;
    ht.insert(
        "cached_parameter",
        entry.as_ref().map(|e| e.parameter.clone()),
    )?;
    ht.insert(
        "age_seconds",
        entry.as_ref().map(|e| e.age(now).as_secs_f64()),
    )?;
    ht.insert(
        "refresh_after_seconds",
        entry.as_ref().map(|e| e.refresh_after.as_secs_f64()),
    )?;
    ht.insert("version", entry.as_ref().map(|e| e.version))?;
    ht.insert(
        "credentials_version",
        entry.as_ref().and_then(|e| e.credentials_version),
    )?;
    let tracker = entry
        .as_ref()
        .and_then(|e| state.trackers.get(&e.parameter))
        .cloned()
        .unwrap_or_default();
    ht.insert("consecutive_failures", i64::from(tracker.failures))?;
    ht.insert(
        "next_attempt_in_seconds",
        (tracker.next_attempt_ns > now).then(|| (tracker.next_attempt_ns - now) as f64 / 1e9),
    )?;
    ht.insert(
        "stale_reason",
        match freshness {
            Some(Freshness::Stale | Freshness::TooOld) => {
                tracker.last_error.as_ref().map(|e| e.message.clone())
            }
            _ => None,
        },
    )?;
    let config = entry.as_ref().map(|e| &e.config);
    ht.insert("engine", config.map(|c| c.engine.as_str()))?;
    ht.insert("host", config.map(|c| c.host.clone()))?;
    ht.insert("port", config.map(|c| i64::from(c.port)))?;
    ht.insert("socket", config.and_then(|c| c.socket.clone()))?;
    ht.insert("user", config.map(|c| c.user.clone()))?;
    ht.insert("dbname", config.map(|c| c.dbname.clone()))?;
    // How the password is made; never the token itself.
    ht.insert(
        "auth",
        config.map(|c| match c.iam_sign_host() {
            Some(_) => "iam",
            None => "password",
        }),
    )?;
    ht.insert(
        "iam_host",
        config.and_then(|c| c.iam_sign_host().map(str::to_owned)),
    )?;
    ht.insert(
        "iam_token_age_seconds",
        entry
            .as_ref()
            .and_then(|e| e.iam_token.as_ref())
            .map(|t| t.age(now).as_secs_f64()),
    )?;
    let mut options = ZendHashTable::new();
    for (k, v) in config.map(|c| c.options.as_slice()).unwrap_or_default() {
        options.insert(k.as_str(), v.as_str())?;
    }
    ht.insert("options", options)?;
    let c = state.counters;
    ht.insert("hits", c.hits as i64)?;
    ht.insert("misses", c.misses as i64)?;
    ht.insert("fetches", c.fetches as i64)?;
    ht.insert("errors", c.errors as i64)?;
    ht.insert("shared_hits", c.shared_hits as i64)?;
    ht.insert("ssm_requests", c.ssm_requests as i64)?;
    ht.insert("parameters_cached", state.parameters_cached() as i64)?;
    match &state.last_error {
        None => ht.insert("last_error", Option::<i64>::None)?,
        Some(e) => {
            let mut err = ZendHashTable::new();
            err.insert("kind", e.kind.name())?;
            err.insert("code", i64::from(e.kind.code()))?;
            err.insert("message", e.message.as_str())?;
            ht.insert("last_error", err)?;
        }
    }
    ht.insert(
        "last_fetch_duration_ms",
        state.last_fetch.map(|(d, _)| d.as_secs_f64() * 1000.0),
    )?;
    ht.insert(
        "last_fetch_time",
        state
            .last_fetch
            .and_then(|(_, t)| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64()),
    )?;
    Ok(ht)
}

fn env_region() -> Option<String> {
    environment::get("AWS_REGION").or_else(|| environment::get("AWS_DEFAULT_REGION"))
}

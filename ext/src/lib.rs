//! The `ssm_db_config` PHP extension: WordPress's database settings from AWS
//! SSM Parameter Store, cached in the PHP process. A thin layer over
//! `ssm-db-config-core`, which does the parsing, fetching and cache policy.
//!
//! # Layout
//! - [`functions`]: the four PHP functions and the status array.
//! - [`state`]: the per-process cache, counters and the warm path.
//! - [`php_array`]: the immutable persistent array a warm call returns, the constants made
//!   from it, and those a worker keeps across requests (`ssm_db_config.define_constants`).
//! - [`refresher`]: the per-process thread that fetches (fork safety, refresh-ahead).
//! - [`environment`]: `AWS_*` captured in the php-fpm master for its workers.
//! - [`ini`]: the `ssm_db_config.*` directives and their validation.
//! - [`error`]: `SsmDbConfigException`, the one mapping from core errors to PHP.
//! - [`info`]: the phpinfo() section.
#![allow(clippy::missing_safety_doc)]

use ext_php_rs::prelude::*;
use ext_php_rs::zend::IniEntryDef;
use std::sync::atomic::{AtomicBool, Ordering};

pub mod environment;
pub mod error;
pub mod functions;
pub mod info;
pub mod ini;
pub mod php_array;
pub mod refresher;
pub mod state;

const E_WARNING: i32 = 2;

extern "C" {
    fn zend_unregister_ini_entries(module_number: i32);
    static mut module_registry: ext_php_rs::ffi::HashTable;
}

/// MINIT: directives, settings, the exception class, the array keys. No
/// thread, runtime, socket or AWS client is created here (see `runtime`).
fn startup(_ty: i32, module_number: i32) -> i32 {
    IniEntryDef::register(ini::INI_ENTRIES.as_slice(), module_number);
    let (settings, warnings) = ini::Settings::from_ini();
    for warning in warnings {
        if let Ok(msg) = std::ffi::CString::new(warning) {
            unsafe { ext_php_rs::ffi::php_error_docref(std::ptr::null(), E_WARNING, c"%s".as_ptr(), msg.as_ptr()) };
        }
    }
    environment::capture();
    let sapi = unsafe { ext_php_rs::ffi::sapi_module.name.as_ref().map(|n| std::ffi::CStr::from_ptr(n).to_string_lossy().into_owned()) }
        .unwrap_or_default();
    if PARENT_SERVES_NOTHING_SAPIS.contains(&sapi.as_str()) {
        PARENT_SERVES_NOTHING.store(true, Ordering::Relaxed);
        // Apache may run startup twice in its parent: register once.
        static REGISTERED: std::sync::Once = std::sync::Once::new();
        REGISTERED.call_once(|| unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
        });
    }
    if error::register().is_err() {
        return 1;
    }
    if !settings.define_constants {
        drop_request_startup();
    }
    let sharing = sharing_for(&settings, &sapi);
    state::init(settings, php_array::Keys::intern(), sharing);
    0
}

/// SAPIs whose processes fork from one parent and can share one cache.
const SHARING_SAPIS: [&str; 3] = ["fpm-fcgi", "apache2handler", "litespeed"];

/// Decides at startup whether workers share their cache, and makes the key.
fn sharing_for(settings: &ini::Settings, sapi: &str) -> state::Sharing {
    let Some(dir) = &settings.shared_dir else { return state::Sharing::Off("ssm_db_config.shared_dir = off") };
    if !SHARING_SAPIS.contains(&sapi) {
        return state::Sharing::Off("this SAPI does not fork workers from one master");
    }
    match ssm_db_config_core::SharedKey::generate() {
        // Lives as long as the process; workers inherit it through fork.
        Ok(key) => state::Sharing::Pending(dir.clone(), Box::leak(Box::new(key))),
        Err(_) => state::Sharing::Off("no randomness for the shared cache key"),
    }
}

extern "C" {
    fn php_log_err_with_severity(message: *const std::ffi::c_char, syslog_type: i32);
}

/// Writes a line to PHP's error log (never to the page). Call from the PHP thread.
pub fn log(message: &str) {
    const LOG_WARNING: i32 = 4;
    if let Ok(message) = std::ffi::CString::new(message) {
        unsafe { php_log_err_with_severity(message.as_ptr(), LOG_WARNING) };
    }
}

extern "C" fn shutdown(_ty: i32, module_number: i32) -> i32 {
    unsafe { zend_unregister_ini_entries(module_number) };
    if let Some(kept) = state::get().kept_constants.take() {
        unsafe { kept.release_at_shutdown() };
    }
    0
}

/// RINIT: with `ssm_db_config.define_constants`, the DB_* constants.
extern "C" fn request_startup(_ty: i32, _module_number: i32) -> i32 {
    let state = state::get();
    if state.settings.define_constants && !in_forking_parent() {
        // Kept across requests only in a worker that fork made: in the
        // other SAPIs (the CLI, CGI) a process serves one request or
        // `dl()` may ask the engine to destroy every constant not flagged
        // persistent at the request's end, these included.
        state.define_at_request_start(FORKED.load(Ordering::Relaxed));
    }
    0
}

/// Takes the RINIT hook out of the module's entry: with
/// `ssm_db_config.define_constants` off it has nothing to do, and PHP calls
/// every module's hook on every request (about 50 instructions). PHP lists
/// the hooks to call after all modules' startup, so this is in time.
fn drop_request_startup() {
    const NAME: &str = "ssm_db_config";
    unsafe {
        let zv = ext_php_rs::ffi::zend_hash_str_find(std::ptr::addr_of!(module_registry), NAME.as_ptr().cast(), NAME.len());
        if let Some(zv) = zv.as_ref() {
            let entry = zv.value.ptr.cast::<ext_php_rs::ffi::zend_module_entry>();
            if let Some(entry) = entry.as_mut() {
                entry.request_startup_func = None;
            }
        }
    }
}

/// Whether this process is php-fpm's master or Apache's parent, which serve
/// no request but run one at startup for `opcache.preload`: no fetch may
/// start there (see `refresher`), so that request start defines nothing.
fn in_forking_parent() -> bool {
    PARENT_SERVES_NOTHING.load(Ordering::Relaxed) && !FORKED.load(Ordering::Relaxed)
}

/// SAPIs whose parent process only forks workers. (LiteSpeed's lsphp may
/// serve requests itself when it runs without children, so it is not one.)
const PARENT_SERVES_NOTHING_SAPIS: [&str; 2] = ["fpm-fcgi", "apache2handler"];
static PARENT_SERVES_NOTHING: AtomicBool = AtomicBool::new(false);
/// Set in the child by fork (a `pthread_atfork` handler registered at startup).
static FORKED: AtomicBool = AtomicBool::new(false);

extern "C" fn after_fork_in_child() {
    FORKED.store(true, Ordering::Relaxed);
}

/// After the request's variables are gone: free arrays replaced during it.
extern "C" fn post_deactivate() -> i32 {
    state::get().end_request();
    0
}

#[php_module]
#[php(startup = startup)]
pub fn get_module(module: ModuleBuilder) -> ModuleBuilder {
    let module = module
        .name("ssm_db_config")
        .shutdown_function(shutdown)
        .request_startup_function(request_startup)
        .post_deactivate_function(post_deactivate)
        .info_function(info::info);
    functions::builders().into_iter().fold(module, |m, f| m.function(f))
}

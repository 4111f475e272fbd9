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
}

/// MINIT: directives, the exception class, the array keys, the shared-cache
/// key. No thread, runtime, socket or AWS client is created here (see
/// `refresher`), and no setting is read for later: a php-fpm pool's
/// `php_admin_value` lines reach the worker after the fork (see `ini`).
fn startup(_ty: i32, module_number: i32) -> i32 {
    IniEntryDef::register(ini::INI_ENTRIES.as_slice(), module_number);
    environment::capture();
    let sapi = unsafe {
        ext_php_rs::ffi::sapi_module
            .name
            .as_ref()
            .map(|n| std::ffi::CStr::from_ptr(n).to_string_lossy().into_owned())
    }
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
    let shared_key = shared_key_for(&sapi);
    if shared_key.is_ok() {
        // The master holds the key and the AWS environment it captured from
        // now on; its workers inherit the setting through fork.
        keep_out_of_core_dumps();
        UNDUMPABLE_FROM_STARTUP.store(true, Ordering::Relaxed);
    }
    state::init(php_array::Keys::intern(), shared_key);
    0
}

/// Makes this process non-dumpable (`PR_SET_DUMPABLE` 0): with the kernel's
/// default `fs.suid_dumpable = 0` a crash writes no core file, and other
/// processes of the same user can no longer ptrace it or read its
/// `/proc/PID/mem`, `environ` or `maps`. A core dump of a PHP process holds
/// every secret in it: the database password (in PHP's own arrays and
/// strings as much as ours), the shared-cache key and the AWS credentials
/// the SDK resolved. Only marking pages `MADV_DONTDUMP` would keep the rest
/// of a core, but PHP's allocator and the SDK's place those copies where no
/// extension can mark them, so the whole process is kept out.
///
/// Done in the php-fpm master (or Apache's parent) at startup, inherited by
/// every worker through fork: the same state php-fpm leaves its workers in
/// when it switches them to the pool's user, which a pool's
/// `process.dumpable = yes` undoes for debugging; that setting is left to
/// win. Elsewhere (the CLI, CGI) done before the process's first fetch, see
/// [`before_first_fetch`], so a CLI that never reads a parameter keeps its
/// core dumps.
fn keep_out_of_core_dumps() {
    // SAFETY: PR_SET_DUMPABLE takes one integer argument.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
}

/// Set in a master that made itself non-dumpable at startup; inherited by its workers.
static UNDUMPABLE_FROM_STARTUP: AtomicBool = AtomicBool::new(false);

/// Called before a fetch: a process that did not become non-dumpable at
/// startup does so now, before it holds a secret (see [`keep_out_of_core_dumps`]).
pub fn before_first_fetch() {
    static DONE: std::sync::Once = std::sync::Once::new();
    if !UNDUMPABLE_FROM_STARTUP.load(Ordering::Relaxed) {
        DONE.call_once(keep_out_of_core_dumps);
    }
}

/// SAPIs whose processes fork from one parent and can share one cache.
const SHARING_SAPIS: [&str; 3] = ["fpm-fcgi", "apache2handler", "litespeed"];

/// The key of the host's shared cache, made here in the parent so that every
/// worker inherits it through fork, whatever its pool later sets
/// `ssm_db_config.shared_dir` to; or why there is none.
fn shared_key_for(sapi: &str) -> Result<&'static ssm_db_config_core::SharedKey, &'static str> {
    if !SHARING_SAPIS.contains(&sapi) {
        return Err("this SAPI does not fork workers from one master");
    }
    match ssm_db_config_core::SharedKey::generate() {
        // Lives as long as the process; workers inherit it through fork.
        Ok(key) => Ok(Box::leak(Box::new(key))),
        Err(_) => Err("no randomness for the shared cache key"),
    }
}

/// A warning at startup, where PHP shows startup errors (the CLI's stderr,
/// php-fpm's log). Call from the PHP thread.
pub fn startup_warning(message: &str) {
    if let Ok(msg) = std::ffi::CString::new(message) {
        unsafe {
            ext_php_rs::ffi::php_error_docref(
                std::ptr::null(),
                E_WARNING,
                c"%s".as_ptr(),
                msg.as_ptr(),
            )
        };
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
    // No panic may unwind into the engine.
    let _ = std::panic::catch_unwind(|| {
        if let Some(kept) = state::get().kept_constants.take() {
            unsafe { kept.release_at_shutdown() };
        }
    });
    0
}

/// RINIT: with `ssm_db_config.define_constants`, the DB_* constants. The
/// hook stays registered with the directive off (a pool may turn it on after
/// the fork, when the engine's list of hooks is fixed); then it only reads
/// the settings' generation.
extern "C" fn request_startup(_ty: i32, _module_number: i32) -> i32 {
    // No panic may unwind into the engine.
    let _ = std::panic::catch_unwind(|| {
        let state = state::get();
        state.sync_settings();
        if in_forking_parent() {
            return;
        }
        if state.settings.define_constants {
            // Kept across requests only in a worker that fork made: in the
            // other SAPIs (the CLI, CGI) a process serves one request or
            // `dl()` may ask the engine to destroy every constant not flagged
            // persistent at the request's end, these included.
            state.define_at_request_start(FORKED.load(Ordering::Relaxed));
        } else {
            state.drop_kept_constants();
        }
    });
    0
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
    // No panic may unwind into the engine.
    let _ = std::panic::catch_unwind(|| state::get().end_request());
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
    functions::builders()
        .into_iter()
        .fold(module, |m, f| m.function(f))
}

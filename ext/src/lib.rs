//! The `ssm_db_config` PHP extension: WordPress's database settings from AWS
//! SSM Parameter Store, cached in the PHP process. A thin layer over
//! `ssm-db-config-core`, which does the parsing, fetching and cache policy.
//!
//! # Layout
//! - [`functions`]: the three PHP functions and the status array.
//! - [`state`]: the per-process cache, counters and the warm path.
//! - [`php_array`]: the immutable persistent array a warm call returns.
//! - [`runtime`]: the per-process tokio runtime and SSM client (fork safety).
//! - [`environment`]: `AWS_*` captured in the php-fpm master for its workers.
//! - [`ini`]: the `ssm_db_config.*` directives and their validation.
//! - [`error`]: `SsmDbConfigException`, the one mapping from core errors to PHP.
//! - [`info`]: the phpinfo() section.
#![allow(clippy::missing_safety_doc)]

use ext_php_rs::prelude::*;
use ext_php_rs::zend::IniEntryDef;

pub mod environment;
pub mod error;
pub mod functions;
pub mod info;
pub mod ini;
pub mod php_array;
pub mod runtime;
pub mod state;

const E_WARNING: i32 = 2;

extern "C" {
    fn zend_unregister_ini_entries(module_number: i32);
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
    if error::register().is_err() {
        return 1;
    }
    state::init(settings, php_array::Keys::intern());
    0
}

extern "C" fn shutdown(_ty: i32, module_number: i32) -> i32 {
    unsafe { zend_unregister_ini_entries(module_number) };
    0
}

/// After the request's variables are gone: free arrays replaced during it.
extern "C" fn post_deactivate() -> i32 {
    state::get().free_retired();
    0
}

#[php_module]
#[php(startup = startup)]
pub fn get_module(module: ModuleBuilder) -> ModuleBuilder {
    let module = module
        .name("ssm_db_config")
        .shutdown_function(shutdown)
        .post_deactivate_function(post_deactivate)
        .info_function(info::info);
    functions::builders().into_iter().fold(module, |m, f| m.function(f))
}

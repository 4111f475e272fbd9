//! The phpinfo() section: support, version, every directive, counters, the
//! cached value's age and the last error. Never a secret: only the same
//! non-secret fields as the status array.

use std::ffi::CString;

use ext_php_rs::ffi::{
    php_info_print_table_end, php_info_print_table_header, php_info_print_table_row,
    php_info_print_table_start,
};
use ext_php_rs::zend::ModuleEntry;
use ssm_db_config_core::VERSION;

use crate::state::{self, Sharing};
use ssm_db_config_core::Freshness;

extern "C" {
    // Exported by PHP (main/php_ini.h); not in ext-php-rs's bindings.
    fn display_ini_entries(module: *mut ModuleEntry);
}

fn row(name: &str, value: &str) {
    let name = CString::new(name).unwrap_or_default();
    let value = CString::new(value).unwrap_or_default();
    unsafe { php_info_print_table_row(2, name.as_ptr(), value.as_ptr()) };
}

// PHP calls this with its own entry for this module; the signature is the engine's.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub extern "C" fn info(module: *mut ModuleEntry) {
    // No panic may unwind into the engine.
    let _ = std::panic::catch_unwind(|| info_section(module));
}

fn info_section(module: *mut ModuleEntry) {
    let state = state::get();
    state.sync_settings();
    unsafe {
        php_info_print_table_start();
        php_info_print_table_header(2, c"ssm_db_config support".as_ptr(), c"enabled".as_ptr());
    }
    row("Version", VERSION);
    let c = state.counters;
    row("Cache hits", &c.hits.to_string());
    row("Cache misses", &c.misses.to_string());
    row("Fetches", &c.fetches.to_string());
    row("Fetch errors", &c.errors.to_string());
    row("Values from the shared cache", &c.shared_hits.to_string());
    row("SSM requests", &c.ssm_requests.to_string());
    row(
        "Shared cache",
        &match state.sharing() {
            Sharing::Ready(dir) => dir.display().to_string(),
            Sharing::Pending(dir) => format!("{} (set up at first use)", dir.display()),
            Sharing::Off(why) => format!("off ({why})"),
            Sharing::Failed(why) => format!("unusable ({why})"),
        },
    );
    match state.status_entry() {
        Some(entry) => {
            let label = match state.freshness(&entry) {
                Freshness::Fresh { .. } => "fresh",
                Freshness::RefreshDue => "fresh, refresh due",
                Freshness::Stale => "stale: refreshing fails",
                Freshness::TooOld => "too old to serve",
            };
            row("Cached parameter", &entry.parameter);
            row(
                "Cached value age",
                &format!(
                    "{:.1} s ({label})",
                    entry
                        .age(ssm_db_config_core::policy::mono_now_ns())
                        .as_secs_f64()
                ),
            );
            row("Parameter version", &entry.version.to_string());
        }
        None => row("Cached value age", "nothing cached in this process"),
    }
    row(
        "Last error",
        state
            .last_error
            .as_ref()
            .map_or("none", |e| e.message.as_str()),
    );
    for refused in crate::ini::refused_values() {
        row("Refused setting", &refused);
    }
    unsafe {
        php_info_print_table_end();
        display_ini_entries(module);
    }
}

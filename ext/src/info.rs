//! The phpinfo() section: support, version, every directive, counters, the
//! cached value's age and the last error. Never a secret: only the same
//! non-secret fields as the status array.

use std::ffi::CString;

use ext_php_rs::ffi::{php_info_print_table_end, php_info_print_table_header, php_info_print_table_row, php_info_print_table_start};
use ext_php_rs::zend::ModuleEntry;
use ssm_db_config_core::VERSION;

use crate::state;

extern "C" {
    // Exported by PHP (main/php_ini.h); not in ext-php-rs's bindings.
    fn display_ini_entries(module: *mut ModuleEntry);
}

fn row(name: &str, value: &str) {
    let name = CString::new(name).unwrap_or_default();
    let value = CString::new(value).unwrap_or_default();
    unsafe { php_info_print_table_row(2, name.as_ptr(), value.as_ptr()) };
}

pub extern "C" fn info(module: *mut ModuleEntry) {
    let state = state::get();
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
    match state.status_entry() {
        Some((entry, fresh)) => {
            row("Cached parameter", &entry.parameter);
            row("Cached value age", &format!("{:.1} s ({})", entry.age(std::time::Instant::now()).as_secs_f64(), if fresh { "fresh" } else { "expired" }));
            row("Parameter version", &entry.version.to_string());
        }
        None => row("Cached value age", "nothing cached in this process"),
    }
    row("Last error", state.last_error.as_ref().map_or("none", |e| e.message.as_str()));
    unsafe {
        php_info_print_table_end();
        display_ini_entries(module);
    }
}

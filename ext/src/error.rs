//! `SsmDbConfigException`, and the one place where core errors become PHP exceptions.
//!
//! The exception's code is the stable number of the error's kind (also class
//! constants, e.g. `SsmDbConfigException::NOT_FOUND`), and its message is the
//! core error's, which names the parameter and never the value. The backtrace
//! is captured with `zend.exception_ignore_args` forced on, so that no
//! caller's arguments (a password a caller passed around, say) end up in it.

use std::sync::atomic::{AtomicPtr, Ordering};

use ext_php_rs::builders::ClassBuilder;
use ext_php_rs::exception::throw_with_code;
use ext_php_rs::flags::ConstantFlags;
use ext_php_rs::zend::{ClassEntry, ExecutorGlobals};
use ssm_db_config_core::{Error, ErrorKind};

/// The class name PHP code catches.
pub const CLASS_NAME: &str = "SsmDbConfigException";

static CLASS: AtomicPtr<ClassEntry> = AtomicPtr::new(std::ptr::null_mut());

extern "C" {
    // Exported by PHP's SPL (always compiled in, started before extensions);
    // not in ext-php-rs's bindings. At MINIT the executor's class table is
    // not set up yet, so looking the class up by name does not work.
    static spl_ce_RuntimeException: *mut ClassEntry;
}

fn runtime_exception() -> &'static ClassEntry {
    // A panic here would abort PHP at startup; fall back to \Exception instead.
    unsafe { spl_ce_RuntimeException.as_ref() }.unwrap_or_else(ext_php_rs::zend::ce::exception)
}

/// The class constant name for a kind, e.g. `NOT_FOUND`.
pub fn constant_name(kind: ErrorKind) -> String {
    kind.name().to_ascii_uppercase()
}

/// Registers the class. Call from module startup.
pub fn register() -> ext_php_rs::error::Result<()> {
    let mut builder = ClassBuilder::new(CLASS_NAME)
        .extends((runtime_exception, "RuntimeException"))
        .registration(|ce, _| {
            CLASS.store(ce, Ordering::Relaxed);
        });
    for kind in ErrorKind::ALL {
        builder = builder.constant(
            constant_name(kind),
            i64::from(kind.code()),
            &[],
            ConstantFlags::Public,
        )?;
    }
    builder.register()
}

/// Runs the body of a function PHP calls. A panic in it (a bug) becomes an
/// `SsmDbConfigException` with code `INTERNAL` instead of unwinding into
/// the engine, which would abort the worker (and a core dump would hold
/// the worker's secrets). Costs nothing unless something panics.
#[inline(always)]
pub fn guard(body: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).is_err() {
        throw(&Error::Internal);
    }
}

/// Throws `error` as an `SsmDbConfigException`.
pub fn throw(error: &Error) {
    let Some(ce) = (unsafe { CLASS.load(Ordering::Relaxed).as_ref() }) else {
        return;
    };
    let previous = std::mem::replace(&mut ExecutorGlobals::get_mut().exception_ignore_args, true);
    let _ = throw_with_code(ce, error.kind().code(), &error.to_string());
    ExecutorGlobals::get_mut().exception_ignore_args = previous;
}

#[cfg(test)]
mod tests {
    /// Every function the engine calls (`extern "C" fn` in this crate) runs
    /// its body inside `guard` or `catch_unwind`: a panic unwinding into PHP
    /// would abort the worker, and its core dump would hold its secrets.
    #[test]
    fn every_entry_point_from_the_engine_catches_panics() {
        let sources = [
            ("functions.rs", include_str!("functions.rs")),
            ("info.rs", include_str!("info.rs")),
            ("ini.rs", include_str!("ini.rs")),
            ("lib.rs", include_str!("lib.rs")),
            ("php_array.rs", include_str!("php_array.rs")),
            ("state.rs", include_str!("state.rs")),
            ("refresher.rs", include_str!("refresher.rs")),
            ("environment.rs", include_str!("environment.rs")),
        ];
        let mut checked = 0;
        for (file, text) in sources {
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let l = line.trim_start();
                let is_definition = (l.starts_with("extern \"C\" fn ")
                    || l.starts_with("pub extern \"C\" fn ")
                    || l.starts_with("unsafe extern \"C\" fn ")
                    || l.starts_with("pub unsafe extern \"C\" fn "))
                    && !l.ends_with(';');
                if !is_definition {
                    continue;
                }
                checked += 1;
                // A handler with nothing that can panic: setting one atomic.
                let body: String = lines[i..(i + 12).min(lines.len())].join("\n");
                let trivial = body.contains("FORKED.store(true")
                    && lines[i..].iter().take(3).any(|l| l.trim() == "}");
                assert!(
                    trivial || body.contains("guard(") || body.contains("catch_unwind("),
                    "{file}:{}: `{l}` must run its body in error::guard or catch_unwind",
                    i + 1
                );
            }
        }
        assert!(checked >= 8, "found only {checked} entry points");
    }
}

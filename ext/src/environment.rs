//! The `AWS_*` environment, captured in the php-fpm master.
//!
//! php-fpm's default `clear_env = yes` empties each worker's environment, which
//! would remove `AWS_REGION`, `AWS_ENDPOINT_URL`, the ECS container-credential
//! variables and the EKS web-identity variables that the SDK's default chain
//! reads. So the module captures every `AWS_*` variable at startup (in the
//! master, before any fork) and, in a process that does not have them, puts
//! them back into the environment just before that process first builds its
//! AWS client. A variable the worker does have (e.g. from the pool's `env[]`)
//! wins over the captured one.
//!
//! Setting the environment is only safe while no other thread reads it, which
//! is why [`restore_into_process`] runs before this process starts its runtime.

use std::ffi::OsString;
use std::sync::OnceLock;

use zeroize::Zeroizing;

static CAPTURED: OnceLock<Vec<(OsString, Zeroizing<Vec<u8>>)>> = OnceLock::new();

/// Remembers the process's `AWS_*` variables. Call once, at module startup.
pub fn capture() {
    use std::os::unix::ffi::OsStrExt;
    CAPTURED.get_or_init(|| {
        std::env::vars_os()
            .filter(|(k, _)| k.as_bytes().starts_with(b"AWS_"))
            .map(|(k, v)| (k, Zeroizing::new(v.as_bytes().to_vec())))
            .collect()
    });
}

/// Puts back captured variables this process lacks. Returns how many.
pub fn restore_into_process() -> usize {
    use std::os::unix::ffi::OsStrExt;
    let mut restored = 0;
    for (key, value) in CAPTURED.get().map(Vec::as_slice).unwrap_or_default() {
        if std::env::var_os(key).is_none() {
            std::env::set_var(key, std::ffi::OsStr::from_bytes(value));
            restored += 1;
        }
    }
    restored
}

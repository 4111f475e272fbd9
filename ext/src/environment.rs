//! The `AWS_*` environment, captured in the php-fpm master and handed to the
//! AWS SDK, never to the worker's environment.
//!
//! php-fpm's default `clear_env = yes` empties each worker's environment,
//! which would remove `AWS_REGION`, `AWS_ENDPOINT_URL`, the access keys, the
//! ECS container-credential variables and the EKS web-identity variables that
//! the SDK's default chain reads. So the module captures every `AWS_*`
//! variable at startup (in the master, before any fork) and gives them to the
//! SDK as its environment (`core::fetch::Environment`). Putting them back into
//! the worker's process environment would show the secret key to every
//! script through `getenv()`, `$_SERVER` and phpinfo(). A variable the worker
//! has of its own (e.g. from the pool's `env[AWS_REGION] = ...`) wins.

use std::sync::{Arc, OnceLock};

use ssm_db_config_core::fetch::Environment;
use ssm_db_config_core::Secret;

static CAPTURED: OnceLock<Vec<(String, Secret)>> = OnceLock::new();

/// Remembers the process's `AWS_*` variables. Call once, at module startup.
pub fn capture() {
    CAPTURED.get_or_init(|| std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).filter(|(k, _)| k.starts_with("AWS_")).map(|(k, v)| (k, Secret::new(v))).collect());
}

/// The environment the SDK resolves from: this process's variables, then the
/// captured ones it lacks.
pub fn for_sdk() -> Arc<Environment> {
    let own = std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, Secret::new(v.into_string().ok()?))));
    let captured = CAPTURED.get().into_iter().flatten().cloned();
    Arc::new(Environment::new(own.chain(captured)))
}

/// One variable as the SDK sees it (for the status array: region, endpoint).
pub fn get(name: &str) -> Option<String> {
    std::env::var(name).ok().or_else(|| CAPTURED.get()?.iter().find(|(k, _)| k == name).map(|(_, v)| v.expose().to_owned()))
}

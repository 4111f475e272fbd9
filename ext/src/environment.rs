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
use ssm_db_config_core::{ExposeSecret, SecretString};

static CAPTURED: OnceLock<Vec<(String, SecretString)>> = OnceLock::new();

/// Remembers the process's `AWS_*` variables. Call once, at module startup.
pub fn capture() {
    CAPTURED.get_or_init(|| {
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with("AWS_"))
            .map(|(k, v)| (k, SecretString::from(v)))
            .collect()
    });
}

/// The environment the SDK resolves from: this process's variables, then the
/// captured ones it lacks.
pub fn for_sdk() -> Arc<Environment> {
    let own = std::env::vars_os().filter_map(|(k, v)| {
        Some((
            k.into_string().ok()?,
            SecretString::from(v.into_string().ok()?),
        ))
    });
    let captured = CAPTURED.get().into_iter().flatten().cloned();
    Arc::new(Environment::new(own.chain(captured)))
}

/// One variable as the SDK sees it (for the status array: region, endpoint).
pub fn get(name: &str) -> Option<String> {
    std::env::var(name).ok().or_else(|| {
        CAPTURED
            .get()?
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.expose_secret().to_owned())
    })
}

/// Variables whose value is a secret: never part of [`scope`].
const SECRET_VARIABLES: [&str; 3] = [
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

/// What decides, besides php.ini, which account, region and endpoint the SDK
/// reads from: every `AWS_*` variable it sees (the secret ones left out: the
/// access key id names the account well enough) and `HOME` (the profile
/// files), one `NAME=value` per line, sorted. Two php-fpm pools of one user
/// whose `env[...]` lines differ here must not share a cache entry.
pub fn scope() -> String {
    let environment = for_sdk();
    let mut names: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .chain(CAPTURED.get().into_iter().flatten().map(|(k, _)| k.clone()))
        .filter(|k| {
            (k.starts_with("AWS_") && !SECRET_VARIABLES.contains(&k.as_str())) || k == "HOME"
        })
        .collect();
    names.sort();
    names.dedup();
    names
        .iter()
        .map(|k| format!("{k}={}\n", environment.get(k).unwrap_or_default()))
        .collect()
}

//! The tokio runtime and the SSM client, one of each per *process*.
//!
//! php-fpm loads the extension in the master and forks workers from it, and
//! `opcache.preload` may call our functions in the master before that fork. A
//! runtime or client inherited through `fork` is unusable: its threads and its
//! epoll and socket state stayed behind in the parent, and a worker that uses
//! it hangs. So:
//! - nothing here is created at module startup, only on the first fetch;
//! - the runtime is current-thread (PHP is single-threaded per process; it
//!   needs no worker threads), built lazily and tagged with the process id;
//! - when the process id differs from the one that built it, the inherited
//!   runtime and client are leaked, not dropped (dropping would try to shut
//!   down threads that do not exist in this process), and new ones are built.
//!
//! Blocking threads (getaddrinfo) exit one second after their last use, so an
//! idle process keeps no thread of ours around for long.

use std::time::Duration;

use ssm_db_config_core::{CachedConfig, Error, FetchSettings, SsmFetcher};
use tokio::runtime::Runtime;

use crate::environment;
use crate::ini::Settings;

struct ProcessRuntime {
    pid: u32,
    runtime: Runtime,
    fetcher: Option<SsmFetcher>,
}

// PHP (NTS) runs one request at a time on one thread, and this is only touched
// from our PHP functions.
static mut CURRENT: Option<ProcessRuntime> = None;

#[allow(static_mut_refs)]
fn current() -> Result<&'static mut ProcessRuntime, Error> {
    let pid = std::process::id();
    let slot = unsafe { &mut CURRENT };
    if slot.as_ref().is_some_and(|r| r.pid != pid) {
        // Inherited through fork: leak it (see the module doc).
        std::mem::forget(slot.take());
    }
    if slot.is_none() {
        environment::restore_into_process();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(2)
            .thread_keep_alive(Duration::from_secs(1))
            .build()
            .map_err(|_| Error::BadConfiguration("could not start the I/O runtime".into()))?;
        *slot = Some(ProcessRuntime { pid, runtime, fetcher: None });
    }
    Ok(slot.as_mut().expect("set above"))
}

/// Fetches and parses one parameter under the settings' budget.
pub fn fetch(settings: &Settings, parameter: &str) -> Result<(CachedConfig, String), Error> {
    let process = current()?;
    let ProcessRuntime { runtime, fetcher, .. } = process;
    runtime.block_on(async {
        if fetcher.is_none() {
            let fetch_settings = FetchSettings {
                region: settings.region.clone(),
                endpoint_url: settings.endpoint_url.clone(),
                timeout: settings.timeout,
            };
            *fetcher = Some(SsmFetcher::new(&fetch_settings).await?);
        }
        let fetcher = fetcher.as_ref().expect("set above");
        let fetched = fetcher.get(parameter).await?;
        Ok((CachedConfig::from_fetched(parameter, fetched)?, fetcher.region().to_owned()))
    })
}

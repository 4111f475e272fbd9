//! Everything the extension remembers in one PHP process.
//!
//! PHP as Debian ships it is NTS: one thread per process, one request at a
//! time. The state is therefore a plain static reached through [`get`], with
//! no lock: a warm call must not wait on a lock that a fetch holds, and with
//! one thread none can.
//!
//! The warm path is [`State::hot`]: the last array served, its parameter and
//! the coarse-clock instant until which it is fresh. Everything else (the moka
//! cache, the map of built arrays, counters) is touched only on a miss.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ssm_db_config_core::{CachedConfig, ConfigCache, Error, ErrorKind, Lookup};

use crate::ini::Settings;
use crate::php_array::{FrozenArray, Keys};
use crate::runtime;

/// Counters reported by `ssm_db_config_status()` and phpinfo().
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// Calls answered from the cache.
    pub hits: u64,
    /// Calls that found no fresh value and had to fetch.
    pub misses: u64,
    /// Fetches attempted (misses plus explicit refreshes).
    pub fetches: u64,
    /// Fetches that failed.
    pub errors: u64,
}

/// The last failure, for the status array. The message is the exception's.
#[derive(Debug, Clone)]
pub struct LastError {
    pub kind: ErrorKind,
    pub message: String,
}

struct Served {
    entry: Arc<CachedConfig>,
    array: Arc<FrozenArray>,
}

struct Hot {
    /// `None` when serving the default parameter (called without an argument).
    explicit: Option<Box<[u8]>>,
    array: Arc<FrozenArray>,
    fresh_until_ns: u64,
}

pub struct State {
    pub settings: Settings,
    keys: Keys,
    cache: ConfigCache,
    served: HashMap<String, Served>,
    hot: Option<Hot>,
    /// Arrays replaced during this request; freed after it (see php_array).
    retired: Vec<Arc<FrozenArray>>,
    pub counters: Counters,
    pub last_error: Option<LastError>,
    pub last_fetch: Option<(Duration, SystemTime)>,
    pub region: Option<String>,
}

static mut STATE: Option<State> = None;

/// Sets the state up; called once from module startup.
pub fn init(settings: Settings, keys: Keys) {
    let cache = ConfigCache::new(settings.ttl);
    unsafe {
        STATE = Some(State {
            settings,
            keys,
            cache,
            served: HashMap::new(),
            hot: None,
            retired: Vec::new(),
            counters: Counters::default(),
            last_error: None,
            last_fetch: None,
            region: None,
        })
    };
}

/// The process's state.
#[inline(always)]
#[allow(static_mut_refs)]
pub fn get() -> &'static mut State {
    // SAFETY: set in MINIT before any function can be called; one thread.
    unsafe { STATE.as_mut().unwrap_unchecked() }
}

/// Monotonic time from the coarse clock (a few ns to read; ms resolution is
/// plenty for a TTL of seconds).
#[inline(always)]
fn coarse_now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl State {
    /// The warm path: the last array served, if it is for `requested` and still fresh.
    #[inline(always)]
    pub fn hot(&mut self, requested: Option<&[u8]>) -> Option<&FrozenArray> {
        let hot = self.hot.as_ref()?;
        let same = match (requested, &hot.explicit) {
            (None, None) => true,
            (Some(a), Some(b)) => a == &b[..],
            _ => false,
        };
        if same && coarse_now_ns() < hot.fresh_until_ns {
            self.counters.hits += 1;
            return Some(&hot.array);
        }
        None
    }

    /// Resolves the parameter name: the argument, else `ssm_db_config.parameter`.
    pub fn parameter_name(&self, requested: Option<&[u8]>) -> Result<String, Error> {
        match requested {
            Some(bytes) => match std::str::from_utf8(bytes) {
                Ok(name) if !name.trim().is_empty() => Ok(name.to_owned()),
                Ok(_) => Err(Error::BadConfiguration(EMPTY_NAME.into())),
                Err(_) => Err(Error::BadConfiguration(NOT_UTF8.into())),
            },
            None => self.settings.parameter.clone().ok_or_else(|| Error::BadConfiguration(NO_PARAMETER.into())),
        }
    }

    /// The cold path: a cached value if fresh (unless `force`), else a fetch.
    pub fn serve(&mut self, requested: Option<&[u8]>, force: bool) -> Result<Arc<FrozenArray>, Error> {
        let name = self.parameter_name(requested)?;
        if !force {
            if let Lookup::Fresh(entry, left) = self.cache.lookup(&name, Instant::now()) {
                self.counters.hits += 1;
                return Ok(self.publish(requested, &name, entry, left));
            }
            self.counters.misses += 1;
        }
        self.counters.fetches += 1;
        match runtime::fetch(&self.settings, &name) {
            Ok((entry, region)) => {
                self.last_fetch = Some((entry.fetch_duration, SystemTime::now()));
                self.region = Some(region);
                let entry = self.cache.store(entry);
                Ok(self.publish(requested, &name, entry, self.settings.ttl))
            }
            Err(e) => {
                self.counters.errors += 1;
                self.last_error = Some(LastError { kind: e.kind(), message: e.to_string() });
                Err(e)
            }
        }
    }

    /// Finds or builds the array for `entry`, and makes it the hot one.
    fn publish(&mut self, requested: Option<&[u8]>, name: &str, entry: Arc<CachedConfig>, fresh_for: Duration) -> Arc<FrozenArray> {
        let array = match self.served.get_mut(name) {
            Some(served) if Arc::ptr_eq(&served.entry, &entry) => served.array.clone(),
            // Same settings fetched again (the common refresh): keep the array
            // PHP already has, so that a refresh allocates nothing.
            Some(served) if served.entry.config == entry.config => {
                served.entry = entry;
                served.array.clone()
            }
            _ => {
                let array = Arc::new(FrozenArray::build(&self.keys, &entry.config));
                if let Some(old) = self.served.insert(name.to_owned(), Served { entry, array: array.clone() }) {
                    self.retired.push(old.array);
                }
                array
            }
        };
        let fresh_until_ns = coarse_now_ns().saturating_add(fresh_for.as_nanos() as u64);
        self.hot = Some(Hot { explicit: requested.map(Box::from), array: array.clone(), fresh_until_ns });
        array
    }

    /// The cache entry for the default parameter, else the newest one.
    pub fn status_entry(&self) -> Option<(Arc<CachedConfig>, bool)> {
        let now = Instant::now();
        let entry = match self.settings.parameter.as_deref().map(|p| self.cache.lookup(p, now)) {
            Some(Lookup::Fresh(e, _)) | Some(Lookup::Expired(e)) => Some(e),
            _ => self.cache.newest(),
        }?;
        let fresh = entry.age(now) < self.cache.ttl();
        Some((entry, fresh))
    }

    /// Frees arrays retired during the request that just ended.
    pub fn free_retired(&mut self) {
        self.retired.clear();
    }
}

const NO_PARAMETER: &str =
    "no SSM parameter given: pass a name to ssm_db_config() or set ssm_db_config.parameter in php.ini";
const EMPTY_NAME: &str = "the SSM parameter name passed to ssm_db_config() is empty";
const NOT_UTF8: &str = "the SSM parameter name passed to ssm_db_config() is not valid UTF-8";

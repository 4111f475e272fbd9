//! Everything the extension remembers in one PHP process, and the glue of
//! the slow path.
//!
//! PHP as Debian ships it is NTS: one thread per process, one request at a
//! time. The state is therefore a plain static reached through [`get`]. The
//! warm path ([`State::hot`]) reads only the last array served, its name, a
//! coarse-clock deadline and the settings' generation: no lock (a fetch runs
//! on the refresher thread and shares nothing with it but the mailbox, which
//! the warm path never touches).
//!
//! The slow path runs when that deadline passes. It takes in answers from the
//! refresher, looks at the host's shared entry (a worker whose copy is due
//! takes the one another worker fetched), and asks `core::plan` what to do:
//! serve, serve and refresh in the background, fetch and wait (one worker of
//! the host at a time: the others wait on the lock, then plan again with
//! what the host's entry says), or repeat the host's last failure. The
//! decision lives there, with its table tests; this file only reads state
//! and carries it out.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ssm_db_config_core::iam::{self, IamToken};
use ssm_db_config_core::plan::{
    plan, Action, Backoff, Knowledge, Reason, Refresher, Spread, RECHECK,
};
use ssm_db_config_core::policy::mono_now_ns;
use ssm_db_config_core::shared::SlotLock;
use ssm_db_config_core::{
    CachedConfig, ConfigCache, Error, ErrorKind, FetchSettings, Freshness, SharedKey, SharedSlot,
    Timing,
};

use crate::ini::Settings;
use crate::php_array::{FrozenArray, Keys, WorkerConstants};
use crate::refresher::{self, Job, Outcome};

/// Counters reported by `ssm_db_config_status()` and phpinfo().
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// Calls answered from the cache (this process's or the host's).
    pub hits: u64,
    /// Calls that found nothing usable and had to wait for a fetch.
    pub misses: u64,
    /// Fetches this process made (waited for or in the background).
    pub fetches: u64,
    /// Fetches this process made that failed.
    pub errors: u64,
    /// Values taken from the host's shared entry, fetched by another worker.
    pub shared_hits: u64,
    /// Requests this process sent to SSM, the SDK's retries included.
    pub ssm_requests: u64,
}

/// The last failure, for the status array. The message is the exception's.
#[derive(Debug, Clone)]
pub struct LastError {
    pub kind: ErrorKind,
    pub message: String,
}

/// Failure state per parameter: this process's view of the host's backoff.
#[derive(Debug, Default, Clone)]
pub struct Tracker {
    pub failures: u32,
    pub next_attempt_ns: u64,
    /// When the host's last attempt ended (0: none known).
    pub last_attempt_ns: u64,
    pub last_error: Option<LastError>,
    /// Who refreshed last, per the host's entry (0: unknown, or no sharing).
    pub last_refresher: u32,
    /// When this process first found the value fetched at `.0` due, while
    /// leaving its refresh to `last_refresher`.
    pub due_noticed: Option<(u64, u64)>,
    /// When this process was first asked to refresh (`ssm_db_config_refresh()`)
    /// the value fetched at `.0`: the start of its wait in the fleet's spread.
    pub first_forced: Option<(u64, u64)>,
}

/// What the request-start definition of the constants did in this request
/// (`ssm_db_config.define_constants`; see [`State::define_at_request_start`]).
#[derive(Debug, Default)]
pub enum RequestStart {
    /// Not tried in this request: the directive is off, or this is a parent
    /// process that forks the workers.
    #[default]
    NotTried,
    Defined,
    /// Nothing defined; `ssm_db_config_define()` throws this rather than
    /// waiting on SSM a second time in the same request.
    Failed(Error),
}

struct Served {
    entry: Arc<CachedConfig>,
    array: Rc<FrozenArray>,
}

struct Hot {
    /// `None` when serving the default parameter (called without an argument).
    explicit: Option<Box<[u8]>>,
    array: Rc<FrozenArray>,
    until_ns: u64,
}

/// Whether the host's shared cache is in use, as the status array says it.
pub enum Sharing {
    /// Not for this SAPI, or `ssm_db_config.shared_dir = off`.
    Off(&'static str),
    /// To be set up at first use (the directory belongs to the worker's user).
    Pending(PathBuf),
    Ready(PathBuf),
    /// The directory could not be used: per-process caching, warned once.
    Failed(String),
}

pub struct State {
    /// The settings in effect, as of [`Self::sync_settings`].
    pub settings: Settings,
    /// The `ini::generation()` that `settings` were read at.
    settings_generation: u64,
    /// Bumped whenever a change of settings makes what is cached meaningless;
    /// answers of fetches started before it are dropped.
    epoch: u64,
    keys: Keys,
    cache: ConfigCache,
    served: HashMap<String, Served>,
    hot: Option<Hot>,
    /// Arrays replaced during this request; freed after it (see php_array).
    retired: Vec<Rc<FrozenArray>>,
    in_flight: HashSet<String>,
    /// The names passed to the functions besides `ssm_db_config.parameter`
    /// (at most `ssm_db_config.max_parameters`).
    other_names: HashSet<String>,
    pub trackers: HashMap<String, Tracker>,
    /// The host's shared-cache key, made in the parent before the fork, or why there is none.
    shared_key: Result<&'static SharedKey, &'static str>,
    /// Shared directories this process has checked, and the outcome.
    shared_dirs: HashMap<PathBuf, Result<(), String>>,
    pub counters: Counters,
    pub last_error: Option<LastError>,
    pub last_fetch: Option<(Duration, SystemTime)>,
    pub region: Option<String>,
    pub request_start: RequestStart,
    /// The DB_* constants kept across this worker's requests, once defined.
    pub kept_constants: Option<WorkerConstants>,
}

static mut STATE: Option<State> = None;

/// Sets the state up; called once from module startup. The settings are
/// read at first use (see [`State::sync_settings`]).
pub fn init(keys: Keys, shared_key: Result<&'static SharedKey, &'static str>) {
    unsafe {
        STATE = Some(State {
            settings: Settings::default(),
            settings_generation: 0,
            epoch: 0,
            keys,
            cache: ConfigCache::default(),
            served: HashMap::new(),
            hot: None,
            retired: Vec::new(),
            in_flight: HashSet::new(),
            other_names: HashSet::new(),
            trackers: HashMap::new(),
            shared_key,
            shared_dirs: HashMap::new(),
            counters: Counters::default(),
            last_error: None,
            last_fetch: None,
            region: None,
            request_start: RequestStart::NotTried,
            kept_constants: None,
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

/// `CLOCK_MONOTONIC_COARSE`: the same clock as `mono_now_ns`, a few ns to read,
/// behind it by at most a few ms (plenty for TTLs of seconds).
#[inline(always)]
fn coarse_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Whether `ssm_db_config_refresh()` was called (it must fetch unless a value is seconds old).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Get,
    Refresh,
}

impl State {
    /// The warm path: the last array served, if it is for `requested` and nothing is due.
    #[inline(always)]
    pub fn hot(&mut self, requested: Option<&[u8]>) -> Option<&FrozenArray> {
        let hot = self.hot.as_ref()?;
        let same = match (requested, &hot.explicit) {
            (None, None) => true,
            (Some(a), Some(b)) => a == &b[..],
            _ => false,
        };
        if same
            && coarse_now_ns() < hot.until_ns
            && crate::ini::generation() == self.settings_generation
        {
            self.counters.hits += 1;
            return Some(&hot.array);
        }
        None
    }

    /// Reads the settings again if a directive changed since they were read
    /// (in a php-fpm worker: the pool's `php_admin_value` lines, applied after
    /// the fork). A change of where values come from or how long they live
    /// forgets everything cached in this process: a value fetched under other
    /// settings may be another site's.
    pub fn sync_settings(&mut self) {
        let generation = crate::ini::generation();
        if generation == self.settings_generation {
            return;
        }
        let settings = Settings::from_ini();
        self.settings_generation = generation;
        if let Some(note) = settings.define_constants_note() {
            crate::log(&format!("ssm_db_config: {note}"));
        }
        if let Some(note) = settings.ttl_note() {
            crate::log(&format!("ssm_db_config: {note}"));
        }
        if settings == self.settings {
            return;
        }
        let same_source = {
            let (a, b) = (&settings, &self.settings);
            (
                &a.parameter,
                &a.credentials_parameter,
                &a.region,
                &a.endpoint_url,
                a.ttl,
                a.max_stale,
                &a.shared_dir,
            ) == (
                &b.parameter,
                &b.credentials_parameter,
                &b.region,
                &b.endpoint_url,
                b.ttl,
                b.max_stale,
                &b.shared_dir,
            )
        };
        self.settings = settings;
        if !same_source {
            self.forget_cached();
        }
    }

    /// Drops every value, array and failure state this process holds. The
    /// arrays are freed after the request (PHP may still point into them).
    fn forget_cached(&mut self) {
        self.epoch += 1;
        self.hot = None;
        self.cache = ConfigCache::default();
        self.retired
            .extend(self.served.drain().map(|(_, served)| served.array));
        self.in_flight.clear();
        self.other_names.clear();
        self.trackers.clear();
    }

    fn timing(&self) -> Timing {
        Timing {
            ttl: self.settings.ttl,
            max_stale: self.settings.max_stale,
        }
    }

    /// Resolves the parameter name: the argument, else `ssm_db_config.parameter`.
    /// A name that SSM would not accept is refused here, before any request,
    /// and never echoed: it may be a connection URL with its password.
    pub fn parameter_name(&self, requested: Option<&[u8]>) -> Result<String, Error> {
        match requested {
            Some(bytes) => {
                let name = std::str::from_utf8(bytes)
                    .map_err(|_| Error::BadConfiguration(NOT_UTF8.into()))?;
                ssm_db_config_core::name::check(name).map_err(|problem| {
                    Error::BadConfiguration(format!("{INVALID_NAME}: {problem}"))
                })?;
                Ok(name.to_owned())
            }
            None => self
                .settings
                .parameter
                .clone()
                .ok_or_else(|| Error::BadConfiguration(NO_PARAMETER.into())),
        }
    }

    /// Lets a name in unless this process already reads
    /// `ssm_db_config.max_parameters` others besides `ssm_db_config.parameter`. Any PHP code may pass any
    /// name, and each new one costs memory, files in the shared directory
    /// and SSM requests: a script that walks through generated names is
    /// refused past the bound instead. (Which parameters a site may read at
    /// all is the IAM policy's business, not this one's.)
    fn admit(&mut self, name: &str) -> Result<(), Error> {
        if self.settings.parameter.as_deref() == Some(name) || self.other_names.contains(name) {
            return Ok(());
        }
        let most = self.settings.max_parameters;
        if self.other_names.len() as u64 >= most {
            return Err(Error::BadConfiguration(format!(
                "this process already reads {most} SSM parameters besides ssm_db_config.parameter, the most ssm_db_config.max_parameters allows: the name passed is refused (each name costs memory, a file in the shared cache directory and SSM requests; set the site's parameter in ssm_db_config.parameter, or raise ssm_db_config.max_parameters)"
            )));
        }
        self.other_names.insert(name.to_owned());
        Ok(())
    }

    /// The credentials parameter applies to the default parameter only.
    fn credentials_for(&self, name: &str) -> Option<String> {
        match (
            &self.settings.credentials_parameter,
            &self.settings.parameter,
        ) {
            (Some(creds), Some(default)) if default == name => Some(creds.clone()),
            _ => None,
        }
    }

    /// Whether the host's cache is shared, and where, for the status array.
    pub fn sharing(&self) -> Sharing {
        let Some(dir) = &self.settings.shared_dir else {
            return Sharing::Off("ssm_db_config.shared_dir = off");
        };
        if let Err(why) = self.shared_key {
            return Sharing::Off(why);
        }
        let dir = dir.resolve();
        match self.shared_dirs.get(&dir) {
            None => Sharing::Pending(dir),
            Some(Ok(())) => Sharing::Ready(dir),
            Some(Err(why)) => Sharing::Failed(why.clone()),
        }
    }

    /// The shared slot for a name, setting the directory up at first use.
    ///
    /// The slot is named by the parameter names and by everything that
    /// decides which value they stand for and how long it lives (region,
    /// endpoint, TTL, maximum staleness, and the AWS environment the SDK
    /// resolves from: a pool's `env[AWS_REGION]` or other account's keys):
    /// two php-fpm pools of one user that differ in any of them never read
    /// each other's entries. (Pools of different users have different
    /// directories.)
    fn slot(&mut self, names: &[&str]) -> Option<(SharedSlot, &'static SharedKey)> {
        let key = self.shared_key.ok()?;
        // Resolved here, in the worker: `auto` names the worker's uid, not the master's.
        let dir = self.settings.shared_dir.as_ref()?.resolve();
        let ready = self.shared_dirs.entry(dir.clone()).or_insert_with(|| {
            let prepared = ssm_db_config_core::shared::prepare_dir(&dir).inspect_err(|why| {
                crate::log(&format!(
                    "ssm_db_config: the shared cache directory cannot be used ({why}); each process caches on its own (set ssm_db_config.shared_dir)"
                ))
            });
            if prepared.is_ok() {
                // Files of masters that stopped (each restart makes a new key).
                ssm_db_config_core::shared::claim_and_sweep(&dir, key);
            }
            prepared
        });
        if ready.is_err() {
            return None;
        }
        let s = &self.settings;
        let scope = format!(
            "region={}\nendpoint_url={}\nttl={}\nmax_stale={}\n{}",
            s.region.as_deref().unwrap_or(""),
            s.endpoint_url.as_deref().unwrap_or(""),
            s.ttl.as_secs(),
            s.max_stale.as_secs(),
            crate::environment::scope()
        );
        let mut names = names.to_vec();
        names.push(&scope);
        Some((SharedSlot::new(&dir, key, &names), key))
    }

    /// A fetch for the refresher thread; its answer goes to the mailbox
    /// unless `refresher::fetch_and_wait` asks for it.
    fn job(
        &self,
        name: &str,
        creds: Option<String>,
        shared: Option<(SharedSlot, SlotLock, &'static SharedKey)>,
    ) -> Job {
        Job {
            parameter: name.to_owned(),
            credentials: creds,
            settings: FetchSettings {
                region: self.settings.region.clone(),
                endpoint_url: self.settings.endpoint_url.clone(),
                timeout: self.settings.timeout,
                environment: Some(crate::environment::for_sdk()),
            },
            epoch: self.epoch,
            iam_config: self
                .cache
                .get(name)
                .filter(|e| e.config.iam_sign_host().is_some())
                .map(|e| e.config.clone()),
            ttl: self.settings.ttl,
            failures_so_far: self.trackers.get(name).map_or(0, |t| t.failures),
            shared,
            reply: None,
            sign_for: None,
        }
    }

    /// The slow path (see the module doc): reads what this process and the
    /// host know, asks `core::plan` what to do, and does it.
    pub fn serve(
        &mut self,
        requested: Option<&[u8]>,
        mode: Mode,
    ) -> Result<Rc<FrozenArray>, Error> {
        self.sync_settings();
        let name = self.parameter_name(requested)?;
        self.admit(&name)?;
        let creds = self.credentials_for(&name);
        self.take_mail();
        let names: Vec<&str> = std::iter::once(name.as_str())
            .chain(creds.as_deref())
            .collect();
        // A value with auth=iam goes the same way: the host's entry holds
        // its token too, made by the worker that fetched it.
        let slot = self.slot(&names);
        let forced = mode == Mode::Refresh;
        let now = mono_now_ns();

        let mut local = self.cache.get(&name);
        let due = local
            .as_ref()
            .is_none_or(|e| !matches!(e.freshness(now, self.timing()), Freshness::Fresh { .. }));
        let mut newer = false;
        if let Some((slot, key)) = &slot {
            // A worker whose copy is due takes the one another worker fetched.
            if due || forced {
                if let Some(adopted) =
                    self.adopt_shared(slot, key, &name, creds.as_deref(), local.as_ref())
                {
                    local = Some(adopted);
                    newer = true;
                }
            }
        }
        if forced {
            self.note_forced(&name, local.as_deref(), now);
        }
        let decision =
            plan(&self.knowledge(&name, local.as_deref(), slot.is_some(), now, forced, newer));
        match (decision.action, local) {
            // Asked for a new password after a failed login, and the plan
            // keeps what is held (asked again within a second, SSM backing
            // off, the fleet's spread): the token at least is made again, a
            // local signing that asks SSM nothing.
            (Action::Serve { .. }, Some(entry))
                if signs_again(forced, decision.reason, &entry, now) =>
            {
                match slot {
                    // Under the slot's lock, with what the host's entry says
                    // by then (another worker may have signed or fetched
                    // meanwhile): `fetch_now` plans again and signs there.
                    Some(slot) => self.fetch_now(requested, &name, creds, Some(slot), forced),
                    None => self.sign_now(requested, &name, creds, None, entry),
                }
            }
            (Action::Serve { until_ns }, Some(entry)) => {
                self.counters.hits += 1;
                if decision.reason == Reason::RefresherTurn {
                    self.note_due(&name, &entry, now);
                }
                Ok(self.publish(requested, &name, entry, until_ns))
            }
            (Action::ServeAndRefresh { until_ns }, Some(entry)) => {
                self.counters.hits += 1;
                self.refresh_in_background(&name, creds, slot);
                Ok(self.publish(requested, &name, entry, until_ns))
            }
            (Action::Fail { retry_in }, _) => Err(self.recent_error(&name, retry_in)),
            (Action::Fetch, _) | (Action::Serve { .. } | Action::ServeAndRefresh { .. }, None) => {
                if !forced {
                    self.counters.misses += 1;
                }
                self.fetch_now(requested, &name, creds, slot, forced)
            }
        }
    }

    /// What [`plan`] looks at, from this process's cache and trackers (which
    /// mirror the host's entry when it shares one).
    fn knowledge(
        &self,
        name: &str,
        held: Option<&CachedConfig>,
        shared: bool,
        now_ns: u64,
        forced: bool,
        newer_than_served: bool,
    ) -> Knowledge {
        let tracker = self.trackers.get(name);
        let held = held.map(CachedConfig::held);
        Knowledge {
            now_ns,
            timing: self.timing(),
            held,
            backoff: tracker.map_or_else(Backoff::default, |t| Backoff {
                failures: t.failures,
                next_attempt_ns: t.next_attempt_ns,
                last_attempt_ns: t.last_attempt_ns,
                has_error: t.last_error.is_some(),
            }),
            shared,
            refresher: tracker
                .filter(|t| t.last_refresher != 0)
                .map(|t| Refresher {
                    is_self: t.last_refresher == std::process::id(),
                    alive: process_alive(t.last_refresher),
                    due_noticed_ns: t
                        .due_noticed
                        .filter(|(fetched_ns, _)| held.is_some_and(|h| h.fetched_ns == *fetched_ns))
                        .map(|(_, at)| at),
                }),
            in_flight: self.in_flight.contains(name),
            forced,
            newer_than_served,
            spread: Spread {
                window: self.settings.spread_window(),
                fraction_millis: held.map_or(0, |h| self.spread_fraction(h.fetched_ns)),
                first_forced_ns: tracker
                    .and_then(|t| t.first_forced)
                    .filter(|(fetched_ns, _)| held.is_some_and(|h| h.fetched_ns == *fetched_ns))
                    .map(|(_, at)| at),
            },
        }
    }

    /// This host's place in the fleet's spread for the value fetched at
    /// `fetched_ns`, in thousandths: the same for every worker of the host
    /// (it comes from the shared-cache key they inherited; a process of its
    /// own uses its pid), different from host to host and from value to value.
    fn spread_fraction(&self, fetched_ns: u64) -> u16 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        match self.shared_key {
            Ok(key) if self.settings.shared_dir.is_some() => key.id().hash(&mut hasher),
            _ => std::process::id().hash(&mut hasher),
        }
        fetched_ns.hash(&mut hasher);
        (hasher.finish() % 1000) as u16
    }

    /// Remembers when this process was first asked to refresh the value it holds.
    fn note_forced(&mut self, name: &str, held: Option<&CachedConfig>, now_ns: u64) {
        let Some(held) = held else { return };
        let tracker = self.trackers.entry(name.to_owned()).or_default();
        if tracker
            .first_forced
            .is_none_or(|(fetched_ns, _)| fetched_ns != held.fetched_ns)
        {
            tracker.first_forced = Some((held.fetched_ns, now_ns));
        }
    }

    /// Remembers when this process first found `entry` due while leaving its
    /// refresh to the host's refresher.
    fn note_due(&mut self, name: &str, entry: &CachedConfig, now_ns: u64) {
        if let Some(tracker) = self.trackers.get_mut(name) {
            if tracker
                .due_noticed
                .is_none_or(|(fetched_ns, _)| fetched_ns != entry.fetched_ns)
            {
                tracker.due_noticed = Some((entry.fetched_ns, now_ns));
            }
        }
    }

    /// The host's last failure, repeated without asking SSM.
    fn recent_error(&self, name: &str, retry_in: Duration) -> Error {
        match self.trackers.get(name).and_then(|t| t.last_error.clone()) {
            Some(last) => Error::Recent {
                kind: last.kind,
                message: last.message,
                retry_in,
            },
            None => Error::Timeout {
                parameter: name.to_owned(),
                budget: self.settings.timeout,
            },
        }
    }

    /// Takes the host's entry when it is newer than ours, and its failure state.
    fn adopt_shared(
        &mut self,
        slot: &SharedSlot,
        key: &SharedKey,
        name: &str,
        creds: Option<&str>,
        local: Option<&Arc<CachedConfig>>,
    ) -> Option<Arc<CachedConfig>> {
        let shared = slot.read(key)?;
        let tracker = self.trackers.entry(name.to_owned()).or_default();
        tracker.failures = shared.failures;
        tracker.next_attempt_ns = shared.next_attempt_ns;
        tracker.last_attempt_ns = shared.last_attempt_ns;
        tracker.last_refresher = shared.fetched_by_pid;
        tracker.last_error = shared.last_error.as_ref().and_then(|(code, message)| {
            Some(LastError {
                kind: ErrorKind::from_code(*code)?,
                message: message.clone(),
            })
        });
        let stored = shared.value?;
        let signed = |t: Option<&IamToken>| t.map_or(0, |t| t.signed_ns);
        let newer = match local {
            None => true,
            Some(l) => {
                l.fetched_ns < stored.fetched_ns
                    // The same value with a token made since (a failed
                    // refresh, or a forced one, makes one for the value held).
                    || (l.fetched_ns == stored.fetched_ns
                        && signed(l.iam_token.as_ref()) < signed(stored.iam_token.as_ref()))
            }
        };
        if !newer {
            return None;
        }
        let entry = CachedConfig::from_stored(name, creds, &stored).ok()?;
        if entry.config.iam_sign_host().is_some()
            && !entry
                .iam_token
                .as_ref()
                .is_some_and(|t| iam::servable(t.age(mono_now_ns())))
        {
            // No token, or one too old to hand out: this process fetches and signs.
            return None;
        }
        self.counters.shared_hits += 1;
        Some(self.cache.store(entry))
    }

    /// Hands a refresh to the refresher thread, unless another worker of the
    /// host holds the slot's lock (it is refreshing).
    fn refresh_in_background(
        &mut self,
        name: &str,
        creds: Option<String>,
        slot: Option<(SharedSlot, &'static SharedKey)>,
    ) {
        let shared = match slot {
            Some((slot, key)) => match slot.try_lock() {
                Ok(Some(lock)) => Some((slot, lock, key)),
                Ok(None) => return,
                Err(_) => None,
            },
            None => None,
        };
        let job = self.job(name, creds, shared);
        if refresher::submit(job).is_ok() {
            self.in_flight.insert(name.to_owned());
            self.counters.fetches += 1;
        }
    }

    /// Fetches and waits: one worker of the host at a time. A worker that
    /// waited for the lock plans again with what the host's entry says by
    /// then: the worker before it may have fetched, or failed.
    fn fetch_now(
        &mut self,
        requested: Option<&[u8]>,
        name: &str,
        creds: Option<String>,
        slot: Option<(SharedSlot, &'static SharedKey)>,
        forced: bool,
    ) -> Result<Rc<FrozenArray>, Error> {
        let started = Instant::now();
        let budget = self.settings.timeout;
        let shared = match slot {
            None => None,
            Some((slot, key)) => match slot.lock_until(started + budget) {
                Ok(Some(lock)) => {
                    let before = self.cache.get(name);
                    let adopted =
                        self.adopt_shared(&slot, key, name, creds.as_deref(), before.as_ref());
                    let newer = adopted.is_some();
                    let held = adopted.or(before);
                    let now = mono_now_ns();
                    let decision =
                        plan(&self.knowledge(name, held.as_deref(), true, now, forced, newer));
                    match (decision.action, held) {
                        (Action::Serve { .. }, Some(entry))
                            if signs_again(forced, decision.reason, &entry, now) =>
                        {
                            return self.sign_now(
                                requested,
                                name,
                                creds,
                                Some((slot, lock, key)),
                                entry,
                            );
                        }
                        (
                            Action::Serve { until_ns } | Action::ServeAndRefresh { until_ns },
                            Some(entry),
                        ) => {
                            return Ok(self.publish(requested, name, entry, until_ns));
                        }
                        (Action::Fail { retry_in }, _) => {
                            return Err(self.recent_error(name, retry_in))
                        }
                        _ => Some((slot, lock, key)),
                    }
                }
                Ok(None) => {
                    return Err(Error::Timeout {
                        parameter: name.to_owned(),
                        budget,
                    })
                }
                Err(_) => None,
            },
        };
        let job = self.job(name, creds, shared);
        self.counters.fetches += 1;
        let outcome = refresher::fetch_and_wait(job, budget + Duration::from_millis(500));
        let entry = self.record(outcome)?;
        let until = match entry.freshness(mono_now_ns(), self.timing()) {
            Freshness::Fresh { until_ns } => until_ns,
            _ => mono_now_ns() + RECHECK.as_nanos() as u64,
        };
        Ok(self.publish(requested, name, entry, until))
    }

    /// Makes a new token for `held` (an `auth=iam` entry) and waits for it;
    /// with the slot's lock, the host's entry takes it too.
    fn sign_now(
        &mut self,
        requested: Option<&[u8]>,
        name: &str,
        creds: Option<String>,
        shared: Option<(SharedSlot, SlotLock, &'static SharedKey)>,
        held: Arc<CachedConfig>,
    ) -> Result<Rc<FrozenArray>, Error> {
        let mut job = self.job(name, creds, shared);
        job.sign_for = Some(held);
        let outcome =
            refresher::fetch_and_wait(job, self.settings.timeout + Duration::from_millis(500));
        let entry = self.cache.store(outcome.result?);
        let until = match entry.freshness(mono_now_ns(), self.timing()) {
            Freshness::Fresh { until_ns } => until_ns,
            _ => mono_now_ns() + RECHECK.as_nanos() as u64,
        };
        Ok(self.publish(requested, name, entry, until))
    }

    /// Takes in answers of background refreshes.
    fn take_mail(&mut self) {
        for outcome in refresher::take_mail() {
            if outcome.epoch != self.epoch {
                continue; // fetched under settings no longer in effect
            }
            self.in_flight.remove(&outcome.parameter);
            let _ = self.record(outcome);
        }
    }

    /// Books an outcome: caches a success, counts and logs a failure.
    fn record(&mut self, outcome: Outcome) -> Result<Arc<CachedConfig>, Error> {
        if let Some(region) = outcome.region {
            self.region = Some(region);
        }
        self.counters.ssm_requests += outcome.requests;
        let tracker = self.trackers.entry(outcome.parameter.clone()).or_default();
        tracker.failures = outcome.failures;
        tracker.next_attempt_ns = outcome.next_attempt_ns;
        tracker.last_attempt_ns = mono_now_ns();
        match outcome.result {
            Ok(entry) => {
                tracker.last_error = None;
                self.last_fetch = Some((entry.fetch_duration, SystemTime::now()));
                Ok(self.cache.store(entry))
            }
            Err(e) => {
                if let (Some(token), Some(held)) =
                    (outcome.iam_token, self.cache.get(&outcome.parameter))
                {
                    self.cache.store(held.with_iam_token(token));
                }
                let last = LastError {
                    kind: e.kind(),
                    message: e.to_string(),
                };
                tracker.last_error = Some(last.clone());
                self.last_error = Some(last);
                self.counters.errors += 1;
                // One line per failed attempt, and the host makes one attempt
                // per backoff interval: the log is not flooded per request.
                let serving = match self.cache.get(&outcome.parameter) {
                    Some(_) => "serving the last good value",
                    None => "nothing cached to serve",
                };
                crate::log(&format!(
                    "ssm_db_config: {e}; {serving}; next attempt in {:.1} s",
                    Duration::from_nanos(outcome.next_attempt_ns.saturating_sub(mono_now_ns()))
                        .as_secs_f64()
                ));
                Err(e)
            }
        }
    }

    /// Finds or builds the array for `entry`, and makes it the hot one until `until_ns`.
    fn publish(
        &mut self,
        requested: Option<&[u8]>,
        name: &str,
        entry: Arc<CachedConfig>,
        until_ns: u64,
    ) -> Rc<FrozenArray> {
        // The warm path ends when the token is due to be made again, so that
        // the slow path asks for a refresh while the old token is still valid.
        let until_ns = match &entry.iam_token {
            Some(token) if !ssm_db_config_core::iam::servable(token.age(mono_now_ns())) => {
                mono_now_ns() + RECHECK.as_nanos() as u64
            }
            Some(token) => until_ns.min(token.refresh_at_ns()),
            None => until_ns,
        };
        let array = match self.served.get_mut(name) {
            Some(served) if Arc::ptr_eq(&served.entry, &entry) => served.array.clone(),
            // Same settings fetched again (the common refresh): keep the array
            // PHP already has, so that a refresh allocates nothing.
            Some(served) if served.entry.same_settings(&entry) => {
                served.entry = entry;
                served.array.clone()
            }
            _ => {
                let array = Rc::new(FrozenArray::build(
                    &self.keys,
                    &entry.config,
                    entry.iam_token.as_ref(),
                ));
                if let Some(old) = self.served.insert(
                    name.to_owned(),
                    Served {
                        entry,
                        array: array.clone(),
                    },
                ) {
                    self.retired.push(old.array);
                }
                array
            }
        };
        self.hot = Some(Hot {
            explicit: requested.map(Box::from),
            array: array.clone(),
            until_ns,
        });
        array
    }

    /// How many parameters this process holds an array for.
    pub fn parameters_cached(&self) -> usize {
        self.served.len()
    }

    /// The cache entry for the default parameter, else the newest one.
    pub fn status_entry(&self) -> Option<Arc<CachedConfig>> {
        self.settings
            .parameter
            .as_deref()
            .and_then(|p| self.cache.get(p))
            .or_else(|| self.cache.newest())
    }

    /// Where an entry stands now.
    pub fn freshness(&self, entry: &CachedConfig) -> Freshness {
        entry.freshness(mono_now_ns(), self.timing())
    }

    /// Request start with `ssm_db_config.define_constants`: defines the
    /// constants of `ssm_db_config.parameter` before the script runs, as a
    /// first line calling `ssm_db_config_define()` would, and notes the
    /// outcome for that call. Throws nothing: there is no script yet to catch
    /// it. A failure is logged by the fetch (once per attempt, and the host
    /// makes one attempt per backoff interval), and `ssm_db_config_define()`
    /// throws it.
    ///
    /// With `keep_across_requests` (a php-fpm or Apache worker) the constants
    /// are defined once and kept (see [`WorkerConstants`]): a request whose
    /// value has not changed runs only the check below.
    pub fn define_at_request_start(&mut self, keep_across_requests: bool) {
        if let (Some(hot), Some(kept)) = (&self.hot, &self.kept_constants) {
            if hot.explicit.is_none() && kept.holds(&hot.array) && coarse_now_ns() < hot.until_ns {
                self.counters.hits += 1;
                self.request_start = RequestStart::Defined;
                // A request's own constant, defined again in each request.
                unsafe { hot.array.define_client_flags() };
                return;
            }
        }
        self.request_start = match self.define_constants_now(keep_across_requests) {
            Ok(()) => RequestStart::Defined,
            Err(e) => RequestStart::Failed(e),
        };
        if let (RequestStart::Defined, Some(hot)) = (&self.request_start, &self.hot) {
            unsafe { hot.array.define_client_flags() };
        }
    }

    /// The slow part of [`Self::define_at_request_start`].
    fn define_constants_now(&mut self, keep_across_requests: bool) -> Result<(), Error> {
        let array = match self.serve(None, Mode::Get) {
            Ok(array) => array,
            Err(e) => {
                // Nothing may be served (past max_stale, or never fetched): no constants either.
                if let Some(kept) = self.kept_constants.take() {
                    unsafe { kept.remove() };
                }
                return Err(e);
            }
        };
        if let Some(kept) = &mut self.kept_constants {
            if !kept.holds(&array) {
                unsafe { kept.repoint(array) };
            }
            return Ok(());
        }
        if keep_across_requests {
            match unsafe { WorkerConstants::install(array.clone()) } {
                Ok(Some(kept)) => {
                    self.kept_constants = Some(kept);
                    return Ok(());
                }
                Ok(None) => {} // defined for this request only, below
                Err(name) => return Err(already_defined(name)),
            }
        }
        unsafe { array.define_constants() }.map_err(already_defined)
    }

    /// Request start with `ssm_db_config.define_constants` off: removes the
    /// constants kept from when it was on (the settings changed).
    pub fn drop_kept_constants(&mut self) {
        if let Some(kept) = self.kept_constants.take() {
            unsafe { kept.remove() };
        }
    }

    /// For the status array: what request start did with the constants.
    pub fn constants_state(&self) -> &'static str {
        match (&self.request_start, &self.kept_constants) {
            _ if !self.settings.define_constants => "off",
            (RequestStart::NotTried, _) => "not_tried",
            (RequestStart::Defined, Some(_)) => "kept",
            (RequestStart::Defined, None) => "request",
            (RequestStart::Failed(_), _) => "failed",
        }
    }

    /// After a request: frees the arrays retired during it, and forgets what
    /// its start defined.
    pub fn end_request(&mut self) {
        self.retired.clear();
        self.request_start = RequestStart::NotTried;
    }
}

/// The error of `ssm_db_config_define()` when one of the constants exists.
/// Whether a forced refresh that the plan answers by serving what is held
/// (and not by a newer value on the host) makes the IAM token again instead:
/// a local signing that asks SSM nothing, so that a refused login gets a new
/// token even while SSM is not asked.
fn signs_again(forced: bool, reason: Reason, entry: &CachedConfig, now: u64) -> bool {
    forced
        && reason != Reason::NewerOnHost
        && entry
            .iam_token
            .as_ref()
            .is_some_and(|t| iam::sign_again_when_forced(t.age(now)))
}

/// `ssm_db_config_define()` for a MySQL IAM value when wp-config.php defined
/// `MYSQL_CLIENT_FLAGS` without `MYSQLI_CLIENT_SSL`: WordPress would send
/// the token without TLS.
pub fn client_flags_without_ssl() -> Error {
    Error::BadConfiguration(
        "the value says auth=iam and MYSQL_CLIENT_FLAGS is already defined without MYSQLI_CLIENT_SSL (or not as an integer), so WordPress may send the IAM token without TLS: define it as an integer that includes MYSQLI_CLIENT_SSL (e.g. MYSQLI_CLIENT_SSL | MYSQLI_CLIENT_COMPRESS) or leave it undefined; ssm_db_config_define() defined none of the DB_* constants".to_owned(),
    )
}

pub fn already_defined(name: &str) -> Error {
    Error::BadConfiguration(format!(
        "the constant {name} is already defined: ssm_db_config_define() defined none of the DB_* constants"
    ))
}

const NO_PARAMETER: &str =
    "no SSM parameter given: pass a name to ssm_db_config() or set ssm_db_config.parameter in php.ini";
const INVALID_NAME: &str = "the SSM parameter name passed to ssm_db_config() is not valid";
const NOT_UTF8: &str = "the SSM parameter name passed to ssm_db_config() is not valid UTF-8";

/// Whether process `pid` exists (it may be another user's: EPERM).
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let exists = unsafe { libc::kill(pid, 0) } == 0;
    exists || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

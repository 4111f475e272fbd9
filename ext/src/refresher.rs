//! The one thread per process that talks to AWS.
//!
//! Every fetch runs here, so that a refresh-ahead can happen while the
//! request that noticed it goes on with the cached value: no request waits
//! on SSM unless nothing usable is cached. A request that must wait sends its
//! job and blocks on the reply, bounded by the fetch budget.
//!
//! php-fpm loads the extension in the master and forks workers from it, and
//! `opcache.preload` may call our functions in the master before that fork.
//! A thread does not survive `fork`, and a tokio runtime or SDK client
//! inherited through it is unusable (its epoll and socket state is shared
//! with the parent; a worker that uses it hangs or reads a sibling's
//! answer). So:
//! - nothing here exists before the first fetch (never at module startup);
//! - the thread, its current-thread runtime and its SSM client are tagged
//!   with the process id; a process that finds another pid's handle leaks it
//!   (dropping would wait on a thread that does not exist here) and starts its own;
//! - the runtime's blocking threads (getaddrinfo) exit one second after use.
//!
//! How long the thread stays depends on the TTL (see [`linger`]). With a
//! TTL of [`KEEP_FOR_TTL_UP_TO`] or less it waits for the next refresh:
//! building the thread, runtime and client again costs more CPU than
//! keeping them (the SDK's client keeps its connections, credentials and
//! endpoint resolution), and with a short TTL that price would come every few
//! seconds on the CPU that serves requests, where it shows in their tail
//! latency. With a longer TTL the thread ends [`IDLE_EXIT`] after its last
//! job: it drops its runtime and SSM client and trims the allocator, so
//! that a worker holds no AWS client between fetches. The allocator still
//! keeps some of what the SDK used (fragmented pages of the thread's arena,
//! and the SDK's one-time statics such as its parsed root certificates);
//! `state` keeps refreshing with one worker of the host, so that this, and
//! a thread kept waiting, is paid once per host, not per worker. What each
//! choice costs is measured in `docs/benchmarks.md`.
//!
//! When the host shares its cache (see `core::shared`), the job carries the
//! slot's lock: the thread updates the shared entry, success or failure,
//! before it lets the lock go. For an `auth=iam` value the entry carries the
//! token made with it, so that one worker of the host signs per refresh.

use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ssm_db_config_core::iam::{IamToken, REFRESH_AFTER};
use ssm_db_config_core::policy::{failure_backoff, mono_now_ns, random_fraction};
use ssm_db_config_core::shared::SlotLock;
use ssm_db_config_core::{
    CachedConfig, DbConfig, Error, ErrorKind, FetchSettings, SharedEntry, SharedKey, SharedSlot,
    SsmFetcher, StoredValue,
};

/// What to fetch, and where the answer goes.
pub struct Job {
    pub parameter: String,
    pub credentials: Option<String>,
    pub settings: FetchSettings,
    pub ttl: Duration,
    /// Consecutive failures this process knows of (the shared entry may know more).
    pub failures_so_far: u32,
    /// The shared slot, its lock (held for the whole fetch) and the key.
    pub shared: Option<(SharedSlot, SlotLock, &'static SharedKey)>,
    /// `Some`: a request waits for the answer. `None`: it goes to the mailbox.
    pub reply: Option<SyncSender<Outcome>>,
    /// The settings' epoch the job was made in (see `State::forget_cached`).
    pub epoch: u64,
    /// The value this process serves, when it says `auth=iam`: if the fetch
    /// fails, its token is made again anyway, so that a value served stale
    /// while SSM fails still has a valid password.
    pub iam_config: Option<DbConfig>,
    /// `Some`: no fetch, only a new token for this `auth=iam` entry (a
    /// forced refresh after an authentication failure, when the plan serves
    /// what is held). The answer is the entry with the new token, which also
    /// goes into the host's entry if that still holds the same value.
    pub sign_for: Option<Arc<CachedConfig>>,
}

/// The answer to a job.
pub struct Outcome {
    pub parameter: String,
    pub result: Result<CachedConfig, Error>,
    pub region: Option<String>,
    /// Failures in a row (as the host counts them) and when to try again.
    pub failures: u32,
    pub next_attempt_ns: u64,
    /// The requests this job sent to SSM, retries included.
    pub requests: u64,
    /// The job's epoch.
    pub epoch: u64,
    /// After a failed fetch of an `auth=iam` value: its new token.
    pub iam_token: Option<IamToken>,
}

/// How long the thread waits for another job before it ends, when no
/// refresh is due soon.
const IDLE_EXIT: Duration = Duration::from_millis(200);
/// TTLs up to this keep the thread, its runtime and client from one refresh
/// to the next: rebuilding them costs more than keeping them for that long.
const KEEP_FOR_TTL_UP_TO: Duration = Duration::from_secs(60);

/// How long the thread waits for the next job after one for a value of `ttl`:
/// past the next refresh-ahead (which comes before the TTL is over) when the
/// TTL is short, else [`IDLE_EXIT`].
fn linger(ttl: Duration) -> Duration {
    if ttl <= KEEP_FOR_TTL_UP_TO {
        ttl + Duration::from_secs(1)
    } else {
        IDLE_EXIT
    }
}

/// The running thread's queue; `None`: no thread is running. The PHP thread
/// sends under this lock and the fetch thread ends under it, after a last
/// look at its queue, so that no job is sent to a thread that is going away.
struct Queue {
    jobs: Option<Sender<Job>>,
}

/// This process's queue. A queue made before a `fork` is never touched in
/// the child: the thread that may have held its lock at that moment does not
/// exist there, so the lock might never be released.
static QUEUE: AtomicPtr<Mutex<Queue>> = AtomicPtr::new(std::ptr::null_mut());
static QUEUE_PID: AtomicU32 = AtomicU32::new(0);

fn queue() -> &'static Mutex<Queue> {
    let pid = std::process::id();
    if QUEUE_PID.load(Ordering::Relaxed) != pid || QUEUE.load(Ordering::Acquire).is_null() {
        // The old one (and its sender) is leaked on purpose.
        let fresh: &'static Mutex<Queue> = Box::leak(Box::new(Mutex::new(Queue { jobs: None })));
        QUEUE.store(std::ptr::from_ref(fresh).cast_mut(), Ordering::Release);
        QUEUE_PID.store(pid, Ordering::Relaxed);
    }
    // SAFETY: set above to a leaked, never freed Box.
    unsafe { &*QUEUE.load(Ordering::Acquire) }
}
/// Answers to background jobs, collected by the PHP thread on its slow path.
static MAILBOX: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());

/// Sends a job to this process's thread, starting it if needed.
pub fn submit(job: Job) -> Result<(), Error> {
    crate::before_first_fetch();
    let own = queue();
    // Poisoned only if a thread panicked while holding it; the data (a
    // sender) is always consistent.
    let mut queue = own.lock().unwrap_or_else(|p| p.into_inner());
    let job = match &queue.jobs {
        Some(jobs) => match jobs.send(job) {
            Ok(()) => return Ok(()),
            // A thread that died (a panic, say) left its queue behind: start
            // a new one rather than fail every later fetch of this worker.
            Err(mpsc::SendError(job)) => job,
        },
        None => job,
    };
    let (jobs, inbox) = mpsc::channel();
    std::thread::Builder::new()
        .name("ssm_db_config".into())
        .stack_size(512 * 1024)
        .spawn(move || run(inbox, own))
        .map_err(|_| Error::BadConfiguration("could not start the fetch thread".into()))?;
    jobs.send(job)
        .map_err(|_| Error::BadConfiguration("the fetch thread has stopped".into()))?;
    queue.jobs = Some(jobs);
    Ok(())
}

/// Takes the answers of finished background jobs.
pub fn take_mail() -> Vec<Outcome> {
    match MAILBOX.try_lock() {
        Ok(mut mail) if !mail.is_empty() => std::mem::take(&mut *mail),
        _ => Vec::new(),
    }
}

/// Submits a job and waits for its answer, at most `wait`.
pub fn fetch_and_wait(mut job: Job, wait: Duration) -> Outcome {
    let (tx, rx) = mpsc::sync_channel(1);
    job.reply = Some(tx);
    let parameter = job.parameter.clone();
    let budget = job.settings.timeout;
    let epoch = job.epoch;
    // (A late answer is dropped, and its requests go uncounted.)
    let lost = |error| Outcome {
        parameter: parameter.clone(),
        result: Err(error),
        region: None,
        failures: 0,
        next_attempt_ns: 0,
        requests: 0,
        epoch,
        iam_token: None,
    };
    if let Err(e) = submit(job) {
        return lost(e);
    }
    rx.recv_timeout(wait).unwrap_or_else(|_| {
        lost(Error::Timeout {
            parameter: parameter.clone(),
            budget,
        })
    })
}

fn run(inbox: Receiver<Job>, own: &'static Mutex<Queue>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(2)
        .thread_keep_alive(Duration::from_secs(1))
        .build()
    {
        Ok(rt) => rt,
        Err(_) => return,
    };
    let mut fetcher: Option<(FetchSettings, SsmFetcher)> = None;
    let mut idle = IDLE_EXIT;
    loop {
        let job = match inbox.recv_timeout(idle) {
            Ok(job) => job,
            Err(_) => {
                let mut queue = own.lock().unwrap_or_else(|p| p.into_inner());
                match inbox.try_recv() {
                    // Sent just before we took the lock: do it, then look again.
                    Ok(job) => {
                        drop(queue);
                        job
                    }
                    Err(_) => {
                        queue.jobs = None;
                        drop(queue);
                        break;
                    }
                }
            }
        };
        idle = linger(job.ttl);
        let outcome = runtime.block_on(handle(&job, &mut fetcher));
        match job.reply {
            Some(reply) => {
                let _ = reply.send(outcome);
            }
            None => MAILBOX
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(outcome),
        }
        // The job (and with it the slot lock) is dropped here, after the
        // shared entry was written.
    }
    drop(fetcher);
    drop(runtime);
    // Give the client's and runtime's memory back to the system, from every
    // malloc arena (this thread's included).
    unsafe { libc::malloc_trim(0) };
}

async fn handle(job: &Job, fetcher: &mut Option<(FetchSettings, SsmFetcher)>) -> Outcome {
    if let Some(held) = &job.sign_for {
        return sign_only(job, held, fetcher).await;
    }
    let (result, requests) = fetch(job, fetcher).await;
    let region = fetcher.as_ref().map(|(_, f)| f.region().to_owned());
    let previous = job
        .shared
        .as_ref()
        .and_then(|(slot, _, key)| slot.read(key));
    let (failures, next_attempt_ns) = match &result {
        Ok(_) => (0, 0),
        Err(e) => {
            let failures = previous
                .as_ref()
                .map_or(0, |p| p.failures)
                .max(job.failures_so_far)
                + 1;
            let backoff = failure_backoff(
                failures,
                e.kind() == ErrorKind::Throttled,
                random_fraction(),
            );
            (failures, mono_now_ns() + backoff.as_nanos() as u64)
        }
    };
    // The value could not be fetched again, but the one served stale still
    // needs a valid token.
    let iam_token = match (&result, &job.iam_config, fetcher.as_ref()) {
        (Err(_), Some(config), Some((_, client))) => {
            client.iam_token(&job.parameter, config).await.ok()
        }
        _ => None,
    };
    if let Some((slot, _lock, key)) = &job.shared {
        let entry = SharedEntry {
            value: match &result {
                Ok((stored, _)) => Some(stored.clone()),
                Err(_) => previous
                    .and_then(|p| p.value)
                    .map(|v| with_token(v, job, iam_token.as_ref())),
            },
            failures,
            next_attempt_ns,
            last_error: result
                .as_ref()
                .err()
                .map(|e| (e.kind().code(), e.to_string())),
            last_attempt_ns: mono_now_ns(),
            fetched_by_pid: std::process::id(),
        };
        // A failed write only costs the other workers a fetch of their own.
        let _ = slot.write(key, &entry);
    }
    Outcome {
        parameter: job.parameter.clone(),
        result: result.map(|(_, c)| c),
        region,
        failures,
        next_attempt_ns,
        requests,
        epoch: job.epoch,
        iam_token,
    }
}

/// The host's value with `token` as its token, when `token` was made for
/// that very value (the one this process serves: the host's entry may hold a
/// newer value by now, whose token this is not).
fn with_token(mut stored: StoredValue, job: &Job, token: Option<&IamToken>) -> StoredValue {
    let Some(token) = token else { return stored };
    let same_value = CachedConfig::from_stored(&job.parameter, job.credentials.as_deref(), &stored)
        .is_ok_and(|c| Some(&c.config) == job.iam_config.as_ref());
    if same_value {
        stored.iam_token = Some(token.clone());
    }
    stored
}

/// A new token for the entry held, without a fetch; shared with the host.
async fn sign_only(
    job: &Job,
    held: &Arc<CachedConfig>,
    fetcher: &mut Option<(FetchSettings, SsmFetcher)>,
) -> Outcome {
    let client = match client(job, fetcher).await {
        Ok(client) => client,
        Err(e) => return signed_outcome(job, Err(e)),
    };
    let result = client
        .iam_token(&job.parameter, &held.config)
        .await
        .map(|token| held.with_iam_token(token));
    if let (Ok(entry), Some((slot, _lock, key))) = (&result, &job.shared) {
        if let Some(mut shared) = slot.read(key) {
            if let Some(value) = shared.value.take() {
                shared.value = Some(with_token(value, job, entry.iam_token.as_ref()));
                // A failed write only leaves the other workers their older token.
                let _ = slot.write(key, &shared);
            }
        }
    }
    signed_outcome(job, result)
}

fn signed_outcome(job: &Job, result: Result<CachedConfig, Error>) -> Outcome {
    Outcome {
        parameter: job.parameter.clone(),
        result,
        region: None,
        failures: 0,
        next_attempt_ns: 0,
        requests: 0,
        epoch: job.epoch,
        iam_token: None,
    }
}

/// This thread's SSM client (and credentials), made for the job's settings.
async fn client<'a>(
    job: &Job,
    fetcher: &'a mut Option<(FetchSettings, SsmFetcher)>,
) -> Result<&'a SsmFetcher, Error> {
    if fetcher
        .as_ref()
        .is_none_or(|(settings, _)| *settings != job.settings)
    {
        *fetcher = Some((job.settings.clone(), SsmFetcher::new(&job.settings).await?));
    }
    Ok(&fetcher.as_ref().expect("set above").1)
}

/// The fetch, and the requests it sent.
async fn fetch(
    job: &Job,
    fetcher: &mut Option<(FetchSettings, SsmFetcher)>,
) -> (Result<(StoredValue, CachedConfig), Error>, u64) {
    let client = match client(job, fetcher).await {
        Ok(client) => client,
        Err(e) => return (Err(e), 0),
    };
    let before = client.requests();
    let result = fetch_with(job, client).await;
    (result, client.requests() - before)
}

async fn fetch_with(job: &Job, client: &SsmFetcher) -> Result<(StoredValue, CachedConfig), Error> {
    let mut stored = match &job.credentials {
        None => StoredValue::fetched(client.get(&job.parameter).await?, None, job.ttl),
        Some(creds) => {
            let (main, credentials) = client.get_pair(&job.parameter, creds).await?;
            StoredValue::fetched(main, Some(credentials), job.ttl)
        }
    };
    // Parsed here, so that a value that does not parse is a failed refresh
    // and never replaces the last good one, in this process or the host's entry.
    let mut config =
        CachedConfig::from_stored(&job.parameter, job.credentials.as_deref(), &stored)?;
    if config.config.iam_sign_host().is_some() {
        // The token is made with the value, and again with each refresh,
        // which comes at the latest REFRESH_AFTER into the token's life.
        config.iam_token = Some(client.iam_token(&job.parameter, &config.config).await?);
        config.refresh_after = config.refresh_after.min(REFRESH_AFTER);
        // The host's workers take the token with the value (see `core::shared`).
        stored.iam_token = config.iam_token.clone();
        stored.refresh_after_ns = config.refresh_after.as_nanos() as u64;
    }
    Ok((stored, config))
}

//! A fleet of hosts running the extension's own refresh policy against one
//! AWS account's SSM quota.
//!
//! Every decision a host makes is the extension's: what to do when a value
//! is asked for ([`ssm_db_config_core::plan::plan`]), when to refresh ahead,
//! whether to retry inside a fetch and how long to back off after a failure
//! ([`ssm_db_config_core::policy`]). Only the world around them is modelled
//! here: requests arriving at each host, the database failing over, and SSM
//! answering or throttling. An account's GetParameter* calls share one
//! regional quota (40 per second by default); SSM is a token bucket of that
//! rate, holding at most one second's worth.
//!
//! A host is one php-fpm master and its workers: they share one cache entry
//! and one backoff, so the simulation keeps one such entry per host, whose
//! refresher is the host itself.
//!
//! # Layout
//! - [`Fleet`]: the fleet's shape and the SSM quota.
//! - [`Scenario`]: steady state, a cold start, a failover, a password rotation.
//! - [`run`]: runs one scenario, returning a [`Report`].
//! - [`recommended_ttl`]: the operator's rule for the TTL.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use ssm_db_config_core::plan::{
    plan, Action, Backoff, Held, Knowledge, Reason, Refresher, Spread, Timing,
};
use ssm_db_config_core::policy;

/// The fleet and the account it reads from.
#[derive(Debug, Clone, Copy)]
pub struct Fleet {
    /// Hosts reading the parameter (each one php-fpm master and its workers).
    pub hosts: usize,
    /// `ssm_db_config.ttl`.
    pub ttl: Duration,
    /// `ssm_db_config.max_stale`.
    pub max_stale: Duration,
    /// `ssm_db_config.timeout_ms`: the budget of one fetch.
    pub fetch_budget: Duration,
    /// The account's GetParameter* quota, requests per second.
    pub quota: f64,
    /// Mean time between two requests that reach one host's extension.
    pub request_interval: Duration,
    /// How long SSM takes to answer.
    pub latency: Duration,
    /// The window over which forced refreshes are spread (`plan::Spread`):
    /// hosts ÷ quota as recommended, or zero for none.
    pub spread_window: Duration,
    /// Seed of every random draw: a run is repeatable.
    pub seed: u64,
}

impl Fleet {
    /// `hosts` hosts with the recommended TTL, the default quota (40/s) and
    /// the extension's defaults.
    pub fn new(hosts: usize) -> Fleet {
        let quota = DEFAULT_QUOTA;
        Fleet {
            hosts,
            ttl: recommended_ttl(hosts, quota),
            max_stale: Duration::from_secs(86_400),
            fetch_budget: Duration::from_millis(2000),
            quota,
            request_interval: Duration::from_millis(200),
            latency: Duration::from_millis(20),
            spread_window: policy::spread_window(hosts as u64, quota as u64),
            seed: 1,
        }
    }
}

/// SSM's default GetParameter* quota per account and region, requests per second.
pub const DEFAULT_QUOTA: f64 = 40.0;

/// The operator's rule: the shortest TTL that keeps a fleet's steady refreshes
/// at half the quota or less (`hosts / ttl <= quota / 2`), and never below
/// the extension's default of 60 s.
pub fn recommended_ttl(hosts: usize, quota: f64) -> Duration {
    Duration::from_secs(
        ((2.0 * hosts as f64 / quota / policy::REFRESH_AHEAD_FROM).ceil() as u64).max(60),
    )
}

/// What happens to the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Every host holds a value of some age; nothing changes for three TTLs.
    Steady,
    /// Every host starts at once with nothing cached.
    ColdStart,
    /// The database fails over and the parameter names the new writer: every
    /// host's next connection fails, and the failover drop-ins ask for a
    /// refresh (`ssm_db_config_refresh()`) on every failed connection until
    /// the host holds the new value.
    Failover,
    /// The password rotates, the old one still working for a while (RDS's
    /// alternating-users rotation): hosts take the new value as their TTL ends.
    Rotation,
}

impl Scenario {
    /// Every scenario, in report order.
    pub const ALL: [Scenario; 4] = [
        Scenario::Steady,
        Scenario::ColdStart,
        Scenario::Failover,
        Scenario::Rotation,
    ];

    /// The scenario's name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Steady => "steady",
            Scenario::ColdStart => "cold start",
            Scenario::Failover => "failover",
            Scenario::Rotation => "rotation",
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    /// The scenario.
    pub scenario: Scenario,
    /// The fleet.
    pub fleet: Fleet,
    /// Requests to SSM per second over the measured window.
    pub rps_mean: f64,
    /// The most requests to SSM in one second.
    pub rps_peak: f64,
    /// The share of requests SSM throttled.
    pub throttled_share: f64,
    /// Requests to SSM per host until it held the newest value (all of a
    /// host's requests in the steady state).
    pub attempts_per_host: f64,
    /// Seconds from the start (cold start) or the change (failover,
    /// rotation) until every host held the newest value.
    pub all_current_after: Option<f64>,
    /// The longest any host went on serving a value older than the newest,
    /// in seconds (steady state: the largest age past the TTL served).
    pub worst_staleness: f64,
}

/// How long the world waits for a scenario to settle before giving up.
const MAX_RUN: Duration = Duration::from_secs(3600);
/// When the change happens in the failover and rotation scenarios.
const CHANGE_AT: Duration = Duration::from_secs(10);
/// How long SSM takes to throttle a request.
const THROTTLE_LATENCY: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A request reaches the host's extension.
    Request(usize),
    /// The host's fetch sends its next attempt.
    Attempt(usize),
    /// SSM answers the host: the version it sent, or `None` for a throttle.
    Answer(usize, Option<u32>),
}

#[derive(Debug, Clone, Default)]
struct Host {
    held: Option<(Held, u32)>,
    backoff: Backoff,
    /// The attempt number and deadline of a fetch in progress.
    fetch: Option<(u32, u64)>,
    /// When it first held the newest version.
    current_since: Option<u64>,
    /// Requests to SSM made before it held the newest version.
    attempts_to_current: u64,
    /// Its draw in the spread, and its first forced refresh of the value held.
    spread_fraction_millis: u16,
    first_forced_ns: Option<u64>,
    attempts: u64,
}

struct World {
    fleet: Fleet,
    scenario: Scenario,
    rng: fastrand::Rng,
    now: u64,
    queue: BinaryHeap<Reverse<(u64, u64, Event)>>,
    seq: u64,
    hosts: Vec<Host>,
    /// The version SSM holds, and when it took it.
    version: u32,
    changed_at: u64,
    /// The token bucket: tokens, and when it was last filled.
    tokens: f64,
    filled_at: u64,
    requests: Vec<u64>,
    throttled: u64,
    worst_past_ttl: u64,
}

fn ns(d: Duration) -> u64 {
    d.as_nanos() as u64
}

/// Where the clock starts: late enough that warm values can be older.
const EPOCH: u64 = 100_000 * 1_000_000_000;

impl World {
    fn new(fleet: Fleet, scenario: Scenario) -> World {
        World {
            fleet,
            scenario,
            rng: fastrand::Rng::with_seed(fleet.seed),
            now: EPOCH,
            queue: BinaryHeap::new(),
            seq: 0,
            hosts: vec![Host::default(); fleet.hosts],
            version: 1,
            changed_at: EPOCH,
            tokens: fleet.quota,
            filled_at: EPOCH,
            requests: Vec::new(),
            throttled: 0,
            worst_past_ttl: 0,
        }
    }

    fn timing(&self) -> Timing {
        Timing {
            ttl: self.fleet.ttl,
            max_stale: self.fleet.max_stale,
        }
    }

    fn at(&mut self, time: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((time, self.seq, event)));
    }

    /// A request interval, jittered around its mean.
    fn interval(&mut self) -> u64 {
        (ns(self.fleet.request_interval) as f64 * (0.5 + self.rng.f64())) as u64
    }

    fn knowledge(&self, h: usize, forced: bool) -> Knowledge {
        let host = &self.hosts[h];
        Knowledge {
            now_ns: self.now,
            timing: self.timing(),
            held: host.held.map(|(held, _)| held),
            backoff: host.backoff,
            shared: true,
            refresher: Some(Refresher {
                is_self: true,
                alive: true,
                due_noticed_ns: None,
            }),
            in_flight: host.fetch.is_some(),
            forced,
            // One process per host: nothing is taken from another.
            newer_than_served: false,
            spread: Spread {
                window: self.fleet.spread_window,
                fraction_millis: host.spread_fraction_millis,
                first_forced_ns: host.first_forced_ns,
            },
        }
    }

    fn request(&mut self, h: usize) {
        let decision = plan(&self.knowledge(h, false));
        self.act(h, decision.action);
        let mut quiet_until = None;
        if let Some((held, version)) = self.hosts[h].held {
            let age = self.now.saturating_sub(held.fetched_ns);
            self.worst_past_ttl = self
                .worst_past_ttl
                .max(age.saturating_sub(ns(self.fleet.ttl)));
            let database_gone = self.scenario == Scenario::Failover && version < self.version;
            if database_gone {
                // The connection fails; the drop-in asks for a refresh.
                let forced = plan(&self.knowledge(h, true));
                self.hosts[h].first_forced_ns.get_or_insert(self.now);
                self.act(h, forced.action);
            } else if let (Action::Serve { until_ns }, Reason::Fresh) =
                (decision.action, decision.reason)
            {
                quiet_until = Some(until_ns);
            }
        }
        let mut next = self.now + self.interval();
        // Requests to a host whose value is fresh change nothing: skip to the
        // first one after its refresh-ahead point, but not past a change
        // that the host would notice (a failed connection).
        if let Some(until) = quiet_until.filter(|&u| u > next) {
            next = until + self.interval();
            let change = EPOCH + ns(CHANGE_AT);
            if self.scenario == Scenario::Failover && self.now < change && next > change {
                next = change + self.interval();
            }
        }
        self.at(next, Event::Request(h));
    }

    fn act(&mut self, h: usize, action: Action) {
        if matches!(action, Action::Fetch | Action::ServeAndRefresh { .. })
            && self.hosts[h].fetch.is_none()
        {
            self.hosts[h].fetch = Some((0, self.now + ns(self.fleet.fetch_budget)));
            self.at(self.now, Event::Attempt(h));
        }
    }

    fn attempt(&mut self, h: usize) {
        let host = &mut self.hosts[h];
        host.attempts += 1;
        if host.current_since.is_none() {
            host.attempts_to_current += 1;
        }
        self.requests.push(self.now);
        let elapsed = (self.now - self.filled_at) as f64 / 1e9;
        self.tokens = (self.tokens + elapsed * self.fleet.quota).min(self.fleet.quota);
        self.filled_at = self.now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            let version = self.version;
            self.at(
                self.now + ns(self.fleet.latency),
                Event::Answer(h, Some(version)),
            );
        } else {
            self.throttled += 1;
            self.at(self.now + ns(THROTTLE_LATENCY), Event::Answer(h, None));
        }
    }

    fn answer(&mut self, h: usize, version: Option<u32>) {
        let now = self.now;
        let random = self.rng.f64();
        let ttl = self.fleet.ttl;
        let newest = self.version;
        let host = &mut self.hosts[h];
        let Some((attempt, deadline)) = host.fetch else {
            return;
        };
        match version {
            Some(version) => {
                let refresh_after = policy::refresh_ahead_after(ttl, random);
                host.held = Some((
                    Held {
                        fetched_ns: now,
                        refresh_after,
                        renew_by_ns: None,
                    },
                    version,
                ));
                host.first_forced_ns = None;
                host.spread_fraction_millis = (random * 1000.0) as u16;
                host.backoff = Backoff {
                    failures: 0,
                    next_attempt_ns: 0,
                    last_attempt_ns: now,
                    has_error: false,
                };
                host.fetch = None;
                if version == newest && host.current_since.is_none() {
                    host.current_since = Some(now);
                }
            }
            None => match policy::retry_after(attempt, true, true, random)
                .filter(|d| now + ns(*d) < deadline)
            {
                Some(delay) => {
                    host.fetch = Some((attempt + 1, deadline));
                    self.at(now + ns(delay), Event::Attempt(h));
                }
                None => {
                    let failures = host.backoff.failures + 1;
                    let backoff = policy::failure_backoff(failures, true, self.rng.f64());
                    host.backoff = Backoff {
                        failures,
                        next_attempt_ns: now + ns(backoff),
                        last_attempt_ns: now,
                        has_error: true,
                    };
                    host.fetch = None;
                }
            },
        }
    }

    /// Hosts that hold a value fetched some time ago, spread over its refresh-ahead window.
    fn warm(&mut self) {
        for h in 0..self.hosts.len() {
            let refresh_after = policy::refresh_ahead_after(self.fleet.ttl, self.rng.f64());
            let age = (ns(refresh_after) as f64 * self.rng.f64()) as u64;
            self.hosts[h].held = Some((
                Held {
                    fetched_ns: self.now - age,
                    refresh_after,
                    renew_by_ns: None,
                },
                1,
            ));
            self.hosts[h].spread_fraction_millis = self.rng.u16(0..1000);
            self.hosts[h].current_since = Some(self.now);
        }
    }

    fn all_current(&self) -> bool {
        self.hosts.iter().all(|h| h.current_since.is_some())
    }

    fn run(mut self) -> Report {
        let start = self.now;
        if self.scenario != Scenario::ColdStart {
            self.warm();
        }
        for h in 0..self.hosts.len() {
            let first = start + self.interval();
            self.at(first, Event::Request(h));
        }
        let change = matches!(self.scenario, Scenario::Failover | Scenario::Rotation)
            .then_some(start + ns(CHANGE_AT));
        let end = match self.scenario {
            Scenario::Steady => start + 3 * ns(self.fleet.ttl),
            _ => start + ns(MAX_RUN),
        };
        let mut settled_at = None;
        while let Some(Reverse((time, _, event))) = self.queue.pop() {
            if time > end {
                break;
            }
            self.now = time;
            if let Some(c) = change.filter(|&c| time >= c && self.version == 1) {
                self.version = 2;
                self.changed_at = c;
                for host in &mut self.hosts {
                    host.current_since = None;
                    host.attempts_to_current = 0;
                }
            }
            match event {
                Event::Request(h) => self.request(h),
                Event::Attempt(h) => self.attempt(h),
                Event::Answer(h, version) => self.answer(h, version),
            }
            if self.scenario != Scenario::Steady
                && (change.is_none() || self.version == 2)
                && self.all_current()
            {
                settled_at = Some(self.now);
                break;
            }
        }
        self.report(start, change, settled_at.unwrap_or(self.now))
    }

    fn report(&self, start: u64, change: Option<u64>, end: u64) -> Report {
        let from = change.unwrap_or(start);
        let window: Vec<u64> = self
            .requests
            .iter()
            .copied()
            .filter(|&t| t >= from && t <= end)
            .collect();
        let seconds = ((end - from) as f64 / 1e9).max(1e-9);
        let mut per_second = std::collections::HashMap::<u64, u64>::new();
        for t in &window {
            *per_second.entry((t - from) / 1_000_000_000).or_default() += 1;
        }
        let n = self.hosts.len() as f64;
        let all_current_after = self
            .hosts
            .iter()
            .map(|h| h.current_since)
            .collect::<Option<Vec<u64>>>()
            .map(|times| times.into_iter().max().unwrap_or(from).saturating_sub(from) as f64 / 1e9);
        let worst_staleness = match self.scenario {
            Scenario::Steady => self.worst_past_ttl as f64 / 1e9,
            _ => all_current_after.unwrap_or(seconds),
        };
        let attempts = match self.scenario {
            Scenario::Steady => self.hosts.iter().map(|h| h.attempts).sum::<u64>(),
            _ => self
                .hosts
                .iter()
                .map(|h| h.attempts_to_current)
                .sum::<u64>(),
        };
        Report {
            scenario: self.scenario,
            fleet: self.fleet,
            rps_mean: window.len() as f64 / seconds,
            rps_peak: per_second.values().copied().max().unwrap_or(0) as f64,
            throttled_share: if self.requests.is_empty() {
                0.0
            } else {
                self.throttled as f64 / self.requests.len() as f64
            },
            attempts_per_host: attempts as f64 / n,
            all_current_after: if self.scenario == Scenario::Steady {
                None
            } else {
                all_current_after
            },
            worst_staleness,
        }
    }
}

/// Runs `scenario` for `fleet`.
pub fn run(fleet: Fleet, scenario: Scenario) -> Report {
    World::new(fleet, scenario).run()
}

/// The targets a fleet must meet, with the limit each was held to.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// What was measured against what, for each target missed.
    pub missed: Vec<String>,
}

/// Checks a report against the targets: steady state at most half the quota
/// (with the recommended TTL); after a failover every host on the new value
/// within 1.25 × hosts / quota seconds (the limit the quota sets), with at
/// most 1.5 requests per host.
pub fn verdict(report: &Report) -> Verdict {
    let f = report.fleet;
    let mut missed = Vec::new();
    match report.scenario {
        Scenario::Steady if report.rps_mean > f.quota / 2.0 => {
            missed.push(format!(
                "steady: {:.1} requests/s, above half the quota ({:.1})",
                report.rps_mean,
                f.quota / 2.0
            ));
        }
        Scenario::Failover => {
            let limit = 1.25 * f.hosts as f64 / f.quota;
            match report.all_current_after {
                Some(t) if t <= limit.max(1.0) => {}
                Some(t) => missed.push(format!(
                    "failover: every host current after {t:.1} s, above {limit:.1} s"
                )),
                None => missed.push("failover: some host never got the new value".into()),
            }
            if report.attempts_per_host > 1.5 {
                missed.push(format!(
                    "failover: {:.2} requests per host, above 1.5",
                    report.attempts_per_host
                ));
            }
        }
        _ => {}
    }
    Verdict { missed }
}

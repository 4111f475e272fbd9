//! What one PHP process does when a value is asked for: serve what it holds,
//! refresh it in the background, fetch and wait, or repeat a recent failure.
//!
//! A pure function of what the process holds, what the host's shared entry
//! says and the time, returning an [`Action`] with its [`Reason`]. It sets
//! how often a whole host calls SSM (one process refreshes, the others serve;
//! nobody asks while the host backs off; a forced refresh of every failing
//! request becomes one request per host and second), so it is table-tested
//! here and the fleet simulation runs this very function; the extension's
//! glue only reads the state, calls [`plan`] and carries the action out.

use std::time::Duration;

/// While a value is due or stale, how often a process looks at the host's entry again.
pub const RECHECK: Duration = Duration::from_millis(250);
/// With the shared cache, a forced refresh (`ssm_db_config_refresh()`) within
/// this long of the host's last attempt, good or bad, serves what the host
/// has instead of asking SSM again.
pub const FORCED_MIN_INTERVAL: Duration = Duration::from_secs(1);
/// How long a process that finds the value due leaves the refresh to the
/// host's refresher (the process that refreshed last) before doing it itself.
/// Under load every worker sees a request well within it.
pub const REFRESHER_GRACE: Duration = Duration::from_millis(500);

/// How long values live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// A value is fresh for this long after its fetch.
    pub ttl: Duration,
    /// After the TTL, the last good value is still served this long while refreshing fails.
    pub max_stale: Duration,
}

/// Where a value stands at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Serve it; nothing to do until `until_ns`.
    Fresh {
        /// When refreshing ahead starts (`CLOCK_MONOTONIC` ns).
        until_ns: u64,
    },
    /// Serve it; one process of the host should refresh it now.
    RefreshDue,
    /// Past its TTL: serve it only because refreshing failed; keep trying.
    Stale,
    /// Past the maximum staleness: do not serve it.
    TooOld,
}

/// The value a process holds: when it was fetched and when its refresh-ahead starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// When the fetch ended (`CLOCK_MONOTONIC` ns, one clock for the host).
    pub fetched_ns: u64,
    /// How long after the fetch refreshing ahead starts.
    pub refresh_after: Duration,
    /// When what is held stops being servable whatever the TTL says (ns):
    /// an IAM token's last servable moment (`crate::iam::SERVE_UNTIL` after
    /// its signing). `None` for a password value.
    pub renew_by_ns: Option<u64>,
}

impl Held {
    /// Where the value stands at `now_ns`.
    pub fn freshness(&self, now_ns: u64, timing: Timing) -> Freshness {
        let age = Duration::from_nanos(now_ns.saturating_sub(self.fetched_ns));
        let ahead = self.refresh_after.min(timing.ttl);
        if age < ahead {
            Freshness::Fresh {
                until_ns: self.fetched_ns + ahead.as_nanos() as u64,
            }
        } else if age < timing.ttl {
            Freshness::RefreshDue
        } else if age < timing.ttl + timing.max_stale {
            Freshness::Stale
        } else {
            Freshness::TooOld
        }
    }
}

/// The host's failure state (its shared entry; this process's own without one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoff {
    /// Consecutive failed fetches.
    pub failures: u32,
    /// Before this instant (ns) nobody of the host asks SSM again.
    pub next_attempt_ns: u64,
    /// When the host's last attempt, good or bad, ended (ns; 0: none known).
    pub last_attempt_ns: u64,
    /// Whether a failure is on record to repeat.
    pub has_error: bool,
}

/// The process that refreshed last, when the host shares its cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refresher {
    /// Whether it is this process.
    pub is_self: bool,
    /// Whether it still exists.
    pub alive: bool,
    /// When this process first found the held value due while leaving its
    /// refresh to that one (ns); `None`: not before now.
    pub due_noticed_ns: Option<u64>,
}

/// Everything [`plan`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knowledge {
    /// Now (`CLOCK_MONOTONIC` ns).
    pub now_ns: u64,
    /// TTL and maximum staleness.
    pub timing: Timing,
    /// The newest value this process holds (its own or the host's), if any.
    pub held: Option<Held>,
    /// The host's failure state.
    pub backoff: Backoff,
    /// Whether the host's processes share one cache entry.
    pub shared: bool,
    /// The host's refresher, if known (shared cache only).
    pub refresher: Option<Refresher>,
    /// Whether this process has a background refresh of this value running.
    pub in_flight: bool,
    /// Whether the caller asked for a refresh (`ssm_db_config_refresh()`).
    pub forced: bool,
    /// Whether `held` was just taken from the host's entry, newer than
    /// what this process served until now (another process fetched it).
    pub newer_than_served: bool,
    /// How the fleet's forced refreshes are spread out (see [`Spread`]).
    pub spread: Spread,
}

/// After a failover every host of a fleet finds its connection failing at
/// the same moment, and each asks for a refresh. Sent at once, those requests
/// would spend the account's SSM quota (shared by the whole fleet) many
/// times over, and most hosts would be throttled, back off and ask again. So
/// a host that holds a usable value waits a random part of `window` (the
/// fleet's hosts ÷ the quota: the time the quota needs to answer every host
/// once) from its first forced refresh before it asks, and keeps serving what
/// it has meanwhile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spread {
    /// The window: hosts ÷ requests per second of the quota. Zero: no spreading.
    pub window: Duration,
    /// This host's random fraction of it, drawn once per value held.
    pub fraction_millis: u16,
    /// When this host was first asked to refresh the value it holds (ns).
    pub first_forced_ns: Option<u64>,
}

impl Spread {
    /// When this host asks SSM, given its first forced refresh at `first_ns`.
    pub fn turn_ns(&self, first_ns: u64) -> u64 {
        first_ns
            + (self.window.as_nanos() as u64 / 1000) * u64::from(self.fraction_millis.min(1000))
    }
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Serve the held value; look again at `until_ns`.
    Serve {
        /// Until when the answer stands (ns).
        until_ns: u64,
    },
    /// Serve the held value and start a refresh in the background, unless
    /// another process of the host holds the lock (then only serve); look
    /// again at `until_ns`.
    ServeAndRefresh {
        /// Until when the answer stands (ns).
        until_ns: u64,
    },
    /// Fetch and wait for the answer (one process of the host at a time: the
    /// glue waits for the lock, then plans again with what it finds).
    Fetch,
    /// Fail with the host's last error, without asking SSM.
    Fail {
        /// Until the host asks again.
        retry_in: Duration,
    },
}

/// Why, in the words the status array and a plan printout use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The value is fresh.
    Fresh,
    /// Refresh-ahead time has come.
    RefreshDue,
    /// Past the TTL because refreshing failed; still within `max_stale`.
    Stale,
    /// This process's own background refresh is running.
    InFlight,
    /// The host is backing off after failures.
    BackingOff,
    /// The host's refresher gets the first go at the refresh.
    RefresherTurn,
    /// Nothing held, or past `max_stale`.
    NothingUsable,
    /// A forced refresh right after the host's last attempt.
    ForcedRecently,
    /// A forced refresh.
    Forced,
    /// A forced refresh that waits for this host's turn in the fleet's spread.
    Spreading,
    /// A forced refresh that finds a newer value on the host than the one
    /// the caller failed with.
    NewerOnHost,
}

/// The decision and its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// What to do.
    pub action: Action,
    /// Why.
    pub reason: Reason,
}

/// Decides; see the module doc.
///
/// - Forced, and the host holds a usable value newer than the one this
///   process served: serve it (the caller's failure was with the older
///   one; after a failover each worker of a host would otherwise fetch
///   in turn, once a second, what one of them already fetched).
/// - Forced: while the host backs off (throttling above all), or within
///   [`FORCED_MIN_INTERVAL`] of the host's last attempt when it shares its
///   cache, serve what is held (or fail with the last error if nothing is
///   usable); otherwise fetch.
/// - Nothing usable: fail with the last error while the host backs off,
///   else fetch.
/// - Fresh: serve until refresh-ahead time.
/// - Due or stale: serve, and refresh in the background unless a refresh
///   is running, the host backs off, or it is the host's refresher's turn
///   (the first half of the window before expiry, and at least
///   [`REFRESHER_GRACE`] after this process noticed, while it is alive).
pub fn plan(k: &Knowledge) -> Plan {
    let now = k.now_ns;
    let recheck = now + RECHECK.as_nanos() as u64;
    let freshness = k.held.map(|h| h.freshness(now, k.timing));
    let usable = matches!(
        freshness,
        Some(Freshness::Fresh { .. } | Freshness::RefreshDue | Freshness::Stale)
    );
    let backing_off = now < k.backoff.next_attempt_ns;
    let fail = |until_ns: u64| Action::Fail {
        retry_in: Duration::from_nanos(until_ns.saturating_sub(now)),
    };
    let served = |reason| Plan {
        action: Action::Serve { until_ns: recheck },
        reason,
    };

    if k.forced && k.newer_than_served && usable {
        return served(Reason::NewerOnHost);
    }
    if k.forced {
        let forced_again_ns = k.backoff.last_attempt_ns + FORCED_MIN_INTERVAL.as_nanos() as u64;
        let recent = k.shared && k.backoff.last_attempt_ns != 0 && now < forced_again_ns;
        let waiting = usable
            && k.spread.window > Duration::ZERO
            && now < k.spread.turn_ns(k.spread.first_forced_ns.unwrap_or(now));
        return match (backing_off, recent, usable) {
            (false, _, true) if waiting => served(Reason::Spreading),
            (true, _, true) => served(Reason::BackingOff),
            (true, _, false) if k.backoff.has_error => Plan {
                action: fail(k.backoff.next_attempt_ns),
                reason: Reason::BackingOff,
            },
            (false, true, true) => served(Reason::ForcedRecently),
            (false, true, false) if k.backoff.has_error => Plan {
                action: fail(forced_again_ns),
                reason: Reason::ForcedRecently,
            },
            _ => Plan {
                action: Action::Fetch,
                reason: Reason::Forced,
            },
        };
    }

    let (held, freshness) = match (k.held, freshness) {
        (Some(held), Some(f)) if usable => (held, f),
        _ if backing_off && k.backoff.has_error => {
            return Plan {
                action: fail(k.backoff.next_attempt_ns),
                reason: Reason::BackingOff,
            }
        }
        _ => {
            return Plan {
                action: Action::Fetch,
                reason: Reason::NothingUsable,
            }
        }
    };
    let reason = match freshness {
        Freshness::Fresh { until_ns } => {
            return Plan {
                action: Action::Serve { until_ns },
                reason: Reason::Fresh,
            }
        }
        Freshness::Stale => Reason::Stale,
        _ => Reason::RefreshDue,
    };
    if k.in_flight {
        return served(Reason::InFlight);
    }
    if k.spread
        .first_forced_ns
        .is_some_and(|first| now < k.spread.turn_ns(first))
    {
        // Asked to refresh, and waiting for its turn in the fleet's spread:
        // a refresh-ahead now would add to the load the spread keeps within
        // the quota.
        return served(Reason::Spreading);
    }
    if backing_off {
        return served(Reason::BackingOff);
    }
    if let Some(r) = k.refresher.filter(|r| k.shared && !r.is_self && r.alive) {
        let due_ns = held.fetched_ns + held.refresh_after.as_nanos() as u64;
        // A token shared by the host's workers must be made again before it
        // stops being servable, however long the TTL: the refresher's turn
        // ends halfway to that moment too.
        let expires_ns = (held.fetched_ns + k.timing.ttl.as_nanos() as u64)
            .min(held.renew_by_ns.unwrap_or(u64::MAX));
        let noticed_ns = r.due_noticed_ns.unwrap_or(now);
        let turn_ns = (due_ns + expires_ns.saturating_sub(due_ns) / 2)
            .max(noticed_ns + REFRESHER_GRACE.as_nanos() as u64);
        if now < turn_ns {
            return served(Reason::RefresherTurn);
        }
    }
    Plan {
        action: Action::ServeAndRefresh { until_ns: recheck },
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const TIMING: Timing = Timing {
        ttl: Duration::from_secs(60),
        max_stale: Duration::from_secs(100),
    };
    /// A value fetched at t = 1000 s, its refresh-ahead 57 s later.
    const HELD: Held = Held {
        fetched_ns: 1000 * S,
        refresh_after: Duration::from_secs(57),
        renew_by_ns: None,
    };

    fn at(seconds_after_fetch: f64) -> Knowledge {
        Knowledge {
            now_ns: 1000 * S + (seconds_after_fetch * 1e9) as u64,
            timing: TIMING,
            held: Some(HELD),
            backoff: Backoff::default(),
            shared: true,
            refresher: None,
            in_flight: false,
            forced: false,
            newer_than_served: false,
            spread: Spread::default(),
        }
    }

    fn backing_off(mut k: Knowledge, for_seconds: u64) -> Knowledge {
        k.backoff = Backoff {
            failures: 2,
            next_attempt_ns: k.now_ns + for_seconds * S,
            last_attempt_ns: k.now_ns - S / 10,
            has_error: true,
        };
        k
    }

    fn other_refresher(mut k: Knowledge, alive: bool, noticed_s_ago: Option<f64>) -> Knowledge {
        let due_noticed_ns = noticed_s_ago.map(|s| k.now_ns - (s * 1e9) as u64);
        k.refresher = Some(Refresher {
            is_self: false,
            alive,
            due_noticed_ns,
        });
        k
    }

    /// A spread window of 25 s; this host's fraction; its first forced refresh `s_ago` seconds ago.
    fn spread(mut k: Knowledge, fraction: f64, s_ago: Option<f64>) -> Knowledge {
        k.spread = Spread {
            window: Duration::from_secs(25),
            fraction_millis: (fraction * 1000.0) as u16,
            first_forced_ns: s_ago.map(|s| k.now_ns - (s * 1e9) as u64),
        };
        k
    }

    fn recheck(k: &Knowledge) -> u64 {
        k.now_ns + RECHECK.as_nanos() as u64
    }

    #[test]
    fn freshness_moves_from_fresh_to_due_to_stale_to_too_old() {
        let f = |s: u64| HELD.freshness(HELD.fetched_ns + s * S, TIMING);
        assert_eq!(f(0), Freshness::Fresh { until_ns: 1057 * S });
        assert_eq!(f(56), Freshness::Fresh { until_ns: 1057 * S });
        assert_eq!(f(57), Freshness::RefreshDue);
        assert_eq!(f(60), Freshness::Stale);
        assert_eq!(f(159), Freshness::Stale);
        assert_eq!(f(160), Freshness::TooOld);
        let short = Timing {
            ttl: Duration::from_secs(10),
            max_stale: Duration::ZERO,
        };
        assert_eq!(
            HELD.freshness(HELD.fetched_ns + 9 * S, short),
            Freshness::Fresh { until_ns: 1010 * S },
            "refresh-ahead never past the TTL"
        );
        assert_eq!(
            HELD.freshness(HELD.fetched_ns + 10 * S, short),
            Freshness::TooOld,
            "max_stale 0: never stale"
        );
    }

    #[test]
    fn plans_every_case() {
        let nothing = Knowledge {
            held: None,
            ..at(0.0)
        };
        let too_old = at(160.0);
        let forced = |mut k: Knowledge| {
            k.forced = true;
            k
        };
        let attempted_ago = |mut k: Knowledge, seconds: f64| {
            k.backoff.last_attempt_ns = k.now_ns - (seconds * 1e9) as u64;
            k
        };
        let unshared = |mut k: Knowledge| {
            k.shared = false;
            k
        };
        let in_flight = |mut k: Knowledge| {
            k.in_flight = true;
            k
        };
        let serve = |k: &Knowledge| Action::Serve {
            until_ns: recheck(k),
        };
        let refresh = |k: &Knowledge| Action::ServeAndRefresh {
            until_ns: recheck(k),
        };
        let fail = |s: u64| Action::Fail {
            retry_in: Duration::from_secs(s),
        };

        /// A case: its name, what is known, the expected action (of what is known) and reason.
        type Case = (
            &'static str,
            Knowledge,
            Box<dyn Fn(&Knowledge) -> Action>,
            Reason,
        );
        let table: Vec<Case> = vec![
            (
                "nothing held: fetch",
                nothing,
                Box::new(|_| Action::Fetch),
                Reason::NothingUsable,
            ),
            (
                "too old: fetch",
                too_old,
                Box::new(|_| Action::Fetch),
                Reason::NothingUsable,
            ),
            (
                "nothing held while backing off: fail",
                backing_off(nothing, 4),
                Box::new(move |_| fail(4)),
                Reason::BackingOff,
            ),
            (
                "too old while backing off: fail",
                backing_off(too_old, 2),
                Box::new(move |_| fail(2)),
                Reason::BackingOff,
            ),
            (
                "fresh: serve until refresh-ahead",
                at(10.0),
                Box::new(|_| Action::Serve { until_ns: 1057 * S }),
                Reason::Fresh,
            ),
            (
                "due: serve and refresh",
                at(58.0),
                Box::new(refresh),
                Reason::RefreshDue,
            ),
            (
                "stale: serve and refresh",
                at(90.0),
                Box::new(refresh),
                Reason::Stale,
            ),
            (
                "due, own refresh running: serve",
                in_flight(at(58.0)),
                Box::new(serve),
                Reason::InFlight,
            ),
            (
                "stale, backing off: serve",
                backing_off(at(90.0), 30),
                Box::new(serve),
                Reason::BackingOff,
            ),
            (
                "due, the refresher's turn: serve",
                other_refresher(at(57.2), true, None),
                Box::new(serve),
                Reason::RefresherTurn,
            ),
            (
                "due, refresher noticed 0.4 s ago, before mid-window: serve",
                other_refresher(at(58.4), true, Some(0.4)),
                Box::new(serve),
                Reason::RefresherTurn,
            ),
            (
                "due, past mid-window and grace: refresh",
                other_refresher(at(58.6), true, Some(1.0)),
                Box::new(refresh),
                Reason::RefreshDue,
            ),
            (
                "due, past mid-window but within grace: serve",
                other_refresher(at(58.6), true, Some(0.2)),
                Box::new(serve),
                Reason::RefresherTurn,
            ),
            (
                "IAM token, the refresher's turn ends halfway to the token's last servable moment (not the TTL's): refresh",
                other_refresher(
                    {
                        let mut k = at(57.6);
                        k.held = Some(Held {
                            renew_by_ns: Some(1058 * S),
                            ..HELD
                        });
                        k
                    },
                    true,
                    Some(1.0),
                ),
                Box::new(refresh),
                Reason::RefreshDue,
            ),
            (
                "IAM token, before halfway to its last servable moment: the refresher's turn",
                other_refresher(
                    {
                        let mut k = at(57.4);
                        k.held = Some(Held {
                            renew_by_ns: Some(1058 * S),
                            ..HELD
                        });
                        k
                    },
                    true,
                    Some(1.0),
                ),
                Box::new(serve),
                Reason::RefresherTurn,
            ),
            (
                "due, refresher gone: refresh",
                other_refresher(at(57.2), false, None),
                Box::new(refresh),
                Reason::RefreshDue,
            ),
            (
                "stale after an idle gap, everyone notices now: serve, refresher first",
                other_refresher(at(120.0), true, None),
                Box::new(serve),
                Reason::RefresherTurn,
            ),
            (
                "stale after an idle gap, refresher silent for the grace: refresh",
                other_refresher(at(120.0), true, Some(0.6)),
                Box::new(refresh),
                Reason::Stale,
            ),
            (
                "due, this process is the refresher: refresh",
                {
                    let mut k = at(57.2);
                    k.refresher = Some(Refresher {
                        is_self: true,
                        alive: true,
                        due_noticed_ns: None,
                    });
                    k
                },
                Box::new(refresh),
                Reason::RefreshDue,
            ),
            (
                "due, not shared: refresh regardless of refresher",
                unshared(other_refresher(at(57.2), true, None)),
                Box::new(refresh),
                Reason::RefreshDue,
            ),
            (
                "forced: fetch",
                forced(at(10.0)),
                Box::new(|_| Action::Fetch),
                Reason::Forced,
            ),
            (
                "forced, host attempted 0.5 s ago: serve",
                forced(attempted_ago(at(10.0), 0.5)),
                Box::new(serve),
                Reason::ForcedRecently,
            ),
            (
                "forced, the host holds a newer value than this process served: serve it",
                forced(Knowledge {
                    newer_than_served: true,
                    ..attempted_ago(at(10.0), 1.5)
                }),
                Box::new(serve),
                Reason::NewerOnHost,
            ),
            (
                "forced, newer on the host but too old to serve: fetch",
                forced(Knowledge {
                    newer_than_served: true,
                    ..at(160.0)
                }),
                Box::new(|_| Action::Fetch),
                Reason::Forced,
            ),
            (
                "forced, host attempted 1.5 s ago: fetch",
                forced(attempted_ago(at(10.0), 1.5)),
                Box::new(|_| Action::Fetch),
                Reason::Forced,
            ),
            (
                "forced, not shared, attempted 0.5 s ago: fetch",
                unshared(forced(attempted_ago(at(10.0), 0.5))),
                Box::new(|_| Action::Fetch),
                Reason::Forced,
            ),
            (
                "forced while backing off: serve",
                forced(backing_off(at(90.0), 20)),
                Box::new(serve),
                Reason::BackingOff,
            ),
            (
                "forced while backing off, nothing usable: fail",
                forced(backing_off(nothing, 20)),
                Box::new(move |_| fail(20)),
                Reason::BackingOff,
            ),
            (
                "forced right after a failed attempt, nothing usable: fail",
                forced(Knowledge {
                    backoff: Backoff {
                        failures: 1,
                        next_attempt_ns: 0,
                        last_attempt_ns: nothing.now_ns - S / 2,
                        has_error: true,
                    },
                    ..nothing
                }),
                Box::new(|_| Action::Fail {
                    retry_in: Duration::from_millis(500),
                }),
                Reason::ForcedRecently,
            ),
            (
                "forced, nothing held, no attempt yet: fetch",
                forced(nothing),
                Box::new(|_| Action::Fetch),
                Reason::Forced,
            ),
            (
                "forced, spread, before this host's turn: serve",
                forced(spread(at(10.0), 0.5, Some(1.0))),
                Box::new(serve),
                Reason::Spreading,
            ),
            (
                "forced, spread, first time asked: serve",
                forced(spread(at(10.0), 0.5, None)),
                Box::new(serve),
                Reason::Spreading,
            ),
            (
                "forced, spread, at this host's turn: fetch",
                forced(spread(at(10.0), 0.5, Some(13.0))),
                Box::new(|_| Action::Fetch),
                Reason::Forced,
            ),
            (
                "forced, spread, nothing usable: fetch at once",
                forced(spread(nothing, 0.5, Some(1.0))),
                Box::new(|_| Action::Fetch),
                Reason::Forced,
            ),
            (
                "forced, spread, turn come but backing off: serve",
                forced(backing_off(spread(at(90.0), 0.1, Some(30.0)), 5)),
                Box::new(serve),
                Reason::BackingOff,
            ),
            (
                "not forced, due, waiting for a forced turn: serve",
                spread(at(58.0), 0.9, Some(1.0)),
                Box::new(serve),
                Reason::Spreading,
            ),
            (
                "not forced, due, forced turn passed: refresh",
                spread(at(58.0), 0.1, Some(10.0)),
                Box::new(refresh),
                Reason::RefreshDue,
            ),
            (
                "not forced, due, never forced: refresh",
                spread(at(58.0), 0.9, None),
                Box::new(refresh),
                Reason::RefreshDue,
            ),
        ];
        for (case, k, action, reason) in table {
            assert_eq!(
                plan(&k),
                Plan {
                    action: action(&k),
                    reason
                },
                "{case}"
            );
        }
    }
}

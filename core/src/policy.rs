//! When to refresh, how long to serve a stale value, and how to back off.
//!
//! All instants are nanoseconds of `CLOCK_MONOTONIC`, which on Linux is one
//! clock for every process of the host: the php-fpm workers compare the times
//! they read from the shared entry with their own.
//!
//! - A value is fresh for `ttl`. From a random point between 93 % and 98 % of
//!   the TTL on, one process refreshes it ahead while everyone keeps serving
//!   it (the randomness keeps hosts started together from refreshing together).
//!   Late in the TTL, so that a host still makes about one request per TTL
//!   (a run of L seconds costs at most L / TTL + 1 requests), yet early
//!   enough that a background fetch lands before the value expires.
//! - When refreshing fails for any reason, the last good value is served until
//!   `max_stale` past its expiry, and the failure state says when the host may
//!   try again: [`failure_backoff`] grows with consecutive failures, more
//!   steeply for throttling.
//! - Inside one fetch, transient failures are retried with full jitter
//!   ([`retry_delay`]) while the budget lasts.

//!
//! The functions that decide take the time and the random draws as
//! arguments, so that the fleet simulation runs them as the extension does;
//! only [`mono_now_ns`] and [`random_fraction`] read the machine (and need
//! the `aws` feature).

use std::time::Duration;

/// Nanoseconds of `CLOCK_MONOTONIC` (shared by all processes of the host).
#[cfg(feature = "aws")]
pub fn mono_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A uniformly random fraction in [0, 1).
#[cfg(feature = "aws")]
pub fn random_fraction() -> f64 {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 8];
    // SystemRandom reads getrandom(2); a failure there leaves zeros, which
    // only removes jitter.
    let _ = SystemRandom::new().fill(&mut bytes);
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// Where in the TTL refresh-ahead starts, before jitter.
pub const REFRESH_AHEAD_FROM: f64 = 0.93;
/// Jitter added to [`REFRESH_AHEAD_FROM`], as a fraction of the TTL.
pub const REFRESH_AHEAD_JITTER: f64 = 0.05;

/// How long after a fetch refreshing ahead begins.
pub fn refresh_ahead_after(ttl: Duration, random: f64) -> Duration {
    ttl.mul_f64(REFRESH_AHEAD_FROM + REFRESH_AHEAD_JITTER * random)
}

/// The window over which a fleet of `hosts` spreads its forced refreshes
/// (see `plan::Spread`): the time `throughput` requests a second need to
/// answer every host once; none for a fleet that one second's burst
/// answers (SSM's quota is a per-second rate).
pub fn spread_window(hosts: u64, throughput: u64) -> Duration {
    if hosts <= throughput || throughput == 0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(hosts as f64 / throughput as f64)
    }
}

/// At most this many attempts per fetch (the budget usually ends it first).
pub const MAX_ATTEMPTS: u32 = 4;

/// Whether attempt number `attempt` (0-based) of one fetch, which failed,
/// is tried again inside the fetch, and after how long; `None`: the fetch
/// fails with this error and the host backs off ([`failure_backoff`]).
///
/// A throttle is never retried inside the fetch: it says the account's
/// GetParameter quota is spent, which every host of a fleet shares, and a
/// quick second try only spends more of it. Other transient failures (a
/// timeout, a reset, a 5xx) are retried after [`retry_delay`].
pub fn retry_after(
    attempt: u32,
    transient: bool,
    throttled: bool,
    random: f64,
) -> Option<Duration> {
    (transient && !throttled && attempt + 1 < MAX_ATTEMPTS)
        .then(|| retry_delay(attempt, false, random))
}

/// Delay before retry number `attempt` (0-based) inside one fetch: full jitter
/// over an exponential ceiling; throttling starts higher and grows further.
pub fn retry_delay(attempt: u32, throttled: bool, random: f64) -> Duration {
    let (base_ms, cap_ms) = if throttled {
        (100.0, 1000.0)
    } else {
        (25.0, 250.0)
    };
    let ceiling = (base_ms * 2f64.powi(attempt as i32)).min(cap_ms);
    Duration::from_secs_f64(ceiling * random / 1000.0)
}

/// How long a host waits before its next attempt after `failures` consecutive
/// failed fetches (1-based). Equal jitter: at least half the ceiling, so that
/// "one attempt per interval" holds even on an unlucky draw.
pub fn failure_backoff(failures: u32, throttled: bool, random: f64) -> Duration {
    let (base_s, cap_s) = if throttled { (5.0, 300.0) } else { (1.0, 60.0) };
    let ceiling = (base_s * 2f64.powi(failures.saturating_sub(1).min(20) as i32)).min(cap_s);
    Duration::from_secs_f64(ceiling / 2.0 + ceiling / 2.0 * random)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_ahead_falls_late_in_the_ttl() {
        let ttl = Duration::from_secs(100);
        assert_eq!(refresh_ahead_after(ttl, 0.0), Duration::from_secs(93));
        assert!(refresh_ahead_after(ttl, 0.999_999) < Duration::from_secs(98));
        assert!(refresh_ahead_after(ttl, 0.999_999) > Duration::from_millis(97_999));
    }

    #[cfg(feature = "aws")]
    #[test]
    fn random_fraction_is_a_fraction() {
        let r = random_fraction();
        assert!((0.0..1.0).contains(&r));
    }

    #[test]
    fn retry_delays_are_capped_and_throttling_waits_longer() {
        assert_eq!(retry_delay(0, false, 1.0), Duration::from_millis(25));
        assert_eq!(retry_delay(10, false, 1.0), Duration::from_millis(250));
        assert_eq!(retry_delay(10, true, 1.0), Duration::from_millis(1000));
        assert_eq!(retry_delay(3, false, 0.0), Duration::ZERO);
    }

    #[test]
    fn spread_window_is_the_time_the_quota_needs_for_the_fleet() {
        assert_eq!(spread_window(1, 40), Duration::ZERO);
        assert_eq!(spread_window(40, 40), Duration::ZERO);
        assert_eq!(spread_window(100, 40), Duration::from_millis(2500));
        assert_eq!(spread_window(1000, 40), Duration::from_secs(25));
    }

    #[test]
    fn throttles_are_never_retried_inside_a_fetch() {
        assert_eq!(retry_after(0, true, true, 1.0), None);
        assert_eq!(
            retry_after(0, true, false, 1.0),
            Some(Duration::from_millis(25))
        );
        assert_eq!(
            retry_after(2, true, false, 1.0),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            retry_after(3, true, false, 1.0),
            None,
            "four attempts at most"
        );
        assert_eq!(
            retry_after(0, false, false, 1.0),
            None,
            "a lasting failure is not retried"
        );
    }

    #[test]
    fn failure_backoff_grows_to_its_cap_and_never_below_half() {
        assert_eq!(failure_backoff(1, false, 0.0), Duration::from_millis(500));
        assert_eq!(failure_backoff(3, false, 1.0), Duration::from_secs(4));
        assert_eq!(failure_backoff(30, false, 1.0), Duration::from_secs(60));
        assert_eq!(failure_backoff(1, true, 0.0), Duration::from_millis(2500));
        assert_eq!(failure_backoff(30, true, 0.0), Duration::from_secs(150));
    }
}

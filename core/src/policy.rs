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
//! - Inside one fetch, the AWS SDK's standard retry mode retries transient
//!   failures with full jitter while the budget lasts, set up with this
//!   module's constants; [`retry_after`] is its model, and says why a
//!   throttle is not retried.

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

/// At most this many attempts per fetch (the budget usually ends it first):
/// the SDK's `max_attempts`.
pub const MAX_ATTEMPTS: u32 = 4;
/// The ceiling of the delay before the first retry inside a fetch, doubled
/// for each further one: the SDK's `initial_backoff`.
pub const RETRY_INITIAL_BACKOFF: Duration = Duration::from_millis(25);
/// The highest ceiling of a delay between two attempts of one fetch: the
/// SDK's `max_backoff`.
pub const RETRY_MAX_BACKOFF: Duration = Duration::from_millis(250);

/// Whether attempt number `attempt` (0-based) of one fetch, which failed,
/// is tried again inside the fetch, and after how long; `None`: the fetch
/// fails with this error and the host backs off ([`failure_backoff`]).
///
/// The fetch itself leaves this to the AWS SDK's standard retry mode, set
/// to [`MAX_ATTEMPTS`], [`RETRY_INITIAL_BACKOFF`] and [`RETRY_MAX_BACKOFF`];
/// this function is its model, which the fleet simulation runs. (The SDK
/// also stops retrying when its retry quota is spent, which this leaves out:
/// it only ever removes retries.)
///
/// A throttle is never retried inside the fetch (`fetch` forbids it to the
/// SDK): it says the account's GetParameter quota is spent, which every host
/// of a fleet shares, and a quick second try only spends more of it. Other
/// transient failures (a timeout, a reset, a 5xx) are retried after
/// [`retry_delay`].
pub fn retry_after(
    attempt: u32,
    transient: bool,
    throttled: bool,
    random: f64,
) -> Option<Duration> {
    (transient && !throttled && attempt + 1 < MAX_ATTEMPTS).then(|| retry_delay(attempt, random))
}

/// Delay before retry number `attempt` (0-based) inside one fetch, as the
/// SDK's standard mode computes it: full jitter (`random` in [0, 1)) over
/// [`RETRY_INITIAL_BACKOFF`] doubled `attempt` times, at most [`RETRY_MAX_BACKOFF`].
pub fn retry_delay(attempt: u32, random: f64) -> Duration {
    let ceiling = RETRY_INITIAL_BACKOFF
        .checked_mul(2u32.saturating_pow(attempt))
        .map_or(RETRY_MAX_BACKOFF, |d| d.min(RETRY_MAX_BACKOFF));
    ceiling.mul_f64(random)
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
    fn retry_delays_double_up_to_their_cap_with_full_jitter() {
        assert_eq!(retry_delay(0, 1.0), Duration::from_millis(25));
        assert_eq!(retry_delay(1, 1.0), Duration::from_millis(50));
        assert_eq!(retry_delay(1, 0.5), Duration::from_millis(25));
        assert_eq!(retry_delay(10, 1.0), Duration::from_millis(250));
        assert_eq!(retry_delay(40, 1.0), Duration::from_millis(250));
        assert_eq!(retry_delay(3, 0.0), Duration::ZERO);
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

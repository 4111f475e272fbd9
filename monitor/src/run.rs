//! The daemon loop: poll, sleep, back off after failures, stop on shutdown.
//!
//! Time comes in through [`Clock`] so that a test can run the loop at full
//! speed and read the delays it asked for.

use std::future::Future;
use std::time::{Duration, SystemTime};

use tracing::{error, info, warn};

use crate::aws::Rds;
use crate::monitor::Monitor;
use crate::Error;

/// Wall-clock time and sleeping.
#[allow(async_fn_in_trait)] // used with concrete types on one thread
pub trait Clock {
    /// Now.
    fn now(&self) -> SystemTime;
    /// Waits for `duration`.
    async fn sleep(&self, duration: Duration);
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await
    }
}

/// The delay before the next poll after `failures` consecutive failed polls:
/// the interval doubled per failure, capped at `max`. No jitter: there is one
/// monitor per database, not a fleet of clients to spread out.
pub fn backoff(interval: Duration, failures: u32, max: Duration) -> Duration {
    if failures == 0 {
        return interval;
    }
    interval.saturating_mul(1u32 << failures.min(20)).min(max)
}

/// Whether an error in a poll's report should slow the next poll down. A
/// target that could not be described because its region's API is down or
/// failing does not: the poll still decided for every other target, it made
/// one call to that region, and `promotion.unknown_after_polls` counts polls,
/// which a backoff would stretch from minutes to hours. Throttling does, and
/// so does every other failure (parameters, writes, denied calls).
pub fn backs_off(e: &Error) -> bool {
    !matches!(
        e,
        Error::Api {
            service: "RDS",
            operation: "DescribeDBInstances" | "DescribeDBClusters" | "DescribeGlobalClusters",
            kind,
            transient: true,
            ..
        } if *kind != ssm_db_config_core::ErrorKind::Throttled
    )
}

/// Polls until `shutdown` completes. Every AWS failure is logged, counted and
/// retried with backoff; only [`Error::Config`] stops the loop (returned): the
/// configuration does not match what RDS runs, e.g. a cluster member
/// configured as `[primary]`, and retrying cannot fix that.
pub async fn run<R: Rds, C: Clock>(
    monitor: &mut Monitor<R>,
    clock: &C,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    tokio::pin!(shutdown);
    let interval = monitor.config().poll_interval();
    let max = monitor.config().max_backoff();
    let mut failures = 0u32;
    info!(interval_secs = interval.as_secs_f64(), "monitor started");
    loop {
        let outcome = tokio::select! {
            outcome = monitor.poll(clock) => outcome,
            _ = &mut shutdown => break,
        };
        let failed = match outcome {
            Ok(report) if report.errors.is_empty() => false,
            Ok(report) => {
                for e in &report.errors {
                    error!(error = %e, transient = e.is_transient(), "poll finished with an error");
                }
                report.errors.iter().any(backs_off)
            }
            Err(e @ Error::Config(_)) => {
                error!(error = %e, "stopping: the configuration does not match RDS");
                return Err(e);
            }
            Err(e) => {
                error!(error = %e, transient = e.is_transient(), "poll failed");
                true
            }
        };
        failures = if failed {
            failures.saturating_add(1)
        } else {
            0
        };
        let delay = backoff(interval, failures, max);
        if failed {
            warn!(
                failures,
                next_poll_in_secs = delay.as_secs_f64(),
                "backing off"
            );
        }
        tokio::select! {
            _ = clock.sleep(delay) => {}
            _ = &mut shutdown => break,
        }
    }
    info!("monitor stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssm_db_config_core::ErrorKind;

    fn api(
        service: &'static str,
        operation: &'static str,
        kind: ErrorKind,
        transient: bool,
    ) -> Error {
        Error::Api {
            service,
            operation,
            target: "x (us-east-1)".into(),
            kind,
            reason: "r".into(),
            transient,
        }
    }

    #[test]
    fn only_throttling_among_describe_failures_backs_off() {
        let cases = [
            (
                api("RDS", "DescribeDBInstances", ErrorKind::Network, true),
                false,
            ),
            (
                api("RDS", "DescribeDBInstances", ErrorKind::Timeout, true),
                false,
            ),
            (
                api("RDS", "DescribeDBClusters", ErrorKind::Service, true),
                false,
            ),
            (
                api("RDS", "DescribeGlobalClusters", ErrorKind::Service, true),
                false,
            ),
            (
                api("RDS", "DescribeDBInstances", ErrorKind::Throttled, true),
                true,
            ),
            (
                api("RDS", "DescribeDBInstances", ErrorKind::AccessDenied, false),
                true,
            ),
            (api("SSM", "GetParameter", ErrorKind::Network, true), true),
            (
                api("RDS", "PromoteReadReplica", ErrorKind::Service, true),
                true,
            ),
            (Error::Config("x".into()), true),
        ];
        for (e, expected) in cases {
            assert_eq!(backs_off(&e), expected, "{e}");
        }
    }

    #[test]
    fn backoff_doubles_per_failure_up_to_the_cap() {
        let s = Duration::from_secs;
        let got: Vec<Duration> = (0..12).map(|f| backoff(s(5), f, s(300))).collect();
        assert_eq!(got[..7], [s(5), s(10), s(20), s(40), s(80), s(160), s(300)]);
        assert!(got[7..].iter().all(|d| *d == s(300)));
        assert_eq!(backoff(s(5), u32::MAX, s(300)), s(300));
    }
}

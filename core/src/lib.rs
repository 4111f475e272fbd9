//! Database settings from AWS SSM Parameter Store, for PHP and for the
//! failover monitor. No PHP in here.
//!
//! # Layout
//! - [`error`]: the one error enum, [`Error`], with stable kinds and `is_transient()`.
//! - [`secret`]: [`SecretString`] and [`ExposeSecret`], re-exported from `secrecy`: no
//!   `Display`, `Debug` redacted, zeroized on drop, read only through `expose_secret()`.
//! - [`endpoint`]: what an SSM endpoint override may be (https, or http to loopback).
//! - `iam`: IAM database authentication tokens (`auth=iam`): the SigV4
//!   presigned `rds-db` request boto3 makes, and when to make it again.
//! - [`name`]: what may be passed as a parameter name, checked before any request.
//! - [`parse`]: a parameter value (URL or JSON) into a [`DbConfig`], by a
//!   strict grammar that refuses what it could read two ways.
//! - `fetch`: `SsmFetcher`, reading a parameter under one time budget with
//!   the SDK's standard retry (throttles not retried), and classifying AWS failures.
//! - `cache`: `ConfigCache`, the process-local moka cache, and freshness states.
//! - [`plan`]: what a process does when a value is asked for (serve, refresh,
//!   fetch, fail): the pure decision the extension and the fleet simulation share.
//! - [`policy`]: refresh-ahead point, retries inside a fetch, failure backoff;
//!   the shared clock.
//! - `shared`: the encrypted host-wide entry php-fpm workers share, and its lock.
//! - [`rewrite`]: [`with_endpoint`] (and [`with_endpoint_credentials_optional`] for
//!   endpoint-only values), a value pointed at another host and port,
//!   everything else kept as written (for the failover monitor).
//!
//! # Features
//! - `aws` (default): `fetch`, `iam`, `cache` and `shared`, the clock and
//!   randomness of `policy`, and
//!   the AWS SDK they need. Without it the crate is `endpoint`, `name`, `parse`, `plan`,
//!   `policy`'s decisions, `rewrite`, `secret` and `error` only, which is what the fuzz targets build.
#![warn(missing_docs)]

#[cfg(feature = "aws")]
pub mod cache;
pub mod endpoint;
pub mod error;
#[cfg(feature = "aws")]
pub mod fetch;
#[cfg(feature = "aws")]
pub mod iam;
pub mod name;
pub mod parse;
pub mod plan;
pub mod policy;
pub mod rewrite;
pub mod secret;
#[cfg(feature = "aws")]
pub mod shared;

#[cfg(feature = "aws")]
pub use cache::{CachedConfig, ConfigCache, Freshness, Timing};
pub use error::{Error, ErrorKind};
#[cfg(feature = "aws")]
pub use fetch::{FetchSettings, FetchedParameter, SsmFetcher};
pub use parse::{
    apply_credentials, parse_endpoint_value, parse_value, Auth, DbConfig, Engine, ValueFormat,
    SECRET_OPTION_WORDS, SSLMODES,
};
pub use rewrite::{check_rewritable, with_endpoint, with_endpoint_credentials_optional};
pub use secret::{ExposeSecret, SecretString};
#[cfg(feature = "aws")]
pub use shared::{SharedEntry, SharedKey, SharedSlot, StoredValue};

/// This crate's version, which the extension reports as its own.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

//! `ssm-db-monitor`: watches the RDS instances, the DB cluster or the Aurora global database behind a store and keeps the
//! SSM parameters that the `ssm_db_config` extension reads pointed at the
//! writer. It changes only the endpoint (host and port) of a value it read,
//! never the credentials, and writes it back with Overwrite as the type it
//! had: a String (endpoint only, no password) or a SecureString under its key.
//!
//! # Layout
//! - [`config`]: [`Config`], the TOML file (unknown keys rejected) and its validation.
//! - [`error`]: [`Error`], the one error type, with `is_transient()`.
//! - [`aws`]: the SDK clients per region, the [`Rds`] trait and what an instance, a cluster or a global database looks like ([`Observed`], [`ClusterObserved`], [`GlobalMember`]).
//! - [`decide`]: the pure decisions: which instance (or cluster endpoint) is the writer, whether to promote or fence.
//! - [`monitor`]: [`Monitor::poll`], one poll: observe, read parameters, decide, act.
//! - [`access`]: `--plan`'s permission check: the reads made now, the writes listed.
//! - [`run`]: the daemon loop with backoff, and the [`Clock`] it sleeps on.
//! - [`metrics`]: Prometheus counters and a small loopback HTTP responder.
#![warn(missing_docs)]

pub mod access;
pub mod aws;
pub mod config;
pub mod decide;
pub mod error;
pub mod metrics;
pub mod monitor;
pub mod run;

pub use aws::{Aws, ClusterMember, ClusterObserved, Endpoint, GlobalMember, Observed, Rds};
pub use config::{
    ClusterRef, Config, GlobalRef, InstanceRef, LogFormat, ParameterTarget, Promotion, Publish,
};
pub use decide::{decide, decide_cluster, decide_global, Decision, Plan};
pub use error::Error;
pub use metrics::Metrics;
pub use monitor::{Mode, Monitor, PollReport};
pub use run::{backoff, backs_off, run, Clock, SystemClock};

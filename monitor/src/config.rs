//! The monitor's configuration: a TOML file, then flags and environment
//! variables on top (see `main.rs`). Unknown keys are rejected, so a typo such
//! as `promote_after_pols` fails at start-up instead of silently meaning "off".

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::Error;

/// Why `promotion.after_polls` has no default.
pub const AFTER_POLLS_REQUIRED: &str = "promotion.after_polls must be set when promotion.enabled = true: the number of consecutive polls without a writable primary before a promotion; make after_polls × poll_interval_secs well above a Multi-AZ failover (60–120 s), e.g. 48 at 5 s";

/// Everything the monitor needs to know. See the README for every key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Seconds between two polls in daemon mode (default 5).
    #[serde(default = "defaults::poll_interval_secs")]
    pub poll_interval_secs: f64,
    /// Upper bound of the backoff after failed polls, in seconds (default 300).
    #[serde(default = "defaults::max_backoff_secs")]
    pub max_backoff_secs: f64,
    /// Budget for one AWS call, retries included, in seconds (default 10).
    #[serde(default = "defaults::api_timeout_secs")]
    pub api_timeout_secs: f64,
    /// Send every AWS call to this URL (local emulators, tests). Unset: the
    /// SDK's usual endpoints (and `AWS_ENDPOINT_URL`, which the SDK reads itself).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Log what would be written instead of writing (promotions and fencing included).
    #[serde(default)]
    pub dry_run: bool,
    /// `text` (default) or `json`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Serve Prometheus metrics on this address; it must be a loopback address.
    #[serde(default)]
    pub metrics_addr: Option<SocketAddr>,
    /// The instance that is the writer in normal operation (RDS DB instances:
    /// Single-AZ, Multi-AZ instance deployments, read replicas). Exactly one
    /// of `primary` and `cluster` is set.
    #[serde(default)]
    pub primary: Option<InstanceRef>,
    /// Read replicas of `primary`, in order of preference (often one, in another region).
    #[serde(default)]
    pub replicas: Vec<InstanceRef>,
    /// An Aurora DB cluster (provisioned or Serverless v2) or a Multi-AZ DB
    /// cluster, watched through DescribeDBClusters instead of `primary`.
    #[serde(default)]
    pub cluster: Option<ClusterRef>,
    /// An Aurora global database: its regional clusters, watched instead of
    /// `primary` or `cluster`, so that the parameters follow the primary
    /// cluster across regions.
    #[serde(default)]
    pub global: Option<GlobalRef>,
    /// The SSM parameters to keep pointed at the writer: one per region.
    pub parameters: Vec<ParameterTarget>,
    /// Promoting a replica when the primary is gone (off by default).
    #[serde(default)]
    pub promotion: Promotion,
}

/// One RDS DB instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceRef {
    /// The DB instance identifier.
    pub id: String,
    /// Its region.
    pub region: String,
}

impl std::fmt::Display for InstanceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.id, self.region)
    }
}

/// One DB cluster and what to publish for it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterRef {
    /// The DB cluster identifier.
    pub id: String,
    /// Its region.
    pub region: String,
    /// What the parameters point at; required, because the two differ in how
    /// fast hosts follow a failover and in what can go wrong.
    pub publish: Publish,
}

impl ClusterRef {
    /// The cluster as an `id (region)` pair, the shape logs and metrics use.
    pub fn as_ref(&self) -> InstanceRef {
        InstanceRef {
            id: self.id.clone(),
            region: self.region.clone(),
        }
    }
}

/// An Aurora global database and what to publish for it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalRef {
    /// The global cluster identifier (DescribeGlobalClusters).
    pub id: String,
    /// What the parameters point at in the chosen regional cluster.
    pub publish: Publish,
    /// Its regional clusters, every one of them, in order of preference
    /// after the global database's own primary (a detached cluster earlier in
    /// this list wins over one later).
    pub clusters: Vec<InstanceRef>,
}

/// What a cluster's parameters point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Publish {
    /// The cluster's writer endpoint (`<id>.cluster-<hash>.<region>.rds.amazonaws.com`):
    /// written once; its DNS record follows a failover by itself, after a delay
    /// and the resolvers' caching.
    ClusterEndpoint,
    /// The endpoint of the member instance that RDS marks `IsClusterWriter`,
    /// rewritten as soon as another member becomes the writer.
    WriterInstance,
}

impl std::fmt::Display for Publish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Publish::ClusterEndpoint => "cluster-endpoint",
            Publish::WriterInstance => "writer-instance",
        })
    }
}

/// One SSM parameter the extension reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParameterTarget {
    /// The parameter name, e.g. `/shop/prod/db` (no `:version` or `:label`).
    pub name: String,
    /// The region whose Parameter Store holds it.
    pub region: String,
    /// KMS key to write a SecureString parameter with (id, ARN or alias);
    /// unset: the key the parameter already uses, read with
    /// DescribeParameters before each write (no write if that fails). Not
    /// allowed for a String parameter, which is written as a String.
    #[serde(default)]
    pub kms_key_id: Option<String>,
}

/// When and how to promote a replica.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promotion {
    /// Off by default: promoting an asynchronous replica can lose the last writes.
    #[serde(default)]
    pub enabled: bool,
    /// How many consecutive polls must find the primary unavailable first. No
    /// default: it must be set when `enabled` is, because it is what keeps a
    /// Multi-AZ failover or a maintenance reboot from becoming a promotion.
    #[serde(default)]
    pub after_polls: Option<u32>,
    /// How many consecutive polls the primary must go unseen (its
    /// DescribeDBInstances failing: its region's API unreachable) before that
    /// alone may lead to a promotion. Unset: [`UNKNOWN_FACTOR`] × `after_polls`.
    /// Longer than `after_polls` because RDS has said nothing: hosts in the
    /// primary's region may still be writing to it.
    #[serde(default)]
    pub unknown_after_polls: Option<u32>,
    /// The replica's latest CloudWatch `ReplicaLag` must be at most this many seconds (default 30).
    #[serde(default = "defaults::max_replica_lag_secs")]
    pub max_replica_lag_secs: f64,
    /// How far back to look for a `ReplicaLag` datapoint, in seconds (default 300).
    #[serde(default = "defaults::lag_lookback_secs")]
    pub lag_lookback_secs: u64,
    /// How long to wait for a promoted replica to become available (default 1800).
    #[serde(default = "defaults::wait_timeout_secs")]
    pub wait_timeout_secs: u64,
    /// Stop the old primary (StopDBInstance) when it comes back after a promotion.
    #[serde(default)]
    pub fence_old_primary: bool,
}

impl Default for Promotion {
    fn default() -> Self {
        Promotion {
            enabled: false,
            after_polls: None,
            unknown_after_polls: None,
            max_replica_lag_secs: defaults::max_replica_lag_secs(),
            lag_lookback_secs: defaults::lag_lookback_secs(),
            wait_timeout_secs: defaults::wait_timeout_secs(),
            fence_old_primary: false,
        }
    }
}

/// `promotion.unknown_after_polls` is this many times `after_polls` unless set.
pub const UNKNOWN_FACTOR: u32 = 4;

impl Promotion {
    /// The effective `unknown_after_polls`: as set, else [`UNKNOWN_FACTOR`] ×
    /// `after_polls` (`u32::MAX`, never, while `after_polls` is unset).
    pub fn unknown_after_polls(&self) -> u32 {
        self.unknown_after_polls.unwrap_or_else(|| {
            self.after_polls
                .map_or(u32::MAX, |a| a.saturating_mul(UNKNOWN_FACTOR))
        })
    }
}

/// The log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

mod defaults {
    pub fn poll_interval_secs() -> f64 {
        5.0
    }
    pub fn max_backoff_secs() -> f64 {
        300.0
    }
    pub fn api_timeout_secs() -> f64 {
        10.0
    }
    pub fn max_replica_lag_secs() -> f64 {
        30.0
    }
    pub fn lag_lookback_secs() -> u64 {
        300
    }
    pub fn wait_timeout_secs() -> u64 {
        1800
    }
}

impl Config {
    /// Reads and validates a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        Config::from_toml(&text).map_err(|e| match e {
            Error::Config(msg) => Error::Config(format!("{}: {msg}", path.display())),
            other => other,
        })
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Config, Error> {
        // toml's messages quote the offending line; a config file holds no
        // secret (credentials live only in the parameters), so that is fine.
        let config: Config = toml::from_str(text)
            .map_err(|e| Error::Config(e.message().to_owned() + &span_note(text, e.span())))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and combinations that the types cannot express.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Config(m));
        if !(0.05..=3600.0).contains(&self.poll_interval_secs) {
            return bad(format!(
                "poll_interval_secs must be from 0.05 to 3600, not {}",
                self.poll_interval_secs
            ));
        }
        if !(self.poll_interval_secs..=86400.0).contains(&self.max_backoff_secs) {
            return bad(format!(
                "max_backoff_secs must be from poll_interval_secs to 86400, not {}",
                self.max_backoff_secs
            ));
        }
        if !(0.1..=600.0).contains(&self.api_timeout_secs) {
            return bad(format!(
                "api_timeout_secs must be from 0.1 to 600, not {}",
                self.api_timeout_secs
            ));
        }
        if self.parameters.is_empty() {
            return bad("at least one [[parameters]] entry is needed".into());
        }
        let mut regions = std::collections::HashSet::new();
        for p in &self.parameters {
            // SSM's rules first, whose message never quotes the name: a
            // connection URL pasted here would carry its password into the
            // journal.
            if let Err(problem) = ssm_db_config_core::name::check(&p.name) {
                return bad(format!(
                    "a [[parameters]] name is refused (not shown): {problem}"
                ));
            }
            if !p.name.starts_with('/') || p.name.contains(':') || p.name.len() > 2048 {
                return bad(format!(
                    "parameter name \"{}\" must be a full path like /shop/prod/db, without a :version or :label selector",
                    p.name
                ));
            }
            if p.name.starts_with("/aws/reference/") {
                return bad(format!(
                    "parameter \"{}\" is a reference to a Secrets Manager secret, which the monitor cannot write: name the SSM parameter that holds the endpoint (the extension can still read the secret through ssm_db_config.credentials_parameter)",
                    p.name
                ));
            }
            if p.kms_key_id.as_deref().is_some_and(|k| k.trim().is_empty()) {
                return bad(format!(
                    "parameter \"{}\": kms_key_id is empty: name the key (a key id, ARN or alias/...) or leave the key out to keep the key the parameter has",
                    p.name
                ));
            }
            check_region(&p.region)?;
            if !regions.insert((p.region.as_str(), p.name.as_str())) {
                return bad(format!(
                    "parameter \"{}\" in {} is listed twice",
                    p.name, p.region
                ));
            }
        }
        if let Some(g) = &self.global {
            if self.primary.is_some() || self.cluster.is_some() {
                return bad("set one of [primary] (RDS DB instances), [cluster] (one DB cluster) or [global] (an Aurora global database), not several".into());
            }
            check_identifier(&g.id, "global cluster")?;
            if g.clusters.is_empty() {
                return bad(format!("[global] {} needs its regional clusters: clusters = [{{ id = \"shop-aurora-east\", region = \"us-east-1\" }}, ...]", g.id));
            }
            for (n, c) in g.clusters.iter().enumerate() {
                check_identifier(&c.id, "DB cluster")?;
                check_region(&c.region)?;
                if g.clusters[..n].contains(c) {
                    return bad(format!("[global] lists cluster {c} twice"));
                }
            }
            if !self.replicas.is_empty() || self.promotion.enabled {
                return bad(format!("[[replicas]] and promotion need a [primary] instance; global database {} is failed over by RDS or an operator, so remove them", g.id));
            }
        }
        match (&self.primary, &self.cluster) {
            (Some(_), Some(_)) => {
                return bad("set either [primary] (RDS DB instances) or [cluster] (an Aurora or Multi-AZ DB cluster), not both".into())
            }
            (None, None) if self.global.is_none() => {
                return bad("missing [primary] (an RDS DB instance), [cluster] (an Aurora or Multi-AZ DB cluster) or [global] (an Aurora global database)".into())
            }
            (None, Some(c)) => {
                check_identifier(&c.id, "DB cluster")?;
                check_region(&c.region)?;
                if !self.replicas.is_empty() {
                    return bad(format!("[[replicas]] are read replicas of a [primary] instance; cluster {} fails over among its own members, so remove [[replicas]]", c.id));
                }
                if self.promotion.enabled {
                    return bad(format!("promotion.enabled needs a [primary] instance with [[replicas]]; RDS fails cluster {} over by itself, so set promotion.enabled = false", c.id));
                }
            }
            (Some(primary), None) => {
                for i in std::iter::once(primary).chain(&self.replicas) {
                    check_identifier(&i.id, "DB instance")?;
                    check_region(&i.region)?;
                }
                if self.replicas.iter().any(|r| r == primary) {
                    return bad(format!("{primary} is both the primary and a replica"));
                }
            }
            (None, None) => {}
        }
        if let Some(addr) = self.metrics_addr {
            if !addr.ip().is_loopback() {
                return bad(format!(
                    "metrics_addr {addr} is not a loopback address: the metrics endpoint has no authentication, so it only listens on 127.0.0.1 or [::1]"
                ));
            }
        }
        let p = &self.promotion;
        if p.enabled && self.replicas.is_empty() {
            return bad("promotion.enabled needs at least one [[replicas]] entry".into());
        }
        match p.after_polls {
            None if p.enabled => return bad(AFTER_POLLS_REQUIRED.to_owned()),
            Some(0) => return bad("promotion.after_polls must be at least 1".into()),
            _ => {}
        }
        if let (Some(unknown), Some(after)) = (p.unknown_after_polls, p.after_polls) {
            if unknown < after {
                return bad(format!("promotion.unknown_after_polls ({unknown}) must be at least promotion.after_polls ({after}): an unseen primary is weaker evidence than one RDS reports down; unset, it is {UNKNOWN_FACTOR} × after_polls"));
            }
        }
        if p.max_replica_lag_secs.is_nan() || p.max_replica_lag_secs < 0.0 {
            return bad("promotion.max_replica_lag_secs must be 0 or more".into());
        }
        if p.lag_lookback_secs < 60 {
            return bad("promotion.lag_lookback_secs must be at least 60 (CloudWatch's RDS metrics have 60 s periods)".into());
        }
        if p.wait_timeout_secs == 0 {
            return bad("promotion.wait_timeout_secs must be at least 1: how long to wait for the promoted replica to become writable (RDS takes minutes; the default is 1800)".into());
        }
        if let Some(url) = &self.endpoint_url {
            if let Err(why) = ssm_db_config_core::endpoint::check(url) {
                return bad(format!("endpoint_url: {why}"));
            }
        }
        Ok(())
    }

    /// The poll interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs_f64(self.poll_interval_secs)
    }

    /// The backoff cap.
    pub fn max_backoff(&self) -> Duration {
        Duration::from_secs_f64(self.max_backoff_secs)
    }

    /// Every region the monitor talks to, each once.
    pub fn regions(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let all = self
            .primary
            .iter()
            .map(|p| &p.region)
            .chain(self.cluster.iter().map(|c| &c.region))
            .chain(
                self.global
                    .iter()
                    .flat_map(|g| g.clusters.iter().map(|c| &c.region)),
            )
            .chain(self.replicas.iter().map(|r| &r.region))
            .chain(self.parameters.iter().map(|p| &p.region));
        for r in all {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
        out
    }
}

fn check_identifier(id: &str, what: &str) -> Result<(), Error> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(Error::Config(format!(
            "\"{id}\" is not a {what} identifier (letters, digits, hyphens)"
        )));
    }
    Ok(())
}

fn check_region(region: &str) -> Result<(), Error> {
    if region.is_empty()
        || !region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(Error::Config(format!(
            "\"{region}\" is not an AWS region name like us-east-1"
        )));
    }
    Ok(())
}

/// Where a TOML error is: " (line N)", or " (line N, key `k`)" when the line
/// is a `k = value` pair (toml's type errors name the expected type, not the key).
fn span_note(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span else {
        return String::new();
    };
    let start = span.start.min(text.len());
    let line = text[..start].matches('\n').count() + 1;
    let line_text = text[..start].rfind('\n').map_or(text, |i| &text[i + 1..]);
    let line_text = line_text.split('\n').next().unwrap_or_default();
    let key = line_text
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| {
            !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        });
    match key {
        Some(key) => format!(" (line {line}, key `{key}`)"),
        None => format!(" (line {line})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[primary]
id = "shop-db"
region = "us-east-1"

[[parameters]]
name = "/shop/db"
region = "us-east-1"
"#;

    #[test]
    fn minimal_config_gets_safe_defaults() {
        let c = Config::from_toml(MINIMAL).unwrap();
        assert_eq!(c.poll_interval(), Duration::from_secs(5));
        assert!(!c.promotion.enabled);
        assert!(!c.promotion.fence_old_primary);
        assert!(!c.dry_run);
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.regions(), vec!["us-east-1".to_string()]);
    }

    #[test]
    fn unknown_keys_are_rejected_naming_the_key() {
        let e = Config::from_toml(&format!(
            "{MINIMAL}\n[promotion]\nenabled = true\npromote_after_pols = 3\n"
        ))
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("promote_after_pols"), "{msg}");
        assert!(msg.contains("line"), "{msg}");
        let e = Config::from_toml(&format!("pol_interval_secs = 1\n{MINIMAL}")).unwrap_err();
        assert!(e.to_string().contains("pol_interval_secs"), "{e}");
    }

    #[test]
    fn type_errors_name_the_line_and_the_key() {
        let cases = [
            (
                "poll_interval_secs = \"5\"\n",
                1,
                "key `poll_interval_secs`",
            ),
            ("dry_run = \"yes\"\n", 1, "key `dry_run`"),
            (
                "\n[promotion]\nenabled = true\n  after_polls = -2\n",
                4,
                "key `after_polls`",
            ),
        ];
        for (prefix, line, key) in cases {
            let msg = Config::from_toml(&format!("{prefix}{MINIMAL}"))
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains(&format!("(line {line}, {key})")),
                "{prefix}: {msg}"
            );
        }
        // A line that is no `key = value` pair gets the line alone.
        let msg = Config::from_toml("[primary\n").unwrap_err().to_string();
        assert!(msg.contains("(line 1)"), "{msg}");
    }

    #[test]
    fn rejects_out_of_range_and_unsafe_values() {
        let cases = [
            ("poll_interval_secs = 0\n", "poll_interval_secs"),
            ("metrics_addr = \"0.0.0.0:9464\"\n", "loopback"),
            ("endpoint_url = \"localhost:4566\"\n", "https://"),
            ("endpoint_url = \"http://ssm.example.com\"\n", "loopback"),
        ];
        for (prefix, needle) in cases {
            let e = Config::from_toml(&format!("{prefix}{MINIMAL}")).unwrap_err();
            assert!(e.to_string().contains(needle), "{prefix}: {e}");
        }
        for (from, to, needle) in [
            (
                "/shop/db",
                "/aws/reference/secretsmanager/shop",
                "Secrets Manager",
            ),
            (
                "name = \"/shop/db\"\n",
                "name = \"/shop/db\"\nkms_key_id = \" \"\n",
                "kms_key_id is empty",
            ),
        ] {
            let text = MINIMAL.replace(from, to);
            assert_ne!(text, MINIMAL, "{from}");
            let e = Config::from_toml(&text).unwrap_err();
            assert!(e.to_string().contains(needle), "{to}: {e}");
        }
        let e = Config::from_toml(&format!("{MINIMAL}\n[promotion]\nwait_timeout_secs = 0\n"))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("wait_timeout_secs must be at least 1"),
            "{e}"
        );
        let e = Config::from_toml(&MINIMAL.replace("/shop/db", "/shop/db:3")).unwrap_err();
        assert!(e.to_string().contains(":version"), "{e}");
        // A connection URL where the name belongs: refused without quoting it.
        let e = Config::from_toml(&MINIMAL.replace("/shop/db", "mysql://wp:Canary-Pw@db/x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("looks like a connection URL"), "{e}");
        assert!(!e.contains("Canary-Pw"), "{e}");
        let e =
            Config::from_toml(&format!("{MINIMAL}\n[promotion]\nenabled = true\n")).unwrap_err();
        assert!(e.to_string().contains("replicas"), "{e}");
    }

    #[test]
    fn regions_lists_each_region_once_primary_first() {
        let c = Config::from_toml(&format!(
            "{MINIMAL}\n[[replicas]]\nid = \"shop-db-west\"\nregion = \"us-west-2\"\n[[parameters]]\nname = \"/shop/db\"\nregion = \"us-west-2\"\n"
        ))
        .unwrap();
        assert_eq!(
            c.regions(),
            vec!["us-east-1".to_string(), "us-west-2".to_string()]
        );
    }

    const CLUSTER: &str = r#"
[cluster]
id = "shop-aurora"
region = "us-east-1"
publish = "writer-instance"

[[parameters]]
name = "/shop/db"
region = "us-east-1"
"#;

    #[test]
    fn cluster_config_names_the_cluster_and_what_to_publish() {
        let c = Config::from_toml(CLUSTER).unwrap();
        let cluster = c.cluster.as_ref().unwrap();
        assert_eq!(cluster.publish, Publish::WriterInstance);
        assert_eq!(c.primary, None);
        assert_eq!(c.regions(), vec!["us-east-1".to_string()]);
        let c = Config::from_toml(&CLUSTER.replace("writer-instance", "cluster-endpoint")).unwrap();
        assert_eq!(c.cluster.unwrap().publish, Publish::ClusterEndpoint);
    }

    #[test]
    fn cluster_config_refuses_ambiguous_or_unsupported_combinations() {
        let cases = [
            (
                CLUSTER.replace("publish = \"writer-instance\"\n", ""),
                "publish",
            ),
            (CLUSTER.replace("writer-instance", "writer"), "writer"),
            (
                format!("{CLUSTER}\n[primary]\nid = \"shop-db\"\nregion = \"us-east-1\"\n"),
                "not both",
            ),
            (
                format!("{CLUSTER}\n[[replicas]]\nid = \"r\"\nregion = \"us-west-2\"\n"),
                "remove [[replicas]]",
            ),
            (
                format!("{CLUSTER}\n[promotion]\nenabled = true\nafter_polls = 3\n"),
                "fails cluster shop-aurora over by itself",
            ),
            (
                "[[parameters]]\nname = \"/shop/db\"\nregion = \"us-east-1\"\n".to_owned(),
                "missing [primary]",
            ),
            (
                CLUSTER.replace("shop-aurora", "shop_aurora"),
                "DB cluster identifier",
            ),
        ];
        for (text, needle) in cases {
            let e = Config::from_toml(&text).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    const GLOBAL: &str = r#"
[global]
id = "shop-global"
publish = "writer-instance"
clusters = [
  { id = "shop-east", region = "us-east-1" },
  { id = "shop-west", region = "us-west-2" },
]

[[parameters]]
name = "/shop/db"
region = "us-west-2"
"#;

    #[test]
    fn global_config_lists_the_regional_clusters_and_refuses_mixtures() {
        let c = Config::from_toml(GLOBAL).unwrap();
        let g = c.global.as_ref().unwrap();
        assert_eq!(g.clusters.len(), 2);
        assert_eq!(
            c.regions(),
            vec!["us-east-1".to_string(), "us-west-2".to_string()]
        );
        let cases = [
            (GLOBAL.replace("publish = \"writer-instance\"\n", ""), "publish"),
            (
                format!("{GLOBAL}\n[cluster]\nid = \"c\"\nregion = \"us-east-1\"\npublish = \"writer-instance\"\n"),
                "not several",
            ),
            (
                GLOBAL.replace("id = \"shop-west\", region = \"us-west-2\"", "id = \"shop-east\", region = \"us-east-1\""),
                "twice",
            ),
            (
                GLOBAL.replace("  { id = \"shop-east\", region = \"us-east-1\" },\n  { id = \"shop-west\", region = \"us-west-2\" },\n", ""),
                "needs its regional clusters",
            ),
            (GLOBAL.replace("shop-global", "shop_global"), "global cluster identifier"),
            (
                format!("{GLOBAL}\n[promotion]\nenabled = true\nafter_polls = 3\n"),
                "remove them",
            ),
        ];
        for (text, needle) in cases {
            let e = Config::from_toml(&text).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn enabled_promotion_requires_after_polls_naming_the_key() {
        let replica = "\n[[replicas]]\nid = \"shop-db-west\"\nregion = \"us-west-2\"\n";
        let e = Config::from_toml(&format!(
            "{MINIMAL}{replica}\n[promotion]\nenabled = true\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("promotion.after_polls must be set"), "{e}");
        let c = Config::from_toml(&format!(
            "{MINIMAL}{replica}\n[promotion]\nenabled = true\nafter_polls = 48\n"
        ))
        .unwrap();
        assert_eq!(c.promotion.after_polls, Some(48));
        assert_eq!(
            c.promotion.unknown_after_polls(),
            192,
            "4 × after_polls unless set"
        );
        let e = Config::from_toml(&format!(
            "{MINIMAL}{replica}\n[promotion]\nenabled = true\nafter_polls = 48\nunknown_after_polls = 47\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "promotion.unknown_after_polls (47) must be at least promotion.after_polls (48)"
            ),
            "{e}"
        );
        let c = Config::from_toml(&format!(
            "{MINIMAL}{replica}\n[promotion]\nenabled = true\nafter_polls = 48\nunknown_after_polls = 48\n"
        ))
        .unwrap();
        assert_eq!(c.promotion.unknown_after_polls(), 48);
        let c = Config::from_toml(MINIMAL).unwrap();
        assert_eq!(
            c.promotion.after_polls, None,
            "not needed while promotion is off"
        );
    }
}

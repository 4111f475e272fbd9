//! The AWS side: one set of SDK clients per region, and the few calls the
//! monitor makes. RDS sits behind the small [`Rds`] trait because it is the one
//! service whose behaviour a test must complete: moto accepts
//! PromoteReadReplica but keeps reporting the instance as a replica, which real
//! RDS stops doing once the promotion has finished. SSM and CloudWatch are used
//! directly; moto plays them fully.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use ssm_db_config_core::{ErrorKind, ExposeSecret, SecretString};
use tracing::instrument;

use crate::config::{Config, InstanceRef, ParameterTarget};
use crate::Error;

/// What DescribeDBInstances says about one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Which instance.
    pub instance: InstanceRef,
    /// `DBInstanceStatus` (`available`, `stopped`, `rebooting`, ...), or
    /// `not-found` when RDS does not know the instance (deleted).
    pub status: String,
    /// The endpoint, once RDS has assigned one.
    pub endpoint: Option<Endpoint>,
    /// `ReadReplicaSourceDBInstanceIdentifier`: set while the instance is a read replica.
    pub replica_source: Option<String>,
    /// `DBClusterIdentifier`: set when the instance is a member of an Aurora
    /// or Multi-AZ DB cluster, which must be configured as `[cluster]`.
    pub cluster: Option<String>,
    /// RDS's `Engine` (`mysql`, `aurora-postgresql`, ...), when described.
    pub engine: Option<String>,
}

/// Statuses in which an instance keeps serving its clients, writes included:
/// RDS applies these changes online (or, for `modifying` and `upgrading`,
/// with at most a short reboot that a Multi-AZ standby covers). Counting them
/// as down would let an instance-class change or a minor-version upgrade turn
/// into a promotion and two writers. Every `configuring-*` status serves too.
/// The others (`stopped`, `rebooting`, `failed`, `storage-full`,
/// `incompatible-*`, `inaccessible-encryption-credentials`, `not-found`, ...)
/// count as unavailable.
pub const SERVING_STATUSES: [&str; 12] = [
    "available",
    "backing-up",
    "storage-optimization",
    "modifying",
    "maintenance",
    "upgrading",
    "renaming",
    "resetting-master-credentials",
    "moving-to-vpc",
    "converting-to-vpc",
    "storage-config-upgrade",
    "storage-initialization",
];

/// Whether RDS reports a status in which the instance serves clients.
pub fn is_serving_status(status: &str) -> bool {
    SERVING_STATUSES.contains(&status) || status.starts_with("configuring-")
}

impl Observed {
    /// Whether the instance serves clients now.
    pub fn is_serving(&self) -> bool {
        is_serving_status(&self.status) && self.endpoint.is_some()
    }

    /// Whether it can take writes: serving and not a read replica.
    pub fn is_writable(&self) -> bool {
        self.is_serving() && self.replica_source.is_none()
    }
}

/// What DescribeDBClusters says about one cluster, with its members as
/// DescribeDBInstances describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterObserved {
    /// Which cluster.
    pub cluster: InstanceRef,
    /// The cluster's `Status` (`available`, `failing-over`, `modifying`, ...),
    /// or `not-found`.
    pub status: String,
    /// The cluster (writer) endpoint and port.
    pub endpoint: Option<Endpoint>,
    /// The members, writer or not; the writer is the one with `IsClusterWriter`.
    pub members: Vec<ClusterMember>,
}

/// One member of a DB cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMember {
    /// The member instance as DescribeDBInstances reports it (`not-found`
    /// when it is listed by the cluster but not described).
    pub observed: Observed,
    /// `IsClusterWriter`.
    pub is_writer: bool,
}

/// One regional cluster of an Aurora global database, as DescribeGlobalClusters lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalMember {
    /// The regional cluster, from its ARN.
    pub cluster: InstanceRef,
    /// `IsWriter`: the global database's primary cluster.
    pub is_writer: bool,
}

/// A host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The RDS calls the monitor makes.
#[allow(async_fn_in_trait)] // used with concrete types on one thread; no Send bound wanted
pub trait Rds {
    /// DescribeDBInstances for one instance.
    async fn describe(&self, instance: &InstanceRef) -> Result<Observed, Error>;
    /// DescribeDBClusters for one cluster, then DescribeDBInstances for its members.
    async fn describe_cluster(&self, cluster: &InstanceRef) -> Result<ClusterObserved, Error>;
    /// DescribeGlobalClusters, asked in `region`: the global database's
    /// regional clusters, `None` when it does not exist (deleted).
    async fn describe_global(
        &self,
        global_id: &str,
        region: &str,
    ) -> Result<Option<Vec<GlobalMember>>, Error>;
    /// PromoteReadReplica.
    async fn promote(&self, instance: &InstanceRef) -> Result<(), Error>;
    /// StopDBInstance (fencing).
    async fn stop(&self, instance: &InstanceRef) -> Result<(), Error>;
}

#[derive(Clone)]
struct RegionClients {
    ssm: aws_sdk_ssm::Client,
    rds: aws_sdk_rds::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
}

/// SDK clients for every region in the configuration.
#[derive(Clone)]
pub struct Aws {
    regions: HashMap<String, RegionClients>,
    /// Each call's operation timeout, which a timed-out call reports.
    timeout: Duration,
}

/// How PutParameter stores a value: as the parameter it replaces is stored,
/// so that an overwrite never turns a String into a SecureString (or back) and
/// never moves a SecureString to another KMS key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredAs {
    /// `String`: no KMS key, no KMS permission. Only ever holds a value
    /// without a password (the monitor refuses one that has a password).
    Plain,
    /// `SecureString` under this KMS key (id, ARN or alias).
    Encrypted {
        /// The key PutParameter names; never left to SSM's default.
        key_id: String,
    },
}

/// What GetParameter says about a parameter without decrypting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterInfo {
    /// `String`, `SecureString` or `StringList`.
    pub kind: String,
    /// The version number.
    pub version: i64,
    /// The parameter's ARN (what an IAM policy names).
    pub arn: Option<String>,
}

/// A parameter's current value as SSM returned it.
#[derive(Debug)]
pub struct CurrentValue {
    /// The decrypted value.
    pub value: SecretString,
    /// `String` or `SecureString` (or `StringList`).
    pub kind: String,
    /// The version number.
    pub version: i64,
}

impl Aws {
    /// Loads the AWS configuration (default credential chain) once per region.
    pub async fn connect(config: &Config) -> Result<Aws, Error> {
        // The SDK takes endpoints from the environment too: the same rules
        // as `endpoint_url` (no credentials in it, http:// only to loopback).
        ssm_db_config_core::endpoint::check_environment(
            |name| std::env::var(name).ok(),
            &[
                "AWS_ENDPOINT_URL",
                "AWS_ENDPOINT_URL_SSM",
                "AWS_ENDPOINT_URL_RDS",
                "AWS_ENDPOINT_URL_CLOUDWATCH",
            ],
        )
        .map_err(Error::Config)?;
        let timeout = Duration::from_secs_f64(config.api_timeout_secs);
        let mut regions = HashMap::new();
        for region in config.regions() {
            let mut loader = aws_config::defaults(BehaviorVersion::latest())
                .region(Region::new(region.clone()))
                .timeout_config(
                    TimeoutConfig::builder()
                        .connect_timeout(timeout.min(Duration::from_secs(3)))
                        .operation_timeout(timeout)
                        .build(),
                );
            if let Some(url) = &config.endpoint_url {
                loader = loader.endpoint_url(url.clone());
            }
            let sdk = loader.load().await;
            let clients = RegionClients {
                ssm: aws_sdk_ssm::Client::new(&sdk),
                rds: aws_sdk_rds::Client::new(&sdk),
                cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
            };
            regions.insert(region, clients);
        }
        Ok(Aws { regions, timeout })
    }

    fn region(&self, region: &str) -> &RegionClients {
        // Every region in the configuration got clients in `connect`.
        self.regions
            .get(region)
            .expect("clients exist for every configured region")
    }

    /// GetParameter with decryption (which SSM ignores for a String: reading
    /// one needs no KMS permission). `Ok(None)` when it does not exist.
    #[instrument(level = "debug", skip(self), fields(parameter = %target.name, region = %target.region))]
    pub async fn get_parameter(
        &self,
        target: &ParameterTarget,
    ) -> Result<Option<CurrentValue>, Error> {
        let out = self
            .region(&target.region)
            .ssm
            .get_parameter()
            .name(&target.name)
            .with_decryption(true)
            .send()
            .await;
        match out {
            Ok(out) => {
                let p = out.parameter.ok_or_else(|| {
                    api(
                        "SSM",
                        "GetParameter",
                        param_target(target),
                        ErrorKind::Service,
                        "the response had no parameter",
                        true,
                    )
                })?;
                let kind = p
                    .r#type
                    .as_ref()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default();
                let value = p.value.ok_or_else(|| {
                    api(
                        "SSM",
                        "GetParameter",
                        param_target(target),
                        ErrorKind::Service,
                        "the parameter has no value",
                        false,
                    )
                })?;
                Ok(Some(CurrentValue {
                    value: SecretString::from(value),
                    kind,
                    version: p.version,
                }))
            }
            Err(SdkError::ServiceError(e)) if e.err().is_parameter_not_found() => Ok(None),
            Err(e) => Err(classify(
                self.timeout,
                "SSM",
                "GetParameter",
                param_target(target),
                e,
            )),
        }
    }

    /// The parameter's current version (GetParameter without decryption, so no
    /// KMS call), `None` when it no longer exists. Read just before a write.
    pub async fn parameter_version(&self, target: &ParameterTarget) -> Result<Option<i64>, Error> {
        Ok(self.parameter_info(target).await?.map(|p| p.version))
    }

    /// GetParameter without decryption (no KMS call): the type, version and
    /// ARN, `None` when the parameter does not exist.
    #[instrument(level = "debug", skip(self), fields(parameter = %target.name, region = %target.region))]
    pub async fn parameter_info(
        &self,
        target: &ParameterTarget,
    ) -> Result<Option<ParameterInfo>, Error> {
        let out = self
            .region(&target.region)
            .ssm
            .get_parameter()
            .name(&target.name)
            .with_decryption(false)
            .send()
            .await;
        match out {
            Ok(out) => Ok(out.parameter.map(|p| ParameterInfo {
                kind: p
                    .r#type
                    .as_ref()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                version: p.version,
                arn: p.arn,
            })),
            Err(SdkError::ServiceError(e)) if e.err().is_parameter_not_found() => Ok(None),
            Err(e) => Err(classify(
                self.timeout,
                "SSM",
                "GetParameter",
                param_target(target),
                e,
            )),
        }
    }

    /// PutParameter with Overwrite, stored as `stored_as` says (a SecureString
    /// always names its key: left out, SSM would use the account's default
    /// key `alias/aws/ssm`). Returns the new version.
    #[instrument(level = "debug", skip(self, value), fields(parameter = %target.name, region = %target.region))]
    pub async fn put_parameter(
        &self,
        target: &ParameterTarget,
        value: &SecretString,
        stored_as: &StoredAs,
    ) -> Result<i64, Error> {
        use aws_sdk_ssm::types::ParameterType;
        let call = self
            .region(&target.region)
            .ssm
            .put_parameter()
            .name(&target.name)
            .value(value.expose_secret())
            .overwrite(true);
        let call = match stored_as {
            StoredAs::Plain => call.r#type(ParameterType::String),
            StoredAs::Encrypted { key_id } => {
                call.r#type(ParameterType::SecureString).key_id(key_id)
            }
        };
        match call.send().await {
            Ok(out) => Ok(out.version),
            Err(e) => Err(classify(
                self.timeout,
                "SSM",
                "PutParameter",
                param_target(target),
                e,
            )),
        }
    }

    /// The KMS key of an existing SecureString (DescribeParameters), so that an
    /// overwrite keeps it: PutParameter without a key id would switch the
    /// parameter to the account's default key `alias/aws/ssm`. `None` when
    /// the answer names no key for it.
    #[instrument(level = "debug", skip(self), fields(parameter = %target.name, region = %target.region))]
    pub async fn parameter_key_id(
        &self,
        target: &ParameterTarget,
    ) -> Result<Option<String>, Error> {
        use aws_sdk_ssm::types::ParameterStringFilter;
        let filter = ParameterStringFilter::builder()
            .key("Name")
            .option("Equals")
            .values(&target.name)
            .build()
            .map_err(|_| {
                api(
                    "SSM",
                    "DescribeParameters",
                    param_target(target),
                    ErrorKind::BadConfiguration,
                    "the filter could not be built",
                    false,
                )
            })?;
        let out = self
            .region(&target.region)
            .ssm
            .describe_parameters()
            .parameter_filters(filter)
            .send()
            .await
            .map_err(|e| {
                classify(
                    self.timeout,
                    "SSM",
                    "DescribeParameters",
                    param_target(target),
                    e,
                )
            })?;
        Ok(out
            .parameters()
            .iter()
            .find(|p| p.name() == Some(target.name.as_str()))
            .and_then(|p| p.key_id())
            .map(str::to_owned))
    }

    /// The latest `ReplicaLag` (seconds, the period's maximum) within `lookback`,
    /// `None` if CloudWatch has no datapoint (or only negative ones, which RDS
    /// reports when replication is not running).
    #[instrument(level = "debug", skip(self))]
    pub async fn replica_lag(
        &self,
        instance: &InstanceRef,
        now: SystemTime,
        lookback: Duration,
    ) -> Result<Option<f64>, Error> {
        use aws_sdk_cloudwatch::types::{Dimension, Statistic};
        use aws_smithy_types::DateTime;
        let out = self
            .region(&instance.region)
            .cloudwatch
            .get_metric_statistics()
            .namespace("AWS/RDS")
            .metric_name("ReplicaLag")
            .dimensions(
                Dimension::builder()
                    .name("DBInstanceIdentifier")
                    .value(&instance.id)
                    .build(),
            )
            .start_time(DateTime::from(now - lookback))
            .end_time(DateTime::from(now + Duration::from_secs(60)))
            .period(60)
            .statistics(Statistic::Maximum)
            .send()
            .await
            .map_err(|e| {
                classify(
                    self.timeout,
                    "CloudWatch",
                    "GetMetricStatistics",
                    instance.to_string(),
                    e,
                )
            })?;
        let latest = out
            .datapoints()
            .iter()
            .filter_map(|d| Some((d.timestamp()?.as_secs_f64(), d.maximum()?)))
            .filter(|(_, v)| *v >= 0.0)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        Ok(latest.map(|(_, v)| v))
    }
}

impl Rds for Aws {
    #[instrument(level = "debug", skip(self))]
    async fn describe(&self, instance: &InstanceRef) -> Result<Observed, Error> {
        let out = self
            .region(&instance.region)
            .rds
            .describe_db_instances()
            .db_instance_identifier(&instance.id)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(SdkError::ServiceError(e)) if e.err().is_db_instance_not_found_fault() => {
                return Ok(Observed::not_found(instance));
            }
            Err(e) => {
                return Err(classify(
                    self.timeout,
                    "RDS",
                    "DescribeDBInstances",
                    instance.to_string(),
                    e,
                ))
            }
        };
        let db = out
            .db_instances()
            .iter()
            .find(|d| d.db_instance_identifier() == Some(instance.id.as_str()))
            .ok_or_else(|| {
                api(
                    "RDS",
                    "DescribeDBInstances",
                    instance.to_string(),
                    ErrorKind::Service,
                    "the answer did not include the instance",
                    true,
                )
            })?;
        Ok(observed_instance(instance.clone(), db))
    }

    #[instrument(level = "debug", skip(self))]
    async fn describe_cluster(&self, cluster: &InstanceRef) -> Result<ClusterObserved, Error> {
        let rds = &self.region(&cluster.region).rds;
        let out = rds
            .describe_db_clusters()
            .db_cluster_identifier(&cluster.id)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(SdkError::ServiceError(e)) if e.err().is_db_cluster_not_found_fault() => {
                return Ok(ClusterObserved {
                    cluster: cluster.clone(),
                    status: "not-found".into(),
                    endpoint: None,
                    members: Vec::new(),
                });
            }
            Err(e) => {
                return Err(classify(
                    self.timeout,
                    "RDS",
                    "DescribeDBClusters",
                    cluster.to_string(),
                    e,
                ))
            }
        };
        let c = out
            .db_clusters()
            .iter()
            .find(|c| c.db_cluster_identifier() == Some(cluster.id.as_str()))
            .ok_or_else(|| {
                api(
                    "RDS",
                    "DescribeDBClusters",
                    cluster.to_string(),
                    ErrorKind::Service,
                    "the answer did not include the cluster",
                    true,
                )
            })?;
        let endpoint = c.endpoint().zip(c.port()).and_then(|(host, port)| {
            let port = u16::try_from(port).ok().filter(|p| *p != 0)?;
            Some(Endpoint {
                host: host.to_owned(),
                port,
            })
        });
        let mut members: Vec<ClusterMember> = c
            .db_cluster_members()
            .iter()
            .filter_map(|m| {
                let id = m.db_instance_identifier()?;
                Some(ClusterMember {
                    observed: Observed::not_found(&InstanceRef {
                        id: id.to_owned(),
                        region: cluster.region.clone(),
                    }),
                    is_writer: m.is_cluster_writer().unwrap_or(false),
                })
            })
            .collect();
        if !members.is_empty() {
            // One call for every member: the filter takes the cluster's id.
            let filter = aws_sdk_rds::types::Filter::builder()
                .name("db-cluster-id")
                .values(&cluster.id)
                .build();
            let out = rds
                .describe_db_instances()
                .filters(filter)
                .send()
                .await
                .map_err(|e| {
                    classify(
                        self.timeout,
                        "RDS",
                        "DescribeDBInstances",
                        cluster.to_string(),
                        e,
                    )
                })?;
            for db in out.db_instances() {
                if let Some(m) = members
                    .iter_mut()
                    .find(|m| db.db_instance_identifier() == Some(m.observed.instance.id.as_str()))
                {
                    m.observed = observed_instance(m.observed.instance.clone(), db);
                }
            }
        }
        Ok(ClusterObserved {
            cluster: cluster.clone(),
            status: c.status().unwrap_or("no-status").to_owned(),
            endpoint,
            members,
        })
    }

    #[instrument(level = "debug", skip(self))]
    async fn describe_global(
        &self,
        global_id: &str,
        region: &str,
    ) -> Result<Option<Vec<GlobalMember>>, Error> {
        let target = || format!("{global_id} (asked in {region})");
        let out = self
            .region(region)
            .rds
            .describe_global_clusters()
            .global_cluster_identifier(global_id)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(SdkError::ServiceError(e)) if e.err().is_global_cluster_not_found_fault() => {
                return Ok(None)
            }
            Err(e) => {
                return Err(classify(
                    self.timeout,
                    "RDS",
                    "DescribeGlobalClusters",
                    target(),
                    e,
                ))
            }
        };
        // Global cluster identifiers are case-insensitive (RDS stores them lower-case).
        let Some(g) = out.global_clusters().iter().find(|g| {
            g.global_cluster_identifier()
                .is_some_and(|id| id.eq_ignore_ascii_case(global_id))
        }) else {
            return Ok(None);
        };
        Ok(Some(
            g.global_cluster_members()
                .iter()
                .filter_map(|m| {
                    // arn:aws:rds:<region>:<account>:cluster:<id>
                    let arn: Vec<&str> = m.db_cluster_arn()?.split(':').collect();
                    match arn.as_slice() {
                        [_, _, "rds", region, _, "cluster", id] => Some(GlobalMember {
                            cluster: InstanceRef {
                                id: (*id).to_owned(),
                                region: (*region).to_owned(),
                            },
                            is_writer: m.is_writer().unwrap_or(false),
                        }),
                        _ => None,
                    }
                })
                .collect(),
        ))
    }

    #[instrument(level = "debug", skip(self))]
    async fn promote(&self, instance: &InstanceRef) -> Result<(), Error> {
        self.region(&instance.region)
            .rds
            .promote_read_replica()
            .db_instance_identifier(&instance.id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                classify(
                    self.timeout,
                    "RDS",
                    "PromoteReadReplica",
                    instance.to_string(),
                    e,
                )
            })
    }

    #[instrument(level = "debug", skip(self))]
    async fn stop(&self, instance: &InstanceRef) -> Result<(), Error> {
        self.region(&instance.region)
            .rds
            .stop_db_instance()
            .db_instance_identifier(&instance.id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                classify(
                    self.timeout,
                    "RDS",
                    "StopDBInstance",
                    instance.to_string(),
                    e,
                )
            })
    }
}

/// The status of an instance or cluster whose Describe call failed (its
/// region's API unreachable, throttled, ...): RDS said nothing about it.
pub const UNKNOWN_STATUS: &str = "unknown";

impl Observed {
    /// An instance whose DescribeDBInstances failed: neither serving nor
    /// writable, and not known to be down either.
    pub fn unknown(instance: &InstanceRef) -> Observed {
        Observed {
            status: UNKNOWN_STATUS.into(),
            ..Observed::not_found(instance)
        }
    }

    /// Whether the Describe call failed, so that RDS said nothing about it.
    pub fn is_unknown(&self) -> bool {
        self.status == UNKNOWN_STATUS
    }

    /// An instance RDS does not know (deleted, or renamed away).
    pub fn not_found(instance: &InstanceRef) -> Observed {
        Observed {
            instance: instance.clone(),
            status: "not-found".into(),
            endpoint: None,
            replica_source: None,
            cluster: None,
            engine: None,
        }
    }
}

fn observed_instance(instance: InstanceRef, db: &aws_sdk_rds::types::DbInstance) -> Observed {
    let endpoint = db.endpoint().and_then(|e| {
        let host = e.address()?.to_owned();
        let port = u16::try_from(e.port()?).ok().filter(|p| *p != 0)?;
        Some(Endpoint { host, port })
    });
    Observed {
        instance,
        status: db.db_instance_status().unwrap_or("no-status").to_owned(),
        endpoint,
        replica_source: db
            .read_replica_source_db_instance_identifier()
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        cluster: db
            .db_cluster_identifier()
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        engine: db.engine().map(str::to_owned),
    }
}

fn param_target(t: &ParameterTarget) -> String {
    format!("\"{}\" ({})", t.name, t.region)
}

fn api(
    service: &'static str,
    operation: &'static str,
    target: String,
    kind: ErrorKind,
    reason: &str,
    transient: bool,
) -> Error {
    Error::Api {
        service,
        operation,
        target,
        kind,
        reason: reason.to_owned(),
        transient,
    }
}

/// Classifies an SDK error by core's one classification
/// (`ssm_db_config_core::fetch::classify_sdk_error`), the extension's too.
fn classify<E>(
    timeout: Duration,
    service: &'static str,
    operation: &'static str,
    target: String,
    err: SdkError<E>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = match &err {
        SdkError::ServiceError(s) => s.err().code().map(str::to_owned),
        _ => None,
    };
    let core = ssm_db_config_core::fetch::classify_sdk_error(&target, timeout, err);
    let mut e = Error::from_core(service, operation, target, core);
    if let (Error::Api { reason, kind, .. }, Some(code)) = (&mut e, code) {
        if !reason.contains(&code) && *kind != ErrorKind::AccessDenied {
            *reason = format!("{reason} ({code})");
        }
    }
    e
}

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
}

/// Statuses in which an instance serves its clients. The others (`stopped`,
/// `rebooting`, `failed`, `storage-full`, `incompatible-*`, `not-found`, ...)
/// count as unavailable.
pub const SERVING_STATUSES: [&str; 6] = [
    "available",
    "backing-up",
    "storage-optimization",
    "configuring-enhanced-monitoring",
    "configuring-log-exports",
    "configuring-iam-database-auth",
];

impl Observed {
    /// Whether the instance serves clients now.
    pub fn is_serving(&self) -> bool {
        SERVING_STATUSES.contains(&self.status.as_str()) && self.endpoint.is_some()
    }

    /// Whether it can take writes: serving and not a read replica.
    pub fn is_writable(&self) -> bool {
        self.is_serving() && self.replica_source.is_none()
    }
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

    /// GetParameter with decryption. `Ok(None)` when it does not exist.
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

    /// PutParameter as SecureString with Overwrite, encrypted with `key_id`
    /// (`None`: the account's default key). Returns the new version.
    #[instrument(level = "debug", skip(self, value), fields(parameter = %target.name, region = %target.region))]
    pub async fn put_parameter(
        &self,
        target: &ParameterTarget,
        value: &SecretString,
        key_id: Option<&str>,
    ) -> Result<i64, Error> {
        let mut call = self
            .region(&target.region)
            .ssm
            .put_parameter()
            .name(&target.name)
            .value(value.expose_secret())
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true);
        if let Some(key) = key_id {
            call = call.key_id(key);
        }
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
    /// parameter to the account's default key `alias/aws/ssm`.
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
                return Ok(Observed {
                    instance: instance.clone(),
                    status: "not-found".into(),
                    endpoint: None,
                    replica_source: None,
                });
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
        let endpoint = db.endpoint().and_then(|e| {
            let host = e.address()?.to_owned();
            let port = u16::try_from(e.port()?).ok().filter(|p| *p != 0)?;
            Some(Endpoint { host, port })
        });
        Ok(Observed {
            instance: instance.clone(),
            status: db.db_instance_status().unwrap_or("unknown").to_owned(),
            endpoint,
            replica_source: db
                .read_replica_source_db_instance_identifier()
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        })
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

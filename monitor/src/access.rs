//! `--plan`'s permission check: the read calls the monitor will make, made
//! now, each reported as succeeded or failed with AWS's error code; and the
//! write permissions it will need, listed but never exercised (a check that
//! wrote, promoted or stopped something to prove it could would be the very
//! change `--plan` promises not to make).
//!
//! Which calls are listed follows how each parameter is stored: a String needs
//! no KMS permission and no key lookup; a SecureString needs decryption, and
//! DescribeParameters unless `kms_key_id` names its key.

use std::fmt;

use crate::aws::{Aws, Rds};
use crate::config::{Config, InstanceRef, ParameterTarget};
use crate::Error;

/// Why a parameter that does not exist fails the check.
const NOT_FOUND: &str =
    "not found: the monitor never creates a parameter; create it with the database's endpoint (and credentials, for a SecureString) first";

/// One read call made by the check.
#[derive(Debug)]
pub struct ReadCheck {
    /// The IAM actions the call needs, e.g. `ssm:GetParameter`.
    pub actions: String,
    /// What it was called on.
    pub resource: String,
    /// What it returned (a status, a type, a key) or why it failed.
    pub outcome: Outcome,
}

/// How one read call went.
#[derive(Debug)]
pub enum Outcome {
    /// It succeeded; what it said.
    Ok(String),
    /// It failed: the monitor cannot work until this is fixed.
    Failed(Error),
    /// Not needed with this configuration and parameter type; why.
    Skipped(String),
}

/// The whole check: reads made, writes needed.
#[derive(Debug, Default)]
pub struct AccessReport {
    /// The read calls, in the order they were made.
    pub reads: Vec<ReadCheck>,
    /// The write permissions the monitor will need, as `action on resource`.
    pub writes: Vec<String>,
}

impl AccessReport {
    /// The first failed read, which decides `--plan`'s exit code.
    pub fn first_failure(&self) -> Option<&Error> {
        self.reads.iter().find_map(|r| match &r.outcome {
            Outcome::Failed(e) => Some(e),
            _ => None,
        })
    }
}

impl fmt::Display for AccessReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "permissions (reads called now; writes listed, not called):"
        )?;
        for r in &self.reads {
            let (tag, detail) = match &r.outcome {
                Outcome::Ok(what) => ("ok", what.clone()),
                Outcome::Failed(e) => ("FAILED", e.to_string()),
                Outcome::Skipped(why) => ("skipped", why.clone()),
            };
            writeln!(f, "  {tag:<8}{} on {}: {detail}", r.actions, r.resource)?;
        }
        for w in &self.writes {
            writeln!(f, "  {:<8}{w}", "write")?;
        }
        Ok(())
    }
}

/// Makes every read the monitor's polls make with this configuration and
/// lists the writes they may lead to. Writes nothing.
pub async fn check<R: Rds>(config: &Config, aws: &Aws, rds: &R) -> AccessReport {
    let mut report = AccessReport::default();
    // The account, for the ARNs of the write permissions: taken from a
    // parameter's ARN (GetParameter returns it), else left as a placeholder.
    let mut account: Option<String> = None;
    if let Some(c) = &config.cluster {
        report.reads.push(check_cluster(rds, &c.as_ref()).await);
    }
    if let Some(g) = &config.global {
        for cluster in &g.clusters {
            let outcome = match rds.describe_global(&g.id, &cluster.region).await {
                Ok(Some(members)) => Outcome::Ok(format!("{} member(s)", members.len())),
                Ok(None) => Outcome::Ok("no such global database in this region".into()),
                Err(e) => Outcome::Failed(e),
            };
            report.reads.push(ReadCheck {
                actions: "rds:DescribeGlobalClusters".into(),
                resource: format!("{} (asked in {})", g.id, cluster.region),
                outcome,
            });
            report.reads.push(check_cluster(rds, cluster).await);
        }
    }
    for instance in config.primary.iter().chain(&config.replicas) {
        let outcome = match rds.describe(instance).await {
            // A typo in an id would otherwise pass unnoticed until the
            // failover that needs the instance.
            Ok(o) if o.status == "not-found" => Outcome::Failed(Error::Config(format!(
                "RDS knows no DB instance {instance}: check its id and region (or remove it if it was deleted)"
            ))),
            Ok(o) => Outcome::Ok(format!("status {}", o.status)),
            Err(e) => Outcome::Failed(e),
        };
        report.reads.push(ReadCheck {
            actions: "rds:DescribeDBInstances".into(),
            resource: instance.to_string(),
            outcome,
        });
    }
    for target in &config.parameters {
        check_parameter(aws, target, &mut report, &mut account).await;
    }
    let account = account.unwrap_or_else(|| "<account>".to_owned());
    let p = &config.promotion;
    if p.enabled {
        for replica in &config.replicas {
            let lookback = std::time::Duration::from_secs(p.lag_lookback_secs);
            let outcome = match aws
                .replica_lag(replica, std::time::SystemTime::now(), lookback)
                .await
            {
                Ok(Some(lag)) => Outcome::Ok(format!("ReplicaLag {lag} s")),
                Ok(None) => Outcome::Ok("no ReplicaLag datapoint now".into()),
                Err(e) => Outcome::Failed(e),
            };
            report.reads.push(ReadCheck {
                actions: "cloudwatch:GetMetricStatistics".into(),
                resource: format!("ReplicaLag of {replica}"),
                outcome,
            });
            report.writes.push(format!(
                "rds:PromoteReadReplica on {}",
                rds_arn(&replica.region, &account, &replica.id)
            ));
        }
        if p.fence_old_primary {
            if let Some(primary) = &config.primary {
                report.writes.push(format!(
                    "rds:StopDBInstance on {}",
                    rds_arn(&primary.region, &account, &primary.id)
                ));
            }
        }
    }
    report
}

/// DescribeDBClusters and its members' DescribeDBInstances, as a poll makes them.
async fn check_cluster<R: Rds>(rds: &R, cluster: &InstanceRef) -> ReadCheck {
    let outcome = match rds.describe_cluster(cluster).await {
        // A typo in the id, as for an instance.
        Ok(o) if o.status == "not-found" => Outcome::Failed(Error::Config(format!(
            "RDS knows no DB cluster {cluster}: check its id and region (or remove it if it was deleted)"
        ))),
        Ok(o) => Outcome::Ok(format!(
            "status {}, {} member(s)",
            o.status,
            o.members.len()
        )),
        Err(e) => Outcome::Failed(e),
    };
    ReadCheck {
        actions: "rds:DescribeDBClusters, rds:DescribeDBInstances".into(),
        resource: cluster.to_string(),
        outcome,
    }
}

async fn check_parameter(
    aws: &Aws,
    target: &ParameterTarget,
    report: &mut AccessReport,
    account: &mut Option<String>,
) {
    let resource = format!("\"{}\" ({})", target.name, target.region);
    let read = |actions: &str, outcome| ReadCheck {
        actions: actions.to_owned(),
        resource: resource.clone(),
        outcome,
    };
    let fallback_arn = |account: &Option<String>| {
        format!(
            "arn:aws:ssm:{}:{}:parameter{}",
            target.region,
            account.as_deref().unwrap_or("<account>"),
            target.name
        )
    };
    // Without decryption first: the type says which other calls are needed.
    let info = match aws.parameter_info(target).await {
        Ok(Some(info)) => info,
        Ok(None) => {
            report.reads.push(read(
                "ssm:GetParameter",
                Outcome::Failed(refused(target, NOT_FOUND)),
            ));
            return;
        }
        Err(e) => {
            report
                .reads
                .push(read("ssm:GetParameter", Outcome::Failed(e)));
            report
                .writes
                .push(format!("ssm:PutParameter on {}", fallback_arn(account)));
            return;
        }
    };
    report.reads.push(read(
        "ssm:GetParameter",
        Outcome::Ok(format!("{} parameter, version {}", info.kind, info.version)),
    ));
    if let Some(a) = info.arn.as_deref().and_then(|a| a.split(':').nth(4)) {
        if account.is_none() && !a.is_empty() {
            *account = Some(a.to_owned());
        }
    }
    let arn = info.arn.clone().unwrap_or_else(|| fallback_arn(account));
    report.writes.push(format!("ssm:PutParameter on {arn}"));
    if info.kind != "SecureString" {
        report.reads.push(read(
            "ssm:DescribeParameters",
            Outcome::Skipped(format!(
                "not needed: a {} parameter has no KMS key (and needs no KMS permission)",
                info.kind
            )),
        ));
        return;
    }
    let decrypted = match aws.get_parameter(target).await {
        Ok(Some(_)) => Outcome::Ok("decrypted".into()),
        Ok(None) => Outcome::Failed(refused(target, NOT_FOUND)),
        Err(e) => Outcome::Failed(e),
    };
    report.reads.push(read(
        "ssm:GetParameter with decryption, kms:Decrypt",
        decrypted,
    ));
    let key = match &target.kms_key_id {
        Some(key) => {
            report.reads.push(read(
                "ssm:DescribeParameters",
                Outcome::Skipped(format!("not needed: kms_key_id is set ({key})")),
            ));
            Some(key.clone())
        }
        None => match aws.parameter_key_id(target).await {
            Ok(Some(key)) => {
                report.reads.push(read(
                    "ssm:DescribeParameters",
                    Outcome::Ok(format!("key {key}")),
                ));
                Some(key)
            }
            Ok(None) => {
                let e = Error::KeyUnknown {
                    parameter: target.name.clone(),
                    region: target.region.clone(),
                    reason: "DescribeParameters named no key for it".into(),
                    transient: false,
                };
                report
                    .reads
                    .push(read("ssm:DescribeParameters", Outcome::Failed(e)));
                None
            }
            Err(e) => {
                report
                    .reads
                    .push(read("ssm:DescribeParameters", Outcome::Failed(e)));
                None
            }
        },
    };
    report.writes.push(format!(
        "kms:Encrypt and kms:Decrypt on {} (the key of {resource}; kms:GenerateDataKey too for an advanced-tier parameter)",
        key.as_deref().unwrap_or("its key (unknown)")
    ));
}

fn refused(target: &ParameterTarget, reason: &str) -> Error {
    Error::Refused {
        parameter: target.name.clone(),
        region: target.region.clone(),
        reason: reason.to_owned(),
    }
}

fn rds_arn(region: &str, account: &str, id: &str) -> String {
    format!("arn:aws:rds:{region}:{account}:db:{id}")
}

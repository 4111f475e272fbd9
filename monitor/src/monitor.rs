//! One poll: observe the instances, read the parameters, decide, act.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ssm_db_config_core::{
    check_rewritable, parse_endpoint_value, with_endpoint_credentials_optional, Engine,
    ExposeSecret, SecretString,
};
use tracing::{debug, info, instrument, warn};

use crate::aws::{Aws, ClusterObserved, Endpoint, GlobalMember, Observed, Rds, StoredAs};
use crate::config::{Config, InstanceRef, ParameterTarget};
use crate::decide::{
    decide, decide_cluster, decide_global, promotion_due, refuse_cluster_members, ClusterInputs,
    Decision, GlobalInputs, Inputs, Plan, PrimaryStreak,
};
use crate::metrics::Metrics;
use crate::run::Clock;
use crate::Error;

/// Why a parameter is never created: creating it would mean writing credentials.
const MISSING_PARAMETER: &str =
    "it does not exist; the monitor only changes the endpoint of an existing value, it never creates one";

/// Why a String parameter that holds a password is not written: the monitor
/// would be writing a secret in clear text.
pub const STRING_WITH_PASSWORD: &str =
    "it is a String parameter and its value holds a password: the monitor does not write secrets into a String; put the password in a SecureString named by the extension's credentials_parameter and leave only the endpoint here (postgresql://host:5432/dbname), or make this parameter a SecureString";

/// Why a String parameter with `kms_key_id` configured is not written.
pub const KMS_KEY_FOR_STRING: &str =
    "kms_key_id is set for it but it is a String parameter, which is written as a String without a key: remove kms_key_id, or make the parameter a SecureString";

/// What one poll saw and did.
#[derive(Debug)]
pub struct PollReport {
    /// The decision, with its reasons.
    pub plan: Plan,
    /// Parameters written (or, in a dry run, that would have been), as `name (region)`.
    pub published: Vec<String>,
    /// The replica promoted in this poll.
    pub promoted: Option<InstanceRef>,
    /// The instance stopped in this poll.
    pub fenced: Option<InstanceRef>,
    /// Failures that did not stop the poll (one parameter refused, one region unreachable).
    pub errors: Vec<Error>,
}

/// How a poll acts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Act.
    #[default]
    Act,
    /// Log what would be done, change nothing (`--dry-run`).
    DryRun,
    /// Decide only; the caller prints the plan (`--plan`).
    Plan,
}

/// The monitor's state between polls, and its collaborators.
pub struct Monitor<R> {
    config: Config,
    aws: Aws,
    rds: R,
    metrics: Arc<Metrics>,
    mode: Mode,
    /// How long the primary has gone without being seen writable.
    primary_streak: PrimaryStreak,
    /// The primary's endpoint as RDS last reported it: what the second signal
    /// probes once RDS no longer reports one (a deleted or renamed instance).
    last_primary_endpoint: Option<Endpoint>,
}

struct ParamState {
    target: ParameterTarget,
    value: SecretString,
    kind: String,
    version: i64,
    endpoint: Endpoint,
    /// The engine the value names.
    engine: Engine,
}

/// What RDS said in one poll, per topology.
enum Observation {
    Instances(Vec<Observed>),
    Cluster(ClusterObserved),
    Global {
        members: Result<Option<Vec<GlobalMember>>, String>,
        clusters: Vec<ClusterObserved>,
    },
}

/// `p`'s value pointed at `endpoint`, or why it cannot be.
fn rewritten(p: &ParamState, endpoint: &Endpoint) -> Result<SecretString, Error> {
    let t = &p.target;
    with_endpoint_credentials_optional(
        &t.name,
        p.value.expose_secret(),
        &endpoint.host,
        endpoint.port,
    )
    .map(SecretString::from)
    .map_err(|e| Error::Refused {
        parameter: t.name.clone(),
        region: t.region.clone(),
        reason: core_reason(e),
    })
}

impl Observation {
    /// Each described instance with the engine RDS reports for it.
    fn engines(&self) -> Vec<(&InstanceRef, &str)> {
        let observed: Vec<&Observed> = match self {
            Observation::Instances(o) => o.iter().collect(),
            Observation::Cluster(c) => c.members.iter().map(|m| &m.observed).collect(),
            Observation::Global { clusters, .. } => clusters
                .iter()
                .flat_map(|c| c.members.iter().map(|m| &m.observed))
                .collect(),
        };
        observed
            .into_iter()
            .filter_map(|o| Some((&o.instance, o.engine.as_deref()?)))
            .collect()
    }
}

impl<R: Rds> Monitor<R> {
    /// A monitor over the given clients. `config.dry_run` turns `Mode::Act` into `Mode::DryRun`.
    pub fn new(config: Config, aws: Aws, rds: R, metrics: Arc<Metrics>, mode: Mode) -> Self {
        let mode = if mode == Mode::Act && config.dry_run {
            Mode::DryRun
        } else {
            mode
        };
        Monitor {
            config,
            aws,
            rds,
            metrics,
            mode,
            primary_streak: PrimaryStreak::default(),
            last_primary_endpoint: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The RDS collaborator (tests reach their stand-in through this).
    pub fn rds(&self) -> &R {
        &self.rds
    }

    /// One poll. `Err` when the cluster could not be observed or the
    /// configuration does not match RDS; an instance that could not be
    /// described and errors about single parameters are in [`PollReport::errors`].
    #[instrument(level = "debug", skip_all)]
    pub async fn poll<C: Clock>(&mut self, clock: &C) -> Result<PollReport, Error> {
        self.metrics.poll();
        let mut errors = Vec::new();
        let observation = match &self.config.cluster {
            None if self.config.global.is_some() => self.observe_global(&mut errors).await,
            Some(c) => {
                let cluster = c.as_ref();
                let o = self.rds.describe_cluster(&cluster).await.inspect_err(|_| {
                    self.metrics.api_error();
                })?;
                debug!(cluster = %o.cluster, status = %o.status, endpoint = ?o.endpoint, members = ?o.members, "observed");
                Observation::Cluster(o)
            }
            None => {
                let observed = self.observe(&mut errors).await;
                if let Some(why) = refuse_cluster_members(&observed) {
                    return Err(Error::Config(why));
                }
                Observation::Instances(observed)
            }
        };
        let mut params = Vec::new();
        for target in &self.config.parameters {
            match self.read_parameter(target).await {
                Ok(p) => params.push(p),
                Err(e) => {
                    if matches!(e, Error::Api { .. }) {
                        self.metrics.api_error();
                    }
                    errors.push(e)
                }
            }
        }
        // A value for another engine than RDS runs (a [[parameters]] entry
        // meant for another database) is never pointed at this one.
        let engines = observation.engines();
        params.retain(|p| match engines.iter().find(|(_, e)| Engine::from_rds_name(e) != Some(p.engine)) {
            None => true,
            Some((instance, engine)) => {
                errors.push(Error::Refused {
                    parameter: p.target.name.clone(),
                    region: p.target.region.clone(),
                    reason: format!(
                        "its value is a {} value and RDS runs {instance} as engine {engine}: is the [[parameters]] entry meant for another database?",
                        p.engine
                    ),
                });
                false
            }
        });
        let published: Vec<Endpoint> = params.iter().map(|p| p.endpoint.clone()).collect();

        let plan = match &observation {
            Observation::Global { members, clusters } => {
                let g = self.config.global.as_ref().expect("global topology");
                decide_global(&GlobalInputs {
                    id: &g.id,
                    members,
                    clusters,
                    published: &published,
                    publish: g.publish,
                })
            }
            Observation::Cluster(o) => decide_cluster(&ClusterInputs {
                observed: o,
                publish: self
                    .config
                    .cluster
                    .as_ref()
                    .map(|c| c.publish)
                    .expect("cluster topology"),
            }),
            Observation::Instances(observed) => {
                self.primary_streak = self.primary_streak.next(&observed[0]);
                if let Some(e) = &observed[0].endpoint {
                    self.last_primary_endpoint = Some(e.clone());
                }
                let considering = self.considering_promotion(observed);
                let lags = if considering {
                    self.lags(observed, clock).await
                } else {
                    HashMap::new()
                };
                let probe = if considering {
                    self.probe_primary(&observed[0]).await
                } else {
                    None
                };
                decide(&Inputs {
                    observed,
                    published: &published,
                    primary_down_polls: self.primary_streak.down,
                    primary_unseen_polls: self.primary_streak.unseen,
                    promotion: &self.config.promotion,
                    lags: &lags,
                    primary_probe: probe.as_ref(),
                })
            }
        };
        debug!(%plan, "decided");
        let mut report = PollReport {
            plan: plan.clone(),
            published: Vec::new(),
            promoted: None,
            fenced: None,
            errors,
        };
        if self.mode == Mode::Plan {
            // What a write would refuse, found now: the rewrite, not the write.
            if let Decision::Publish { endpoint, .. } = &plan.decision {
                for p in params.iter().filter(|p| &p.endpoint != endpoint) {
                    if let Err(e) = rewritten(p, endpoint) {
                        report.errors.push(e);
                    }
                }
            }
            return Ok(report);
        }

        let writer = match &plan.decision {
            Decision::Publish {
                instance, endpoint, ..
            } => Some((instance.clone(), endpoint.clone())),
            Decision::NoWriter { why } => {
                warn!(reason = %why, "not publishing: no writable instance");
                None
            }
            Decision::Promote { replica, why } => match self.promote(replica, why, clock).await {
                Ok(Some(endpoint)) => {
                    report.promoted = Some(replica.clone());
                    Some((replica.clone(), endpoint))
                }
                Ok(None) => None,
                Err(e) => {
                    self.metrics.api_error();
                    report.errors.push(e);
                    None
                }
            },
        };
        self.metrics
            .set_writer(writer.as_ref().map(|w| w.0.clone()));

        if let Some((instance, endpoint)) = &writer {
            for p in &params {
                match self.publish(p, instance, endpoint, clock).await {
                    Ok(true) => report
                        .published
                        .push(format!("{} ({})", p.target.name, p.target.region)),
                    Ok(false) => {}
                    Err(e) => {
                        if matches!(e, Error::Api { .. } | Error::KeyUnknown { .. }) {
                            self.metrics.api_error();
                        }
                        report.errors.push(e)
                    }
                }
            }
        }

        if let Some((instance, why)) = &plan.fence {
            if self.mode == Mode::DryRun {
                warn!(instance = %instance, reason = %why, "dry run: would fence (stop) the old primary");
            } else {
                match self.rds.stop(instance).await {
                    Ok(()) => {
                        self.metrics.fenced();
                        warn!(instance = %instance, reason = %why, "fenced the old primary: StopDBInstance accepted");
                        report.fenced = Some(instance.clone());
                    }
                    Err(e) => {
                        self.metrics.api_error();
                        report.errors.push(e);
                    }
                }
            }
        }
        Ok(report)
    }

    /// DescribeDBInstances for the primary, then each replica, each on its
    /// own: a failure (its region's API is down, say) makes that instance
    /// `unknown`, neither serving nor writable nor known to be down, and is
    /// reported in the poll's errors. So one region's outage neither stops the
    /// monitor from publishing a writable instance elsewhere nor, counted
    /// against `promotion.unknown_after_polls`, blocks a promotion forever.
    async fn observe(&self, errors: &mut Vec<Error>) -> Vec<Observed> {
        let mut out = Vec::with_capacity(1 + self.config.replicas.len());
        for instance in self.config.primary.iter().chain(&self.config.replicas) {
            match self.rds.describe(instance).await {
                Ok(o) => {
                    debug!(instance = %o.instance, status = %o.status, endpoint = ?o.endpoint, replica_of = ?o.replica_source, "observed");
                    out.push(o)
                }
                Err(e) => {
                    self.metrics.api_error();
                    warn!(instance = %instance, error = %e, "cannot describe the instance; counting it as unknown");
                    out.push(Observed::unknown(instance));
                    errors.push(e);
                }
            }
        }
        out
    }

    /// DescribeDBClusters for each regional cluster of the global database,
    /// each on its own (a failure makes that cluster `unknown`), and
    /// DescribeGlobalClusters asked in each cluster's region in turn until one
    /// answers: the global database's metadata is served from every region
    /// it spans, so the primary region's outage does not hide it.
    async fn observe_global(&self, errors: &mut Vec<Error>) -> Observation {
        let g = self.config.global.as_ref().expect("global topology");
        let mut clusters = Vec::with_capacity(g.clusters.len());
        for c in &g.clusters {
            match self.rds.describe_cluster(c).await {
                Ok(o) => {
                    debug!(cluster = %o.cluster, status = %o.status, endpoint = ?o.endpoint, members = ?o.members, "observed");
                    clusters.push(o)
                }
                Err(e) => {
                    self.metrics.api_error();
                    warn!(cluster = %c, error = %e, "cannot describe the cluster; counting it as unknown");
                    clusters.push(ClusterObserved {
                        cluster: c.clone(),
                        status: crate::aws::UNKNOWN_STATUS.into(),
                        endpoint: None,
                        members: Vec::new(),
                    });
                    errors.push(e);
                }
            }
        }
        let mut members = Err("no region was asked".to_owned());
        let mut asked: Vec<&str> = Vec::new();
        for region in g.clusters.iter().map(|c| c.region.as_str()) {
            if asked.contains(&region) {
                continue;
            }
            asked.push(region);
            match self.rds.describe_global(&g.id, region).await {
                Ok(m) => {
                    debug!(global = %g.id, region, members = ?m, "observed");
                    members = Ok(m);
                    break;
                }
                Err(e) => {
                    self.metrics.api_error();
                    warn!(global = %g.id, region, error = %e, "cannot describe the global database here; asking the next region");
                    members = Err(e.to_string());
                    errors.push(e);
                }
            }
        }
        Observation::Global { members, clusters }
    }

    async fn read_parameter(&self, target: &ParameterTarget) -> Result<ParamState, Error> {
        let refused = |reason: String| Error::Refused {
            parameter: target.name.clone(),
            region: target.region.clone(),
            reason,
        };
        let current = self
            .aws
            .get_parameter(target)
            .await?
            .ok_or_else(|| refused(MISSING_PARAMETER.to_owned()))?;
        // The extension's grammar for a value whose user and password may come
        // from a credentials parameter: the monitor only changes the endpoint,
        // so it needs no credentials in the value, and keeps any it finds.
        let parsed = parse_endpoint_value(&target.name, current.value.expose_secret())
            .map_err(|e| refused(core_reason(e)))?;
        // What a write would refuse (a socket, an iam_host left on the old
        // endpoint) is refused on reading, so that `--plan` shows it too.
        check_rewritable(&target.name, &parsed).map_err(|e| refused(core_reason(e)))?;
        match current.kind.as_str() {
            "SecureString" => {}
            "String" if !parsed.password.expose_secret().is_empty() => {
                return Err(refused(STRING_WITH_PASSWORD.to_owned()))
            }
            "String" if target.kms_key_id.is_some() => {
                return Err(refused(KMS_KEY_FOR_STRING.to_owned()))
            }
            "String" => {}
            other => {
                return Err(refused(format!(
                    "it is a {other} parameter; the monitor writes String (endpoint only) or SecureString parameters"
                )))
            }
        }
        debug!(parameter = %target.name, region = %target.region, version = current.version, kind = %current.kind, "read parameter");
        Ok(ParamState {
            target: target.clone(),
            endpoint: Endpoint {
                host: parsed.host,
                port: parsed.port,
            },
            engine: parsed.engine,
            value: current.value,
            kind: current.kind,
            version: current.version,
        })
    }

    /// Whether this poll may end in a promotion, which is when the second
    /// signal and the replicas' lag are worth fetching.
    fn considering_promotion(&self, observed: &[Observed]) -> bool {
        let p = &self.config.promotion;
        p.enabled
            && !observed.iter().any(|o| o.is_writable())
            && promotion_due(p, self.primary_streak).is_ok()
    }

    async fn lags<C: Clock>(
        &self,
        observed: &[Observed],
        clock: &C,
    ) -> HashMap<InstanceRef, Result<Option<f64>, String>> {
        let p = &self.config.promotion;
        let mut lags = HashMap::new();
        for replica in observed[1..].iter().filter(|o| o.is_serving()) {
            let lag = self
                .aws
                .replica_lag(
                    &replica.instance,
                    clock.now(),
                    Duration::from_secs(p.lag_lookback_secs),
                )
                .await;
            if lag.is_err() {
                self.metrics.api_error();
            }
            lags.insert(replica.instance.clone(), lag.map_err(|e| e.to_string()));
        }
        lags
    }

    /// The second signal: a TCP connection from here to the primary's
    /// endpoint (as RDS reports it, else as it last reported it), within
    /// `api_timeout_secs`. `Ok(address)` if accepted, `Err(reason)` otherwise;
    /// `None`, no probe and so no promotion, for a primary that could not be
    /// described and whose endpoint this monitor never saw.
    async fn probe_primary(&self, primary: &Observed) -> Option<Result<String, String>> {
        let Some(endpoint) = &self.last_primary_endpoint else {
            if primary.is_unknown() {
                warn!(primary = %primary.instance, "not probing the primary: RDS has not reported its endpoint since the monitor started");
                return None;
            }
            return Some(Err("RDS never reported an endpoint for it".to_owned()));
        };
        let budget = Duration::from_secs_f64(self.config.api_timeout_secs);
        let connect = tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port));
        let result = match tokio::time::timeout(budget, connect).await {
            Ok(Ok(_)) => Ok(endpoint.to_string()),
            Ok(Err(e)) => Err(format!("TCP connection to {endpoint}: {e}")),
            Err(_) => Err(format!(
                "TCP connection to {endpoint}: no answer within {} s",
                budget.as_secs_f64()
            )),
        };
        info!(primary = %primary.instance, %endpoint, answered = result.is_ok(), "probed the primary's endpoint before a promotion");
        Some(result)
    }

    /// Promotes and waits until RDS reports the replica writable. `Ok(None)` in a dry run.
    async fn promote<C: Clock>(
        &self,
        replica: &InstanceRef,
        why: &str,
        clock: &C,
    ) -> Result<Option<Endpoint>, Error> {
        if self.mode == Mode::DryRun {
            warn!(replica = %replica, reason = %why, "dry run: would promote the replica");
            return Ok(None);
        }
        warn!(replica = %replica, reason = %why, "promoting the replica (PromoteReadReplica)");
        self.rds.promote(replica).await?;
        self.metrics.promoted();
        let started = Instant::now();
        let limit = Duration::from_secs(self.config.promotion.wait_timeout_secs);
        loop {
            let o = self.rds.describe(replica).await;
            match o {
                Ok(o) if o.is_writable() => {
                    info!(replica = %replica, waited_secs = started.elapsed().as_secs_f64(), "the promoted replica is writable");
                    return Ok(o.endpoint);
                }
                Ok(o) => {
                    debug!(replica = %replica, status = %o.status, "waiting for the promotion to finish")
                }
                Err(e) => {
                    warn!(replica = %replica, error = %e, "describing the promoted replica failed; still waiting")
                }
            }
            if started.elapsed() >= limit {
                return Err(Error::PromotionTimeout {
                    instance: replica.to_string(),
                    waited_secs: limit.as_secs(),
                });
            }
            clock.sleep(self.config.poll_interval()).await;
        }
    }

    /// Points one parameter at `endpoint` if it points elsewhere. `Ok(true)` if it wrote (or would have).
    async fn publish<C: Clock>(
        &self,
        p: &ParamState,
        instance: &InstanceRef,
        endpoint: &Endpoint,
        clock: &C,
    ) -> Result<bool, Error> {
        let t = &p.target;
        if &p.endpoint == endpoint {
            debug!(parameter = %t.name, region = %t.region, %endpoint, "unchanged");
            return Ok(false);
        }
        let new_value = rewritten(p, endpoint)?;
        if self.mode == Mode::DryRun {
            info!(parameter = %t.name, region = %t.region, writer = %instance, from = %p.endpoint, to = %endpoint, "dry run: would publish the writer's endpoint");
            return Ok(true);
        }
        let stored_as = self.stored_as(p).await?;
        // SSM has no conditional PutParameter: re-read the version as late as
        // possible, so that a rotation made since this poll's read is not reverted.
        match self.aws.parameter_version(t).await? {
            Some(now) if now == p.version => {}
            now => {
                return Err(Error::Changed {
                    parameter: t.name.clone(),
                    region: t.region.clone(),
                    read: p.version,
                    now: now.unwrap_or(0),
                })
            }
        }
        let version = self.aws.put_parameter(t, &new_value, &stored_as).await?;
        self.metrics.published(clock.now());
        let kms_key = match &stored_as {
            StoredAs::Plain => "none",
            StoredAs::Encrypted { key_id } => key_id,
        };
        info!(
            parameter = %t.name, region = %t.region, writer = %instance, from = %p.endpoint, to = %endpoint,
            version, parameter_type = %p.kind, kms_key, "published the writer's endpoint"
        );
        Ok(true)
    }

    /// How to write the parameter: as it is stored now. A String stays a
    /// String (`read_parameter` refused one holding a password). A SecureString
    /// keeps the configured key, else the key it already uses; if that cannot
    /// be read the write is withheld (fail closed): guessing the default key
    /// could leave the hosts unable to decrypt the credentials.
    async fn stored_as(&self, p: &ParamState) -> Result<StoredAs, Error> {
        if p.kind != "SecureString" {
            return Ok(StoredAs::Plain);
        }
        if let Some(key) = &p.target.kms_key_id {
            return Ok(StoredAs::Encrypted {
                key_id: key.clone(),
            });
        }
        let unknown = |reason: String, transient: bool| Error::KeyUnknown {
            parameter: p.target.name.clone(),
            region: p.target.region.clone(),
            reason,
            transient,
        };
        match self.aws.parameter_key_id(&p.target).await {
            Ok(Some(key_id)) => Ok(StoredAs::Encrypted { key_id }),
            Ok(None) => Err(unknown(
                "DescribeParameters named no key for it".to_owned(),
                false,
            )),
            Err(e) => {
                let transient = e.is_transient();
                Err(unknown(e.to_string(), transient))
            }
        }
    }
}

/// The reason part of a core error, without the "SSM parameter ... holds an
/// invalid value" prefix (the monitor's own message names the parameter).
fn core_reason(e: ssm_db_config_core::Error) -> String {
    match e {
        ssm_db_config_core::Error::InvalidValue { reason, .. } => {
            format!("its current value is not usable: {reason}")
        }
        other => other.to_string(),
    }
}

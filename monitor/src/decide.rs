//! Which instance is the writer, and what to do about it: a pure function of
//! what RDS, SSM and CloudWatch said in this poll, so that every rule is
//! tested without AWS and `--plan` can print the same reasoning the daemon acts on.

use std::collections::HashMap;

use crate::aws::{ClusterObserved, Endpoint, GlobalMember, Observed};
use crate::config::{InstanceRef, Promotion, Publish};

/// What one poll saw, as [`decide`] needs it.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The primary first, then the replicas in configuration order.
    pub observed: &'a [Observed],
    /// The endpoints the parameters point at now (those that could be read).
    pub published: &'a [Endpoint],
    /// How many consecutive polls, this one included, RDS reported the primary
    /// not writable ([`PrimaryStreak::down`]).
    pub primary_down_polls: u32,
    /// How many consecutive polls, this one included, did not see the primary
    /// writable, reported down or unknown ([`PrimaryStreak::unseen`]).
    pub primary_unseen_polls: u32,
    /// The promotion settings.
    pub promotion: &'a Promotion,
    /// ReplicaLag per replica, fetched only when a promotion is being considered:
    /// `Ok(Some(seconds))`, `Ok(None)` for no datapoint, `Err(reason)` when CloudWatch failed.
    pub lags: &'a HashMap<InstanceRef, Result<Option<f64>, String>>,
    /// The second signal, taken only when a promotion is being considered: a
    /// TCP connection from the monitor to the primary's endpoint. `Ok(address)`
    /// when it was accepted, `Err(reason)` when it failed, `None` when not probed.
    pub primary_probe: Option<&'a Result<String, String>>,
}

/// What one poll saw of a DB cluster, as [`decide_cluster`] needs it.
#[derive(Debug, Clone)]
pub struct ClusterInputs<'a> {
    /// DescribeDBClusters with its members.
    pub observed: &'a ClusterObserved,
    /// The configured `cluster.publish`.
    pub publish: Publish,
}

/// What one poll saw of an Aurora global database, as [`decide_global`] needs it.
#[derive(Debug, Clone)]
pub struct GlobalInputs<'a> {
    /// The global cluster identifier.
    pub id: &'a str,
    /// DescribeGlobalClusters: `Ok(Some(members))`, `Ok(None)` when the
    /// global database no longer exists, `Err(reason)` when no region answered.
    pub members: &'a Result<Option<Vec<GlobalMember>>, String>,
    /// Each configured regional cluster, in configuration order (status
    /// `unknown` when its DescribeDBClusters failed).
    pub clusters: &'a [ClusterObserved],
    /// The endpoints the parameters point at now (those that could be read).
    pub published: &'a [Endpoint],
    /// The configured `global.publish`.
    pub publish: Publish,
}

/// How long the primary has gone without being seen writable, in polls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrimaryStreak {
    /// Consecutive polls, the latest included, in which RDS reported the
    /// primary not writable. A poll that could not describe it resets this:
    /// RDS said nothing, so the streak of its word is broken.
    pub down: u32,
    /// Consecutive polls in which the primary was not seen writable, whether
    /// RDS reported it down or could not be asked.
    pub unseen: u32,
}

impl PrimaryStreak {
    /// The streak after a poll that observed `primary`.
    pub fn next(self, primary: &Observed) -> PrimaryStreak {
        if primary.is_writable() {
            PrimaryStreak::default()
        } else if primary.is_unknown() {
            PrimaryStreak {
                down: 0,
                unseen: self.unseen.saturating_add(1),
            }
        } else {
            PrimaryStreak {
                down: self.down.saturating_add(1),
                unseen: self.unseen.saturating_add(1),
            }
        }
    }
}

/// Whether the primary has been gone long enough for a promotion to be
/// considered: RDS reported it down for `after_polls` consecutive polls, or it
/// went unseen (down or unknown) for `unknown_after_polls`. `Ok(how long)`, or
/// `Err(what it is still waiting for)`. The second signal comes on top.
pub fn promotion_due(p: &Promotion, streak: PrimaryStreak) -> Result<String, String> {
    // Validation makes after_polls mandatory once promotion is enabled.
    let after = p.after_polls.unwrap_or(u32::MAX);
    let unknown_after = p.unknown_after_polls();
    if streak.down >= after {
        return Ok(format!("for {} consecutive polls", streak.down));
    }
    if streak.unseen >= unknown_after {
        return Ok(format!(
            "unseen for {} consecutive polls (promotion.unknown_after_polls = {unknown_after})",
            streak.unseen
        ));
    }
    if streak.down == 0 {
        Err(format!(
            "waiting: {} of the {unknown_after} consecutive polls without seeing the primary that promotion.unknown_after_polls requires when RDS cannot be asked",
            streak.unseen
        ))
    } else {
        Err(format!(
            "waiting: {} of the {after} consecutive polls that promotion.after_polls requires",
            streak.down
        ))
    }
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The main decision.
    pub decision: Decision,
    /// An instance to stop because it came back as a second writer, with the reason.
    pub fence: Option<(InstanceRef, String)>,
}

/// What to do about the writer.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// This instance is the writer: make every parameter point at it.
    Publish {
        /// The writer.
        instance: InstanceRef,
        /// Its endpoint.
        endpoint: Endpoint,
        /// Why it was chosen.
        why: String,
    },
    /// Promote this replica, wait for it, then publish it.
    Promote {
        /// The replica.
        replica: InstanceRef,
        /// Why.
        why: String,
    },
    /// No instance can take writes: change nothing.
    NoWriter {
        /// Why, and what would have to change.
        why: String,
    },
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.decision {
            Decision::Publish {
                instance,
                endpoint,
                why,
            } => write!(f, "writer: {instance} at {endpoint}: {why}")?,
            Decision::Promote { replica, why } => write!(f, "promote {replica}: {why}")?,
            Decision::NoWriter { why } => write!(f, "no writer: {why}")?,
        }
        if let Some((instance, why)) = &self.fence {
            write!(f, "; fence (stop) {instance}: {why}")?;
        }
        Ok(())
    }
}

/// Decides. See the README's "How the writer is chosen".
pub fn decide(inputs: &Inputs<'_>) -> Plan {
    let primary = &inputs.observed[0];
    let writable: Vec<&Observed> = inputs.observed.iter().filter(|o| o.is_writable()).collect();

    // Stickiness: once a parameter points at a writable instance, keep it
    // there. After a promotion the old primary may come back as a second
    // writable instance; flipping back to it would send orders to a database
    // that missed the writes made since.
    let sticky = writable.iter().find(|o| {
        o.endpoint
            .as_ref()
            .is_some_and(|e| inputs.published.contains(e))
    });
    let chosen = sticky.or(writable.first()).copied();

    let Some(writer) = chosen else {
        return Plan {
            decision: no_writer(inputs, primary),
            fence: None,
        };
    };
    let endpoint = writer
        .endpoint
        .clone()
        .expect("writable instances have an endpoint");
    let why = if writer.instance == primary.instance {
        "the primary is available".to_owned()
    } else if sticky.is_some() {
        format!(
            "it is writable and the parameters already point at it (primary {} is {})",
            primary.instance,
            describe_status(primary)
        )
    } else {
        format!(
            "it is writable and primary {} is {}",
            primary.instance,
            describe_status(primary)
        )
    };
    let fence = (inputs.promotion.fence_old_primary && writer.instance != primary.instance && primary.is_writable()).then(|| {
        (
            primary.instance.clone(),
            format!("it is writable again while {} is the published writer (promotion.fence_old_primary = true)", writer.instance),
        )
    });
    Plan {
        decision: Decision::Publish {
            instance: writer.instance.clone(),
            endpoint,
            why,
        },
        fence,
    }
}

fn no_writer(inputs: &Inputs<'_>, primary: &Observed) -> Decision {
    let p = inputs.promotion;
    let down = format!(
        "primary {} is {} and no other instance is writable",
        primary.instance,
        describe_status(primary)
    );
    if !p.enabled {
        return Decision::NoWriter {
            why: format!("{down}; promotion is disabled (promotion.enabled = false), so the parameters keep their current endpoint"),
        };
    }
    let streak = PrimaryStreak {
        down: inputs.primary_down_polls,
        unseen: inputs.primary_unseen_polls,
    };
    let how_long = match promotion_due(p, streak) {
        Ok(how_long) => how_long,
        Err(waiting) => {
            return Decision::NoWriter {
                why: format!("{down}; {waiting}"),
            }
        }
    };
    // RDS's status alone is one signal; a promotion cannot be undone, so it
    // also needs the primary to refuse connections from here.
    let probe_failed = match inputs.primary_probe {
        None => {
            return Decision::NoWriter {
                why: format!("{down}; not promoting: the primary's endpoint was not probed"),
            }
        }
        Some(Ok(address)) => {
            return Decision::NoWriter {
                why: format!(
                    "{down}, but a TCP connection to the primary at {address} succeeded: not promoting on RDS's word alone"
                ),
            }
        }
        Some(Err(reason)) => reason,
    };
    let mut reasons = Vec::new();
    for replica in &inputs.observed[1..] {
        if !replica.is_serving() {
            reasons.push(format!(
                "{} is {}",
                replica.instance,
                describe_status(replica)
            ));
            continue;
        }
        match inputs.lags.get(&replica.instance) {
            Some(Ok(Some(lag))) if *lag <= p.max_replica_lag_secs => {
                return Decision::Promote {
                    replica: replica.instance.clone(),
                    why: format!(
                        "{down} {how_long} and the primary's endpoint does not answer ({probe_failed}); its ReplicaLag is {lag} s (limit {} s)",
                        p.max_replica_lag_secs
                    ),
                };
            }
            Some(Ok(Some(lag))) => reasons.push(format!(
                "{}: ReplicaLag {lag} s is over promotion.max_replica_lag_secs = {} s",
                replica.instance, p.max_replica_lag_secs
            )),
            Some(Ok(None)) => reasons.push(format!(
                "{}: CloudWatch has no ReplicaLag datapoint in the last {} s",
                replica.instance, p.lag_lookback_secs
            )),
            Some(Err(e)) => reasons.push(format!("{}: ReplicaLag unknown ({e})", replica.instance)),
            None => reasons.push(format!("{}: ReplicaLag was not checked", replica.instance)),
        }
    }
    Decision::NoWriter {
        why: format!("{down}; no replica can be promoted: {}", reasons.join("; ")),
    }
}

/// Refuses an instance configured as `[primary]` or `[[replicas]]` that is a
/// member of a DB cluster: its writer role moves with the cluster's failovers,
/// and a reader member has no `ReadReplicaSourceDBInstanceIdentifier`, so it
/// would be taken for a writer. Returns the message, naming the cluster and
/// the configuration to use instead.
pub fn refuse_cluster_members(observed: &[Observed]) -> Option<String> {
    let o = observed.iter().find(|o| o.cluster.is_some())?;
    let cluster = o.cluster.as_deref().unwrap_or_default();
    Some(format!(
        "RDS DB instance {} is a member of DB cluster \"{cluster}\", whose writer moves among its members at each failover; configure the cluster instead of [primary] and [[replicas]]: [cluster] id = \"{cluster}\", region = \"{}\", publish = \"writer-instance\" (or \"cluster-endpoint\")",
        o.instance, o.instance.region
    ))
}

/// Decides for a DB cluster: with `publish = "cluster-endpoint"` the
/// parameters hold the cluster's writer endpoint, whatever member is the
/// writer; with `"writer-instance"` they hold the endpoint of the one member
/// RDS marks `IsClusterWriter`, while it serves. Never fences or promotes:
/// RDS fails a cluster over by itself.
pub fn decide_cluster(inputs: &ClusterInputs<'_>) -> Plan {
    let c = inputs.observed;
    let writers: Vec<&crate::aws::ClusterMember> =
        c.members.iter().filter(|m| m.is_writer).collect();
    let writer_note = match writers.as_slice() {
        [w] => format!(
            "writer member {} is {}",
            w.observed.instance.id, w.observed.status
        ),
        [] => "no member is the writer".to_owned(),
        _ => "several members are marked writer".to_owned(),
    };
    let decision = if c.status == "not-found" {
        Decision::NoWriter {
            why: format!(
                "DB cluster {} does not exist (DescribeDBClusters: DBClusterNotFoundFault)",
                c.cluster
            ),
        }
    } else {
        match inputs.publish {
            Publish::ClusterEndpoint => match &c.endpoint {
                Some(endpoint) => Decision::Publish {
                    instance: c.cluster.clone(),
                    endpoint: endpoint.clone(),
                    why: format!(
                        "publish = \"cluster-endpoint\": the cluster's writer endpoint follows a failover by itself (cluster {}, {writer_note})",
                        c.status
                    ),
                },
                None => Decision::NoWriter {
                    why: format!("DB cluster {} has no writer endpoint yet (status {})", c.cluster, c.status),
                },
            },
            Publish::WriterInstance => match writers.as_slice() {
                [w] if w.observed.is_serving() => Decision::Publish {
                    instance: w.observed.instance.clone(),
                    endpoint: w.observed.endpoint.clone().expect("serving instances have an endpoint"),
                    why: format!(
                        "it is the writer member of DB cluster {} (IsClusterWriter) and {}",
                        c.cluster, w.observed.status
                    ),
                },
                [w] => Decision::NoWriter {
                    why: format!(
                        "the writer member {} of DB cluster {} is {}; the parameters keep their current endpoint until a member serves as writer",
                        w.observed.instance, c.cluster, w.observed.status
                    ),
                },
                [] => Decision::NoWriter {
                    why: format!(
                        "DB cluster {} ({}) has no writer member (a failover in progress?); the parameters keep their current endpoint",
                        c.cluster, c.status
                    ),
                },
                several => Decision::NoWriter {
                    why: format!(
                        "RDS marks {} members of DB cluster {} as writer ({}); publishing none of them",
                        several.len(),
                        c.cluster,
                        several.iter().map(|w| w.observed.instance.id.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                },
            },
        }
    };
    Plan {
        decision,
        fence: None,
    }
}

/// Decides for an Aurora global database. A regional cluster takes writes
/// when it is the global database's primary (`IsWriter`) or no longer a member
/// of it: RemoveFromGlobalCluster (detach-and-promote) makes a secondary a
/// standalone, writable cluster. Among those that could be published (as
/// [`decide_cluster`] would publish each), the one the parameters already
/// point at stays (the old primary may come back still marked writer after a
/// detach-and-promote, and orders have been written to the new one since; if
/// parameters point at both, the detached one);
/// otherwise the global primary, then a detached cluster in configuration order.
/// A cluster that could not be described, or whose membership is unknown
/// because no region answered DescribeGlobalClusters, is never published.
pub fn decide_global(inputs: &GlobalInputs<'_>) -> Plan {
    let mut candidates: Vec<(bool, Decision)> = Vec::new();
    let mut notes = Vec::new();
    for c in inputs.clusters {
        let role = if c.status == crate::aws::UNKNOWN_STATUS {
            Err("unknown (its DescribeDBClusters failed)".to_owned())
        } else {
            match inputs.members {
                Err(e) => Err(format!(
                    "of unknown role: DescribeGlobalClusters failed ({e})"
                )),
                Ok(None) => Ok((false, format!("standalone: global database {} no longer exists", inputs.id))),
                Ok(Some(members)) => match members.iter().find(|m| m.cluster == c.cluster) {
                    Some(m) if m.is_writer => Ok((true, format!("the primary cluster of global database {}", inputs.id))),
                    Some(_) => Err(format!("a read-only secondary of global database {}", inputs.id)),
                    None => Ok((false, format!("detached from global database {} (RemoveFromGlobalCluster): a standalone, writable cluster", inputs.id))),
                },
            }
        };
        match role {
            Err(why) => notes.push(format!("{} is {why}", c.cluster)),
            Ok((primary, role)) => {
                match decide_cluster(&ClusterInputs {
                    observed: c,
                    publish: inputs.publish,
                })
                .decision
                {
                    Decision::Publish {
                        instance,
                        endpoint,
                        why,
                    } => candidates.push((
                        primary,
                        Decision::Publish {
                            instance,
                            endpoint,
                            why: format!("DB cluster {} is {role}; {why}", c.cluster),
                        },
                    )),
                    Decision::NoWriter { why } => {
                        notes.push(format!("{} is {role}, but {why}", c.cluster))
                    }
                    Decision::Promote { .. } => unreachable!("clusters are never promoted"),
                }
            }
        }
    }
    let endpoint_of = |d: &Decision| match d {
        Decision::Publish { endpoint, .. } => Some(endpoint.clone()),
        _ => None,
    };
    // When parameters disagree (one region's could not be written during the
    // outage), the detached cluster wins over a returning global primary: the
    // detach was the later decision.
    let published = |d: &Decision| endpoint_of(d).is_some_and(|e| inputs.published.contains(&e));
    let sticky = candidates
        .iter()
        .position(|(primary, d)| !primary && published(d))
        .or_else(|| candidates.iter().position(|(_, d)| published(d)));
    let chosen = sticky
        .or_else(|| candidates.iter().position(|(primary, _)| *primary))
        .or(if candidates.is_empty() { None } else { Some(0) });
    let decision = match chosen {
        Some(n) => {
            let several = candidates.len() > 1;
            let (_, d) = candidates.swap_remove(n);
            match d {
                Decision::Publish { instance, endpoint, why } => Decision::Publish {
                    instance,
                    endpoint,
                    why: if sticky.is_some() && several {
                        format!("{why}; the parameters already point at it, so it stays while another cluster also takes writes")
                    } else {
                        why
                    },
                },
                other => other,
            }
        }
        None => Decision::NoWriter {
            why: format!(
                "no cluster of global database {} can be published: {}; the parameters keep their current endpoint",
                inputs.id,
                notes.join("; ")
            ),
        },
    };
    Plan {
        decision,
        fence: None,
    }
}

fn describe_status(o: &Observed) -> String {
    if o.is_unknown() {
        "unknown (its DescribeDBInstances failed: RDS could not be asked)".to_owned()
    } else if o.is_serving() && o.replica_source.is_some() {
        format!("{} but a read replica", o.status)
    } else {
        o.status.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(id: &str) -> InstanceRef {
        InstanceRef {
            id: id.into(),
            region: "us-east-1".into(),
        }
    }

    fn obs(id: &str, status: &str, replica: bool) -> Observed {
        Observed {
            instance: inst(id),
            status: status.into(),
            endpoint: Some(ep(id)),
            replica_source: replica.then(|| "primary".to_owned()),
            cluster: None,
            engine: None,
        }
    }

    fn ep(id: &str) -> Endpoint {
        Endpoint {
            host: format!("{id}.example"),
            port: 5432,
        }
    }

    /// Decides with the primary's endpoint refusing connections (the second signal given).
    fn run(
        observed: &[Observed],
        published: &[Endpoint],
        down: u32,
        promotion: &Promotion,
        lags: &[(&str, Result<Option<f64>, String>)],
    ) -> Plan {
        let refused = Err("connection refused".to_owned());
        run_probed(observed, published, down, promotion, lags, Some(&refused))
    }

    fn run_probed(
        observed: &[Observed],
        published: &[Endpoint],
        down: u32,
        promotion: &Promotion,
        lags: &[(&str, Result<Option<f64>, String>)],
        probe: Option<&Result<String, String>>,
    ) -> Plan {
        let lags = lags.iter().map(|(id, l)| (inst(id), l.clone())).collect();
        decide(&Inputs {
            observed,
            published,
            primary_down_polls: down,
            primary_unseen_polls: down,
            promotion,
            lags: &lags,
            primary_probe: probe,
        })
    }

    fn enabled(after: u32) -> Promotion {
        Promotion {
            enabled: true,
            after_polls: Some(after),
            ..Promotion::default()
        }
    }

    #[test]
    fn available_primary_is_the_writer() {
        let plan = run(
            &[obs("p", "available", false), obs("r", "available", true)],
            &[],
            0,
            &Promotion::default(),
            &[],
        );
        assert!(
            matches!(plan.decision, Decision::Publish { ref instance, .. } if instance.id == "p"),
            "{plan}"
        );
        assert_eq!(plan.fence, None);
    }

    #[test]
    fn stopped_primary_without_promotion_means_no_writer_and_says_so() {
        let plan = run(
            &[obs("p", "stopped", false), obs("r", "available", true)],
            &[ep("p")],
            9,
            &Promotion::default(),
            &[],
        );
        let Decision::NoWriter { why } = plan.decision else {
            panic!("{plan}")
        };
        assert!(
            why.contains("p (us-east-1) is stopped") && why.contains("promotion is disabled"),
            "{why}"
        );
    }

    #[test]
    fn promotion_waits_for_the_configured_number_of_polls() {
        let o = [obs("p", "stopped", false), obs("r", "available", true)];
        let lag = [("r", Ok(Some(1.0)))];
        let plan = run(&o, &[], 2, &enabled(3), &lag);
        assert!(
            matches!(plan.decision, Decision::NoWriter { ref why } if why.contains("2 of the 3")),
            "{plan}"
        );
        let plan = run(&o, &[], 3, &enabled(3), &lag);
        assert!(
            matches!(plan.decision, Decision::Promote { ref replica, .. } if replica.id == "r"),
            "{plan}"
        );
    }

    #[test]
    fn lag_over_threshold_or_unknown_blocks_promotion() {
        let o = [obs("p", "failed", false), obs("r", "available", true)];
        for (lag, needle) in [
            (Ok(Some(120.0)), "over promotion.max_replica_lag_secs"),
            (Ok(None), "no ReplicaLag datapoint"),
            (Err("CloudWatch throttled".to_owned()), "unknown"),
        ] {
            let plan = run(&o, &[], 5, &enabled(1), &[("r", lag)]);
            assert!(
                matches!(plan.decision, Decision::NoWriter { ref why } if why.contains(needle)),
                "{plan}"
            );
        }
    }

    #[test]
    fn promoted_replica_stays_writer_when_old_primary_returns_and_is_fenced() {
        let o = [obs("p", "available", false), obs("r", "available", false)];
        let fencing = Promotion {
            fence_old_primary: true,
            ..Promotion::default()
        };
        let plan = run(&o, &[ep("r")], 0, &fencing, &[]);
        assert!(
            matches!(plan.decision, Decision::Publish { ref instance, .. } if instance.id == "r"),
            "{plan}"
        );
        assert_eq!(plan.fence.as_ref().map(|f| f.0.id.as_str()), Some("p"));
        let plan = run(&o, &[ep("r")], 0, &Promotion::default(), &[]);
        assert_eq!(plan.fence, None, "no fencing unless configured");
    }

    #[test]
    fn human_promoted_replica_becomes_writer_when_primary_is_gone() {
        let plan = run(
            &[obs("p", "not-found", false), obs("r", "available", false)],
            &[ep("p")],
            1,
            &Promotion::default(),
            &[],
        );
        assert!(
            matches!(plan.decision, Decision::Publish { ref instance, .. } if instance.id == "r"),
            "{plan}"
        );
    }

    #[test]
    fn replica_that_is_still_replicating_is_never_the_writer() {
        let plan = run(
            &[obs("p", "rebooting", false), obs("r", "available", true)],
            &[],
            1,
            &Promotion::default(),
            &[],
        );
        assert!(matches!(plan.decision, Decision::NoWriter { .. }), "{plan}");
    }

    #[test]
    fn primary_in_an_online_change_is_still_the_writer_and_never_promoted_away() {
        for status in [
            "modifying",
            "maintenance",
            "upgrading",
            "renaming",
            "resetting-master-credentials",
            "storage-optimization",
            "configuring-enhanced-monitoring",
            "configuring-activity-stream",
            "backing-up",
        ] {
            let plan = run(
                &[obs("p", status, false), obs("r", "available", true)],
                &[ep("p")],
                0,
                &enabled(1),
                &[("r", Ok(Some(0.0)))],
            );
            assert!(
                matches!(plan.decision, Decision::Publish { ref instance, .. } if instance.id == "p"),
                "{status}: {plan}"
            );
        }
    }

    #[test]
    fn promotion_needs_the_primarys_endpoint_to_refuse_connections_too() {
        let o = [obs("p", "failed", false), obs("r", "available", true)];
        let lag = [("r", Ok(Some(1.0)))];
        let answered = Ok("p.example:5432".to_owned());
        let refused = Err("connection refused".to_owned());
        // (probe result, replica promoted, words in the reason)
        type Case<'a> = (Option<&'a Result<String, String>>, Option<&'a str>, &'a str);
        let cases: [Case; 3] = [
            (
                Some(&answered),
                None,
                "TCP connection to the primary at p.example:5432 succeeded",
            ),
            (None, None, "was not probed"),
            (
                Some(&refused),
                Some("r"),
                "does not answer (connection refused)",
            ),
        ];
        for (probe, promoted, needle) in cases {
            let plan = run_probed(&o, &[], 5, &enabled(2), &lag, probe);
            match (&plan.decision, promoted) {
                (Decision::Promote { replica, why }, Some(id)) => {
                    assert_eq!(replica.id, id);
                    assert!(why.contains(needle), "{why}");
                }
                (Decision::NoWriter { why }, None) => assert!(why.contains(needle), "{why}"),
                _ => panic!("{needle}: {plan}"),
            }
        }
    }

    fn unknown(id: &str) -> Observed {
        Observed::unknown(&inst(id))
    }

    #[test]
    fn primary_streak_counts_reported_down_and_unseen_polls_apart() {
        // (primary seen in each poll, then (down, unseen) after the last one)
        let cases: [(&[Observed], (u32, u32)); 6] = [
            (&[obs("p", "stopped", false)], (1, 1)),
            (&[unknown("p"), unknown("p")], (0, 2)),
            (
                &[
                    obs("p", "stopped", false),
                    unknown("p"),
                    obs("p", "failed", false),
                ],
                (1, 3),
            ),
            (&[unknown("p"), obs("p", "available", false)], (0, 0)),
            (
                &[
                    obs("p", "stopped", false),
                    obs("p", "available", false),
                    unknown("p"),
                ],
                (0, 1),
            ),
            (
                &[obs("p", "available", false), obs("p", "available", true)],
                (1, 1),
            ),
        ];
        for (seen, (down, unseen)) in cases {
            let streak = seen.iter().fold(PrimaryStreak::default(), |s, o| s.next(o));
            assert_eq!(
                streak,
                PrimaryStreak { down, unseen },
                "{:?}",
                seen.iter().map(|o| o.status.as_str()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn unknown_primary_needs_unknown_after_polls_then_the_probe_before_a_promotion() {
        let o = [unknown("p"), obs("r", "available", true)];
        let lag = [("r", Ok(Some(1.0)))];
        let refused = Err("connection refused".to_owned());
        let answered = Ok("p.example:5432".to_owned());
        let p = Promotion {
            unknown_after_polls: Some(6),
            ..enabled(2)
        };
        // (down, unseen, probe, replica promoted, words in the reason)
        type Case<'a> = (u32, u32, Option<&'a Result<String, String>>, bool, &'a str);
        let cases: [Case; 6] = [
            (
                0,
                2,
                Some(&refused),
                false,
                "2 of the 6 consecutive polls without seeing the primary",
            ),
            (0, 5, Some(&refused), false, "5 of the 6"),
            (
                0,
                6,
                Some(&answered),
                false,
                "succeeded: not promoting on RDS's word alone",
            ),
            (0, 6, None, false, "was not probed"),
            (
                0,
                6,
                Some(&refused),
                true,
                "unseen for 6 consecutive polls (promotion.unknown_after_polls = 6)",
            ),
            // RDS said "down" twice before it became unreachable: that streak was broken.
            (0, 4, Some(&refused), false, "4 of the 6"),
        ];
        for (down, unseen, probe, promoted, needle) in cases {
            let lags = lag.iter().map(|(id, l)| (inst(id), l.clone())).collect();
            let plan = decide(&Inputs {
                observed: &o,
                published: &[ep("p")],
                primary_down_polls: down,
                primary_unseen_polls: unseen,
                promotion: &p,
                lags: &lags,
                primary_probe: probe,
            });
            match &plan.decision {
                Decision::Promote { replica, why } if promoted => {
                    assert_eq!(replica.id, "r");
                    assert!(
                        why.contains(needle) && why.contains("p (us-east-1) is unknown"),
                        "{why}"
                    );
                }
                Decision::NoWriter { why } if !promoted => assert!(why.contains(needle), "{why}"),
                _ => panic!("{down}/{unseen}: {plan}"),
            }
        }
        // Reported down for after_polls is enough whatever unknown_after_polls says.
        let down = [obs("p", "stopped", false), obs("r", "available", true)];
        let plan = run(&down, &[], 2, &p, &lag);
        assert!(matches!(plan.decision, Decision::Promote { .. }), "{plan}");
    }

    #[test]
    fn each_instance_is_judged_on_its_own_when_another_cannot_be_described() {
        // (observed, published, writer expected, words in the reason)
        type Case<'a> = (Vec<Observed>, Vec<Endpoint>, Option<&'a str>, &'a str);
        let cases: [Case; 4] = [
            (
                vec![obs("p", "available", false), unknown("r")],
                vec![ep("p")],
                Some("p"),
                "the primary is available",
            ),
            (
                vec![unknown("p"), obs("r", "available", false)],
                vec![ep("p")],
                Some("r"),
                "primary p (us-east-1) is unknown (its DescribeDBInstances failed",
            ),
            (
                vec![unknown("p"), obs("r", "available", true)],
                vec![ep("p")],
                None,
                "promotion is disabled",
            ),
            (
                vec![unknown("p"), unknown("r")],
                vec![ep("p")],
                None,
                "p (us-east-1) is unknown",
            ),
        ];
        for (observed, published, writer, needle) in cases {
            let plan = run(&observed, &published, 1, &Promotion::default(), &[]);
            match (&plan.decision, writer) {
                (Decision::Publish { instance, why, .. }, Some(id)) => {
                    assert_eq!(instance.id, id, "{plan}");
                    assert!(why.contains(needle), "{why}");
                }
                (Decision::NoWriter { why }, None) => assert!(why.contains(needle), "{why}"),
                _ => panic!("{plan}"),
            }
        }
    }

    #[test]
    fn instance_in_a_cluster_is_refused_naming_the_cluster_and_the_config() {
        assert_eq!(
            refuse_cluster_members(&[obs("p", "available", false)]),
            None
        );
        let mut member = obs("shop-aurora-1", "available", false);
        member.cluster = Some("shop-aurora".into());
        let why = refuse_cluster_members(&[obs("p", "available", false), member]).unwrap();
        assert!(
            why.contains("shop-aurora-1 (us-east-1) is a member of DB cluster \"shop-aurora\"")
                && why.contains("[cluster] id = \"shop-aurora\", region = \"us-east-1\", publish = \"writer-instance\""),
            "{why}"
        );
    }

    fn cluster(status: &str, members: &[(&str, &str, bool)]) -> ClusterObserved {
        ClusterObserved {
            cluster: inst("c"),
            status: status.into(),
            endpoint: (status != "not-found").then(|| ep("c.cluster")),
            members: members
                .iter()
                .map(|(id, status, is_writer)| crate::aws::ClusterMember {
                    observed: obs(id, status, false),
                    is_writer: *is_writer,
                })
                .collect(),
        }
    }

    #[test]
    fn cluster_decisions_follow_is_cluster_writer_or_hold_the_cluster_endpoint() {
        use Publish::{ClusterEndpoint as Cep, WriterInstance as Wi};
        // (cluster status, members, publish, expected writer endpoint or None, words in the reason)
        type Case<'a> = (
            &'a str,
            &'a [(&'a str, &'a str, bool)],
            Publish,
            Option<&'a str>,
            &'a str,
        );
        let cases: [Case; 10] = [
            (
                "available",
                &[("a", "available", true), ("b", "available", false)],
                Wi,
                Some("a"),
                "writer member of DB cluster c",
            ),
            (
                "available",
                &[("a", "available", false), ("b", "available", true)],
                Wi,
                Some("b"),
                "IsClusterWriter",
            ),
            (
                "failing-over",
                &[("a", "available", false), ("b", "available", false)],
                Wi,
                None,
                "no writer member",
            ),
            (
                "available",
                &[("a", "rebooting", true), ("b", "available", false)],
                Wi,
                None,
                "a (us-east-1) of DB cluster c (us-east-1) is rebooting",
            ),
            (
                "modifying",
                &[("a", "modifying", true)],
                Wi,
                Some("a"),
                "modifying",
            ),
            (
                "available",
                &[("a", "available", true), ("b", "available", true)],
                Wi,
                None,
                "marks 2 members",
            ),
            ("not-found", &[], Wi, None, "does not exist"),
            (
                "available",
                &[("a", "available", true), ("b", "available", false)],
                Cep,
                Some("c.cluster"),
                "writer member a is available",
            ),
            (
                "failing-over",
                &[("a", "rebooting", false), ("b", "available", true)],
                Cep,
                Some("c.cluster"),
                "follows a failover by itself",
            ),
            ("not-found", &[], Cep, None, "does not exist"),
        ];
        for (status, members, publish, writer, needle) in cases {
            let observed = cluster(status, members);
            let plan = decide_cluster(&ClusterInputs {
                observed: &observed,
                publish,
            });
            assert_eq!(plan.fence, None);
            match (&plan.decision, writer) {
                (Decision::Publish { endpoint, why, .. }, Some(id)) => {
                    assert_eq!(endpoint, &ep(id), "{plan}");
                    assert!(why.contains(needle), "{why}");
                }
                (Decision::NoWriter { why }, None) => assert!(why.contains(needle), "{why}"),
                _ => panic!("{status} {members:?} {publish}: {plan}"),
            }
        }
    }

    fn regional(id: &str, region: &str, status: &str) -> ClusterObserved {
        let at = InstanceRef {
            id: id.into(),
            region: region.into(),
        };
        let mut writer = obs(&format!("{id}-1"), "available", false);
        writer.instance.region = region.into();
        ClusterObserved {
            cluster: at,
            status: status.into(),
            endpoint: (status != crate::aws::UNKNOWN_STATUS).then(|| ep(&format!("{id}.cluster"))),
            members: if status == crate::aws::UNKNOWN_STATUS {
                Vec::new()
            } else {
                vec![crate::aws::ClusterMember {
                    observed: writer,
                    is_writer: true,
                }]
            },
        }
    }

    fn member(id: &str, region: &str, is_writer: bool) -> GlobalMember {
        GlobalMember {
            cluster: InstanceRef {
                id: id.into(),
                region: region.into(),
            },
            is_writer,
        }
    }

    #[test]
    fn global_database_publishes_its_primary_cluster_or_a_detached_one() {
        use Publish::{ClusterEndpoint as Cep, WriterInstance as Wi};
        let e = "us-east-1";
        let w = "us-west-2";
        let normal = Ok(Some(vec![
            member("east", e, true),
            member("west", w, false),
        ]));
        let switched = Ok(Some(vec![
            member("east", e, false),
            member("west", w, true),
        ]));
        let detached = Ok(Some(vec![member("east", e, true)]));
        let gone = Ok(None);
        let unknown_members = Err("throttled by AWS".to_owned());
        // (members, east status, west status, published, publish, expected endpoint, words in the reason)
        type Case<'a> = (
            &'a Result<Option<Vec<GlobalMember>>, String>,
            &'a str,
            &'a str,
            Option<&'a str>,
            Publish,
            Option<&'a str>,
            &'a str,
        );
        let cases: [Case; 12] = [
            (
                &normal,
                "available",
                "available",
                None,
                Wi,
                Some("east-1"),
                "the primary cluster of global database g",
            ),
            (
                &normal,
                "available",
                "available",
                None,
                Cep,
                Some("east.cluster"),
                "cluster-endpoint",
            ),
            // A managed switchover or failover moves IsWriter: the parameters follow.
            (
                &switched,
                "available",
                "available",
                Some("east-1"),
                Wi,
                Some("west-1"),
                "the primary cluster",
            ),
            // Detach-and-promote while the primary region's API is down.
            (
                &detached,
                "unknown",
                "available",
                Some("east-1"),
                Wi,
                Some("west-1"),
                "detached from global database g",
            ),
            (
                &normal,
                "unknown",
                "available",
                Some("east-1"),
                Wi,
                None,
                "west (us-west-2) is a read-only secondary",
            ),
            (
                &unknown_members,
                "available",
                "available",
                Some("east-1"),
                Wi,
                None,
                "unknown role: DescribeGlobalClusters failed (throttled by AWS)",
            ),
            // The old primary comes back still marked writer: the parameters stay on the detached cluster.
            (
                &detached,
                "available",
                "available",
                Some("west-1"),
                Wi,
                Some("west-1"),
                "already point at it",
            ),
            (
                &detached,
                "available",
                "available",
                Some("east-1"),
                Wi,
                Some("east-1"),
                "already point at it",
            ),
            (
                &detached,
                "available",
                "available",
                None,
                Wi,
                Some("east-1"),
                "the primary cluster",
            ),
            (
                &detached,
                "available",
                "available",
                Some("east-1,west-1"),
                Wi,
                Some("west-1"),
                "detached",
            ),
            (
                &gone,
                "available",
                "available",
                Some("west-1"),
                Wi,
                Some("west-1"),
                "no longer exists",
            ),
            (
                &detached,
                "unknown",
                "failing-over",
                None,
                Wi,
                None,
                "east (us-east-1) is unknown (its DescribeDBClusters failed)",
            ),
        ];
        for (members, east, west, published, publish, expected, needle) in cases {
            let mut clusters = [regional("east", e, east), regional("west", w, west)];
            if west == "failing-over" {
                clusters[1].members[0].is_writer = false;
            }
            let published: Vec<Endpoint> = published
                .iter()
                .flat_map(|ids| ids.split(','))
                .map(ep)
                .collect();
            let plan = decide_global(&GlobalInputs {
                id: "g",
                members,
                clusters: &clusters,
                published: &published,
                publish,
            });
            match (&plan.decision, expected) {
                (Decision::Publish { endpoint, why, .. }, Some(id)) => {
                    assert_eq!(endpoint, &ep(id), "{plan}");
                    assert!(why.contains(needle), "{why}");
                }
                (Decision::NoWriter { why }, None) => assert!(why.contains(needle), "{why}"),
                _ => panic!("{members:?} {east} {west}: {plan}"),
            }
        }
    }
}

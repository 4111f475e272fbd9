//! Which instance is the writer, and what to do about it: a pure function of
//! what RDS, SSM and CloudWatch said in this poll, so that every rule is
//! tested without AWS and `--plan` can print the same reasoning the daemon acts on.

use std::collections::HashMap;

use crate::aws::{Endpoint, Observed};
use crate::config::{InstanceRef, Promotion};

/// What one poll saw, as [`decide`] needs it.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The primary first, then the replicas in configuration order.
    pub observed: &'a [Observed],
    /// The endpoints the parameters point at now (those that could be read).
    pub published: &'a [Endpoint],
    /// How many consecutive polls, this one included, found the primary not writable.
    pub primary_down_polls: u32,
    /// The promotion settings.
    pub promotion: &'a Promotion,
    /// ReplicaLag per replica, fetched only when a promotion is being considered:
    /// `Ok(Some(seconds))`, `Ok(None)` for no datapoint, `Err(reason)` when CloudWatch failed.
    pub lags: &'a HashMap<InstanceRef, Result<Option<f64>, String>>,
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
    if inputs.primary_down_polls < p.after_polls {
        return Decision::NoWriter {
            why: format!(
                "{down}; waiting: {} of the {} consecutive polls that promotion.after_polls requires",
                inputs.primary_down_polls, p.after_polls
            ),
        };
    }
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
                        "{down} for {} consecutive polls; its ReplicaLag is {lag} s (limit {} s)",
                        inputs.primary_down_polls, p.max_replica_lag_secs
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

fn describe_status(o: &Observed) -> String {
    if o.is_serving() && o.replica_source.is_some() {
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
        }
    }

    fn ep(id: &str) -> Endpoint {
        Endpoint {
            host: format!("{id}.example"),
            port: 5432,
        }
    }

    fn run(
        observed: &[Observed],
        published: &[Endpoint],
        down: u32,
        promotion: &Promotion,
        lags: &[(&str, Result<Option<f64>, String>)],
    ) -> Plan {
        let lags = lags.iter().map(|(id, l)| (inst(id), l.clone())).collect();
        decide(&Inputs {
            observed,
            published,
            primary_down_polls: down,
            promotion,
            lags: &lags,
        })
    }

    fn enabled(after: u32) -> Promotion {
        Promotion {
            enabled: true,
            after_polls: after,
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
}

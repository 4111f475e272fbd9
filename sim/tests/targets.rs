//! The fleet targets at 1,000 hosts: a change of the refresh policy that
//! breaks them fails here.

use ssm_db_config_sim::{run, verdict, Fleet, Scenario};

#[test]
fn a_thousand_hosts_meet_the_ssm_budget_in_every_scenario() {
    let fleet = Fleet::new(1_000);
    for scenario in Scenario::ALL {
        let report = run(fleet, scenario);
        assert_eq!(verdict(&report).missed, Vec::<String>::new(), "{report:#?}");
    }
}

#[test]
fn runs_are_repeatable() {
    let a = run(Fleet::new(100), Scenario::Failover);
    let b = run(Fleet::new(100), Scenario::Failover);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

//! The example configuration the package installs and the README points to
//! (`packaging/monitor/monitor.toml`) is read by the monitor's own loader, and
//! says what the README says it does.

use std::path::Path;

use ssm_db_monitor::Config;

#[test]
fn packaged_example_configuration_loads_with_safe_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/monitor/monitor.toml");
    let config = Config::from_file(&path).expect("the example loads");
    assert!(config.dry_run, "an unedited file never writes to SSM");
    assert!(!config.promotion.enabled, "promotion is opt-in");
    assert!(!config.promotion.fence_old_primary);
    assert_eq!(
        config.primary.as_ref().map(|p| p.id.as_str()),
        Some("shop-db")
    );
    assert_eq!(config.replicas.len(), 1);
    assert_eq!(
        config.regions(),
        vec!["us-east-1".to_owned(), "us-west-2".to_owned()]
    );
    // Promotion waits well past a 60-120 s Multi-AZ failover.
    let after_polls = config
        .promotion
        .after_polls
        .expect("the example sets after_polls");
    let waited = f64::from(after_polls) * config.poll_interval_secs;
    assert!(waited >= 240.0, "{waited} s");
}

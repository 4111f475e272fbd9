//! The monitor's library against a real moto server (per test), through the
//! counting/fault proxy. RDS state changes are made in moto (StopDBInstance,
//! StartDBInstance, PromoteReadReplica); `PlayedRds` only completes what moto
//! leaves out of a promotion.

mod common;

use common::*;
use ssm_db_monitor::{run, Aws, Decision, Metrics, Mode, Monitor, Rds};

const PUT: &str = "AmazonSSM.PutParameter";

async fn monitor(stack: &Stack, extra: &str, replica: bool, mode: Mode) -> Monitor<PlayedRds> {
    let config = config(stack, extra, replica);
    let aws = Aws::connect(&config).await.unwrap();
    Monitor::new(
        config,
        aws.clone(),
        PlayedRds::new(aws),
        Metrics::new(),
        mode,
    )
}

#[tokio::test]
async fn first_run_publishes_the_primary_endpoint_keeping_the_secure_string() {
    let stack = Stack::start();
    stack.create_instances("shop-db", None).await;
    stack
        .put_param(
            EAST,
            "/shop/db",
            "postgresql://wp:s3cret%40x@placeholder.invalid:5432/shop?sslmode=require",
            true,
        )
        .await;
    let mut m = monitor(&stack, "", false, Mode::Act).await;

    let report = m.poll(&TestClock::new(usize::MAX)).await.unwrap();

    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.published, vec!["/shop/db (us-east-1)".to_string()]);
    let (host, port) = stack.endpoint_of(EAST, "shop-db").await;
    let (value, kind, _) = stack.get_param(EAST, "/shop/db").await;
    assert_eq!(
        value,
        format!("postgresql://wp:s3cret%40x@{host}:{port}/shop?sslmode=require")
    );
    assert_eq!(kind, "SecureString");
    assert_eq!(stack.count(PUT), 1);
}

#[tokio::test]
async fn endpoint_only_string_parameter_stays_a_string_without_a_key_lookup() {
    let stack = Stack::start();
    stack.create_instances("shop-db", None).await;
    stack
        .put_param(
            EAST,
            "/shop/db",
            "postgresql://placeholder.invalid:5432/shop?sslmode=require",
            false,
        )
        .await;
    let mut m = monitor(&stack, "", false, Mode::Act).await;

    let report = m.poll(&TestClock::new(usize::MAX)).await.unwrap();

    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.published, vec!["/shop/db (us-east-1)".to_string()]);
    let (host, port) = stack.endpoint_of(EAST, "shop-db").await;
    let (value, kind, version) = stack.get_param(EAST, "/shop/db").await;
    assert_eq!(
        value,
        format!("postgresql://{host}:{port}/shop?sslmode=require")
    );
    assert_eq!(kind, "String", "the type follows the existing parameter");
    assert_eq!(version, 2);
    assert_eq!(
        stack.count("AmazonSSM.DescribeParameters"),
        0,
        "a String has no key to look up"
    );
}

#[tokio::test]
async fn endpoint_only_secure_string_is_rewritten_under_its_own_key() {
    let stack = Stack::start();
    stack.create_instances("shop-db", None).await;
    stack
        .ssm(EAST)
        .await
        .put_parameter()
        .name("/shop/db")
        .value(r#"{"engine":"postgres","host":"placeholder.invalid","dbname":"shop"}"#)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .key_id("alias/shop-existing")
        .send()
        .await
        .unwrap();
    let mut m = monitor(&stack, "", false, Mode::Act).await;

    let report = m.poll(&TestClock::new(usize::MAX)).await.unwrap();

    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let (host, port) = stack.endpoint_of(EAST, "shop-db").await;
    assert_eq!(
        port, 5432,
        "PostgreSQL's default: the value keeps naming no port"
    );
    let (value, kind, _) = stack.get_param(EAST, "/shop/db").await;
    assert_eq!(
        value,
        format!(r#"{{"engine":"postgres","host":"{host}","dbname":"shop"}}"#)
    );
    assert_eq!(kind, "SecureString");
    let described = stack
        .ssm(EAST)
        .await
        .describe_parameters()
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.parameters()[0].key_id(),
        Some("alias/shop-existing")
    );
}

#[tokio::test]
async fn string_parameter_holding_a_password_is_refused_and_left_alone() {
    let stack = Stack::start();
    stack.create_instances("shop-db", None).await;
    let canary = canary();
    let value = format!("postgresql://wp:{canary}@placeholder.invalid:5432/shop");
    stack.put_param(EAST, "/shop/db", &value, false).await;
    let mut m = monitor(&stack, "", false, Mode::Act).await;
    let (logs, _guard) = Logs::capture();

    let report = m.poll(&TestClock::new(usize::MAX)).await.unwrap();

    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    let msg = report.errors[0].to_string();
    assert_eq!(
        msg,
        format!(
            "refusing to overwrite SSM parameter \"/shop/db\" (us-east-1): {}",
            ssm_db_monitor::monitor::STRING_WITH_PASSWORD
        )
    );
    assert!(!report.errors[0].is_transient());
    assert_eq!(stack.count(PUT), 0);
    assert_eq!(
        stack.get_param(EAST, "/shop/db").await,
        (value, "String".into(), 1)
    );
    assert!(!logs.text().contains(&canary));

    // A key configured for a String parameter is a contradiction: refused too.
    stack
        .put_param(
            EAST,
            "/shop/db",
            "postgresql://placeholder.invalid/shop",
            false,
        )
        .await;
    let mut m = monitor(&stack, "", false, Mode::Act).await;
    let mut config = m.config().clone();
    config.parameters[0].kms_key_id = Some("alias/shop".into());
    let aws = Aws::connect(&config).await.unwrap();
    m = Monitor::new(
        config,
        aws.clone(),
        PlayedRds::new(aws),
        Metrics::new(),
        Mode::Act,
    );
    let report = m.poll(&TestClock::new(usize::MAX)).await.unwrap();
    assert!(
        report.errors[0].to_string().contains("remove kms_key_id"),
        "{:?}",
        report.errors
    );
    assert_eq!(stack.count(PUT), 0);
}

#[tokio::test]
async fn unknown_kms_key_withholds_the_write_unless_a_key_is_configured() {
    let stack = Stack::start();
    stack.create_instances("shop-db", None).await;
    let ssm = stack.ssm(EAST).await;
    let old = "postgresql://wp:pw@placeholder.invalid/shop";
    ssm.put_parameter()
        .name("/shop/db")
        .value(old)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .key_id("alias/shop-existing")
        .send()
        .await
        .unwrap();
    // The monitor's role lacks ssm:DescribeParameters; every other call passes.
    stack.fault_targets("denied", &["AmazonSSM.DescribeParameters"]);
    let metrics = Metrics::new();
    let config = config(&stack, "", false);
    let aws = Aws::connect(&config).await.unwrap();
    let mut m = Monitor::new(
        config.clone(),
        aws.clone(),
        PlayedRds::new(aws),
        metrics.clone(),
        Mode::Act,
    );

    let report = m.poll(&TestClock::new(usize::MAX)).await.unwrap();

    assert!(report.published.is_empty());
    assert!(
        matches!(
            report.errors.as_slice(),
            [ssm_db_monitor::Error::KeyUnknown {
                transient: false,
                ..
            }]
        ),
        "{:?}",
        report.errors
    );
    let msg = report.errors[0].to_string();
    assert!(msg.contains("AccessDeniedException"), "{msg}");
    assert!(msg.contains("set kms_key_id"), "{msg}");
    assert_eq!(stack.count("AmazonSSM.DescribeParameters"), 1);
    assert_eq!(stack.count(PUT), 0, "no write with a guessed key");
    assert!(
        metrics
            .render()
            .contains("ssm_db_monitor_api_errors_total 1"),
        "{}",
        metrics.render()
    );
    let (value, kind, version) = stack.get_param(EAST, "/shop/db").await;
    assert_eq!(
        (value.as_str(), kind.as_str(), version),
        (old, "SecureString", 1)
    );

    // Throttling is the same refusal, but worth retrying.
    stack.fault_targets("throttle", &["AmazonSSM.DescribeParameters"]);
    let report = m.poll(&TestClock::new(usize::MAX)).await.unwrap();
    assert!(report.errors[0].is_transient(), "{:?}", report.errors);
    assert_eq!(stack.count(PUT), 0);

    // With the key named in the configuration, no lookup is needed.
    let mut with_key = config;
    with_key.parameters[0].kms_key_id = Some("alias/shop-existing".into());
    let aws = Aws::connect(&with_key).await.unwrap();
    let mut m = Monitor::new(
        with_key,
        aws.clone(),
        PlayedRds::new(aws),
        Metrics::new(),
        Mode::Act,
    );
    stack.reset_counts();
    stack.fault_targets("denied", &["AmazonSSM.DescribeParameters"]);
    let report = m.poll(&TestClock::new(usize::MAX)).await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(stack.count(PUT), 1);
    assert_eq!(stack.count("AmazonSSM.DescribeParameters"), 0);
    let key = stack
        .ssm(EAST)
        .await
        .describe_parameters()
        .send()
        .await
        .unwrap()
        .parameters()[0]
        .key_id()
        .map(str::to_owned);
    assert_eq!(key.as_deref(), Some("alias/shop-existing"));
}

#[tokio::test]
async fn unchanged_endpoint_is_never_written_again() {
    let stack = Stack::start();
    stack.create_instances("shop-db", None).await;
    stack
        .put_param(
            EAST,
            "/shop/db",
            "postgresql://wp:pw@placeholder.invalid/shop",
            true,
        )
        .await;
    let mut m = monitor(&stack, "", false, Mode::Act).await;
    let clock = TestClock::new(usize::MAX);
    m.poll(&clock).await.unwrap();
    let (_, _, version) = stack.get_param(EAST, "/shop/db").await;
    stack.reset_counts();

    for _ in 0..5 {
        let report = m.poll(&clock).await.unwrap();
        assert!(
            report.published.is_empty() && report.errors.is_empty(),
            "{report:?}"
        );
    }

    assert_eq!(stack.count(PUT), 0, "no PutParameter when nothing changed");
    assert_eq!(
        stack.count("AmazonSSM.GetParameter"),
        5,
        "the parameter is read once per poll"
    );
    assert_eq!(stack.count("rds.DescribeDBInstances"), 5);
    assert_eq!(stack.get_param(EAST, "/shop/db").await.2, version);
}

#[tokio::test]
async fn new_writer_is_published_once_keeping_credentials_and_json_layout() {
    let stack = Stack::start();
    stack
        .create_instances("shop-db", Some("shop-db-west"))
        .await;
    let (east_host, east_port) = stack.endpoint_of(EAST, "shop-db").await;
    let json = format!(
        "{{\n  \"username\": \"wp\",\n  \"password\": \"p@ss:/?#% '\\\"ä\",\n  \"engine\": \"postgres\",\n  \"host\": \"{east_host}\",\n  \"port\": {east_port},\n  \"dbname\": \"shop\",\n  \"dbInstanceIdentifier\": \"shop-db\"\n}}"
    );
    stack.put_param(EAST, "/shop/db", &json, true).await;
    let mut m = monitor(&stack, "", true, Mode::Act).await;
    let clock = TestClock::new(usize::MAX);
    assert!(
        m.poll(&clock).await.unwrap().published.is_empty(),
        "already points at the primary"
    );

    // An operator promotes the replica by hand and the old primary is gone:
    // the replica is now the only writable instance.
    stack
        .rds(EAST)
        .await
        .stop_db_instance()
        .db_instance_identifier("shop-db")
        .send()
        .await
        .unwrap();
    m.rds()
        .promote(&ssm_db_monitor::InstanceRef {
            id: "shop-db-west".into(),
            region: WEST.into(),
        })
        .await
        .unwrap();
    stack.reset_counts();
    for _ in 0..3 {
        m.poll(&clock).await.unwrap();
    }

    assert_eq!(stack.count(PUT), 1, "published exactly once");
    let (west_host, west_port) = stack.endpoint_of(WEST, "shop-db-west").await;
    assert_ne!(west_host, east_host);
    let (value, kind, _) = stack.get_param(EAST, "/shop/db").await;
    assert_eq!(
        value,
        json.replace(&east_host, &west_host)
            .replace(&format!(": {east_port},"), &format!(": {west_port},"))
    );
    assert_eq!(kind, "SecureString");
}

#[tokio::test]
async fn unavailable_primary_without_promotion_writes_nothing_and_says_why() {
    let stack = Stack::start();
    stack
        .create_instances("shop-db", Some("shop-db-west"))
        .await;
    stack
        .put_param(
            EAST,
            "/shop/db",
            "postgresql://wp:pw@placeholder.invalid/shop",
            true,
        )
        .await;
    let mut m = monitor(&stack, "", true, Mode::Act).await;
    let clock = TestClock::new(usize::MAX);
    m.poll(&clock).await.unwrap();
    let before = stack.get_param(EAST, "/shop/db").await;
    stack
        .rds(EAST)
        .await
        .stop_db_instance()
        .db_instance_identifier("shop-db")
        .send()
        .await
        .unwrap();
    stack.reset_counts();

    let (logs, _guard) = Logs::capture();
    for _ in 0..4 {
        let report = m.poll(&clock).await.unwrap();
        assert!(
            matches!(report.plan.decision, Decision::NoWriter { .. }),
            "{}",
            report.plan
        );
    }

    assert_eq!(stack.count(PUT), 0);
    assert_eq!(stack.count("rds.PromoteReadReplica"), 0);
    assert_eq!(stack.get_param(EAST, "/shop/db").await, before);
    let text = logs.text();
    assert!(
        text.contains("not publishing: no writable instance"),
        "{text}"
    );
    assert!(text.contains("shop-db (us-east-1) is stopped"), "{text}");
    assert!(
        text.contains("promotion is disabled (promotion.enabled = false)"),
        "{text}"
    );
}

const PROMOTE: &str = "\n[promotion]\nenabled = true\nafter_polls = 3\nmax_replica_lag_secs = 10\nfence_old_primary = true\n";

#[tokio::test]
async fn promotion_happens_after_n_polls_not_before_then_old_primary_is_fenced() {
    let stack = Stack::start();
    stack
        .create_instances("shop-db", Some("shop-db-west"))
        .await;
    stack
        .put_param(
            EAST,
            "/shop/db",
            "postgresql://wp:pw@placeholder.invalid:5432/shop",
            true,
        )
        .await;
    stack
        .put_param(
            WEST,
            "/shop/db",
            "postgresql://wp-west:pw-west@placeholder.invalid/shop",
            true,
        )
        .await;
    stack.put_replica_lag(WEST, "shop-db-west", 2.0).await;
    let extra = format!("{PROMOTE}\n[[parameters]]\nname = \"/shop/db\"\nregion = \"us-west-2\"\n");
    let mut m = monitor(&stack, &extra, true, Mode::Act).await;
    let clock = TestClock::new(usize::MAX);
    m.poll(&clock).await.unwrap();
    // The stopped primary's endpoint refuses connections (the second signal).
    m.rds().map_endpoint("shop-db", closed_port());
    stack
        .rds(EAST)
        .await
        .stop_db_instance()
        .db_instance_identifier("shop-db")
        .send()
        .await
        .unwrap();
    stack.reset_counts();

    for poll in 1..=2 {
        let report = m.poll(&clock).await.unwrap();
        assert!(report.promoted.is_none(), "poll {poll}: {}", report.plan);
        assert!(
            matches!(&report.plan.decision, Decision::NoWriter { why } if why.contains(&format!("{poll} of the 3"))),
            "{}",
            report.plan
        );
    }
    assert_eq!(
        stack.count("rds.PromoteReadReplica"),
        0,
        "not before 3 polls"
    );
    assert_eq!(stack.count(PUT), 0);

    let report = m.poll(&clock).await.unwrap();
    assert_eq!(
        report.promoted.as_ref().map(|r| r.id.as_str()),
        Some("shop-db-west"),
        "{}",
        report.plan
    );
    assert_eq!(stack.count("rds.PromoteReadReplica"), 1);
    assert_eq!(stack.count(PUT), 2, "one write per region");
    let (west_host, west_port) = stack.endpoint_of(WEST, "shop-db-west").await;
    assert_eq!(
        stack.get_param(EAST, "/shop/db").await.0,
        format!("postgresql://wp:pw@{west_host}:{west_port}/shop")
    );
    assert_eq!(
        stack.get_param(WEST, "/shop/db").await.0,
        format!("postgresql://wp-west:pw-west@{west_host}/shop"),
        "each region keeps its own credentials"
    );

    // The old primary comes back: the parameters stay on the promoted
    // replica, and the old primary is stopped.
    stack
        .rds(EAST)
        .await
        .start_db_instance()
        .db_instance_identifier("shop-db")
        .send()
        .await
        .unwrap();
    let report = m.poll(&clock).await.unwrap();
    assert!(
        matches!(&report.plan.decision, Decision::Publish { instance, .. } if instance.id == "shop-db-west"),
        "{}",
        report.plan
    );
    assert_eq!(
        report.fenced.as_ref().map(|r| r.id.as_str()),
        Some("shop-db")
    );
    assert_eq!(stack.count("rds.StopDBInstance"), 1);
    assert_eq!(stack.count(PUT), 2, "no write back to the old primary");
    let status = stack
        .rds(EAST)
        .await
        .describe_db_instances()
        .db_instance_identifier("shop-db")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.db_instances()[0].db_instance_status(),
        Some("stopped")
    );
}

#[tokio::test]
async fn replica_lag_over_the_threshold_blocks_promotion() {
    let stack = Stack::start();
    stack
        .create_instances("shop-db", Some("shop-db-west"))
        .await;
    stack
        .put_param(
            EAST,
            "/shop/db",
            "postgresql://wp:pw@placeholder.invalid/shop",
            true,
        )
        .await;
    stack.put_replica_lag(WEST, "shop-db-west", 45.0).await;
    let mut m = monitor(&stack, PROMOTE, true, Mode::Act).await;
    m.rds().map_endpoint("shop-db", closed_port());
    let clock = TestClock::new(usize::MAX);
    m.poll(&clock).await.unwrap();
    stack
        .rds(EAST)
        .await
        .stop_db_instance()
        .db_instance_identifier("shop-db")
        .send()
        .await
        .unwrap();
    stack.reset_counts();

    let (logs, _guard) = Logs::capture();
    for _ in 0..5 {
        let report = m.poll(&clock).await.unwrap();
        assert!(report.promoted.is_none());
    }

    assert_eq!(stack.count("rds.PromoteReadReplica"), 0);
    assert_eq!(stack.count(PUT), 0);
    assert_eq!(
        stack.count("monitoring.GetMetricStatistics"),
        3,
        "lag checked from the 3rd poll on"
    );
    let text = logs.text();
    assert!(
        text.contains("ReplicaLag 45 s is over promotion.max_replica_lag_secs = 10 s"),
        "{text}"
    );
}

#[tokio::test]
async fn api_errors_and_throttling_back_off_without_writing_or_crashing() {
    let stack = Stack::start();
    stack.create_instances("shop-db", None).await;
    stack
        .put_param(
            EAST,
            "/shop/db",
            "postgresql://wp:pw@placeholder.invalid/shop",
            true,
        )
        .await;
    let mut m = monitor(&stack, "max_backoff_secs = 6\n", false, Mode::Act).await;
    let (logs, _guard) = Logs::capture();

    for mode in ["throttle", "500"] {
        stack.fault(mode);
        let clock = TestClock::new(4);
        run(&mut m, &clock, clock.done.notified()).await.unwrap();
        let secs: Vec<f64> = clock
            .sleeps
            .borrow()
            .iter()
            .map(|d| d.as_secs_f64())
            .collect();
        assert_eq!(
            secs,
            vec![2.0, 4.0, 6.0, 6.0],
            "{mode}: doubling from the 1 s interval, capped at 6 s"
        );
        assert_eq!(stack.count(PUT), 0, "{mode}");
    }
    let text = logs.text();
    assert!(text.contains("throttled by AWS"), "{text}");
    assert!(text.contains("InternalServerError (HTTP 500)"), "{text}");
    assert!(text.contains("backing off"), "{text}");

    // Once AWS answers again the loop recovers: it publishes and polls at the normal interval.
    stack.fault("none");
    let clock = TestClock::new(2);
    run(&mut m, &clock, clock.done.notified()).await.unwrap();
    assert_eq!(
        clock
            .sleeps
            .borrow()
            .iter()
            .map(|d| d.as_secs_f64())
            .collect::<Vec<_>>(),
        vec![1.0, 1.0]
    );
    assert_eq!(stack.count(PUT), 1);
}

#[tokio::test]
async fn malformed_current_value_is_refused_and_the_reason_is_given() {
    let stack = Stack::start();
    stack.create_instances("shop-db", None).await;
    let canary = canary();
    let bad = format!("{{\"engine\":\"postgres\",\"host\":\"old\",\"username\":\"wp\",\"password\":\"{canary}\"}}");
    stack.put_param(EAST, "/shop/db", &bad, true).await;
    let mut m = monitor(&stack, "", false, Mode::Act).await;
    let (logs, _guard) = Logs::capture();

    let report = m.poll(&TestClock::new(usize::MAX)).await.unwrap();

    assert_eq!(report.errors.len(), 1);
    let msg = report.errors[0].to_string();
    assert_eq!(
        msg,
        "refusing to overwrite SSM parameter \"/shop/db\" (us-east-1): its current value is not usable: field \"dbname\" is missing or empty"
    );
    assert_eq!(stack.count(PUT), 0);
    assert_eq!(stack.get_param(EAST, "/shop/db").await.0, bad);
    assert!(!logs.text().contains(&canary));
}

#[tokio::test]
async fn missing_parameter_is_never_created() {
    let stack = Stack::start();
    stack.create_instances("shop-db", None).await;
    let mut m = monitor(&stack, "", false, Mode::Act).await;

    let report = m.poll(&TestClock::new(usize::MAX)).await.unwrap();

    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0]
            .to_string()
            .contains("it never creates one"),
        "{}",
        report.errors[0]
    );
    assert_eq!(stack.count(PUT), 0);
}

#[tokio::test]
async fn dry_run_logs_the_write_and_writes_nothing() {
    let stack = Stack::start();
    stack.create_instances("shop-db", None).await;
    stack
        .put_param(
            EAST,
            "/shop/db",
            "postgresql://wp:pw@placeholder.invalid/shop",
            true,
        )
        .await;
    let mut m = monitor(&stack, "dry_run = true\n", false, Mode::Act).await;
    let (logs, _guard) = Logs::capture();

    let report = m.poll(&TestClock::new(usize::MAX)).await.unwrap();

    assert_eq!(report.published.len(), 1);
    assert_eq!(stack.count(PUT), 0);
    assert!(
        logs.text().contains("dry run: would publish"),
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn canary_password_never_reaches_the_logs_even_at_trace_level() {
    let stack = Stack::start();
    stack
        .create_instances("shop-db", Some("shop-db-west"))
        .await;
    let canary = canary();
    stack
        .put_param(
            EAST,
            "/shop/db",
            &format!("postgresql://wp:{canary}@placeholder.invalid/shop"),
            true,
        )
        .await;
    stack.put_replica_lag(WEST, "shop-db-west", 1.0).await;
    let extra = PROMOTE.replace("after_polls = 3", "after_polls = 1");
    let mut m = monitor(&stack, &extra, true, Mode::Act).await;
    m.rds().map_endpoint("shop-db", closed_port());
    let (logs, _guard) = Logs::capture();
    let clock = TestClock::new(usize::MAX);

    m.poll(&clock).await.unwrap();
    stack
        .rds(EAST)
        .await
        .stop_db_instance()
        .db_instance_identifier("shop-db")
        .send()
        .await
        .unwrap();
    let report = m.poll(&clock).await.unwrap();

    assert!(report.promoted.is_some(), "{}", report.plan);
    assert_eq!(stack.count(PUT), 2);
    let text = logs.text();
    assert!(
        text.contains("published the writer's endpoint"),
        "the capture works"
    );
    assert!(
        text.contains("PutParameter"),
        "SDK trace logs were captured too"
    );
    assert!(!text.contains(&canary), "the canary leaked into the logs");
}

#[tokio::test]
async fn overwrite_keeps_the_parameters_kms_key_unless_one_is_configured() {
    let stack = Stack::start();
    stack.create_instances("shop-db", None).await;
    let ssm = stack.ssm(EAST).await;
    ssm.put_parameter()
        .name("/shop/db")
        .value("postgresql://wp:pw@placeholder.invalid/shop")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .key_id("alias/shop-existing")
        .send()
        .await
        .unwrap();
    let key_of = || async {
        let out = stack
            .ssm(EAST)
            .await
            .describe_parameters()
            .send()
            .await
            .unwrap();
        out.parameters()[0].key_id().map(str::to_owned)
    };

    let mut m = monitor(&stack, "", false, Mode::Act).await;
    assert_eq!(
        m.poll(&TestClock::new(usize::MAX))
            .await
            .unwrap()
            .published
            .len(),
        1
    );
    assert_eq!(
        key_of().await.as_deref(),
        Some("alias/shop-existing"),
        "the existing key is kept"
    );
    assert_eq!(
        stack.count("AmazonSSM.DescribeParameters"),
        1,
        "looked up only when writing"
    );

    stack
        .put_param(
            EAST,
            "/shop/db",
            "postgresql://wp:pw@placeholder.invalid/shop",
            true,
        )
        .await;
    let config = config(&stack, "", false);
    let mut with_key = config.clone();
    with_key.parameters[0].kms_key_id = Some("alias/shop-configured".into());
    let aws = Aws::connect(&with_key).await.unwrap();
    let mut m = Monitor::new(
        with_key,
        aws.clone(),
        PlayedRds::new(aws),
        Metrics::new(),
        Mode::Act,
    );
    assert_eq!(
        m.poll(&TestClock::new(usize::MAX))
            .await
            .unwrap()
            .published
            .len(),
        1
    );
    assert_eq!(
        key_of().await.as_deref(),
        Some("alias/shop-configured"),
        "the configured key wins"
    );
}

#[tokio::test]
async fn promotion_waits_while_the_primary_still_accepts_connections() {
    let stack = Stack::start();
    stack
        .create_instances("shop-db", Some("shop-db-west"))
        .await;
    stack
        .put_param(
            EAST,
            "/shop/db",
            "postgresql://wp:pw@placeholder.invalid/shop",
            true,
        )
        .await;
    stack.put_replica_lag(WEST, "shop-db-west", 1.0).await;
    let extra = PROMOTE.replace("after_polls = 3", "after_polls = 1");
    let mut m = monitor(&stack, &extra, true, Mode::Act).await;
    // The primary's endpoint still accepts connections while RDS reports it stopped.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    m.rds()
        .map_endpoint("shop-db", listener.local_addr().unwrap().port());
    let clock = TestClock::new(usize::MAX);
    m.poll(&clock).await.unwrap();
    stack
        .rds(EAST)
        .await
        .stop_db_instance()
        .db_instance_identifier("shop-db")
        .send()
        .await
        .unwrap();
    stack.reset_counts();

    for _ in 0..3 {
        let report = m.poll(&clock).await.unwrap();
        assert!(
            matches!(&report.plan.decision, Decision::NoWriter { why } if why.contains("succeeded: not promoting on RDS's word alone")),
            "{}",
            report.plan
        );
    }
    assert_eq!(stack.count("rds.PromoteReadReplica"), 0);

    drop(listener);
    let report = m.poll(&clock).await.unwrap();
    assert_eq!(
        report.promoted.as_ref().map(|r| r.id.as_str()),
        Some("shop-db-west"),
        "{}",
        report.plan
    );
    assert!(
        report
            .plan
            .to_string()
            .contains("does not answer (TCP connection to 127.0.0.1:"),
        "{}",
        report.plan
    );
}

#[tokio::test]
async fn rotation_that_lands_during_a_poll_is_not_reverted() {
    let stack = Stack::start();
    stack
        .create_instances("shop-db", Some("shop-db-west"))
        .await;
    let old = "postgresql://wp:old-password@placeholder.invalid/shop";
    stack.put_param(EAST, "/shop/db", old, true).await;
    stack.put_replica_lag(WEST, "shop-db-west", 1.0).await;
    let extra = PROMOTE.replace("after_polls = 3", "after_polls = 1");
    let mut m = monitor(&stack, &extra, true, Mode::Act).await;
    m.rds().map_endpoint("shop-db", closed_port());
    let clock = TestClock::new(usize::MAX);
    m.poll(&clock).await.unwrap();
    let (primary_value, _, _) = stack.get_param(EAST, "/shop/db").await;
    stack
        .rds(EAST)
        .await
        .stop_db_instance()
        .db_instance_identifier("shop-db")
        .send()
        .await
        .unwrap();
    // A password rotation writes the parameter while the monitor promotes.
    let rotated = primary_value.replace("old-password", "new-password");
    *m.rds().rotate_on_promote.borrow_mut() =
        Some((stack.ssm(EAST).await, "/shop/db".into(), rotated.clone()));

    let report = m.poll(&clock).await.unwrap();

    assert!(report.promoted.is_some(), "{}", report.plan);
    assert!(
        matches!(
            report.errors.as_slice(),
            [ssm_db_monitor::Error::Changed {
                read: 2,
                now: 3,
                ..
            }]
        ),
        "{:?}",
        report.errors
    );
    assert!(report.errors[0].is_transient());
    assert_eq!(
        stack.get_param(EAST, "/shop/db").await.0,
        rotated,
        "the rotation stands"
    );

    // The next poll starts from the rotated value: new password, new writer.
    m.poll(&clock).await.unwrap();
    let (west_host, west_port) = stack.endpoint_of(WEST, "shop-db-west").await;
    assert_eq!(
        stack.get_param(EAST, "/shop/db").await.0,
        format!("postgresql://wp:new-password@{west_host}:{west_port}/shop")
    );
}

const DESCRIBE: &str = "rds.DescribeDBInstances";

#[tokio::test]
async fn unreachable_replica_region_does_not_stop_publishing_the_primary() {
    let stack = Stack::start();
    stack
        .create_instances("shop-db", Some("shop-db-west"))
        .await;
    stack
        .put_param(
            EAST,
            "/shop/db",
            "postgresql://wp:pw@placeholder.invalid/shop",
            true,
        )
        .await;
    let mut m = monitor(&stack, "", true, Mode::Act).await;
    stack.fault_only("500", DESCRIBE, WEST);

    let report = m.poll(&TestClock::new(usize::MAX)).await.unwrap();

    assert!(
        matches!(&report.plan.decision, Decision::Publish { instance, .. } if instance.id == "shop-db"),
        "{}",
        report.plan
    );
    assert_eq!(report.published, vec!["/shop/db (us-east-1)".to_string()]);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(
        report.errors[0]
            .to_string()
            .contains("DescribeDBInstances on shop-db-west (us-west-2)"),
        "{}",
        report.errors[0]
    );
    let (host, _) = stack.endpoint_of(EAST, "shop-db").await;
    assert!(stack.get_param(EAST, "/shop/db").await.0.contains(&host));
}

/// The primary's region's RDS API fails (HTTP 500 for every
/// DescribeDBInstances signed for us-east-1) while us-west-2 answers.
#[tokio::test]
async fn primary_region_api_outage_still_publishes_a_replica_promoted_by_hand() {
    let stack = Stack::start();
    stack
        .create_instances("shop-db", Some("shop-db-west"))
        .await;
    let value = "postgresql://wp:pw@placeholder.invalid/shop";
    stack.put_param(EAST, "/shop/db", value, true).await;
    stack.put_param(WEST, "/shop/db", value, true).await;
    let extra = "\n[[parameters]]\nname = \"/shop/db\"\nregion = \"us-west-2\"\n";
    let mut m = monitor(&stack, extra, true, Mode::Act).await;
    let clock = TestClock::new(usize::MAX);
    m.poll(&clock).await.unwrap();
    stack.fault_only("500", DESCRIBE, EAST);

    // RDS cannot say anything about the primary, and the replica is a replica: nothing moves.
    let report = m.poll(&clock).await.unwrap();
    assert!(
        matches!(&report.plan.decision, Decision::NoWriter { why } if why.contains("shop-db (us-east-1) is unknown (its DescribeDBInstances failed")),
        "{}",
        report.plan
    );
    assert!(report.published.is_empty());
    assert!(
        report.errors[0]
            .to_string()
            .contains("DescribeDBInstances on shop-db (us-east-1)"),
        "{:?}",
        report.errors
    );

    // An operator promotes the replica in us-west-2: the next poll publishes it everywhere.
    stack
        .rds(WEST)
        .await
        .promote_read_replica()
        .db_instance_identifier("shop-db-west")
        .send()
        .await
        .unwrap();
    m.rds()
        .promoted
        .borrow_mut()
        .insert(ssm_db_monitor::InstanceRef {
            id: "shop-db-west".into(),
            region: WEST.into(),
        });
    let report = m.poll(&clock).await.unwrap();
    assert!(
        matches!(&report.plan.decision, Decision::Publish { instance, .. } if instance.id == "shop-db-west"),
        "{}",
        report.plan
    );
    assert_eq!(report.published.len(), 2, "{report:?}");
    // 5432 is PostgreSQL's default port, which the value did not spell either.
    let (west_host, _) = stack.endpoint_of(WEST, "shop-db-west").await;
    for region in [EAST, WEST] {
        assert_eq!(
            stack.get_param(region, "/shop/db").await.0,
            format!("postgresql://wp:pw@{west_host}/shop"),
            "{region}"
        );
    }
}

#[tokio::test]
async fn unseen_primary_is_promoted_away_only_after_unknown_after_polls_without_backoff() {
    let stack = Stack::start();
    stack
        .create_instances("shop-db", Some("shop-db-west"))
        .await;
    let value = "postgresql://wp:pw@placeholder.invalid/shop";
    stack.put_param(WEST, "/shop/db", value, true).await;
    stack.put_replica_lag(WEST, "shop-db-west", 1.0).await;
    let extra = "\n[promotion]\nenabled = true\nafter_polls = 1\nunknown_after_polls = 3\n";
    // The monitor runs in the DR region: its parameter is in us-west-2.
    let toml = config_toml(&stack, extra, true).replace(
        "[[parameters]]\nname = \"/shop/db\"\nregion = \"us-east-1\"",
        "[[parameters]]\nname = \"/shop/db\"\nregion = \"us-west-2\"",
    );
    let config = ssm_db_monitor::Config::from_toml(&toml).unwrap();
    let aws = Aws::connect(&config).await.unwrap();
    let mut m = Monitor::new(
        config,
        aws.clone(),
        PlayedRds::new(aws),
        Metrics::new(),
        Mode::Act,
    );
    // The primary's endpoint (learnt at the first poll) refuses connections: the second signal.
    m.rds().map_endpoint("shop-db", closed_port());
    m.poll(&TestClock::new(usize::MAX)).await.unwrap();
    stack.reset_counts(); // counts and fault
    stack.fault_only("500", DESCRIBE, EAST);
    let (logs, _guard) = Logs::capture();

    let clock = TestClock::new(3);
    run(&mut m, &clock, clock.done.notified()).await.unwrap();

    let text = logs.text();
    assert!(
        text.contains("1 of the 3 consecutive polls without seeing the primary"),
        "{text}"
    );
    assert!(
        text.contains("2 of the 3 consecutive polls without seeing the primary"),
        "{text}"
    );
    assert_eq!(stack.count("rds.PromoteReadReplica"), 1);
    assert!(
        text.contains("unseen for 3 consecutive polls (promotion.unknown_after_polls = 3) and the primary's endpoint does not answer"),
        "{text}"
    );
    assert_eq!(
        clock
            .sleeps
            .borrow()
            .iter()
            .map(|d| d.as_secs_f64())
            .collect::<Vec<_>>(),
        vec![1.0, 1.0, 1.0],
        "an unreachable region is no reason to back off"
    );
    // The first poll published the primary's (mapped) port, so the port is spelt.
    let (west_host, west_port) = stack.endpoint_of(WEST, "shop-db-west").await;
    assert_eq!(
        stack.get_param(WEST, "/shop/db").await.0,
        format!("postgresql://wp:pw@{west_host}:{west_port}/shop")
    );
}

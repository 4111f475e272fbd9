//! DB clusters (Aurora, Multi-AZ DB clusters) and blue/green deployments
//! against a moto server per test: the cluster, its members and the failover
//! are moto's own (CreateDBCluster, CreateDBInstance into the cluster,
//! FailoverDBCluster, CreateBlueGreenDeployment, SwitchoverBlueGreenDeployment).

mod common;

use common::*;
use ssm_db_monitor::{Aws, Decision, Error, Metrics, Mode, Monitor};

const PUT: &str = "AmazonSSM.PutParameter";
const VALUE: &str = "postgresql://wp:pw@placeholder.invalid:5432/shop?sslmode=require";

/// A cluster with `members` instances; the first one created is the writer.
async fn create_cluster(stack: &Stack, id: &str, engine: &str, members: usize) {
    let rds = stack.rds(EAST).await;
    let mut cluster = rds
        .create_db_cluster()
        .db_cluster_identifier(id)
        .engine(engine)
        .master_username("admin")
        .master_user_password("rds-master-not-used");
    if engine == "postgres" {
        // A Multi-AZ DB cluster: instance class and provisioned storage on the cluster.
        cluster = cluster
            .db_cluster_instance_class("db.m6gd.large")
            .allocated_storage(100)
            .storage_type("io1")
            .iops(1000);
    }
    cluster.send().await.expect("create cluster");
    for n in 1..=members {
        rds.create_db_instance()
            .db_instance_identifier(format!("{id}-{n}"))
            .db_cluster_identifier(id)
            .engine(engine)
            .db_instance_class("db.r6g.large")
            .send()
            .await
            .expect("create member");
    }
}

async fn failover(stack: &Stack, id: &str) {
    stack
        .rds(EAST)
        .await
        .failover_db_cluster()
        .db_cluster_identifier(id)
        .send()
        .await
        .expect("FailoverDBCluster");
}

async fn cluster_endpoint(stack: &Stack, id: &str) -> (String, u16) {
    let out = stack
        .rds(EAST)
        .await
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
        .unwrap();
    let c = &out.db_clusters()[0];
    (c.endpoint().unwrap().to_owned(), c.port().unwrap() as u16)
}

fn cluster_toml(stack: &Stack, id: &str, publish: &str) -> String {
    format!(
        "poll_interval_secs = 1\napi_timeout_secs = 5\nendpoint_url = \"{}\"\n[cluster]\nid = \"{id}\"\nregion = \"us-east-1\"\npublish = \"{publish}\"\n[[parameters]]\nname = \"/shop/db\"\nregion = \"us-east-1\"\n",
        stack.proxy_url
    )
}

async fn monitor_for(toml: &str) -> Monitor<PlayedRds> {
    let config = ssm_db_monitor::Config::from_toml(toml).expect("valid test config");
    let aws = Aws::connect(&config).await.unwrap();
    Monitor::new(
        config,
        aws.clone(),
        PlayedRds::new(aws),
        Metrics::new(),
        Mode::Act,
    )
}

fn value_at((host, port): (String, u16)) -> String {
    VALUE.replace("placeholder.invalid:5432", &format!("{host}:{port}"))
}

#[tokio::test]
async fn writer_instance_mode_follows_an_aurora_failover_at_the_next_poll() {
    let stack = Stack::start();
    create_cluster(&stack, "shop-aurora", "aurora-postgresql", 2).await;
    stack.put_param(EAST, "/shop/db", VALUE, true).await;
    let mut m = monitor_for(&cluster_toml(&stack, "shop-aurora", "writer-instance")).await;
    let clock = TestClock::new(usize::MAX);

    let report = m.poll(&clock).await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let first = stack.endpoint_of(EAST, "shop-aurora-1").await;
    assert_eq!(
        stack.get_param(EAST, "/shop/db").await.0,
        value_at(first.clone())
    );
    assert!(
        report
            .plan
            .to_string()
            .contains("writer member of DB cluster shop-aurora"),
        "{}",
        report.plan
    );
    assert!(
        m.poll(&clock).await.unwrap().published.is_empty(),
        "no write when nothing changed"
    );

    failover(&stack, "shop-aurora").await;
    stack.reset_counts();
    let report = m.poll(&clock).await.unwrap();

    assert!(
        matches!(&report.plan.decision, Decision::Publish { instance, .. } if instance.id == "shop-aurora-2"),
        "{}",
        report.plan
    );
    let second = stack.endpoint_of(EAST, "shop-aurora-2").await;
    assert_ne!(first, second);
    assert_eq!(stack.get_param(EAST, "/shop/db").await.0, value_at(second));
    assert_eq!(stack.count(PUT), 1);
    assert_eq!(stack.count("rds.DescribeDBClusters"), 1);
    assert_eq!(
        stack.count("rds.DescribeDBInstances"),
        1,
        "all members in one call"
    );
}

#[tokio::test]
async fn cluster_endpoint_mode_publishes_the_cluster_endpoint_and_keeps_it_through_a_failover() {
    let stack = Stack::start();
    create_cluster(&stack, "shop-aurora", "aurora-postgresql", 2).await;
    stack.put_param(EAST, "/shop/db", VALUE, true).await;
    let mut m = monitor_for(&cluster_toml(&stack, "shop-aurora", "cluster-endpoint")).await;
    let clock = TestClock::new(usize::MAX);

    m.poll(&clock).await.unwrap();
    let expected = value_at(cluster_endpoint(&stack, "shop-aurora").await);
    assert!(expected.contains(".cluster-"), "{expected}");
    assert_eq!(stack.get_param(EAST, "/shop/db").await.0, expected);

    failover(&stack, "shop-aurora").await;
    stack.reset_counts();
    for _ in 0..3 {
        let report = m.poll(&clock).await.unwrap();
        assert!(
            report.published.is_empty() && report.errors.is_empty(),
            "{report:?}"
        );
        assert!(
            report
                .plan
                .to_string()
                .contains("writer member shop-aurora-2 is available"),
            "{}",
            report.plan
        );
    }
    assert_eq!(
        stack.count(PUT),
        0,
        "the cluster endpoint follows the failover by itself"
    );

    // Someone points the parameter elsewhere: the monitor puts the cluster endpoint back.
    stack.put_param(EAST, "/shop/db", VALUE, true).await;
    m.poll(&clock).await.unwrap();
    assert_eq!(stack.get_param(EAST, "/shop/db").await.0, expected);
}

#[tokio::test]
async fn multi_az_db_cluster_writer_is_followed_after_failover() {
    let stack = Stack::start();
    create_cluster(&stack, "shop-maz", "postgres", 2).await;
    stack.put_param(EAST, "/shop/db", VALUE, true).await;
    let mut m = monitor_for(&cluster_toml(&stack, "shop-maz", "writer-instance")).await;
    let clock = TestClock::new(usize::MAX);
    m.poll(&clock).await.unwrap();
    assert_eq!(
        stack.get_param(EAST, "/shop/db").await.0,
        value_at(stack.endpoint_of(EAST, "shop-maz-1").await)
    );

    failover(&stack, "shop-maz").await;
    m.poll(&clock).await.unwrap();

    assert_eq!(
        stack.get_param(EAST, "/shop/db").await.0,
        value_at(stack.endpoint_of(EAST, "shop-maz-2").await)
    );
}

#[tokio::test]
async fn cluster_member_configured_as_primary_is_refused_naming_the_cluster() {
    let stack = Stack::start();
    create_cluster(&stack, "shop-aurora", "aurora-postgresql", 2).await;
    stack.put_param(EAST, "/shop/db", VALUE, true).await;
    let toml = format!(
        "poll_interval_secs = 1\napi_timeout_secs = 5\nendpoint_url = \"{}\"\n[primary]\nid = \"shop-aurora-2\"\nregion = \"us-east-1\"\n[[parameters]]\nname = \"/shop/db\"\nregion = \"us-east-1\"\n",
        stack.proxy_url
    );
    let mut m = monitor_for(&toml).await;

    let err = m.poll(&TestClock::new(usize::MAX)).await.unwrap_err();

    let Error::Config(msg) = &err else {
        panic!("{err}")
    };
    assert!(
        msg.contains("shop-aurora-2 (us-east-1) is a member of DB cluster \"shop-aurora\"")
            && msg.contains("[cluster] id = \"shop-aurora\""),
        "{msg}"
    );
    assert_eq!(stack.count(PUT), 0);
    assert_eq!(stack.get_param(EAST, "/shop/db").await.0, VALUE);

    // The daemon loop stops on it instead of retrying forever.
    let clock = TestClock::new(usize::MAX);
    let stopped = ssm_db_monitor::run(&mut m, &clock, std::future::pending()).await;
    assert!(matches!(stopped, Err(Error::Config(_))), "{stopped:?}");
}

#[tokio::test]
async fn blue_green_switchover_never_publishes_green_nor_the_renamed_blue() {
    let stack = Stack::start();
    stack.create_instances("shop-db", None).await;
    stack.put_param(EAST, "/shop/db", VALUE, true).await;
    let mut m = monitor_for(&config_toml(&stack, "", false)).await;
    let clock = TestClock::new(usize::MAX);
    m.poll(&clock).await.unwrap();
    let blue = value_at(stack.endpoint_of(EAST, "shop-db").await);
    assert_eq!(stack.get_param(EAST, "/shop/db").await.0, blue);

    let rds = stack.rds(EAST).await;
    let bg = rds
        .create_blue_green_deployment()
        .blue_green_deployment_name("shop-upgrade")
        .source(format!("arn:aws:rds:{EAST}:{ACCOUNT}:db:shop-db"))
        .send()
        .await
        .expect("CreateBlueGreenDeployment");
    let bg = bg.blue_green_deployment().unwrap();
    let green_id = bg.target().unwrap().rsplit(':').next().unwrap().to_owned();
    stack.reset_counts();

    // Before the switchover: green exists, writable as far as RDS says, and is ignored.
    for _ in 0..2 {
        let report = m.poll(&clock).await.unwrap();
        assert!(
            matches!(&report.plan.decision, Decision::Publish { instance, .. } if instance.id == "shop-db"),
            "{}",
            report.plan
        );
        assert!(
            !report.plan.to_string().contains(&green_id),
            "{}",
            report.plan
        );
    }
    rds.switchover_blue_green_deployment()
        .blue_green_deployment_identifier(bg.blue_green_deployment_identifier().unwrap())
        .send()
        .await
        .expect("SwitchoverBlueGreenDeployment");
    let report = m.poll(&clock).await.unwrap();

    // After it: shop-db is the former green under blue's name and endpoint;
    // the renamed blue (shop-db-old1) is never considered.
    assert!(
        matches!(&report.plan.decision, Decision::Publish { instance, .. } if instance.id == "shop-db"),
        "{}",
        report.plan
    );
    assert!(!report.plan.to_string().contains("old1"), "{}", report.plan);
    assert_eq!(stack.count(PUT), 0);
    assert_eq!(stack.get_param(EAST, "/shop/db").await.0, blue);
}

/// An Aurora global database in moto: primary cluster `shop-west` in
/// us-west-2, secondary `shop-east` in us-east-1, one instance each. (moto
/// keeps global clusters in us-east-1 and can only remove a member that lives
/// there, hence the primary in us-west-2.)
async fn create_global(stack: &Stack) {
    stack
        .rds(EAST)
        .await
        .create_global_cluster()
        .global_cluster_identifier("shop-global")
        .engine("aurora-postgresql")
        .send()
        .await
        .expect("CreateGlobalCluster");
    for (region, id) in [(WEST, "shop-west"), (EAST, "shop-east")] {
        let rds = stack.rds(region).await;
        let mut create = rds
            .create_db_cluster()
            .db_cluster_identifier(id)
            .engine("aurora-postgresql")
            .global_cluster_identifier("shop-global");
        if region == WEST {
            create = create
                .master_username("admin")
                .master_user_password("rds-master-not-used");
        }
        create.send().await.expect("create regional cluster");
        rds.create_db_instance()
            .db_instance_identifier(format!("{id}-1"))
            .db_cluster_identifier(id)
            .engine("aurora-postgresql")
            .db_instance_class("db.r6g.large")
            .send()
            .await
            .expect("create member");
    }
}

#[tokio::test]
async fn global_database_follows_a_detach_and_promote_during_the_primary_regions_outage() {
    let stack = Stack::start();
    create_global(&stack).await;
    for region in [EAST, WEST] {
        stack.put_param(region, "/shop/db", VALUE, true).await;
    }
    let toml = format!(
        "poll_interval_secs = 1\napi_timeout_secs = 5\nendpoint_url = \"{}\"\n[global]\nid = \"shop-global\"\npublish = \"writer-instance\"\nclusters = [{{ id = \"shop-west\", region = \"us-west-2\" }}, {{ id = \"shop-east\", region = \"us-east-1\" }}]\n[[parameters]]\nname = \"/shop/db\"\nregion = \"us-east-1\"\n[[parameters]]\nname = \"/shop/db\"\nregion = \"us-west-2\"\n",
        stack.proxy_url
    );
    let mut m = monitor_for(&toml).await;
    let clock = TestClock::new(usize::MAX);

    let report = m.poll(&clock).await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let west = value_at(stack.endpoint_of(WEST, "shop-west-1").await);
    let east = value_at(stack.endpoint_of(EAST, "shop-east-1").await);
    for region in [EAST, WEST] {
        assert_eq!(
            stack.get_param(region, "/shop/db").await.0,
            west,
            "{region}"
        );
    }
    assert!(
        report
            .plan
            .to_string()
            .contains("the primary cluster of global database shop-global"),
        "{}",
        report.plan
    );

    // --plan's permission check asks what the polls ask, in both regions.
    let access = ssm_db_monitor::access::check(m.config(), &m.rds().aws, m.rds()).await;
    let shown = access.to_string();
    for line in [
        "ok      rds:DescribeGlobalClusters on shop-global (asked in us-west-2)",
        "ok      rds:DescribeGlobalClusters on shop-global (asked in us-east-1)",
        "ok      rds:DescribeDBClusters, rds:DescribeDBInstances on shop-east (us-east-1)",
    ] {
        assert!(shown.contains(line), "{line}\n{shown}");
    }
    assert!(access.first_failure().is_none(), "{shown}");

    // us-west-2's APIs go down: the secondary is read-only, so nothing moves.
    stack.fault_region("500", WEST);
    let access = ssm_db_monitor::access::check(m.config(), &m.rds().aws, m.rds()).await;
    assert!(
        access
            .to_string()
            .contains("FAILED  rds:DescribeGlobalClusters on shop-global (asked in us-west-2)"),
        "{access}"
    );
    assert!(access.first_failure().is_some(), "{access}");
    let report = m.poll(&clock).await.unwrap();
    assert!(
        matches!(&report.plan.decision, Decision::NoWriter { why } if why.contains("shop-west (us-west-2) is unknown") && why.contains("shop-east (us-east-1) is a read-only secondary")),
        "{}",
        report.plan
    );
    assert_eq!(stack.get_param(EAST, "/shop/db").await.0, west);

    // The operator detaches and promotes shop-east: the parameter that can be
    // written (us-east-1) follows at the next poll.
    stack
        .rds(EAST)
        .await
        .remove_from_global_cluster()
        .global_cluster_identifier("shop-global")
        .db_cluster_identifier("shop-east")
        .send()
        .await
        .expect("RemoveFromGlobalCluster");
    let report = m.poll(&clock).await.unwrap();
    assert!(
        matches!(&report.plan.decision, Decision::Publish { instance, why, .. } if instance.id == "shop-east-1" && why.contains("detached from global database shop-global")),
        "{}",
        report.plan
    );
    assert_eq!(report.published, vec!["/shop/db (us-east-1)".to_string()]);
    assert_eq!(stack.get_param(EAST, "/shop/db").await.0, east);
    assert!(
        !report.errors.is_empty(),
        "us-west-2's failures are reported"
    );

    // us-west-2 comes back with shop-west still the global primary: the
    // parameters go to the detached cluster, where orders have been written since.
    stack.fault("none");
    stack.reset_counts();
    let report = m.poll(&clock).await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(
        matches!(&report.plan.decision, Decision::Publish { instance, .. } if instance.id == "shop-east-1"),
        "{}",
        report.plan
    );
    for region in [EAST, WEST] {
        assert_eq!(
            stack.get_param(region, "/shop/db").await.0,
            east,
            "{region}"
        );
    }
    assert_eq!(stack.count(PUT), 1, "only us-west-2's parameter was behind");
}

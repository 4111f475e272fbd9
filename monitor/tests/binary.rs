//! The `ssm-db-monitor` binary as an operator runs it: flags, exit codes,
//! output, metrics and signals, against a moto server per test.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const PUT: &str = "AmazonSSM.PutParameter";

fn monitor_cmd(config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ssm-db-monitor"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", EAST)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        )
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null());
    cmd
}

/// A configuration file in a folder of its own, removed when dropped.
struct TempConfig(std::path::PathBuf);

impl std::ops::Deref for TempConfig {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn write_config(text: &str) -> TempConfig {
    let path = scratch_dir("config").join("monitor.toml");
    std::fs::write(&path, text).unwrap();
    TempConfig(path)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test]
async fn once_exit_codes_tell_success_no_writer_transient_and_refused_apart() {
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
    let config = write_config(&config_toml(&stack, "", false));

    let ok = monitor_cmd(&config).arg("--once").output().unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert_eq!(stack.count(PUT), 1);

    stack.fault("throttle");
    let throttled = monitor_cmd(&config).arg("--once").output().unwrap();
    assert_eq!(throttled.status.code(), Some(3), "{}", text(&throttled));
    assert!(
        text(&throttled).contains("throttled by AWS"),
        "{}",
        text(&throttled)
    );
    stack.fault("none");

    stack
        .rds(EAST)
        .await
        .stop_db_instance()
        .db_instance_identifier("shop-db")
        .send()
        .await
        .unwrap();
    let no_writer = monitor_cmd(&config).arg("--once").output().unwrap();
    assert_eq!(no_writer.status.code(), Some(5), "{}", text(&no_writer));
    assert!(
        text(&no_writer).contains("promotion is disabled"),
        "{}",
        text(&no_writer)
    );

    stack
        .put_param(
            EAST,
            "/shop/db",
            "postgresql://wp:pw@placeholder.invalid/shop",
            false,
        )
        .await;
    let refused = monitor_cmd(&config).arg("--once").output().unwrap();
    assert_eq!(refused.status.code(), Some(4), "{}", text(&refused));
    assert!(text(&refused).contains("refusing to overwrite SSM parameter \"/shop/db\" (us-east-1): it is a String parameter and its value holds a password"), "{}", text(&refused));
    assert_eq!(stack.count(PUT), 1, "only the first run wrote");
}

#[test]
fn unknown_config_key_exits_2_and_names_the_key() {
    let config = write_config("[primary]\nid = \"shop-db\"\nregion = \"us-east-1\"\n[[parameters]]\nname = \"/shop/db\"\nregion = \"us-east-1\"\n[promotion]\nenabeld = true\n");
    let out = monitor_cmd(&config).arg("--once").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("enabeld"), "{}", text(&out));
    assert!(
        text(&out).contains("monitor.toml"),
        "names the file: {}",
        text(&out)
    );

    let out = monitor_cmd(&config)
        .arg("--once")
        .arg("--plan")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "--once and --plan conflict: {}",
        text(&out)
    );
}

#[test]
fn an_endpoint_from_the_environment_follows_the_endpoint_url_rules_unquoted() {
    let config = write_config("[primary]\nid = \"shop-db\"\nregion = \"us-east-1\"\n[[parameters]]\nname = \"/shop/db\"\nregion = \"us-east-1\"\n");
    for (name, url) in [
        ("AWS_ENDPOINT_URL", "http://u:Canary-Pw@127.0.0.1:1"),
        ("AWS_ENDPOINT_URL_RDS", "http://10.255.255.1:80"),
    ] {
        let out = monitor_cmd(&config)
            .env(name, url)
            .arg("--plan")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        assert!(
            text(&out).contains(&format!("{name} is refused")),
            "{}",
            text(&out)
        );
        assert!(
            !text(&out).contains("Canary-Pw") && !text(&out).contains("10.255.255.1"),
            "{}",
            text(&out)
        );
    }
}

#[tokio::test]
async fn plan_prints_the_decision_and_changes_nothing() {
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
    let config = write_config(&config_toml(&stack, "", false));

    let out = monitor_cmd(&config).arg("--plan").output().unwrap();

    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (host, port) = stack.endpoint_of(EAST, "shop-db").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let key = "alias/aws/ssm";
    assert_eq!(
        stdout.trim(),
        format!(
            "writer: shop-db (us-east-1) at {host}:{port}: the primary is available
permissions (reads called now; writes listed, not called):
  ok      rds:DescribeDBInstances on shop-db (us-east-1): status available
  ok      ssm:GetParameter on \"/shop/db\" (us-east-1): SecureString parameter, version 1
  ok      ssm:GetParameter with decryption, kms:Decrypt on \"/shop/db\" (us-east-1): decrypted
  ok      ssm:DescribeParameters on \"/shop/db\" (us-east-1): key {key}
  write   ssm:PutParameter on arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/shop/db
  write   kms:Encrypt and kms:Decrypt on {key} (the key of \"/shop/db\" (us-east-1); kms:GenerateDataKey too for an advanced-tier parameter)"
        )
    );
    assert_eq!(stack.count(PUT), 0);
}

#[tokio::test]
async fn plan_and_once_refuse_a_value_whose_endpoint_cannot_be_replaced() {
    let stack = Stack::start();
    stack.create_instances("shop-db", None).await;
    let config = write_config(&config_toml(&stack, "", false));
    for (value, says) in [
        (
            "mysql://wp:pw@localhost/shop?socket=/run/mysqld/mysqld.sock",
            "names a Unix socket",
        ),
        (
            "postgresql://wp:pw@/shop?host=/var/run/postgresql",
            "names a Unix socket",
        ),
        (
            "mysql://wp_iam@db.internal:3306/shop?auth=iam&iam_host=old.abc.us-east-1.rds.amazonaws.com",
            "remove iam_host",
        ),
        (
            r#"{"engine":"mysql","host":"db.internal","username":"wp_iam","dbname":"shop","auth":"iam","iam_host":"db.internal"}"#,
            "remove iam_host",
        ),
    ] {
        stack.put_param(EAST, "/shop/db", value, true).await;
        for flag in ["--plan", "--once"] {
            let out = monitor_cmd(&config).arg(flag).output().unwrap();
            assert_eq!(out.status.code(), Some(4), "{flag} {value}: {}", text(&out));
            assert!(text(&out).contains(says), "{flag} {value}: {}", text(&out));
        }
    }
    assert_eq!(stack.count(PUT), 0);
}

#[tokio::test]
async fn a_value_for_another_engine_than_rds_runs_is_refused_by_plan_and_once() {
    let stack = Stack::start();
    stack.create_instances("shop-db", None).await;
    stack
        .put_param(EAST, "/shop/db", "mysql://old.internal:3306/shop", false)
        .await;
    let config = write_config(&config_toml(&stack, "", false));
    for flag in ["--plan", "--once"] {
        let out = monitor_cmd(&config).arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(4), "{flag}: {}", text(&out));
        assert!(
            text(&out).contains(
                "its value is a mysql value and RDS runs shop-db (us-east-1) as engine postgres"
            ),
            "{flag}: {}",
            text(&out)
        );
    }
    assert_eq!(stack.count(PUT), 0);
}

#[tokio::test]
async fn a_json_value_whose_port_implied_its_engine_is_published_to_another_port_with_it() {
    let stack = Stack::start();
    stack.create_primary("shop-db", Some(6432)).await;
    let value = r#"{"host":"old.internal","port":5432,"dbname":"shop"}"#;
    stack.put_param(EAST, "/shop/db", value, false).await;
    let config = write_config(&config_toml(&stack, "", false));

    let plan = monitor_cmd(&config).arg("--plan").output().unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let once = monitor_cmd(&config).arg("--once").output().unwrap();
    assert_eq!(once.status.code(), Some(0), "{}", text(&once));

    let (host, port) = stack.endpoint_of(EAST, "shop-db").await;
    assert_eq!(port, 6432);
    assert_eq!(
        stack.get_param(EAST, "/shop/db").await.0,
        format!(r#"{{"host":"{host}","port":6432,"dbname":"shop","engine":"postgres"}}"#)
    );
}

#[tokio::test]
async fn plan_into_a_closed_pipe_and_dry_run_from_the_environment() {
    let stack = Stack::start();
    stack.create_instances("shop-db", None).await;
    stack
        .put_param(EAST, "/shop/db", "postgresql://old.internal/shop", false)
        .await;
    let config = write_config(&config_toml(&stack, "", false));

    // `--plan | head -0`: the reader is gone before the plan is printed.
    let mut child = monitor_cmd(&config)
        .arg("--plan")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("panicked"), "{}", text(&out));

    // The environment's switch reads 1/yes/on as the flag does.
    let out = monitor_cmd(&config)
        .arg("--once")
        .env("SSM_DB_MONITOR_DRY_RUN", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("dry run"), "{}", text(&out));
    assert_eq!(stack.count(PUT), 0);
}

#[tokio::test]
async fn plan_fails_on_a_cluster_rds_does_not_know() {
    let stack = Stack::start();
    stack
        .put_param(EAST, "/shop/db", "postgresql://old.internal/shop", false)
        .await;
    let config = write_config(&format!(
        "endpoint_url = \"{}\"\n[cluster]\nid = \"shop-auroar\"\nregion = \"us-east-1\"\npublish = \"writer-instance\"\n[[parameters]]\nname = \"/shop/db\"\nregion = \"us-east-1\"\n",
        stack.proxy_url
    ));
    let out = monitor_cmd(&config).arg("--plan").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("RDS knows no DB cluster shop-auroar (us-east-1)"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn plan_lists_no_kms_permission_for_an_endpoint_only_string_parameter() {
    let stack = Stack::start();
    stack
        .create_instances("shop-db", Some("shop-db-west"))
        .await;
    stack
        .put_param(
            EAST,
            "/shop/db",
            "postgresql://placeholder.invalid/shop",
            false,
        )
        .await;
    let promotion = "[promotion]\nenabled = true\nafter_polls = 3\nfence_old_primary = true\n";
    let config = write_config(&config_toml(&stack, promotion, true));

    let out = monitor_cmd(&config).arg("--plan").output().unwrap();

    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().skip(2).collect();
    assert_eq!(
        lines,
        [
            "  ok      rds:DescribeDBInstances on shop-db (us-east-1): status available",
            "  ok      rds:DescribeDBInstances on shop-db-west (us-west-2): status available",
            "  ok      ssm:GetParameter on \"/shop/db\" (us-east-1): String parameter, version 1",
            "  skipped ssm:DescribeParameters on \"/shop/db\" (us-east-1): not needed: a String parameter has no KMS key (and needs no KMS permission)",
            "  ok      cloudwatch:GetMetricStatistics on ReplicaLag of shop-db-west (us-west-2): no ReplicaLag datapoint now",
            &format!("  write   ssm:PutParameter on arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/shop/db"),
            &format!("  write   rds:PromoteReadReplica on arn:aws:rds:us-west-2:{ACCOUNT}:db:shop-db-west"),
            &format!("  write   rds:StopDBInstance on arn:aws:rds:us-east-1:{ACCOUNT}:db:shop-db"),
        ],
        "{stdout}"
    );
    assert_eq!(stack.count(PUT), 0);
    assert_eq!(stack.count("AmazonSSM.DescribeParameters"), 0);
    assert_eq!(stack.count("rds.PromoteReadReplica"), 0);
    assert_eq!(stack.count("rds.StopDBInstance"), 0);
}

#[tokio::test]
async fn plan_fails_on_a_replica_rds_does_not_know() {
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
    // The configuration lists shop-db-west, which was never created (a typo).
    let config = write_config(&config_toml(&stack, "", true));

    let out = monitor_cmd(&config).arg("--plan").output().unwrap();

    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("FAILED  rds:DescribeDBInstances on shop-db-west (us-west-2): bad configuration: RDS knows no DB instance shop-db-west (us-west-2)"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn plan_fails_naming_the_aws_error_when_a_needed_read_fails() {
    let stack = Stack::start();
    stack.create_instances("shop-db", None).await;
    let config = write_config(&config_toml(&stack, "", false));

    // The parameter does not exist yet.
    let out = monitor_cmd(&config).arg("--plan").output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("  FAILED  ssm:GetParameter on \"/shop/db\" (us-east-1): refusing to overwrite SSM parameter \"/shop/db\" (us-east-1): not found"),
        "{stdout}"
    );

    // The role lacks ssm:DescribeParameters: reads otherwise fine, still a failure.
    stack
        .put_param(
            EAST,
            "/shop/db",
            "postgresql://wp:pw@placeholder.invalid/shop",
            true,
        )
        .await;
    stack.fault_targets("denied", &["AmazonSSM.DescribeParameters"]);
    let out = monitor_cmd(&config).arg("--plan").output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("  FAILED  ssm:DescribeParameters on \"/shop/db\" (us-east-1): SSM DescribeParameters on \"/shop/db\" (us-east-1) failed: access denied (AccessDeniedException)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  write   kms:Encrypt and kms:Decrypt on its key (unknown)"),
        "{stdout}"
    );

    // Throttled RDS: transient, exit 3, with RDS's code.
    stack.fault_targets("throttle", &["rds.DescribeDBInstances"]);
    let out = monitor_cmd(&config).arg("--plan").output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("  FAILED  rds:DescribeDBInstances on shop-db (us-east-1): RDS DescribeDBInstances on shop-db (us-east-1) failed: throttled by AWS (Throttling)"),
        "{stdout}"
    );
    assert_eq!(stack.count(PUT), 0);
}

#[tokio::test]
async fn canary_password_never_appears_in_text_or_json_output_at_trace_level() {
    let stack = Stack::start();
    stack.create_instances("shop-db", None).await;
    let canary = canary();
    for format in ["text", "json"] {
        stack
            .put_param(
                EAST,
                "/shop/db",
                &format!("postgresql://wp:{canary}@placeholder.invalid/shop"),
                true,
            )
            .await;
        let config = write_config(&config_toml(&stack, "", false));
        let out = monitor_cmd(&config)
            .args(["--once", "--log", "trace", "--log-format", format])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let all = text(&out);
        assert!(all.contains("published the writer's endpoint"), "{all}");
        assert!(!all.contains(&canary), "{format}: the canary leaked");
        if format == "json" {
            let ours: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
                .filter(|v: &serde_json::Value| {
                    v["target"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("ssm_db_monitor"))
                })
                .collect();
            let published = ours
                .iter()
                .find(|v| v["message"] == "published the writer's endpoint")
                .expect("publish event");
            assert_eq!(published["parameter"], "/shop/db");
            assert_eq!(published["parameter_type"], "SecureString");
            assert_eq!(published["kms_key"], "alias/aws/ssm");
        }
    }
    assert_eq!(stack.count(PUT), 2);
}

#[tokio::test]
async fn daemon_serves_metrics_on_loopback_and_stops_on_sigterm() {
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
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = write_config(
        &config_toml(&stack, "", false)
            .replace("poll_interval_secs = 1", "poll_interval_secs = 0.2"),
    );
    let child = monitor_cmd(&config)
        .env("SSM_DB_MONITOR_METRICS_ADDR", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        // The listener is up once a connection is accepted.
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let (status, body) = http(&base, "GET", "/metrics", "");
            assert_eq!(status, 200);
            let polls: u64 = body
                .lines()
                .find_map(|l| l.strip_prefix("ssm_db_monitor_polls_total "))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if polls >= 3 {
                break body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "metrics did not show 3 polls in 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        body.contains("ssm_db_monitor_changes_published_total 1\n"),
        "{body}"
    );
    assert!(
        body.contains("ssm_db_monitor_current_writer{instance=\"shop-db\",region=\"us-east-1\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("ssm_db_monitor_api_errors_total 0\n"),
        "{body}"
    );
    assert!(
        !body.contains("ssm_db_monitor_last_change_timestamp_seconds 0\n"),
        "{body}"
    );
    assert_eq!(http(&base, "GET", "/", "").0, 404);
    assert_eq!(stack.count(PUT), 1, "daemon polls write once");

    let started = Instant::now();
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(text(&out).contains("SIGTERM received"), "{}", text(&out));
}

#[test]
fn metrics_address_must_be_loopback() {
    let config = write_config("[primary]\nid = \"shop-db\"\nregion = \"us-east-1\"\n[[parameters]]\nname = \"/shop/db\"\nregion = \"us-east-1\"\n");
    let out = monitor_cmd(&config)
        .args(["--once", "--metrics-addr", "0.0.0.0:9464"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("not a loopback address"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn plan_refuses_a_cluster_member_configured_as_primary_with_exit_2() {
    let stack = Stack::start();
    let rds = stack.rds(EAST).await;
    rds.create_db_cluster()
        .db_cluster_identifier("shop-aurora")
        .engine("aurora-mysql")
        .master_username("admin")
        .master_user_password("rds-master-not-used")
        .send()
        .await
        .unwrap();
    rds.create_db_instance()
        .db_instance_identifier("shop-db")
        .db_cluster_identifier("shop-aurora")
        .engine("aurora-mysql")
        .db_instance_class("db.r6g.large")
        .send()
        .await
        .unwrap();
    stack
        .put_param(
            EAST,
            "/shop/db",
            "mysql://wp:pw@placeholder.invalid/shop",
            true,
        )
        .await;
    let config = write_config(&config_toml(&stack, "", false));

    for flag in ["--plan", "--once"] {
        let out = monitor_cmd(&config).arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", text(&out));
        assert!(
            text(&out).contains("member of DB cluster \"shop-aurora\""),
            "{flag}: {}",
            text(&out)
        );
    }
    let out = monitor_cmd(&config).arg("--plan").output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("[cluster] id = \"shop-aurora\""),
        "--plan prints the configuration to use: {}",
        text(&out)
    );
    // The daemon stops with the same code instead of polling forever.
    let out = monitor_cmd(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "daemon: {}", text(&out));
    assert_eq!(stack.count(PUT), 0);
}

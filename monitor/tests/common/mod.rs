//! Helpers for the monitor's tests: a moto server and the counting/fault proxy
//! in front of it (`tests/support/stack.py`), started per test on free
//! loopback ports and stopped when the test ends; SDK clients that talk to
//! moto directly (their calls are not counted) to set the scene; a log capture;
//! and the one place where a test plays RDS's part that moto does not.
#![allow(dead_code)] // each test binary uses a different subset

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region};
use ssm_db_config_tests::AwsStack;
use ssm_db_monitor::{
    Aws, Clock, ClusterObserved, Config, Endpoint, Error, InstanceRef, Observed, Rds,
};

pub const EAST: &str = "us-east-1";
pub const WEST: &str = "us-west-2";
pub const ACCOUNT: &str = "123456789012";

/// Every test process talks to loopback only, with fake credentials.
pub fn fake_aws_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", EAST),
            ("AWS_DEFAULT_REGION", EAST),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            // One attempt per call: the tests count calls, and the monitor's own
            // backoff is what they test (the SDK's default is 3 attempts).
            ("AWS_MAX_ATTEMPTS", "1"),
            ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/aws-credentials",
            ),
        ] {
            std::env::set_var(k, v);
        }
        std::env::remove_var("AWS_ENDPOINT_URL");
        std::env::remove_var("AWS_PROFILE");
    });
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn scratch_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ssm-db-monitor-{}-{}-{}",
        tag,
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// moto plus the proxy, for one test: the workspace's one harness
/// (`ssm_db_config_tests::AwsStack`), with the scenes the monitor's tests set.
pub struct Stack {
    aws: AwsStack,
    pub moto_url: String,
    pub proxy_url: String,
}

impl Stack {
    pub fn start() -> Stack {
        fake_aws_env();
        let aws = AwsStack::start();
        let (moto_url, proxy_url) = (aws.moto_url().to_owned(), aws.proxy_url().to_owned());
        assert!(
            moto_url.starts_with("http://127.0.0.1:") && proxy_url.starts_with("http://127.0.0.1:")
        );
        Stack {
            aws,
            moto_url,
            proxy_url,
        }
    }

    /// SDK config that talks to moto directly (not counted by the proxy).
    pub async fn moto(&self, region: &str) -> aws_config::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .endpoint_url(&self.moto_url)
            .load()
            .await
    }

    pub async fn ssm(&self, region: &str) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.moto(region).await)
    }

    pub async fn rds(&self, region: &str) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.moto(region).await)
    }

    pub async fn cloudwatch(&self, region: &str) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.moto(region).await)
    }

    /// Calls counted by the proxy for one operation, e.g. `AmazonSSM.PutParameter`.
    pub fn count(&self, operation: &str) -> u64 {
        self.aws.count(operation)
    }

    pub fn total(&self) -> u64 {
        self.aws.total()
    }

    /// Makes the proxy fail every call: `throttle`, `500`, `refuse`, ... or `none`.
    pub fn fault(&self, mode: &str) {
        self.aws.fault(mode, 0);
    }

    /// Makes the proxy fail only these operations (`AmazonSSM.DescribeParameters`, ...).
    pub fn fault_targets(&self, mode: &str, targets: &[&str]) {
        self.aws.fault_targets(mode, targets);
    }

    /// Makes the proxy fail one operation in one region only (`500`, `refuse`, ...).
    pub fn fault_only(&self, mode: &str, target: &str, region: &str) {
        self.aws.fault_only(mode, Some(target), Some(region));
    }

    /// Makes the proxy fail every call signed for one region: its APIs are down.
    pub fn fault_region(&self, mode: &str, region: &str) {
        self.aws.fault_only(mode, None, Some(region));
    }

    pub fn reset_counts(&self) {
        self.aws.reset_counts();
    }

    /// A primary in us-east-1 and, if wanted, a cross-region replica in us-west-2.
    /// A PostgreSQL instance in us-east-1, on `port` (RDS's default when `None`).
    pub async fn create_primary(&self, id: &str, port: Option<i32>) {
        self.rds(EAST)
            .await
            .create_db_instance()
            .db_instance_identifier(id)
            .engine("postgres")
            .set_port(port)
            .db_instance_class("db.t3.micro")
            .allocated_storage(20)
            .master_username("admin")
            .master_user_password("rds-master-not-used")
            .send()
            .await
            .expect("create primary");
    }

    pub async fn create_instances(&self, primary: &str, replica: Option<&str>) {
        self.create_primary(primary, None).await;
        if let Some(replica) = replica {
            self.rds(WEST)
                .await
                .create_db_instance_read_replica()
                .db_instance_identifier(replica)
                .source_db_instance_identifier(format!("arn:aws:rds:{EAST}:{ACCOUNT}:db:{primary}"))
                .db_instance_class("db.t3.micro")
                .send()
                .await
                .expect("create replica");
        }
    }

    /// The endpoint moto reports for an instance.
    pub async fn endpoint_of(&self, region: &str, id: &str) -> (String, u16) {
        let out = self
            .rds(region)
            .await
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
            .unwrap();
        let e = out.db_instances()[0].endpoint().unwrap();
        (e.address().unwrap().to_owned(), e.port().unwrap() as u16)
    }

    pub async fn put_param(&self, region: &str, name: &str, value: &str, secure: bool) {
        use aws_sdk_ssm::types::ParameterType;
        self.ssm(region)
            .await
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(if secure {
                ParameterType::SecureString
            } else {
                ParameterType::String
            })
            .overwrite(true)
            .send()
            .await
            .expect("put parameter");
    }

    /// (value, type, version)
    pub async fn get_param(&self, region: &str, name: &str) -> (String, String, i64) {
        let out = self
            .ssm(region)
            .await
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .unwrap();
        let p = out.parameter.unwrap();
        (
            p.value.unwrap(),
            p.r#type.unwrap().as_str().to_owned(),
            p.version,
        )
    }

    pub async fn put_replica_lag(&self, region: &str, id: &str, seconds: f64) {
        use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
        self.cloudwatch(region)
            .await
            .put_metric_data()
            .namespace("AWS/RDS")
            .metric_data(
                MetricDatum::builder()
                    .metric_name("ReplicaLag")
                    .dimensions(
                        Dimension::builder()
                            .name("DBInstanceIdentifier")
                            .value(id)
                            .build(),
                    )
                    .value(seconds)
                    .unit(StandardUnit::Seconds)
                    .timestamp(aws_smithy_types::DateTime::from(SystemTime::now()))
                    .build(),
            )
            .send()
            .await
            .expect("put ReplicaLag");
    }
}

/// A minimal HTTP client for loopback control and metrics endpoints: (status, body).
pub fn http(base: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

/// A config for the standard scene: primary `shop-db` (us-east-1), optional
/// replica `shop-db-west` (us-west-2), one parameter in us-east-1, all
/// through the proxy.
pub fn config(stack: &Stack, extra: &str, replica: bool) -> Config {
    Config::from_toml(&config_toml(stack, extra, replica)).expect("valid test config")
}

pub fn config_toml(stack: &Stack, extra: &str, replica: bool) -> String {
    let replica = if replica {
        "\n[[replicas]]\nid = \"shop-db-west\"\nregion = \"us-west-2\"\n"
    } else {
        ""
    };
    format!(
        "poll_interval_secs = 1\napi_timeout_secs = 5\nendpoint_url = \"{}\"\n{extra}\n[primary]\nid = \"shop-db\"\nregion = \"us-east-1\"\n{replica}\n[[parameters]]\nname = \"/shop/db\"\nregion = \"us-east-1\"\n",
        stack.proxy_url
    )
}

/// Plays RDS's part where moto does not: moto accepts PromoteReadReplica but
/// keeps reporting `ReadReplicaSourceDBInstanceIdentifier`, which real RDS
/// drops once the promoted instance is available. Every call still goes to moto.
///
/// moto's endpoint names resolve nowhere, so a test that needs the monitor's
/// TCP probe of an instance to reach (or to be refused by) something real maps
/// that instance's endpoint to a loopback address in `endpoints`. A test can
/// also make a rotation land while a promotion is under way (`rotate_on_promote`:
/// a parameter name and the value PutParameter writes in us-east-1).
pub struct PlayedRds {
    pub aws: Aws,
    pub promoted: RefCell<HashSet<InstanceRef>>,
    pub endpoints: RefCell<HashMap<String, Endpoint>>,
    pub rotate_on_promote: RefCell<Option<(aws_sdk_ssm::Client, String, String)>>,
}

impl PlayedRds {
    pub fn new(aws: Aws) -> Self {
        PlayedRds {
            aws,
            promoted: RefCell::new(HashSet::new()),
            endpoints: RefCell::new(HashMap::new()),
            rotate_on_promote: RefCell::new(None),
        }
    }

    /// Maps the instance's endpoint to 127.0.0.1:`port`.
    pub fn map_endpoint(&self, id: &str, port: u16) {
        self.endpoints.borrow_mut().insert(
            id.to_owned(),
            Endpoint {
                host: "127.0.0.1".into(),
                port,
            },
        );
    }
}

/// A loopback port nothing listens on (bound, then released): connections are refused.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Rds for PlayedRds {
    async fn describe(&self, instance: &InstanceRef) -> Result<Observed, Error> {
        let mut o = self.aws.describe(instance).await?;
        if self.promoted.borrow().contains(instance) {
            o.replica_source = None;
        }
        if let Some(e) = self.endpoints.borrow().get(&instance.id) {
            if o.endpoint.is_some() {
                o.endpoint = Some(e.clone());
            }
        }
        Ok(o)
    }

    async fn describe_cluster(&self, cluster: &InstanceRef) -> Result<ClusterObserved, Error> {
        self.aws.describe_cluster(cluster).await
    }

    async fn describe_global(
        &self,
        global_id: &str,
        region: &str,
    ) -> Result<Option<Vec<ssm_db_monitor::aws::GlobalMember>>, Error> {
        self.aws.describe_global(global_id, region).await
    }

    async fn promote(&self, instance: &InstanceRef) -> Result<(), Error> {
        self.aws.promote(instance).await?;
        self.promoted.borrow_mut().insert(instance.clone());
        let rotation = self.rotate_on_promote.borrow_mut().take();
        if let Some((ssm, name, value)) = rotation {
            ssm.put_parameter()
                .name(name)
                .value(value)
                .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                .overwrite(true)
                .send()
                .await
                .expect("rotation");
        }
        Ok(())
    }

    async fn stop(&self, instance: &InstanceRef) -> Result<(), Error> {
        self.aws.stop(instance).await
    }
}

/// A clock that does not sleep: it records the delays asked for, and after
/// `stop_after` of them fires `done` (the daemon loop's shutdown).
pub struct TestClock {
    pub sleeps: RefCell<Vec<Duration>>,
    pub stop_after: usize,
    pub done: tokio::sync::Notify,
}

impl TestClock {
    pub fn new(stop_after: usize) -> Self {
        TestClock {
            sleeps: RefCell::new(Vec::new()),
            stop_after,
            done: tokio::sync::Notify::new(),
        }
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    async fn sleep(&self, duration: Duration) {
        let n = {
            let mut s = self.sleeps.borrow_mut();
            s.push(duration);
            s.len()
        };
        if n >= self.stop_after {
            self.done.notify_one();
        }
        tokio::task::yield_now().await;
    }
}

/// Captures tracing output (text, every level) for the current thread.
///
/// One global subscriber at `trace` writes each event into the buffer of the
/// thread that emitted it (tokio's test runtime runs on the test's thread).
/// Per-thread subscribers (`set_default`) lost events now and then when tests
/// ran in parallel: tracing caches each callsite's interest across threads.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURE: RefCell<Option<Logs>> = const { RefCell::new(None) };
}

/// Stops the capture when dropped.
pub struct CaptureGuard;

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|c| *c.borrow_mut() = None);
    }
}

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Captures this thread's events until the guard drops.
    pub fn capture() -> (Logs, CaptureGuard) {
        static INIT: Once = Once::new();
        INIT.call_once(|| {
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
                .with_writer(ThreadWriter)
                .with_ansi(false)
                .init();
        });
        let logs = Logs::default();
        CAPTURE.with(|c| *c.borrow_mut() = Some(logs.clone()));
        (logs, CaptureGuard)
    }
}

/// Writes into the current thread's capture, if any.
pub struct ThreadWriter;

impl Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(logs) = &*c.borrow() {
                logs.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ThreadWriter {
    type Writer = ThreadWriter;

    fn make_writer(&'a self) -> Self::Writer {
        ThreadWriter
    }
}

/// `Canary-Pa55-<random>`, different in every run.
pub fn canary() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("Canary-Pa55-{:08x}{:x}", nanos, std::process::id())
}

//! Shared helpers for the integration tests of `core` (here) and of the
//! monitor (`monitor/tests`, a dev-dependency): the one Rust harness that
//! starts moto.
//!
//! # Layout
//! - [`AwsStack`]: moto plus the counting/fault proxy from `tests/support/stack.py`,
//!   started on free loopback ports for one test and stopped when dropped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A moto server and the proxy in front of it, for one test.
pub struct AwsStack {
    child: Child,
    dir: PathBuf,
    /// The variables stack.py exported (AWS_*, MOTO_URL, PROXY_URL).
    pub env: HashMap<String, String>,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

impl AwsStack {
    /// Starts the stack with the repository's `.venv` Python (made by scripts/setup).
    pub fn start() -> AwsStack {
        AwsStack::start_with(&[])
    }

    /// Starts the stack with moto checking every request's signature and IAM
    /// policy; `env["AWS_ACCESS_KEY_ID"]` and `env["AWS_SECRET_ACCESS_KEY"]`
    /// are then an IAM user's keys that are allowed SSM.
    pub fn start_with_auth() -> AwsStack {
        AwsStack::start_with(&["--auth"])
    }

    fn start_with(flags: &[&str]) -> AwsStack {
        let root = repo_root();
        let python = std::env::var("PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join(".venv/bin/python"));
        let dir = std::env::temp_dir().join(
            format!("ssm-stack-{}-{:?}", std::process::id(), Instant::now())
                .replace([' ', '{', '}', ':', ','], ""),
        );
        std::fs::create_dir_all(&dir).expect("temp dir");
        let env_file = dir.join("aws.env");
        let child = Command::new(&python)
            .arg(root.join("tests/support/stack.py"))
            .arg("--env-file")
            .arg(&env_file)
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e} (run scripts/setup)", python.display()));
        let mut stack = AwsStack {
            child,
            dir,
            env: HashMap::new(),
        };
        // stack.py writes the file once moto and the proxy answer.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !env_file.exists() {
            if let Ok(Some(status)) = stack.child.try_wait() {
                panic!("stack.py exited early: {status}");
            }
            assert!(Instant::now() < deadline, "moto did not start within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        stack.env = std::fs::read_to_string(&env_file)
            .expect("env file")
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        stack
    }

    /// moto's URL (uncounted, no faults).
    pub fn moto_url(&self) -> &str {
        &self.env["MOTO_URL"]
    }

    /// The proxy's URL (counted, faults).
    pub fn proxy_url(&self) -> &str {
        &self.env["PROXY_URL"]
    }

    /// An SSM client that talks to moto directly, for seeding.
    pub async fn seed_client(&self) -> aws_sdk_ssm::Client {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(self.moto_url())
            .credentials_provider(aws_sdk_ssm::config::Credentials::new(
                &self.env["AWS_ACCESS_KEY_ID"],
                &self.env["AWS_SECRET_ACCESS_KEY"],
                None,
                None,
                "tests",
            ))
            .load()
            .await;
        aws_sdk_ssm::Client::new(&config)
    }

    /// Puts a SecureString parameter (overwriting), straight to moto.
    pub async fn put_secure(&self, name: &str, value: &str) {
        self.seed_client()
            .await
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {name}: {e}"));
    }

    /// Sets the proxy's fault mode (see stack.py).
    pub fn fault(&self, mode: &str, delay_ms: u64) {
        let body = serde_json::json!({ "mode": mode, "delay_ms": delay_ms }).to_string();
        http_post(self.proxy_url(), "/__proxy/fault", &body);
    }

    /// Sets a fault mode for some operations only, by their target
    /// (`AmazonSSM.DescribeParameters`, `rds.DescribeDBInstances`): the
    /// others pass, as when an IAM policy lacks one permission.
    pub fn fault_targets(&self, mode: &str, targets: &[&str]) {
        let body = serde_json::json!({ "mode": mode, "only": targets }).to_string();
        http_post(self.proxy_url(), "/__proxy/fault", &body);
    }

    /// Faults only the requests for one operation (`rds.DescribeDBInstances`,
    /// as [`AwsStack::count`] names it) signed for one region, if given: one
    /// region's API down while the others answer.
    pub fn fault_only(&self, mode: &str, target: Option<&str>, region: Option<&str>) {
        let mut body = serde_json::json!({ "mode": mode });
        if let Some(t) = target {
            body["target"] = t.into();
        }
        if let Some(r) = region {
            body["region"] = r.into();
        }
        http_post(self.proxy_url(), "/__proxy/fault", &body.to_string());
    }

    /// How many GetParameter requests reached the proxy.
    pub fn get_parameter_calls(&self) -> u64 {
        self.count("AmazonSSM.GetParameter")
    }

    /// How many requests for one operation reached the proxy, by its target:
    /// `AmazonSSM.PutParameter`, `rds.DescribeDBInstances`...
    pub fn count(&self, target: &str) -> u64 {
        self.counts()["by_target"][target].as_u64().unwrap_or(0)
    }

    /// How many requests reached the proxy in all.
    pub fn total(&self) -> u64 {
        self.counts()["total"].as_u64().unwrap_or(0)
    }

    /// Sets the proxy's counts back to zero.
    pub fn reset_counts(&self) {
        http_post(self.proxy_url(), "/__proxy/reset", "");
    }

    fn counts(&self) -> serde_json::Value {
        let text = http_get(self.proxy_url(), "/__proxy/counts");
        serde_json::from_str(&text).expect("counts JSON")
    }
}

impl Drop for AwsStack {
    fn drop(&mut self) {
        // SIGTERM, so that stack.py stops moto too (SIGKILL would orphan it).
        unsafe { libc_kill(self.child.id() as i32, 15) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

fn http(base: &str, request: String) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("proxy reachable");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    s.write_all(request.as_bytes()).expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

fn http_get(base: &str, path: &str) -> String {
    http(
        base,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
}

fn http_post(base: &str, path: &str, body: &str) -> String {
    http(base, format!("POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}", body.len()))
}

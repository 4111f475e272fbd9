//! `iam::auth_token` against boto3's `rds.generate_db_auth_token`: for each
//! case the same credentials, endpoint, user, region and signing time give
//! the same token, byte for byte. boto3 makes the expected tokens at test
//! time (`tests/support/rds_token.py`, with the repository's `.venv` from
//! scripts/setup), so the comparison is with the reference itself, not
//! with strings copied from it once.
#![cfg(feature = "aws")]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use serde_json::{json, Value};
use ssm_db_config_core::iam::{auth_token, TokenEndpoint};
use ssm_db_config_core::ExposeSecret;

struct Case {
    access_key: &'static str,
    secret_key: &'static str,
    session_token: Option<&'static str>,
    host: &'static str,
    port: u16,
    user: &'static str,
    region: &'static str,
    time: u64,
}

const AK: &str = "AKIAIOSFODNN7EXAMPLE";
const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn cases() -> Vec<Case> {
    let base = Case {
        access_key: AK,
        secret_key: SK,
        session_token: None,
        host: "shop.cluster-abc.eu-west-1.rds.amazonaws.com",
        port: 3306,
        user: "wp_iam",
        region: "eu-west-1",
        time: 1_700_000_000,
    };
    let with = |f: &dyn Fn(&mut Case)| {
        let mut c = Case { ..base };
        f(&mut c);
        c
    };
    vec![
        with(&|_| {}),
        // Temporary credentials (an instance role, ECS, STS): the token is
        // part of the signed query, with '/', '+' and '=' encoded.
        with(&|c| {
            c.session_token =
                Some("IQoJb3JpZ2luX2VjEJr//////////wEaCWV1LXdlc3QtMSJHMEUCIQD+abc/def==")
        }),
        with(&|c| {
            c.host = "shop.cluster-xyz.us-east-2.rds.amazonaws.com";
            c.port = 5432;
            c.region = "us-east-2";
        }),
        // A non-default port, and a user name that needs encoding.
        with(&|c| {
            c.port = 13306;
            c.user = "wp@corp+ops x/y=1~ä";
        }),
        with(&|c| c.host = "10.0.0.5"),
        // boto3 takes an IPv6 host in brackets.
        with(&|c| c.host = "2001:db8::1"),
        // Just before midnight UTC: the date of the credential scope.
        with(&|c| c.time = 1_700_006_399),
        with(&|c| {
            c.secret_key = "s3cr3t+/=";
            c.session_token = Some("tok");
            c.region = "ap-southeast-2";
            c.time = 1_900_000_123;
        }),
    ]
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// boto3's tokens for `cases`, in order.
fn boto3_tokens(cases: &[Case]) -> Vec<String> {
    let root = repo_root();
    let python = std::env::var("PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join(".venv/bin/python"));
    let input: Vec<Value> = cases
        .iter()
        .map(|c| {
            json!({
                "access_key": c.access_key,
                "secret_key": c.secret_key,
                "session_token": c.session_token,
                // What boto3 is given: an IPv6 address in brackets, as in a URL.
                "host": if c.host.contains(':') { format!("[{}]", c.host) } else { c.host.to_owned() },
                "port": c.port,
                "user": c.user,
                "region": c.region,
                "time": c.time,
            })
        })
        .collect();
    let mut child = Command::new(&python)
        .arg(root.join("tests/support/rds_token.py"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e} (run scripts/setup)", python.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(Value::Array(input).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "rds_token.py failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn auth_token_is_byte_for_byte_what_boto3_makes() {
    let cases = cases();
    let expected = boto3_tokens(&cases);
    assert_eq!(expected.len(), cases.len());
    for (case, expected) in cases.iter().zip(&expected) {
        let credentials = Credentials::new(
            case.access_key,
            case.secret_key,
            case.session_token.map(str::to_owned),
            None,
            "test",
        );
        let endpoint = TokenEndpoint {
            host: case.host.into(),
            port: case.port,
            user: case.user.into(),
            region: case.region.into(),
        };
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(case.time);
        let token = auth_token(&credentials, &endpoint, at).unwrap();
        assert_eq!(
            token.expose_secret(),
            expected,
            "{}:{} {} {}",
            case.host,
            case.port,
            case.user,
            case.region
        );
    }
}

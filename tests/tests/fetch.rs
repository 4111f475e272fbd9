//! `SsmFetcher` against moto, and its classification of faults moto cannot
//! produce (injected by the proxy in front of it).

use std::time::{Duration, Instant};

use ssm_db_config_core::fetch::Environment;
use ssm_db_config_core::policy::MAX_ATTEMPTS;
use ssm_db_config_core::{
    CachedConfig, ErrorKind, ExposeSecret, FetchSettings, SecretString, SsmFetcher,
};
use ssm_db_config_tests::AwsStack;

async fn fetcher(endpoint: &str, timeout_ms: u64) -> SsmFetcher {
    // The credentials reach the SDK through its environment, not the process's.
    let environment = Environment::new(
        [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .map(|(k, v)| (k.to_owned(), SecretString::from(v.to_owned()))),
    );
    let settings = FetchSettings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint.into()),
        timeout: Duration::from_millis(timeout_ms),
        environment: Some(std::sync::Arc::new(environment)),
    };
    SsmFetcher::new(&settings).await.expect("fetcher")
}

#[tokio::test(flavor = "current_thread")]
async fn fetches_and_parses_secure_string_with_version() {
    let aws = AwsStack::start();
    let seed = aws.seed_client().await;
    for host in ["old", "new"] {
        seed.put_parameter()
            .name("/it/db")
            .value(format!("postgresql://wp:pw@{host}:5432/shop"))
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    }
    let f = fetcher(aws.proxy_url(), 2000).await;
    let latest = CachedConfig::from_fetched(
        "/it/db",
        f.get("/it/db").await.unwrap(),
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!((latest.config.host.as_str(), latest.version), ("new", 2));
    let first = CachedConfig::from_fetched(
        "/it/db:1",
        f.get("/it/db:1").await.unwrap(),
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(first.config.host, "old");
    assert_eq!(aws.get_parameter_calls(), 2);
    assert_eq!(f.region(), "us-east-1");
}

#[tokio::test(flavor = "current_thread")]
async fn classifies_missing_parameter_and_version_as_not_found() {
    let aws = AwsStack::start();
    let f = fetcher(aws.proxy_url(), 2000).await;
    assert_eq!(
        f.get("/it/missing").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let seed = aws.seed_client().await;
    seed.put_parameter()
        .name("/it/one")
        .value("x")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    assert_eq!(
        f.get("/it/one:9").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test(flavor = "current_thread")]
async fn classifies_injected_faults_within_the_budget() {
    let aws = AwsStack::start();
    // (mode, budget, expected kind): the SDK retries transient failures
    // inside the budget, so a fault that takes long per attempt may end as a
    // timeout with a small budget; each case gets room for its retries.
    let cases = [
        ("throttle", 2000, ErrorKind::Throttled),
        ("500", 2000, ErrorKind::Service),
        ("garbage", 2000, ErrorKind::Service),
        ("hang", 600, ErrorKind::Timeout),
        ("refuse", 2000, ErrorKind::Network),
        ("reset", 2000, ErrorKind::Network),
    ];
    for (mode, budget_ms, kind) in cases {
        let f = fetcher(aws.proxy_url(), budget_ms).await;
        fails_as(&aws, &f, "/it/anything", mode, budget_ms, kind, true).await;
    }
}

/// A throttle spends the account's shared quota: one request, no retry
/// inside the fetch; the host backs off instead.
#[tokio::test(flavor = "current_thread")]
async fn a_throttled_fetch_makes_one_request() {
    let aws = AwsStack::start();
    let f = fetcher(aws.proxy_url(), 2000).await;
    aws.fault("throttle", 0);
    let before = aws.get_parameter_calls();
    assert_eq!(
        f.get("/it/throttled").await.unwrap_err().kind(),
        ErrorKind::Throttled
    );
    assert_eq!(aws.get_parameter_calls() - before, 1);
    aws.fault("500", 0);
    let before = aws.get_parameter_calls();
    assert_eq!(
        f.get("/it/throttled").await.unwrap_err().kind(),
        ErrorKind::Service
    );
    assert!(
        aws.get_parameter_calls() - before > 1,
        "other transient failures are retried"
    );
}

/// Injects `mode`, then fetches `name`: it must fail as `kind`, within the
/// budget, naming the parameter and without AWS's own text.
async fn fails_as(
    aws: &AwsStack,
    f: &SsmFetcher,
    name: &str,
    mode: &str,
    budget_ms: u64,
    kind: ErrorKind,
    transient: bool,
) {
    aws.fault(mode, 5_000);
    let started = Instant::now();
    let err = f.get(name).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), kind, "{mode}: {err}");
    assert_eq!(err.is_transient(), transient, "{mode}");
    assert!(
        took < Duration::from_millis(budget_ms + 300),
        "{mode} took {took:?}, budget {budget_ms} ms"
    );
    let message = err.to_string();
    assert!(message.contains(name), "{mode}: {message}");
    assert!(
        !message.contains("injected") && !message.contains("Rate exceeded"),
        "{mode}: raw AWS text leaked: {message}"
    );
}

/// The SDK's standard retry, as `policy::retry_after` models it: transient
/// faults up to `MAX_ATTEMPTS` attempts, a throttle or a lasting failure once.
/// (A 200 whose body does not parse is not retried either: the SDK's choice;
/// it still fails as a transient service error.)
#[tokio::test(flavor = "current_thread")]
async fn retries_transient_faults_only_up_to_the_attempt_limit() {
    let aws = AwsStack::start();
    let cases = [
        ("throttle", 1),
        ("denied", 1),
        ("500", MAX_ATTEMPTS),
        ("reset", MAX_ATTEMPTS),
        ("garbage", 1),
    ];
    for (mode, requests) in cases {
        let f = fetcher(aws.proxy_url(), 5000).await;
        aws.fault(mode, 0);
        f.get("/it/retried").await.unwrap_err();
        assert_eq!(f.requests(), u64::from(requests), "{mode}");
    }
}

/// AWS_MAX_ATTEMPTS and AWS_RETRY_MODE do not change how often a host calls SSM.
#[tokio::test(flavor = "current_thread")]
async fn retry_settings_in_the_environment_are_ignored() {
    let aws = AwsStack::start();
    let environment = Environment::new(
        [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_MAX_ATTEMPTS", "10"),
            ("AWS_RETRY_MODE", "adaptive"),
        ]
        .map(|(k, v)| (k.to_owned(), SecretString::from(v.to_owned()))),
    );
    let settings = FetchSettings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(aws.proxy_url().into()),
        timeout: Duration::from_millis(5000),
        environment: Some(std::sync::Arc::new(environment)),
    };
    let f = SsmFetcher::new(&settings).await.expect("fetcher");
    aws.fault("500", 0);
    f.get("/it/env").await.unwrap_err();
    assert_eq!(f.requests(), u64::from(MAX_ATTEMPTS));
    aws.fault("throttle", 0);
    f.get("/it/env").await.unwrap_err();
    assert_eq!(f.requests(), u64::from(MAX_ATTEMPTS) + 1);
}

#[tokio::test(flavor = "current_thread")]
async fn reads_missing_parameters_and_pairs() {
    let aws = AwsStack::start();
    aws.put_secure("/it/pair/db", "postgresql://wp:pw@db.internal:5432/shop")
        .await;
    aws.put_secure("/it/pair/creds", r#"{"username":"u","password":"p"}"#)
        .await;
    let f = fetcher(aws.proxy_url(), 2000).await;
    assert_eq!(
        f.get("/it/pair/none").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let err = f
        .get_pair("/it/pair/db", "/it/pair/nocreds")
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.to_string().contains("/it/pair/nocreds")),
        (ErrorKind::NotFound, true),
        "{err}"
    );
    let (main, creds) = f
        .get_pair("/it/pair/db:1", "/it/pair/creds")
        .await
        .expect("pair");
    assert!(
        main.value.expose_secret().starts_with("postgresql://")
            && creds.value.expose_secret().contains("\"u\"")
    );
    assert_eq!(f.requests(), 3, "a missing parameter is not retried");
}

//! The direct path's requests are signed as AWS checks them: moto here
//! verifies every SigV4 signature and IAM policy (`AwsStack::start_with_auth`),
//! so a request signed wrongly fails with SignatureDoesNotMatch.
//!
//! Its own test binary: it sets the process's AWS credentials to the IAM
//! user's keys, which the other tests' `testing` keys would race with.

use std::time::Duration;

use ssm_db_config_core::{Attempts, CachedConfig, FetchSettings, SsmFetcher};
use ssm_db_config_tests::AwsStack;

const CANARY: &str = "canary-Signing-7d41";

#[tokio::test(flavor = "current_thread")]
async fn direct_requests_carry_a_signature_aws_accepts() {
    let aws = AwsStack::start_with_auth();
    aws.put_secure("/sig/db", "postgresql://owner:old@db.internal:5432/shop")
        .await;
    aws.put_secure(
        "/sig/creds",
        &format!(r#"{{"username":"rotated","password":"{CANARY}"}}"#),
    )
    .await;
    std::env::set_var("AWS_ACCESS_KEY_ID", &aws.env["AWS_ACCESS_KEY_ID"]);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", &aws.env["AWS_SECRET_ACCESS_KEY"]);
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let settings = FetchSettings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(aws.proxy_url().into()),
        timeout: Duration::from_millis(3000),
        direct: true,
        environment: None,
    };
    let f = SsmFetcher::new(&settings).await.expect("fetcher");

    // The first request goes through the SDK (nothing to copy the route
    // from yet), every later one directly; moto accepts all three.
    for _ in 0..3 {
        let fetched = f.get("/sig/db").await.expect("signed request accepted");
        let config =
            CachedConfig::from_fetched("/sig/db", fetched, Duration::from_secs(60)).unwrap();
        assert_eq!(
            (config.config.host.as_str(), config.config.user.as_str()),
            ("db.internal", "owner")
        );
    }
    assert_eq!(f.attempts(), Attempts { sdk: 1, direct: 2 });

    // GetParameters, direct from the start (the route is known).
    let (main, creds) = f
        .get_pair("/sig/db", "/sig/creds")
        .await
        .expect("signed GetParameters accepted");
    assert_eq!((main.version, creds.version), (1, 1));
    assert!(
        creds.value.expose().contains(CANARY),
        "the credentials parameter's value, decrypted"
    );
    assert_eq!(f.attempts(), Attempts { sdk: 1, direct: 3 });

    // A key AWS does not accept: the SDK's attempt fails as access denied,
    // and so does the direct one, with no secret in the message.
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "not-the-secret");
    let refused = SsmFetcher::new(&settings).await.expect("fetcher");
    let err = refused.get("/sig/db").await.unwrap_err();
    assert_eq!(
        err.kind(),
        ssm_db_config_core::ErrorKind::AccessDenied,
        "{err}"
    );
    assert!(!err.to_string().contains("not-the-secret"));
    assert_eq!(refused.attempts(), Attempts { sdk: 1, direct: 0 });
}

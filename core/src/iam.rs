//! IAM database authentication tokens: what `DB_PASSWORD` is for a value
//! with `auth=iam` (see [`crate::parse::Auth`]).
//!
//! A token is a SigV4 request for the `rds-db` service, presigned in the
//! query string: `GET https://<host>:<port>/?Action=connect&DBUser=<user>`,
//! valid for [`TOKEN_LIFETIME`], written without its `https://` scheme. RDS
//! and Aurora check its signature against the IAM principal's keys, and that
//! it has not expired, when the client logs in with it as the password. It
//! is made locally from the host's AWS credentials: no network call.
//!
//! [`auth_token`] is exactly what boto3's `rds.generate_db_auth_token`
//! makes for the same inputs (byte for byte; `core/tests/iam_token.rs`
//! compares them for a table of cases). The signing is `aws-sigv4`'s, the
//! SDK's own signer; only the order of the query's parameters is laid out
//! here, to boto3's (the signature after the session token, last), which RDS
//! does not mind but which makes the tokens comparable.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::{Error, SecretString};

/// How long RDS accepts a token after its signing time (boto3's and RDS's 15 minutes).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// When a token is made again: two thirds into its life, leaving five
/// minutes for the background signing (and a credential refresh) to happen
/// before a connection could be refused.
pub const REFRESH_AFTER: Duration = Duration::from_secs(600);

/// Past this age a token is not served: a connection opened with it could
/// meet a token seconds from expiry. A request then waits for a new one.
pub const SERVE_UNTIL: Duration = Duration::from_secs(840);

/// The service name IAM database authentication signs for.
const SERVICE: &str = "rds-db";

/// RFC 3986's unreserved characters stay as they are, everything else is
/// percent-encoded: botocore's `quote(safe='-_.~')`, and SigV4's rule.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

const SIGNING_FAILED: &str = "an IAM database authentication token could not be signed for this endpoint (a host name, an IPv4 address or an IPv6 address is expected)";

/// A token made for a cached value, and when. `Debug` prints the token
/// redacted; tokens are compared through [`crate::ExposeSecret`] where they must be.
#[derive(Debug, Clone)]
pub struct IamToken {
    /// The token, `DB_PASSWORD`.
    pub token: SecretString,
    /// When it was signed (`CLOCK_MONOTONIC` ns, the cache's clock).
    pub signed_ns: u64,
    /// The region it was signed for.
    pub region: String,
}

impl IamToken {
    /// The token's age at `now_ns`.
    pub fn age(&self, now_ns: u64) -> Duration {
        Duration::from_nanos(now_ns.saturating_sub(self.signed_ns))
    }

    /// When (`CLOCK_MONOTONIC` ns) it is due to be made again.
    pub fn refresh_at_ns(&self) -> u64 {
        self.signed_ns + REFRESH_AFTER.as_nanos() as u64
    }
}

/// Where a token is for: the endpoint RDS will see and the database user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenEndpoint {
    /// The RDS endpoint's host name (or address, IPv6 without brackets): the
    /// one RDS knows itself by, not a CNAME pointing at it.
    pub host: String,
    /// The port the client connects to.
    pub port: u16,
    /// The database user the token logs in as.
    pub user: String,
    /// The AWS region of the database.
    pub region: String,
}

/// Makes the token for `endpoint` with `credentials`, signed at `time`
/// (the token is valid from then for [`TOKEN_LIFETIME`]).
///
/// A pure function of its arguments. The result has the form
/// `host:port/?Action=connect&DBUser=...&X-Amz-...&X-Amz-Signature=<hex>`.
///
/// # Errors
/// [`Error::BadConfiguration`] if the endpoint cannot be written as a URL
/// (not a valid host name or address); the parser refuses such hosts first.
pub fn auth_token(
    credentials: &Credentials,
    endpoint: &TokenEndpoint,
    time: SystemTime,
) -> Result<SecretString, Error> {
    let host = if endpoint.host.contains(':') {
        format!("[{}]", endpoint.host)
    } else {
        endpoint.host.clone()
    };
    let authority = format!("{host}:{}", endpoint.port);
    let user = utf8_percent_encode(&endpoint.user, QUERY_VALUE).to_string();
    let uri = format!("https://{authority}/?Action=connect&DBUser={user}");

    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&endpoint.region)
        .name(SERVICE)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|_| Error::BadConfiguration(SIGNING_FAILED.into()))?
        .into();
    let request = SignableRequest::new("GET", uri, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|_| Error::BadConfiguration(SIGNING_FAILED.into()))?;
    let (instructions, _) = sign(request, &params)
        .map_err(|_| Error::BadConfiguration(SIGNING_FAILED.into()))?
        .into_parts();

    let mut query: Vec<(&str, &str)> = vec![("Action", "connect"), ("DBUser", &endpoint.user)];
    let mut signature = None;
    for (name, value) in instructions.params() {
        if *name == "X-Amz-Signature" {
            signature = Some(value.as_ref());
        } else {
            query.push((name, value.as_ref()));
        }
    }
    // boto3's layout: aws-sigv4's order, except that the signature comes
    // after the session token, last.
    let signature = signature.ok_or_else(|| Error::BadConfiguration(SIGNING_FAILED.into()))?;
    query.push(("X-Amz-Signature", signature));
    let mut token = format!("{authority}/?");
    for (i, (name, value)) in query.iter().enumerate() {
        if i > 0 {
            token.push('&');
        }
        token.push_str(name);
        token.push('=');
        token.extend(utf8_percent_encode(value, QUERY_VALUE));
    }
    Ok(SecretString::from(token))
}

pub use crate::parse::region_from_host;

/// Whether a token signed `age` ago is due to be made again.
pub fn refresh_due(age: Duration) -> bool {
    age >= REFRESH_AFTER
}

/// Whether a forced refresh (after a refused login) that keeps the value
/// held signs its token again: not within a second of the last signing,
/// which would make the same token (its time has whole seconds) and, with a
/// drop-in forcing a refresh on each failed request, sign for every one.
pub fn sign_again_when_forced(age: Duration) -> bool {
    age >= Duration::from_secs(1)
}

/// Whether a token signed `age` ago may still be handed to a request.
pub fn servable(age: Duration) -> bool {
    age < SERVE_UNTIL
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExposeSecret;

    fn creds(token: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            token.map(str::to_owned),
            None,
            "test",
        )
    }

    fn endpoint(host: &str, port: u16, user: &str) -> TokenEndpoint {
        TokenEndpoint {
            host: host.into(),
            port,
            user: user.into(),
            region: "eu-west-1".into(),
        }
    }

    #[test]
    fn token_is_host_port_and_query_without_scheme() {
        let t = auth_token(
            &creds(None),
            &endpoint(
                "shop.cluster-abc.eu-west-1.rds.amazonaws.com",
                3306,
                "wp_iam",
            ),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
        .unwrap();
        let t = t.expose_secret();
        assert!(t.starts_with("shop.cluster-abc.eu-west-1.rds.amazonaws.com:3306/?Action=connect&DBUser=wp_iam&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20231114%2Feu-west-1%2Frds-db%2Faws4_request&X-Amz-Date=20231114T221320Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature="), "{t}");
        assert!(!t.contains("https://"));
    }

    #[test]
    fn token_changes_with_time_user_and_session_token() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let e = endpoint("h.example", 5432, "u");
        let a = auth_token(&creds(None), &e, at).unwrap();
        let other = |c: &Credentials, e: &TokenEndpoint, at| {
            auth_token(c, e, at).unwrap().expose_secret().to_owned()
        };
        assert_ne!(
            a.expose_secret(),
            other(&creds(None), &e, at + Duration::from_secs(1))
        );
        assert_ne!(
            a.expose_secret(),
            other(&creds(None), &endpoint("h.example", 5432, "v"), at)
        );
        let s = auth_token(&creds(Some("tok/+=")), &e, at).unwrap();
        assert!(s.expose_secret().contains(
            "&X-Amz-SignedHeaders=host&X-Amz-Security-Token=tok%2F%2B%3D&X-Amz-Signature="
        ));
    }

    #[test]
    fn region_comes_from_rds_endpoint_names_only() {
        for (host, region) in [
            (
                "shop.cluster-abc.eu-west-1.rds.amazonaws.com",
                Some("eu-west-1"),
            ),
            (
                "shop.cluster-ro-abc.us-east-2.rds.amazonaws.com.",
                Some("us-east-2"),
            ),
            (
                "db1.abcdefgh.ap-southeast-2.rds.amazonaws.com",
                Some("ap-southeast-2"),
            ),
            (
                "wp.proxy-abc.eu-central-1.rds.amazonaws.com",
                Some("eu-central-1"),
            ),
            ("db.abc.cn-north-1.rds.amazonaws.com.cn", Some("cn-north-1")),
            (
                "shop.cluster-abc.EU-WEST-1.RDS.AmazonAWS.com",
                Some("eu-west-1"),
            ),
            ("db.internal.example", None),
            ("rds.amazonaws.com", None),
            ("eu-west-1.rds.amazonaws.com", None),
            ("db.abc.eu-west-1.rds.example.com", None),
            ("10.0.0.5", None),
            ("2001:db8::1", None),
        ] {
            assert_eq!(region_from_host(host).as_deref(), region, "{host}");
        }
    }

    #[test]
    fn token_is_made_again_after_ten_minutes_and_not_served_after_fourteen() {
        let m = |s| Duration::from_secs(s);
        assert!(!refresh_due(m(599)) && refresh_due(m(600)));
        assert!(servable(m(839)) && !servable(m(840)));
        let ms = Duration::from_millis;
        assert!(!sign_again_when_forced(ms(0)) && !sign_again_when_forced(ms(999)));
        assert!(sign_again_when_forced(ms(1000)) && sign_again_when_forced(m(700)));
        const { assert!(REFRESH_AFTER.as_secs() < SERVE_UNTIL.as_secs()) };
        const { assert!(SERVE_UNTIL.as_secs() < TOKEN_LIFETIME.as_secs()) };
    }
}

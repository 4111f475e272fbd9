//! Reading a parameter from SSM Parameter Store.
//!
//! [`SsmFetcher`] owns one SDK client, built from the default AWS chain
//! (environment, profile, web identity, ECS, IMDSv2) plus our overrides. Every
//! call runs under one budget (`timeout`, the SDK's operation timeout) that
//! covers credential resolution, connecting, retries and reading the answer.
//!
//! Retries are the SDK's standard mode (exponential backoff with full jitter,
//! and its retry quota, which stops retrying when most recent attempts of the
//! process failed), set to [`policy::MAX_ATTEMPTS`],
//! [`policy::RETRY_INITIAL_BACKOFF`] and [`policy::RETRY_MAX_BACKOFF`], with one
//! change: a throttle is never retried inside a fetch ([`NoRetryOnThrottle`];
//! [`policy::retry_after`] says why and models this for the fleet simulation).
//! [`SsmFetcher::requests`] counts the requests sent, retries included.
//!
//! AWS failures are classified here into [`Error`] kinds from the error's
//! *type*, its AWS error code and its HTTP status: never from its `Display`
//! text, which for the SDK includes the raw response.

use std::error::Error as StdError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, InterceptorContext,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority, RetryReason,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::ErrorKind as RetryErrorKind;

use crate::{policy, Error, ExposeSecret, SecretString};

/// Where and how to reach SSM. Anything left `None` comes from the default AWS chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchSettings {
    /// Region override (`ssm_db_config.region`); else `AWS_REGION`, the profile, IMDS.
    pub region: Option<String>,
    /// Endpoint override (`ssm_db_config.endpoint_url`): VPC endpoints, local emulators.
    pub endpoint_url: Option<String>,
    /// Budget for one whole fetch, retries included.
    pub timeout: Duration,
    /// The environment the SDK resolves its settings and credentials from
    /// (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, the ECS and EKS variables, `HOME`
    /// for the profile files...); `None`: the process's own.
    pub environment: Option<Arc<Environment>>,
}

/// Environment variables handed to the AWS SDK instead of the process's.
///
/// A php-fpm worker's environment is emptied by `clear_env = yes`; the
/// extension captures the master's `AWS_*` variables and gives them to the
/// SDK here, never to the process environment, where `getenv()`, `$_SERVER`
/// and phpinfo() would show them to every script. `Debug` lists the names only.
#[derive(Clone, Default)]
pub struct Environment {
    vars: Vec<(String, SecretString)>,
}

impl Environment {
    /// An environment of these variables; a name given twice keeps its first value.
    pub fn new(vars: impl IntoIterator<Item = (String, SecretString)>) -> Environment {
        let mut seen = std::collections::HashSet::new();
        Environment {
            vars: vars
                .into_iter()
                .filter(|(k, _)| seen.insert(k.clone()))
                .collect(),
        }
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.expose_secret())
    }

    fn to_sdk_env(&self) -> aws_types::os_shim_internal::Env {
        let map: std::collections::HashMap<String, String> = self
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.expose_secret().to_owned()))
            .collect();
        aws_types::os_shim_internal::Env::from(map)
    }
}

/// Two environments are equal when they hold the same variables with the
/// same values (a changed key must give a new client).
impl PartialEq for Environment {
    fn eq(&self, other: &Self) -> bool {
        self.vars.len() == other.vars.len()
            && self
                .vars
                .iter()
                .zip(&other.vars)
                .all(|((k, v), (l, w))| k == l && v.expose_secret() == w.expose_secret())
    }
}

impl Eq for Environment {}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.vars.iter().map(|(k, _)| k))
            .finish()
    }
}

/// One parameter as SSM returned it.
#[derive(Debug, Clone)]
pub struct FetchedParameter {
    /// The value, decrypted.
    pub value: SecretString,
    /// The parameter's version number.
    pub version: i64,
    /// How long the fetch took.
    pub duration: Duration,
}

/// An SSM client plus the settings it was built with.
#[derive(Debug, Clone)]
pub struct SsmFetcher {
    client: aws_sdk_ssm::Client,
    /// Requests sent to SSM, retries included (see [`RequestCounter`]).
    requests: Arc<AtomicU64>,
    /// The SDK's credential chain, which also signs IAM database tokens.
    credentials: Option<SharedCredentialsProvider>,
    region: String,
    timeout: Duration,
}

/// Upper bound for establishing a TCP/TLS connection, within the overall budget:
/// a black-holed endpoint must leave time for a retry on another address.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);

impl SsmFetcher {
    /// Loads the AWS configuration and builds a client. Needs a tokio runtime.
    pub async fn new(settings: &FetchSettings) -> Result<Self, Error> {
        // Set here, the retry settings win over AWS_MAX_ATTEMPTS,
        // AWS_RETRY_MODE and the profile's: how often a host calls SSM is
        // the policy's decision, not the environment's.
        let retry = RetryConfig::standard()
            .with_max_attempts(policy::MAX_ATTEMPTS)
            .with_initial_backoff(policy::RETRY_INITIAL_BACKOFF)
            .with_max_backoff(policy::RETRY_MAX_BACKOFF);
        // The SDK takes an endpoint from the environment too: the same rules
        // as the directive (no credentials in it, http:// only to loopback).
        crate::endpoint::check_environment(
            |name| match &settings.environment {
                Some(environment) => environment.get(name).map(str::to_owned),
                None => std::env::var(name).ok(),
            },
            &crate::endpoint::SSM_ENVIRONMENT,
        )
        .map_err(Error::BadConfiguration)?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(settings.timeout.min(MAX_CONNECT_TIMEOUT))
                    .operation_timeout(settings.timeout)
                    .build(),
            );
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url.clone());
        }
        if let Some(environment) = &settings.environment {
            // aws-config's own seam for the environment it reads (compiled
            // in by its `test-util` feature, which adds nothing else to the
            // build): every provider of the default chain reads from it.
            loader = loader.env(environment.to_sdk_env());
        }
        let sdk_config = match tokio::time::timeout(settings.timeout, loader.load()).await {
            Ok(config) => config,
            Err(_) => {
                return Err(Error::BadConfiguration(format!(
                    "loading the AWS configuration took longer than {} ms",
                    settings.timeout.as_millis()
                )))
            }
        };
        let region = sdk_config
            .region()
            .map(|r| r.to_string())
            .ok_or_else(|| Error::BadConfiguration(NO_REGION.into()))?;
        let requests = Arc::<AtomicU64>::default();
        let config = aws_sdk_ssm::config::Builder::from(&sdk_config)
            .retry_classifier(NoRetryOnThrottle)
            .interceptor(RequestCounter(requests.clone()))
            .build();
        Ok(SsmFetcher {
            client: aws_sdk_ssm::Client::from_conf(config),
            requests,
            credentials: sdk_config.credentials_provider(),
            region,
            timeout: settings.timeout,
        })
    }

    /// Makes the IAM database authentication token for `config` (a value
    /// with `auth=iam`), signed now with the credentials SSM is read with.
    /// The region is the one the endpoint's name says (see
    /// [`crate::iam::region_from_host`]), else this client's. The
    /// credentials are the SDK's cached ones: a network call only when they
    /// are due for renewal (instance or container credentials), bounded by
    /// the fetch budget.
    ///
    /// # Errors
    /// [`Error::NoCredentials`] (naming `parameter`) when the chain gives
    /// none in time; [`Error::BadConfiguration`] if the value is not an IAM value.
    pub async fn iam_token(
        &self,
        parameter: &str,
        config: &crate::DbConfig,
    ) -> Result<crate::iam::IamToken, Error> {
        // Transient as for a fetch: a provider that failed or timed out may
        // answer next time; a chain with no provider needs the operator.
        let no_credentials = |reason: &str, transient: bool| Error::NoCredentials {
            parameter: parameter.to_owned(),
            reason: reason.to_owned(),
            transient,
        };
        let host = config.iam_sign_host().ok_or_else(|| {
            Error::BadConfiguration("an IAM token was asked for a value without auth=iam".into())
        })?;
        let provider = self.credentials.as_ref().ok_or_else(|| {
            no_credentials("the AWS configuration has no credential provider", false)
        })?;
        let credentials =
            match tokio::time::timeout(self.timeout, provider.provide_credentials()).await {
                Ok(Ok(credentials)) => credentials,
                Ok(Err(e)) => {
                    let transient = matches!(
                        e,
                        CredentialsError::ProviderTimedOut(_) | CredentialsError::ProviderError(_)
                    );
                    return Err(no_credentials(credentials_reason(&e), transient));
                }
                Err(_) => return Err(no_credentials("the credential provider timed out", true)),
            };
        let endpoint = crate::iam::TokenEndpoint {
            host: host.to_owned(),
            port: config.port,
            user: config.user.clone(),
            region: crate::iam::region_from_host(host).unwrap_or_else(|| self.region.clone()),
        };
        let signed_at = std::time::SystemTime::now();
        let signed_ns = policy::mono_now_ns();
        let token = crate::iam::auth_token(&credentials, &endpoint, signed_at)?;
        Ok(crate::iam::IamToken {
            token,
            signed_ns,
            region: endpoint.region,
        })
    }

    /// How many requests this client has sent to SSM, retries included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The region in use.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The budget of one whole fetch.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Reads one parameter, decrypting a SecureString. `name` may carry a
    /// version or label selector (`/app/db:3`, `/app/db:prod`).
    pub async fn get(&self, name: &str) -> Result<FetchedParameter, Error> {
        let started = Instant::now();
        let output = self
            .client
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| classify_sdk_error(name, self.timeout, e))?;
        let parameter = output.parameter.ok_or_else(|| no_parameter(name))?;
        let value = parameter
            .value
            .ok_or_else(|| Error::invalid(name, "the parameter has no value"))?;
        Ok(FetchedParameter {
            value: SecretString::from(value),
            version: parameter.version,
            duration: started.elapsed(),
        })
    }

    /// Reads two parameters in one GetParameters call, so that both values
    /// come from one moment (the endpoint and the rotated password of one
    /// snapshot).
    pub async fn get_pair(
        &self,
        name: &str,
        credentials: &str,
    ) -> Result<(FetchedParameter, FetchedParameter), Error> {
        let started = Instant::now();
        let output = self
            .client
            .get_parameters()
            .names(name)
            .names(credentials)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| classify_sdk_error(name, self.timeout, e))?;
        let found = output
            .parameters
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.name.unwrap_or_default(), p.value, p.version));
        pick_pair(
            name,
            credentials,
            output.invalid_parameters.as_deref().unwrap_or_default(),
            found,
            started.elapsed(),
        )
    }
}

/// Counts the requests the client sends: every attempt, retries included.
#[derive(Debug)]
struct RequestCounter(Arc<AtomicU64>);

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "ssm_db_config::RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Forbids retrying whatever the SDK's own classifiers call a throttle (an
/// AWS throttling code, or HTTP 429), as [`policy::retry_after`] decides.
/// It runs after them, so it sees their verdict and overrides only that one.
#[derive(Debug)]
struct NoRetryOnThrottle;

impl ClassifyRetry for NoRetryOnThrottle {
    fn classify_retry(&self, _ctx: &InterceptorContext) -> RetryAction {
        RetryAction::NoActionIndicated
    }

    fn classify_retry_v2(&self, _ctx: &InterceptorContext, previous: &RetryAction) -> RetryAction {
        match previous {
            RetryAction::RetryIndicated(RetryReason::RetryableError {
                kind: RetryErrorKind::ThrottlingError,
                ..
            }) => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "ssm_db_config::NoRetryOnThrottle"
    }

    fn priority(&self) -> RetryClassifierPriority {
        // The SDK's classifiers run at the transient-error classifier's
        // priority or before it.
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// The two parameters of a GetParameters answer: `name`'s and the other one.
fn pick_pair(
    name: &str,
    credentials: &str,
    invalid: &[String],
    found: impl Iterator<Item = (String, Option<String>, i64)>,
    duration: Duration,
) -> Result<(FetchedParameter, FetchedParameter), Error> {
    if let Some(invalid) = invalid.first() {
        return Err(Error::NotFound {
            parameter: invalid.clone(),
        });
    }
    let (mut main, mut creds) = (None, None);
    for (found_name, value, version) in found {
        if main.is_none() && (found_name == name || found_name == without_selector(name)) {
            main = Some((value, version));
        } else if creds.is_none() {
            // The other one. (Secrets Manager references come back under the
            // secret's own name rather than the /aws/reference/... path.)
            creds = Some((value, version));
        }
    }
    let take = |found: Option<(Option<String>, i64)>,
                wanted: &str|
     -> Result<FetchedParameter, Error> {
        let (value, version) = found.ok_or_else(|| Error::NotFound {
            parameter: wanted.to_owned(),
        })?;
        let value = value.ok_or_else(|| Error::invalid(wanted, "the parameter has no value"))?;
        Ok(FetchedParameter {
            value: SecretString::from(value),
            version,
            duration,
        })
    };
    Ok((take(main, name)?, take(creds, credentials)?))
}

fn no_parameter(name: &str) -> Error {
    Error::Service {
        parameter: name.into(),
        reason: "the response had no parameter".into(),
        transient: true,
    }
}

/// An answer with a body we cannot read.
fn unreadable(name: &str, status: u16) -> Error {
    Error::Service {
        parameter: name.into(),
        reason: format!("unreadable response (HTTP {status})"),
        transient: true,
    }
}

/// "/app/db:3" -> "/app/db" (GetParameters answers with the bare name).
fn without_selector(name: &str) -> &str {
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    }
}

const NO_REGION: &str =
    "no AWS region: set ssm_db_config.region (or AWS_REGION), or run where the instance metadata service gives one";

/// Classifies a failed SDK call into an [`Error`] naming `target` (a
/// parameter, or for the monitor an instance): by the error's type, its AWS
/// error code and its HTTP status, never its `Display`. `budget` is the
/// call's operation timeout, which a timeout reports. The one classification
/// of AWS failures, for every SDK operation of the extension and the monitor.
pub fn classify_sdk_error<E>(target: &str, budget: Duration, err: SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    let parameter = target.to_owned();
    if let Some(failure) = sources(&err).find_map(|e| e.downcast_ref::<CredentialsError>()) {
        return Error::NoCredentials {
            parameter,
            reason: credentials_reason(failure).to_owned(),
            transient: matches!(
                failure,
                CredentialsError::ProviderTimedOut(_) | CredentialsError::ProviderError(_)
            ),
        };
    }
    match &err {
        SdkError::TimeoutError(_) => Error::Timeout { parameter, budget },
        SdkError::DispatchFailure(failure) => {
            if failure.is_timeout() {
                Error::Timeout { parameter, budget }
            } else {
                Error::Network {
                    parameter,
                    reason: io_reason(&err),
                }
            }
        }
        SdkError::ConstructionFailure(_) => Error::BadConfiguration(format!(
            "the request for \"{parameter}\" could not be built"
        )),
        // A body cut short by the connection is a network failure, not a bad answer.
        SdkError::ResponseError(_) if has_io_error(&err) => Error::Network {
            parameter,
            reason: io_reason(&err),
        },
        SdkError::ResponseError(response) => {
            let status = response.raw().status().as_u16();
            match response.raw().body().bytes().and_then(error_code_in_body) {
                // An error answered in the other protocol's shape (XML from a
                // JSON service, as IAM-style auth failures can be): its code
                // still says what happened.
                Some(code) => classify_code(parameter, Some(&code), status),
                None => unreadable(&parameter, status),
            }
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            classify_code(parameter, service.err().code(), status)
        }
        _ => Error::Service {
            parameter,
            reason: "unexpected SDK error".into(),
            transient: true,
        },
    }
}

/// Maps an AWS error code (and the HTTP status) to a kind. Shared by every
/// operation, and by the monitor for its RDS, SSM and CloudWatch calls.
pub fn classify_code(parameter: String, code: Option<&str>, status: u16) -> Error {
    match code.unwrap_or("") {
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" | "RequestLimitExceeded" => {
            Error::Throttled { parameter }
        }
        "ParameterNotFound" | "ParameterVersionNotFound" | "ResourceNotFoundException" => Error::NotFound { parameter },
        code @ ("AccessDeniedException" | "AccessDenied" | "KMSAccessDeniedException" | "InvalidKeyId"
        | "KMSDisabledException" | "ExpiredTokenException" | "InvalidSignatureException" | "SignatureDoesNotMatch"
        | "IncompleteSignature") => {
            Error::AccessDenied { parameter, aws_code: code.to_owned() }
        }
        "UnrecognizedClientException" | "InvalidClientTokenId" | "MissingAuthenticationToken" => {
            Error::NoCredentials { parameter, reason: "AWS does not recognise the access key".into(), transient: false }
        }
        "ValidationException" => Error::BadConfiguration(format!(
            "SSM rejected the parameter name \"{parameter}\" (names are /path/name, optionally :version or :label)"
        )),
        _ if status == 429 => Error::Throttled { parameter },
        code => Error::Service {
            reason: match code {
                "" => format!("HTTP {status}"),
                code => format!("{code} (HTTP {status})"),
            },
            parameter,
            transient: status >= 500 || status == 0,
        },
    }
}

/// The AWS error code in a response body (`<Code>X</Code>` or `"__type":"X"`),
/// and nothing else from it: only a short identifier is ever taken.
fn error_code_in_body(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let rest = match text.find("<Code>") {
        Some(i) => &text[i + "<Code>".len()..],
        None => {
            let i = text.find("\"__type\"")?;
            text[i + "\"__type\"".len()..]
                .trim_start()
                .strip_prefix(':')?
                .trim_start()
                .strip_prefix('"')?
        }
    };
    let code: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '#' | ':' | '_'))
        .collect();
    // "com.amazon.coral.service#AccessDeniedException" -> "AccessDeniedException"
    let code = code
        .rsplit(['#', ':'])
        .next()
        .unwrap_or_default()
        .to_owned();
    (!code.is_empty() && code.len() <= 64).then_some(code)
}

fn sources<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |e: &&'a (dyn StdError + 'static)| (*e).source())
}

/// Why the credential chain gave nothing, without its own text.
fn credentials_reason(err: &CredentialsError) -> &'static str {
    match err {
        CredentialsError::CredentialsNotLoaded(_) => {
            "no credentials were found in the environment, profile, container or instance metadata"
        }
        CredentialsError::ProviderTimedOut(_) => "the credential provider timed out",
        CredentialsError::InvalidConfiguration(_) => "the credential configuration is invalid",
        CredentialsError::ProviderError(_) => "the credential provider failed",
        _ => "the credential provider failed unexpectedly",
    }
}

fn has_io_error(err: &(dyn StdError + 'static)) -> bool {
    sources(err).any(|e| e.is::<std::io::Error>())
}

fn io_reason(err: &(dyn StdError + 'static)) -> String {
    use std::io::ErrorKind as K;
    let kind = sources(err)
        .find_map(|e| e.downcast_ref::<std::io::Error>())
        .map(|io| io.kind());
    match kind {
        Some(K::ConnectionRefused) => "connection refused",
        Some(K::ConnectionReset) => "connection reset",
        Some(K::ConnectionAborted) => "connection aborted",
        Some(K::UnexpectedEof) => "connection closed before the response was complete",
        Some(K::TimedOut) => "connection timed out",
        Some(K::NotFound) => "host not found",
        Some(_) => "I/O error",
        None => "the request could not be sent",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_error_code_in_xml_and_json_bodies_only() {
        assert_eq!(error_code_in_body(b"<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code><Message>secret stuff</Message>").as_deref(), Some("InvalidClientTokenId"));
        assert_eq!(
            error_code_in_body(
                br#"{"__type":"com.amazon.coral.service#AccessDeniedException","message":"x"}"#
            )
            .as_deref(),
            Some("AccessDeniedException")
        );
        assert_eq!(
            error_code_in_body(br#"{"__type": "ThrottlingException"}"#).as_deref(),
            Some("ThrottlingException")
        );
        assert_eq!(error_code_in_body(b"<html>oops</html>"), None);
        assert_eq!(error_code_in_body(&[0xff, 0xfe]), None);
    }

    #[test]
    fn classifies_aws_codes_into_kinds() {
        use crate::ErrorKind as K;
        let kind = |code: Option<&str>, status| classify_code("/p".into(), code, status).kind();
        assert_eq!(kind(Some("ThrottlingException"), 400), K::Throttled);
        assert_eq!(kind(Some("AccessDeniedException"), 400), K::AccessDenied);
        assert_eq!(
            kind(Some("UnrecognizedClientException"), 400),
            K::NoCredentials
        );
        assert_eq!(kind(Some("ValidationException"), 400), K::BadConfiguration);
        assert_eq!(kind(None, 429), K::Throttled);
        let e = classify_code("/p".into(), Some("InternalServerError"), 500);
        assert_eq!(e.kind(), K::Service);
        assert!(e.is_transient());
        assert!(!classify_code("/p".into(), Some("Weird"), 400).is_transient());
    }

    /// The one classification, by the shape of the SDK's error: a table of
    /// every case the extension and the monitor meet.
    #[test]
    fn classifies_sdk_errors_by_type_code_and_status() {
        use crate::ErrorKind as K;
        use aws_sdk_ssm::operation::get_parameter::GetParameterError;
        use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
        use aws_smithy_runtime_api::client::result::ConnectorError;
        use aws_smithy_runtime_api::http::StatusCode;
        use aws_smithy_types::body::SdkBody;
        use aws_smithy_types::error::ErrorMetadata;

        type E = SdkError<GetParameterError, HttpResponse>;
        let raw = |status: u16, body: &'static str| {
            HttpResponse::new(
                StatusCode::try_from(status).expect("status"),
                SdkBody::from(body),
            )
        };
        let service = |code: &str, status: u16| -> E {
            SdkError::service_error(
                GetParameterError::generic(ErrorMetadata::builder().code(code).build()),
                raw(status, ""),
            )
        };
        let io = |kind: std::io::ErrorKind| -> E {
            SdkError::dispatch_failure(ConnectorError::io(Box::new(std::io::Error::from(kind))))
        };
        let credentials = |e: CredentialsError| -> E { SdkError::construction_failure(e) };
        let in_dispatch = |e: CredentialsError| -> E {
            SdkError::dispatch_failure(ConnectorError::other(Box::new(e), None))
        };
        // (case, error, kind, transient)
        let table: Vec<(&str, E, K, bool)> = vec![
            (
                "throttle",
                service("ThrottlingException", 400),
                K::Throttled,
                true,
            ),
            ("429 without a code", service("", 429), K::Throttled, true),
            (
                "not found",
                service("ParameterNotFound", 400),
                K::NotFound,
                false,
            ),
            (
                "denied",
                service("AccessDeniedException", 400),
                K::AccessDenied,
                false,
            ),
            (
                "KMS denied",
                service("KMSAccessDeniedException", 400),
                K::AccessDenied,
                false,
            ),
            (
                "unknown key",
                service("UnrecognizedClientException", 403),
                K::NoCredentials,
                false,
            ),
            (
                "invalid name",
                service("ValidationException", 400),
                K::BadConfiguration,
                false,
            ),
            ("5xx", service("InternalServerError", 500), K::Service, true),
            ("4xx", service("Weird", 400), K::Service, false),
            ("timeout", SdkError::timeout_error("slow"), K::Timeout, true),
            (
                "connect timeout",
                SdkError::dispatch_failure(ConnectorError::timeout("slow".into())),
                K::Timeout,
                true,
            ),
            (
                "refused",
                io(std::io::ErrorKind::ConnectionRefused),
                K::Network,
                true,
            ),
            (
                "body cut short",
                SdkError::response_error(
                    std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
                    raw(200, ""),
                ),
                K::Network,
                true,
            ),
            (
                "unreadable",
                SdkError::response_error("bad json", raw(200, "{")),
                K::Service,
                true,
            ),
            (
                "XML error code in a JSON service's answer",
                SdkError::response_error(
                    "bad json",
                    raw(403, "<Error><Code>AccessDenied</Code></Error>"),
                ),
                K::AccessDenied,
                false,
            ),
            (
                "no credentials anywhere",
                credentials(CredentialsError::not_loaded("none")),
                K::NoCredentials,
                false,
            ),
            (
                "credentials misconfigured",
                in_dispatch(CredentialsError::invalid_configuration("bad profile")),
                K::NoCredentials,
                false,
            ),
            (
                "credential provider timed out",
                in_dispatch(CredentialsError::provider_timed_out(Duration::from_secs(1))),
                K::NoCredentials,
                true,
            ),
            (
                "credential provider failed",
                credentials(CredentialsError::provider_error("IMDS said 500")),
                K::NoCredentials,
                true,
            ),
            (
                "unbuildable",
                SdkError::construction_failure("no"),
                K::BadConfiguration,
                false,
            ),
        ];
        for (case, err, kind, transient) in table {
            let e = classify_sdk_error("/p", Duration::from_secs(1), err);
            assert_eq!(
                (e.kind(), e.is_transient()),
                (kind, transient),
                "{case}: {e}"
            );
            assert!(e.to_string().contains("/p"), "{case}: {e}");
        }
    }
}

//! Reading a parameter from SSM Parameter Store.
//!
//! [`SsmFetcher`] owns one SDK client, built from the default AWS chain
//! (environment, profile, web identity, ECS, IMDSv2) plus our overrides. Every
//! call runs under one budget (`timeout`) that covers credential resolution,
//! connecting, retries and reading the answer.
//!
//! Once the SDK has answered, later attempts (refreshes, mostly) go out
//! through `core/src/direct.rs`: the same request, endpoint, credentials
//! and connector, without the SDK's request pipeline, which costs more CPU
//! than the rest of a refresh together. A failure there sends the next attempt
//! back through the SDK; [`FetchSettings::direct`] turns the path off.
//! [`SsmFetcher::attempts`] counts the attempts each way.
//!
//! AWS failures are classified here into [`Error`] kinds from the error's
//! *type*, its AWS error code and its HTTP status: never from its `Display`
//! text, which for the SDK includes the raw response.

use std::error::Error as StdError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::result::ConnectorError;
use serde::Deserialize;

use crate::direct::{Direct, RouteCapture};
use crate::{policy, Error, ErrorKind, Secret};

/// Where and how to reach SSM. Anything left `None` comes from the default AWS chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchSettings {
    /// Region override (`ssm_db_config.region`); else `AWS_REGION`, the profile, IMDS.
    pub region: Option<String>,
    /// Endpoint override (`ssm_db_config.endpoint_url`): VPC endpoints, local emulators.
    pub endpoint_url: Option<String>,
    /// Budget for one whole fetch, retries included.
    pub timeout: Duration,
    /// Whether attempts after the SDK's first answer may go out through
    /// `core/src/direct.rs` (`ssm_db_config.direct_refresh`); `false` sends
    /// every one through the SDK.
    pub direct: bool,
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
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Environment {
    vars: Vec<(String, Secret)>,
}

impl Environment {
    /// An environment of these variables; a name given twice keeps its first value.
    pub fn new(vars: impl IntoIterator<Item = (String, Secret)>) -> Environment {
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
            .map(|(_, v)| v.expose())
    }

    fn to_sdk_env(&self) -> aws_types::os_shim_internal::Env {
        let map: std::collections::HashMap<String, String> = self
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_owned()))
            .collect();
        aws_types::os_shim_internal::Env::from(map)
    }
}

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
    pub value: Secret,
    /// The parameter's version number.
    pub version: i64,
    /// How long the fetch took.
    pub duration: Duration,
}

/// An SSM client plus the settings it was built with.
#[derive(Debug, Clone)]
pub struct SsmFetcher {
    client: aws_sdk_ssm::Client,
    /// `None` when the SDK gave no credentials provider or connector.
    direct: Option<Arc<Direct>>,
    /// Attempts made: through the SDK, and direct.
    attempts: Arc<[AtomicU64; 2]>,
    /// The SDK's credential chain, which also signs IAM database tokens.
    credentials: Option<SharedCredentialsProvider>,
    region: String,
    timeout: Duration,
}

/// Which way an attempt went (see [`SsmFetcher::attempts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempts {
    /// Through the SDK's request pipeline.
    pub sdk: u64,
    /// Through `direct` (`core/src/direct.rs`).
    pub direct: u64,
}

impl Attempts {
    /// The attempts made since `earlier` was read.
    pub fn since(self, earlier: Attempts) -> Attempts {
        Attempts {
            sdk: self.sdk - earlier.sdk,
            direct: self.direct - earlier.direct,
        }
    }
}

/// Upper bound for establishing a TCP/TLS connection, within the overall budget:
/// a black-holed endpoint must leave time for a retry on another address.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);

impl SsmFetcher {
    /// Loads the AWS configuration and builds a client. Needs a tokio runtime.
    pub async fn new(settings: &FetchSettings) -> Result<Self, Error> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(aws_config::retry::RetryConfig::disabled())
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
        let route = RouteCapture::default();
        let config = aws_sdk_ssm::config::Builder::from(&sdk_config)
            .interceptor(route.clone())
            .build();
        let direct = match (
            sdk_config.credentials_provider(),
            Direct::default_connector(
                settings.timeout.min(MAX_CONNECT_TIMEOUT),
                sdk_config.sleep_impl(),
            ),
        ) {
            (Some(credentials), Some(connector)) if settings.direct => {
                Some(Arc::new(Direct::new(route, credentials, connector)))
            }
            _ => None,
        };
        Ok(SsmFetcher {
            client: aws_sdk_ssm::Client::from_conf(config),
            direct,
            attempts: Arc::default(),
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
        let no_credentials = |reason: &str| Error::NoCredentials {
            parameter: parameter.to_owned(),
            reason: reason.to_owned(),
        };
        let host = config.iam_sign_host().ok_or_else(|| {
            Error::BadConfiguration("an IAM token was asked for a value without auth=iam".into())
        })?;
        let provider = self
            .credentials
            .as_ref()
            .ok_or_else(|| no_credentials("the AWS configuration has no credential provider"))?;
        let credentials =
            match tokio::time::timeout(self.timeout, provider.provide_credentials()).await {
                Ok(Ok(credentials)) => credentials,
                Ok(Err(e)) => return Err(no_credentials(credentials_reason(&e))),
                Err(_) => return Err(no_credentials("the credential provider timed out")),
            };
        let endpoint = crate::iam::TokenEndpoint {
            host: host.to_owned(),
            port: config.port,
            user: config.user.clone(),
            region: crate::iam::region_from_host(host)
                .unwrap_or(&self.region)
                .to_owned(),
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

    /// How many attempts went through the SDK and how many went direct.
    pub fn attempts(&self) -> Attempts {
        Attempts {
            sdk: self.attempts[0].load(Ordering::Relaxed),
            direct: self.attempts[1].load(Ordering::Relaxed),
        }
    }

    fn count(&self, direct: bool) {
        self.attempts[usize::from(direct)].fetch_add(1, Ordering::Relaxed);
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
        self.with_retries(name, || self.get_once(name)).await
    }

    /// Reads two parameters in one GetParameters call, so that both values
    /// come from one moment (the endpoint and the rotated password of one
    /// snapshot).
    pub async fn get_pair(
        &self,
        name: &str,
        credentials: &str,
    ) -> Result<(FetchedParameter, FetchedParameter), Error> {
        self.with_retries(name, || self.get_pair_once(name, credentials))
            .await
    }

    /// Runs `attempt` until it succeeds, fails for good, or the budget ends.
    /// Whether and when a failure is tried again is [`policy::retry_after`]'s
    /// decision; when the next delay would not fit in the budget, the last
    /// failure is returned as it is (a throttle stays a throttle, not a timeout).
    async fn with_retries<T, F, Fut>(&self, name: &str, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let deadline = Instant::now() + self.timeout;
        let timeout = || Error::Timeout {
            parameter: name.to_owned(),
            budget: self.timeout,
        };
        for n in 0.. {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(timeout());
            }
            let error = match tokio::time::timeout(remaining, attempt()).await {
                Err(_) => return Err(timeout()),
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => e,
            };
            let throttled = error.kind() == crate::ErrorKind::Throttled;
            let Some(delay) = policy::retry_after(
                n,
                error.is_transient(),
                throttled,
                policy::random_fraction(),
            ) else {
                return Err(error);
            };
            if Instant::now() + delay >= deadline {
                return Err(error);
            }
            tokio::time::sleep(delay).await;
        }
        unreachable!("the loop returns")
    }

    /// The direct path, when it may be taken: `None` sends the attempt
    /// through the SDK. An answer that a fresh look through the SDK might
    /// change (credentials refused, as after a rotation or with a skewed
    /// clock) is retried that way at once; any other failure is returned,
    /// and the next attempt goes through the SDK.
    async fn try_direct<T>(
        &self,
        name: &str,
        target: &str,
        body: serde_json::Value,
        read: impl FnOnce(&[u8]) -> Result<T, Error>,
    ) -> Option<Result<T, Error>> {
        let direct = self.direct.as_ref().filter(|d| d.take_turn())?;
        let body = serde_json::to_vec(&body).ok()?;
        self.count(true);
        let result = match direct.call(target, body, name, self.timeout).await {
            Ok(bytes) => read(&bytes),
            Err(e) => Err(e),
        };
        match result {
            Ok(value) => {
                direct.succeeded();
                Some(Ok(value))
            }
            Err(e) => {
                direct.failed();
                match e.kind() {
                    ErrorKind::AccessDenied | ErrorKind::NoCredentials => None,
                    _ => Some(Err(e)),
                }
            }
        }
    }

    fn sdk_answered(&self) {
        if let Some(direct) = &self.direct {
            direct.succeeded();
        }
    }

    async fn get_once(&self, name: &str) -> Result<FetchedParameter, Error> {
        let started = Instant::now();
        let direct = self.try_direct(
            name,
            "AmazonSSM.GetParameter",
            serde_json::json!({"Name": name, "WithDecryption": true}),
            |body| {
                let output: DirectGetParameter =
                    serde_json::from_slice(body).map_err(|_| unreadable(name, 200))?;
                let parameter = output.parameter.ok_or_else(|| no_parameter(name))?;
                let value = parameter
                    .value
                    .ok_or_else(|| Error::invalid(name, "the parameter has no value"))?;
                Ok(FetchedParameter {
                    value: Secret::new(value),
                    version: parameter.version,
                    duration: started.elapsed(),
                })
            },
        );
        if let Some(result) = direct.await {
            return result;
        }
        self.count(false);
        let output = self
            .client
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| classify(name, self.timeout, e))?;
        self.sdk_answered();
        let parameter = output.parameter.ok_or_else(|| no_parameter(name))?;
        let value = parameter
            .value
            .ok_or_else(|| Error::invalid(name, "the parameter has no value"))?;
        Ok(FetchedParameter {
            value: Secret::new(value),
            version: parameter.version,
            duration: started.elapsed(),
        })
    }

    async fn get_pair_once(
        &self,
        name: &str,
        credentials: &str,
    ) -> Result<(FetchedParameter, FetchedParameter), Error> {
        let started = Instant::now();
        let body = serde_json::json!({"Names": [name, credentials], "WithDecryption": true});
        let direct = self.try_direct(name, "AmazonSSM.GetParameters", body, |body| {
            let output: DirectGetParameters =
                serde_json::from_slice(body).map_err(|_| unreadable(name, 200))?;
            let found = output
                .parameters
                .into_iter()
                .map(|p| (p.name.unwrap_or_default(), p.value, p.version));
            pick_pair(
                name,
                credentials,
                &output.invalid_parameters,
                found,
                started.elapsed(),
            )
        });
        if let Some(result) = direct.await {
            return result;
        }
        self.count(false);
        let output = self
            .client
            .get_parameters()
            .names(name)
            .names(credentials)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| classify(name, self.timeout, e))?;
        self.sdk_answered();
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
            value: Secret::new(value),
            version,
            duration,
        })
    };
    Ok((take(main, name)?, take(creds, credentials)?))
}

/// GetParameter's answer, as far as we read it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DirectGetParameter {
    parameter: Option<DirectParameter>,
}

/// GetParameters' answer, as far as we read it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DirectGetParameters {
    #[serde(default)]
    parameters: Vec<DirectParameter>,
    #[serde(default)]
    invalid_parameters: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DirectParameter {
    name: Option<String>,
    value: Option<String>,
    #[serde(default)]
    version: i64,
}

fn no_parameter(name: &str) -> Error {
    Error::Service {
        parameter: name.into(),
        reason: "the response had no parameter".into(),
        transient: true,
    }
}

/// An answer with a body we cannot read, from either path.
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

fn classify<E>(parameter: &str, budget: Duration, err: SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    let parameter = parameter.to_owned();
    if let Some(reason) = credentials_failure(&err) {
        return Error::NoCredentials { parameter, reason };
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
            "the request for SSM parameter \"{parameter}\" could not be built"
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
            Error::NoCredentials { parameter, reason: "AWS does not recognise the access key".into() }
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
pub(crate) fn error_code_in_body(body: &[u8]) -> Option<String> {
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

fn credentials_failure(err: &(dyn StdError + 'static)) -> Option<String> {
    sources(err)
        .find_map(|e| e.downcast_ref::<CredentialsError>())
        .map(|c| credentials_reason(c).to_owned())
}

/// Why the credential chain gave nothing, without its own text.
pub(crate) fn credentials_reason(err: &CredentialsError) -> &'static str {
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

/// A request of the direct path that got no answer.
pub(crate) fn connector_failure(parameter: &str, budget: Duration, err: &ConnectorError) -> Error {
    if err.is_timeout() {
        Error::Timeout {
            parameter: parameter.to_owned(),
            budget,
        }
    } else {
        Error::Network {
            parameter: parameter.to_owned(),
            reason: io_reason(err),
        }
    }
}

fn has_io_error(err: &(dyn StdError + 'static)) -> bool {
    sources(err).any(|e| e.is::<std::io::Error>())
}

pub(crate) fn io_reason(err: &(dyn StdError + 'static)) -> String {
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
}

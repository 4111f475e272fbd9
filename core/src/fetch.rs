//! Reading a parameter from SSM Parameter Store.
//!
//! [`SsmFetcher`] owns one SDK client, built from the default AWS chain
//! (environment, profile, web identity, ECS, IMDSv2) plus our overrides. Every
//! call runs under one budget (`timeout`) that covers credential resolution,
//! connecting, retries and reading the answer.
//!
//! AWS failures are classified here into [`Error`] kinds from the error's
//! *type*, its AWS error code and its HTTP status: never from its `Display`
//! text, which for the SDK includes the raw response.

use std::error::Error as StdError;
use std::time::{Duration, Instant};

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ssm::operation::get_parameter::GetParameterError;

use crate::{Error, Secret};

/// Where and how to reach SSM. Anything left `None` comes from the default AWS chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchSettings {
    /// Region override (`ssm_db_config.region`); else `AWS_REGION`, the profile, IMDS.
    pub region: Option<String>,
    /// Endpoint override (`ssm_db_config.endpoint_url`): VPC endpoints, local emulators.
    pub endpoint_url: Option<String>,
    /// Budget for one whole fetch, retries included.
    pub timeout: Duration,
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
    region: String,
    timeout: Duration,
}

/// Upper bound for establishing a TCP/TLS connection, within the overall budget:
/// a black-holed endpoint must leave time for a retry on another address.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);

impl SsmFetcher {
    /// Loads the AWS configuration and builds a client. Needs a tokio runtime.
    pub async fn new(settings: &FetchSettings) -> Result<Self, Error> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
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
        Ok(SsmFetcher { client: aws_sdk_ssm::Client::new(&sdk_config), region, timeout: settings.timeout })
    }

    /// The region in use.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Reads one parameter, decrypting a SecureString. `name` may carry a
    /// version or label selector (`/app/db:3`, `/app/db:prod`).
    pub async fn get(&self, name: &str) -> Result<FetchedParameter, Error> {
        let started = Instant::now();
        let call = self.client.get_parameter().name(name).with_decryption(true).send();
        let output = match tokio::time::timeout(self.timeout, call).await {
            Err(_) => return Err(Error::Timeout { parameter: name.to_owned(), budget: self.timeout }),
            Ok(Err(e)) => return Err(classify(name, self.timeout, e)),
            Ok(Ok(output)) => output,
        };
        let parameter = output
            .parameter
            .ok_or_else(|| Error::Service { parameter: name.into(), reason: "the response had no parameter".into(), transient: true })?;
        let value = parameter
            .value
            .ok_or_else(|| Error::invalid(name, "the parameter has no value"))?;
        Ok(FetchedParameter { value: Secret::new(value), version: parameter.version, duration: started.elapsed() })
    }
}

const NO_REGION: &str =
    "no AWS region: set ssm_db_config.region (or AWS_REGION), or run where the instance metadata service gives one";

fn classify(parameter: &str, budget: Duration, err: SdkError<GetParameterError>) -> Error {
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
                Error::Network { parameter, reason: io_reason(&err) }
            }
        }
        SdkError::ConstructionFailure(_) => {
            Error::BadConfiguration(format!("the request for SSM parameter \"{parameter}\" could not be built"))
        }
        SdkError::ResponseError(response) => Error::Service {
            parameter,
            reason: format!("unreadable response (HTTP {})", response.raw().status().as_u16()),
            transient: true,
        },
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            match service.err() {
                GetParameterError::ParameterNotFound(_) | GetParameterError::ParameterVersionNotFound(_) => {
                    Error::NotFound { parameter }
                }
                GetParameterError::InvalidKeyId(_) => Error::AccessDenied { parameter, aws_code: "InvalidKeyId".into() },
                other => classify_code(parameter, other.code(), status),
            }
        }
        _ => Error::Service { parameter, reason: "unexpected SDK error".into(), transient: true },
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
        | "KMSDisabledException" | "ExpiredTokenException" | "InvalidSignatureException") => {
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

fn sources<'a>(err: &'a (dyn StdError + 'static)) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |e: &&'a (dyn StdError + 'static)| (*e).source())
}

fn credentials_failure(err: &(dyn StdError + 'static)) -> Option<String> {
    sources(err).find_map(|e| e.downcast_ref::<CredentialsError>()).map(|c| {
        match c {
            CredentialsError::CredentialsNotLoaded(_) => "no credentials were found in the environment, profile, container or instance metadata",
            CredentialsError::ProviderTimedOut(_) => "the credential provider timed out",
            CredentialsError::InvalidConfiguration(_) => "the credential configuration is invalid",
            CredentialsError::ProviderError(_) => "the credential provider failed",
            _ => "the credential provider failed unexpectedly",
        }
        .to_owned()
    })
}

fn io_reason(err: &(dyn StdError + 'static)) -> String {
    use std::io::ErrorKind as K;
    let kind = sources(err).find_map(|e| e.downcast_ref::<std::io::Error>()).map(|io| io.kind());
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
    fn classifies_aws_codes_into_kinds() {
        use crate::ErrorKind as K;
        let kind = |code: Option<&str>, status| classify_code("/p".into(), code, status).kind();
        assert_eq!(kind(Some("ThrottlingException"), 400), K::Throttled);
        assert_eq!(kind(Some("AccessDeniedException"), 400), K::AccessDenied);
        assert_eq!(kind(Some("UnrecognizedClientException"), 400), K::NoCredentials);
        assert_eq!(kind(Some("ValidationException"), 400), K::BadConfiguration);
        assert_eq!(kind(None, 429), K::Throttled);
        let e = classify_code("/p".into(), Some("InternalServerError"), 500);
        assert_eq!(e.kind(), K::Service);
        assert!(e.is_transient());
        assert!(!classify_code("/p".into(), Some("Weird"), 400).is_transient());
    }
}

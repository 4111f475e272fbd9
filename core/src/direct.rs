//! GetParameter(s) sent without the SDK's request pipeline, for refreshes.
//!
//! Why: a refresh runs on the CPU that serves the host's requests, every
//! few seconds with a short TTL, its code and data gone cold since the last
//! one; through the SDK, most of it is the orchestrator (runtime plugins,
//! config bag, interceptors, endpoint rules, retry and auth machinery, for
//! one POST). Sending the same request by hand costs a third to three
//! quarters of it, the most saved where the machine is busiest: in
//! `bench/fleet.py` under load, the fetch threads spent 0.52 ms of CPU per
//! SSM request direct against 0.70 through the SDK on a quiet machine, 2.6
//! against 6.1 and 4.0 against 12.0 on a busy one; in PHP CLI on an idle
//! machine, 0.48 against 0.85 ms (`bench/refresh_cpu.py`;
//! `bench/README.md`, session 5).
//!
//! What stays the SDK's, so that an operator's configuration means the same:
//! - the endpoint URL, signing region and signing name, copied from the last
//!   request the SDK itself signed ([`RouteCapture`], an interceptor on the
//!   client), so FIPS, dual-stack, `AWS_ENDPOINT_URL(_SSM)`, profiles and
//!   `ssm_db_config.endpoint_url` resolve once, by the SDK's rules;
//! - the credentials: the client's own provider chain (cached here until
//!   five minutes before they expire);
//! - the HTTP connector: the SDK's default (TLS, connect timeout, pool);
//! - the signer: `aws-sigv4`, which the SDK uses.
//!
//! What is ours: the JSON body, and reading the answer, with errors
//! classified by the same code as the SDK path's (`fetch::classify_code`).
//!
//! The direct path is only taken once the SDK has answered a request (so a
//! route exists), and any failure on it hands the next attempt back to the
//! SDK (see `SsmFetcher`), so clock-skew correction, credential refresh and
//! every error path stay the SDK's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use aws_smithy_types::config_bag::ConfigBag;

use crate::Error;

/// Where and how the SDK sent its last request.
#[derive(Debug, Clone)]
struct Route {
    /// Scheme, authority and path, as the SDK resolved them.
    uri: String,
    /// From the credential scope of the SDK's signature.
    region: String,
    service: String,
    user_agent: Option<String>,
    amz_user_agent: Option<String>,
}

/// The interceptor that copies the route of every request the SDK signs.
/// Only the URI, the scope's region and service name and the user agents are
/// kept: never the access key or the signature.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteCapture(Arc<Mutex<Option<Route>>>);

impl Intercept for RouteCapture {
    fn name(&self) -> &'static str {
        "ssm_db_config::RouteCapture"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let headers = request.headers();
        // "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/ssm/aws4_request, SignedHeaders=..., Signature=..."
        let scope = headers
            .get("authorization")
            .filter(|a| a.starts_with("AWS4-HMAC-SHA256 "))
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|c| c.split(',').next())
            .map(|c| c.split('/').collect::<Vec<_>>());
        let route = match scope.as_deref() {
            Some([_, _, region, service, "aws4_request"]) => Some(Route {
                uri: request.uri().to_owned(),
                region: (*region).to_owned(),
                service: (*service).to_owned(),
                user_agent: headers.get("user-agent").map(str::to_owned),
                amz_user_agent: headers.get("x-amz-user-agent").map(str::to_owned),
            }),
            // Not SigV4 (SigV4a, or unsigned): only the SDK sends those.
            _ => None,
        };
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = route;
        Ok(())
    }
}

/// Sends signed SSM JSON requests over the SDK's connector.
#[derive(Debug)]
pub(crate) struct Direct {
    route: RouteCapture,
    credentials: SharedCredentialsProvider,
    cached: Mutex<Option<Credentials>>,
    connector: SharedHttpConnector,
    /// Whether the next attempt may be direct: set by an answer, cleared
    /// while an attempt is in flight and by a failure.
    usable: AtomicBool,
}

/// Credentials are resolved again this long before they expire.
const CREDENTIALS_MARGIN: Duration = Duration::from_secs(300);

impl Direct {
    pub(crate) fn new(
        route: RouteCapture,
        credentials: SharedCredentialsProvider,
        connector: SharedHttpConnector,
    ) -> Self {
        Direct {
            route,
            credentials,
            cached: Mutex::new(None),
            connector,
            usable: AtomicBool::new(false),
        }
    }

    /// The connector the SDK would build for these settings.
    pub(crate) fn default_connector(
        connect_timeout: Duration,
        sleep: Option<aws_smithy_async::rt::sleep::SharedAsyncSleep>,
    ) -> Option<SharedHttpConnector> {
        let settings = HttpConnectorSettings::builder()
            .connect_timeout(connect_timeout)
            .build();
        aws_smithy_http_client::default_connector(&settings, sleep)
    }

    /// Whether this attempt may go this way. Taking the turn makes the next
    /// attempt the SDK's until [`Direct::succeeded`] says otherwise, so that
    /// an attempt cut off by the budget (its future dropped, no error seen)
    /// counts as a failure too.
    pub(crate) fn take_turn(&self) -> bool {
        self.route.0.lock().is_ok_and(|r| r.is_some()) && self.usable.swap(false, Ordering::Relaxed)
    }

    /// After an answer, from the SDK (its route is fresh) or from here: the
    /// next attempt may be direct.
    pub(crate) fn succeeded(&self) {
        self.usable.store(true, Ordering::Relaxed);
    }

    /// After a failure here: credentials are resolved anew next time.
    pub(crate) fn failed(&self) {
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    async fn credentials(&self, parameter: &str) -> Result<Credentials, Error> {
        let fresh = |c: &Credentials| {
            c.expiry()
                .is_none_or(|at| at > SystemTime::now() + CREDENTIALS_MARGIN)
        };
        if let Some(c) = self
            .cached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|c| fresh(c))
        {
            return Ok(c.clone());
        }
        let credentials =
            self.credentials
                .provide_credentials()
                .await
                .map_err(|e| Error::NoCredentials {
                    parameter: parameter.to_owned(),
                    reason: crate::fetch::credentials_reason(&e).to_owned(),
                })?;
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some(credentials.clone());
        Ok(credentials)
    }

    /// POSTs `body` as the JSON 1.1 operation `target` (`AmazonSSM.GetParameter`)
    /// and returns the body of a 200 answer. Errors name `parameter`.
    pub(crate) async fn call(
        &self,
        target: &str,
        body: Vec<u8>,
        parameter: &str,
        budget: Duration,
    ) -> Result<bytes::Bytes, Error> {
        let route = self
            .route
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| Error::BadConfiguration("no route to SSM yet".into()))?;
        let credentials = self.credentials(parameter).await?;
        let unbuildable = || {
            Error::BadConfiguration(format!(
                "the request for SSM parameter \"{parameter}\" could not be built"
            ))
        };

        let mut request = http::Request::builder()
            .method("POST")
            .uri(&route.uri)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", target)
            .header("content-length", body.len());
        if let Some(ua) = &route.user_agent {
            request = request.header("user-agent", ua);
        }
        if let Some(ua) = &route.amz_user_agent {
            request = request.header("x-amz-user-agent", ua);
        }
        let mut request = request.body(()).map_err(|_| unbuildable())?;

        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&route.region)
            .name(&route.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|_| unbuildable())?
            .into();
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
            .collect();
        let signable = SignableRequest::new(
            "POST",
            route.uri.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(&body),
        )
        .map_err(|_| unbuildable())?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|_| unbuildable())?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);

        let request = HttpRequest::try_from(request.map(|()| SdkBody::from(body)))
            .map_err(|_| unbuildable())?;
        let response = self
            .connector
            .call(request)
            .await
            .map_err(|e| crate::fetch::connector_failure(parameter, budget, &e))?;
        let status = response.status().as_u16();
        let bytes = ByteStream::new(response.into_body())
            .collect()
            .await
            .map_err(|e| Error::Network {
                parameter: parameter.to_owned(),
                reason: crate::fetch::io_reason(&e),
            })?
            .into_bytes();
        if status != 200 {
            let code = crate::fetch::error_code_in_body(&bytes);
            return Err(crate::fetch::classify_code(
                parameter.to_owned(),
                code.as_deref(),
                status,
            ));
        }
        Ok(bytes)
    }
}

//! The one error type of this crate.
//!
//! Every message names the parameter (or the setting) and what is wrong, and
//! nothing else: never the parameter's value, never a credential and never the
//! raw AWS response (the SDK's `DisplayErrorContext` prints the whole HTTP
//! exchange, so AWS errors are classified in `fetch.rs` and only their kind and
//! AWS error code travel on from there).

use std::time::Duration;

/// Everything that can go wrong between a parameter name and a [`crate::DbConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The parameter (or the requested version or label of it) does not exist.
    #[error("SSM parameter \"{parameter}\" was not found")]
    NotFound {
        /// The parameter name as requested.
        parameter: String,
    },
    /// IAM (or KMS, for a SecureString) refused the read.
    #[error("access to SSM parameter \"{parameter}\" was denied ({aws_code}): check the IAM policy allows ssm:GetParameter on it and kms:Decrypt on its key")]
    AccessDenied {
        /// The parameter name as requested.
        parameter: String,
        /// The AWS error code, e.g. `AccessDeniedException`.
        aws_code: String,
    },
    /// SSM throttled the call (GetParameter is limited per account and region).
    #[error("reading SSM parameter \"{parameter}\" was throttled by AWS")]
    Throttled {
        /// The parameter name as requested.
        parameter: String,
    },
    /// The whole fetch did not finish within its budget.
    #[error("reading SSM parameter \"{parameter}\" timed out after {} ms", budget.as_millis())]
    Timeout {
        /// The parameter name as requested.
        parameter: String,
        /// The budget that ran out (`ssm_db_config.timeout_ms`).
        budget: Duration,
    },
    /// SSM could not be reached (connection refused or reset, DNS, TLS).
    #[error("SSM could not be reached while reading parameter \"{parameter}\": {reason}")]
    Network {
        /// The parameter name as requested.
        parameter: String,
        /// What failed, in our words (e.g. "connection refused").
        reason: String,
    },
    /// AWS answered with an error that is none of the above (a 5xx, or a
    /// response that could not be read).
    #[error("SSM failed while reading parameter \"{parameter}\": {reason}")]
    Service {
        /// The parameter name as requested.
        parameter: String,
        /// The AWS error code or HTTP status, never the body.
        reason: String,
        /// Whether retrying later may help (5xx, unreadable response).
        transient: bool,
    },
    /// The parameter exists but its value is not a usable database setting.
    #[error("SSM parameter \"{parameter}\" holds an invalid value: {reason}")]
    InvalidValue {
        /// The parameter name as requested.
        parameter: String,
        /// What is missing or malformed; never the value itself.
        reason: String,
    },
    /// No AWS credentials could be found, or they were rejected as unknown.
    #[error("no usable AWS credentials to read SSM parameter \"{parameter}\": {reason}")]
    NoCredentials {
        /// The parameter name as requested.
        parameter: String,
        /// Which part of the credential chain failed, in our words.
        reason: String,
        /// Whether a provider of the chain failed or timed out (instance
        /// metadata, the container endpoint, STS), which may answer next
        /// time; `false` when none is configured or AWS refused the key,
        /// which needs someone to change something.
        transient: bool,
    },
    /// A failure met moments ago by this host (another worker, or a
    /// background refresh), repeated without asking SSM again: while SSM is
    /// failing, a host makes one attempt per backoff interval.
    #[error("{message} (SSM is not asked again for {} s)", retry_in.as_secs().max(1))]
    Recent {
        /// The kind of the original failure.
        kind: ErrorKind,
        /// The original failure's message.
        message: String,
        /// Time until the host tries again.
        retry_in: Duration,
    },
    /// The extension or the monitor is configured wrongly (no parameter name,
    /// no region, a malformed endpoint URL, an invalid parameter name).
    #[error("bad configuration: {0}")]
    BadConfiguration(String),
    /// A bug: the extension caught a panic of its own instead of letting it
    /// take the PHP process down.
    #[error("internal error in ssm_db_config (a bug; please report it): nothing was changed")]
    Internal,
}

/// The kinds of [`Error`], with a stable number each.
///
/// The PHP extension exposes the number as the exception code and the name in
/// its status array, so neither may change once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// [`Error::NotFound`]
    NotFound = 1,
    /// [`Error::AccessDenied`]
    AccessDenied = 2,
    /// [`Error::Throttled`]
    Throttled = 3,
    /// [`Error::Timeout`]
    Timeout = 4,
    /// [`Error::Network`]
    Network = 5,
    /// [`Error::InvalidValue`]
    InvalidValue = 6,
    /// [`Error::NoCredentials`]
    NoCredentials = 7,
    /// [`Error::BadConfiguration`]
    BadConfiguration = 8,
    /// [`Error::Service`]
    Service = 9,
    /// [`Error::Internal`]
    Internal = 10,
}

impl ErrorKind {
    /// Every kind, in code order (for documentation tables and the stub file).
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::NotFound,
        ErrorKind::AccessDenied,
        ErrorKind::Throttled,
        ErrorKind::Timeout,
        ErrorKind::Network,
        ErrorKind::InvalidValue,
        ErrorKind::NoCredentials,
        ErrorKind::BadConfiguration,
        ErrorKind::Service,
        ErrorKind::Internal,
    ];

    /// The kind with this code, if any.
    pub fn from_code(code: i32) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The stable numeric code.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The stable snake_case name (used in status arrays and logs).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Network => "network",
            ErrorKind::InvalidValue => "invalid_value",
            ErrorKind::NoCredentials => "no_credentials",
            ErrorKind::BadConfiguration => "bad_configuration",
            ErrorKind::Service => "service",
            ErrorKind::Internal => "internal",
        }
    }
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AccessDenied { .. } => ErrorKind::AccessDenied,
            Error::Throttled { .. } => ErrorKind::Throttled,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Network { .. } => ErrorKind::Network,
            Error::Service { .. } => ErrorKind::Service,
            Error::InvalidValue { .. } => ErrorKind::InvalidValue,
            Error::NoCredentials { .. } => ErrorKind::NoCredentials,
            Error::BadConfiguration(_) => ErrorKind::BadConfiguration,
            Error::Recent { kind, .. } => *kind,
            Error::Internal => ErrorKind::Internal,
        }
    }

    /// Whether the same call may succeed if tried again later without anyone
    /// changing anything: the caller may retry, or keep serving a cached value.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Throttled { .. } | Error::Timeout { .. } | Error::Network { .. } => true,
            Error::Service { transient, .. } | Error::NoCredentials { transient, .. } => *transient,
            Error::Recent { kind, .. } => matches!(
                kind,
                ErrorKind::Throttled | ErrorKind::Timeout | ErrorKind::Network | ErrorKind::Service
            ),
            Error::NotFound { .. }
            | Error::AccessDenied { .. }
            | Error::InvalidValue { .. }
            | Error::BadConfiguration(_)
            | Error::Internal => false,
        }
    }

    pub(crate) fn invalid(parameter: &str, reason: impl Into<String>) -> Self {
        Error::InvalidValue {
            parameter: parameter.to_owned(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_stable() {
        let codes: Vec<i32> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes, (1..=10).collect::<Vec<_>>());
    }

    #[test]
    fn transient_kinds_are_the_ones_worth_retrying() {
        let p = "/p".to_string();
        assert!(Error::Throttled {
            parameter: p.clone()
        }
        .is_transient());
        assert!(!Error::NotFound {
            parameter: p.clone()
        }
        .is_transient());
        assert!(!Error::invalid(&p, "x").is_transient());
        assert!(Error::Service {
            parameter: p,
            reason: "HTTP 503".into(),
            transient: true
        }
        .is_transient());
    }
}

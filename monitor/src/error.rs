//! The monitor's one error type.
//!
//! AWS failures are classified by `ssm_db_config_core::fetch::classify_code`
//! (the same table the extension uses) from the error code and HTTP status,
//! never from the SDK's `Display`, which includes the raw response. Messages
//! name the service, the operation and the resource; never a parameter value.

use ssm_db_config_core::ErrorKind;

/// Everything that can make a poll (or the start-up) fail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The configuration file, a flag or an environment variable is wrong.
    #[error("bad configuration: {0}")]
    Config(String),
    /// An AWS call failed.
    #[error("{service} {operation} on {target} failed: {reason}")]
    Api {
        /// `RDS`, `SSM` or `CloudWatch`.
        service: &'static str,
        /// The API operation, e.g. `DescribeDBInstances`.
        operation: &'static str,
        /// What it was called on: `instance-id (region)` or `/parameter (region)`.
        target: String,
        /// The classified kind.
        kind: ErrorKind,
        /// What went wrong, in our words plus the AWS error code.
        reason: String,
        /// Whether the same call may succeed later without anyone changing anything.
        transient: bool,
    },
    /// A parameter's current value cannot be rewritten (it does not parse, or
    /// the rewrite would change more than the endpoint). The monitor refuses to
    /// overwrite it: it never writes credentials it did not read.
    #[error("refusing to overwrite SSM parameter \"{parameter}\" ({region}): {reason}")]
    Refused {
        /// The parameter name.
        parameter: String,
        /// Its region.
        region: String,
        /// Why; never the value.
        reason: String,
    },
    /// A parameter changed between the poll's read and its write (a password
    /// rotation, an operator): writing would revert that change, so the write
    /// is dropped and the next poll starts from the new value.
    #[error("not overwriting SSM parameter \"{parameter}\" ({region}): it changed since this poll read it (version {read} then, {now} now); the next poll starts from the new value")]
    Changed {
        /// The parameter name.
        parameter: String,
        /// Its region.
        region: String,
        /// The version this poll read.
        read: i64,
        /// The version found just before writing.
        now: i64,
    },
    /// A SecureString's KMS key could not be read (DescribeParameters failed
    /// or named no key) and the configuration names none: writing would
    /// re-encrypt the credentials under the account's default key, which the
    /// hosts may not be allowed to decrypt, so the write is withheld.
    #[error("not overwriting SSM parameter \"{parameter}\" ({region}): its KMS key is unknown ({reason}); writing without it would re-encrypt the credentials under the default key alias/aws/ssm: allow ssm:DescribeParameters or set kms_key_id for this parameter")]
    KeyUnknown {
        /// The parameter name.
        parameter: String,
        /// Its region.
        region: String,
        /// Why the key is unknown (the DescribeParameters failure); never the value.
        reason: String,
        /// Whether the lookup may succeed later (throttling, a network failure).
        transient: bool,
    },
    /// A promotion was started but the replica did not become a writable
    /// instance in time.
    #[error("RDS instance {instance} did not become a writable, available instance within {waited_secs} s of PromoteReadReplica")]
    PromotionTimeout {
        /// `instance-id (region)`.
        instance: String,
        /// How long the monitor waited.
        waited_secs: u64,
    },
}

impl Error {
    /// Whether retrying later (with backoff) may help.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Api { transient, .. } | Error::KeyUnknown { transient, .. } => *transient,
            Error::PromotionTimeout { .. } | Error::Changed { .. } => true,
            Error::Config(_) | Error::Refused { .. } => false,
        }
    }

    pub(crate) fn from_core(
        service: &'static str,
        operation: &'static str,
        target: String,
        e: ssm_db_config_core::Error,
    ) -> Self {
        use ssm_db_config_core::Error as C;
        let kind = e.kind();
        let transient = e.is_transient();
        let reason = match e {
            C::NotFound { .. } => "not found".to_owned(),
            C::AccessDenied { aws_code, .. } => {
                format!("access denied ({aws_code}): check the IAM policy in the monitor's README")
            }
            C::Throttled { .. } => "throttled by AWS".to_owned(),
            C::Timeout { budget, .. } => format!("timed out after {} ms", budget.as_millis()),
            C::Network { reason, .. } | C::NoCredentials { reason, .. } => reason,
            C::Service { reason, .. } => reason,
            C::InvalidValue { reason, .. } => reason,
            C::BadConfiguration(_) => "AWS rejected the request as invalid".to_owned(),
            C::Recent { message, .. } => message,
            C::Internal => C::Internal.to_string(),
        };
        Error::Api {
            service,
            operation,
            target,
            kind,
            reason,
            transient,
        }
    }
}

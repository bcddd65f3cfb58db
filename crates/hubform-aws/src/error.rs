//! Errors of the AWS layer, and AWS errors phrased for users: the call,
//! the error code and AWS's message (never the raw HTTP response), and
//! what to do next.
//!
//! Throttling and server errors reach this module only once the SDK's
//! retries (see [`crate::connect`]) are used up; every other error comes
//! from the first attempt, because the same call would fail again.

use std::error::Error as StdError;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;
use hubform_core::provider::Failure;

/// What can go wrong before any resource is touched.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// The credentials could not be resolved (profile, SSO, process).
    #[error("cannot load AWS credentials: {0}")]
    Credentials(String),
    /// `HUBFORM_LOOPBACK_ONLY` is on and an endpoint is not loopback (or
    /// the switch itself is unreadable).
    #[error("HUBFORM_LOOPBACK_ONLY: {0}; nothing was sent")]
    NotLoopback(String),
}

/// The whole chain of an error's sources, joined with ": ".
pub fn chain(err: &dyn StdError) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// The AWS error code of a failed call, when the service answered.
pub fn code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

/// How many attempts the SDK gives each call; set by
/// [`crate::connect::load`], read for messages.
static ATTEMPTS: AtomicU32 = AtomicU32::new(1);

/// Records how many attempts each call gets, for the messages.
pub(crate) fn set_attempts(attempts: u32) {
    ATTEMPTS.store(attempts.max(1), Ordering::Relaxed);
}

/// Error codes of throttling (retried by the SDK).
pub const THROTTLED: &[&str] = &[
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Error codes of AWS's own failures (HTTP 5xx, retried by the SDK).
const SERVER: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "ServiceFailure",
    "ServiceUnavailable",
    "Unavailable",
];

/// Calls the SDK does not repeat after a server error (see
/// [`crate::connect::NoBlindRepeat`]).
const NOT_REPEATED: &[&str] = &["AllocateAddress"];

/// Error codes of credentials that have run out.
const EXPIRED: &[&str] = &["ExpiredToken", "ExpiredTokenException"];

/// Error codes of credentials AWS does not know.
const NOT_ACCEPTED: &[&str] = &[
    "AuthFailure",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
];

/// Error codes of a request signed at a time AWS does not believe.
const CLOCK: &[&str] = &["RequestExpired", "RequestTimeTooSkewed"];

/// Error codes of credentials that may not make a call.
const DENIED: &[&str] = &[
    "UnauthorizedOperation",
    "AccessDenied",
    "AccessDeniedException",
];

/// Error codes of a request AWS refuses as written.
const REFUSED: &[&str] = &[
    "InvalidParameterValue",
    "InvalidParameterCombination",
    "InvalidParameter",
    "MissingParameter",
    "ValidationError",
];

/// A failed call as a user-facing failure: `Call failed: Code: message`,
/// with what to do next where the code says it.
pub fn failure<E, R>(call: &str, err: &SdkError<E, R>) -> Failure
where
    E: ProvideErrorMetadata + StdError + 'static,
    R: std::fmt::Debug,
{
    let detail = match err {
        SdkError::ServiceError(e) => {
            let e = e.err();
            let said = match (e.code(), e.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_owned(),
                _ => "the service returned an error without a code".into(),
            };
            return Failure::new(explain(
                &service_of::<E>(),
                call,
                e.code().unwrap_or_default(),
                &said,
            ));
        }
        SdkError::TimeoutError(_) => "timed out; check the network or raise \
             HUBFORM_OPERATION_TIMEOUT_SECS"
            .to_owned(),
        SdkError::DispatchFailure(e) => {
            let mut text = "could not reach the endpoint".to_owned();
            if let Some(source) = StdError::source(err) {
                text = format!("{text}: {}", chain(source));
            } else {
                text = format!("{text}: {e:?}");
            }
            text
        }
        other => match StdError::source(other) {
            Some(source) => chain(source),
            None => other.to_string(),
        },
    };
    Failure::new(format!("{call} failed: {detail}"))
}

/// The AWS service an operation error belongs to, from its crate.
fn service_of<E>() -> String {
    let path = std::any::type_name::<E>();
    let name = if path.starts_with("aws_sdk_ec2") {
        "EC2"
    } else if path.starts_with("aws_sdk_iam") {
        "IAM"
    } else if path.starts_with("aws_sdk_sts") {
        "STS"
    } else if path.starts_with("aws_sdk_route53") {
        "Route 53"
    } else {
        "AWS"
    };
    name.to_owned()
}

/// The message for a call that failed with `code`; `said` is AWS's own
/// `Code: message`.
pub(crate) fn explain(
    service: &str,
    call: &str,
    code: &str,
    said: &str,
) -> String {
    let attempts = ATTEMPTS.load(Ordering::Relaxed);
    let again = "run the command again: it continues where it stopped";
    if THROTTLED.contains(&code) {
        return format!(
            "{service} throttled {call} {attempts} times ({said}); wait a \
             minute and {again}"
        );
    }
    if SERVER.contains(&code) && NOT_REPEATED.contains(&call) {
        return format!(
            "{service} answered {call} with a server error ({said}); it may \
             have been carried out all the same, so it was not repeated: \
             run apply again, it looks for what was made before it makes \
             anything anew"
        );
    }
    if SERVER.contains(&code) {
        return format!(
            "{service} answered {call} with a server error {attempts} times \
             ({said}); AWS may be having trouble (see \
             https://health.aws.amazon.com): wait a few minutes and {again}"
        );
    }
    let next = if EXPIRED.contains(&code) {
        format!(
            "the AWS credentials have expired: refresh them (`aws sso \
             login`, or new session credentials) and {again}"
        )
    } else if NOT_ACCEPTED.contains(&code) {
        "AWS does not accept these credentials: check which profile or \
         keys are in use (`aws sts get-caller-identity`) and run again"
            .to_owned()
    } else if CLOCK.contains(&code) {
        "this computer's clock is off: set it right (NTP) and run again"
            .to_owned()
    } else if DENIED.contains(&code) {
        format!(
            "these credentials may not call {call}: use credentials that \
             may (an administrator can grant it), then run again"
        )
    } else if code == "AddressLimitExceeded" {
        "the Region's Elastic IP quota (EC2-VPC Elastic IPs, 5 by \
         default) is used up: release an address nobody uses (`aws ec2 \
         describe-addresses` lists them) or ask for a higher quota in \
         Service Quotas, then run apply again"
            .to_owned()
    } else if ["VcpuLimitExceeded", "InstanceLimitExceeded"].contains(&code) {
        "the Region's quota of instances is used up: stop or terminate an \
         instance nobody uses, pick a smaller type, or ask for a higher \
         quota in Service Quotas, then run apply again"
            .to_owned()
    } else if REFUSED.contains(&code) {
        "AWS refuses the request as written (it would fail again, so it \
         was not retried): check this resource's values in the spec"
            .to_owned()
    } else {
        return format!("{call} failed: {said}");
    };
    format!("{call} failed: {said}; {next}")
}

/// A failed call: the AWS error code, when the service gave one, and the
/// failure phrased for the user.
#[derive(Debug)]
pub struct CallError {
    /// The AWS error code.
    pub code: Option<String>,
    /// What to tell the user.
    pub failure: Failure,
}

impl CallError {
    /// Whether the code is one of `codes`.
    pub fn is(&self, codes: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|c| codes.contains(&c))
    }
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Failure {
        e.failure
    }
}

/// The result of a call with its error reduced to a [`CallError`], so
/// that calls of different operations can share retry and tolerance code.
pub fn checked<T, E, R>(
    call: &str,
    result: Result<T, SdkError<E, R>>,
) -> Result<T, CallError>
where
    E: ProvideErrorMetadata + StdError + 'static,
    R: std::fmt::Debug,
{
    result.map_err(|e| CallError {
        code: code(&e).map(str::to_owned),
        failure: failure(call, &e),
    })
}

/// Whether the error is one of `codes`.
pub fn is<E, R>(err: &SdkError<E, R>, codes: &[&str]) -> bool
where
    E: ProvideErrorMetadata,
{
    code(err).is_some_and(|c| codes.contains(&c))
}

/// Whether AWS refused the call outright, so that it certainly changed
/// nothing: any answer but a server error (a throttled call was refused
/// too). After a server error, a timeout or a lost connection the call
/// may have been carried out.
pub fn refused<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    matches!(err, SdkError::ServiceError(_))
        && !code(err).is_some_and(|c| SERVER.contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_error_says_what_to_do() {
        set_attempts(5);
        let throttled = explain(
            "EC2",
            "DescribeInstances",
            "RequestLimitExceeded",
            "RequestLimitExceeded: Request limit exceeded.",
        );
        assert_eq!(
            throttled,
            "EC2 throttled DescribeInstances 5 times (RequestLimitExceeded: \
             Request limit exceeded.); wait a minute and run the command \
             again: it continues where it stopped"
        );
        let expired =
            explain("IAM", "CreateUser", "ExpiredToken", "ExpiredToken: x");
        assert!(expired.starts_with("CreateUser failed: ExpiredToken: x; "));
        assert!(expired.contains("aws sso login"), "{expired}");
        let quota = explain(
            "EC2",
            "AllocateAddress",
            "AddressLimitExceeded",
            "AddressLimitExceeded: x",
        );
        assert!(quota.contains("Service Quotas"), "{quota}");
        let lost =
            explain("EC2", "AllocateAddress", "InternalError", "InternalError");
        assert!(lost.contains("not repeated"), "{lost}");
        let plain = explain("EC2", "CreateTags", "Odd", "Odd: y");
        assert_eq!(plain, "CreateTags failed: Odd: y");
    }
}

//! Errors of the AWS layer, and AWS errors phrased for users: the call,
//! the error code and AWS's message (never the raw HTTP response).

use std::error::Error as StdError;

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

/// A failed call as a user-facing failure: `Call: Code: message`.
pub fn failure<E, R>(call: &str, err: &SdkError<E, R>) -> Failure
where
    E: ProvideErrorMetadata + StdError + 'static,
    R: std::fmt::Debug,
{
    let detail = match err {
        SdkError::ServiceError(e) => {
            let e = e.err();
            match (e.code(), e.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_owned(),
                _ => "the service returned an error without a code".into(),
            }
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

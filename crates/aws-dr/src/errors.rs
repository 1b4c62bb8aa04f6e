//! Turning SDK errors into the runbook engine's error kinds.

use aws_sdk_ssm::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use lifeboat_runbook::{BackendError, BackendErrorKind};

/// Error codes AWS uses for "slow down": retrying later helps.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "PriorRequestNotComplete",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalError",
];

/// `what` failed in `region`: the error kind tells the engine whether a retry can help (unreachable
/// endpoint, throttling and server errors can; a refused request cannot).
pub fn sdk_error<E, R>(what: &str, region: &str, err: SdkError<E, R>) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let kind = classify(&err);
    BackendError::new(
        kind,
        format!("{what} in {region} failed: {}", describe(&err)),
    )
}

/// One line for an SDK error: `Code: message` when the service answered, the error chain when it could not
/// be reached. (`DisplayErrorContext` alone appends the whole raw HTTP response of a service error, headers
/// and body, which buries the message in a readiness report or a journal entry.)
pub fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(service) = err {
        let e = service.err();
        match (e.code(), e.message()) {
            (Some(code), Some(message)) => return format!("{code}: {message}"),
            (Some(code), None) => return code.to_owned(),
            (None, Some(message)) => return message.to_owned(),
            (None, None) => {}
        }
    }
    DisplayErrorContext(err).to_string()
}

pub fn classify<E, R>(err: &SdkError<E, R>) -> BackendErrorKind
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            BackendErrorKind::Unavailable
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            if THROTTLING_CODES.contains(&code) || code.is_empty() {
                // No code at all: the endpoint answered something that is not an AWS error (a proxy, an
                // emulator's 500). Worth another try.
                BackendErrorKind::Unavailable
            } else {
                BackendErrorKind::Rejected
            }
        }
        _ => BackendErrorKind::Other,
    }
}

/// The AWS error code of a service error (`None` for transport errors).
pub fn error_code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

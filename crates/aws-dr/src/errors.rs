//! Turning SDK errors into the runbook engine's error kinds.

use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
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
    let text = error_chain(err);
    if text.contains("loading credentials") {
        // What a new user without credentials meets first: say what is missing and how to give it.
        return format!(
            "no AWS credentials were found ({text}); set AWS_PROFILE or AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, or use --target local for the local runtime"
        );
    }
    text
}

/// An error and its sources, one `: `-separated line, each level once (an SDK error's `Debug` form, which
/// `DisplayErrorContext` appends, is a multi-line structure no operator should have to read).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut current = err.source();
    while let Some(e) = current {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::result::ConnectorError;

    #[derive(Debug, thiserror::Error)]
    #[error("an error occurred while loading credentials")]
    struct Credentials(#[source] Imds);

    #[derive(Debug, thiserror::Error)]
    #[error("failed to load IMDS session token: request forbidden")]
    struct Imds;

    #[test]
    fn a_transport_error_is_one_readable_line_and_missing_credentials_say_what_to_do() {
        let err: SdkError<aws_sdk_ssm::operation::get_parameters::GetParametersError, ()> =
            SdkError::dispatch_failure(ConnectorError::other(Box::new(Credentials(Imds)), None));
        let text = describe(&err);
        assert!(
            !text.contains("DispatchFailure("),
            "no Debug structure: {text}"
        );
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains("failed to load IMDS session token"), "{text}");
        assert!(text.starts_with("no AWS credentials were found"), "{text}");
        assert!(text.contains("--target local"), "{text}");

        let refused: SdkError<aws_sdk_ssm::operation::get_parameters::GetParametersError, ()> =
            SdkError::dispatch_failure(ConnectorError::other(
                Box::new(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "connection refused",
                )),
                None,
            ));
        let text = describe(&refused);
        assert!(
            text.contains("connection refused") && !text.contains("credentials"),
            "{text}"
        );
    }
}

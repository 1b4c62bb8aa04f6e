//! Errors of the deploy engine, each with the exit code it maps to.

use lifeboat_contract::exit;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The synth output or a flag is wrong; nothing was sent to AWS.
    #[error("{0}")]
    Input(String),
    /// A safety check declined; nothing was changed by the step that refused.
    #[error("{0}")]
    Refused(String),
    /// Something the run needs is not there: the endpoint, credentials, or stacks outside the selection.
    #[error("{0}")]
    Unavailable(String),
    /// An AWS call failed in a way that is neither of the above.
    #[error("{0}")]
    Aws(String),
}

impl EngineError {
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::Input(_) => exit::USAGE,
            EngineError::Refused(_) => exit::REFUSED,
            EngineError::Unavailable(_) => exit::UNAVAILABLE,
            EngineError::Aws(_) => exit::FAILED,
        }
    }
}

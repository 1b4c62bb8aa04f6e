//! The one error type of the command line: a message, its causes and the exit code it maps to.

use lifeboat_contract::exit;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// One of `lifeboat_contract::exit`.
    pub code: i32,
    pub message: String,
    /// Underlying causes, outermost first, printed as `caused by:` lines.
    pub causes: Vec<String>,
}

// Constructors for every exit code, so each command maps its failures the same way.
#[expect(
    dead_code,
    reason = "one constructor per exit code, whether or not a command uses it yet"
)]
impl CliError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            causes: Vec::new(),
        }
    }

    /// Bad input: nothing was changed.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(exit::USAGE, message)
    }

    /// A safety check declined: nothing was changed.
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(exit::REFUSED, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(exit::INTERNAL, message)
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(exit::FAILED, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(exit::UNAVAILABLE, message)
    }

    /// Wraps any error: `message` says what was being done; the error and its sources become the causes.
    pub fn from_error(
        code: i32,
        message: impl Into<String>,
        error: &(dyn std::error::Error + 'static),
    ) -> Self {
        let mut causes = vec![error.to_string()];
        let mut source = error.source();
        while let Some(s) = source {
            causes.push(s.to_string());
            source = s.source();
        }
        Self {
            code,
            message: message.into(),
            causes,
        }
    }

    pub fn with_cause(mut self, cause: impl Into<String>) -> Self {
        self.causes.push(cause.into());
        self
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<lifeboat_config::ConfigError> for CliError {
    fn from(e: lifeboat_config::ConfigError) -> Self {
        CliError::usage(format!("invalid configuration: {e}"))
    }
}

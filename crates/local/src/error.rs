//! Errors of the local runtime, each mapped to one of the documented exit codes.

use std::path::PathBuf;

use lifeboat_contract::exit;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// There is no runtime in this state directory (never started, or taken down).
    #[error("the local runtime is not up (no {}): run `lifeboat local up` first", .0.display())]
    NotUp(PathBuf),
    /// Something the runtime needs is missing on this machine (root for namespaces, a binary).
    #[error("{0}")]
    Unavailable(String),
    /// Bad input: a region that is not one of the pair, an invalid setting.
    #[error("{0}")]
    Usage(String),
    /// A file or directory operation failed.
    #[error("{what} ({}): {source}", .path.display())]
    Io {
        what: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// An external command (ip, mariadb-install-db, haproxy) failed.
    #[error("{0}")]
    Command(String),
    /// A database operation failed.
    #[error("{0}")]
    Database(String),
    /// The runtime ran and something did not come up or did not work.
    #[error("{0}")]
    Failed(String),
}

impl LocalError {
    pub fn io(what: impl Into<String>, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LocalError::Io {
            what: what.into(),
            path: path.into(),
            source,
        }
    }

    /// The process exit code for this error (see `lifeboat_contract::exit`).
    pub fn exit_code(&self) -> i32 {
        match self {
            LocalError::NotUp(_) | LocalError::Unavailable(_) => exit::UNAVAILABLE,
            LocalError::Usage(_) => exit::USAGE,
            LocalError::Io { .. }
            | LocalError::Command(_)
            | LocalError::Database(_)
            | LocalError::Failed(_) => exit::FAILED,
        }
    }
}

pub type Result<T, E = LocalError> = std::result::Result<T, E>;

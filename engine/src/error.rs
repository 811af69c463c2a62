//! The one error type of the engine.

use flowstate_store::StoreError;
use std::path::PathBuf;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A workflow file is unreadable or invalid; names the file, the task and the problem.
    #[error("{}{}: {message}", file.display(), task.as_ref().map(|t| format!(", task '{t}'")).unwrap_or_default())]
    Workflow {
        /// The workflow file (or `<definition>` for a stored one).
        file: PathBuf,
        /// The task at fault, if one is.
        task: Option<String>,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// The `engine:` section of the configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What the engine was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl EngineError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| EngineError::Io { context, source }
    }

    /// True when the error is the caller's input (a bad file, flag or
    /// configuration) rather than a failure at run time.
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            EngineError::Workflow { .. }
                | EngineError::Config(_)
                | EngineError::Store(StoreError::Config(_))
                | EngineError::Store(StoreError::InvalidInput(_))
        )
    }
}

/// Shorthand for results of the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

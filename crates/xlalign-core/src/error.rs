//! One error type for the whole core, with messages a user can act on.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The model file is not a GGUF file, is truncated, or is internally inconsistent.
    #[error("invalid model file: {0}")]
    Format(String),
    /// The file is valid GGUF but not a model this project can run (wrong architecture, shapes, types).
    #[error("unsupported model: {0}")]
    Unsupported(String),
    /// A tensor the architecture needs is absent.
    #[error("model file has no tensor `{0}`")]
    MissingTensor(String),
    /// A metadata key the architecture needs is absent or has the wrong type.
    #[error("model file metadata: {0}")]
    Metadata(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Input text or options the caller can fix.
    #[error("invalid input: {0}")]
    Input(String),
    #[error("backend: {0}")]
    Backend(String),
    #[error("I/O: {0}")]
    Io(String),
    /// A model file that could not be loaded, and why. (`cause`, not `source`: the message
    /// holds it already, and a `source` would print it twice in a cause chain.)
    #[error("cannot load {path}: {cause}")]
    File { path: String, cause: Box<Error> },
}

/// The classes of [`Error`] a user acts on differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The model file: not GGUF, truncated, inconsistent, or not a model this project runs.
    Model,
    /// Text or options the caller can fix.
    Input,
    /// The device (GPU, threads).
    Backend,
    /// Reading files (natively) or the network (in the browser).
    Io,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The message without the "invalid input: " or "backend: " prefix, for front ends that
    /// say what kind of error it is their own way (a code, a notice).
    pub fn detail(&self) -> String {
        match self {
            Error::Input(m) | Error::Backend(m) => m.clone(),
            other => other.to_string(),
        }
    }

    /// Whose fault it is, for front ends that map it to a code (the package's `Error.code`)
    /// or an exception class (the Python package).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Format(_)
            | Error::Unsupported(_)
            | Error::MissingTensor(_)
            | Error::Metadata(_)
            | Error::Tokenizer(_) => ErrorKind::Model,
            Error::Input(_) => ErrorKind::Input,
            Error::Backend(_) => ErrorKind::Backend,
            Error::Io(_) => ErrorKind::Io,
            Error::File { cause, .. } => cause.kind(),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

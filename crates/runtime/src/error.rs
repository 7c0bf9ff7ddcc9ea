//! Errors of the runtime. Callers (the kubelet) branch on the variant: `NotFound` for a
//! sandbox, container or image that is gone, `InvalidArgument` for a request that can never
//! succeed, `FailedPrecondition` for one that cannot succeed in the current state (an image
//! in use, a container not running), the rest are failures of the machine or the backend.

/// A runtime error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("image: {0}")]
    Image(#[from] rkube_images::Error),
    #[error("container runtime: {0}")]
    Runtime(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("CRI: {0}")]
    Cri(String),
}

/// Results of the runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds context to I/O errors: `io(ctx)(err)`.
pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

//! Errors of the image store.

/// An image-store error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("image {0:?} not found")]
    NotFound(String),
    #[error("image {image} is in use by container {container}")]
    InUse { image: String, container: String },
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("invalid digest {0:?} (want sha256:<64 hex digits>)")]
    InvalidDigest(String),
    #[error("invalid image: {0}")]
    Invalid(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("registry: {0}")]
    Registry(String),
    #[error("registry configuration {path}: {reason}")]
    Config { path: String, reason: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Results of the image store.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds context to I/O errors: `.map_err(io(ctx))`.
pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

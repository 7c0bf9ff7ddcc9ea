//! Errors of this crate.

/// A schema that cannot be turned into a [`crate::Type`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid schema at {path}: {message}", path = if .path.is_empty() { "<root>" } else { .path.as_str() })]
pub struct SchemaError {
    /// Where in the schema, as `.spec.items[]` (empty for the root).
    pub path: String,
    pub message: String,
}

impl SchemaError {
    pub fn new(path: &str, message: impl Into<String>) -> SchemaError {
        SchemaError {
            path: path.to_string(),
            message: message.into(),
        }
    }
}

//! The errors of every patch type, carrying what the API server needs to answer like
//! upstream: the HTTP status, the `metav1.Status` reason, the message, and for apply
//! conflicts the list of conflicting fields (the Status `details.causes`).

use crate::fieldpath::Path;

/// One field another manager owns with a different value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The manager as upstream prints it: `"kubectl"` for appliers,
    /// `"kube-controller-manager" using apps/v1` for updaters, plus
    /// ` with subresource "status"` when set.
    pub manager: String,
    pub path: Path,
}

/// Errors of the patch functions.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch document is malformed (400 BadRequest).
    #[error("{0}")]
    BadRequest(String),
    /// The patch is well formed but cannot be applied to this object (422 Invalid), e.g. a
    /// JSON Patch operation on a missing path or a failed `test`.
    #[error("{0}")]
    Invalid(String),
    /// Server-side apply conflicts (409 Conflict, reason `Conflict`); the message is
    /// upstream's `Apply failed with N conflict(s): ...`.
    #[error("{message}")]
    Conflicts {
        message: String,
        conflicts: Vec<Conflict>,
    },
    /// An error upstream reports as an internal error (500), e.g. a strategic merge patch
    /// list item without its merge key.
    #[error("{0}")]
    Internal(String),
}

impl PatchError {
    /// The HTTP status code upstream answers with.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::BadRequest(_) => 400,
            PatchError::Invalid(_) => 422,
            PatchError::Conflicts { .. } => 409,
            PatchError::Internal(_) => 500,
        }
    }

    /// The `metav1.Status` reason.
    pub fn reason(&self) -> &'static str {
        match self {
            PatchError::BadRequest(_) => "BadRequest",
            PatchError::Invalid(_) => "Invalid",
            PatchError::Conflicts { .. } => "Conflict",
            PatchError::Internal(_) => "InternalError",
        }
    }

    /// For conflicts, the Status `details.causes`: `(type, message, field)` with type
    /// `FieldManagerConflict`, message `conflict with "manager"...` and field `.spec.x`.
    pub fn causes(&self) -> Vec<(String, String, String)> {
        match self {
            PatchError::Conflicts { conflicts, .. } => conflicts
                .iter()
                .map(|c| {
                    (
                        "FieldManagerConflict".to_string(),
                        format!("conflict with {}", c.manager),
                        c.path.to_string(),
                    )
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}
